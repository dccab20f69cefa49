"""``forensics explain``: LRP relevance of a detector's verdict, per image, in image space
and per radial frequency.

Models explained (rules in :mod:`forensics.detectors.lrp`; relevance is of the **logit**,
so positive relevance is evidence for *generated*, negative for *real*, and an image's
relevances add up to its logit):

* the small CNN detector (``model.json`` + ``model.safetensors``, :mod:`forensics.detectors.cnn`):
  - ``pixels`` input: a relevance map over the image (summed over colour channels); its
    **per-frequency relevance** comes from a virtual inverse-DFT layer in front of the
    network (DFT-LRP, Vielhaben et al. 2023): each pixel is the sum of its Fourier
    components, and the pixel's relevance is shared among them in proportion to their
    contribution to it, ``R_k = Re(X_k · ifft2(R/x)_k)``. Unlike the spectrum *of* the
    heat map, this says which frequencies of the input the verdict rests on, and it adds
    up to the same total;
  - ``spectrum`` input: the network sees the centred log spectrum, so LRP lands directly
    on frequency bins (the map is the frequency plane; no image-space map exists, the
    spectrum having no phase);
  then the frequency plane is summed over integer-radius rings (ring r = r/S cycles/pixel).
* a spectral detector with an ``mlp`` or ``lr`` classifier (``forensics train-detector``):
  relevance per (standardised) feature; for ``durall`` features each feature *is* an
  azimuthal-spectrum sample, so that is the per-frequency relevance directly. No image
  map (the features are not a linear function of the pixels).

Outputs in ``out``: ``summary.csv`` (one row per file, unreadable or too small files with
their reason), ``radial.csv`` (relevance per frequency, one row per explained image),
``relevance/NAME.npz`` (arrays), ``maps/NAME.png`` (heat maps: image, relevance map,
frequency-plane relevance; blue real, red generated), ``radial.png`` (mean relevance
per frequency) and ``config.json``.

For the counterexample report, :func:`explain_groups` explains a fitted detector (in memory:
:func:`explainer_for`) on groups of images or feature rows and summarises each group: mean ±
std relevance per frequency, mean logit, share called generated, and the band (:data:`BANDS`)
carrying most relevance.
"""
from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path
from typing import Annotated

import numpy as np

from forensics.core.config import Config, Positive, Range
from forensics.detectors.store import load_model
from forensics.io.images import png_bytes

#: spectral classifiers with an LRP rule (a network: the MLP, or logistic regression as one linear layer)
EXPLAINABLE_CLASSIFIERS = ("mlp", "lr")
#: feature sets whose features are azimuthal-spectrum samples (relevance per feature = per frequency)
RADIAL_FEATURES = ("durall+", "durall")
#: what the features of a feature set without a frequency axis stand for
FEATURE_LABELS = {"dzanic": ("b (decay exponent)", "y_i (start of fit)", "y_f (end of fit)"),
                  "dzanic+": ("b (decay exponent)", "y_i (start of fit)", "y_f (end of fit)")}
SUMMARY_COLUMNS = ["path", "status", "error", "p_generated", "label", "logit", "relevance_sum",
                   "low_frequency_relevance", "high_frequency_relevance", "peak_frequency", "files"]
CHUNK = 64


@dataclasses.dataclass(frozen=True)
class ExplainConfig(Config):
    model: str
    paths: tuple[str, ...]
    out: str
    preprocess: str | None = None  #: default: crop:S for a CNN (resizing would blur its traces), the model's policy otherwise
    maps: bool = True  #: write the PNG heat maps
    #: cycles/pixel from which relevance counts as high-frequency
    high_frequency: Annotated[float, Range(0, 0.75, lo_open=True)] = 0.25
    eps: Positive = 1e-6  #: the ε of the linear layers' rule

    def validate(self):
        if not self.paths:
            raise ValueError("no images to explain")


# ---------------------------------------------------------------------------- explainers
class CNNExplainer:
    """LRP of a fitted :class:`~forensics.detectors.cnn.CNNDetector` (see :func:`load_explainer`)."""

    axis = "frequency"

    def __init__(self, det, eps: float):
        self.det = det
        self.eps = eps
        s = self.det.cfg.size
        self.name = f"cnn-{self.det.cfg.input}"
        self.default_policy = f"crop:{s}"
        self.size = s
        self.freqs = np.arange(len(_ring_counts(s))) / s

    def check(self, img: np.ndarray) -> str | None:
        if img.shape[:2] != (self.size, self.size):
            return f"image is {img.shape[1]}x{img.shape[0]} after preprocessing; the model takes {self.size}x{self.size}"
        return None

    def _relevance(self, images: np.ndarray):
        """``(input, relevance, frequency-plane relevance, per-ring relevance, logit)`` of a batch."""
        from forensics.detectors.lrp import frequency_relevance, radial_relevance

        x, R = self.det.relevance(images, eps=self.eps)
        logit = self.det.decision_function(images)
        if self.det.cfg.input == "pixels":
            Rk = frequency_relevance(x, R).sum(axis=1)  # per channel, then summed
        else:  # the input is already the centred frequency plane
            Rk = R[:, 0]
        return x, R, Rk, radial_relevance(Rk), logit

    def radial(self, images: np.ndarray, shape=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(frequencies, per-ring relevance (N, F), logits (N,))`` of uint8 images, in chunks."""
        rs, ls = [], []
        for s in range(0, len(images), CHUNK):
            *_, radial, logit = self._relevance(np.asarray(images[s:s + CHUNK]))
            rs.append(radial)
            ls.append(logit)
        return self.freqs, np.concatenate(rs), np.concatenate(ls)

    def explain(self, images: np.ndarray) -> list[dict]:
        x, R, Rk, radial, logit = self._relevance(images)
        spatial = R.sum(axis=1) if self.det.cfg.input == "pixels" else None
        out = []
        for i in range(len(images)):
            arrays = {"logit": np.float64(logit[i]), "input": x[i], "relevance": R[i], "frequency_relevance": Rk[i],
                      "radial_relevance": radial[i], "radial_frequency": self.freqs}
            if spatial is not None:
                arrays["image_relevance"] = spatial[i]
            out.append(arrays)
        return out

    def panels(self, image: np.ndarray, a: dict) -> list[np.ndarray]:
        p = [image]
        if "image_relevance" in a:
            p.append(_heat(a["image_relevance"]))
        else:
            p.append(_grey(a["input"][0]))
        p.append(_heat(a["frequency_relevance"]))
        return p


class SpectralExplainer:
    """LRP of a fitted spectral detector with an ``mlp`` or ``lr`` classifier (see :func:`load_explainer`)."""

    def __init__(self, det, eps: float):
        self.det = det
        est = getattr(self.det, "classifier", None)
        if est not in EXPLAINABLE_CLASSIFIERS:
            raise ValueError(f"{det.name}: LRP needs a network: a CNN model or a spectral detector with an mlp or "
                             f"lr classifier (this one uses {est!r})")
        self.features = self.det.features
        self.axis = "frequency" if self.features in RADIAL_FEATURES else "feature"
        self.name = self.det.name
        self.default_policy = str(self.det.get_params().get("preprocess", "none"))
        self.eps = eps
        self.net = self._network()

    def _network(self):
        import torch
        from torch import nn

        from forensics.detectors.lrp import mlp_from_state

        a = {k[4:]: v for k, v in self.det.state_arrays_.items() if k.startswith("est_")}
        if self.det.classifier == "mlp":
            return mlp_from_state(a, int(self.det.state_meta_["estimator"]["layers"]))
        lin = nn.Linear(len(a["coef"]), 1).double()
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(a["coef"])[None])
            lin.bias.copy_(torch.as_tensor(a["b"]))
        return nn.Sequential(lin).eval()

    def check(self, img: np.ndarray) -> str | None:
        m = getattr(self.det, "min_size", 1)
        if min(img.shape[:2]) < m:
            return f"image is {img.shape[1]}x{img.shape[0]}; {self.name} needs at least {m}x{m}"
        return None

    def _freqs(self, h: int, w: int, n: int) -> np.ndarray | None:
        """The frequency (cycles/pixel) of each feature, for feature sets that sample the azimuthal spectrum."""
        if self.features == "durall+":  # the toolkit's durall: rings about DC, resampled over the ring range
            from forensics.spectral.spectrum import half_geometry

            n_rings = len(half_geometry(h, w)[2])
            return np.linspace(1.0, n_rings - 2.0, n) / min(h, w)  # durall's resampled ring positions
        if self.features == "durall":  # published: floor rings about ((W-1)/2, (W-1)/2), first and last dropped
            c = (w - 1) / 2.0
            yy, xx = np.indices((h, w))
            present = np.unique(np.floor(np.hypot(xx - c, yy - c)).astype(np.int64))
            lo, hi = present[1], present[-2]
            return (np.linspace(lo, hi, n) + 0.5) / min(h, w)  # a floor ring r spans radii [r, r + 1)
        return None

    def relevance(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(standardised features, relevance, logit)`` for a batch of raw feature rows ``(N, D)``
        (rows with undefined features get NaN throughout)."""
        import torch

        from forensics.detectors.lrp import lrp

        X = (np.asarray(features, dtype=np.float64) - self.det.mean_) / self.det.scale_
        R = np.full_like(X, np.nan)
        logit = np.full(len(X), np.nan)
        ok = np.isfinite(X).all(axis=1)
        if ok.any():
            xt = torch.from_numpy(np.ascontiguousarray(X[ok]))
            with torch.no_grad():
                logit[ok] = self.net(xt)[:, 0].numpy()
            R[ok] = lrp(self.net, xt, eps=self.eps).numpy()
        return X, R, logit

    def radial(self, features: np.ndarray, shape) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """``(frequencies or None, relevance per feature (N, D), logits (N,))`` of raw feature rows of
        images of ``shape`` (H, W); the frequencies when the features are azimuthal-spectrum samples."""
        _, R, logit = self.relevance(features)
        return self._freqs(int(shape[0]), int(shape[1]), R.shape[1]), R, logit

    def feature_labels(self) -> list[str]:
        return list(FEATURE_LABELS.get(self.features, [f"{self.features}_{i}" for i in range(len(self.det.mean_))]))

    def explain(self, images) -> list[dict]:
        out = []
        for img in images:  # features of differently sized images
            X, R, logit = self.relevance(self.det.transform(img[None]))
            if not np.isfinite(logit).all():
                out.append({"error": "the spectral features are undefined for this image"})
                continue
            R = R[0]
            a = {"logit": np.float64(logit[0]), "input": X[0], "relevance": R}
            f = self._freqs(img.shape[0], img.shape[1], len(R))
            if f is not None:
                a["radial_relevance"], a["radial_frequency"] = R, f
            out.append(a)
        return out

    def panels(self, image, a) -> list[np.ndarray]:
        return [image]


def load_explainer(folder, eps: float = 1e-6):
    """The explainer for the model in ``folder`` (a CNN or an mlp/lr spectral detector), loaded
    through the model store (:func:`forensics.detectors.store.load_model`)."""
    det = load_model(folder)
    ex = explainer_for(det, eps)
    if ex is None:
        est = getattr(det, "classifier", None)
        raise ValueError(f"{folder}: LRP needs a network: a CNN model or a spectral detector with an mlp or "
                         f"lr classifier (this one {f'uses {est!r}' if est else f'is a {type(det).__name__}'})")
    return ex


def explainer_for(det, eps: float = 1e-6):
    """The explainer of a fitted detector object, or ``None`` when it has no LRP rule (k-NN, SVM, ...)."""
    from forensics.detectors.cnn import CNNDetector

    if isinstance(det, CNNDetector):
        return CNNExplainer(det, eps)
    if getattr(det, "classifier", None) in EXPLAINABLE_CLASSIFIERS and hasattr(det, "state_arrays_"):
        return SpectralExplainer(det, eps)
    return None


def is_explainable(name: str) -> bool:
    """Whether the registered detector ``name`` can be explained (decided from its name, nothing trained)."""
    from forensics.detectors import IMAGE_DETECTORS, make_detector

    if name in IMAGE_DETECTORS:
        return name in ("cnn", "cnn-spectrum")
    return getattr(make_detector(name), "classifier", None) in EXPLAINABLE_CLASSIFIERS


# ------------------------------------------------------------------- explanations of groups
#: edges (cycles/pixel) of the frequency bands the counterexample report names; the last band
#: holds everything beyond the axis Nyquist frequency 0.5 (the diagonals, up to 0.71)
BANDS = (0.0, 0.125, 0.25, 0.375, 0.5)


def band_names(edges=BANDS) -> list[str]:
    e = list(edges)
    return [f"{a:g}–{b:g}" for a, b in zip(e[:-1], e[1:])] + [f"≥ {e[-1]:g}"]


def band_sums(freqs: np.ndarray, relevance: np.ndarray, edges=BANDS) -> np.ndarray:
    """Relevance summed over each band ``[e_i, e_{i+1})`` (the last band open-ended): ``(..., n_bands)``."""
    b = np.clip(np.searchsorted(np.asarray(edges), np.asarray(freqs), side="right") - 1, 0, len(edges) - 1)
    onehot = (b[:, None] == np.arange(len(edges))[None, :]).astype(np.float64)
    return np.asarray(relevance, dtype=np.float64) @ onehot


def summarise_group(R: np.ndarray, logit: np.ndarray, threshold_logit: float, freqs=None, labels=None,
                    edges=BANDS) -> dict:
    """Mean ± std relevance per frequency (or per feature) of one group's images ``R (N, F)``, their
    mean logit and share called generated, and where the relevance sits: with ``freqs``, the band
    whose summed mean relevance is largest in magnitude (its sign: + speaks for generated) and its
    share of the bands' total magnitude; else the feature with the largest mean |relevance|."""
    ok = np.isfinite(logit)
    R, logit = R[ok], logit[ok]
    m = R.mean(axis=0)
    out = {"n": int(ok.sum()), "mean_logit": float(logit.mean()),
           "called_generated": float(np.mean(logit > threshold_logit)),
           "relevance_mean": m.tolist(), "relevance_std": R.std(axis=0).tolist(),
           "relevance_sum": float(m.sum())}
    if freqs is not None:
        bs = band_sums(freqs, m, edges)
        top = int(np.argmax(np.abs(bs)))
        tot = float(np.abs(bs).sum()) or 1.0
        out.update(bands=bs.tolist(), top_band=band_names(edges)[top], top_band_index=top,
                   top_band_share=float(abs(bs[top]) / tot), top_band_sign=int(np.sign(bs[top])),
                   peak_frequency=float(np.asarray(freqs)[int(np.argmax(np.abs(m)))]))
    else:
        top = int(np.argmax(np.abs(m)))
        out.update(top_feature=(labels or [str(i) for i in range(len(m))])[top],
                   top_feature_share=float(abs(m[top]) / (float(np.abs(m).sum()) or 1.0)),
                   top_feature_sign=int(np.sign(m[top])))
    return out


def explain_groups(det, groups: dict, shape, eps: float = 1e-6, edges=BANDS) -> dict | None:
    """LRP relevance of a fitted detector ``det`` on each group of inputs (``groups[name]``: uint8
    images for a CNN, raw feature rows for a spectral detector; images of ``shape`` (H, W)),
    summarised per group by :func:`summarise_group`. ``None`` when ``det`` cannot be explained."""
    ex = explainer_for(det, eps)
    if ex is None:
        return None
    thr = float(getattr(det, "threshold_", 0.5))
    thr_logit = float(np.log(thr / (1.0 - thr))) if 0.0 < thr < 1.0 else (np.inf if thr >= 1.0 else -np.inf)
    if getattr(det, "rule_", None) == "decision":  # the published rule of an SVM or LR: the sign of the decision value
        thr_logit = 0.0
    out: dict = {"explainer": ex.name, "groups": {}}
    for g, inputs in groups.items():
        freqs, R, logit = ex.radial(inputs, shape)
        if freqs is None:
            out["axis"], out["x"] = "feature", ex.feature_labels()
        else:
            out["axis"], out["x"] = "frequency", np.asarray(freqs).tolist()
        out["groups"][g] = summarise_group(R, logit, thr_logit, freqs, out["x"] if freqs is None else None, edges)
    if out["axis"] == "frequency":
        out["bands"] = band_names(edges)
    return out


# ---------------------------------------------------------------------------- pictures
def _ring_counts(s: int) -> np.ndarray:
    from forensics.spectral.spectrum import radial_index

    return radial_index(s, s)[1]


def _heat(R: np.ndarray) -> np.ndarray:
    """Relevance as RGB: blue negative (real), white 0, red positive (generated), symmetric scale."""
    import matplotlib

    m = float(np.abs(R).max()) or 1.0
    return (matplotlib.colormaps["bwr"](0.5 + 0.5 * R / m)[..., :3] * 255).astype(np.uint8)


def _grey(v: np.ndarray) -> np.ndarray:
    lo, hi = float(v.min()), float(v.max())
    g = ((v - lo) / ((hi - lo) or 1.0) * 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def _png(panels: list[np.ndarray], side: int = 128) -> bytes:
    tiles = []
    for p in panels:
        k = max(1, side // max(p.shape[:2]))
        tiles.append(np.asarray(p).repeat(k, 0).repeat(k, 1))
    h = max(t.shape[0] for t in tiles)
    row = np.concatenate([np.pad(t, ((0, h - t.shape[0]), (0, 4), (0, 0)), constant_values=255) for t in tiles], 1)
    return png_bytes(row)


def _radial_plot(path: Path, curves: dict, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from forensics.io.files import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, (f, r) in curves.items():
        ax.plot(f, r, label=label)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("frequency (cycles/pixel)")
    ax.set_ylabel("mean relevance (share of |logit|)")
    ax.set_title(title)
    ax.legend()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _safe_name(i: int, path: Path) -> str:
    return f"{i:05d}_" + re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem)[:60]


# ---------------------------------------------------------------------------- the verb
def explain(cfg: ExplainConfig, progress: bool = True) -> dict:
    """Explain every image under ``cfg.paths`` with the model ``cfg.model``; see the module notes."""
    from forensics.core.progress import bar
    from forensics.io.files import atomic_write_bytes, write_config, write_csv, write_npz
    from forensics.io.images import Policy, Prefetcher, scan_nonempty, warn_skipped

    ex = load_explainer(cfg.model, cfg.eps)
    files = scan_nonempty(list(cfg.paths))
    pol = Policy.parse(cfg.preprocess if cfg.preprocess is not None else ex.default_policy)
    out = Path(cfg.out)
    write_config(out, {"verb": "explain", "config": cfg.to_dict(), "policy": str(pol), "explainer": ex.name,
                       "relevance": "LRP of the logit: eps rule (linear), alpha1beta0 (conv), identity (norm, "
                                    "activations); frequency relevance via a virtual inverse-DFT layer"})
    rows, radial_rows = [], []
    sums: dict[str, list] = {"real": [], "generated": []}
    freqs = None
    thr = float(getattr(ex.det, "threshold_", 0.5))
    batch: list = []

    def flush():
        if not batch:
            return
        imgs = [r.image for _, r in batch]
        if isinstance(ex, CNNExplainer):
            results = ex.explain(np.stack(imgs))
        else:
            results = ex.explain(imgs)
        for (i, r), a in zip(batch, results):
            if "error" in a:
                rows.append({"path": str(r.path), "status": "error", "error": a["error"]})
                continue
            name = _safe_name(i, r.path)
            logit = float(a["logit"])
            p = 1.0 / (1.0 + np.exp(-np.clip(logit, -60, 60)))
            row = {"path": str(r.path), "status": "ok", "p_generated": f"{p:.6f}", "label": int(p > thr),
                   "logit": f"{logit:.6f}", "relevance_sum": f"{float(np.sum(a['relevance'])):.6f}"}
            write_npz(out / "relevance" / f"{name}.npz", **{k: np.asarray(v) for k, v in a.items()})
            files_written = [f"relevance/{name}.npz"]
            if "radial_relevance" in a:
                nonlocal freqs
                f, rr = a["radial_frequency"], a["radial_relevance"]
                hi = f >= cfg.high_frequency
                row.update(low_frequency_relevance=f"{rr[~hi].sum():.6f}", high_frequency_relevance=f"{rr[hi].sum():.6f}",
                           peak_frequency=f"{f[int(np.argmax(np.abs(rr)))]:.4f}")
                if freqs is None or (len(freqs) == len(f) and np.allclose(freqs, f)):
                    freqs = f
                    radial_rows.append({"path": str(r.path), **{f"{fx:.4f}": f"{v:.6g}" for fx, v in zip(f, rr)}})
                    sums["generated" if p > thr else "real"].append(rr / (abs(logit) or 1.0))
            if cfg.maps:
                atomic_write_bytes(out / "maps" / f"{name}.png", _png(ex.panels(r.image, a)))
                files_written.append(f"maps/{name}.png")
            row["files"] = " ".join(files_written)
            rows.append(row)
        batch.clear()

    for i, r in enumerate(bar(Prefetcher(files, pol), total=len(files), desc="explaining", enabled=progress)):
        if r.ok:
            r.error = ex.check(r.image)
        if not r.ok:
            warn_skipped(r)
            rows.append({"path": str(r.path), "status": "error", "error": r.error})
            continue
        batch.append((i, r))
        if len(batch) >= CHUNK:
            flush()
    flush()
    order = {str(f): i for i, f in enumerate(files)}
    rows.sort(key=lambda r: order.get(r["path"], 0))
    write_csv(out / "summary.csv", rows, SUMMARY_COLUMNS)
    if freqs is not None:
        write_csv(out / "radial.csv", radial_rows, ["path"] + [f"{fx:.4f}" for fx in freqs])
        curves = {f"called {k} (n={len(v)})": (freqs, np.mean(v, axis=0)) for k, v in sums.items() if v}
        _radial_plot(out / "radial.png", curves, f"{ex.name}: relevance per radial frequency")
    n_ok = sum(r["status"] == "ok" for r in rows)
    return {"n_files": len(files), "n_explained": n_ok, "n_errors": len(rows) - n_ok, "explainer": ex.name,
            "out": str(out)}
