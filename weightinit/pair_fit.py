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
from weightinit.ranks import mean_over_ranks
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


class PriorSpan:
    """A network of the generator's own layout as a function of a point of the prior's span:
    normalised blocks ``origin + (scale * shift) @ basis``, decoded and written functionally
    (``torch.func.functional_call``), so gradients reach ``shift``. ``scale`` is the training
    concepts' spread along each coefficient; the basis is the prior's float32 copy
    (``RetrievalPrior.basis32``, cast once per prior)."""

    def __init__(self, model: nn.Module, adapter, gen):
        if gen.prior is None:
            raise WeightinitError(f"generator {gen.name} has no retrieval prior to fit the pairs in; use fit_steps=0")
        self.model, self.gen = model, gen
        self.codec = BlockCodec(gen.layout)
        self.basis = gen.prior.basis32
        self.scale = gen.prior.coef.float().std(0)
        self.center = gen.center if gen.center is not None else torch.zeros(())
        self.shape = (gen.prior.num_blocks, gen.prior.block_size)
        self.native = {c: n for n, c in adapter.canonical_names(model)}
        self.device = next(model.parameters()).device
        self._buffers = dict(model.named_buffers())

    def stored(self, factors: dict[str, torch.Tensor]) -> torch.Tensor:
        """The blocks of ``factors`` as the layout stores them (de-normalised, float32)."""
        dtypes = {slot.name: slot.torch_dtype for slot in self.gen.layout.slots}
        return self.codec.encode({k: v.to(dtypes[k]) for k, v in factors.items()}, dtype=torch.float32)

    def origin_of(self, factors: dict[str, torch.Tensor]) -> torch.Tensor:
        """The normalised blocks of ``factors``."""
        return self.gen.normalizer.normalize(self.stored(factors))

    def origin_at(self, coefficients: torch.Tensor) -> torch.Tensor:
        """The normalised blocks of the zoo mean plus the prior's delta at ``coefficients [R]``."""
        return self.center + (coefficients.float() @ self.basis).view(self.shape)

    def blocks(self, origin: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        moved = origin if shift is None else origin + ((self.scale * shift) @ self.basis).view(self.shape)
        return self.gen.normalizer.denormalize(moved, torch.float32)

    def factors(self, blocks: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in self.codec.decode(blocks).items()}

    def weights(self, blocks: torch.Tensor) -> dict[str, torch.Tensor]:
        """The network's parameters (native names) with ``blocks`` written: the base where the
        blocks store nothing (no zeros added), base + delta where they do."""
        factors = self.codec.decode(blocks)
        out = {}
        for name, base in self.gen.base_canonical.items():
            if name + representation.LORA_A in factors:
                a, b = factors[name + representation.LORA_A], factors[name + representation.LORA_B]
                value = base + representation.lora_update(a.float(), b.float(), base.shape)
            elif name in factors:
                value = base + factors[name].float().view(base.shape)
            else:
                value = base
            out[self.native[name]] = value.to(self.device)
        return out

    def l1(self, blocks: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The network's L1 on the pairs with ``blocks`` written (call it in batch statistics)."""
        return F.l1_loss(self.forward(blocks, inputs), targets)

    def forward(self, blocks: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """The network's outputs with ``blocks`` written; its own buffers are not touched (a
        batch norm in train mode counts its batches even at momentum 0), copies take the counts."""
        buffers = {k: v.clone() for k, v in self._buffers.items()}
        return torch.func.functional_call(self.model, (self.weights(blocks), buffers), (inputs,))


def fit_to_pairs(
    model: nn.Module,
    adapter,
    gen,
    factors: dict[str, torch.Tensor],
    pairs,
    *,
    steps: int,
    lr: float = FIT_LEARNING_RATE,
    origin: torch.Tensor | None = None,
    l1_before: float | None = None,
    span: PriorSpan | None = None,
) -> tuple[dict[str, torch.Tensor], PairFit]:
    """``factors`` moved by ``steps`` Adam steps in the prior's span to fit ``pairs``
    (``(inputs, targets)``, as :func:`weightinit.selection.check_pairs` returns them) on ``model``, a
    network of the generator's own layout (left unchanged). Returns the new factors and what was done.
    ``origin`` (the factors' normalised blocks), ``l1_before`` (their L1 on the pairs) and
    ``span`` (a :class:`PriorSpan` of ``model``) save recomputing them where the caller has them."""
    start = time.perf_counter()
    span = PriorSpan(model, adapter, gen) if span is None else span
    origin = span.origin_of(factors) if origin is None else origin
    inputs, targets = (t.to(device=span.device, dtype=torch.float32) for t in pairs)
    u = torch.zeros(gen.prior.rank, requires_grad=True)
    optimizer = torch.optim.Adam([u], lr=lr)
    with batch_statistics(model):
        if l1_before is None:
            with torch.no_grad():
                l1_before = float(mean_over_ranks(span.l1(span.blocks(origin), inputs, targets)))
        for _ in range(steps):
            value = span.l1(span.blocks(origin, u), inputs, targets)
            optimizer.zero_grad()
            value.backward()
            u.grad = mean_over_ranks(u.grad, span.device)  # every rank takes the same step
            optimizer.step()
        with torch.no_grad():
            blocks = span.blocks(origin, u)
            after = float(mean_over_ranks(span.l1(blocks, inputs, targets)))
    if not bool(torch.isfinite(blocks).all()):
        raise InvalidWeights("fitting the start to the pairs gave NaN or Inf; nothing was written")
    if not after < l1_before:  # Adam's first steps move every coefficient: a start the pairs already fit is kept
        return dict(factors), PairFit(steps, len(inputs), l1_before, l1_before, time.perf_counter() - start, kept=True)
    return span.factors(blocks), PairFit(steps, len(inputs), l1_before, after, time.perf_counter() - start)
