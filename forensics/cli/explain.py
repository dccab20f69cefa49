"""``forensics train-cnn`` (the small CNN detector) and ``forensics explain`` (LRP relevance maps
and relevance per frequency of a detector's verdicts)."""
from __future__ import annotations

import sys

from forensics.cli.registry import arg, verb


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
@arg("--eps", type=float, default=1e-6,
     help="stabiliser of the linear layers' epsilon rule (default 1e-6; larger damps cancelling relevances "
          "of correlated features at the cost of conservation)")
def cmd_explain(a):
    from forensics.explain.explainers import ExplainConfig, explain

    cfg = ExplainConfig(model=a.model, paths=tuple(a.paths), out=a.out, preprocess=a.preprocess,
                        maps=not a.no_maps, high_frequency=a.high_frequency, eps=a.eps)
    r = explain(cfg)
    print(f"forensics explain: {r['explainer']}: {r['n_explained']} of {r['n_files']} images explained, "
          f"{r['n_errors']} with errors -> {r['out']}", file=sys.stderr)


@verb("train-cnn", "train the small CNN detector (CNNDetection-style, blur/JPEG augmentation) on real vs generated",
      """forensics train-cnn --real builtin --fake fakes/ --size 32 --out cnn/
      forensics train-cnn --real real/ --fake fakes/ --size 64 --input spectrum --epochs 20 --out cnn64/""")
@arg("--real", required=True, metavar="SRC", help="folder, .npz/IDX file, or 'builtin' (built-in patches)")
@arg("--fake", required=True, metavar="SRC", help="folder or .npz/IDX file of generated images")
@arg("--out", required=True, metavar="MODEL_DIR", help="folder for model.json, model.safetensors, metrics.json")
@arg("--size", type=int, default=None, help="side the images are centre-cropped to (default 32)")
@arg("--input", default=None, choices=["pixels", "spectrum"], help="network input (default pixels)")
@arg("--epochs", type=int, default=None, help="training epochs (default: the config's)")
@arg("--guidance", type=float, default=None, help="lambda of explanation-guided training (default 0: off)")
@arg("--n", type=int, default=None, help="use a seeded subset of this many images per class")
@arg("--test-fraction", type=float, default=0.2, help="held-out share of each class (default 0.2)")
@arg("--config", default=None, metavar="FILE", help="a CNNConfig JSON (flags given here override it)")
@arg("--seed", type=int, default=None)
def cmd_train_cnn(a):
    from forensics.detection.training import train_cnn
    from forensics.detectors.cnn import CNNConfig

    over = {"size": a.size, "input": a.input, "epochs": a.epochs, "guidance": a.guidance, "seed": a.seed}
    cfg = CNNConfig.load(a.config, **over) if a.config else CNNConfig.from_dict({}, **over)
    m = train_cnn(a.real, a.fake, a.out, cfg, a.test_fraction, a.n)
    print(f"forensics train-cnn: held-out real accuracy {m['real_accuracy']:.3f}, generated accuracy "
          f"{m['generated_accuracy']:.3f}, ROC-AUC {m['roc_auc']:.3f} (test {m['n_test']['real']} real / "
          f"{m['n_test']['generated']} generated) -> {a.out}", file=sys.stderr)
