"""Before/after figures of the fidelity points (issue 13): the first port (git 914ba1d's
forensics/spectrum.py, passed as argv[1]) against the current faithful methods, on built-in
natural patches. Usage: python benchmarks/fidelity_figures.py /tmp/old_spectrum.py"""
import importlib.util
import sys
import warnings

import numpy as np
from scipy.stats import spearmanr

from forensics.io.images import Policy
from forensics.io.sources import builtin_patches, builtin_photos
from forensics.spectral import spectrum as S

spec = importlib.util.spec_from_file_location("old_spectrum", sys.argv[1])
old = importlib.util.module_from_spec(spec)
spec.loader.exec_module(old)
warnings.simplefilter("ignore")


def crops(h, w, n=100, seed=0):
    rng = np.random.default_rng(seed)
    ph = [p for _, p, _ in builtin_photos() if p.shape[0] >= h and p.shape[1] >= w]
    out = []
    while len(out) < n:
        p = ph[rng.integers(len(ph))]
        y, x = rng.integers(p.shape[0] - h + 1), rng.integers(p.shape[1] - w + 1)
        if p[y:y + h, x:x + w].std() > 4:
            out.append(p[y:y + h, x:x + w])
    return np.stack(out)


p128 = builtin_patches(128).images
# 1. Durall features
a, b = old.durall(p128), S.features(p128, "durall")
rho = [spearmanr(a[:, k], b[:, k])[0] for k in range(1, 80)]
print(f"1 durall: old (rint rings, Keys, minus v0) vs published: median Spearman rho per dim {np.median(rho):.3f} "
      f"(min {np.min(rho):.3f}); old profile bins {old._half_rings(p128[:1]).shape[1] - 2} vs published "
      f"{S._durall_geometry(128, 128).n_bins}; n={len(p128)}")
# 4. odd size centre (both with the published matrix-norm fit: only the geometry differs)
c127 = crops(127, 127)
new127 = S.features(c127, "dzanic")
sm_old, _ = old.dzanic_faithful_profile(c127)
cent_old = old._dzanic_geometry(127, 127, 200, 0.5)[1]
x_old = cent_old[140:] / cent_old[-1]
b_old_geom = S.fit_decay_published(x_old, sm_old[:, 140:])
d = np.abs(b_old_geom - new127[:, 0])
print(f"4 dzanic 127 px: |b(old centre h/2-1, r_max h/2) - b(int32 centre)| median {np.median(d):.3f}, max {d.max():.3f}; n={len(c127)}")
# 5. 64 px
p64 = builtin_patches(64).images[:200]
bo, bn = old.dzanic_faithful(p64)[:, 0], S.features(p64, "dzanic")[:, 0]
print(f"5 dzanic 64 px: old port finite b for {np.isfinite(bo).mean():.0%}; published objective finite for "
      f"{np.isfinite(bn).mean():.0%} (NaN with a warning); n={len(p64)}")
# 8. objective
sm, _ = S.dzanic_faithful_profile(p128)
cent = S._dzanic_geometry(128, 128, 200, 0.5)[1]
x = cent[140:] / cent.max()
bm = S.fit_decay_published(x, sm[:, 140:])
bv = S.fit_decay(x, sm[:, 140:])
d = np.abs(bm - bv)
print(f"8 dzanic 128 px: |b(matrix 2-norm) - b(vector norm)| median {np.median(d):.3f}, max {d.max():.3f}; n={len(p128)}")
b_old = old.dzanic_faithful(p128)[:, 0]
print(f"  old port vs published at 128 px: |db| median {np.median(np.abs(b_old - bm)):.3f}")
# 7. paper preprocessing of real images
photos = [p for _, p, _ in builtin_photos() if min(p.shape[:2]) >= 256]
area = np.stack([Policy.parse("resize:128:area").apply(p) for p in photos])
pil = np.stack([Policy.parse("resize:128:pil-bilinear").apply(p) for p in photos])
fa, fp = S.features(area, "dzanic"), S.features(pil, "dzanic")
rel = np.abs(fa - fp) / np.abs(fa)
print(f"7 paper real preprocessing INTER_AREA vs PIL bilinear (antialiased), published dzanic features: "
      f"median relative change b {np.nanmedian(rel[:, 0]):.1%}, y_i {np.nanmedian(rel[:, 1]):.1%}, "
      f"y_f {np.nanmedian(rel[:, 2]):.1%}; n={len(photos)} photos")
