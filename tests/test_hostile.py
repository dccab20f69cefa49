"""The hostile-input corpus (tests/hostile/build_corpus.py) through ``forensics.cli.main``:
every case must end with a correct row or one error line, no traceback, and no previous output
lost. Each case is its own test, so a regression names the input that broke."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "hostile"))
import build_corpus as corpus  # noqa: E402

CASES = {c.name: c for c in corpus.cases(Path("/corpus"))}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    corpus.materialise(root)
    have = corpus.setup_special(root)
    yield root, {c.name: c for c in corpus.cases(root)}, have
    corpus.teardown_special(root)


def test_corpus_is_large_and_covers_every_class():
    classes = {c.cls for c in CASES.values()}
    assert len(CASES) >= 100 and len(CASES) == len(corpus.cases(Path("/x")))
    assert classes == {"images", "names", "filesystem", "models", "data", "arguments", "outputs", "runs"}
    verbs = {c.argv[0] for c in CASES.values()}
    assert verbs >= {"detect", "spectrum", "train-detector", "train-gan", "generate", "attack", "counterexample"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_case(built, name):
    root, cases, have = built
    case = cases[name]
    if case.needs and case.needs not in have:
        pytest.skip(f"needs {case.needs} (e.g. permission bits do not bind root)")
    outcome, detail = corpus.run_case(case, root)
    assert outcome == "ok", detail


def test_runner_detects_a_traceback_and_a_lost_file(built, monkeypatch):
    """The oracle itself: a crash in the library is classified as a traceback, and a
    protected file that changes as lost (so the corpus cannot pass vacuously)."""
    root, cases, _ = built
    import forensics.detection.detect as D

    def boom(*a, **k):
        raise KeyError("boom")

    monkeypatch.setattr(D, "run_detect", boom)
    assert corpus.run_case(cases["image/empty.png"], root)[0] == "traceback"
    monkeypatch.undo()
    prev = Path(root, "out", "prev.csv")
    case = corpus.Case("t", "outputs", ["detect", str(root / "good"), "--out", str(prev)], "error",
                       protect=[str(prev)])
    saved = prev.read_bytes()
    try:
        assert corpus.run_case(case, root)[0] == "lost"
    finally:
        prev.write_bytes(saved)
