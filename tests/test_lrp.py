"""LRP rules against hand-computed relevances, conservation, frequency-space relevance,
and the small CNN detector (fit, save/load without code, clone)."""
import numpy as np
import pytest
import torch
from torch import nn

from forensics.detectors.lrp import frequency_relevance, lrp, mlp_from_sklearn, mlp_from_state, radial_relevance

torch.set_num_threads(1)


def _set(layer, weight, bias=None):
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight, dtype=layer.weight.dtype))
        if bias is not None:
            layer.bias.copy_(torch.tensor(bias, dtype=layer.weight.dtype))
    return layer


# ------------------------------------------------------------------ hand-set weights
def test_epsilon_rule_by_hand():
    # x = (1, 1); hidden z = (1*1 + 2*1, 3*1 - 1*1) = (3, 2); out = 3 - 0.5*2 = 2.
    # output layer: R_h = (3*1/2*2, 2*(-0.5)/2*2) = (3, -1)
    # hidden 1 (z=3): contributions (1, 2) -> (1, 2); hidden 2 (z=2): (3, -1) -> (-1.5, 0.5)
    # so R_x = (1 - 1.5, 2 + 0.5) = (-0.5, 2.5), summing to the output 2.
    l1 = _set(nn.Linear(2, 2, bias=False).double(), [[1.0, 2.0], [3.0, -1.0]])
    l2 = _set(nn.Linear(2, 1, bias=False).double(), [[1.0, -0.5]])
    R, trail = lrp([l1, nn.ReLU(), l2], torch.tensor([[1.0, 1.0]], dtype=torch.float64), eps=1e-12,
                   return_all=True)
    np.testing.assert_allclose(trail[2].numpy(), [[3.0, -1.0]], atol=1e-9)
    np.testing.assert_allclose(R.numpy(), [[-0.5, 2.5]], atol=1e-9)


def test_epsilon_rule_ignores_bias_in_the_denominator():
    # a bias of 10 changes the output (13) but not how it is shared: R_x = 13 * (1, 2) / 3
    l1 = _set(nn.Linear(2, 1).double(), [[1.0, 2.0]], [10.0])
    R = lrp([l1], torch.tensor([[1.0, 1.0]], dtype=torch.float64), eps=1e-12)
    np.testing.assert_allclose(R.numpy(), [[13 / 3, 26 / 3]], atol=1e-9)


def test_alpha1beta0_conv_by_hand():
    # input (1, -2, 3), kernel (2, 1, 1): contributions (2, -2, 3); only the positive ones
    # (2 and 3) share the output relevance 10 -> (4, 0, 6). A rule that multiplied the
    # signed input by the positive weights would give the middle input -2 * 10/3 instead.
    conv = _set(nn.Conv2d(1, 1, (1, 3), bias=False).double(), [[[[2.0, 1.0, 1.0]]]])
    x = torch.tensor([[[[1.0, -2.0, 3.0]]]], dtype=torch.float64)
    R = lrp([conv], x, torch.tensor([[[[10.0]]]], dtype=torch.float64))
    np.testing.assert_allclose(R.numpy().ravel(), [4.0, 0.0, 6.0], atol=1e-12)
    # negative input times negative weight is a positive contribution: (1,-2,3) * (2,-1,1) = (2, 2, 3)
    _set(conv, [[[[2.0, -1.0, 1.0]]]])
    R = lrp([conv], x, torch.tensor([[[[7.0]]]], dtype=torch.float64))
    np.testing.assert_allclose(R.numpy().ravel(), [2.0, 2.0, 3.0], atol=1e-12)


def test_batchnorm_is_identity_and_avgpool_is_proportional():
    bn = nn.BatchNorm2d(1).double().eval()
    with torch.no_grad():
        bn.running_mean.fill_(3.0)
        bn.running_var.fill_(0.25)
        bn.weight.fill_(-2.0)
        bn.bias.fill_(5.0)
    x = torch.tensor([[[[1.0, 3.0], [0.0, 4.0]]]], dtype=torch.float64)
    R = lrp([bn], x, torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=torch.float64))
    np.testing.assert_allclose(R.numpy().ravel(), [1, 2, 3, 4])
    # average pool of (1, 3, 0, 4) = 2; relevance 8 split in proportion 1:3:0:4
    R = lrp([nn.AvgPool2d(2)], x, torch.tensor([[[[8.0]]]], dtype=torch.float64), eps=1e-12)
    np.testing.assert_allclose(R.numpy().ravel(), [1.0, 3.0, 0.0, 4.0], atol=1e-9)


# ------------------------------------------------------------------ conservation
def test_conservation_bias_free_relu_cnn():
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.ReLU(), nn.AvgPool2d(2),
              nn.Conv2d(6, 8, 3, padding=1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
              nn.Flatten(), nn.Linear(8, 1, bias=False)]
    layers = [m.double() for m in layers]
    x = torch.randn(5, 3, 8, 8, dtype=torch.float64)
    out = nn.Sequential(*layers)(x)[:, 0]
    R, trail = lrp(layers, x, eps=1e-12, return_all=True)
    for r in trail:  # every layer hands on exactly what it received
        np.testing.assert_allclose(r.reshape(5, -1).sum(1).numpy(), out.detach().numpy(), rtol=1e-8)


def test_sklearn_mlp_wrapper_matches_and_conserves():
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 6))
    y = (X[:, 0] + 0.5 * X[:, 3] > 0).astype(int)
    est = MLPClassifier((5, 4), activation="logistic", solver="lbfgs", max_iter=500, random_state=0).fit(X, y)
    net = mlp_from_sklearn(est)
    logit = net(torch.from_numpy(X)).detach().numpy()[:, 0]
    # an independent oracle: scikit-learn's own probabilities
    np.testing.assert_allclose(1 / (1 + np.exp(-logit)), est.predict_proba(X)[:, 1], rtol=1e-9, atol=1e-12)
    R = lrp(net, torch.from_numpy(X[:10]), eps=1e-12).numpy()
    np.testing.assert_allclose(R.sum(1), logit[:10], rtol=1e-7)
    # the stored-state path (W0, b0, ...) builds the same network
    arrays = {f"{k}{i}": v for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)) for k, v in (("W", W), ("b", b))}
    net2 = mlp_from_state(arrays, 3)
    np.testing.assert_allclose(net2(torch.from_numpy(X)).detach().numpy()[:, 0], logit)


def test_unknown_layer_is_refused():
    with pytest.raises(ValueError, match="no LRP rule"):
        lrp([nn.MaxPool2d(2)], torch.zeros(1, 1, 2, 2))


# ------------------------------------------------------------------ frequency space
def test_frequency_relevance_known_answer():
    # x = 2 + cos(2 pi 4 q / 16) along columns, R = x * cos(...): R/x is a pure cosine of
    # 4 cycles, so all relevance lands on frequency (0, +-4): X there is 16*16/2 and
    # ifft2(R/x) is 1/2, so each gets 64; ring 4 holds the total sum(R) = 16*16/2
    n = 16
    c = np.cos(2 * np.pi * 4 * np.arange(n) / n)[None, :].repeat(n, 0)
    x = 2.0 + c
    R = x * c
    Rk = frequency_relevance(x[None], R[None])
    assert Rk.sum() == pytest.approx(R.sum()) and R.sum() == pytest.approx(n * n / 2)
    centre = n // 2
    np.testing.assert_allclose([Rk[0, centre, centre - 4], Rk[0, centre, centre + 4]], [n * n / 4] * 2)
    rings = radial_relevance(Rk)
    assert rings[0, 4] == pytest.approx(n * n / 2)
    assert np.abs(np.delete(rings[0], 4)).max() < 1e-9
    # relevance proportional to the input is all DC
    Rk = frequency_relevance(x[None], 3 * x[None])
    assert radial_relevance(Rk)[0, 0] == pytest.approx(3 * x.sum())


def test_frequency_relevance_conserves_random():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 12, 12))
    R = x * rng.standard_normal(x.shape)
    Rk = frequency_relevance(x, R)
    np.testing.assert_allclose(Rk.sum((-2, -1)), R.sum((-2, -1)), rtol=1e-9)


# ------------------------------------------------------------------ guidance pieces
def test_guided_weights_and_initial_relevance():
    from forensics.detectors.cnn import guided_weights, initial_relevance

    R = torch.tensor([[[[2.0]], [[-4.0]], [[1.0]]]])  # 3 channels at one position: max |R| = 4
    np.testing.assert_allclose(guided_weights(R).numpy().ravel(), [1.5, 0.0, 1.25])
    # p(true class) = 0.5 -> log(4 * 0.51 / 0.51) = log 4, for either label
    r = initial_relevance(torch.tensor([0.0, 0.0]), torch.tensor([0.0, 1.0]))
    np.testing.assert_allclose(r.numpy(), [np.log(4)] * 2, rtol=1e-6)
    # a confident wrong answer gets negative relevance
    assert float(initial_relevance(torch.tensor([5.0]), torch.tensor([0.0]))) < 0


# ------------------------------------------------------------------ the CNN detector
@pytest.fixture(scope="module")
def small_task():
    from forensics.io.sources import builtin_patches

    imgs = builtin_patches(16).images
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(imgs))[:480]
    real, src = imgs[idx[:240]], imgs[idx[240:]]
    # "generated": 2x nearest-neighbour upsampling of a half-size version (blocky 2x2 pixels)
    fake = src[:, ::2, ::2].repeat(2, 1).repeat(2, 2)
    return real, fake


@pytest.mark.parametrize("inp,epochs", [("pixels", 25), ("spectrum", 8)])
def test_cnn_learns_saves_and_explains(small_task, tmp_path, inp, epochs):
    from sklearn.base import clone

    from forensics.detectors.cnn import CNNConfig, CNNDetector
    from forensics.metrics.rates import roc_auc

    real, fake = small_task
    cfg = CNNConfig(size=16, input=inp, channels=(8, 16), epochs=epochs, batch=16, lr=2e-3, seed=1)
    X = np.r_[real[:160], fake[:160]]
    y = np.r_[np.zeros(160), np.ones(160)]
    det = CNNDetector(cfg).fit(X, y)
    p = det.predict_proba(np.r_[real[160:], fake[160:]])
    assert p.shape == (160, 2) and np.allclose(p.sum(1), 1)
    assert roc_auc(p[:80, 1], p[80:, 1]) > 0.9
    det.save(tmp_path / "m")
    again = CNNDetector.load(tmp_path / "m")
    np.testing.assert_allclose(again.decision_function(X[:20]), det.decision_function(X[:20]), rtol=1e-6)
    assert again.get_params()["config"] == cfg
    c = clone(det)
    assert c.config == cfg and not hasattr(c, "head_")
    # relevance of every input element sums to the logit (biases and BN shifts leak little: up to ~2e-3 of
    # the logit on some CPUs after this training, which differs by machine; a broken rule is off by far more)
    x, R = det.relevance(X[:6])
    np.testing.assert_allclose(R.reshape(6, -1).sum(1), det.decision_function(X[:6]), rtol=1e-2, atol=5e-3)


def test_cnn_refuses_bad_input_and_config():
    from forensics.detectors.cnn import CNNConfig, CNNDetector

    with pytest.raises(ValueError, match="divisible"):
        CNNConfig(size=20, channels=(4, 8, 16))
    det = CNNDetector(CNNConfig(size=16, channels=(4,), epochs=1))
    with pytest.raises(ValueError, match="both real"):
        det.fit(np.zeros((4, 16, 16, 3), np.uint8), np.zeros(4))
    with pytest.raises(ValueError, match="16x16"):
        det.fit(np.zeros((4, 32, 32, 3), np.uint8), np.r_[0, 0, 1, 1])
    with pytest.raises(ValueError, match="not fitted"):
        det.predict(np.zeros((1, 16, 16, 3), np.uint8))


# ------------------------------------------------- benchmarks/lrp_guided.py on a study folder
def _guided_module():
    import importlib.util
    import sys
    from pathlib import Path

    p = Path(__file__).resolve().parents[1] / "benchmarks" / "lrp_guided.py"
    spec = importlib.util.spec_from_file_location("lrp_guided_bench", p)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses and the worker processes look it up there
    spec.loader.exec_module(mod)
    return mod


def test_guided_benchmark_takes_generators_from_a_study_folder(tmp_path):
    """Setups found (nested ones too), per-seed splits disjoint and complete, leave-one-out runs
    end to end, and the results do not depend on the number of worker processes."""
    from PIL import Image

    from forensics.io.sources import builtin_patches

    L = _guided_module()
    imgs = builtin_patches(16).images
    study = tmp_path / "study"
    for j, name in enumerate(["baseline", "N.1.5", "infomax/baseline"]):
        d = study / "fakes" / name
        d.mkdir(parents=True)
        for i in range(40):
            im = imgs[200 + 40 * j + i].copy()
            im[::2, ::2] = np.clip(im[::2, ::2].astype(int) + 20 * (j + 1), 0, 255)  # a grid artefact per setup
            Image.fromarray(im).save(d / f"{i:03d}.png")
    (study / "fakes" / "infomax" / "stage.json").write_text("{}")  # a folder of folders is no setup
    assert L.study_generators(study) == ["N.1.5", "baseline", "infomax/baseline"]
    cfg = L.GuidedStudyConfig(study=str(study), size=16, seeds=(0,), epochs=1, n_per_gen=10, n_test=15,
                              shots=(1, 5), finetune_epochs=1, channels=(4, 8))
    real, fakes, src = L.load_study(cfg)
    assert src == "builtin" and set(fakes) == {"N.1.5", "baseline", "infomax/baseline"}
    real_tr, real_te, gens = L.split_study(real, fakes, cfg, 0)
    assert len(real_te) == 15 and len(real_tr) + len(real_te) == len(real)
    for g, (pool, test) in gens.items():
        assert len(test) == 15 and len(pool) == 25
        rows = {im.tobytes() for im in np.r_[pool, test]}
        assert rows == {im.tobytes() for im in fakes[g]}  # a permutation: disjoint and complete
    one = L.run(cfg.replace(held_out=("N.1.5",)), tmp_path / "w1")
    two = L.run(cfg.replace(held_out=("N.1.5",), workers=2), tmp_path / "w2")
    assert one["runs"] == two["runs"]
    assert {r["held_out"] for r in one["runs"]} == {"N.1.5"} and len(one["runs"]) == 2 * 3  # (plain, guided) x (0, 1, 5 shots)
    assert [(e["held_out"], e["shots"]) for e in one["summary"]][:3] == [("N.1.5", 0), ("N.1.5", 1), ("N.1.5", 5)]
    with pytest.raises(ValueError, match="unknown held-out"):
        L.run(cfg.replace(held_out=("Z.1.5",)), tmp_path / "w3")
    assert [L.family(s) for s in ("B.1.5", "baseline", "infomax/N.1.5")] == ["B", "baseline", "infomax/N"]
    fam = cfg.replace(families=True)
    assert L._load(fam)["units"] == {"N": ["N.1.5"], "baseline": ["baseline"], "infomax/baseline": ["infomax/baseline"]}


def test_guided_benchmark_holds_out_whole_families(tmp_path):
    """--families: a family's setups leave training together and its test images come from all of them."""
    from PIL import Image

    from forensics.io.sources import builtin_patches

    L = _guided_module()
    imgs = builtin_patches(16).images
    study = tmp_path / "study"
    for j, name in enumerate(["baseline", "N.1.3", "N.1.5", "B.1.5"]):
        d = study / "fakes" / name
        d.mkdir(parents=True)
        for i in range(30):
            Image.fromarray(imgs[200 + 30 * j + i]).save(d / f"{i:03d}.png")
    cfg = L.GuidedStudyConfig(study=str(study), size=16, seeds=(0,), epochs=1, n_per_gen=10, n_test=12,
                              shots=(1,), finetune_epochs=1, channels=(4, 8), families=True)
    d = L._load(cfg)
    assert d["units"] == {"B": ["B.1.5"], "N": ["N.1.3", "N.1.5"], "baseline": ["baseline"]}
    src = {name: {im.tobytes() for im in imgs[200 + 30 * j:230 + 30 * j]}
           for j, name in enumerate(["baseline", "N.1.3", "N.1.5", "B.1.5"])}
    t = L.task_data(cfg, 0, "N")
    X = [im.tobytes() for im, lab in zip(t["X"], t["y"]) if lab == 1]
    assert X and not any(x in src["N.1.3"] or x in src["N.1.5"] for x in X)  # the family left training
    assert {x in src["baseline"] or x in src["B.1.5"] for x in X} == {True}  # the other families trained
    test = [im.tobytes() for im in t["test"]]
    assert len(test) == 12 and any(x in src["N.1.3"] for x in test) and any(x in src["N.1.5"] for x in test)
    assert not set(test) & {im.tobytes() for im in t["pool"]}  # test images are not few-shot images
    assert len(t["pool"]) == 2 * (30 - 12)
    rows = L.run_task(cfg, 0, "N")
    assert {r["held_out"] for r in rows} == {"N"} and len(rows) == 4
