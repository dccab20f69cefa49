"""Autoencoders of the latent-diffusion kind, whose decoder upsamples by a spec string.

After Rombach et al. (CVPR 2022), scaled down: with widths ``w_i = ch * ch_mult[i]`` and
``L = log2(factor)`` levels,

Encoder: conv 3x3 (3 -> w_0), then per level ``n_res`` residual blocks and a stride-2 3x3 conv,
         two residual blocks at the bottom (w_L), GroupNorm + SiLU + conv 3x3 to the latent:
         ``2 * z_ch`` channels (mean and log-variance, KL) or ``z_ch`` (VQ, before quantization).
Decoder: conv 3x3 (z_ch -> w_L), two residual blocks, then per level, from the lowest resolution,
         an **up-block** (x2 by the layers of a spec, :meth:`LastLayerSpec.build`, w_{i+1} -> w_i)
         and ``n_res`` residual blocks; GroupNorm + SiLU + conv 3x3 to RGB (no tanh, as latent diffusion).

Every up-block takes the spec (``last_layer``) unless ``inner_layer`` names another for all but the
last: a real latent-diffusion decoder upsamples every level the same way (nearest + conv 3x3, the
paper's ``N.1.3``), so "a decoder of kind X" means X throughout; ``inner_layer="baseline"`` gives the
GANs' layout (transposed convolutions, the spec only as the last upsampling). Unlike a GAN's last
layer the spec is not the very last layer: full-resolution residual blocks and the RGB convolution
follow it, as in latent diffusion.

KL: the latent is ``mean + exp(logvar / 2) * eps`` in training, ``mean`` for reconstructions;
samples decode ``z ~ N(0, I)`` (the prior). VQ: nearest codebook vector, straight-through
gradients, codebook + ``beta`` x commitment loss (van den Oord et al. 2017); samples decode codes
drawn uniformly at every latent position (there is no learnt prior: the latent diffusion model is one).

Loss: mean L1 + ``kl_weight`` x KL (summed over the latent, per image, divided by the image's
number of values: latent diffusion's weighting of per-image sums) or + the VQ loss, and with
``disc_weight > 0`` a PatchGAN discriminator (Isola et al. 2017; GroupNorm) in hinge loss from step
``disc_start``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from forensics.generators.blocks import ResBlock, conv3, downsample, group_norm, up_layers, up_specs
from forensics.generators.dcgan import make_norm
from forensics.generators.layers import LastLayerSpec
from forensics.generators.objectives import hinge_d, hinge_g
from forensics.generators.optim import optimise
from forensics.generators.tensors import to_device, to_uint8
from forensics.report.figures import image_grid


def widths(params: dict, factor: int) -> list[int]:
    """Channel widths per resolution level, full resolution first (``log2(factor) + 1`` of them)."""
    return [int(params["ch"]) * int(m) for m in params["ch_mult"][:factor.bit_length()]]


class Encoder(nn.Module):
    def __init__(self, w: list[int], n_res: int, out_ch: int, padding: str):
        super().__init__()
        self.conv_in = conv3(3, w[0], padding)
        layers: list[nn.Module] = []
        for i in range(len(w) - 1):
            layers += [ResBlock(w[max(i - 1, 0)] if r == 0 else w[i], w[i], padding) for r in range(n_res)]
            layers.append(downsample(w[i], padding))
        self.down = nn.Sequential(*layers)
        self.mid = nn.Sequential(ResBlock(w[-2], w[-1], padding), ResBlock(w[-1], w[-1], padding))
        self.norm_out, self.conv_out = group_norm(w[-1]), conv3(w[-1], out_ch, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(F.silu(self.norm_out(self.mid(self.down(self.conv_in(x))))))


class Decoder(nn.Module):
    """``(N, z_ch, S/F, S/F)`` -> ``(N, 3, S, S)``; ``ups[i]`` is the i-th up-block's upsampling layers."""

    def __init__(self, w: list[int], n_res: int, z_ch: int, padding: str, last_layer: str = "N.1.3",
                 inner_layer: str | None = None):
        super().__init__()
        self.specs = up_specs(len(w) - 1, last_layer, inner_layer)
        self.widths = w
        self.conv_in = conv3(z_ch, w[-1], padding)
        self.mid = nn.Sequential(ResBlock(w[-1], w[-1], padding), ResBlock(w[-1], w[-1], padding))
        levels = list(range(len(w) - 2, -1, -1))  # from the lowest resolution up
        self.ups = nn.ModuleList(up_layers(s, w[i + 1], w[i], padding) for s, i in zip(self.specs, levels))
        self.res = nn.ModuleList(nn.Sequential(*[ResBlock(w[i], w[i], padding) for _ in range(n_res)]) for i in levels)
        self.norm_out, self.conv_out = group_norm(w[0]), conv3(w[0], 3, padding)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for up, res in zip(self.ups, self.res):
            h = res(up(h))
        return self.conv_out(F.silu(self.norm_out(h)))

    def describe(self) -> list[str]:
        """The up-blocks' layers, lowest resolution first."""
        w = self.widths
        return [LastLayerSpec.parse(s).describe(w[i + 1], w[i]) for s, i in zip(self.specs, range(len(w) - 2, -1, -1))]


class VectorQuantizer(nn.Module):
    def __init__(self, n_codes: int, dim: int, beta: float):
        super().__init__()
        self.beta = float(beta)
        self.codebook = nn.Embedding(n_codes, dim)
        nn.init.uniform_(self.codebook.weight, -1.0 / n_codes, 1.0 / n_codes)

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """Index ``(N, H, W)`` of the nearest codebook vector at every position of ``z`` ``(N, D, H, W)``."""
        e = self.codebook.weight
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        d = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.t() + e.pow(2).sum(1)[None]
        return d.argmin(1).view(z.shape[0], z.shape[2], z.shape[3])

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        return self.codebook(codes).permute(0, 3, 1, 2).contiguous()

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z_q, loss)``: ``z_q`` with straight-through gradients to ``z``."""
        q = self.lookup(self.codes(z))
        loss = F.mse_loss(q, z.detach()) + self.beta * F.mse_loss(z, q.detach())
        return z + (q - z).detach(), loss


class Autoencoder(nn.Module):
    """The encoder, the decoder and (VQ) the codebook of one ``ae-kl``/``ae-vq`` config."""

    def __init__(self, kind: str, params: dict, factor: int, padding: str, last_layer: str,
                 inner_layer: str | None = None):
        super().__init__()
        self.kind, self.factor, self.z_ch = kind, int(factor), int(params["z_ch"])
        w, n_res = widths(params, self.factor), int(params["n_res"])
        self.encoder = Encoder(w, n_res, 2 * self.z_ch if kind == "ae-kl" else self.z_ch, padding)
        self.decoder = Decoder(w, n_res, self.z_ch, padding, last_layer, inner_layer)
        self.quantizer = VectorQuantizer(int(params["n_codes"]), self.z_ch, params["beta"]) if kind == "ae-vq" else None

    def moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """KL: the posterior's ``(mean, logvar)``."""
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic latent of images in [-1, 1]: the posterior mean (KL) or the quantized code vectors (VQ)."""
        if self.quantizer is None:
            return self.moments(x)[0]
        return self.quantizer.lookup(self.quantizer.codes(self.encoder(x)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images from latents (VQ: snapped to the codebook first, as latent diffusion decodes its samples)."""
        if self.quantizer is not None:
            z = self.quantizer.lookup(self.quantizer.codes(z))
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction of ``x`` (from :meth:`latent`)."""
        return self.decoder(self.latent(x))

    def latent_shape(self, size: int) -> tuple[int, int, int]:
        return self.z_ch, size // self.factor, size // self.factor

    def prior(self, n: int, size: int, gen: torch.Generator) -> torch.Tensor:
        """``n`` latents from the prior on the CPU: N(0, I) (KL) or uniformly drawn code vectors (VQ)."""
        shape = self.latent_shape(size)
        if self.quantizer is None:
            return torch.randn(n, *shape, generator=gen)
        codes = torch.randint(self.quantizer.codebook.num_embeddings, (n, *shape[1:]), generator=gen)
        return self.quantizer.lookup(codes.to(self.quantizer.codebook.weight.device)).cpu()


class PatchDiscriminator(nn.Module):
    """PatchGAN (3 layers): a map of real/fake logits, one per overlapping patch."""

    def __init__(self, ndf: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, 2 * ndf, 4, 2, 1, bias=False), make_norm("group", 2 * ndf), nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * ndf, 4 * ndf, 4, 1, 1, bias=False), make_norm("group", 4 * ndf), nn.LeakyReLU(0.2, True),
            nn.Conv2d(4 * ndf, 1, 4, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class AutoencoderTask:
    """A :class:`~forensics.generators.trainer.Trainer` task: one optimiser step of the autoencoder (and of the
    patch discriminator when it is on) per batch. ``fixed`` holds the sample grid's real images and prior
    latents and the step count (for ``disc_start``), all checkpointed."""

    def __init__(self, config, device: torch.device, gen: torch.Generator):
        p = config.params
        self.config, self.device, self.gen, self.size = config, device, gen, int(config.size)
        torch.manual_seed(int(config.seed))  # weight initialisation
        self.model = Autoencoder(config.kind, p, config.factor, config.padding, config.last_layer,
                                 config.inner_layer).to(device)
        betas = (p["beta1"], p["beta2"])
        self.optimizers = {"AE": torch.optim.Adam(self.model.parameters(), p["lr"], betas)}
        self.modules = {"AE": self.model}
        self.disc_weight, self.disc_start = float(p["disc_weight"]), int(p["disc_start"])
        if self.disc_weight > 0:
            self.D = PatchDiscriminator(int(p["ndf"])).to(device)
            self.modules["D"] = self.D
            self.optimizers["D"] = torch.optim.Adam(self.D.parameters(), p["lr_d"], betas)
        self.batch = int(p["batch"])
        self.fixed: dict = {}

    def init_fixed(self, next_batch) -> None:
        self.fixed = {"images": next_batch()["images"][:8], "z": self.model.prior(8, self.size, self.gen),
                      "step": torch.zeros((), dtype=torch.long)}

    def train_step(self, next_batch) -> dict:
        x = next_batch()["images"]
        m, p = self.model, self.config.params
        if m.quantizer is None:
            mean, logvar = m.moments(x)
            eps = to_device(torch.randn(mean.shape, generator=self.gen), self.device)
            z = mean + torch.exp(0.5 * logvar) * eps
            kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1).mean() / x[0].numel()
            reg, logs = p["kl_weight"] * kl, {"kl": kl.item()}
        else:
            z, vq = m.quantizer(m.encoder(x))
            reg, logs = vq, {"vq": vq.item()}
        xr = m.decoder(z)
        rec = (x - xr).abs().mean()
        loss = rec + reg
        adv = self.disc_weight > 0 and int(self.fixed["step"]) >= self.disc_start
        if adv:
            self.D.requires_grad_(False)
            g = hinge_g(self.D(xr).flatten())
            self.D.requires_grad_(True)
            loss = loss + self.disc_weight * g
            logs["g_adv"] = g.item()
        optimise(self.optimizers["AE"], loss)
        if adv:
            d = hinge_d(self.D(x).flatten(), self.D(xr.detach()).flatten())
            optimise(self.optimizers["D"], d)
            logs["d"] = d.item()
        self.fixed["step"] = self.fixed["step"] + 1
        return {"l1": rec.item(), **logs}

    @torch.no_grad()
    def _eval(self, fn, x: torch.Tensor) -> torch.Tensor:
        was = self.model.training
        self.model.eval()
        try:
            return fn(x.to(self.device))
        finally:
            self.model.train(was)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructions of images in [-1, 1] ``(N, 3, S, S)``."""
        return self._eval(self.model, x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self._eval(self.model.decode, z)

    def sample(self, n: int, gen: torch.Generator, steps: int | None = None) -> torch.Tensor:
        """``n`` decoded prior samples, latents drawn from ``gen`` (``steps``: unused, as the diffusion tasks')."""
        return self.decode(self.model.prior(n, self.size, gen))

    def sample_grid(self):
        x = self.fixed["images"]
        return image_grid(to_uint8(torch.cat([x, self.reconstruct(x), self.decode(self.fixed["z"])])), cols=8)

    def describe(self) -> dict:
        m = self.model
        return {"kind": self.config.kind, "factor": m.factor, "latent": list(m.latent_shape(self.size)),
                "decoder_up_blocks": m.decoder.describe(), "decoder_specs": m.decoder.specs,
                "AE_parameters": sum(q.numel() for q in m.parameters()),
                "discriminator": "patchgan" if self.disc_weight > 0 else "off"}
