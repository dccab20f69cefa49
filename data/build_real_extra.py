"""Rebuild the *extra* built-in real photographs (data/real/extra_*.png) from registry packages.

    apt-get download mate-backgrounds=1.26.0-1          # Debian bookworm, 46 MB, GPL-2+ photos
    python data/build_real_extra.py --mate-deb mate-backgrounds_1.26.0-1_all.deb

Nothing is downloaded by this script or at run time: it reads the .deb given (unpacked with
``dpkg -x``) and scikit-image's bundled sample data (the installed wheel), checks every original against the
SHA-256 recorded in data/real/sources.json by the last build (another package version is refused
unless ``--new-originals``), and writes a small derived crop of each one:

- the 12 photographs of mate-backgrounds' ``nature/`` folder (JPEG wallpapers of 1280-2560 px):
  area-downscaled by 4 (which also weakens their 8x8 JPEG block grid), then the centre
  256 x 256 pixels, saved as PNG;
- scikit-image's ``retina.jpg`` (CC0): area-downscaled by 4, centre 256 x 256.

The crops are the *extra* set of the built-in photographs (``"set": "extra"`` in
data/real/sources.json): ``forensics.io.sources.builtin_patches(..., extra=True)`` and the real source
``builtin-wide`` add them to the 13 core photographs; plain ``builtin`` is unchanged. The
script rewrites the extra entries of sources.json (with the crops' SHA-256) and leaves the core
ones alone; SOURCES.md lists the licences.
"""
import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
REAL = HERE / "real"
CROP = 256
SCALE = 4

MATE = "mate-backgrounds 1.26.0-1 (Debian bookworm, usr/share/backgrounds/mate/nature/)"
MATE_LIC = "GPL-2+ (Debian copyright file of mate-backgrounds); the crop is a derived work under GPL-2+"
# file -> author, per the package's Debian copyright file (the originals' SHA-256 go into sources.json)
MATE_PHOTOS = {
    "Aqua.jpg": "Charles Barbin",
    "Blinds.jpg": "Lennart Poettering, Andrea Cimitan",
    "Dune.jpg": "Marco Cogoni, Hylke Bons",
    "FreshFlower.jpg": "Jens Ansorg",
    "Garden.jpg": "Charles Barbin",
    "GreenMeadow.jpg": "Timothy Schellhase, Lapo Calamandrei",
    "LadyBird.jpg": "Charles Barbin",
    "RainDrops.jpg": "blackcombwhistler07",
    "Storm.jpg": "Sergey Nazarov",
    "TwoWings.jpg": "Charles Barbin, Hylke Bons",
    "Wood.jpg": "Jean-Francois Fortin Tam",
    "YellowFlower.jpg": "Charles Barbin",
}


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def derive(path: Path) -> np.ndarray:
    """Area-downscale by SCALE, then the centre CROP x CROP pixels (RGB uint8)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: cannot decode")
    small = cv2.resize(bgr, (bgr.shape[1] // SCALE, bgr.shape[0] // SCALE), interpolation=cv2.INTER_AREA)
    h, w = small.shape[:2]
    if min(h, w) < CROP:
        raise ValueError(f"{path}: {w}x{h} after downscaling, smaller than the {CROP} px crop")
    y, x = (h - CROP) // 2, (w - CROP) // 2
    return small[y:y + CROP, x:x + CROP]


def write_png(bgr: np.ndarray, out: Path) -> bytes:
    ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise ValueError(f"cannot encode {out}")
    out.write_bytes(buf.tobytes())
    return buf.tobytes()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mate-deb", required=True, help="mate-backgrounds_1.26.0-1_all.deb (apt-get download)")
    p.add_argument("--new-originals", action="store_true",
                   help="accept originals whose SHA-256 differs from the one recorded (another package version)")
    a = p.parse_args(argv)
    meta = json.loads((REAL / "sources.json").read_text(encoding="utf-8"))
    recorded = {e["file"]: e.get("original_sha256") for e in meta["photos"] if e.get("set") == "extra"}
    import skimage

    originals = []  # (name, path, source, author, licence)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg", "-x", a.mate_deb, tmp], check=True)
        nature = Path(tmp) / "usr/share/backgrounds/mate/nature"
        for f, author in MATE_PHOTOS.items():
            originals.append((f"extra_mate_{Path(f).stem.lower()}.png", nature / f, f"{MATE} {f}", author, MATE_LIC))
        sk = Path(skimage.__file__).parent / "data"
        originals.append(("extra_skimage_retina.png", sk / "retina.jpg",
                          f"scikit-image {skimage.__version__} (skimage.data.retina)",
                          "Mikael Haggstrom (Wikimedia Commons, Fundus_photograph_of_normal_left_eye.jpg)", "CC0"))
        entries = []
        for name, path, source, author, lic in originals:
            raw = path.read_bytes()
            if recorded.get(name) and recorded[name] != sha256(raw) and not a.new_originals:
                raise SystemExit(f"{path}: SHA-256 {sha256(raw)[:12]}... differs from the recorded original "
                                 f"{recorded[name][:12]}... (another package version?); --new-originals accepts it")
            crop = derive(path)
            data = write_png(crop, REAL / name)
            entries.append({"file": name, "set": "extra", "source_package": source, "author": author,
                            "licence": lic, "encoding": "png",
                            "derived": f"area-downscaled by {SCALE}, centre {CROP}x{CROP}, PNG",
                            "original_sha256": sha256(raw), "sha256": sha256(data)})
            print(f"{name}: {len(data)} bytes from {path.name}", file=sys.stderr)
    meta["photos"] = [e for e in meta["photos"] if e.get("set", "core") != "extra"] + entries
    (REAL / "sources.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(entries)} extra photographs -> {REAL}")


if __name__ == "__main__":
    main()
