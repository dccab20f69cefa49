"""Verbs for image-set metrics: FID/KID, attribute fairness of generated sets, per-group detector FPR."""
from __future__ import annotations

import sys
from pathlib import Path

from forensics.cli.registry import arg, verb
from forensics.core.parsing import names, numbers


@verb("fid", "FID (and KID) between two image folders, or a GAN run and a folder, with the real Inception weights",
      """forensics fid real/ fakes/ --kid --out fid.json
      forensics fid runs/n15 real/ --n 2000 --mode legacy     # samples 2000 images of the run""")
@arg("a", metavar="A", help="folder of images, or a GAN run folder (sampled)")
@arg("b", metavar="B", help="folder of images, or a GAN run folder (sampled)")
@arg("--kid", action="store_true", help="also compute KID (unbiased; the score to read on small sets)")
@arg("--mode", default="clean", choices=["clean", "legacy"],
     help="resize to 299: clean = PIL bicubic (anti-aliased, default), legacy = torch bilinear (pytorch-fid)")
@arg("--n", type=int, default=1000, help="images sampled from a GAN run (default 1000)")
@arg("--seed", type=int, default=0, help="seed of the run's samples and the KID subsets")
@arg("--batch", type=int, default=32)
@arg("--device", default="cpu")
@arg("--no-cache", action="store_true", help="do not read or write cached folder statistics")
@arg("--out", default=None, metavar="FILE", help="write the result as JSON")
def cmd_metrics_fid(a):
    from forensics.evaluation.fid import compare
    from forensics.metrics.inception import FidConfig

    cfg = FidConfig(mode=a.mode, kid=a.kid, n=a.n, seed=a.seed, batch=a.batch, device=a.device, cache=not a.no_cache)
    r = compare(a.a, a.b, cfg, a.out, progress=True)
    kid = ""
    if a.kid:
        spread = (f" ± {r['kid_std']:.5f}" if r.get("subsets", 2) > 1
                  else " (one subset: the sets are too small for a spread)")
        kid = f", KID {r['kid']:.5f}{spread}"
    print(f"FID {r['fid']:.3f}{kid} (mode {r['mode']}; n = {r['a']['n']} / {r['b']['n']}; "
          f"{len(r['a']['skipped']) + len(r['b']['skipped'])} unreadable)" + (f" -> {a.out}" if a.out else ""))


@verb("train-attribute", "train a sensitive-attribute classifier on a labelled folder (for forensics fairness)",
      """forensics train-attribute --data celeba/ --attribute Male --out clf/male
      forensics train-attribute --data faces/ --attributes labels.csv --attribute Male,Black_Hair --size 32 --out clf/mb""")
@arg("--data", required=True, metavar="DIR", help="folder of labelled images (CelebA layout recognised)")
@arg("--attributes", default=None, metavar="FILE",
     help="attribute table (list_attr_celeba.txt layout or CSV filename,attr1,...); CelebA's is found itself")
@arg("--attribute", required=True, metavar="NAME[,NAME]", help="one attribute (2 classes) or up to 4 (compound)")
@arg("--out", required=True, metavar="MODEL_DIR")
@arg("--size", type=int, default=32, help="images are area-resized to SIZE x SIZE (default 32)")
@arg("--n", type=int, default=None, help="use a seeded subset of this many images")
@arg("--test-fraction", type=float, default=0.2)
@arg("--seed", type=int, default=0)
def cmd_metrics_train_attribute(a):
    from forensics.evaluation.attributes import AttributeClassifierConfig, train_attribute_classifier

    cfg = AttributeClassifierConfig(attributes=tuple(names(a.attribute) or ()),
                                    size=a.size, test_fraction=a.test_fraction, n=a.n, seed=a.seed)
    m = train_attribute_classifier(a.data, a.out, cfg, a.attributes, progress=True)
    per = ", ".join(f"{c}: {'n/a' if v is None else f'{v:.3f}'}" for c, v in zip(m["classes"], m["per_class_accuracy"]))
    print(f"forensics train-attribute: held-out accuracy {m['accuracy']:.3f} ({per}; "
          f"{m['n_train']} train / {m['n_test']} test) -> {a.out}", file=sys.stderr)


@verb("fairness", "class distribution of a set under an attribute classifier and its discrepancy from uniform",
      """forensics fairness fakes/ --classifier clf/male --attribute Male --out fair/""")
@arg("samples", metavar="SAMPLES", help="folder of (generated) images")
@arg("--classifier", required=True, metavar="MODEL_DIR", help="from forensics train-attribute")
@arg("--attribute", required=True, metavar="NAME[,NAME]", help="must be what the classifier classifies")
@arg("--out", required=True, metavar="DIR", help="fairness.json, predictions.csv, config.json")
def cmd_metrics_fairness(a):
    from forensics.evaluation.attributes import fairness_of_folder

    r = fairness_of_folder(a.samples, a.classifier, a.attribute, a.out, progress=True)
    m, c = r["metrics"], r["corrected_metrics"]
    dist = ", ".join(f"{n} {p:.3f}" for n, p in zip(r["classes"], r["distribution"]))
    print(f"{r['n']} images: {dist}")
    print(f"L2 {m['l2']:.4f} (norm {m['l2_norm']:.3f}), L1 {m['l1']:.4f}, KL {m['kl']:.4f}, "
          f"specificity {m['specificity']:.3f}; corrected L2 norm {c['l2_norm']:.3f} -> {a.out}")


@verb("fairness-benchmark", "Teo & Cheung's benchmark: known attribute distributions through simulated classifiers",
      """forensics fairness-benchmark --out fairbench/ --cardinalities 2,4,8 --accuracies 1,0.9,0.8,0.7""")
@arg("--out", required=True, metavar="DIR", help="rows.csv, summary.csv, benchmark.png, config.json")
@arg("--cardinalities", default="2,4,8")
@arg("--accuracies", default="1,0.9,0.8,0.7", help="accuracy of the dominant class per simulated classifier")
@arg("--spread", type=float, default=0.1, help="per-class accuracy falls by this much from class 0 to the last")
@arg("--steps", type=int, default=11, help="points from uniform to one class")
@arg("--n", type=int, default=10000, help="samples per set")
@arg("--seed", type=int, default=0)
def cmd_metrics_fairness_benchmark(a):
    from forensics.metrics.fairness import FairnessBenchmarkConfig, run_benchmark

    cfg = FairnessBenchmarkConfig(cardinalities=tuple(numbers(a.cardinalities, "cardinalities", int)),
                                  accuracies=tuple(numbers(a.accuracies, "accuracies")),
                                  spread=a.spread, steps=a.steps, n=a.n, seed=a.seed)
    summary = run_benchmark(cfg, a.out)
    for s in summary:
        print(f"{s['metric']:18s} k={s['k']:<2d} acc={s['accuracy']:<4g} MAE measured {s['mae_measured']:.4f}, "
              f"corrected {s['mae_corrected']:.4f}")
    print(f"-> {Path(a.out) / 'benchmark.png'}", file=sys.stderr)


@verb("group-fpr", "per-group false-positive rates of detector verdicts on real images with group labels",
      """forensics group-fpr verdicts.csv --attributes list_attr_celeba.txt --attribute Male --out fpr.json
      # verdicts.csv from: forensics detect real_faces/ --out verdicts.csv""")
@arg("verdicts", metavar="VERDICTS", help=".csv or .json written by forensics detect on REAL images")
@arg("--attributes", required=True, metavar="FILE", help="attribute table naming the files' groups")
@arg("--attribute", required=True, metavar="NAME[,NAME]")
@arg("--out", default=None, metavar="FILE")
def cmd_metrics_group_fpr(a):
    from forensics.evaluation.attributes import group_fpr_of_verdicts

    r = group_fpr_of_verdicts(a.verdicts, a.attributes, a.attribute, a.out)
    for g, v in r["groups"].items():
        print(f"{g:30s} n={v['n']:<6d} FPR {v['fpr']:.3f}")
    print(f"overall FPR {r['overall_fpr']:.3f}, largest gap {r['max_gap']:.3f} "
          f"({r['unmatched']} not in the table, {r['errors']} errors)")
