"""The package's layers as a checked contract: `lint-imports` (import-linter, configured in
pyproject.toml) keeps every module importing only from the layers below its own, with no import
cycle between siblings at any depth, lazy imports inside functions included. The old 0.2 module
paths import as the modules that now hold them, for one release."""
from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))


def lint(where: Path) -> subprocess.CompletedProcess:
    # import-linter reads pyproject.toml in the working directory and imports the package from there
    return subprocess.run([LINT, "--no-cache"], cwd=where, capture_output=True, text=True, timeout=120)


def test_the_checkout_keeps_every_contract():
    r = lint(ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "3 kept, 0 broken" in r.stdout


@pytest.fixture
def tree(tmp_path):
    """A copy of the package's source tree (the links forensics/generators etc. copied as links)."""
    for d in ("forensics", "generators", "detectors"):
        shutil.copytree(ROOT / d, tmp_path / d, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "data").mkdir()
    for f in (ROOT / "data").glob("*.py"):
        shutil.copy(f, tmp_path / "data")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def add_lines(path: Path, text: str) -> int:
    """Append ``text`` to ``path``; the line number of its last line."""
    src = path.read_text()
    path.write_text(src + text)
    return len((src + text).splitlines())


def test_an_upward_import_inside_a_function_breaks_the_layers(tree):
    line = add_lines(tree / "forensics" / "core" / "errors.py",
                     "\n\ndef _upward():\n    from forensics.detection.detect import detect\n    return detect\n") - 1
    r = lint(tree)
    assert r.returncode != 0
    assert "forensics.core is not allowed to import forensics.detection" in r.stdout
    assert f"forensics.core.errors -> forensics.detection.detect (l.{line})" in r.stdout


def test_a_cycle_inside_one_layer_breaks_the_contract(tree):
    # generators.tensors sits below generators.trainer; a lazy import back up makes a cycle
    add_lines(tree / "generators" / "tensors.py",
              "\n\ndef _back():\n    from forensics.generators.trainer import Trainer\n    return Trainer\n")
    r = lint(tree)
    assert r.returncode != 0
    assert "No cycles are allowed in forensics.generators" in r.stdout
    assert "Pipeline layers: each imports only from the layers below it KEPT" in r.stdout


def test_argparse_outside_the_cli_breaks_the_contract(tree):
    add_lines(tree / "forensics" / "study" / "config.py", "\n\ndef _flags():\n    import argparse\n    return argparse\n")
    r = lint(tree)
    assert r.returncode != 0 and "forensics.study is not allowed to import argparse" in r.stdout


def test_old_module_paths_are_the_new_modules():
    import forensics.detection.detect as new_detect
    import forensics.spectral.spectrum as new_spectrum

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        import forensics.detect as old_detect
        from forensics.spectrum import features
    assert old_detect is new_detect and features is new_spectrum.features
    assert new_spectrum.__spec__.name == "forensics.spectral.spectrum"  # the new module keeps its own spec
    assert any("forensics.detect moved to forensics.detection.detect" in str(x.message) for x in w)
    # nothing of the toolkit imports an old path: importing every module raises no FutureWarning
    code = ("import importlib, pkgutil, warnings; warnings.simplefilter('error', FutureWarning)\n"
            "import forensics\n"
            "for m in pkgutil.walk_packages(forensics.__path__, 'forensics.'):\n"
            "    if m.name.endswith('__main__'): continue\n"
            "    importlib.import_module(m.name)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


def test_modules_depend_on_each_other_only_through_import_statements():
    # the linter sees import statements; a module named in a string and imported through importlib (a
    # registry of class names -> modules, a resource lookup of a package) would be a dependency it cannot
    # check. Only the top-level lazy API (forensics/__init__.py) and the old paths (_compat) do so.
    import ast

    allowed = {ROOT / "forensics" / "__init__.py", ROOT / "forensics" / "_compat.py"}
    offenders = []
    for folder in ("forensics", "generators", "detectors", "data"):
        for f in sorted((ROOT / folder).rglob("*.py")):
            if f in allowed or "builtin" in f.relative_to(ROOT).parts[:2] or f.is_symlink():
                continue
            for node in ast.walk(ast.parse(f.read_text())):
                if not (isinstance(node, ast.Call) and node.args):
                    continue
                fn, arg = getattr(node.func, "attr", getattr(node.func, "id", None)), node.args[0]
                named = isinstance(arg, ast.Constant) and str(arg.value).startswith("forensics")
                if (fn in ("import_module", "__import__") and not (isinstance(arg, ast.Constant) and not named)
                        or fn in ("find_spec", "files") and named):  # a computed name could be one of ours
                    offenders.append(f"{f.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders
