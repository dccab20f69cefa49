"""Image processing applied alike to real and generated images: JPEG re-encoding, resizing with a
named filter, Gaussian blur, seeded noise and centre crops. ``forensics robustness`` measures a
detector under them; the corpus builder draws them as training augmentation for both classes."""
from __future__ import annotations

import numpy as np

#: the interpolation filters ``resize`` takes
RESIZE_FILTERS = ("nearest", "bilinear", "bicubic", "area", "lanczos")
#: the kinds of processing
KINDS = ("jpeg", "resize", "blur", "noise", "crop")


def jpeg_bytes(image, quality: float) -> bytes:
    """The JPEG file (OpenCV's encoder, 4:2:0) of a uint8 RGB image at ``quality`` 1..100: the bytes
    whose decoding ``perturb(..., "jpeg", quality)`` returns, for callers that store the file itself."""
    import cv2

    q = round(quality)
    if not 1 <= q <= 100:
        raise ValueError(f"JPEG quality must be 1..100, got {quality}")
    _ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(np.asarray(image)[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, q])
    return buf.tobytes()


def perturb(images, kind: str, strength: float, seed: int = 0, indices=None, resize_filter: str = "bilinear"):
    """``images`` (list of ``(H, W, 3)`` uint8) perturbed by ``kind`` at ``strength``."""
    import cv2

    if kind == "jpeg":
        if not 1 <= round(strength) <= 100:
            raise ValueError(f"JPEG quality must be 1..100, got {strength}")
        return [cv2.imdecode(np.frombuffer(jpeg_bytes(im, strength), np.uint8), cv2.IMREAD_COLOR)[..., ::-1].copy()
                for im in images]
    if kind == "resize":
        if strength <= 0:
            raise ValueError(f"resize factor must be positive, got {strength}")
        flag = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC,
                "area": cv2.INTER_AREA, "lanczos": cv2.INTER_LANCZOS4}[resize_filter]
        return [cv2.resize(im, (max(1, round(im.shape[1] * strength)), max(1, round(im.shape[0] * strength))),
                           interpolation=flag) for im in images]
    if kind == "blur":
        if strength <= 0:
            raise ValueError(f"blur sigma must be positive, got {strength}")
        return [cv2.GaussianBlur(im, (0, 0), sigmaX=float(strength), borderType=cv2.BORDER_REFLECT) for im in images]
    if kind == "noise":
        if strength < 0:
            raise ValueError(f"noise sigma must be non-negative, got {strength}")
        idx = range(len(images)) if indices is None else indices
        out = []
        for i, im in zip(idx, images):
            rng = np.random.default_rng([seed, round(strength * 1000), int(i)])
            out.append(np.clip(np.rint(im + rng.normal(0.0, strength, im.shape)), 0, 255).astype(np.uint8))
        return out
    if kind == "crop":
        if not 0 < strength <= 1:
            raise ValueError(f"crop fraction must be in (0, 1], got {strength}")
        out = []
        for im in images:
            h, w = im.shape[:2]
            ch, cw = max(1, round(h * strength)), max(1, round(w * strength))
            y, x = (h - ch) // 2, (w - cw) // 2
            out.append(np.ascontiguousarray(im[y:y + ch, x:x + cw]))
        return out
    raise ValueError(f"unknown perturbation {kind!r}; choose from {', '.join(KINDS)}")
