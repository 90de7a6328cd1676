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


def check_pairs(pairs, model: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)``: two finite floating-point tensors ``[N, C, H, W]`` of the same N and
    H, W, N >= 1. With ``model``, also that it takes the inputs and returns the targets' shape,
    checked on the meta device (no values computed, no memory, milliseconds)."""
    if not (isinstance(pairs, (tuple, list)) and len(pairs) == 2 and all(isinstance(t, torch.Tensor) for t in pairs)):
        raise WeightinitError("pairs must be (inputs, targets), two tensors [N, C, H, W] as the model takes and returns them")
    inputs, targets = pairs
    for what, t in (("inputs", inputs), ("targets", targets)):
        if not t.is_floating_point():
            raise WeightinitError(
                f"pair {what} are {str(t.dtype).removeprefix('torch.')}; pass float images in the range the model "
                "takes (pix2pix: [-1, 1], e.g. x.float() / 127.5 - 1)"
            )
    if inputs.ndim != 4 or targets.ndim != 4 or inputs.shape[0] != targets.shape[0] or inputs.shape[2:] != targets.shape[2:]:
        raise WeightinitError(
            f"pairs must be inputs [N, C, H, W] and targets [N, C', H, W] with the same N, H, W; "
            f"got {list(inputs.shape)} and {list(targets.shape)}"
        )
    if inputs.shape[0] < 1:
        raise WeightinitError("pairs hold no pair; pass at least one (the benchmark uses 8)")
    if inputs.shape[-1] in (1, 3, 4) and inputs.shape[1] not in (1, 3, 4):
        raise WeightinitError(
            f"pairs look channels-last (NHWC): inputs {list(inputs.shape)}; the model takes [N, C, H, W]: "
            "pass x.permute(0, 3, 1, 2)"
        )
    for what, t in (("inputs", inputs), ("targets", targets)):
        if not bool(torch.isfinite(t).all()):
            raise WeightinitError(f"pair {what} contain NaN or Inf")
    if model is not None:
        _probe(model, inputs, targets)
    return inputs, targets


def _probe(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int = 16) -> None:
    """Run the model on meta tensors of the pairs' shape: a size or channel count it cannot take
    is one line now, before the generator is loaded and any candidate is scored."""
    from torch.func import functional_call

    from weightinit.recipe import batch_statistics

    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    meta = {k: torch.empty_like(v, device="meta") for k, v in [*model.named_parameters(), *model.named_buffers()]}
    x = torch.empty((min(len(inputs), batch_size), *inputs.shape[1:]), dtype=dtype, device="meta")
    try:
        with torch.no_grad(), batch_statistics(model):
            out = functional_call(model, meta, (x,), strict=False)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise WeightinitError(f"the model cannot take pair inputs of shape {list(inputs.shape[1:])}: {reason}") from None
    if isinstance(out, torch.Tensor) and tuple(out.shape[1:]) != tuple(targets.shape[1:]):
        raise WeightinitError(
            f"the model turns pair inputs {list(inputs.shape[1:])} into {list(out.shape[1:])}, but the targets are "
            f"{list(targets.shape[1:])} (a size the model cannot keep: resize the pairs)"
        )


@torch.no_grad()
def _pairs_l1(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int) -> torch.Tensor:
    from weightinit.recipe import batch_statistics

    first = next(model.parameters())
    device, dtype = first.device, first.dtype  # a float16/bfloat16 model takes its own dtype
    total = torch.zeros((), dtype=torch.float64, device=device)
    with batch_statistics(model):
        for i in range(0, len(inputs), batch_size):
            out = model(inputs[i : i + batch_size].to(device, dtype))
            if out.shape != targets[i : i + batch_size].shape:
                raise WeightinitError(f"the model turns pair inputs {list(inputs.shape[1:])} into {list(out.shape[1:])}, but the targets are {list(targets.shape[1:])}")  # fmt: skip
            total += (out.float() - targets[i : i + batch_size].to(device).float()).abs().sum(dtype=torch.float64)
    return total / targets.numel()


def choose_on_pairs(model: nn.Module, adapter, gen, generated: dict[str, torch.Tensor], concept: str, pairs,
                    *, batch_size: int = 16, progress=None) -> tuple[dict[str, torch.Tensor], Choice]:  # fmt: skip
    """The factors (or delta) among ``generated`` and the generator's candidates for ``concept``
    whose merged weights give the lowest L1 on ``pairs``, and the :class:`Choice`.

    ``gen`` is an ``initialization.GeneratorView``. ``progress(done, total)`` is called after each
    candidate (the CLI draws a bar: scoring takes seconds to tens of seconds). Non-finite generated
    weights, candidates or scores are refused, never silently replaced by another candidate. Under ``torch.distributed`` the scores are
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

    from weightinit.errors import InvalidWeights

    for name, value in generated.items():
        if not bool(torch.isfinite(value).all()):
            raise InvalidWeights(f"generated weights contain NaN or Inf (first in {name}); nothing was written")

    def factors_of(name, blocks):
        if blocks is None:
            return generated
        codec.check_finite(blocks, what=f"candidate {name!r}")  # decode checks too; this names the candidate
        return {k: v.float() for k, v in codec.decode(blocks, copy=True).items()}

    scores = []
    with torch.no_grad():
        for i, (name, blocks) in enumerate(named):
            full = gen.full_weights(factors_of(name, blocks))
            for param, canonical in slots:
                param.copy_(full[canonical])
            scores.append(_pairs_l1(probe, inputs, targets, batch_size))
            if progress is not None:
                progress(i + 1, len(named))
    scores = torch.stack(scores)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(scores)
        scores /= torch.distributed.get_world_size()
    scores = scores.cpu()
    if not bool(torch.isfinite(scores).all()):
        bad = named[int((~torch.isfinite(scores)).nonzero()[0])][0]
        raise InvalidWeights(f"scoring candidate {bad!r} on the pairs gave NaN or Inf (the model's outputs are not finite); nothing was written")
    best = int(torch.argmin(scores))  # the first of equals: the generated weights win ties
    choice = Choice(named[best][0], float(scores[best]), float(scores[0]), len(named), len(inputs), 0.0)
    chosen = factors_of(*named[best])
    choice.seconds = time.perf_counter() - start
    return chosen, choice
