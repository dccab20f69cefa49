"""Verbs for the diffusion-era sources (train-source, sample-source) and the labelled corpus the toolkit makes
from all its image sources (build-corpus)."""
from __future__ import annotations

import sys

from forensics.cli.registry import arg, verb
from forensics.core.errors import UserError
from forensics.core.parsing import assignments, names


@verb("train-source", "train an autoencoder or diffusion source whose upsampling is a spec string",
      """forensics train-source --source ae-kl:N.1.3 --data builtin --size 64 --steps 2000 --out runs/ae-n13
      forensics train-source --source ae-vq-f8:P.1.3 --data builtin --size 32 --steps 2000 --out runs/vq8
      forensics train-source --source ddpm:baseline --data builtin --size 32 --steps 5000 --out runs/ddpm
      forensics train-source --source ldm:Z.1.5 --first-stage-steps 2000 --steps 5000 --data builtin --out runs/ldm
      forensics train-source --config runs/ae-n13/config.json --source ae-kl:baseline --out runs/ae-base
      forensics train-source ... --out runs/ae-n13 --steps 4000 --resume      # continue a run""")
@arg("--source", default=None, metavar="KIND[-fF]:SPEC",
     help="ae-kl, ae-vq (autoencoders), ddpm (pixel diffusion) or ldm (latent diffusion); -f4 (default) or -f8 "
          "the autoencoder's factor; the up-blocks' spec: baseline, N/B/Z.Y.Z, P.Y.Z (pixel shuffle). E.g. ae-kl:N.1.3")
@arg("--config", default=None, metavar="FILE",
     help="a SourceConfig JSON file or a run's config.json; flags override it")
@arg("--data", default=None, metavar="SRC", help="builtin, a folder, an .npz file, or an IDX file")
@arg("--size", type=int, default=None, help="image size, a power of two >= 16 (default 32)")
@arg("--steps", type=int, default=None, help="training steps to reach (ldm: the diffusion's)")
@arg("--first-stage-steps", type=int, default=None, help="ldm: its autoencoder's training steps (default 1000)")
@arg("--preset", default=None, help="tiny (CPU-sized nets, default) or gpu")
@arg("--params", default=None, metavar="K=V,...", help="hyper-parameter changes, e.g. ch=16,z_ch=8,lr=0.002")
@arg("--inner-layer", default=None, metavar="SPEC",
     help="the spec of the up-blocks before the last (default: --source's)")
@arg("--padding", default=None, choices=["replicate", "zeros", "reflect", "circular"],
     help="padding of the convolutions (default replicate)")
@arg("--seed", type=int, default=None)
@arg("--n-images", type=int, default=None, help="use a seeded subset of this many images")
@arg("--sample-every", type=int, default=None, help="write a sample grid every N steps (default 500)")
@arg("--checkpoint-every", type=int, default=None, help="save a checkpoint every N steps (default 500)")
@arg("--device", default=None, help="auto (default), cpu or cuda")
@arg("--resume", action="store_true", help="continue the run in RUN_DIR")
@arg("--out", required=True, metavar="RUN_DIR")
def cmd_train_source(a):
    from forensics.generators.source_config import SourceConfig
    from forensics.generators.sources import train_source

    if a.config is None and (a.source is None or a.data is None or a.steps is None):
        raise UserError("give --source, --data and --steps, or --config FILE")
    cfg = SourceConfig.build(a.config, a.preset, a.source, assignments(a.params, "--params"), a.first_stage_steps,
                             data=a.data, size=a.size, steps=a.steps, inner_layer=a.inner_layer, padding=a.padding,
                             seed=a.seed, n_images=a.n_images, sample_every=a.sample_every,
                             checkpoint_every=a.checkpoint_every, device=a.device)
    r = train_source(cfg, a.out, a.resume)
    sps = r["steps_per_second"]
    print(f"forensics train-source: {cfg.label} at step {r['steps']}" + (f" ({sps:.2f} steps/s)" if sps else "")
          + f" -> {a.out}", file=sys.stderr)


@verb("sample-source", "write PNG samples of a trained source run, or its autoencoder's reconstructions of real images",
      """forensics sample-source runs/ldm --n 1000 --seed 1 --out fakes/ldm
      forensics sample-source runs/ddpm --n 500 --ddim-steps 100 --out fakes/ddpm
      forensics sample-source runs/ae-n13 --reconstruct builtin --out fakes/ae-n13-rec""")
@arg("run", metavar="RUN_DIR")
@arg("--out", required=True, metavar="DIR")
@arg("--n", type=int, default=None, help="number of images (with --reconstruct: at most this many)")
@arg("--seed", type=int, default=0, help="seed of the latents / initial noise (and of the --reconstruct subset)")
@arg("--ddim-steps", type=int, default=None, help="diffusion sources: DDIM steps (default: the preset's)")
@arg("--reconstruct", default=None, metavar="SRC",
     help="real images to reconstruct (builtin, a folder, an .npz) instead of sampling")
@arg("--device", default="auto")
@arg("--overwrite", action="store_true", help="replace earlier images in a non-empty --out folder")
def cmd_sample_source(a):
    from forensics.generators.sources import write_source_images

    if a.reconstruct is None and (not a.n or a.n < 1):
        raise UserError("give --n N (number of images), or --reconstruct SRC")
    r = write_source_images(a.run, a.out, a.n, a.seed, a.ddim_steps, a.reconstruct, a.device, overwrite=a.overwrite)
    what = "reconstructions" if a.reconstruct else "samples"
    print(f"forensics sample-source: {r['n']} PNG {what} of {r['source']} (step {r['step']}) -> {a.out}",
          file=sys.stderr)


@verb("build-corpus", "write a labelled corpus: real photo crops and the toolkit's own fakes (resampling chains, "
      "autoencoder reconstructions, GAN and diffusion samples), one processing distribution for both",
      """forensics build-corpus --out corpus/default
      forensics build-corpus --out corpus/tiny --preset tiny --families up,ae
      forensics build-corpus --out corpus/mine --real builtin-wide photos/ --seed 1""",
      flags={"kinds": "--families", "real": "--real"})
@arg("--out", required=True, metavar="DIR",
     help="the corpus folder (new or empty; a rerun with the same settings resumes, other settings are refused)")
@arg("--preset", default="default", choices=["tiny", "default"],
     help="default (35 fake families; an estimated 33 min on 2 idle cores, not measured) or tiny (seconds); data/build_wild_model.py uses a smaller set (wild-v1)")
@arg("--real", nargs="+", default=None, metavar="SOURCE",
     help="real photographs: builtin, builtin-wide (default) and/or folders of photos")
@arg("--seed", type=int, default=None)
@arg("--families", default=None, metavar="KIND,...",
     help="the kinds of fake to make: up, ae, gan, ddpm, ldm (default: the preset's, up,ae,gan)")
def cmd_build_corpus(a):
    from forensics.generators.corpus import CorpusConfig, build_corpus

    kinds = names(a.families)
    cfg = CorpusConfig.from_preset(a.preset, real=tuple(a.real) if a.real else None, seed=a.seed,
                                   kinds=tuple(kinds) if kinds is not None else None)
    r = build_corpus(cfg, a.out)
    print(f"forensics build-corpus: {r['images']} images ({r['real']} real, {r['fake']} generated in "
          f"{len(r['counts']) - 1} families), {sum(r['written'].values())} written in {r['seconds']:.0f} s -> {a.out}",
          file=sys.stderr)
