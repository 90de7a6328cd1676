"""A start fitted to a few of the user's pairs, inside the span of the generator's retrieval prior.

The candidates ``initialize(pairs=)`` chooses among are points of that span (blends of the
training concepts, and each one's own delta); the chosen start is then moved by a few Adam steps
on the prior's coefficients to lower the network's L1 on the same pairs. Gradients flow through
the generator's own decoding (normaliser, block codec, LoRA factors), with batch statistics as
the reference pix2pix test evaluates. Each coefficient moves in units of the training concepts'
spread along it, so the start stays among the edits the zoo knows; the learning rate and step
count were chosen on training concepts (the source repository's ``experiments/pair_fit.py``,
docs/measurements/pair_fit.json).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from weightinit import representation
from weightinit.codec import BlockCodec
from weightinit.errors import InvalidWeights, WeightinitError
from weightinit.recipe import batch_statistics

#: Adam's learning rate, in units of the training concepts' spread along each coefficient.
FIT_LEARNING_RATE = 0.1


@dataclass
class PairFit:
    """What :func:`fit_to_pairs` did, for the report."""

    steps: int
    pairs: int
    l1_before: float
    l1_after: float
    seconds: float
    #: the fit did not lower the pairs' L1, so the start it began from was kept
    kept: bool = False


def fit_to_pairs(
    model: nn.Module,
    adapter,
    gen,
    factors: dict[str, torch.Tensor],
    pairs,
    *,
    steps: int,
    lr: float = FIT_LEARNING_RATE,
) -> tuple[dict[str, torch.Tensor], PairFit]:
    """``factors`` moved by ``steps`` Adam steps in the prior's span to fit ``pairs``
    (``(inputs, targets)``, as :func:`weightinit.selection.check_pairs` returns them) on ``model``, a
    network of the generator's own layout (left unchanged). Returns the new factors and what was done."""
    if gen.prior is None:
        raise WeightinitError(f"generator {gen.name} has no retrieval prior to fit the pairs in; use fit_steps=0")
    start = time.perf_counter()
    codec = BlockCodec(gen.layout)
    prior = gen.prior
    dtypes = {slot.name: slot.torch_dtype for slot in gen.layout.slots}  # the layout's (the factors came from it)
    stored = codec.encode({k: v.to(dtypes[k]) for k, v in factors.items()}, dtype=torch.float32)
    origin = gen.normalizer.normalize(stored)
    scale = prior.coef.float().std(0)
    native = {c: n for n, c in adapter.canonical_names(model)}
    device = next(model.parameters()).device
    inputs, targets = (t.to(device=device, dtype=torch.float32) for t in pairs)
    u = torch.zeros(prior.rank, requires_grad=True)
    optimizer = torch.optim.Adam([u], lr=lr)

    def weights(shift: torch.Tensor) -> dict[str, torch.Tensor]:
        blocks = gen.normalizer.denormalize(origin + prior.delta(scale * shift), torch.float32)
        full = representation.full_weights(codec.decode(blocks), gen.base_canonical)
        return {native[k]: v.to(device) for k, v in full.items()}

    def loss(shift: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(torch.func.functional_call(model, weights(shift), (inputs,)), targets)

    with batch_statistics(model):
        with torch.no_grad():
            before = float(loss(u))
        for _ in range(steps):
            value = loss(u)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
        with torch.no_grad():
            after = float(loss(u))
            blocks = gen.normalizer.denormalize(origin + prior.delta(scale * u), torch.float32)
    if not bool(torch.isfinite(blocks).all()):
        raise InvalidWeights("fitting the start to the pairs gave NaN or Inf; nothing was written")
    if not after < before:  # Adam's first steps move every coefficient: a start the pairs already fit is kept
        return dict(factors), PairFit(steps, len(inputs), before, before, time.perf_counter() - start, kept=True)
    fitted = {k: v.clone() for k, v in codec.decode(blocks).items()}
    return fitted, PairFit(steps, len(inputs), before, after, time.perf_counter() - start)
