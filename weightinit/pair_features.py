"""What a few (input, target) pairs say about their edit, as a fixed-length vector.

The features describe the edit, not the images: colour statistics of input, target and their
difference; the affine colour map that best takes input to target (and how much of the edit it
leaves unexplained, i.e. how spatial or non-linear the edit is); the luminance curve at five
quantiles; the change of gradient energy (blur, sharpening, noise) at two scales; and the edit's
radial profile (vignettes, glares). Each is averaged over the pairs, so any number of pairs gives
the same length. Images are ``[N, C, H, W]`` in ``[-1, 1]``; grey images count as three equal channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_LUMA = torch.tensor([0.299, 0.587, 0.114])
_QUANTILES = torch.tensor([0.05, 0.25, 0.5, 0.75, 0.95])


def _rgb(x: torch.Tensor) -> torch.Tensor:
    x = x.float()
    if x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1)
    return x[:, :3]


def _gradient_energy(x: torch.Tensor) -> torch.Tensor:
    """``[N]`` mean absolute finite difference (both directions) of the luminance."""
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean(dim=(1, 2, 3))
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean(dim=(1, 2, 3))
    return dx + dy


def _radial_profile(delta: torch.Tensor, rings: int = 3) -> torch.Tensor:
    """``[N, rings]`` mean of ``delta [N, H, W]`` in rings from the centre outwards."""
    h, w = delta.shape[-2:]
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    radius = (xx**2 + yy**2).sqrt() / 2**0.5
    ring = (radius * rings).clamp(max=rings - 1e-6).floor().long()
    return torch.stack([delta[:, ring == r].mean(dim=1) for r in range(rings)], dim=1)


@torch.no_grad()
def pair_features(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``[F]`` features of the edit the pairs show (see the module's docstring)."""
    x, y = _rgb(inputs), _rgb(targets)
    n = x.shape[0]
    luma = _LUMA.to(x)
    lx, ly = torch.einsum("nchw,c->nhw", x, luma)[:, None], torch.einsum("nchw,c->nhw", y, luma)[:, None]
    d = y - x
    parts = [
        x.mean(dim=(2, 3)),
        y.mean(dim=(2, 3)),
        d.mean(dim=(2, 3)),
        x.std(dim=(2, 3)),
        y.std(dim=(2, 3)),
        d.abs().mean(dim=(2, 3)),
    ]
    # the affine colour map input -> target, per pair, and what it leaves unexplained
    design = torch.cat([x.flatten(2), torch.ones(n, 1, x[0, 0].numel(), dtype=x.dtype)], dim=1)  # [N, 4, P]
    solution = torch.linalg.lstsq(design.transpose(1, 2), y.flatten(2).transpose(1, 2), driver="gelsd").solution
    residual = y.flatten(2) - solution.transpose(1, 2) @ design
    parts += [solution.flatten(1), residual.abs().mean(dim=2)]
    # the luminance curve
    q = _QUANTILES.to(x)
    parts += [torch.quantile(lx.flatten(1), q, dim=1).T, torch.quantile(ly.flatten(1), q, dim=1).T]
    # detail: gradient energy at full and half resolution, and of the edit itself
    for scale in (1, 2):
        sx = lx if scale == 1 else F.avg_pool2d(lx, 2)
        sy = ly if scale == 1 else F.avg_pool2d(ly, 2)
        parts.append(torch.stack([_gradient_energy(sx), _gradient_energy(sy)], dim=1))
    parts += [_gradient_energy(d)[:, None], _radial_profile((ly - lx)[:, 0])]
    return torch.cat([p.reshape(n, -1) for p in parts], dim=1).mean(0)
