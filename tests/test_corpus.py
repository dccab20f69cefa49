"""The labelled-corpus manifest: round trip, and refusals named by file and row."""
import pytest

from forensics.core.errors import UserError
from forensics.io.corpus import MANIFEST, Entry, read_manifest, write_manifest


def test_manifest_round_trips_and_selects(tmp_path):
    es = [Entry("r/a.png", 0, "real", "astronaut"), Entry("f/a.png", 1, "up-N", "astronaut", "jpeg85"),
          Entry("f/b.png", 1, "gan-dcgan", "-")]
    write_manifest(tmp_path, es)
    c = read_manifest(tmp_path)
    assert c.entries == tuple(es)
    assert c.families() == ["up-N", "gan-dcgan"]
    assert [e.path for e in c.select(lambda e: e.family != "up-N").entries] == ["r/a.png", "f/b.png"]
    assert c.file(es[0]) == tmp_path / "r/a.png"


@pytest.mark.parametrize("entry", [("../x.png", 0, "real"), ("/abs.png", 0, "real"), ("a.png", 1, "real"),
                                   ("a.png", 0, "up-N"), ("a.png", 2, "x"), ("a.png", 1, "a,b")])
def test_entries_that_would_mislead_a_split_are_refused(entry):
    with pytest.raises(ValueError):
        Entry(*entry)


def test_a_malformed_manifest_is_one_line_naming_file_and_row(tmp_path):
    with pytest.raises(UserError, match="not a corpus folder"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST).write_text("path,label,family,group,processing\na.png,1,real,-,none\n")
    with pytest.raises(UserError, match=r"manifest.csv: row 2: .*family 'real'"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST).write_text("path,label\n")
    with pytest.raises(UserError, match="header"):
        read_manifest(tmp_path)
