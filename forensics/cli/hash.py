"""``forensics hash``: DCSH hash indexes of image folders, Hamming-neighbour queries and
train/test near-duplicate leakage (see :mod:`forensics.evaluation.hash_index`)."""
from __future__ import annotations

import sys

from forensics.cli.registry import arg, verb


@verb("hash", "binary hash codes of pixels + Fourier spectrum (DCSH): index, query, leakage",
      """forensics hash index photos/ more/ --bits 32 --out idx/
      forensics hash index builtin --bits 16 --size 16 --out builtin-idx/     # the built-in patches
      forensics hash query idx/ new/ --k 5 --out neighbours.csv
      forensics hash leakage train/ test/ --out leakage.json""")
@arg("action", choices=["index", "query", "leakage"],
     help="index DIR..: train a hash model on the folders and encode them; query INDEX PATH..: nearest "
          "indexed images; leakage TRAIN TEST: near-duplicates shared by the two folders")
@arg("paths", nargs="+", metavar="PATH")
@arg("--out", required=True, metavar="OUT", help="index: a folder; query and leakage: a .csv or .json file")
@arg("--bits", type=int, default=None, choices=[16, 32, 64], help="code length (default 32)")
@arg("--k", type=int, default=None, help="neighbours per image (query: default 5; leakage: default 3)")
@arg("--modality", default=None, choices=["pixels", "spectrum", "both"],
     help="codes compared (query: default both, leakage: default pixels); both sums the two distances")
@arg("--spectrum", default=None, choices=["log2d", "profile"], help="spectral modality (default log2d)")
@arg("--size", type=int, default=None, help="images are brought to SIZE x SIZE (default 32)")
@arg("--preprocess", default=None, metavar="POLICY", help="crop:SIZE or resize:SIZE[:FILTER] (default resize:SIZE:area)")
@arg("--epochs", type=int, default=None, help="hash-network epochs (default 60)")
@arg("--seed", type=int, default=None)
@arg("--config", default=None, metavar="FILE", help="a HashConfig JSON (e.g. an index's config.json)")
@arg("--max-distance", type=int, default=None, help="leakage: largest Hamming distance of a candidate "
                                                    "(default a quarter of the code length)")
@arg("--min-psnr", type=float, default=30.0, help="leakage: PSNR (dB) from which a candidate is a duplicate")
def cmd_hash(a):
    from forensics.detectors.hashing import HashConfig

    settings = {"bits": a.bits, "spectrum": a.spectrum, "size": a.size, "policy": a.preprocess,
                "epochs": a.epochs, "seed": a.seed}
    config = (HashConfig.load(a.config, **settings) if a.config
              else HashConfig.from_dict({}, **settings))
    if a.action == "index":
        from forensics.evaluation.hash_index import build_index

        ix = build_index(a.paths, a.out, config)
        print(f"forensics hash: indexed {len(ix.files)} images ({len(ix.skipped)} unreadable), "
              f"{config.bits} bits -> {a.out}", file=sys.stderr)
    elif a.action == "query":
        from forensics.evaluation.hash_index import query_index

        if len(a.paths) < 2:
            raise ValueError("query needs an index folder and at least one image or folder")
        rows = query_index(a.paths[0], a.paths[1:], a.out, a.k or 5, a.modality or "both")
        n_q = len({r["query"] for r in rows if r.get("error") is None})
        n_bad = sum(r.get("error") is not None for r in rows)
        print(f"forensics hash: {n_q} queries, {n_bad} unreadable -> {a.out}", file=sys.stderr)
    else:
        from forensics.evaluation.hash_index import leakage

        if len(a.paths) != 2:
            raise ValueError(f"leakage needs exactly two folders (training, test), got {len(a.paths)}")
        s = leakage(a.paths[0], a.paths[1], a.out, config, a.modality or "pixels", a.max_distance, a.k or 3,
                    a.min_psnr)
        print(f"forensics hash: {s['test_with_duplicate']} of {s['n_test']} test images have a near-duplicate "
              f"among {s['n_train']} training images ({s['n_candidates']} candidates, {s['n_unreadable']} "
              f"unreadable) -> {a.out}", file=sys.stderr)
