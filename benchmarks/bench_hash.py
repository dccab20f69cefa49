"""Hamming-ranking mAP of DCSH codes (pixels + Fourier spectrum) on data with known groups.

    python benchmarks/bench_hash.py groups   [--size 16] [--n-train 800] [--n-query 300] [--bits 16,32,64] --out FILE
    python benchmarks/bench_hash.py realfake [--size 16] [--n-train 800] [--n-query 300] [--bits 32] --out FILE

``groups``: patches of the 13 built-in photographs; a patch's photograph is its group.
``realfake``: built-in patches (real) and simulated transposed-convolution upsamplings of other
patches (forensics.generators.simulate); the class is the group, and the hash-kNN detector's
held-out accuracy is measured too.

Held-out images (queries) rank the training images (database) by Hamming distance; relevant
= same group. Retrieval directions: pixel->spectrum and spectrum->pixel (cross-modal: the query's
code from one network, the database's from the other), and pixel->pixel, spectrum->spectrum.
Methods: DCSH (both graphs shape the codes), DCSH without the spectral modality (codes from the
pixel graph alone; both networks still trained to them), and random-projection LSH on the same
features (cross-modal LSH compares projections of unrelated spaces, i.e. chance). ``prior`` is
the mAP of a random ranking (the mean share of relevant items). Writes JSON with the config.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from forensics.detectors.hashing import (
    HashConfig,
    HashModel,
    codes_of,
    hamming_map,
    lsh_codes,
    pixel_input,
    spectral_input,
)
from forensics.io.files import versions, write_json

DIRS = (("pixels", "spectrum"), ("spectrum", "pixels"), ("pixels", "pixels"), ("spectrum", "spectrum"))


def data(kind: str, size: int, n_train: int, n_query: int, seed: int):
    from forensics.io.sources import builtin_patches

    s = builtin_patches(size)
    rng = np.random.default_rng(seed)
    if kind == "groups":
        groups = np.array([n.split("@")[0] for n in s.names])
        perm = rng.permutation(len(s))[:n_train + n_query]
        X, g = s.images[perm], groups[perm]
    else:
        from forensics.generators.simulate import simulate_upsampling

        perm = rng.permutation(len(s))[:n_train + n_query]
        half = len(perm) // 2
        X = np.concatenate([s.images[perm[:half]], simulate_upsampling(s.images[perm[half:]], seed=seed)])
        g = np.r_[np.zeros(half, int), np.ones(len(perm) - half, int)]
        p2 = rng.permutation(len(X))
        X, g = X[p2], g[p2]
    return X[:n_train], g[:n_train], X[n_train:], g[n_train:]


def table(xtr, gtr, xte, gte, bits: int, base: HashConfig, seed: int) -> dict:
    res = {}
    for name, mods in (("dcsh", ("pixels", "spectrum")), ("dcsh_pixels_only", ("pixels",))):
        t = time.time()
        m = HashModel.train(xtr, base.replace(bits=bits, modalities=mods))
        oq, od = m.outputs(xte), m.outputs(xtr)
        res[name] = {f"{a}->{b}": round(hamming_map(codes_of(oq, a), codes_of(od, b), gte, gtr, seed), 4)
                     for a, b in DIRS}
        res[name]["train_seconds"] = round(time.time() - t, 1)
        res[name]["objective_first_last"] = [round(m.info["objective"][0], 3), round(m.info["objective"][-1], 3)]
    feats = {"pixels": pixel_input(np.concatenate([xtr, xte])).reshape(len(xtr) + len(xte), -1),
             "spectrum": spectral_input(np.concatenate([xtr, xte]), base.spectrum)}
    n = len(xtr)
    seeds = {"pixels": seed + 1, "spectrum": seed + 2}
    res["lsh"] = {f"{a}->{b}": round(hamming_map(lsh_codes(feats[a][:n], feats[a][n:], bits, seeds[a]),
                                                 lsh_codes(feats[b][:n], feats[b][:n], bits, seeds[b]),
                                                 gte, gtr, seed), 4) for a, b in DIRS}
    return res


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["groups", "realfake"])
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--n-train", type=int, default=800)
    p.add_argument("--n-query", type=int, default=300)
    p.add_argument("--bits", default="16,32,64")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--spectrum", default="log2d")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--knn-modalities", default="spectrum,both", help="realfake: codes of the hash-kNN detectors")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    base = HashConfig(size=a.size, epochs=a.epochs, spectrum=a.spectrum, seed=a.seed)
    xtr, gtr, xte, gte = data(a.kind, a.size, a.n_train, a.n_query, a.seed)
    prior = float(np.mean([(gtr == g).mean() for g in gte]))
    out = {"config": {**vars(a), "hash": base.to_dict()}, "versions": versions(), "prior_map": round(prior, 4),
           "results": {}}
    for bits in [int(b) for b in a.bits.split(",")]:
        out["results"][str(bits)] = r = table(xtr, gtr, xte, gte, bits, base, a.seed)
        if a.kind == "realfake":
            from forensics.detectors.hash_knn import HashKNNDetector

            for mod in a.knn_modalities.split(","):
                det = HashKNNDetector(bits=bits, size=a.size, epochs=a.epochs, modality=mod, seed=a.seed,
                                      spectrum=a.spectrum).fit(xtr, gtr)
                r[f"hash_knn_accuracy_{mod}"] = round(float(det.score(xte, gte)), 4)
        print(json.dumps({bits: r}), flush=True)
        write_json(a.out, out)
    print(f"prior mAP {prior:.3f} -> {a.out}")


if __name__ == "__main__":
    main()
