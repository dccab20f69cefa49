import numpy as np
import pytest
import torch

from forensics.core.errors import UserError
from forensics.generators.checkpoint import load_checkpoint, save_checkpoint
from forensics.generators.config import GanConfig
from forensics.generators.dcgan import Discriminator, Generator
from forensics.generators.layers import PAPER_SETUPS, LastLayerSpec, ZeroInsertion, zero_insertion_reference
from forensics.generators.runs import CHECKPOINT, load_run, sample_images
from forensics.generators.tensors import to_uint8
from forensics.generators.trainer import train_gan


def test_thirteen_setups_round_trip():
    assert len(PAPER_SETUPS) == 13 and len(set(PAPER_SETUPS)) == 13
    for s in PAPER_SETUPS:
        assert str(LastLayerSpec.parse(s)) == s
    for bad in ["N.1", "X.1.5", "N.0.5", "B.1.4", "baseline.1", ""]:
        with pytest.raises(ValueError):
            LastLayerSpec.parse(bad)


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("spec", PAPER_SETUPS)
def test_every_spec_builds_the_right_layers_and_shape(spec, size):
    torch.manual_seed(0)
    G = Generator(size, z_dim=8, ngf=4, last_layer=spec)
    x = G(torch.randn(2, 8))
    assert x.shape == (2, 3, size, size) and x.abs().max() <= 1
    s = LastLayerSpec.parse(spec)
    mods = list(G.last)
    if s.mode == "baseline":
        assert len(mods) == 1 and isinstance(mods[0], torch.nn.ConvTranspose2d)
        assert (mods[0].kernel_size, mods[0].stride, mods[0].padding) == ((4, 4), (2, 2), (1, 1))
        return
    up, convs = mods[0], mods[1:]
    if s.mode == "Z":
        assert isinstance(up, ZeroInsertion)
    else:
        assert isinstance(up, torch.nn.Upsample) and up.scale_factor == 2
        assert up.mode == {"N": "nearest", "B": "bilinear"}[s.mode]
        assert s.mode != "B" or up.align_corners is True
    assert len(convs) == s.n_convs and all(isinstance(c, torch.nn.Conv2d) for c in convs)
    assert all(c.kernel_size == (s.kernel, s.kernel) and c.padding == (s.kernel // 2,) * 2 for c in convs)
    assert convs[-1].out_channels == 3 and all(c.out_channels == 4 for c in convs[:-1])


def test_paper_architecture_at_128():
    G = Generator(128, z_dim=128, ngf=32)
    chans = [m.out_channels for m in G.body if isinstance(m, torch.nn.ConvTranspose2d)]
    assert chans == [512, 256, 128, 64, 32]
    D = Discriminator(128, ndf=32, norm="group")
    dch = [m.out_channels for m in D.trunk if isinstance(m, torch.nn.Conv2d)]
    assert dch == [32, 64, 128, 256, 512]
    assert sum(isinstance(m, torch.nn.GroupNorm) for m in D.trunk.modules()) == 4
    assert D(torch.randn(2, 3, 128, 128)).shape == (2,)


def test_zero_insertion_is_a_one_hot_transposed_conv():
    x = torch.randn(3, 5, 7, 9)
    z = ZeroInsertion()(x)
    assert z.shape == (3, 5, 14, 18)
    assert torch.equal(z, zero_insertion_reference(x))
    assert torch.equal(z[:, :, ::2, ::2], x) and z[:, :, 1::2].abs().sum() == 0


def test_pngs_are_rounded_not_truncated():
    v = torch.tensor([-1.0, 1.0, 0.0, 10.6 / 127.5 - 1, 10.4 / 127.5 - 1, -1.5, 1.2])
    x = v.view(1, 1, 1, -1).expand(1, 3, 1, -1)
    assert to_uint8(x)[0, 0, :, 0].tolist() == [0, 255, 128, 11, 10, 0, 255]


def test_checkpoint_round_trip_and_refuses_other_files(tmp_path):
    state = {"step": 3, "m": {"w": torch.randn(2, 3), 0: torch.arange(4)}, "l": [1.5, None, "x"],
             "t": (torch.ones(1), 2), "nested": {"a": {"b": torch.zeros(0)}}}
    save_checkpoint(tmp_path / "c.safetensors", state)
    back = load_checkpoint(tmp_path / "c.safetensors")
    assert back["step"] == 3 and back["l"] == [1.5, None, "x"] and isinstance(back["t"], tuple)
    assert torch.equal(back["m"]["w"], state["m"]["w"]) and torch.equal(back["m"][0], torch.arange(4))
    import pickle

    (tmp_path / "evil.safetensors").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(UserError, match="not a readable"):
        load_checkpoint(tmp_path / "evil.safetensors")


def _tiny(tmp_path, gan, steps, name, resume=False, spec="baseline", objective=None, quant="none"):
    cfg = GanConfig.tiny(gan, {"ngf": 4, "ndf": 4, "batch": 16}, last_layer=spec, size=16, steps=steps,
                         n_images=512, sample_every=1000, checkpoint_every=4, objective=objective, quant=quant,
                         objective_params={"nrkhs": 16} if objective == "infomax" else {})
    return train_gan(cfg, tmp_path / name, resume=resume, progress=False)


@pytest.mark.parametrize("gan", ["dcgan", "lsgan", "wgan-gp"])
def test_short_run_trains_and_samples(gan, tmp_path):
    _tiny(tmp_path, gan, 0, "init", spec="N.1.5")
    _tiny(tmp_path, gan, 30, "run", spec="N.1.5")
    task, cfg = load_run(tmp_path / "run")
    trained = task.G.state_dict()
    init_last = load_checkpoint(tmp_path / "init" / CHECKPOINT)["modules"]["G"]
    assert cfg.params["lr_g"] > 0 and task.step == 30
    changed = [k for k in trained if trained[k].dtype.is_floating_point and k in init_last
               and trained[k].shape == init_last[k].shape and not torch.equal(trained[k], init_last[k])]
    assert len(changed) > 5  # the generator moved
    imgs = next(sample_images(task, 16, seed=0))
    assert imgs.shape == (16, 16, 16, 3) and imgs.dtype == np.uint8
    assert imgs.std() > 5 and len({im.tobytes() for im in imgs}) == 16  # not constant, not collapsed to one
    assert (tmp_path / "run" / "samples" / "latest.png").is_file()
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert len(log) == 31 and log[0].startswith("step,")


@pytest.mark.parametrize("gan,objective,quant", [
    ("dcgan", None, "none"), ("lsgan", None, "none"), ("wgan-gp", None, "none"), ("dcgan", "infomax", "none"),
    ("lsgan", "ssgan", "none"), ("dcgan", "ssgan-ms", "none"), ("wgan-gp", "dag", "none"),
    ("dcgan", None, "w4a4"), ("dcgan", "infomax", "w3a4")])
def test_resume_is_bit_identical(gan, objective, quant, tmp_path):
    steps = 6 if gan == "wgan-gp" and objective else 12
    _tiny(tmp_path, gan, steps, "straight", objective=objective, quant=quant)
    _tiny(tmp_path, gan, steps // 2, "split", objective=objective, quant=quant)
    _tiny(tmp_path, gan, steps, "split", resume=True, objective=objective, quant=quant)
    a = load_checkpoint(tmp_path / "straight" / CHECKPOINT)
    b = load_checkpoint(tmp_path / "split" / CHECKPOINT)
    for net in ("G", "D"):
        for k, v in a["modules"][net].items():
            assert torch.equal(v, b["modules"][net][k]), (net, k)
    assert torch.equal(a["gen"], b["gen"])
    assert (tmp_path / "straight" / "log.csv").read_text() == (tmp_path / "split" / "log.csv").read_text()


def test_config_json_reproduces_the_run_and_flags_override_it(tmp_path):
    from forensics.cli.main import main

    args = ["train-gan", "--gan", "dcgan", "--data", "builtin", "--size", "16", "--steps", "3", "--preset", "tiny",
            "--objective", "ssgan-ms", "--objective-params", "lambda_g=0.05", "--quant", "w4a4",
            "--n-images", "256", "--batch", "16", "--last-layer", "Z.1.3"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    cfg = GanConfig.load(tmp_path / "a" / "config.json")
    assert (cfg.objective, cfg.quant, cfg.last_layer, cfg.params["batch"]) == ("ssgan-ms", "w4a4", "Z.1.3", 16)
    assert cfg.objective_params == {"loss": "hinge", "lambda_d": 1.0, "lambda_g": 0.05}
    assert main(["train-gan", "--config", str(tmp_path / "a" / "config.json"), "--out", str(tmp_path / "b")]) == 0
    a = load_checkpoint(tmp_path / "a" / CHECKPOINT)["modules"]
    b = load_checkpoint(tmp_path / "b" / CHECKPOINT)["modules"]
    assert all(torch.equal(v, b[net][k]) for net in ("G", "D") for k, v in a[net].items())  # the same run again
    assert main(["train-gan", "--config", str(tmp_path / "a" / "config.json"), "--quant", "none", "--steps", "1",
                 "--out", str(tmp_path / "c")]) == 0
    c = GanConfig.load(tmp_path / "c" / "config.json")
    assert c == cfg.replace(quant="none", steps=1)
    d = GanConfig.build(tmp_path / "a" / "config.json", objective="infomax")  # ssgan-ms weights dropped
    assert d.objective == "infomax" and d.resolved().objective_params["alpha"] == 0.2 and d.quant == "w4a4"
    assert main(["train-gan", "--config", str(tmp_path / "a" / "config.json"), "--steps", "5", "--resume",
                 "--objective", "dag", "--objective-params", "policy=cropping", "--out", str(tmp_path / "a")]) == 2


def test_run_folder_guards(tmp_path):
    _tiny(tmp_path, "dcgan", 2, "r")
    with pytest.raises(UserError, match="already holds a run"):
        _tiny(tmp_path, "dcgan", 4, "r")
    with pytest.raises(UserError, match="different settings"):
        _tiny(tmp_path, "dcgan", 4, "r", resume=True, spec="B.1.5")
    with pytest.raises(UserError, match="nothing to resume"):
        _tiny(tmp_path, "dcgan", 4, "fresh", resume=True)


@pytest.fixture(scope="module")
def attr_folder(tmp_path_factory):
    from PIL import Image

    from forensics.io.sources import builtin_patches

    root = tmp_path_factory.mktemp("attrs")
    (root / "imgs").mkdir()
    rows = ["filename,Bright,Warm"]
    for i, im in enumerate(builtin_patches(16, n=64, seed=0).images):
        Image.fromarray(im).save(root / "imgs" / f"{i:03d}.png")
        rows.append(f"{i:03d}.png,{int(im.mean() > 110)},{int(im[..., 0].mean() > im[..., 2].mean())}")
    (root / "attrs.csv").write_text("\n".join(rows) + "\n")
    return root


def _star(attr_folder, spec, steps):
    return GanConfig.tiny("stargan", {"conv_dim": 4, "n_res": 1, "batch": 8}, last_layer=spec,
                          data=str(attr_folder / "imgs"), size=16, steps=steps, attrs=("Bright", "Warm"),
                          attributes=str(attr_folder / "attrs.csv"))


def test_stargan_translates_and_attributes_matter(attr_folder, tmp_path):
    r = train_gan(_star(attr_folder, "B.1.5", 3), tmp_path / "star", progress=False)
    assert r["steps"] == 3
    task, cfg = load_run(tmp_path / "star")
    assert cfg.attrs == ("Bright", "Warm")
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    a = task.translate(x, torch.tensor([[1.0, 0.0]] * 4))
    b = task.translate(x, torch.tensor([[0.0, 0.0]] * 4))
    assert a.shape == x.shape
    assert (a - b).abs().mean() > 1e-4  # the target attribute changes the output
    assert torch.allclose(task.translate(x[:1], torch.tensor([[1.0, 0.0]])), a[:1], atol=1e-6)  # batch-independent
    from forensics.cli.main import main

    assert main(["generate", str(tmp_path / "star"), "--input", str(attr_folder / "imgs"), "--set", "Bright=1",
                 "--out", str(tmp_path / "tr")]) == 0
    assert len(list((tmp_path / "tr").glob("*.png"))) == 64
    assert main(["generate", str(tmp_path / "star"), "--input", str(attr_folder / "imgs"), "--set", "Tall=1",
                 "--out", str(tmp_path / "tr2")]) == 2


def test_generate_cli_writes_lossless_pngs(tmp_path):
    from PIL import Image

    from forensics.cli.main import main

    _tiny(tmp_path, "dcgan", 2, "g")
    assert main(["generate", str(tmp_path / "g"), "--n", "5", "--out", str(tmp_path / "o"), "--seed", "3"]) == 0
    files = sorted((tmp_path / "o").glob("*.png"))
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(5)]
    task, _ = load_run(tmp_path / "g")
    expect = next(sample_images(task, 5, seed=3))
    assert all(np.array_equal(np.asarray(Image.open(f).convert("RGB")), e) for f, e in zip(files, expect))
    # a non-empty folder is refused; --overwrite leaves exactly the new samples (none of the old five)
    assert main(["generate", str(tmp_path / "g"), "--n", "2", "--out", str(tmp_path / "o")]) == 2
    assert len(list((tmp_path / "o").glob("*.png"))) == 5
    (tmp_path / "o" / "notes.txt").write_text("mine")
    assert main(["generate", str(tmp_path / "g"), "--n", "2", "--out", str(tmp_path / "o"), "--overwrite"]) == 0
    assert sorted(f.name for f in (tmp_path / "o").iterdir()) == ["000000.png", "000001.png", "config.json",
                                                                  "notes.txt"]


def test_stargan_resume_is_bit_identical(attr_folder, tmp_path):
    def run(name, steps, resume=False):
        train_gan(_star(attr_folder, "N.1.3", steps), tmp_path / name, resume=resume, progress=False)

    run("straight", 4)
    run("split", 2)
    run("split", 4, resume=True)
    a = load_checkpoint(tmp_path / "straight" / CHECKPOINT)["modules"]
    b = load_checkpoint(tmp_path / "split" / CHECKPOINT)["modules"]
    assert all(torch.equal(v, b[net][k]) for net in ("G", "D") for k, v in a[net].items())
