"""Direct low-bit quantization: level weights, the per-channel activation clip, a w4a4 classifier."""
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from forensics.generators.quant import (
    LevelWeight,
    QuantizedLayer,
    QuantSpec,
    channel_errors,
    choose_clip,
    quantize_module,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_spec_parsing():
    assert QuantSpec.parse("none") == QuantSpec() and not QuantSpec.parse("none").enabled
    assert QuantSpec.parse("W4A4") == QuantSpec(4, 4) and str(QuantSpec.parse("w4a4")) == "w4a4"
    assert QuantSpec.parse("w2a32") == QuantSpec(2, None)
    for bad in ["w0a4", "w9a4", "4a4", "w4", "w4a0"]:
        with pytest.raises(ValueError):
            QuantSpec.parse(bad)


def test_trained_layer_holds_at_most_2_to_the_b_values_and_learns():
    torch.manual_seed(0)
    layer = QuantizedLayer(nn.Linear(20, 30), QuantSpec(3, None), lr=0.02)
    assert not any(n.endswith("weight") for n, _ in layer.named_parameters())  # no float weight copy
    w0, lv0 = layer.weight_values().clone(), layer.wq.levels.detach().clone()
    x = torch.randn(256, 20)
    target = x @ torch.randn(20, 30) * 0.1
    opt = torch.optim.Adam(layer.parameters(), 1e-2)
    losses = []
    for _ in range(150):
        loss = F.mse_loss(layer(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    w = layer.weight_values()
    assert len(torch.unique(w)) <= 8
    assert set(torch.unique(w).tolist()) <= set(layer.wq.levels.detach().tolist())
    assert (w0 != w).float().mean() > 0.1  # weights moved between levels
    assert not torch.equal(lv0, layer.wq.levels.detach())  # the levels themselves learned
    assert losses[-1] < 0.5 * losses[0]


def test_level_gradient_is_the_sum_over_its_weights():
    lw = LevelWeight(torch.tensor([[-1.0, -0.9, 0.9, 1.1]]), bits=1)
    lw.eval()  # no moves
    w = lw()
    assert lw.assign.tolist() == [[0, 0, 1, 1]]
    (w * torch.tensor([[1.0, 2.0, 3.0, 4.0]])).sum().backward()
    assert lw.levels.grad.tolist() == [3.0, 7.0]


def test_level_gradient_is_bit_identical_with_two_threads():
    """From 32768 weights up, a plain gather's backward adds with float atomics on 2 CPU threads, in
    whatever order they run (the old code: 10 of 10 backwards differed). Fixed: bincount's one pass."""
    g = torch.Generator().manual_seed(0)
    lw = LevelWeight(torch.randn(1024, 1024, generator=g), bits=4)
    lw.eval()  # no moves
    up = torch.randn(1024, 1024, generator=g)
    n = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        grads = []
        for _ in range(10):
            lw.levels.grad = None
            w = lw()
            (w * up).sum().backward()
            grads.append(lw.levels.grad.clone())
    finally:
        torch.set_num_threads(n)
    assert torch.equal(w, lw.levels.detach()[lw.assign.long()])  # forward unchanged
    assert all(torch.equal(grads[0], h) for h in grads[1:])
    a = lw.assign.long().flatten()
    ref = torch.zeros(16, dtype=torch.float64).index_add_(0, a, up.flatten().double())
    torch.testing.assert_close(grads[0].double(), ref, rtol=1e-5, atol=1e-3)  # the per-level sum


def test_per_channel_clip_beats_total_mse_on_most_channels():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 16, 8, 8, generator=g).relu()
    x[:, :2] *= 40.0  # two high-variance channels
    med = {}
    for crit in ("channel", "total"):
        a = choose_clip(x, 4, signed=False, criterion=crit)
        err, energy = channel_errors(x, a, 4, False)
        med[crit] = (err / energy).median().item()
    assert med["channel"] < 0.5 * med["total"], med


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(d.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


def _cnn():
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2, padding=1),
                         nn.ReLU(), nn.Flatten(), nn.Linear(32 * 16, 10))


def _fit(model, data, epochs, lr):
    (x, y), _ = data
    opt = torch.optim.Adam(model.parameters(), lr)
    g = torch.Generator().manual_seed(1)
    model.train()
    for _ in range(epochs):
        for ix in torch.randperm(len(x), generator=g).split(64):
            loss = F.cross_entropy(model(x[ix]), y[ix])
            opt.zero_grad()
            loss.backward()
            opt.step()


def _accuracy(model, data):
    _, (x, y) = data
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def test_w4a4_classifier_is_within_a_few_points_of_float():
    """Task: scikit-learn's 8x8 digits (1400 train / 397 test images, 10 classes), a two-conv CNN.
    Float: 12 epochs; w4a4: the float model quantized (weights and inputs of every layer,
    first and last included), then 6 epochs of training its levels and level assignments."""
    torch.manual_seed(0)
    data = _digits()
    model = _cnn()
    _fit(model, data, 12, 3e-3)
    acc_float = _accuracy(model, data)
    q = quantize_module(model, "w4a4", lr=2e-3)
    assert sum(isinstance(m, QuantizedLayer) for m in q.modules()) == 3
    _fit(q, data, 6, 1e-3)
    acc_q = _accuracy(q, data)
    for m in q.modules():
        if isinstance(m, QuantizedLayer):
            assert len(torch.unique(m.weight_values())) <= 16
    assert acc_float > 0.95
    assert acc_q > acc_float - 0.03, (acc_float, acc_q)
    print(f"digits: float {acc_float:.4f}, w4a4 {acc_q:.4f}")


def test_quantized_gan_state_round_trips(tmp_path):
    from forensics.generators.checkpoint import load_checkpoint, save_checkpoint
    from forensics.generators.dcgan import Generator

    torch.manual_seed(0)
    G = quantize_module(Generator(16, z_dim=8, ngf=4, last_layer="N.1.3"), "w2a4")
    G(torch.randn(4, 8)).mean().backward()
    G(torch.randn(4, 8))  # applies the pending moves
    save_checkpoint(tmp_path / "g.safetensors", {"G": G.state_dict()})
    torch.manual_seed(1)
    H = quantize_module(Generator(16, z_dim=8, ngf=4, last_layer="N.1.3"), "w2a4")
    H.load_state_dict(load_checkpoint(tmp_path / "g.safetensors")["G"])
    G.eval(), H.eval()
    z = torch.randn(3, 8)
    assert torch.equal(G(z), H(z))
    vals = [torch.unique(m.weight_values()).numel() for m in G.modules() if isinstance(m, QuantizedLayer)]
    assert max(vals) <= 4 and len(vals) == 3  # two transposed convs + the last layer's conv
    assert np.isfinite(G(z).detach().numpy()).all()
