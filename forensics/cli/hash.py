"""``forensics hash``: DCSH hash indexes of image folders, Hamming-neighbour queries and
train/test near-duplicate leakage (see :mod:`forensics.evaluation.hash_index`); one action each."""
from __future__ import annotations

import sys

from forensics.cli.registry import arg, args, verb, verb_group

verb_group("hash", "binary hash codes of pixels + Fourier spectrum (DCSH): index, query, leakage",
           """forensics hash index photos/ more/ --bits 32 --out idx/
           forensics hash index builtin --bits 16 --size 16 --out builtin-idx/     # the built-in patches
           forensics hash index more/ --add --out idx/       # add new images (also resumes an interrupted build)
           forensics hash index photos/ --scheduler local:4 --out idx/   # encode on a Dask cluster
           forensics hash query idx/ new/ --k 5 --out neighbours.csv
           forensics hash leakage train/ test/ --out leakage.json""")

#: the settings of the hash model that index and leakage train
MODEL_ARGS = [
    (("--bits",), dict(type=int, default=None, choices=[16, 32, 64], help="code length (default 32)")),
    (("--spectrum",), dict(default=None, choices=["log2d", "profile"], help="spectral modality (default log2d)")),
    (("--size",), dict(type=int, default=None, help="images are brought to SIZE x SIZE (default 32)")),
    (("--preprocess",), dict(default=None, metavar="POLICY",
                             help="crop:SIZE or resize:SIZE[:FILTER] (default resize:SIZE:area)")),
    (("--epochs",), dict(type=int, default=None, help="hash-network epochs (default 60)")),
    (("--max-train",), dict(type=int, default=None, metavar="N",
                            help="at most N images (a seeded sample) train the model (default 4000)")),
    (("--seed",), dict(type=int, default=None)),
    (("--config",), dict(default=None, metavar="FILE", help="a HashConfig JSON (e.g. an index's config.json)")),
]
MODALITIES = ["pixels", "spectrum", "both"]


def _config(a):
    from forensics.detectors.hashing import HashConfig

    settings = {"bits": a.bits, "spectrum": a.spectrum, "size": a.size, "policy": a.preprocess,
                "epochs": a.epochs, "seed": a.seed, "max_train": a.max_train}
    return HashConfig.load(a.config, **settings) if a.config else HashConfig.from_dict({}, **settings)


@verb("index", "train a hash model on the folders and encode them (or add them to an index)",
      "forensics hash index photos/ more/ --bits 32 --out idx/", group="hash", flags={"add": "--add"})
@arg("paths", nargs="+", metavar="PATH", help="folders of images, or 'builtin' (the built-in patches of --size)")
@arg("--out", required=True, metavar="DIR", help="the index folder")
@arg("--add", action="store_true", help="add the images the index in --out does not hold yet, encoded by its model "
                                        "(also resumes an interrupted build)")
@arg("--scheduler", default=None, metavar="ADDRESS", help="encode on Dask: local[:N] or a scheduler address")
@args(MODEL_ARGS)
def cmd_hash_index(a):
    from forensics.core.errors import UserError
    from forensics.evaluation.hash_index import IndexConfig, build_index

    given = [f"--{k.replace('_', '-')}" for k in ("bits", "spectrum", "size", "preprocess", "epochs", "seed",
                                                  "max_train", "config") if getattr(a, k) is not None]
    if a.add and given:
        raise UserError(f"--add encodes with the index's own model; drop {', '.join(given)}")
    cfg = IndexConfig(add=a.add, scheduler=a.scheduler) if a.add else \
        IndexConfig(hash=_config(a), scheduler=a.scheduler)
    ix = build_index(a.paths, a.out, cfg, progress=True)
    what = f"added {ix.added} images ({len(ix)} in all)" if a.add else f"indexed {len(ix)} images"
    print(f"forensics hash: {what}, {len(ix.skipped)} unreadable, {ix.bits} bits -> {a.out}", file=sys.stderr)


@verb("query", "the nearest indexed images of each image", "forensics hash query idx/ new/ --k 5 --out neighbours.csv",
      group="hash")
@arg("index", metavar="INDEX", help="an index folder (from forensics hash index)")
@arg("paths", nargs="*", metavar="PATH", help="images or folders to look up")
@arg("--out", required=True, metavar="FILE", help="a .csv or .json file")
@arg("--k", type=int, default=5, help="neighbours per image (default 5)")
@arg("--modality", default="both", choices=MODALITIES, help="codes compared (default both: the two distances summed)")
def cmd_hash_query(a):
    from forensics.evaluation.hash_index import query_index

    rows = query_index(a.index, a.paths, a.out, a.k, a.modality)
    n_q = len({r["query"] for r in rows if r.get("error") is None})
    n_bad = sum(r.get("error") is not None for r in rows)
    print(f"forensics hash: {n_q} queries, {n_bad} unreadable -> {a.out}", file=sys.stderr)


@verb("leakage", "near-duplicates shared by a training and a test folder",
      "forensics hash leakage train/ test/ --out leakage.json", group="hash")
@arg("train", metavar="TRAIN", help="the training folder")
@arg("test", metavar="TEST", help="the test folder")
@arg("--out", required=True, metavar="FILE", help="a .csv or .json file")
@arg("--k", type=int, default=3, help="candidates per test image (default 3)")
@arg("--modality", default="pixels", choices=MODALITIES, help="codes compared (default pixels)")
@arg("--max-distance", type=int, default=None, help="largest Hamming distance of a candidate "
                                                    "(default a quarter of the code length)")
@arg("--min-psnr", type=float, default=30.0, help="PSNR (dB) from which a candidate is a duplicate")
@args(MODEL_ARGS)
def cmd_hash_leakage(a):
    from forensics.evaluation.hash_index import leakage

    s = leakage(a.train, a.test, a.out, _config(a), a.modality, a.max_distance, a.k, a.min_psnr)
    print(f"forensics hash: {s['test_with_duplicate']} of {s['n_test']} test images have a near-duplicate "
          f"among {s['n_train']} training images ({s['n_candidates']} candidates, {s['n_unreadable']} "
          f"unreadable) -> {a.out}", file=sys.stderr)
