"""Unconditional GANs (DCGAN, LSGAN, WGAN-GP): backbone + last-layer spec + objective."""
from __future__ import annotations

import torch

from forensics.generators.dcgan import Discriminator, Generator
from forensics.generators.objectives import build_objective
from forensics.generators.optim import adam_pair, optimise
from forensics.generators.quant import quantize_module
from forensics.generators.tensors import to_device, to_uint8
from forensics.report.figures import image_grid


class UnconditionalTask:
    """G and D of the GAN's backbone (a WGAN-GP backbone's critic uses GroupNorm, as does any
    objective that asks for it), the objective's extra D heads, then the quantization."""

    def __init__(self, config, device: torch.device, gen: torch.Generator):
        p = config.params
        self.config, self.device, self.gen = config, device, gen
        self.objective = build_objective(config.objective_name, config.gan, config.objective_params)
        self.objective.generator = gen
        torch.manual_seed(int(config.seed))  # weight initialisation
        size = int(config.size)
        norm = "group" if "group" in (self.objective.d_norm, build_objective(config.gan, config.gan).d_norm) else "batch"
        init = p.get("init", "dcgan")  # runs made before the setting existed used DCGAN's
        self.G = Generator(size, p["z_dim"], p["ngf"], config.last_layer, init=init)
        self.D = Discriminator(size, p["ndf"], norm=norm, init=init)
        self.D.heads = self.objective.heads(self.D)
        quantize_module(self.G, config.quant, lr=p["lr_g"])
        quantize_module(self.D, config.quant, lr=p["lr_d"])
        self.G, self.D = self.G.to(device), self.D.to(device)
        self.optimizers = adam_pair(self.G, self.D, p)
        self.modules = {"G": self.G, "D": self.D}
        self.z_dim, self.batch = p["z_dim"], p["batch"]
        self.fixed = {}

    def init_fixed(self, next_batch) -> None:
        self.fixed = {"z": self.noise(64)}

    def noise(self, n: int) -> torch.Tensor:
        return to_device(torch.randn(n, self.z_dim, generator=self.gen), self.device)

    def train_step(self, next_batch) -> dict:
        obj, G, D = self.objective, self.G, self.D
        opt_g, opt_d = self.optimizers["G"], self.optimizers["D"]
        for _ in range(obj.n_critic):
            real = next_batch()["images"]
            with torch.no_grad():
                fake = G(self.noise(len(real)))
            loss_d, logs = obj.d_loss(D, real, fake)
            optimise(opt_d, loss_d)
        D.requires_grad_(False)
        loss_g, logs_g = obj.g_loss(D, G(self.noise(self.batch)), real)
        D.requires_grad_(True)
        optimise(opt_g, loss_g)
        return {**logs, **logs_g}

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """Images for latent codes ``z`` (generator in eval mode: each image depends only
        on its own code, BatchNorm uses its running statistics)."""
        was = self.G.training
        self.G.eval()
        try:
            return self.G(z.to(self.device))
        finally:
            self.G.train(was)

    def sample_grid(self):
        return image_grid(to_uint8(self.sample(self.fixed["z"])), cols=8)

    def describe(self) -> dict:
        return {"generator_last_layer": self.G.last_layer.describe(self.G.last_in_channels, 3),
                "G_parameters": sum(p.numel() for p in self.G.parameters()),
                "D_parameters": sum(p.numel() for p in self.D.parameters()),
                "objective": self.objective.name, "n_critic": self.objective.n_critic,
                "d_norm": "group" if any(isinstance(m, torch.nn.GroupNorm) for m in self.D.modules()) else "batch",
                "d_heads": sorted(self.D.heads.keys()), "quant": str(self.config.quant)}
