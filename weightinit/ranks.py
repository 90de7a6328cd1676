"""What every rank of a ``torch.distributed`` run must agree on: a start made from each rank's
own pairs is the same on every rank only if what decides it is averaged over the ranks first."""

from __future__ import annotations

import torch


def mean_over_ranks(values: torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
    """``values`` averaged over the ranks (as they are outside ``torch.distributed``), on the
    CPU. ``device``: where the reduction runs (NCCL reduces CUDA tensors only; default: theirs)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        values = values.to(device) if device is not None else values.clone()
        torch.distributed.all_reduce(values)
        values /= torch.distributed.get_world_size()
    return values.cpu()
