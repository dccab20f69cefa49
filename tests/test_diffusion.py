"""Diffusion-era sources (issue 20): autoencoders whose decoder up-blocks take the last-layer spec, a
pixel-space DDPM and a latent diffusion model, their config, spec syntax, training and sampling."""
import json

import numpy as np
import pytest
import torch

from forensics.core.errors import UserError
from forensics.generators.autoencoder import Autoencoder, Decoder
from forensics.generators.checkpoint import load_checkpoint
from forensics.generators.dcgan import Generator
from forensics.generators.diffusion import NoiseSchedule
from forensics.generators.layers import DECODER_SETUPS, PAPER_SETUPS, LastLayerSpec, ZeroInsertion
from forensics.generators.runs import CHECKPOINT
from forensics.generators.source_config import SourceConfig
from forensics.generators.sources import (
    FIRST_STAGE,
    Source,
    grid_peak_ratio,
    is_source_spec,
    make_source,
    parse_source,
    parse_sources,
    source_config,
    train_source,
)
from forensics.generators.unet import UNet

#: specs whose x2 upsampling maps a constant map to a constant map (no transposed convolution in disguise)
SMOOTH = [s for s in DECODER_SETUPS if s[0] in "NB"]
#: transposed convolutions, zero insertion and pixel shuffle: four output phases with different filters
PHASED = [s for s in DECODER_SETUPS if s not in SMOOTH]
SMALL_AE = {"ch": 8, "z_ch": 4}


def _ae(spec, factor, kind="ae-kl", padding="replicate", params=SMALL_AE, dtype=torch.float32, seed=0):
    c = SourceConfig.tiny(kind, params, factor=factor, last_layer=spec, padding=padding)
    torch.manual_seed(seed)
    return Autoencoder(c.kind, c.params, factor, c.padding, spec).eval().to(dtype)


def _hwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(0, 2, 3, 1).numpy()


# ------------------------------------------------------------------------------ spec and shapes
def test_pixel_shuffle_is_one_extra_spec():
    assert DECODER_SETUPS == PAPER_SETUPS + ("P.1.3",)
    s = LastLayerSpec.parse("p.1.3")
    assert str(s) == "P.1.3" and s.describe(32, 3) == "conv3x3 32->12 -> pixel shuffle x2"
    layers = list(s.build(32, 3))
    assert isinstance(layers[-1], torch.nn.PixelShuffle) and layers[0].out_channels == 12
    assert LastLayerSpec.parse("P.3.5").build(8, 3)(torch.randn(1, 8, 5, 5)).shape == (1, 3, 10, 10)
    with pytest.raises(ValueError, match="N, B, Z or P"):
        LastLayerSpec.parse("Q.1.3")


@pytest.mark.parametrize("factor", [4, 8])
@pytest.mark.parametrize("spec", DECODER_SETUPS)
def test_every_decoder_spec_builds_and_upsamples_to_the_right_size(spec, factor):
    m = _ae(spec, factor)
    dec: Decoder = m.decoder
    assert len(dec.ups) == {4: 2, 8: 3}[factor] and dec.specs == [spec] * len(dec.ups)
    s = LastLayerSpec.parse(spec)
    sizes = []
    for up in dec.ups:  # each up-block is the GANs' builder's layers for the spec
        kinds = [type(layer) for layer in up]
        if s.mode == "baseline":
            assert kinds == [torch.nn.ConvTranspose2d]
        elif s.mode == "P":
            assert kinds == [torch.nn.Conv2d] * s.n_convs + [torch.nn.PixelShuffle]
        else:
            assert kinds[0] in (torch.nn.Upsample, ZeroInsertion) and kinds[1:] == [torch.nn.Conv2d] * s.n_convs
        up.register_forward_hook(lambda mod, i, o: sizes.append((i[0].shape[-1], o.shape[-1])))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        z = m.latent(x)
        y = m.decode(z)
    assert z.shape == (2, 4, 32 // factor, 32 // factor) and y.shape == (2, 3, 32, 32)
    assert sizes == [(32 // factor * 2 ** i, 32 // factor * 2 ** (i + 1)) for i in range(len(dec.ups))]


def test_inner_layer_gives_the_gans_layout_and_the_unet_takes_the_spec():
    p = SourceConfig.tiny("ae-kl", SMALL_AE).params
    m = Autoencoder("ae-kl", p, 8, "replicate", "N.1.5", inner_layer="baseline")
    assert m.decoder.specs == ["baseline", "baseline", "N.1.5"]
    p = SourceConfig.tiny("ddpm", {"ch": 8}).params
    for spec in ("baseline", "P.1.3", "B.3.5"):
        net = UNet(3, p, "replicate", spec)
        assert net.specs == [spec, spec] and len(net.describe()) == 2
        assert net(torch.randn(2, 3, 16, 16), torch.tensor([0, 999])).shape == (2, 3, 16, 16)


# ------------------------------------------------------------------------------ constant images
@pytest.mark.parametrize("kind", ["ae-kl", "ae-vq"])
@pytest.mark.parametrize("factor", [4, 8])
def test_a_constant_image_reconstructs_constant(kind, factor):
    """Exactly so in exact arithmetic for nearest and bilinear decoders: every layer is shift-equivariant,
    there is no positional input, and replicate padding gives the border nothing to tell a position by.
    What is left is rounding: the same sums are summed in a different order at different pixels
    (vectorised kernels), and bilinear weights w and 1 - w do not add to exactly 1; measured ~1e-7 (N) and
    ~1e-5 (B) in float32, ~1e-14 in float64. So: 1e-9 in float64, 1e-4 in float32 (a 1/80 of a uint8 level).
    The transposed-type decoders (baseline, Z, P) at random init are not constant at all (their checkerboard),
    and zero padding makes a border: both checked, so the test can fail."""
    x = torch.full((2, 3, 32, 32), 0.3)
    dev = {}
    for spec in DECODER_SETUPS:
        for dtype in (torch.float64, torch.float32):
            with torch.no_grad():
                y = _ae(spec, factor, kind, dtype=dtype)(x.to(dtype))
            dev[spec, dtype] = (y - y.mean((2, 3), keepdim=True)).abs().max().item()
    for s in SMOOTH:
        assert dev[s, torch.float64] <= 1e-9 and dev[s, torch.float32] <= 1e-4, (s, dev[s, torch.float64])
    for s in PHASED:
        assert dev[s, torch.float32] > 1e-2, s
    with torch.no_grad():
        y = _ae("N.1.3", factor, kind, padding="zeros", dtype=torch.float64)(x.double())
    assert (y - y.mean((2, 3), keepdim=True)).abs().max() > 1e-3  # the zero border leaks in


# ------------------------------------------------------------------------------ spectra at init
@pytest.mark.parametrize("factor", [4, 8])
def test_transposed_decoders_leave_a_periodic_peak_that_nearest_and_bilinear_do_not(factor):
    """At a fixed random init, decoded N(0, 1) latents: the grey power spectrum at the harmonics of
    1/factor vs its neighbours. Transposed convolution, zero insertion and pixel shuffle give their four
    output phases different filters, so a map's mean comes out as a period-2 grid at every up-block;
    nearest + conv and bilinear + conv do not (width 16, 32 px, 32 images, measured: >= 10.4 vs <= 4.0)."""
    ratio = {}
    z = torch.randn(32, 4, 32 // factor, 32 // factor, generator=torch.Generator().manual_seed(0))
    for spec in DECODER_SETUPS:
        with torch.no_grad():
            ratio[spec] = grid_peak_ratio(_hwc(_ae(spec, factor, params={"ch": 16, "z_ch": 4}).decoder(z)), factor)
    assert all(ratio[s] > 8 for s in PHASED), ratio
    assert all(ratio[s] < 5 for s in SMOOTH), ratio


def test_the_gan_version_at_init_period_two():
    """The same measure on the GANs at init (PyTorch's init, eval mode): the last layer sets the Nyquist
    (period-2) peak; their transposed-convolution body leaves peaks at coarser periods whatever it is."""
    ratio = {}
    for spec in ("baseline", "Z.1.5", "N.1.5", "B.1.5"):
        torch.manual_seed(0)
        G = Generator(32, 64, 16, spec, init="pytorch").eval()
        with torch.no_grad():
            ratio[spec] = grid_peak_ratio(_hwc(G(torch.randn(32, 64, generator=torch.Generator().manual_seed(0)))), 2)
    assert ratio["baseline"] > 20 and ratio["Z.1.5"] > 20, ratio
    assert ratio["N.1.5"] < 8 and ratio["B.1.5"] < 8, ratio


def test_grid_peak_ratio_finds_a_planted_grid():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 32, 32, 3))
    grid = np.zeros((32, 32))
    grid[::4, ::4] = 3.0
    assert grid_peak_ratio(x, 4) < 3 and grid_peak_ratio(x + grid[None, :, :, None], 4) > 30
    with pytest.raises(ValueError):
        grid_peak_ratio(x, 5)


# ------------------------------------------------------------------------------ spec syntax and configs
def test_source_spec_syntax():
    assert str(parse_source("ae-kl:N.1.3")) == "ae-kl:N.1.3"
    s = parse_source(" ae-vq-f8:p.1.3 ")
    assert (s.kind, s.last_layer, s.factor, str(s)) == ("ae-vq", "P.1.3", 8, "ae-vq-f8:P.1.3")
    assert str(parse_source("ldm-f4:baseline")) == "ldm:baseline"
    assert [str(x) for x in parse_sources("ae-kl:N.1.3,ldm:baseline")] == ["ae-kl:N.1.3", "ldm:baseline"]
    for bad in ["N.1.5", "ae-kl", "ae-kl:", "gan:N.1.3", "ae-kl:X.1.5", "ae-kl-f2:N.1.3", "ddpm-f8:N.1.3"]:
        assert not is_source_spec(bad)
        with pytest.raises(ValueError, match="bad source spec"):
            parse_source(bad)
    assert is_source_spec("ddpm:Z.3.5")


def test_source_configs_and_their_keys_follow_the_spec():
    base = SourceConfig.tiny("ae-kl", size=64, steps=123, seed=7, data="builtin")
    a, b = make_source("ae-kl:N.1.3", base), make_source("ae-kl:baseline", base)
    assert a.key != b.key and a.spec == "ae-kl:N.1.3" and b.spec == "ae-kl:baseline"
    assert make_source("ae-kl:N.1.3", base).key == a.key  # stable
    assert make_source("ae-kl:N.1.3", base, sample_every=7, device="cpu").key == a.key  # not what the images depend on
    assert make_source("ae-kl:N.1.3", base, steps=124).key != a.key
    assert make_source("ae-kl-f8:N.1.3", base).key != a.key
    ldm = source_config("ldm-f8:Z.1.5", base)
    assert (ldm.kind, ldm.factor, ldm.size, ldm.steps, ldm.seed, ldm.last_layer) == ("ldm", 8, 64, 123, 7, "Z.1.5")
    ae = ldm.autoencoder()
    assert (ae.kind, ae.factor, ae.last_layer, ae.size, ae.steps) == ("ae-kl", 8, "Z.1.5", 64, ldm.first_stage.steps)
    assert source_config("ddpm:B.1.3", base).factor is None
    assert SourceConfig.from_dict(json.loads(json.dumps(ldm.to_dict()))) == ldm
    with pytest.raises(ValueError, match="factor"):
        SourceConfig.tiny("ae-kl", factor=2)
    with pytest.raises(ValueError, match="no hyper-parameter"):
        SourceConfig.tiny("ddpm", {"kl_weight": 1.0})
    with pytest.raises(ValueError, match="first stage"):
        SourceConfig.tiny("ae-kl").replace(first_stage=ldm.first_stage)


# ------------------------------------------------------------------------------ training, resuming, sampling
def _cfg(kind, steps, **kw):
    params = {"ae-kl": {"ch": 8, "batch": 8}, "ae-vq": {"ch": 8, "batch": 8, "n_codes": 32},
              "ddpm": {"ch": 8, "batch": 8, "ddim_steps": 5}, "ldm": {"ch": 8, "batch": 8, "ddim_steps": 5}}[kind]
    c = SourceConfig.tiny(kind, params, size=16, steps=steps, n_images=64, sample_every=1000, checkpoint_every=3, **kw)
    if kind == "ldm":
        c = c.replace(first_stage=c.first_stage.replace(steps=4, params={**c.first_stage.params, "ch": 8, "batch": 8}))
    return c


@pytest.mark.parametrize("kind,params", [("ae-kl", {"disc_weight": 0.5, "disc_start": 2, "ndf": 8}),
                                         ("ae-vq", {}), ("ddpm", {}), ("ldm", {})])
def test_training_resumes_bit_identically(kind, params, tmp_path):
    k = 4
    full = _cfg(kind, 2 * k).with_params(**params)
    train_source(full, tmp_path / "straight", progress=False)
    train_source(full.replace(steps=k), tmp_path / "split", progress=False)
    train_source(full, tmp_path / "split", resume=True, progress=False)
    a, b = load_checkpoint(tmp_path / "straight" / CHECKPOINT), load_checkpoint(tmp_path / "split" / CHECKPOINT)
    assert a["step"] == b["step"] == 2 * k
    assert set(a["modules"]) == set(b["modules"]) >= ({"AE", "D"} if params else set())
    for net in a["modules"]:
        for name, v in a["modules"][net].items():
            assert torch.equal(v, b["modules"][net][name]), (net, name)
    assert torch.equal(a["gen"], b["gen"])
    assert (tmp_path / "straight" / "log.csv").read_text() == (tmp_path / "split" / "log.csv").read_text()
    if kind == "ldm":
        assert (tmp_path / "split" / FIRST_STAGE / CHECKPOINT).is_file()
        assert torch.equal(a["fixed"]["latent_scale"], b["fixed"]["latent_scale"])


def test_weights_move_and_a_trained_nearest_decoder_keeps_constants_constant(tmp_path):
    cfg = _cfg("ae-kl", 6)
    train_source(cfg.replace(steps=0), tmp_path / "init", progress=False)
    r = train_source(cfg, tmp_path / "run", progress=False)
    assert r["steps"] == 6
    a = load_checkpoint(tmp_path / "init" / CHECKPOINT)["modules"]["AE"]
    src = Source.load(tmp_path / "run")
    b = src.task.model.state_dict()
    assert sum(not torch.equal(a[n], b[n]) for n in a) > 10
    rec = src.reconstruct(np.full((2, 16, 16, 3), 77, np.uint8))
    assert rec.shape == (2, 16, 16, 3) and all(len(np.unique(rec[i, ..., c])) == 1 for i in range(2) for c in range(3))
    assert (tmp_path / "run" / "samples" / "latest.png").is_file()


@pytest.mark.parametrize("kind", ["ae-kl", "ae-vq", "ddpm", "ldm"])
def test_sampling_is_seeded_and_shaped(kind, tmp_path):
    src = Source(_cfg(kind, 2))
    with pytest.raises(UserError, match="not trained"):
        src.sample(2)
    src.train(tmp_path / "r", progress=False)
    a, b, c = src.sample(5, seed=3, batch=2), src.sample(5, seed=3, batch=2), src.sample(5, seed=4, batch=2)
    assert a.shape == (5, 16, 16, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    again = Source.load(tmp_path / "r")  # a loaded run samples the same images
    assert np.array_equal(again.sample(5, seed=3, batch=2), a)
    real = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    if kind == "ddpm":
        calls = []
        hook = src.task.ema.register_forward_hook(lambda *_: calls.append(1))
        src.sample(3, seed=3, batch=3, steps=2)
        src.sample(3, seed=3, batch=3)
        hook.remove()
        assert len(calls) == 2 + 5  # the DDIM step count given, then the preset's (ddim_steps 5 here)
        with pytest.raises(ValueError, match="no encoder"):
            src.reconstruct(real)
    else:
        assert src.reconstruct(real).shape == real.shape


def test_ddim_recovers_the_data_of_a_perfect_denoiser_at_any_step_count():
    """For data that are one point ``x0``, the ideal noise prediction is ``(x - sqrt(abar) x0) / sqrt(1 - abar)``;
    DDIM (eta 0) must land on ``x0`` whatever the step count."""
    from forensics.generators.diffusion import ddim_sample

    s = NoiseSchedule(1000, 1e-4, 0.02)
    x0 = torch.linspace(-0.9, 0.9, 2 * 3 * 4 * 4).view(2, 3, 4, 4)

    def ideal(x, t):
        a = s.abar[t.cpu()].view(-1, 1, 1, 1)  # float64: 1 - abar_0 = 1e-4 loses 4 digits in float32
        return ((x.double() - a.sqrt() * x0.double()) / (1 - a).sqrt()).float()

    for steps in (1, 7, 50):
        noise = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
        out = ddim_sample(ideal, s, noise, steps, clip=True)
        assert torch.allclose(out, x0, atol=1e-4), steps


def test_ddim_timesteps_and_schedules():
    s = NoiseSchedule(1000, 1e-4, 0.02)
    assert s.ddim_timesteps(1) == [0] and s.ddim_timesteps(5) == [999, 749, 500, 250, 0]
    assert len(s.ddim_timesteps(1000)) == 1000 and 0 < float(s.abar[-1]) < 1e-4 < float(s.abar[0]) < 1
    with pytest.raises(ValueError):
        s.ddim_timesteps(1001)
    sl = NoiseSchedule(1000, 0.0015, 0.0195, "scaled-linear")
    assert float(sl.abar[-1]) > float(NoiseSchedule(1000, 0.0015, 0.0195).abar[-1])


def test_run_folder_guards(tmp_path):
    cfg = _cfg("ae-kl", 2)
    train_source(cfg, tmp_path / "r", progress=False)
    assert SourceConfig.load(tmp_path / "r" / "config.json") == cfg
    with pytest.raises(UserError, match="already holds a run"):
        train_source(cfg, tmp_path / "r", progress=False)
    with pytest.raises(UserError, match=r"different settings \(last_layer\)"):
        train_source(cfg.replace(last_layer="baseline", steps=4), tmp_path / "r", resume=True, progress=False)
    with pytest.raises(UserError, match="nothing to resume"):
        train_source(_cfg("ldm", 2), tmp_path / "none", resume=True, progress=False)
    with pytest.raises(UserError, match="not a finished"):
        Source.load(tmp_path / "none")


# ------------------------------------------------------------------------------ the CLI
def test_train_and_sample_source_cli(tmp_path, capsys):
    from forensics.cli.main import main

    run = tmp_path / "ldm"
    args = ["train-source", "--source", "ldm:Z.1.3", "--data", "builtin", "--size", "16", "--steps", "2",
            "--first-stage-steps", "2", "--n-images", "32", "--params", "ch=8,batch=8,ddim_steps=3", "--out", str(run)]
    assert main(args) == 0
    cfg = SourceConfig.load(run / "config.json")
    assert (cfg.kind, cfg.factor, cfg.last_layer, cfg.first_stage.steps, cfg.params["ch"]) == ("ldm", 4, "Z.1.3", 2, 8)
    assert SourceConfig.load(run / FIRST_STAGE / "config.json").last_layer == "Z.1.3"
    assert main(["sample-source", str(run), "--n", "3", "--out", str(tmp_path / "s")]) == 0
    assert sorted(p.name for p in (tmp_path / "s").glob("*.png")) == ["000000.png", "000001.png", "000002.png"]
    assert main(["sample-source", str(run), "--reconstruct", "builtin", "--n", "4", "--out", str(tmp_path / "r")]) == 0
    assert len(list((tmp_path / "r").glob("*.png"))) == 4
    assert json.loads((tmp_path / "r" / "config.json").read_text())["source"] == "ldm:Z.1.3"
    capsys.readouterr()
    assert main(["train-source", "--source", "ae-kl:X.1.3", "--data", "builtin", "--steps", "1",
                 "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "bad source spec 'ae-kl:X.1.3'" in err and "Traceback" not in err
