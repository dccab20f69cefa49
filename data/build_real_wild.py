"""Rebuild the *wild* built-in real photographs (data/real/wild_*.png): native-resolution crops.

    cd /tmp/debs && apt-get download tuxpaint-data=1:0.9.28-sdl2-1 scribus-template=1.2.4.1-6 \
        palapeli-data=4:22.12.3-1 digikam-data=4:7.9.0-1 lxqt-themes=1.2.0-1   # Debian bookworm, 51 MB
    python data/build_real_wild.py --debs /tmp/debs

Nothing is downloaded by this script or at run time: it unpacks the five .deb files found in
``--debs`` (``dpkg -x``, after checking each one's package name and version), checks every
original photograph against the SHA-256 recorded in data/real/sources.json by the last build
(another original is refused unless ``--new-originals``) and writes one derived crop of each,
``wild_<package>_<name>.png``: the centre ``min(512, short side)`` square **at the photo's own
resolution** (offsets rounded down to multiples of 8, so the 8x8 block grid of a JPEG original
keeps its phase), PNG. These keep the camera's and the JPEG coder's fine structure: what a
native-resolution detector must learn to call real. No downscaled copy is stored: the patch loader
cuts every photo at 1, 1/2 and 1/4 (area) already, and a stored x2 copy would only repeat those
patches (and take a quarter of the space budget).

41 photographs (all camera photos; see SOURCES.md for authors and licences), one file each, about
16 MB. They are the ``"set": "wild"`` entries of sources.json; ``group`` names the original
photograph. ``forensics.io.sources.builtin_photos(wild=True)`` and the real source ``builtin-all``
add them to the core and extra photographs; ``builtin`` and ``builtin-wide`` are unchanged. The
script rewrites the wild entries of sources.json and leaves the others alone.

Never used here (reserved as an independent test set): plasma-workspace-wallpapers,
lomiri-wallpapers*, opencv-doc.
"""
import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forensics.io.files import atomic_write_bytes, atomic_write_text  # noqa: E402

HERE = Path(__file__).resolve().parent
REAL = HERE / "real"
CROP = 512
GRID = 8

GPL = "GPL-2+"
TUX_LIC = ("GPL-2+ (Debian copyright file of tuxpaint-data, 'Files: *'); the crops are derived works "
           "under GPL-2+")
TUX_AUTHOR = "Bill Kendrick (tuxpaint-data AUTHORS.txt, 'Templates')"
SCRIBUS_LIC = ("Public domain (Debian copyright file of scribus-template: the templates br2, cal2 and menu2 "
               "by Riku Leino 'have been placed into public domain by their author')")
SCRIBUS_AUTHOR = "Riku Leino (scribus-template)"
LXQT_LIC = ("LGPL-2.1+ (Debian copyright file of lxqt-themes, 'Files: *', which covers wallpapers/); the crops "
            "are derived works under LGPL-2.1+")

#: package -> (version, folder inside the .deb, {file: (author, licence)})
PACKAGES = {
    "tuxpaint-data": ("1:0.9.28-sdl2-1", "usr/share/tuxpaint/templates", {
        f"{n}.jpg": (TUX_AUTHOR, TUX_LIC) for n in (
            "burnt_bark", "cliff", "corn_maze", "jellyfish", "lighthouse", "mossy_bark", "mossy_log", "mudstone",
            "ocean_splash", "ocean_waves", "redwoods_above", "rocks", "sheep", "spiders_web", "sun_behind_clouds",
            "sun_behind_leaves", "trees_above", "trees_at_dusk", "wool_mill_machine")}),
    "scribus-template": ("1.2.4.1-6", "usr/share/scribus/templates", {
        f: (SCRIBUS_AUTHOR, SCRIBUS_LIC) for f in (
            "br2/brightness.jpg", "br2/halfmoon.jpg", "br2/moon.jpg", "br2/nature.jpg", "br2/sunset.jpg",
            "cal2/moon.jpg", "menu2/pizza.jpg")}),
    # only the three puzzles whose metadata (collection/*.desktop) says "Public Domain"; the other two are GFDL
    "palapeli-data": ("4:22.12.3-1", "usr/share/palapeli/collection", {
        "cincinnati-bridge.jpg": ("Derek Jensen (Wikimedia Commons, Cincinnati-roebling-suspension-bridge.jpg)",
                                  "Public domain (palapeli puzzle metadata cincinnati-bridge.desktop)"),
        "citrus-fruits.jpg": ("US Department of Agriculture (Wikimedia Commons, Citrus_fruits.jpg)",
                              "Public domain (work of the US government; palapeli puzzle metadata)"),
        "european-honey-bee.jpg": ("John Severns (Wikimedia Commons, European_honey_bee_extracts_nectar.jpg)",
                                   "Public domain (palapeli puzzle metadata european-honey-bee.desktop)"),
    }),
    "lxqt-themes": ("1.2.0-1", "usr/share/lxqt/wallpapers", {
        f: (author, LXQT_LIC) for f, author in (
            ("after-the-rain.jpg", "Stef Binde (EXIF Artist; PENTAX K-7)"),
            ("appleflower.png", "Stef Binde (EXIF Artist; PENTAX K-7)"),
            ("butterfly.png", "Stef Binde (EXIF Artist; PENTAX K-7)"),
            ("drop.png", "Stef Binde (EXIF Artist; PENTAX K-7)"),
            ("flowers.png", "Stef Binde (EXIF Artist; PENTAX K-7)"),
            ("Butterfly-Kenneth-Wimer.jpg", "Kenneth Wimer (file name)"),
            ("Valendas.png", "LXQt team (PENTAX K100D Super; photographer not named)"),
            ("beam.png", "LXQt team (Canon PowerShot A530; photographer not named)"),
            ("cloud.png", "LXQt team (photographer not named)"),
            ("fog.jpg", "LXQt team (HP photosmart 735; photographer not named)"),
            ("this-is-not-windows.jpg", "LXQt team (HP photosmart 735; photographer not named)"))}),
    "digikam-data": ("4:7.9.0-1", "usr/share/digikam/about/images", {
        "body-background.jpg": ("digiKam team (iPhone 7 photo, EXIF 2021-11-09; the photographer is not named)",
                                ("GPL-2+ (Debian copyright file of digikam-data: 'almost all software is GPL'); "
                                 "the crops are derived works under GPL-2+")),
    }),
}
SHORT = {"tuxpaint-data": "tuxpaint", "scribus-template": "scribus", "palapeli-data": "palapeli",
         "digikam-data": "digikam", "lxqt-themes": "lxqt"}


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def centre_crop(bgr):
    """The centre ``min(CROP, short side)`` square, side and offsets multiples of GRID (JPEG grid phase kept)."""
    h, w = bgr.shape[:2]
    s = min(CROP, min(h, w) // GRID * GRID)
    y, x = (h - s) // 2 // GRID * GRID, (w - s) // 2 // GRID * GRID
    return bgr[y:y + s, x:x + s]


def png(bgr) -> bytes:
    ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise ValueError("cannot encode PNG")
    return buf.tobytes()


def find_deb(folder: Path, package: str, version: str) -> Path:
    for deb in sorted(folder.glob(f"{package}_*.deb")):
        f = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version"], check=True,
                           capture_output=True, text=True).stdout.split("\n")
        if f[0].split(": ", 1)[-1] == package and f[1].split(": ", 1)[-1] == version:
            return deb
    raise SystemExit(f"{folder}: no {package}_*.deb of version {version} (apt-get download {package}={version})")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--debs", type=Path, default=Path("."), help="folder holding the four .deb files (apt-get download)")
    p.add_argument("--new-originals", action="store_true",
                   help="accept originals whose SHA-256 differs from the one recorded (another package version)")
    a = p.parse_args(argv)
    meta = json.loads((REAL / "sources.json").read_text(encoding="utf-8"))
    recorded = {e["group"]: e["original_sha256"] for e in meta["photos"] if e.get("set") == "wild"}
    entries, total = [], 0
    for package, (version, folder, photos) in PACKAGES.items():
        deb = find_deb(a.debs, package, version)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["dpkg", "-x", str(deb), tmp], check=True)
            for f, (author, lic) in photos.items():
                path = Path(tmp) / folder / f
                raw = path.read_bytes()
                group = f"{package}/{f}"
                if recorded.get(group) and recorded[group] != sha256(raw) and not a.new_originals:
                    raise SystemExit(f"{group}: SHA-256 {sha256(raw)[:12]}... differs from the recorded original "
                                     f"{recorded[group][:12]}... (another package version?); --new-originals takes it")
                bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if bgr is None:
                    raise SystemExit(f"{path}: cannot decode")
                crop = centre_crop(bgr)
                s = crop.shape[0]
                stem = f"wild_{SHORT[package]}_{Path(f).with_suffix('').as_posix().replace('/', '_').replace('-', '_')}"
                stem = stem.lower()
                data = png(crop)
                atomic_write_bytes(REAL / f"{stem}.png", data)
                total += len(data)
                entries.append({"file": f"{stem}.png", "set": "wild", "group": group,
                                "source_package": f"{package} {version} (Debian bookworm, {folder}/{f})",
                                "author": author, "licence": lic, "encoding": "png",
                                "original_encoding": "jpeg" if f.endswith(".jpg") else "png",
                                "original_size": [int(bgr.shape[1]), int(bgr.shape[0])],
                                "derived": f"centre {s}x{s} at full resolution (offsets on the 8-px grid), PNG",
                                "original_sha256": sha256(raw), "sha256": sha256(data)})
                print(f"{stem}: {bgr.shape[1]}x{bgr.shape[0]} -> {s} px", file=sys.stderr)
    meta["photos"] = [e for e in meta["photos"] if e.get("set", "core") != "wild"] + entries
    atomic_write_text(REAL / "sources.json", json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    print(f"{len(entries)} wild photographs, {total / 1e6:.1f} MB -> {REAL}")


if __name__ == "__main__":
    main()
