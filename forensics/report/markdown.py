"""Reports as text: Markdown tables, self-contained HTML (local figures embedded), provenance."""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from forensics.io.files import atomic_write_text, versions


def fmt_ms(d: dict, pct: bool = True) -> str:
    """``{"mean", "std"}`` as ``"93.0 ± 2.1"`` (percent) or ``"0.930 ± 0.021"``."""
    if d is None or not np.isfinite(d.get("mean", np.nan)):
        return "n/a"
    return f"{100 * d['mean']:.1f} ± {100 * d['std']:.1f}" if pct else f"{d['mean']:.3f} ± {d['std']:.3f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def markdown_to_html(md: str, base: Path, title: str) -> str:
    """Self-contained HTML of a report's Markdown (Python-Markdown with tables and fenced code);
    local PNG/SVG images are embedded as data URIs so the file can be mailed on its own."""
    import markdown

    body = markdown.markdown(md, extensions=["tables", "fenced_code"], output_format="html")

    def embed(m):
        src = html.unescape(m.group(2))
        f = base / src
        if "://" in src or src.startswith("data:") or not f.is_file():
            return m.group(0)
        mime = {".png": "image/png", ".svg": "image/svg+xml"}.get(f.suffix.lower(), "application/octet-stream")
        return f'{m.group(1)}"data:{mime};base64,{base64.b64encode(f.read_bytes()).decode("ascii")}"'

    body = re.sub(r'(<img[^>]*?src=)"([^"]+)"', embed, body)
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px 8px;"
             "text-align:right}th{background:#eee}img{max-width:100%}pre{background:#f5f5f5;padding:1em;"
             "overflow-x:auto}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n{body}\n</body></html>\n")


def provenance() -> dict:
    """The library versions of every ``config.json`` (:func:`forensics.io.files.versions`), the date and
    (in a git checkout) the commit, for a report's configuration block."""
    import datetime
    import subprocess

    info = {**versions(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                                capture_output=True, text=True, timeout=5)
        if commit.returncode == 0:
            info["commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def write_report(folder, md: str, title: str) -> tuple[Path, Path]:
    """``report.md`` and a self-contained ``report.html`` in ``folder``."""
    folder = Path(folder)
    p_md = atomic_write_text(folder / "report.md", md)
    p_html = atomic_write_text(folder / "report.html", markdown_to_html(md, folder, title))
    return p_md, p_html
