"""``forensics attack``: apply a post-hoc spectral attack to a folder and measure it.

Measurement (seeded): the generated images are split in half. Fresh detectors are
trained on real reference images vs the *original* generated images of one half (what a
defender who has samples of this generator would do); on the other half they score the
originals ("before") and the attacked versions ("after"). A saved model (``--model``) is
scored on all originals and all attacked images. Image change is PSNR and SSIM of each
attacked image against its original.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from forensics.core.progress import bar
from forensics.io.files import write_config, write_json
from forensics.metrics.rates import detection_rate, real_accuracy, roc_auc
from forensics.metrics.similarity import psnr, ssim

DEFAULT_DETECTORS = ("dzanic+-knn", "dzanic+-svm", "durall+-lr", "durall+-svm")
#: smallest image side measured (SSIM's smallest window is 3x3)
MIN_SIDE = 3


def _summary(v) -> dict:
    """Mean, std and min over the finite values (PSNR is infinite for an unchanged image)."""
    v = np.asarray(v, dtype=np.float64)
    fin = v[np.isfinite(v)]
    out = {"mean": float(fin.mean()), "std": float(fin.std()), "min": float(fin.min())} if fin.size else \
        {"mean": None, "std": None, "min": None}
    return {**out, "n_unchanged": int((~np.isfinite(v)).sum())}


def run_attack(fake: str, real: str, method: str, out, strength: float = 1.0, detectors=DEFAULT_DETECTORS,
               model: str | None = None, seed: int = 0, progress: bool = True, **method_kw) -> dict:
    from forensics.core import checks
    from forensics.detectors import make_detector
    from forensics.detectors.attacks import apply_attack, check_attack, reference_crops, references_for
    from forensics.io.files import check_output
    from forensics.io.images import load_folder, output_name, write_png
    from forensics.io.sources import source_images

    check_attack(method, strength, **method_kw)  # every value is checked before anything is read or written
    checks.seed(seed)
    dets = [make_detector(d, seed=seed) for d in detectors]
    m = None
    if model:  # a bad model is refused before anything is computed or written
        from forensics.detectors.store import load_model

        m = load_model(model)
    # SSIM needs a 3x3 window; the detectors (fresh and saved) their own minimum side
    side = max([MIN_SIDE] + [getattr(d, "min_size", 1) for d in dets + ([m] if m is not None else [])])
    good, bad = load_folder(fake, progress=progress, desc="loading generated", min_good=4, min_side=side,
                            who="the attack")
    reals = source_images(real, desc="loading real").images  # builtin[-wide]: the whole photographs
    fakes = [r.image for r in good]
    for h, w in {f.shape[:2] for f in fakes}:  # every generated size needs real crops of its size
        references_for(reals, h, w)
    out = check_output(out, "dir")  # checked (and created) only once the inputs are known to be usable
    root = Path(fake)
    attacked = apply_attack(method, fakes, reals, strength, seed, **method_kw)
    with bar(total=len(good), desc="writing", enabled=progress) as pb:
        for r, im in zip(good, attacked):
            write_png(out / "images" / output_name(r.path, root).with_suffix(".png"), im)
            pb.update(1)
    psnr_db, ssim_v = psnr(fakes, attacked), ssim(fakes, attacked)

    # fresh detectors: real crops at the most common generated size vs original fakes
    (h, w), _ = Counter(f.shape[:2] for f in fakes).most_common(1)[0]
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(fakes))
    tr, te = perm[: len(perm) // 2], perm[len(perm) // 2:]
    ref = reference_crops(reals, h, w, n=max(200, len(fakes)), seed=seed + 1)
    rtr, rte = ref[: len(ref) // 2], ref[len(ref) // 2:]
    results = {}
    for det in dets:
        det.fit_real_fake(rtr, [fakes[i] for i in tr])
        sr = det.score(rte)
        before, after = det.score([fakes[i] for i in te]), det.score([attacked[i] for i in te])
        t = det.threshold_
        results[det.name] = {"real_accuracy": real_accuracy(sr, t),
                             "before": {"detection_rate": detection_rate(before, t), "auc": roc_auc(sr, before)},
                             "after": {"detection_rate": detection_rate(after, t), "auc": roc_auc(sr, after)}}
    model_res = None
    if m is not None:
        b, a = m.p_generated(fakes), m.p_generated(attacked)
        model_res = {"model": str(model), "detector": m.name, "threshold": m.threshold_,
                     "before": {"detection_rate": detection_rate(b[np.isfinite(b)], m.threshold_)},
                     "after": {"detection_rate": detection_rate(a[np.isfinite(a)], m.threshold_)}}
    config = {"command": "attack", "fake": fake, "real": real, "method": method, "strength": strength,
              "seed": seed, "method_options": method_kw, "detectors": list(detectors), "model": model,
              "n_generated": len(fakes), "n_unreadable": len(bad), "n_real_reference": int(len(ref)),
              "protocol": "fresh detectors trained on half the original generated images vs real crops; "
                          "scored on the other half before and after the attack"}
    report = {"config": config, "image_change": {"psnr_db": _summary(psnr_db), "ssim": _summary(ssim_v)},
              "detectors": results, "model": model_res}
    write_json(out / "attack.json", report)
    write_config(out, config)
    return report


def attack_text(report: dict) -> str:
    """The measurements of :func:`run_attack` as lines: the image change, each fresh detector's
    detection rate before and after (real accuracy beside it) and the saved model's."""
    ch = report["image_change"]
    p_db = ch["psnr_db"]["mean"]
    lines = [f"image change: PSNR {'inf' if p_db is None else f'{p_db:.1f}'} dB "
             f"({ch['psnr_db']['n_unchanged']} unchanged), SSIM {ch['ssim']['mean']:.3f}"]
    for name, d in report["detectors"].items():
        lines.append(f"{name:14s} detection rate {100 * d['before']['detection_rate']:5.1f}% -> "
                     f"{100 * d['after']['detection_rate']:5.1f}%  (real accuracy {100 * d['real_accuracy']:.1f}%)")
    if report["model"]:
        m = report["model"]
        lines.append(f"{'model ' + m['detector']:14s} detection rate {100 * m['before']['detection_rate']:5.1f}% -> "
                     f"{100 * m['after']['detection_rate']:5.1f}%")
    return "\n".join(lines)
