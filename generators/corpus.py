"""The labelled corpus the toolkit makes itself: real photographs at native resolution and generated
images of every family, each through one seeded processing distribution, in the format of
:mod:`forensics.io.corpus` (the image files and ``manifest.csv``).

Families (the manifest's ``family`` column, ``KIND:SPEC``):

``real``
    crops of the real photographs (sides drawn in ``crop_size``, multiples of 8, at native resolution,
    seeded) and, with ``full_photos``, the photographs themselves; ``group`` is the photograph.
``up:G-xF``
    content-aligned resampling chains on the real crops: area downscale by ``F`` (2, 4, 8), then
    ``log2 F`` x2 stages of a generator's last block (:func:`~forensics.generators.simulate.simulate_family`:
    random conv + ReLU, upsampling by ``G`` = ``baseline`` (transposed conv), ``N`` nearest, ``B`` bilinear,
    ``Z`` zero insertion, random convolutions after), or a plain ``bicubic`` / ``lanczos`` upscale back.
``ae-kl:SPEC``, ``ae-vq:SPEC``
    reconstructions of the real crops by the toolkit's autoencoders (:mod:`forensics.generators.autoencoder`)
    whose decoders upsample by ``SPEC``, trained briefly on real patches (fully convolutional, so they
    reconstruct crops of any size that is a multiple of their factor).
``gan-OBJECTIVE[@QUANT]:SPEC``
    samples of the toolkit's GANs (DCGAN backbone, or LSGAN / WGAN-GP, trained with the objective, last
    layer ``SPEC``), ``group`` ``-``.
``ddpm:SPEC``, ``ldm:SPEC``
    DDIM samples of the tiny diffusion sources, ``group`` ``-``.

Content-aligned fakes share the ``group`` of their source photograph. Every image, real or fake, gets
processing drawn from one distribution seeded by its name (:func:`draw_processing`): ``none`` with
probability ``p_none``, else JPEG, area downscale, or downscale then JPEG in equal shares (and, when
``blur_sigma`` is set, a Gaussian blur, then JPEG half the time, as a fourth share); never an
upscale. JPEG-processed images are stored as the JPEG files themselves (``.jpg``), the rest as PNG.

A build is resumable and deterministic: images already in the folder are skipped (each is written
atomically), the trained runs are cached in ``OUT/.runs/`` (hidden from image scans), ``config.json``
(written first) records the config, so a different config into the folder is refused, and
``manifest.csv`` is written at the end.
"""
from __future__ import annotations

import dataclasses
import re
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np

from forensics.core.config import Config, Probability, Range, Seed
from forensics.core.errors import UserError
from forensics.io.corpus import REAL, Entry

#: the kinds of family a build can make (``kinds``; the CLI's ``--families``)
KINDS = ("up", "ae", "gan", "ddpm", "ldm")
#: ``up`` families' upsampling: the group letter -> :func:`simulate_family`'s method, or a plain upscale filter
UP_METHODS = {"baseline": "transposed", "N": "nearest", "B": "bilinear", "Z": "zero", "bicubic": None, "lanczos": None}
UP_FACTORS = (2, 4, 8)
#: crop sides (and so the content-aligned fakes) are multiples of this: the largest factor of ``up`` and ``ae``
MULTIPLE = 8
#: no processing brings an image's short side under this (the detectors' smallest input)
MIN_SIDE = 32
#: GAN and diffusion samples are drawn in chunks of this many, each chunk from its own seed
CHUNK = 16
RUNS = ".runs"
_UP = re.compile(r"^up:(baseline|N|B|Z|bicubic|lanczos)-x(\d+)$")
_GAN = re.compile(r"^gan-([a-z-]+?)(?:@(\w+))?:(.+)$")
_BASE_GANS = ("dcgan", "lsgan", "wgan-gp")

DEFAULT_UP = tuple(f"up:{g}-x{f}" for g in ("baseline", "N", "B", "Z") for f in UP_FACTORS) + tuple(
    f"up:{g}-x{f}" for g in ("bicubic", "lanczos") for f in (2, 4))
#: one decoder per upsampling group (baseline, N, B, Z, P), KL and VQ
DEFAULT_AE = tuple(f"ae-{k}:{s}" for k in ("kl", "vq") for s in ("baseline", "N.1.3", "B.1.3", "Z.1.5", "P.1.3"))
DEFAULT_GANS = ("gan-dcgan:baseline", "gan-dcgan:N.1.5", "gan-dcgan:B.1.5", "gan-dcgan:Z.1.5", "gan-lsgan:baseline",
                "gan-wgan-gp:baseline", "gan-infomax:N.1.5", "gan-ssgan-ms:B.1.5", "gan-dag:Z.1.5")
DEFAULT_DIFFUSION = ("ddpm:baseline", "ldm:N.1.3")


# ------------------------------------------------------------------------------ family specs
def parse_gan_family(text: str) -> tuple[str, str | None, str, str]:
    """``"gan-infomax@w4a4:N.1.5"`` -> ``(gan, objective, quant, spec)`` = ``("dcgan", "infomax", "w4a4",
    "N.1.5")``; ``gan-dcgan`` / ``gan-lsgan`` / ``gan-wgan-gp`` are those GANs with their own loss, other
    objectives train the DCGAN backbone."""
    from forensics.generators.layers import LastLayerSpec
    from forensics.generators.objectives import OBJECTIVES
    from forensics.generators.quant import QuantSpec

    m = _GAN.match(str(text))
    if not m:
        raise ValueError(f"bad GAN family {text!r}: use gan-OBJECTIVE[@QUANT]:SPEC, e.g. gan-dcgan:baseline")
    obj, quant, spec = m.group(1), m.group(2) or "none", m.group(3)
    if obj not in OBJECTIVES and obj not in _BASE_GANS:
        raise ValueError(f"bad GAN family {text!r}: unknown objective {obj!r}; choose from "
                         f"{', '.join(dict.fromkeys((*_BASE_GANS, *OBJECTIVES)))}")
    try:
        spec, quant = str(LastLayerSpec.parse(spec)), str(QuantSpec.parse(quant))
    except ValueError as e:
        raise ValueError(f"bad GAN family {text!r}: {e}") from None
    gan = obj if obj in _BASE_GANS else "dcgan"
    return gan, None if obj == gan else obj, quant, spec


def gan_family(text: str) -> str:
    """The normalised family name of a GAN family spec (``gan-dcgan@w4a4:baseline``)."""
    gan, obj, quant, spec = parse_gan_family(text)
    return f"gan-{obj or gan}{'' if quant == 'none' else '@' + quant}:{spec}"


def parse_up_family(text: str) -> tuple[str, int]:
    """``"up:N-x4"`` -> ``("N", 4)``."""
    m = _UP.match(str(text))
    if not m or int(m.group(2)) not in UP_FACTORS:
        raise ValueError(f"bad resampling family {text!r}: use up:G-xF with G one of {', '.join(UP_METHODS)} "
                         f"and F one of {', '.join(map(str, UP_FACTORS))}, e.g. up:N-x2")
    return m.group(1), int(m.group(2))


def _source_family(text: str, kinds: tuple[str, ...]) -> str:
    from forensics.generators.source_config import parse_source

    s = parse_source(text)
    if s.kind not in kinds:
        raise ValueError(f"{text!r} is a {s.kind} source; expected one of {', '.join(kinds)}")
    return str(s)


# ------------------------------------------------------------------------------ the config
Side = Annotated[int, Range(MIN_SIDE, 8192)]


@dataclass(frozen=True)
class CorpusConfig(Config):
    """What :func:`build_corpus` makes. Counts are per family (per photograph for the crops)."""

    preset: str = "default"
    """the preset the settings came from (recorded)"""
    seed: Seed = 0
    real: tuple[str, ...] = ("builtin-wide",)
    """real photographs: ``builtin`` / ``builtin-wide`` (the shipped photographs) or folders of photos"""
    train_data: str = "builtin-wide"
    """the real source the autoencoders and GANs train on (a source string of ``load_source``)"""
    crop_size: tuple[Side, ...] = (128, 512)
    """the smallest and largest crop side (each side drawn in between, a multiple of 8)"""
    crops_per_photo: Annotated[int, Range(0, 10_000)] = 8
    full_photos: bool = True
    """also each photograph whole, as a real image"""
    kinds: tuple[str, ...] = ("up", "ae", "gan")
    """the kinds of fake family to make (up, ae, gan, ddpm, ldm)"""
    up: tuple[str, ...] = DEFAULT_UP
    n_up: Annotated[int, Range(0, 1_000_000)] = 16
    autoencoders: tuple[str, ...] = DEFAULT_AE
    n_ae: Annotated[int, Range(0, 1_000_000)] = 24
    ae_size: Annotated[int, Range(16, 512)] = 64
    """the autoencoders' training patch side"""
    ae_steps: Annotated[int, Range(0, 10_000_000)] = 600
    gans: tuple[str, ...] = DEFAULT_GANS
    n_gan: Annotated[int, Range(0, 1_000_000)] = 32
    gan_size: Annotated[int, Range(16, 512)] = 64
    gan_steps: Annotated[int, Range(0, 10_000_000)] = 200
    diffusion: tuple[str, ...] = DEFAULT_DIFFUSION
    n_diffusion: Annotated[int, Range(0, 1_000_000)] = 32
    diffusion_size: Annotated[int, Range(16, 512)] = 32
    diffusion_steps: Annotated[int, Range(0, 10_000_000)] = 1000
    """training steps of the diffusion models (an ldm's autoencoder trains ``ae_steps``)"""
    ddim_steps: Annotated[int, Range(1, 1000)] = 25
    diffusion_params: dict = dataclasses.field(default_factory=dict)
    """hyper-parameter changes of the diffusion models' U-Nets (the tiny source preset's otherwise), e.g.
    ``{"ch": 16}``"""
    p_none: Probability = 0.5
    """the share of images left unprocessed"""
    jpeg_quality: tuple[Annotated[int, Range(1, 100)], ...] = (70, 98)
    resize_factor: tuple[Annotated[float, Range(0.1, 1, hi_open=True)], ...] = (0.5, 0.9)
    """area downscale factors (never an upscale: an upscaled photo is upsampled)"""
    blur_sigma: tuple[Annotated[float, Range(0, 5)], ...] = (0.0, 0.0)
    """Gaussian blur sigmas of a fourth processing share (``blurS``, then JPEG half the time); ``(0, 0)``:
    no blur share"""
    device: str = "auto"

    @classmethod
    def tiny(cls, **changes) -> CorpusConfig:
        """Seconds on a CPU (the tests): small crops, one family of each kind, a few training steps."""
        tiny = {"preset": "tiny", "train_data": "builtin", "crop_size": (64, 96), "crops_per_photo": 1,
                "full_photos": False, "up": ("up:N-x2", "up:baseline-x8", "up:bicubic-x2"), "n_up": 2,
                "autoencoders": ("ae-kl:N.1.3", "ae-vq:baseline"), "n_ae": 2, "ae_size": 32, "ae_steps": 3,
                "gans": ("gan-dcgan:baseline",), "n_gan": 3, "gan_size": 32, "gan_steps": 2,
                "diffusion": ("ddpm:baseline", "ldm:Z.1.5"), "n_diffusion": 2, "diffusion_steps": 2, "ddim_steps": 3,
                "diffusion_params": {"ch": 16, "batch": 8}}
        return cls(**{**tiny, **changes})

    @classmethod
    def default(cls, **changes) -> CorpusConfig:
        """The corpus of the default model's build: 26 photographs (``builtin-wide``), 8 crops of 128-512 px
        each and the photographs whole (234 reals); 16 ``up`` families x 16, 10 autoencoders (KL and VQ x
        baseline, N.1.3, B.1.3, Z.1.5, P.1.3; 600 steps on 64-px patches) x 24 reconstructions, 9 GANs (6
        objectives, 4 last layers; 64 px, 200 steps) x 32 samples: 1,018 images in 35 fake families. Estimated ~33 minutes on
        2 idle CPU cores (GAN training about 24 of them); diffusion families are not in it (``kinds``)."""
        return cls(**changes)

    @classmethod
    def from_preset(cls, name: str, **changes) -> CorpusConfig:
        presets = {"tiny": cls.tiny, "default": cls.default}
        if name not in presets:
            raise ValueError(f"unknown corpus preset {name!r}; choose from {', '.join(presets)}")
        return presets[name](**{k: v for k, v in changes.items() if v is not None})

    def validate(self) -> None:
        from forensics.generators.source_config import AUTOENCODERS

        if not self.real:
            raise ValueError("give at least one real source")
        for name, n in (("crop_size", 2), ("jpeg_quality", 2), ("resize_factor", 2), ("blur_sigma", 2)):
            v = getattr(self, name)
            if len(v) != n or v[0] > v[1]:
                raise ValueError(f"{name} must be two values, the smallest first, got {list(v)}")
        bad = sorted(set(self.kinds) - set(KINDS))
        if bad:
            raise ValueError(f"unknown family kind(s) {', '.join(bad)}; choose from {', '.join(KINDS)}")
        for f in self.up:
            parse_up_family(f)
        object.__setattr__(self, "autoencoders", tuple(_source_family(f, AUTOENCODERS) for f in self.autoencoders))
        object.__setattr__(self, "gans", tuple(gan_family(f) for f in self.gans))
        object.__setattr__(self, "diffusion", tuple(_source_family(f, ("ddpm", "ldm")) for f in self.diffusion))
        for name in ("up", "autoencoders", "gans", "diffusion"):
            v = getattr(self, name)
            if len(set(v)) != len(v):
                raise ValueError(f"{name} names a family twice: {list(v)}")
        for name in ("ae_size", "gan_size", "diffusion_size"):
            s = getattr(self, name)
            if s & (s - 1):
                raise ValueError(f"{name} must be a power of two, got {s}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"unknown device {self.device!r}: auto, cpu or cuda")
        for f in self.gans:  # every run's settings are valid before anything is made
            gan_run_config(self, f)
        for f in self.autoencoders + self.diffusion:
            source_run_config(self, f)

    def families(self) -> list[str]:
        """The fake families this config makes, in build order."""
        out = []
        if "up" in self.kinds:
            out += self.up
        if "ae" in self.kinds:
            out += self.autoencoders
        if "gan" in self.kinds:
            out += self.gans
        out += [f for f in self.diffusion if f.split(":")[0].split("-")[0] in self.kinds]
        return out


# ------------------------------------------------------------------------------ seeds, processing
def _rng(seed: int, *keys) -> np.random.Generator:
    """A generator for one purpose and one image: ``seed`` and the CRC-32 of each key."""
    return np.random.default_rng([int(seed), *(zlib.crc32(str(k).encode()) for k in keys)])


def _num(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def draw_processing(config: CorpusConfig, key: str, shape) -> str:
    """The processing of image ``key`` (its family and number) of ``shape`` ``(H, W, ...)``: the same
    distribution for every image, real or fake. ``none`` with probability ``p_none``, else in equal shares
    ``jpegQ`` (Q in ``jpeg_quality``), ``resizeS`` (an area downscale by S in ``resize_factor``, two
    decimals) or ``resizeS+jpegQ``. A downscale that would bring the short side under :data:`MIN_SIDE`
    px is left out (``resizeS+jpegQ`` keeps its JPEG; ``resizeS`` becomes ``none``). With ``blur_sigma``
    set, the other shares are ``blurS`` and ``blurS+jpegQ`` (a Gaussian blur of sigma S, two decimals); the
    values drawn for the first three kinds are the same with or without it."""
    rng = _rng(config.seed, "processing", key)
    u, which = rng.random(2)  # every value is drawn for every image, so the streams stay aligned
    q = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
    s = round(float(rng.uniform(*config.resize_factor)), 2)
    if u < config.p_none:
        return "none"
    kinds = ("jpeg", "resize", "resize+jpeg")
    if config.blur_sigma[1] > 0:
        sigma, coin = rng.uniform(*config.blur_sigma), rng.random()
        kinds += ("blur",)
    kind = kinds[min(int(which * len(kinds)), len(kinds) - 1)]
    if kind == "blur":
        return f"blur{_num(max(round(float(sigma), 2), 0.01))}" + (f"+jpeg{q}" if coin < 0.5 else "")
    steps = []
    if "resize" in kind and round(min(shape[0], shape[1]) * s) >= MIN_SIDE:
        steps.append(f"resize{_num(s)}")
    if "jpeg" in kind:
        steps.append(f"jpeg{q}")
    return "+".join(steps) or "none"


def parse_processing(text: str) -> list[tuple[str, float]]:
    """``"resize0.62+jpeg90"`` -> ``[("resize", 0.62), ("jpeg", 90)]``, ``"blur0.8"`` -> ``[("blur", 0.8)]``;
    ``"none"`` -> ``[]``."""
    if text == "none":
        return []
    out = []
    for step in text.split("+"):
        m = re.fullmatch(r"(resize|blur|jpeg)(\d+(?:\.\d+)?)", step)
        if not m:
            raise ValueError(f"bad processing {text!r}: none, or resizeS or blurS and/or jpegQ joined by +")
        out.append((m.group(1), float(m.group(2))))
    return out


def processing_suffix(text: str) -> str:
    """The file suffix an image of this processing is stored with: ``.jpg`` when it ends in JPEG."""
    steps = parse_processing(text)
    return ".jpg" if steps and steps[-1][0] == "jpeg" else ".png"


def processed_file(image: np.ndarray, text: str) -> bytes:
    """The file (PNG, or the JPEG itself) of ``image`` after processing ``text``."""
    from forensics.io.images import png_bytes
    from forensics.io.processing import jpeg_bytes, perturb

    for kind, v in parse_processing(text):
        if kind == "resize":
            image = perturb([image], "resize", v, resize_filter="area")[0]
        elif kind == "blur":
            image = perturb([image], "blur", v)[0]
        else:
            return jpeg_bytes(image, int(v))
    return png_bytes(image)


# ------------------------------------------------------------------------------ real photographs
@dataclass(frozen=True)
class Photo:
    group: str
    image: np.ndarray


@dataclass(frozen=True)
class Crop:
    photo: int
    y: int
    x: int
    h: int
    w: int


def _clean(name: str) -> str:
    return re.sub(r"[,\r\n]", "_", name)


def load_photos(config: CorpusConfig, progress: bool = False) -> tuple[list[Photo], list[dict]]:
    """The real photographs of ``config.real`` at native resolution, each with its group name (the file
    name of a built-in photo, ``FOLDER/relative path`` of a user's), and the files skipped (unreadable, or
    with a side under :data:`MIN_SIDE` px), each also a warning."""
    from forensics.core.errors import warn
    from forensics.io.sources import BUILTIN_SETS, builtin_photos, is_builtin, source_images

    photos, skipped, seen = [], [], set()
    for src in dict.fromkeys(config.real):
        if is_builtin(src):
            sets = BUILTIN_SETS[src]
            items = [(f, im) for f, im, _ in builtin_photos(extra="extra" in sets, wild="wild" in sets)]
        else:
            root = Path(src)
            if not root.exists():
                raise UserError(f"{src}: no such folder of real photos")
            si = source_images(src, progress=progress, desc=f"loading {root.name}")  # (it reports what it skips)
            skipped += si.skipped
            base = root if root.is_dir() else root.parent
            items = [(f"{root.name}/{Path(n).relative_to(base)}" if root.is_dir() else root.name, im)
                     for n, im in zip(si.names, si.images)]
        for name, im in items:
            g = _clean(name)
            if g in seen:  # builtin inside builtin-wide, or the same file named twice
                continue
            if min(im.shape[:2]) < MIN_SIDE:
                why = f"{im.shape[1]}x{im.shape[0]} px, smaller than {MIN_SIDE} px"
                warn(f"{src}: {name}: skipped ({why})")
                skipped.append({"path": f"{src}: {name}", "error": why})
                continue
            seen.add(g)
            photos.append(Photo(g, im))
    if not photos:
        raise UserError(f"no readable real photograph in {', '.join(config.real)}")
    return photos, skipped


def plan_crops(config: CorpusConfig, photos: list[Photo]) -> list[Crop]:
    """``crops_per_photo`` seeded crops of every photograph large enough (sides drawn in ``crop_size``,
    multiples of :data:`MULTIPLE`, positions uniform)."""
    lo = -(-config.crop_size[0] // MULTIPLE) * MULTIPLE
    out = []
    for i, p in enumerate(photos):
        H, W = p.image.shape[:2]
        hi_h, hi_w = min(config.crop_size[1], H) // MULTIPLE * MULTIPLE, min(config.crop_size[1], W) // MULTIPLE * MULTIPLE
        if hi_h < lo or hi_w < lo:
            continue
        rng = _rng(config.seed, "crops", p.group)
        for _ in range(config.crops_per_photo):
            h = int(rng.integers(lo // MULTIPLE, hi_h // MULTIPLE + 1)) * MULTIPLE
            w = int(rng.integers(lo // MULTIPLE, hi_w // MULTIPLE + 1)) * MULTIPLE
            out.append(Crop(i, int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1)), h, w))
    return out


def _crop_image(photos, c: Crop) -> np.ndarray:
    return np.ascontiguousarray(photos[c.photo].image[c.y:c.y + c.h, c.x:c.x + c.w])


# ------------------------------------------------------------------------------ the plan
@dataclass(frozen=True)
class Item:
    """One image to make: its manifest entry, its key (family/number: the seed of its draws) and, for
    content-aligned images, the crop (or photo) it is made from."""

    entry: Entry
    key: str
    crop: Crop | None = None
    chunk: int = 0


def _folder(family: str) -> str:
    return "real" if family == REAL else family.replace(":", "/")


def _item(config, family, i, shape, label, group, crop=None, chunk=0) -> Item:
    key = f"{family}/{i}"
    proc = draw_processing(config, key, shape)
    path = f"{_folder(family)}/{i:05d}{processing_suffix(proc)}"
    return Item(Entry(path, label, family, group, proc), key, crop, chunk)


def plan_corpus(config: CorpusConfig, photos: list[Photo]) -> dict[str, list[Item]]:
    """Every image the build makes, by family (``real`` first), with its path, group and processing."""
    crops = plan_crops(config, photos)
    plan: dict[str, list[Item]] = {REAL: []}
    for c in crops:
        plan[REAL].append(_item(config, REAL, len(plan[REAL]), (c.h, c.w), 0, photos[c.photo].group, c))
    if config.full_photos:
        for i, p in enumerate(photos):
            H, W = p.image.shape[:2]
            plan[REAL].append(_item(config, REAL, len(plan[REAL]), (H, W), 0, p.group, Crop(i, 0, 0, H, W)))
    for fam in config.families():
        kind = fam.split(":")[0]
        if kind == "up" or kind.startswith("ae-"):
            n = config.n_up if kind == "up" else config.n_ae
            if n and not crops:
                raise UserError(f"no photograph is large enough for a crop of {config.crop_size[0]} px, so there are "
                                f"no crops to make the {fam} images from")
            order = _rng(config.seed, "pick", fam).permutation(len(crops)) if crops else []
            picks = [crops[order[i % len(crops)]] for i in range(n)]
            plan[fam] = [_item(config, fam, i, (c.h, c.w), 1, photos[c.photo].group, c) for i, c in enumerate(picks)]
        else:
            n, size = (config.n_gan, config.gan_size) if kind.startswith("gan-") else (config.n_diffusion,
                                                                                     config.diffusion_size)
            plan[fam] = [_item(config, fam, i, (size, size), 1, "-", chunk=i // CHUNK) for i in range(n)]
    return plan


# ------------------------------------------------------------------------------ makers
def _slug(family: str) -> str:
    return family.replace(":", "_")


def _torch_seed(config, *keys) -> int:
    return int(_rng(config.seed, *keys).integers(2 ** 62))


def up_image(crop: np.ndarray, family: str, seed: int) -> np.ndarray:
    """The resampling chain ``family`` (``up:G-xF``) applied to one crop (sides multiples of F)."""
    from forensics.generators.simulate import simulate_family
    from forensics.io.processing import perturb

    g, f = parse_up_family(family)
    method = UP_METHODS[g]
    if method is None:  # area down, then a plain upscale back to the crop's size
        small = perturb([crop], "resize", 1 / f, resize_filter="area")[0]
        return perturb([small], "resize", f, resize_filter=g)[0]
    return simulate_family(crop[None], seed=seed, methods=(method,), stages=(f.bit_length() - 1,), chunk=1)[0]


def source_run_config(config: CorpusConfig, family: str):
    """The :class:`~forensics.generators.source_config.SourceConfig` of an ``ae-*``, ``ddpm`` or ``ldm``
    family's run: the tiny source preset on ``train_data`` (an ldm's autoencoder trains ``ae_steps``)."""
    from forensics.generators.source_config import SourceConfig
    from forensics.generators.sources import source_config

    diffusion = family.split(":")[0].split("-")[0] in ("ddpm", "ldm")
    base = SourceConfig.tiny("ae-kl", data=config.train_data, seed=config.seed, device=config.device,
                             size=config.diffusion_size if diffusion else config.ae_size,
                             steps=config.diffusion_steps if diffusion else config.ae_steps)
    sc = source_config(family, base)
    steps = max(sc.steps, 1)
    sc = sc.replace(sample_every=steps, checkpoint_every=max(steps // 4, 1))
    if diffusion:  # the run's sample grid and the corpus's samples: config.ddim_steps
        sc = sc.with_params(**{**config.diffusion_params, "ddim_steps": config.ddim_steps})
    if sc.kind == "ldm":
        sc = sc.replace(first_stage=sc.first_stage.replace(steps=config.ae_steps))
    return sc


def gan_run_config(config: CorpusConfig, family: str):
    """The :class:`~forensics.generators.config.GanConfig` of a ``gan-*`` family's run: the tiny GAN preset
    on ``train_data``, without the FID schedule."""
    from forensics.generators.config import GanConfig

    gan, objective, quant, spec = parse_gan_family(family)
    steps = max(config.gan_steps, 1)
    return GanConfig.tiny(gan, objective=objective, quant=quant, last_layer=spec, data=config.train_data,
                          size=config.gan_size, steps=config.gan_steps, seed=config.seed, device=config.device,
                          fid_schedule=None, sample_every=steps, checkpoint_every=max(steps // 4, 1))


def _train_source(config: CorpusConfig, family: str, out: Path, progress: bool):
    """The trained (or cached) source of an ``ae-*``, ``ddpm`` or ``ldm`` family, in ``out/.runs/``."""
    from forensics.generators.runs import CHECKPOINT
    from forensics.generators.sources import Source

    src = Source(source_run_config(config, family))
    run = out / RUNS / _slug(family)
    if (run / CHECKPOINT).is_file():  # trained by an earlier build (the same config: checked up front)
        done = Source.load(run, config.device)
        if done.task.step >= src.config.steps:
            return done
    src.train(run, resume=(run / CHECKPOINT).is_file() or (run / "first_stage" / CHECKPOINT).is_file(),
              progress=progress)
    return src


def _train_gan(config: CorpusConfig, family: str, out: Path, progress: bool):
    """The trained (or cached) GAN of a ``gan-*`` family: its task (for sampling)."""
    from forensics.generators.runs import CHECKPOINT, load_run
    from forensics.generators.trainer import train_gan

    run = out / RUNS / _slug(family)
    if (run / CHECKPOINT).is_file():
        task, _ = load_run(run, config.device)
        if task.step >= config.gan_steps:
            return task
    train_gan(gan_run_config(config, family), run, resume=(run / CHECKPOINT).is_file(), progress=progress)
    return load_run(run, config.device)[0]


def _make(config: CorpusConfig, family: str, items: list[Item], photos, out: Path, progress: bool):
    """``(item, image)`` for the ``items`` of ``family`` (the ones still missing)."""
    kind = family.split(":")[0]
    if family == REAL:
        for it in items:
            yield it, _crop_image(photos, it.crop)
    elif kind == "up":
        for it in items:
            yield it, up_image(_crop_image(photos, it.crop), family, _torch_seed(config, "up", it.key))
    elif kind.startswith("ae-"):
        src = _train_source(config, family, out, progress)
        for it in items:
            yield it, src.reconstruct(_crop_image(photos, it.crop)[None])[0]
    else:
        from forensics.generators.runs import sample_images

        if kind.startswith("gan-"):
            task = _train_gan(config, family, out, progress)
            draw = lambda m, seed: next(sample_images(task, m, seed))
        else:
            src = _train_source(config, family, out, progress)
            draw = lambda m, seed: src.sample(m, seed)  # (DDIM with config.ddim_steps)
        n = config.n_gan if kind.startswith("gan-") else config.n_diffusion
        for c in sorted({it.chunk for it in items}):
            m = min(CHUNK, n - c * CHUNK)
            images = draw(m, _torch_seed(config, "chunk", family, c))
            for it in items:
                if it.chunk == c:
                    yield it, images[int(it.key.rsplit("/", 1)[1]) - c * CHUNK]


# ------------------------------------------------------------------------------ the folder
def _check_folder(out: Path, config: CorpusConfig) -> bool:
    """Whether ``out`` holds an earlier build of ``config`` (resume); a new or empty folder is fine; any
    other non-empty folder, or one holding a corpus of other settings, is refused."""
    from forensics.core.checks import read_json_object

    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: exists and is not a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return False
    cf = out / "config.json"
    if not cf.is_file():
        raise UserError(f"{out}: the folder is not empty and holds no corpus (no config.json); choose an empty "
                        "or new folder")
    d = read_json_object(cf, "config")
    if d.get("command") != "build-corpus" or not isinstance(d.get("config"), dict):
        raise UserError(f"{out}: its config.json was not written by build-corpus; choose an empty or new folder")
    try:
        old = CorpusConfig.from_dict(d["config"], complete=True)
    except ValueError as e:
        raise UserError(f"{out}: its config.json holds no readable corpus config ({e})") from None
    diff = [f.name for f in dataclasses.fields(CorpusConfig) if getattr(old, f.name) != getattr(config, f.name)]
    if diff:
        raise UserError(f"{out} holds a corpus built with other settings ({', '.join(diff)}); build into another "
                        "folder, or with the same settings to resume")
    return True


def build_corpus(config: CorpusConfig, out, progress: bool = True, threads: int | None = None) -> dict:
    """Build (or resume) the corpus of ``config`` in folder ``out``: the images, ``manifest.csv`` (at the
    end) and ``config.json``; returns a summary (counts per family, images written, seconds).

    The networks are small: torch runs them on ``threads`` threads (default ``FORENSICS_THREADS``, else
    one: on a shared or busy CPU one thread was 8x faster than two for these nets, and never much slower)."""
    import torch

    from forensics.core.parsing import threads_setting

    if not isinstance(config, CorpusConfig):
        raise TypeError(f"build_corpus needs a CorpusConfig, got {type(config).__name__}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads or threads_setting() or 1)
    try:
        return _build(config, Path(out), progress)
    finally:
        torch.set_num_threads(before)


def _build(config: CorpusConfig, out: Path, progress: bool) -> dict:
    from forensics.core.progress import bar
    from forensics.io.corpus import write_manifest
    from forensics.io.files import atomic_write_bytes, write_config

    t0 = time.perf_counter()
    resumed = _check_folder(out, config)
    photos, skipped = load_photos(config, progress)
    plan = plan_corpus(config, photos)
    info = {"command": "build-corpus", "config": config.to_dict(), "complete": False,
            "photos": {p.group: list(p.image.shape[:2]) for p in photos}, "skipped": skipped,
            "runs": f"{RUNS}/ (the trained autoencoders, GANs and diffusion models, reused by a rerun)"}
    write_config(out, info)
    missing = {f: [it for it in items if not (out / it.entry.path).is_file()] for f, items in plan.items()}
    written, seconds = {}, {}
    with bar(total=sum(map(len, missing.values())), desc="build-corpus", enabled=progress) as pb:
        for fam, items in missing.items():
            if not items:
                continue
            t = time.perf_counter()
            pb.set_postfix(family=fam, refresh=False)
            for it, image in _make(config, fam, items, photos, out, progress):
                atomic_write_bytes(out / it.entry.path, processed_file(image, it.entry.processing))
                pb.update(1)
            written[fam], seconds[fam] = len(items), round(time.perf_counter() - t, 2)
    entries = [it.entry for items in plan.values() for it in items]
    write_manifest(out, entries)
    counts = {f: len(items) for f, items in plan.items()}
    summary = {"images": len(entries), "real": counts[REAL], "fake": len(entries) - counts[REAL],
               "counts": counts, "written": written, "seconds_per_family": seconds, "resumed": resumed,
               "seconds": round(time.perf_counter() - t0, 2)}
    write_config(out, {**info, "complete": True, **summary})
    return summary
