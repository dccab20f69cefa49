"""A small CNN detector in the manner of CNNDetection (Wang et al., CVPR 2020), sized for a CPU.

Wang et al. fine-tune a ResNet-50 on ProGAN vs real at 256 px with random Gaussian blur and
JPEG re-compression; here a few conv blocks learn from scratch at 32-128 px in minutes:

    input ─ [Conv3x3 (no bias) ─ BatchNorm ─ ReLU ─ AvgPool2] × len(channels)   (the backbone)
          ─ Conv1x1 ─ ReLU ─ global average ─ Linear → one logit              (the head)

``input`` is ``pixels`` (RGB scaled to [-1, 1]) or ``spectrum`` (the centred log-magnitude
spectrum of the grey image, in dB, standardised per frequency bin with the training set's
mean and spread), so relevance lands directly on frequency bins. Every layer has an LRP rule
in :mod:`forensics.detectors.lrp` (average pooling rather than max pooling for that reason).

Training follows CNNDetection's augmentation: each training image is blurred (σ uniform in
``blur_sigma``) with probability ``blur_prob`` and JPEG re-encoded (quality uniform in
``jpeg_quality``) with probability ``jpeg_prob``, and flipped left-right half the time.
With ``guidance > 0`` it is **explanation-guided** (Sun et al., arXiv 2007.08790): the head's
LRP relevance of the backbone features re-weights them by ``1 + R̂`` and the loss is
``L + guidance · L_LRP``; scoring is always the plain forward pass.

The estimator follows scikit-learn (``BaseEstimator`` + ``ClassifierMixin``: ``fit(X, y)`` with
uint8 images ``(N, H, W, 3)`` and y = 1 for generated, ``predict``, ``predict_proba``,
``decision_function``, ``get_params``/``clone``). Its model file is ``model.json`` (config,
threshold, provenance) + ``model.safetensors`` (weights): loading executes no code.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from forensics.core.config import Config, Count, NonNegative, Positive, Probability, Range, Seed
from forensics.detectors.base import RealFakeContract
from forensics.detectors.formats import CNN_FORMAT

FORMAT = CNN_FORMAT
FORMAT_VERSION = 1
INPUTS = ("pixels", "spectrum")


@dataclasses.dataclass(frozen=True)
class CNNConfig(Config):
    """Settings of :class:`CNNDetector` (architecture, training, augmentation)."""

    size: Annotated[int, Range(8)] = 32  #: image side the network is trained and scored at
    input: str = "pixels"  #: pixels | spectrum
    channels: Annotated[tuple[int, ...], Range(1)] = (16, 32, 64)  #: conv blocks, each halving the side
    epochs: Annotated[int, Range(0)] = 15
    batch: Count = 64
    lr: Positive = 2e-3
    weight_decay: NonNegative = 1e-4
    blur_prob: Probability = 0.1  #: CNNDetection's "blur_jpg_prob0.1" setting
    #: σ range in pixels (CNNDetection: 0-3 at 256 px)
    blur_sigma: Annotated[tuple[float, float], Range(0)] = (0.0, 1.0)
    jpeg_prob: Probability = 0.1
    jpeg_quality: Annotated[tuple[int, int], Range(1, 100)] = (30, 100)
    flip: bool = True
    guidance: NonNegative = 0.0  #: λ of explanation-guided training (0: plain training)
    seed: Seed = 0
    threshold: Probability = 0.5  #: P(generated) above which predict says 1

    def validate(self):
        if self.size % (2 ** len(self.channels)):
            raise ValueError(f"size {self.size} must be >= 8 and divisible by 2^{len(self.channels)} "
                             f"(one halving per conv block)")
        if self.input not in INPUTS:
            raise ValueError(f"unknown CNN input {self.input!r}; choose from {', '.join(INPUTS)}")
        if not self.channels:
            raise ValueError("channels must be non-empty")
        if len(self.blur_sigma) != 2 or self.blur_sigma[0] > self.blur_sigma[1]:
            raise ValueError(f"blur sigma range {self.blur_sigma} is not 0 <= low <= high")
        if len(self.jpeg_quality) != 2 or self.jpeg_quality[0] > self.jpeg_quality[1]:
            raise ValueError(f"JPEG quality range {self.jpeg_quality} is not 1 <= low <= high <= 100")

    @classmethod
    def quick(cls, size: int = 32, **kw) -> "CNNConfig":
        """A preset that trains in well under a minute on one core at 32 px."""
        return cls(size=size, channels=(8, 16, 32), epochs=8, **kw)


# ---------------------------------------------------------------------------------- network
def build_network(cfg: CNNConfig):
    """``(backbone, head)`` as two ``nn.Sequential`` for ``cfg`` (float32, initialised from torch's RNG)."""
    from torch import nn

    cin = 3 if cfg.input == "pixels" else 1
    blocks: list = []
    for c in cfg.channels:
        blocks += [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(), nn.AvgPool2d(2)]
        cin = c
    head = [nn.Conv2d(cin, cin, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1)]
    return nn.Sequential(*blocks), nn.Sequential(*head)


def augment(images: np.ndarray, cfg: CNNConfig, rng: np.random.Generator) -> np.ndarray:
    """CNNDetection-style random blur, JPEG and flip of uint8 ``(N, H, W, 3)`` images (a copy)."""
    import cv2

    out = images.copy()
    n = len(out)
    blur = rng.random(n) < cfg.blur_prob
    sig = rng.uniform(*cfg.blur_sigma, size=n)
    jpeg = rng.random(n) < cfg.jpeg_prob
    q = rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1, size=n)
    for i in np.flatnonzero(blur & (sig > 0)):
        out[i] = cv2.GaussianBlur(out[i], (0, 0), float(sig[i]), borderType=cv2.BORDER_REFLECT)
    for i in np.flatnonzero(jpeg):
        ok, buf = cv2.imencode(".jpg", out[i][..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(q[i])])
        out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    if cfg.flip:
        f = rng.random(n) < 0.5
        out[f] = out[f, :, ::-1]
    return out


def guided_weights(relevance, eps: float = 1e-12):
    """``1 + R̂``: relevance of ``(N, C, h, w)`` features divided, at each position, by its
    largest magnitude over channels (so R̂ in [-1, 1] and the weight in [0, 2])."""
    m = relevance.abs().amax(dim=1, keepdim=True)
    return 1.0 + relevance / (m + eps)


def initial_relevance(logit, y, beta: float = 4.0, eps: float = 0.01):
    """Sun et al.'s output relevance ``log(β(p + ε) / (1 + ε − p))`` with ``p`` the
    probability of the true class (``y`` = 1 generated, 0 real) under the single logit."""
    import torch

    p = torch.sigmoid(torch.where(y > 0.5, logit, -logit))
    return torch.log(beta * (p + eps) / (1 + eps - p))


class CNNDetector(RealFakeContract, ClassifierMixin, BaseEstimator):
    """Small CNN: real (0) vs generated (1) from uint8 images; see the module notes."""

    name = "cnn"

    def __init__(self, config: CNNConfig | None = None):
        self.config = config

    # ------------------------------------------------------------------ helpers
    @property
    def min_size(self) -> int:
        """The image side the network takes (``detect`` crops to it)."""
        return self.cfg.size

    @property
    def cfg(self) -> CNNConfig:
        return self.config if self.config is not None else CNNConfig()

    def _check_images(self, X) -> np.ndarray:
        X = np.asarray(X)
        s = self.cfg.size
        if X.ndim != 4 or X.shape[-1] != 3 or X.dtype != np.uint8:
            raise ValueError(f"expected uint8 images of shape (N, {s}, {s}, 3), got {X.dtype} {X.shape}")
        if X.shape[1:3] != (s, s):
            raise ValueError(f"images are {X.shape[2]}x{X.shape[1]}, the network takes {s}x{s} "
                             f"(crop or resize them first)")
        return X

    def _raw_inputs(self, X: np.ndarray) -> np.ndarray:
        """Network input before standardisation: ``(N, C, S, S)`` float32."""
        if self.cfg.input == "pixels":
            return (X.astype(np.float32) / 127.5 - 1.0).transpose(0, 3, 1, 2)
        from forensics.spectral.spectrum import spectrum

        return spectrum(X, "log").astype(np.float32)[:, None]

    def inputs(self, X) -> "torch.Tensor":  # noqa: F821
        """The network's input tensor for uint8 images ``X`` (what the relevance maps refer to)."""
        import torch

        x = self._raw_inputs(self._check_images(X))
        if self.cfg.input == "spectrum":
            x = (x - self.spec_mean_) / self.spec_std_
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def _new_network(self):
        import torch

        torch.manual_seed(self.cfg.seed)
        self.backbone_, self.head_ = build_network(self.cfg)

    @property
    def layers(self) -> list:
        """All modules in order (backbone then head), for :func:`forensics.detectors.lrp.lrp`."""
        return list(self.backbone_) + list(self.head_)

    # ------------------------------------------------------------------ scikit-learn API
    def fit(self, X, y, progress: bool = False) -> "CNNDetector":
        """Train from scratch on uint8 images ``X`` with labels ``y`` (1 = generated)."""
        y = np.asarray(y).astype(np.int64).ravel()
        X = self._check_images(X)
        if len(X) != len(y):
            raise ValueError(f"{len(X)} images but {len(y)} labels")
        if set(np.unique(y)) != {0, 1}:
            raise ValueError("fit needs both real (0) and generated (1) images")
        if self.cfg.input == "spectrum":
            raw = self._raw_inputs(X)
            self.spec_mean_ = raw.mean(axis=0, keepdims=True)[0:1]
            self.spec_std_ = raw.std(axis=0, keepdims=True)[0:1] + 1e-3
        self._new_network()
        self.classes_ = np.array([0, 1])
        self.n_train_ = {"real": int((y == 0).sum()), "generated": int((y == 1).sum())}
        self.train(X, y, self.cfg.epochs, progress=progress)
        self.threshold_ = self.cfg.threshold
        return self

    def train(self, X, y, epochs: int, lr: float | None = None, seed_offset: int = 0,
              progress: bool = False, freeze_bn: bool = False, guidance: float | None = None) -> list[float]:
        """Run ``epochs`` more epochs of (possibly guided) training on ``X, y`` from the current
        weights (fine-tuning when the network is already fitted); returns the mean loss per epoch.

        ``freeze_bn`` keeps the batch-norm statistics fixed (for few-shot fine-tuning on a
        handful of images); ``guidance`` overrides the config's λ for this call."""
        import torch

        from forensics.core.progress import bar
        from forensics.detectors.lrp import lrp

        cfg = self.cfg
        lam = cfg.guidance if guidance is None else guidance
        X = self._check_images(X)
        y = np.asarray(y).astype(np.int64).ravel()
        rng = np.random.default_rng([cfg.seed, 1 + seed_offset])
        params = list(self.backbone_.parameters()) + list(self.head_.parameters())
        opt = torch.optim.Adam(params, lr=lr or cfg.lr, weight_decay=cfg.weight_decay)
        bce = torch.nn.BCEWithLogitsLoss()
        yt_all = torch.from_numpy(y.astype(np.float32))
        losses = []
        # batch norm statistics need more than one image; a single image trains in eval mode
        train_bn = len(X) > 1 and not freeze_bn
        for _ in bar(range(epochs), total=epochs, desc="training CNN", enabled=progress):
            self.backbone_.train(train_bn)
            self.head_.train()
            order = rng.permutation(len(X))
            xa = self.inputs(augment(X[order], cfg, rng))
            ya = yt_all[order]
            tot = 0.0
            for s in range(0, len(X), cfg.batch):
                xb, yb = xa[s:s + cfg.batch], ya[s:s + cfg.batch]
                feats = self.backbone_(xb)
                logit = self.head_(feats)[:, 0]
                loss = bce(logit, yb)
                if lam > 0:
                    with torch.no_grad():
                        r0 = initial_relevance(logit.detach(), yb)[:, None]
                    R = lrp(self.head_, feats.detach(), r0)
                    w = guided_weights(R)
                    loss = loss + lam * bce(self.head_(feats * w)[:, 0], yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                tot += float(loss.detach()) * len(xb)
            losses.append(tot / len(X))
        self.backbone_.eval()
        self.head_.eval()
        return losses

    def decision_function(self, X, batch: int = 512) -> np.ndarray:
        """The logit per image (positive toward generated)."""
        import torch

        self._check_fitted()
        X = self._check_images(X)
        out = np.empty(len(X), np.float64)
        with torch.no_grad():
            for s in range(0, len(X), batch):
                out[s:s + batch] = self.head_(self.backbone_(self.inputs(X[s:s + batch])))[:, 0].numpy()
        return out

    def predict_proba(self, X) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-np.clip(self.decision_function(X), -60, 60)))
        return np.stack([1.0 - p, p], axis=1)

    def _check_fitted(self):
        if not hasattr(self, "head_"):
            raise ValueError("the CNN detector is not fitted")

    # ------------------------------------------------------------------ model files
    def save(self, folder, extra: dict | None = None) -> Path:
        """Write ``model.json`` + ``model.safetensors`` into ``folder``."""
        from safetensors.torch import save

        from forensics.io.files import atomic_write_bytes, write_json

        self._check_fitted()
        folder = Path(folder)
        tensors = {f"backbone.{k}": v.detach().contiguous() for k, v in self.backbone_.state_dict().items()}
        tensors.update({f"head.{k}": v.detach().contiguous() for k, v in self.head_.state_dict().items()})
        if self.cfg.input == "spectrum":
            import torch

            tensors["spec_mean"] = torch.from_numpy(np.ascontiguousarray(self.spec_mean_))
            tensors["spec_std"] = torch.from_numpy(np.ascontiguousarray(self.spec_std_))
        atomic_write_bytes(folder / "model.safetensors", save(tensors))
        write_json(folder / "model.json", {
            "format": FORMAT, "format_version": FORMAT_VERSION, "class": type(self).__name__,
            "name": self.name, "config": self.cfg.to_dict(), "threshold": self.threshold_,
            # detect crops every image to the network's side (the policy train-cnn trained with)
            "params": {"preprocess": f"crop:{self.cfg.size}"},
            "n_train": getattr(self, "n_train_", None), **(extra or {})})
        return folder

    @classmethod
    def load(cls, folder) -> "CNNDetector":
        """Load a folder written by :meth:`save` (no code runs: JSON + safetensors)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        mj, mw = folder / "model.json", folder / "model.safetensors"
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: model folder not found")
        if not mj.is_file() or not mw.is_file():
            raise ValueError(f"{folder}: not a CNN detector model (needs model.json and model.safetensors)")
        try:
            meta = json.loads(mj.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ValueError(f"{mj}: unreadable model description ({e})") from None
        if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{mj}: not a version-{FORMAT_VERSION} CNN detector model")
        det = cls(CNNConfig.from_dict(meta["config"]))
        det._new_network()
        try:
            t = load_file(str(mw))
            bad = [k for k, v in t.items() if v.is_floating_point() and not bool(v.isfinite().all())]
            if bad:
                raise ValueError(f"tensor {bad[0]!r} holds non-finite values (NaN or infinity)")
            det.backbone_.load_state_dict({k[9:]: v for k, v in t.items() if k.startswith("backbone.")})
            det.head_.load_state_dict({k[5:]: v for k, v in t.items() if k.startswith("head.")})
            if det.cfg.input == "spectrum":
                det.spec_mean_, det.spec_std_ = t["spec_mean"].numpy(), t["spec_std"].numpy()
        except Exception as e:  # damaged or mismatched weights: one clear line
            raise ValueError(f"{folder}: incompatible or damaged weights ({type(e).__name__}: {e})") from None
        det.backbone_.eval()
        det.head_.eval()
        det.classes_ = np.array([0, 1])
        det.threshold_ = float(meta["threshold"])
        det.n_train_ = meta.get("n_train")
        det.meta_ = meta
        return det

    # ------------------------------------------------------------------ explanations
    def relevance(self, X, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
        """LRP relevance of every network-input element for the logit (positive: evidence for
        generated): ``(inputs, relevance)``, both ``(N, C, S, S)``; each image's relevance sums
        to its logit (up to the biases' share, see :mod:`forensics.detectors.lrp`)."""
        from forensics.detectors.lrp import lrp

        self._check_fitted()
        x = self.inputs(X).double()
        layers = [m.double() for m in self.layers]
        try:
            R = lrp(layers, x, None, eps=eps)
        finally:
            for m in layers:
                m.float()
        return x.numpy(), R.numpy()
