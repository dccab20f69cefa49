"""The built wheel works outside the checkout: one import name, the photos and default model as
package data (issue: a wheel used to ship without data/ and with three generic top-level names)."""
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    d = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(d),
                        str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (whl,) = d.glob("*.whl")
    return whl


def test_wheel_has_one_top_level_name_and_the_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"forensics"}
    for must in ("forensics/generators/trainer.py", "forensics/detectors/base.py", "forensics/core/errors.py",
                 "forensics/io/images.py", "forensics/detection/detect.py", "forensics/study/stages.py",
                 "forensics/cli/main.py",
                 "forensics/builtin/real/sources.json", "forensics/builtin/real/astronaut.png",
                 "forensics/builtin/models/default/model.json", "forensics/builtin/models/default/model.npz"):
        assert must in names, must


def test_wheel_installs_and_runs_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies come from this environment's site-packages (a plain path: its .pth files,
    # among them an editable install of the checkout, are not run)
    Path(site, "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    work = tmp_path / "elsewhere"
    (work / "imgs").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), np.uint8)).save(work / "imgs" / f"{i}.png")
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    where = subprocess.run([str(py), "-c", "import forensics, forensics.io.sources as d; print(forensics.__file__); "
                            "print(d.data_dir())"], cwd=work, capture_output=True, text=True, env=env)
    assert where.returncode == 0, where.stderr
    mod, data = where.stdout.split()
    assert mod.startswith(site) and data.startswith(site)
    det = subprocess.run([str(venv / "bin" / "forensics"), "detect", "imgs", "--out", "v.csv"], cwd=work,
                         capture_output=True, text=True, env=env)
    assert det.returncode == 0, det.stderr
    assert "3 files:" in det.stderr and len((work / "v.csv").read_text().splitlines()) == 4
    demo = subprocess.run([str(venv / "bin" / "forensics"), "demo", "--help"], cwd=work, capture_output=True,
                          text=True, env=env)
    assert demo.returncode == 0 and "forensics demo --out" in demo.stdout
    assert subprocess.run([str(py), "-c", "import generators"], cwd=work, env=env,
                          capture_output=True).returncode != 0  # no generic top-level names
