"""Shared helpers of the benchmark scripts."""
import numpy as np


def real_crops(n: int, size: int, seed: int = 0) -> np.ndarray:
    """``n`` seeded random ``size x size`` crops of the built-in photographs (enlarged where ``size`` exceeds
    them all: for speed figures only, their content is not a photo's)."""
    from forensics.io.sources import builtin_photos

    photos = [p[1] for p in builtin_photos() if min(p[1].shape[:2]) >= size]
    if not photos:  # larger than every photo (e.g. 1024 px for a speed figure): the photos enlarged (bicubic)
        import cv2

        photos = [cv2.resize(im, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
                  for im in (p[1] for p in builtin_photos()) for f in [size / min(im.shape[:2]) * 1.05]]
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        im = photos[rng.integers(len(photos))]
        y = rng.integers(im.shape[0] - size + 1)
        x = rng.integers(im.shape[1] - size + 1)
        out[i] = im[y:y + size, x:x + size]
    return out
