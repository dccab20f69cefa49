"""Objectives: loss math on hand-checked tensors, gradients through every extra head, composition
with every backbone and last layer, and a short training per objective that lowers its own term."""
import math

import pytest
import torch
import torch.nn as nn

from forensics.generators.config import GanConfig
from forensics.generators.dcgan import Discriminator, Generator
from forensics.generators.objectives import (
    DAG,
    DAG_POLICIES,
    SSGANMS,
    build_objective,
    hinge_d,
    infonce,
    rotate_quarters,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_hinge_by_hand():
    # relu(1 - 2) = 0, relu(1 - 0.5) = 0.5 -> 0.25; relu(1 - 2) = 0, relu(1 + 0) = 1 -> 0.5
    assert hinge_d(torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])).item() == pytest.approx(0.75)


def test_infonce_one_position_by_hand():
    local = torch.tensor([1.0, 2.0]).view(2, 1, 1)  # (N=2, R=1, P=1)
    glob = torch.tensor([[1.0], [-1.0]])
    # image 0: positive 1*1 = 1, negative 1*2 = 2; image 1: positive -2, negative -1; both log(1 + e)
    assert infonce(local, glob).item() == pytest.approx(math.log(1 + math.e), abs=1e-6)


def test_infonce_leaves_out_the_images_own_positions():
    local = torch.tensor([[1.0, 3.0], [2.0, 0.0]]).view(2, 1, 2)  # l_0 = (1, 3), l_1 = (2, 0)
    glob = torch.tensor([[1.0], [1.0]])

    def nll(pos, negs):
        return -math.log(math.exp(pos) / (math.exp(pos) + sum(math.exp(n) for n in negs)))

    expect = (nll(1, [2, 0]) + nll(3, [2, 0]) + nll(2, [1, 3]) + nll(0, [1, 3])) / 4
    assert infonce(local, glob).item() == pytest.approx(expect, abs=1e-6)


def test_rotate_quarters_by_hand():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).expand(5, 1, 2, 2)
    r, labels = rotate_quarters(x)
    assert labels.tolist() == [0, 1, 2, 3, 0]
    assert r[0, 0].tolist() == [[1, 2], [3, 4]] and r[4, 0].tolist() == [[1, 2], [3, 4]]
    assert r[1, 0].tolist() == [[2, 4], [1, 3]]  # 90 degrees counter-clockwise
    assert r[2, 0].tolist() == [[4, 3], [2, 1]]
    assert r[3, 0].tolist() == [[3, 1], [4, 2]]


class PixelD(nn.Module):
    """A stub discriminator whose global feature is the 4 pixels of a 1x2x2 image."""

    def __init__(self, head):
        super().__init__()
        self.heads = nn.ModuleDict({"rotation": head})

    def features(self, x):
        return x.reshape(len(x), 4, 1, 1)


def test_ssgan_ms_labels_by_hand():
    # a head that reads the rotation from the corner holding the 1 (logit 10) and says "fake" (logit 5)
    # when there is none: rotation k moves the corner (0,0) to flat index 0, 2, 3, 1 (by hand)
    head = nn.Linear(4, 5)
    with torch.no_grad():
        head.weight.zero_()
        for k, idx in enumerate([0, 2, 3, 1]):
            head.weight[k, idx] = 10.0
        head.bias.copy_(torch.tensor([0.0, 0, 0, 0, 5]))
    D = PixelD(head)
    real = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).expand(8, 1, 2, 2).clone()
    fake = torch.zeros(8, 1, 2, 2)
    obj = SSGANMS()
    ce_real = math.log(1 + 3 * math.exp(-10) + math.exp(-5))  # right rotation among 3 others and "fake"
    ce_fake_as_fake = math.log(1 + 4 * math.exp(-5))
    assert obj.d_ss(D, real, fake).item() == pytest.approx(ce_real + ce_fake_as_fake, rel=1e-5)
    # G: rotated fakes against their rotation labels (logits 0 vs fake 5), minus the real term
    assert obj.g_ss(D, fake, real).item() == pytest.approx(math.log(4 + math.exp(5)) - ce_real, rel=1e-5)


def _zero_heads(D, keep=None):
    with torch.no_grad():
        D.head.weight.zero_()
        for name, h in D.heads.items():
            if name != keep:
                h.weight.zero_()


@pytest.mark.parametrize("loss", ["dcgan", "lsgan", "wgan-gp"])
@pytest.mark.parametrize("policy", sorted(DAG_POLICIES))
def test_dag_generator_gets_gradient_through_every_head(policy, loss):
    torch.manual_seed(0)
    G, D = Generator(16, z_dim=8, ngf=4, last_layer="N.1.3"), Discriminator(16, ndf=4, norm="group")
    obj = DAG(loss=loss, policy=policy)
    D.heads = obj.heads(D)
    assert len(D.heads) == len(DAG_POLICIES[policy]) == {"rotation": 4, "fliprot": 4, "cropping": 5}[policy]
    D.requires_grad_(False)
    z = torch.randn(8, 8)

    def g_grad(keep):
        state = {k: v.clone() for k, v in D.state_dict().items()}
        _zero_heads(D, keep)
        G.zero_grad()
        obj.g_loss(D, G(z))[0].backward()
        D.load_state_dict(state)
        return sum(p.grad.abs().sum().item() for p in G.parameters() if p.grad is not None)

    assert g_grad(None) == 0.0  # every logit constant: no gradient (the control)
    for name in D.heads:
        assert g_grad(name) > 0, name  # G learns through this head alone


@pytest.mark.parametrize("objective", ["infomax", "ssgan", "ssgan-ms", "dag"])
@pytest.mark.parametrize("gan", ["dcgan", "lsgan", "wgan-gp"])
def test_objectives_compose_with_every_backbone(gan, objective, tmp_path):
    from forensics.generators.runs import build_task

    for spec, quant in (("Z.1.3", "none"), ("B.3.5", "w4a4")):
        cfg = GanConfig.tiny(gan, {"ngf": 4, "ndf": 4, "batch": 8}, size=16, objective=objective, quant=quant,
                             last_layer=spec)
        task = build_task(cfg.resolved(), torch.device("cpu"))
        real = torch.rand(8, 3, 16, 16) * 2 - 1
        logs = task.train_step(lambda: {"images": real})
        assert all(math.isfinite(v) for v in logs.values())
        assert len(task.D.heads) > 0


def _own_term(objective, steps=40):
    """The objective's own term over a short CPU run (first and last 10 steps' mean)."""
    from forensics.generators.runs import build_task
    from forensics.generators.trainer import Trainer
    from forensics.io.sources import builtin_patches

    key = {"infomax": "d_nce", "ssgan": "d_ss", "ssgan-ms": "d_ss", "dag": "d_dag"}[objective]
    cfg = GanConfig.tiny("dcgan", {"ngf": 8, "ndf": 8, "batch": 16, "lr_d": 1e-3}, size=16, objective=objective,
                         objective_params={"nrkhs": 32, "beta": 1.0} if objective == "infomax" else {}).resolved()
    task = build_task(cfg, torch.device("cpu"))
    tr = Trainer(task, builtin_patches(16, n=256, seed=0), "/nonexistent", cfg, torch.device("cpu"), progress=False)
    vals = [tr.one_step()[key] for _ in range(steps)]
    return sum(vals[:10]) / 10, sum(vals[-10:]) / 10


@pytest.mark.parametrize("objective", ["infomax", "ssgan", "ssgan-ms", "dag"])
def test_short_training_lowers_the_objectives_own_term(objective):
    torch.manual_seed(0)
    first, last = _own_term(objective)
    assert last < 0.95 * first, (first, last)  # InfoNCE: 6.05 -> 5.70; rotation CE 3.6 -> 2.4


def test_objective_params_are_checked_and_recorded():
    with pytest.raises(ValueError, match="no parameter"):
        GanConfig.tiny("dcgan", objective="infomax", objective_params={"gamma": 1.0})
    cfg = GanConfig.tiny("wgan-gp", objective="dag").resolved()
    assert cfg.objective_params == {"loss": None, "policy": "rotation", "lambda_d": 0.2, "lambda_g": 0.2}
    obj = build_objective(cfg.objective_name, cfg.gan, cfg.objective_params)
    assert obj.n_critic == 5 and obj.base.name == "wgan-gp"  # DAG plays the GAN's own game
    assert build_objective("infomax", "dcgan").base.name == "hinge"
