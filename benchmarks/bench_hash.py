"""Hamming-ranking mAP of DCSH codes (pixels + Fourier spectrum) on data with known groups, and the
hash index's scaling curve.

    python benchmarks/bench_hash.py groups   [--size 16] [--n-train 800] [--n-query 300] [--bits 16,32,64] --out FILE
    python benchmarks/bench_hash.py realfake [--size 16] [--n-train 800] [--n-query 300] [--bits 32] --out FILE
    python benchmarks/bench_hash.py scale    [--counts 1000,10000,100000] [--work DIR] [--scheduler local:2] --out FILE

``scale``: a folder of 64-px PNG images is synthesised once under ``--work`` (the 64-px patches of the
built-in photographs, core and extra, at a stride of 8 px, mirrored to reach the count; every tenth
one through the transposed-convolution simulator), in sub-folders of 1,000. A DCSH model (default
settings: 32 bits, images resized to 32 px) is trained once on its seeded sample of ``max_train``
files: the **training time** is reported on its own. For each count, a fresh process indexes the
first sub-folders with that model (decode, encode, write: the **index time**, its peak memory and the
index's size on disk), and another loads the index and answers queries: 200 images that are not in
it (JPEG copies of indexed images and simulated upsamplings of built-in patches), ``k = 10``, codes
``both``; it reports the time per query of the multi-index search and of the exact linear scan, the
share of the index the multi-index verified, **recall@10 of the multi-index against the exact scan**,
and ``forensics hash query`` end to end (decode, encode, search, PSNR, CSV) per query.

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


# ------------------------------------------------------------------------------------ scale
PER_FOLDER = 1000


def _write_png(args):
    from PIL import Image

    path, im = args
    Image.fromarray(im).save(path, compress_level=1)


def synthesise(work, n: int, seed: int = 0) -> list:
    """``n`` 64-px PNG images in sub-folders of :data:`PER_FOLDER` of ``work/images`` (made once)."""
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from forensics.generators.simulate import simulate_upsampling
    from forensics.io.sources import builtin_patches

    root = Path(work) / "images"
    folders = [root / f"d{i:03d}" for i in range(-(-n // PER_FOLDER))]
    marker = root / "made.json"
    if marker.is_file() and json.loads(marker.read_text()).get("n", 0) >= n:
        return folders
    base = builtin_patches(64, stride=8, extra=True).images
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(base))
    with ThreadPoolExecutor(2) as pool:
        for f, d in enumerate(folders):
            d.mkdir(parents=True, exist_ok=True)
            ids = np.arange(f * PER_FOLDER, min(n, (f + 1) * PER_FOLDER))
            ims = base[order[ids % len(base)]].copy()
            flip = (ids // len(base)) % 4
            ims[flip == 1] = ims[flip == 1, :, ::-1]
            ims[flip == 2] = ims[flip == 2, ::-1]
            ims[flip == 3] = ims[flip == 3, ::-1, ::-1]
            fake = ids % 10 == 9
            ims[fake] = simulate_upsampling(ims[fake], seed=seed + f)
            list(pool.map(_write_png, [(d / f"{i:06d}.png", im) for i, im in zip(ids, ims)]))
    marker.write_text(json.dumps({"n": n, "seed": seed}))
    return folders


def query_images(work, folders, n: int = 200, seed: int = 1):
    """``n`` query files not in the index: JPEG copies of indexed images and simulated upsamplings
    of built-in patches (``work/queries``, made once)."""
    import io
    from pathlib import Path

    from PIL import Image

    from forensics.generators.simulate import simulate_upsampling
    from forensics.io.sources import builtin_patches

    q = Path(work) / "queries"
    if q.is_dir() and len(list(q.iterdir())) >= n:
        return q
    q.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    first = sorted(folders[0].iterdir())
    for i, f in enumerate(rng.choice(first, n // 2, replace=False)):
        buf = io.BytesIO()
        Image.open(f).convert("RGB").save(buf, "JPEG", quality=90)
        (q / f"jpeg{i:03d}.jpg").write_bytes(buf.getvalue())
    p = builtin_patches(64, n=n - n // 2, seed=seed, stride=24).images
    for i, im in enumerate(simulate_upsampling(p, seed=seed)):
        Image.fromarray(im).save(q / f"sim{i:03d}.png")
    return q


def _child(cmd: str, **kw) -> dict:
    import subprocess

    r = subprocess.run([sys.executable, os.path.abspath(__file__), cmd, json.dumps(kw)], capture_output=True,
                       text=True, check=False)
    if r.returncode:
        raise RuntimeError(f"{cmd} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM: since its exec, unlike ru_maxrss after a fork)."""
    with open("/proc/self/status") as f:
        kb = next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:"))
    return round(kb / 1024, 1)


def _do_index(a: dict) -> dict:
    from pathlib import Path

    from forensics.detectors.hashing import HashModel
    from forensics.evaluation.hash_index import IndexConfig, build_index

    model = HashModel.load(a["model"])
    t = time.perf_counter()
    ix = build_index(a["folders"], a["out"], IndexConfig(hash=model.config, scheduler=a.get("scheduler")), model=model)
    dt = time.perf_counter() - t
    size = sum(f.stat().st_size for f in Path(a["out"]).rglob("*") if f.is_file())
    return {"n": len(ix), "index_seconds": round(dt, 1), "images_per_second": round(len(ix) / dt),
            "peak_rss_mb": _peak_mb(), "index_mb": round(size / 2 ** 20, 1)}


def _do_query(a: dict) -> dict:
    from pathlib import Path

    from forensics.detectors.hashing import one_torch_thread
    from forensics.evaluation.hash_index import HashIndex, query_index
    from forensics.io.images import load_folder

    k = a["k"]
    t = time.perf_counter()
    ix = HashIndex.load(a["index"])
    load_s = time.perf_counter() - t
    good, _ = load_folder(a["queries"], ix.model.config.policy_str)
    imgs = np.stack([r.image for r in good])
    with one_torch_thread():
        t = time.perf_counter()
        q = ix.model.codes(imgs)
        enc_ms = (time.perf_counter() - t) / len(imgs) * 1e3
    mih = ix.multi_index("both")  # built on first use: timed apart
    t = time.perf_counter()
    ix.multi_index("both")
    i1, d1 = ix.search(q, k)
    mih_ms = (time.perf_counter() - t) / len(imgs) * 1e3
    t = time.perf_counter()
    i2, d2 = ix.search(q, k, exact=True)
    scan_ms = (time.perf_counter() - t) / len(imgs) * 1e3
    recall = float(np.mean([len(set(x) & set(y)) / len(y) for x, y in zip(i1, i2)]))
    verified = mih.verified
    t = time.perf_counter()
    n1, _ = ix.search(q, 1)  # the nearest one (a near-duplicate lookup)
    mih1_ms = (time.perf_counter() - t) / len(imgs) * 1e3
    verified1 = mih.verified
    t = time.perf_counter()
    s1, _ = ix.search(q, 1, exact=True)
    scan1_ms = (time.perf_counter() - t) / len(imgs) * 1e3
    t = time.perf_counter()
    query_index(a["index"], [a["queries"]], str(Path(a["index"]) / "q.csv"), k)
    e2e_ms = (time.perf_counter() - t) / len(imgs) * 1e3
    return {"n": len(ix), "queries": len(imgs), "load_seconds": round(load_s, 2), "encode_ms": round(enc_ms, 3),
            "mih_ms": round(mih_ms, 3), "scan_ms": round(scan_ms, 3),
            "mih_verified_share": round(verified / len(imgs) / len(ix), 4), "recall_at_k": round(recall, 4),
            "same_distances": bool((d1 == d2).all()), "k1": {"mih_ms": round(mih1_ms, 3), "scan_ms": round(scan1_ms, 3),
            "mih_verified_share": round(verified1 / len(imgs) / len(ix), 4), "same": bool((n1 == s1).all())},
            "kth_distance_median": float(np.median(d2[:, -1])), "query_verb_ms": round(e2e_ms, 2),
            "peak_rss_mb": _peak_mb()}


def scale(a) -> dict:
    from pathlib import Path

    from forensics.detectors.hashing import HashConfig, HashModel
    from forensics.io.images import load_folder, scan

    counts = sorted(int(c) for c in a.counts.split(","))
    work = Path(a.work)
    t = time.perf_counter()
    folders = synthesise(work, counts[-1], a.seed)
    synth_s = time.perf_counter() - t
    queries = query_images(work, folders)
    cfg = HashConfig(bits=a.bits, size=a.size, seed=a.seed, max_train=a.max_train)
    files = scan(folders)
    pick = np.sort(np.random.default_rng(cfg.seed).choice(len(files), min(cfg.max_train, len(files)), replace=False))
    t = time.perf_counter()
    good, _ = load_folder([], cfg.policy_str, files=[files[i] for i in pick])
    sample = np.stack([r.image for r in good])
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    model = HashModel.train(sample, cfg)
    train_s = time.perf_counter() - t
    model.save(work / "model")
    out = {"config": {**vars(a), "hash": cfg.to_dict()}, "versions": versions(), "cpus": os.cpu_count(),
           "synthesis_seconds": round(synth_s, 1),
           "training": {"n": len(sample), "load_seconds": round(load_s, 1), "train_seconds": round(train_s, 1)},
           "curve": []}
    print(f"DCSH training on {len(sample)} images ({cfg.size} px, {cfg.bits} bits, {cfg.epochs} epochs): "
          f"{train_s:.1f} s (+ {load_s:.1f} s decoding the sample)", flush=True)
    print(f"{'images':>8} {'index s':>8} {'img/s':>7} {'peak MB':>8} {'disk MB':>8} {'load s':>7} {'enc ms':>7} "
          f"{'mih ms':>7} {'scan ms':>8} {'verified':>8} {'recall@' + str(a.k):>9} {'verb ms':>8} "
          f"{'k=1 mih':>8} {'k=1 scan':>8} {'verified':>8}", flush=True)
    for n in counts:
        import shutil

        idx = work / f"index-{n}"
        shutil.rmtree(idx, ignore_errors=True)
        r = _child("_index", model=str(work / "model"), folders=[str(f) for f in folders[:-(-n // PER_FOLDER)]],
                   out=str(idx), scheduler=a.scheduler)
        r["query"] = _child("_query", index=str(idx), queries=str(queries), k=a.k)
        out["curve"].append(r)
        qr = r["query"]
        print(f"{r['n']:>8} {r['index_seconds']:>8} {r['images_per_second']:>7} {r['peak_rss_mb']:>8} "
              f"{r['index_mb']:>8} {qr['load_seconds']:>7} {qr['encode_ms']:>7} {qr['mih_ms']:>7} {qr['scan_ms']:>8} "
              f"{qr['mih_verified_share']:>8} {qr['recall_at_k']:>9} {qr['query_verb_ms']:>8} {qr['k1']['mih_ms']:>8} "
              f"{qr['k1']['scan_ms']:>8} {qr['k1']['mih_verified_share']:>8}", flush=True)
        write_json(a.out, out)
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("_index", "_query"):  # a child process of ``scale``
        print(json.dumps((_do_index if argv[0] == "_index" else _do_query)(json.loads(argv[1]))))
        return
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["groups", "realfake", "scale"])
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--n-train", type=int, default=800)
    p.add_argument("--n-query", type=int, default=300)
    p.add_argument("--bits", default="16,32,64")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--spectrum", default="log2d")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--knn-modalities", default="spectrum,both", help="realfake: codes of the hash-kNN detectors")
    p.add_argument("--out", required=True)
    p.add_argument("--counts", default="1000,10000,100000", help="scale: index sizes")
    p.add_argument("--work", default="bench-hash-work", help="scale: folder for the images, model and indexes")
    p.add_argument("--max-train", type=int, default=4000, help="scale: training sample")
    p.add_argument("--k", type=int, default=10, help="scale: neighbours per query")
    p.add_argument("--scheduler", default=None, help="scale: build the indexes on Dask (local[:N] or an address)")
    a = p.parse_args(argv)
    if a.kind == "scale":
        a.size = 32 if "--size" not in argv else a.size
        a.bits = "32" if "--bits" not in argv else a.bits
        a.bits = int(a.bits)
        scale(a)
        print(f"-> {a.out}")
        return
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
