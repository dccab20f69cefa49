"""Dev measurement of the native-resolution detector (``native``) on content-aligned data made here.

    python benchmarks/bench_native.py [--crops 12] [--seed 0] [--pool max|mean] [--no-speed]

Data: the 26 built-in photographs (``builtin_photos(extra=True)``), split by photo (2/3 train,
1/3 test), cut into native-resolution crops of 128-512 px (sides multiples of 8). Each crop
gives a real image and content-aligned fakes: the crop area-downscaled by 2 or 4 and upsampled
again by a ``simulate_family`` chain (nearest / bilinear / zero insertion / transposed conv with
random conv kernels, 1-2 stages), or by cv2 bicubic / lanczos (x2 or x4). Training images, real
and fake alike, get processing drawn from one distribution (half none, else JPEG q 70-98 or an
area downscale x0.5-0.9, optionally followed by JPEG); reals are never upscaled.

Printed:
1. leave-one-method-out: train without method M, test on the test photos' M fakes vs the test
   photos' real crops and full photos, clean and with the same processing drawn for both
   classes: ROC-AUC and TPR at 5 % FPR (the FPR threshold set on those test reals);
2. false positives on the test reals (all methods in training) clean, JPEG 95/85/75, resize
   x0.5 / x2 (bilinear), blur sigma 0.5 / 1, at the threshold giving 5 % FPR on the clean ones;
3. speed: decode (forensics.io.images.decode) vs decode + score of 1024- and 128-px PNGs, ms per
   image, one process.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

METHODS = ("nearest", "bilinear", "zero", "transposed", "bicubic", "lanczos")


def augment(im, seed):
    """Processing drawn from one distribution for real and fake alike (never an upscale)."""
    from forensics.io.processing import perturb

    rng = np.random.default_rng([seed, 7])
    u = rng.random()
    if u < 0.5:
        return im
    if u < 0.75:
        return perturb([im], "jpeg", int(rng.integers(70, 99)))[0]
    out = perturb([im], "resize", float(rng.uniform(0.5, 0.9)), resize_filter="area")[0]
    if rng.random() < 0.5:
        out = perturb([out], "jpeg", int(rng.integers(70, 99)))[0]
    return out


def make_fake(crop, method, seed):
    """A content-aligned fake of ``crop`` (sides multiples of 8) by ``method``."""
    import cv2

    from forensics.generators.simulate import simulate_family

    if method in ("bicubic", "lanczos"):
        f = 2 if np.random.default_rng([seed, 3]).random() < 0.7 else 4
        h, w = crop.shape[:2]
        small = cv2.resize(crop, (w // f, h // f), interpolation=cv2.INTER_AREA)
        flag = cv2.INTER_CUBIC if method == "bicubic" else cv2.INTER_LANCZOS4
        return cv2.resize(small, (w, h), interpolation=flag)
    for k in range(5):  # a random chain now and then saturates to one flat colour: draw again
        out = simulate_family(crop[None], seed=seed + 100000 * k, methods=(method,), chunk=1, stages=(1, 2))[0]
        if np.ptp(out.reshape(-1, 3), axis=0).max() > 8:
            break
    return out


def crops_of(photo, n, rng):
    h, w = photo.shape[:2]
    out = []
    for _ in range(n):
        ch = int(rng.integers(16, min(512, h) // 8 + 1)) * 8
        cw = int(rng.integers(16, min(512, w) // 8 + 1)) * 8
        y, x = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
        out.append(np.ascontiguousarray(photo[y:y + ch, x:x + cw]))
    return out


def build(n_crops, seed):
    from forensics.io.sources import builtin_photos

    photos = [p[1] for p in builtin_photos(extra=True)]
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(photos))
    n_train = round(len(photos) * 2 / 3)
    train_ids, test_ids = perm[:n_train], perm[n_train:]
    k = 0
    tr_x, tr_y, tr_m = [], [], []
    for p in train_ids:
        for c in crops_of(photos[p], n_crops, rng):
            m = METHODS[k % len(METHODS)]
            tr_x += [augment(c, 2 * k), augment(make_fake(c, m, 1000 + k), 2 * k + 1)]
            tr_y += [0, 1]
            tr_m += ["real", m]
            k += 1
    te_real, te_fake = [], {m: [] for m in METHODS}
    for p in test_ids:
        te_real.append(photos[p])
        for c in crops_of(photos[p], n_crops, rng):
            te_real.append(c)
            for m in METHODS:
                te_fake[m].append(make_fake(c, m, 5000 + k))
                k += 1
    return (tr_x, np.array(tr_y), np.array(tr_m)), te_real, te_fake, (train_ids, test_ids)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crops", type=int, default=12, help="crops per photo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pool", default="max", choices=["max", "mean"],
                    help="the detector's pooling (mean: the whole-image term alone, no local term)")
    ap.add_argument("--no-speed", action="store_true")
    a = ap.parse_args()
    from forensics.detectors.names import make_detector
    from forensics.io.processing import perturb
    from forensics.metrics.rates import roc_auc, threshold_at_fpr, tpr_at_fpr

    t0 = time.perf_counter()
    (X, y, meth), te_real, te_fake, (tr_ids, te_ids) = build(a.crops, a.seed)
    n_te = sum(len(v) for v in te_fake.values())
    print(f"data: {len(X)} training images ({(y == 1).sum()} fake) from {len(tr_ids)} photos; test: "
          f"{len(te_real)} reals, {n_te} fakes from {len(te_ids)} other photos ({time.perf_counter() - t0:.0f} s)")
    te_real_aug = [augment(im, 90000 + i) for i, im in enumerate(te_real)]
    te_fake_aug = {m: [augment(im, 91000 + 37 * j + i) for i, im in enumerate(v)]
                   for j, (m, v) in enumerate(te_fake.items())}

    print("\n1. leave one method out (train without it; test photos never seen)")
    print(f"{'held out':<11} {'AUC clean':>9} {'TPR@5%':>7} {'AUC proc':>9} {'TPR@5%':>7}   (train s)")
    full = None
    for held in (None, *METHODS):
        keep = meth != held
        t1 = time.perf_counter()
        det = make_detector("native", seed=a.seed, pool=a.pool).fit([X[i] for i in np.flatnonzero(keep)], y[keep])
        dt = time.perf_counter() - t1
        sr, sra = det.p_generated(te_real), det.p_generated(te_real_aug)
        rows = [held] if held else list(METHODS)
        if held is None:
            full = det
            print("(none: all methods in training, per method)")
        for m in rows:
            sf, sfa = det.p_generated(te_fake[m]), det.p_generated(te_fake_aug[m])
            print(f"{m:<11} {roc_auc(sr, sf):9.3f} {tpr_at_fpr(sr, sf, 0.05):7.3f} {roc_auc(sra, sfa):9.3f} "
                  f"{tpr_at_fpr(sra, sfa, 0.05):7.3f}   ({dt:.1f})")
        if held is None:
            print("(each method held out)")

    print("\n2. false positives on the test photos' reals (model trained on all methods), threshold at 5 % FPR clean")
    s_clean = full.p_generated(te_real)
    thr = threshold_at_fpr(s_clean, 0.05)
    conds = [("clean", None, 0), ("jpeg 95", "jpeg", 95), ("jpeg 85", "jpeg", 85), ("jpeg 75", "jpeg", 75),
             ("resize x0.5", "resize", 0.5), ("resize x2", "resize", 2.0), ("blur 0.5", "blur", 0.5),
             ("blur 1", "blur", 1.0)]
    print(f"{'processing':<12} {'FPR':>6} {'n':>4}")
    for name, kind, st in conds:
        ims = te_real if kind is None else perturb(te_real, kind, st)
        s = full.p_generated(ims)
        ok = np.isfinite(s)
        print(f"{name:<12} {np.mean(s[ok] > thr):6.3f} {ok.sum():4d}")

    if not a.no_speed:
        speed(full)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


def speed(det, reps: int = 5):
    import cv2

    from forensics.io.images import decode, write_png
    from forensics.io.sources import builtin_photos

    print("\n3. speed, one process (ms per image: median and best of the interleaved runs)")
    photo = max((p[1] for p in builtin_photos(extra=True)), key=lambda im: im.size)
    print(f"{'size':>5} {'decode':>8} {'decode+score':>13} {'ratio':>6} {'best ratio':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for size, n in ((1024, 8), (128, 200)):
            big = cv2.resize(photo, (1024, 1024), interpolation=cv2.INTER_AREA)
            rng = np.random.default_rng(size)
            files = []
            for i in range(n):
                y, x = rng.integers(0, 1024 - size + 1, 2)
                files.append(write_png(Path(tmp) / f"{size}_{i}.png", np.ascontiguousarray(big[y:y + size, x:x + size])))
            dec, both = [], []
            for _ in range(reps):
                t = time.perf_counter()
                for f in files:
                    decode(f)
                dec.append((time.perf_counter() - t) / n * 1000)
                t = time.perf_counter()
                for f in files:
                    det.p_generated([decode(f)])
                both.append((time.perf_counter() - t) / n * 1000)
            d, b = np.median(dec), np.median(both)
            print(f"{size:5d} {d:8.2f} {b:13.2f} {b / d:6.2f} {min(both) / min(dec):11.2f}")


if __name__ == "__main__":
    main()
