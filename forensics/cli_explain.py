"""``forensics explain``: LRP relevance maps and relevance per frequency of a detector's verdicts."""
from __future__ import annotations

import sys

from forensics.cli import arg, verb


@verb("explain", "LRP explanations of a detector's verdicts: relevance maps and relevance per radial frequency",
      """forensics explain cnn_model/ photos/ fakes/ --out why/     # summary.csv, radial.csv, maps/*.png, relevance/*.npz
      forensics explain durall_mlp_model/ fakes/ --out why/ --no-maps""")
@arg("model", metavar="MODEL", help="a CNN detector folder, or a spectral detector with an mlp or lr classifier")
@arg("paths", nargs="+", metavar="PATH", help="folders (searched recursively) or image files")
@arg("--out", required=True, metavar="DIR", help="output folder")
@arg("--preprocess", default=None, metavar="POLICY",
     help="none | crop:S | resize:S[:FILTER] (default: crop to the CNN's size; a spectral model's own policy)")
@arg("--high-frequency", type=float, default=0.25, metavar="F",
     help="cycles/pixel from which relevance counts as high-frequency in summary.csv (default 0.25)")
@arg("--no-maps", action="store_true", help="skip the PNG heat maps")
def cmd_explain(a):
    from forensics.explain import ExplainConfig, explain

    cfg = ExplainConfig(model=a.model, paths=tuple(a.paths), out=a.out, preprocess=a.preprocess,
                        maps=not a.no_maps, high_frequency=a.high_frequency)
    r = explain(cfg)
    print(f"forensics explain: {r['explainer']}: {r['n_explained']} of {r['n_files']} images explained, "
          f"{r['n_errors']} with errors -> {r['out']}", file=sys.stderr)
