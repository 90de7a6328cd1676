"""Batch-norm running statistics that belong to the weights written, not to the base's.

A generated start changes every weight, so the base generator's running means and variances no
longer describe the activations: a network put in ``eval()`` right after ``initialize`` would
normalise with the wrong statistics. They are re-estimated here by forward passes in train mode
at batch size 1, as the reference trains, averaging each norm's per-image statistics over the
images (``momentum=None``, PyTorch's cumulative average).

The passes go through :func:`torch.func.functional_call` on the tensors about to be written, so the
model's own parameters and buffers are not touched: a failure here leaves the model as it was.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from weightinit.errors import WeightinitError


@dataclass
class StatisticsFit:
    """What :func:`fit_running_statistics` did, for the report."""

    norms: int = 0
    images: int = 0
    size: int | None = None
    source: str = ""
    seconds: float = 0.0

    def describe(self) -> str:
        if not self.norms:
            return "no batch norm: nothing to fit"
        return (
            f"running statistics of {self.norms} batch norms fitted on {self.images} {self.source} "
            f"at {self.size} px in {self.seconds:.2f} s"
        )


def batch_norms(model: nn.Module) -> list[tuple[str, nn.modules.batchnorm._BatchNorm]]:
    """The batch norms that keep running statistics."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]


def bundled_inputs(size: int, channels: int = 3) -> torch.Tensor:
    """The bundled photos, centre-cropped square and resized to ``size``, in [-1, 1] as pix2pix
    feeds its networks: ``[7, channels, size, size]`` (one channel: their grey level)."""
    from weightinit.images import PhotoSet

    if channels not in (1, 3):
        raise WeightinitError(f"the bundled photos are RGB; a network with {channels} input channels needs pairs=")
    images = []
    for photo in PhotoSet.bundled(min_size=1).photos:
        pixels = torch.from_numpy(np.ascontiguousarray(photo.pixels)).permute(2, 0, 1)
        h, w = pixels.shape[1:]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        square = pixels[:, top : top + side, left : left + side][None]
        images.append(F.interpolate(square, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0])
    batch = torch.stack(images).clamp(0, 1) * 2 - 1
    return batch.mean(dim=1, keepdim=True) if channels == 1 else batch


@torch.no_grad()
def fit_running_statistics(
    model: nn.Module,
    parameters: Mapping[str, torch.Tensor],
    buffers: Mapping[str, torch.Tensor],
    inputs: torch.Tensor,
    *,
    source: str = "images",
) -> tuple[dict[str, torch.Tensor], StatisticsFit]:
    """The running statistics of ``model`` with ``parameters`` (native key -> value; the model's
    own for the rest), estimated on ``inputs`` ``[N, C, H, W]`` one image at a time.

    Returns new buffers (native key -> value; ``buffers``' values for every other buffer) and
    what was done. The model's own tensors, training flags and momenta are as before on return.
    """
    start = time.perf_counter()
    norms = batch_norms(model)
    if not norms:
        return dict(buffers), StatisticsFit()
    if inputs.dim() != 4 or len(inputs) == 0:
        raise WeightinitError(f"running statistics need images [N, C, H, W], got shape {list(inputs.shape)}")
    device = next(iter(model.parameters())).device
    # in float32 whatever the model's dtype: a half model gets the statistics a float one would, cast
    state = {k: v.detach().float() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    state.update({k: v.detach().to(device=device, dtype=torch.float32) for k, v in parameters.items()})
    fitted = {k: v.detach().clone().to(device) for k, v in buffers.items()}
    fitted = {k: v.float() if v.is_floating_point() else v for k, v in fitted.items()}
    for name, _ in norms:  # fresh statistics, averaged over the images
        for key, value in ((f"{name}.running_mean", 0.0), (f"{name}.running_var", 1.0)):
            fitted[key] = torch.full_like(state[key], value, dtype=torch.float32)
        fitted[f"{name}.num_batches_tracked"] = torch.zeros_like(state[f"{name}.num_batches_tracked"])
    state.update(fitted)
    flags = {m: m.training for m in model.modules()}
    momenta = [(m, m.momentum) for _, m in norms]
    try:
        model.eval()  # dropout off: only the norms see training mode
        for _, m in norms:
            m.train()
            m.momentum = None
        for image in inputs:
            torch.func.functional_call(
                model, state, (image[None].to(device=device, dtype=torch.float32),), strict=False
            )
    except RuntimeError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WeightinitError(
            f"could not fit the running statistics on {len(inputs)} {source} of shape {list(inputs.shape[1:])}: "
            f"{first}; nothing was written (pass fit_statistics=False to keep the base's)"
        ) from None
    finally:
        for m, momentum in momenta:
            m.momentum = momentum
        for m, flag in flags.items():
            m.train(flag)
    for key, value in fitted.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise WeightinitError(f"the fitted running statistic {key} is not finite; nothing was written")
    size = int(inputs.shape[-1])
    return fitted, StatisticsFit(len(norms), len(inputs), size, source, time.perf_counter() - start)
