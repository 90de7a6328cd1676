"""Choosing the start on a few of the user's pairs, when text alone is not enough.

The generated weights are the generator's best guess from the concept's text. A user who is
about to fine-tune already has pairs, and a handful of them tells which of the generator's
candidate starts fits the data best: the generated weights, the retrieval prior's blend at other
temperatures and scales, or one training concept's own weights (retrieval by data rather than by
text; ``python -m weightinit.benchmarks.pair_selection`` measures what this buys). Every
candidate is written into a copy of the model and scored by L1 on the pairs, in the mode the
reference pix2pix test uses (norms on batch statistics, no dropout); the user's model is not
touched here.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
from torch import nn

from weightinit.errors import WeightinitError


@dataclass
class Choice:
    """Which candidate the pairs chose, and how much better it fits them than the generated weights."""

    chosen: str
    pairs_l1: float
    generated_l1: float
    candidates: int
    pairs: int
    seconds: float


def check_pairs(pairs) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)``: two finite tensors ``[N, C, H, W]`` of the same N and H, W, N >= 1."""
    if not (isinstance(pairs, (tuple, list)) and len(pairs) == 2 and all(isinstance(t, torch.Tensor) for t in pairs)):
        raise WeightinitError("pairs must be (inputs, targets), two tensors [N, C, H, W] as the model takes and returns them")
    inputs, targets = pairs
    if inputs.ndim != 4 or targets.ndim != 4 or inputs.shape[0] != targets.shape[0] or inputs.shape[2:] != targets.shape[2:]:
        raise WeightinitError(
            f"pairs must be inputs [N, C, H, W] and targets [N, C', H, W] with the same N, H, W; "
            f"got {list(inputs.shape)} and {list(targets.shape)}"
        )
    if inputs.shape[0] < 1:
        raise WeightinitError("pairs hold no pair; pass at least one (the benchmark uses 8)")
    if not (torch.isfinite(inputs).all() and torch.isfinite(targets).all()):
        raise WeightinitError("pairs contain NaN or Inf")
    return inputs, targets


@torch.no_grad()
def _pairs_l1(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int) -> torch.Tensor:
    from weightinit.recipe import batch_statistics

    device = next(model.parameters()).device
    total = torch.zeros((), dtype=torch.float64, device=device)
    with batch_statistics(model):
        for i in range(0, len(inputs), batch_size):
            out = model(inputs[i : i + batch_size].to(device))
            if out.shape != targets[i : i + batch_size].shape:
                raise WeightinitError(f"the model turns pair inputs {list(inputs.shape[1:])} into {list(out.shape[1:])}, but the targets are {list(targets.shape[1:])}")  # fmt: skip
            total += (out.float() - targets[i : i + batch_size].to(device).float()).abs().sum(dtype=torch.float64)
    return total / targets.numel()


def choose_on_pairs(model: nn.Module, adapter, gen, generated: dict[str, torch.Tensor], concept: str, pairs,
                    *, batch_size: int = 16) -> tuple[dict[str, torch.Tensor], Choice]:  # fmt: skip
    """The factors (or delta) among ``generated`` and the generator's candidates for ``concept``
    whose merged weights give the lowest L1 on ``pairs``, and the :class:`Choice`.

    ``gen`` is an ``initialization.GeneratorView``. Under ``torch.distributed`` the scores are
    averaged over the ranks first, so every rank picks the same start even with its own pairs.
    """
    from weightinit.codec import BlockCodec
    from weightinit.initialization import _write_buffers

    start = time.perf_counter()
    inputs, targets = check_pairs(pairs)
    codec = BlockCodec(gen.generator.layout)
    named = [("generated", None)] + gen.generator.candidate_blocks(concept)
    probe = copy.deepcopy(model)
    _write_buffers(probe, gen.base_buffers)
    # the probe is thrown away, so candidates are copied straight in; the chosen one is validated
    # when initialize writes it into the model
    params = dict(probe.named_parameters())
    slots = [(params[native], canonical) for native, canonical in adapter.canonical_names(probe)]

    def factors_of(blocks):
        return generated if blocks is None else {k: v.float() for k, v in codec.decode(blocks, copy=True).items()}

    scores = []
    with torch.no_grad():
        for _, blocks in named:
            full = gen.full_weights(factors_of(blocks))
            for param, canonical in slots:
                param.copy_(full[canonical])
            scores.append(_pairs_l1(probe, inputs, targets, batch_size))
    scores = torch.stack(scores)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(scores)
        scores /= torch.distributed.get_world_size()
    scores = torch.nan_to_num(scores.cpu(), nan=float("inf"))
    best = int(torch.argmin(scores))  # the first of equals: the generated weights win ties
    choice = Choice(named[best][0], float(scores[best]), float(scores[0]), len(named), len(inputs), 0.0)
    chosen = factors_of(named[best][1])
    choice.seconds = time.perf_counter() - start
    return chosen, choice
