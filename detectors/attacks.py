"""Post-hoc spectral attacks: turn generated images into counterexamples without
retraining a GAN, by moving their Fourier magnitudes onto a real reference while
keeping every phase.

``equalize`` (per image)
    The image's azimuthal magnitude profile is brought to the real images' mean profile
    *shape* at frequencies from ``from_freq`` up (gain per ring, applied to every colour
    channel's spectrum), at the image's own level (matched on the rings below
    ``from_freq``). What ring-averaged detectors (Durall, Dzanic) measure then looks real.
``match2d`` (per set)
    Every frequency of the full 2-D spectrum is scaled by ``sqrt(P_real / P_fake)``, the
    ratio of the real and generated sets' mean power there, kept within
    ``[1/16, max_gain]``. This removes the periodic peaks transposed convolutions
    leave (at the Nyquist frequency and in the corners) and restores high-frequency
    energy the generator lacks. ``max_gain = 1`` only attenuates: a pure *notch* of the
    artefact peaks, which leaves a too-smooth generator's spectrum too smooth.

``strength`` in [0, 1] raises each gain to that power (0: no change, 1: full). Both keep
the DC term (mean colour) and the phase spectrum, and round back to uint8.
"""
from __future__ import annotations

import numpy as np

from forensics.core.errors import UserError
from forensics.spectral import spectrum


def references_for(reals, h: int, w: int) -> list:
    """The real images large enough to hold an ``h x w`` crop (``UserError`` if none is)."""
    big = [r for r in reals if r.shape[0] >= h and r.shape[1] >= w]
    if not big:
        raise UserError(f"no real reference image is at least {w}x{h}, the size of the generated images")
    return big


def reference_crops(reals, h: int, w: int, n: int = 512, seed: int = 0) -> np.ndarray:
    """``n`` seeded random ``h x w`` crops of the real images large enough to hold one."""
    big = references_for(reals, h, w)
    rng = np.random.default_rng(seed)
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        r = big[rng.integers(len(big))]
        y, x = rng.integers(r.shape[0] - h + 1), rng.integers(r.shape[1] - w + 1)
        out[i] = r[y:y + h, x:x + w]
    return out


def _apply_gain(images: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Multiply every channel's half-plane spectrum by ``gain`` ``(N or 1, H, W//2+1)``."""
    n, h, w, _ = images.shape
    F = spectrum.rfft2(images.transpose(0, 3, 1, 2).astype(np.float64))  # (N, 3, H, W//2+1)
    F *= gain[:, None]
    x = spectrum.irfft2(F, (h, w)).transpose(0, 2, 3, 1)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _ring_gain_map(gain_rings: np.ndarray, h: int, w: int) -> np.ndarray:
    idx = spectrum.half_geometry(h, w)[0]
    return gain_rings[:, idx].reshape(len(gain_rings), h, w // 2 + 1)


def _check_from_freq(from_freq) -> None:
    if not 0 < from_freq < 0.75:  # also refuses NaN
        raise ValueError(f"the lowest equalised frequency must be in (0, 0.75) cycles/pixel, not {from_freq}")


def _check_max_gain(max_gain) -> None:
    if not max_gain >= 1:  # also refuses NaN
        raise ValueError(f"the maximum gain must be a number >= 1, not {max_gain}")


def equalize(fakes: np.ndarray, reals, strength: float = 1.0, from_freq: float = 0.1, seed: int = 0) -> np.ndarray:
    """Per-image radial magnitude equalisation toward the real mean profile (see module)."""
    _check_from_freq(from_freq)
    n, h, w, _ = fakes.shape
    ref = reference_crops(reals, h, w, seed=seed)
    target = spectrum.azimuthal_profile(ref, kind="magnitude").mean(0)  # (nb,)
    cur = spectrum.azimuthal_profile(fakes, kind="magnitude")  # (n, nb)
    k = np.arange(cur.shape[1])
    s = min(h, w)
    k0 = max(1, int(round(from_freq * s)))
    band = (k >= 1) & (k < k0) if k0 > 1 else (k == 1)
    tiny = 1e-6
    level = np.exp(np.mean(np.log(cur[:, band] + tiny) - np.log(target[band] + tiny), axis=1))  # (n,)
    g = (level[:, None] * target[None, :] + tiny) / (cur + tiny)
    g = np.where(k[None, :] >= k0, g, 1.0) ** strength
    g[:, 0] = 1.0
    return _apply_gain(fakes, _ring_gain_map(g, h, w))


def match2d(fakes: np.ndarray, reals, strength: float = 1.0, seed: int = 0, max_gain: float = 8.0) -> np.ndarray:
    """Set-level 2-D spectral matching toward the real set (see module)."""
    _check_max_gain(max_gain)
    n, h, w, _ = fakes.shape
    ref = reference_crops(reals, h, w, seed=seed)

    def power(imgs):
        g = spectrum.to_gray(imgs)
        return (spectrum.half_magnitude(g) ** 2).mean(0)

    ratio = np.sqrt(power(ref) / np.maximum(power(fakes), 1e-12))
    gain = np.clip(ratio, 1.0 / 16.0, max_gain) ** strength
    gain[0, 0] = 1.0
    return _apply_gain(fakes, gain[None])


METHODS = {"equalize": equalize, "match2d": match2d}
#: each method's own parameters and their checks
PARAMS = {"equalize": {"from_freq": _check_from_freq}, "match2d": {"max_gain": _check_max_gain}}


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise UserError(f"unknown attack {method!r}; choose from {', '.join(METHODS)}")


def options_for(method: str, **given) -> dict:
    """The parameters of attack ``method`` among ``given`` (the options of every method, e.g. a
    command line's): ``options_for("equalize", from_freq=0.1, max_gain=8)`` is ``{"from_freq": 0.1}``."""
    _check_method(method)
    return {k: v for k, v in given.items() if k in PARAMS[method]}


def check_attack(method: str, strength: float, **kw) -> None:
    """Refuse an unknown method, a strength outside [0, 1] (or NaN) and a bad or foreign
    method parameter, before any image is touched."""
    _check_method(method)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"the strength must be between 0 and 1, not {strength}")
    for k, v in kw.items():
        if k not in PARAMS[method]:
            raise ValueError(f"attack {method} has no parameter {k!r} (it has {', '.join(PARAMS[method])})")
        PARAMS[method][k](v)


def apply_attack(method: str, fakes, reals, strength: float = 1.0, seed: int = 0, **kw) -> list[np.ndarray]:
    """Attack a list of images (any sizes; grouped by size) with the named method."""
    check_attack(method, strength, **kw)
    out: list = [None] * len(fakes)
    by: dict = {}
    for i, im in enumerate(fakes):
        by.setdefault(im.shape, []).append(i)
    for shape, ix in by.items():
        res = METHODS[method](np.stack([fakes[i] for i in ix]), reals, strength=strength, seed=seed, **kw)
        for i, r in zip(ix, res):
            out[i] = r
    return out
