"""Denoising diffusion in pixel space (DDPM) and on an autoencoder's latent (latent diffusion), DDIM sampling.

Training (Ho et al. 2020): ``t ~ U{0..T-1}``, ``eps ~ N(0, I)``,
``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``, loss ``|eps_theta(x_t, t) - eps|^2``. The betas are
linear from ``beta_start`` to ``beta_end`` (``schedule="linear"``, DDPM's) or linear in their square root
(``"scaled-linear"``, latent diffusion's). An exponential moving average of the weights (``ema``) is
what samples come from.

Sampling: DDIM (Song et al. 2021) with eta = 0 over ``steps`` timesteps evenly spread over ``0..T-1``
(the predicted ``x_0`` clipped to [-1, 1] in pixel space), so the images are a deterministic function of
the initial noise, drawn from a seeded CPU generator: the same seed gives the same images.

Latent diffusion (Rombach et al. 2022): the same on the latent of a trained, frozen autoencoder
(:mod:`forensics.generators.autoencoder`, the run's first stage) -- KL: a posterior sample; VQ: the
encoder's output before quantization -- times ``latent_scale``, one over the latents' standard
deviation on the first batch (latent diffusion's ``scale_factor``, kept in the checkpoint). Samples are
decoded by the autoencoder's decoder, whose up-blocks take the run's spec; the latent U-Net upsamples
by ``unet_layer`` (default ``N.1.3``, latent diffusion's own).
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F

from forensics.generators.optim import optimise
from forensics.generators.tensors import to_device, to_uint8
from forensics.generators.unet import UNet
from forensics.report.figures import image_grid

SCHEDULES = ("linear", "scaled-linear")


class NoiseSchedule:
    """The cumulative products ``abar_t`` of ``1 - beta_t`` (float64 on the host)."""

    def __init__(self, timesteps: int, beta_start: float, beta_end: float, kind: str = "linear"):
        if kind not in SCHEDULES:
            raise ValueError(f"unknown noise schedule {kind!r}; choose from {', '.join(SCHEDULES)}")
        if timesteps < 1 or not 0 < beta_start <= beta_end < 1:
            raise ValueError(f"need timesteps >= 1 and 0 < beta_start <= beta_end < 1, got {timesteps}, "
                             f"{beta_start}, {beta_end}")
        if kind == "linear":
            betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
        else:
            betas = torch.linspace(math.sqrt(beta_start), math.sqrt(beta_end), timesteps, dtype=torch.float64) ** 2
        self.T = int(timesteps)
        self.abar = torch.cumprod(1.0 - betas, 0)

    def coefficients(self, t: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
        """``sqrt(abar_t)`` and ``sqrt(1 - abar_t)`` as ``(N, 1, 1, 1)`` float32 tensors on ``device``."""
        a = self.abar[t.cpu()]
        return (to_device(a.sqrt().float().view(-1, 1, 1, 1), device),
                to_device((1 - a).sqrt().float().view(-1, 1, 1, 1), device))

    def ddim_timesteps(self, steps: int) -> list[int]:
        """``steps`` distinct timesteps from ``T - 1`` down to 0."""
        if not 1 <= steps <= self.T:
            raise ValueError(f"DDIM steps must be between 1 and {self.T}, got {steps}")
        return sorted({round(float(v)) for v in np.linspace(0, self.T - 1, steps)}, reverse=True)


@torch.no_grad()
def ddim_sample(net, schedule: NoiseSchedule, noise: torch.Tensor, steps: int, clip: bool) -> torch.Tensor:
    """DDIM, eta = 0: from ``x_T = noise`` to ``x_0`` with ``net(x, t)`` predicting the noise."""
    x = noise
    ts = schedule.ddim_timesteps(steps)
    for i, t in enumerate(ts):
        a = float(schedule.abar[t])
        a_prev = float(schedule.abar[ts[i + 1]]) if i + 1 < len(ts) else 1.0
        eps = net(x, torch.full((len(x),), t, dtype=torch.long, device=x.device))
        x0 = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
            eps = (x - math.sqrt(a) * x0) / math.sqrt(1 - a)
        x = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * eps
    return x


class DiffusionTask:
    """A :class:`~forensics.generators.trainer.Trainer` task for ``ddpm`` and ``ldm`` configs: the U-Net, its
    EMA copy (checkpointed as module ``EMA``) and, for ldm, the frozen ``first_stage`` autoencoder (an
    :class:`~forensics.generators.autoencoder.Autoencoder` with trained weights, not checkpointed here:
    it lives in the run's ``first_stage`` folder). ``fixed``: the sample grid's noise and (ldm) ``latent_scale``."""

    def __init__(self, config, device: torch.device, gen: torch.Generator, first_stage=None):
        p = config.params
        self.config, self.device, self.gen, self.size = config, device, gen, int(config.size)
        self.latent = config.kind == "ldm"
        if self.latent:
            if first_stage is None:
                raise ValueError("latent diffusion needs its trained first-stage autoencoder")
            self.ae = first_stage.to(device).eval().requires_grad_(False)
            self.shape = self.ae.latent_shape(self.size)
            spec, inner = p["unet_layer"], None
        else:
            self.ae = None
            self.shape = (3, self.size, self.size)
            spec, inner = config.last_layer, config.inner_layer
        torch.manual_seed(int(config.seed))  # weight initialisation
        self.net = UNet(self.shape[0], p, config.padding, spec, inner).to(device)
        self.ema = copy.deepcopy(self.net).requires_grad_(False)
        self.decay = float(p["ema"])
        self.schedule = NoiseSchedule(int(p["timesteps"]), float(p["beta_start"]), float(p["beta_end"]), p["schedule"])
        self.ddim_steps = int(p["ddim_steps"])
        self.optimizers = {"UNet": torch.optim.Adam(self.net.parameters(), p["lr"], (p["beta1"], p["beta2"]))}
        self.modules = {"UNet": self.net, "EMA": self.ema}
        self.batch = int(p["batch"])
        self.fixed: dict = {}

    # ------------------------------------------------------------------ latents
    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The diffusion's ``x_0`` of images in [-1, 1]: the images (ddpm) or their scaled latents (ldm)."""
        if not self.latent:
            return x
        if self.ae.quantizer is None:
            mean, logvar = self.ae.moments(x)
            z = mean + torch.exp(0.5 * logvar) * to_device(torch.randn(mean.shape, generator=self.gen), self.device)
        else:
            z = self.ae.encoder(x)
        return z * self.fixed["latent_scale"] if "latent_scale" in self.fixed else z

    @torch.no_grad()
    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        return self.ae.decode(x0 / self.fixed["latent_scale"]) if self.latent else x0

    def init_fixed(self, next_batch) -> None:
        self.fixed = {"noise": torch.randn(16, *self.shape, generator=self.gen)}
        if self.latent:
            z = self.encode(next_batch()["images"])
            self.fixed["latent_scale"] = (1.0 / z.flatten().std()).reshape(()).cpu()

    # ------------------------------------------------------------------ training
    def train_step(self, next_batch) -> dict:
        x0 = self.encode(next_batch()["images"])
        n = len(x0)
        t = torch.randint(self.schedule.T, (n,), generator=self.gen)
        eps = to_device(torch.randn(x0.shape, generator=self.gen), self.device)
        sa, s1a = self.schedule.coefficients(t, self.device)
        loss = F.mse_loss(self.net(sa * x0 + s1a * eps, to_device(t, self.device)), eps)
        optimise(self.optimizers["UNet"], loss)
        with torch.no_grad():
            torch._foreach_lerp_(list(self.ema.parameters()), list(self.net.parameters()), 1.0 - self.decay)
        return {"mse": loss.item()}

    # ------------------------------------------------------------------ sampling
    def sample_noise(self, noise: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """Images in [-1, 1] from initial noise ``(N, *shape)`` by DDIM with the EMA weights."""
        was = self.ema.training
        self.ema.eval()
        try:
            x0 = ddim_sample(self.ema, self.schedule, noise.to(self.device), steps or self.ddim_steps,
                             clip=not self.latent)
            return self.decode(x0)
        finally:
            self.ema.train(was)

    def sample(self, n: int, gen: torch.Generator, steps: int | None = None) -> torch.Tensor:
        """``n`` images, their initial noise drawn from ``gen``."""
        return self.sample_noise(torch.randn(n, *self.shape, generator=gen), steps)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """ldm: the first stage's reconstruction of images in [-1, 1] (a pixel-space DDPM has none)."""
        if not self.latent:
            raise ValueError("a pixel-space DDPM has no encoder: it cannot reconstruct images")
        with torch.no_grad():
            return self.ae(x.to(self.device))

    def sample_grid(self):
        return image_grid(to_uint8(self.sample_noise(self.fixed["noise"])), cols=8)

    def describe(self) -> dict:
        d = {"kind": self.config.kind, "unet_up_blocks": self.net.describe(), "unet_specs": self.net.specs,
             "UNet_parameters": sum(q.numel() for q in self.net.parameters()), "diffusion_shape": list(self.shape),
             "timesteps": self.schedule.T, "ddim_steps": self.ddim_steps}
        if self.latent:
            d["decoder_up_blocks"] = self.ae.decoder.describe()
            d["decoder_specs"] = self.ae.decoder.specs
        return d
