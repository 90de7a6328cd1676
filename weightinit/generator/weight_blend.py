"""Blending training concepts in weight space: a text's start as the best LoRA factors of a blend of
the weight changes, not as a blend of the factors.

The retrieval prior blends the training concepts' LoRA *factors* (``B``, ``A`` per target). A blend
of factors is not the blend of the weight changes they stand for: the product of the mean of the
``B`` and the mean of the ``A`` adds cross terms (``B_1 A_2``) that no concept has, and the zoo mean
a far text falls back to is the mean of the factors, weaker than the mean of the changes. A
generator that carries a weight-blend policy (``generator_config.json`` ``weight_blend``) writes,
for a blend ``w`` of its training concepts (:attr:`ResolvedConcept.start_weights`: the text's blend,
the whole zoo alike for a far text's mean),

    delta = sum_c w_c B_c A_c  per LoRA target (and sum_c w_c T_c for a tensor stored whole),

as its best rank-``r`` factors (truncated SVD, split ``B = U sqrt(S)``, ``A = sqrt(S) V^T``), ``r``
the zoo's LoRA rank, so the start has the factors' shapes and LoRA fine-tuning starts from it.
Concepts under ``min_weight`` of the blend are skipped (the rest renormalised), which keeps a sharp
blend to a few products. The denoiser's residual is not added: it was learned around the factor
blend, in the factors' own gauge, and it moves the start by 0.02 dB (issue 28).

Chosen per generator on its training concepts by the source repository's
``experiments/text_policy.py`` (step 0, each concept and its reverse twin out of the blend) and
by time to target (``experiments/text_policy_ttq.py``); the measurement travels in ``measured``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from weightinit.errors import CheckpointError, InvalidWeights, WeightinitError
from weightinit.representation import LORA_A, LORA_B

#: Blend weights below this are skipped (the rest renormalised): a sharp blend stays a few products.
DEFAULT_MIN_WEIGHT = 1e-3


@dataclass(frozen=True)
class WeightBlendPolicy:
    """Blend in weight space, skipping concepts under ``min_weight`` (module docstring)."""

    min_weight: float = DEFAULT_MIN_WEIGHT
    measured: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.min_weight, bool) or not isinstance(self.min_weight, int | float):
            raise CheckpointError(f"weight_blend needs a numeric 'min_weight', got {self.min_weight!r:.80}")
        if not 0 <= self.min_weight < 1:
            raise CheckpointError(f"weight_blend min_weight must be in [0, 1), got {self.min_weight}")

    @classmethod
    def from_dict(cls, data: Mapping | WeightBlendPolicy | None) -> WeightBlendPolicy | None:
        if data is None or isinstance(data, WeightBlendPolicy):
            return data
        if not isinstance(data, Mapping):
            raise CheckpointError(f"weight_blend must be a dict (with 'min_weight'), got {data!r:.80}")
        rest = {k: v for k, v in data.items() if k != "min_weight"}
        return cls(data.get("min_weight", DEFAULT_MIN_WEIGHT), rest)

    def to_dict(self) -> dict:
        return {"min_weight": self.min_weight, **self.measured}


def concept_tensors(gen, index: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{name: [k, *shape]}`` float32: the generator's tensors of training concepts ``index [k]``
    as the retrieval prior holds them (the zoo mean plus each one's delta, de-normalised)."""
    prior, layout, norm = gen.prior, gen.layout, gen.normalizer
    flat = prior.coef[index].to(torch.float32) @ prior.basis32
    if gen.center is not None:
        flat = flat + gen.center.to(torch.float32).reshape(1, -1)
    bs = layout.block_size
    out = {}
    for i, (slot, start) in enumerate(zip(layout.slots, layout.slot_block_start)):
        values = flat[:, start * bs : start * bs + slot.numel]
        out[slot.name] = (values * norm.scale[i] + norm.mean[i]).view(len(index), *slot.shape)
    return out


def best_factors(b: torch.Tensor, a: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The best rank-``rank`` factors ``(B [out, rank], A [rank, fan])`` of ``b @ a`` (``b [out, m]``,
    ``a [m, fan]``), float64 inside. A few concepts (``m`` under both sides of the product): an SVD
    of the small core between the two QR factors, never forming the ``[out, fan]`` product; many
    (the zoo mean, a flat blend): the eigenvectors of the product's Gram matrix on its smaller side,
    which is 3-4x faster than its SVD and equal to it in float32. Each singular vector's sign is
    fixed (its largest entry positive), so the factors do not depend on the routine. Columns past
    the product's own rank are zero."""
    b, a = b.to(torch.float64), a.to(torch.float64)
    if b.shape[1] < min(b.shape[0], a.shape[1]):
        qb, rb = torch.linalg.qr(b)
        qa, ra = torch.linalg.qr(a.T)
        u, s, vh = torch.linalg.svd(rb @ ra.T, full_matrices=False)
        u, s, vh = qb @ u[:, :rank], s[:rank], vh[:rank] @ qa.T
    else:
        u, s, vh = _top_singular(b @ a, rank)
    keep = int((s > s[0] * _RELATIVE_RANK_TOL).sum()) if s.numel() and s[0] > 0 else 0
    u, s, vh = u[:, :keep], s[:keep], vh[:keep]
    sign = torch.sign(u.gather(0, u.abs().argmax(0, keepdim=True)))[0]
    root = s.sqrt()
    out_b = torch.zeros(b.shape[0], rank, dtype=torch.float64)
    out_a = torch.zeros(rank, a.shape[1], dtype=torch.float64)
    out_b[:, :keep] = u * (root * sign)
    out_a[:keep] = (root * sign)[:, None] * vh
    return out_b.to(torch.float32), out_a.to(torch.float32)


#: Singular values under this fraction of the largest are the product's rounding, not its rank
#: (the Gram matrix's eigenvalues carry an error of about 1e-16 of the largest, 1e-8 in the values).
_RELATIVE_RANK_TOL = 1e-7


def _top_singular(m: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``rank`` largest singular triplets ``(u [out, k], s [k], vh [k, fan])`` of ``m`` from the
    eigenvectors of its Gram matrix on the smaller side (largest first; ``k = min(rank, out, fan)``)."""
    wide = m.shape[0] <= m.shape[1]
    values, vectors = torch.linalg.eigh(m @ m.T if wide else m.T @ m)
    k = min(rank, values.numel())
    s = values.flip(0)[:k].clamp_min(0).sqrt()
    vectors = vectors.flip(1)[:, :k]
    inverse = torch.where(s > 0, 1 / s.clamp_min(torch.finfo(s.dtype).tiny), torch.zeros_like(s))
    if wide:
        return vectors, s, (vectors.T @ m) * inverse[:, None]
    return (m @ vectors) * inverse, s, vectors.T


def blend_tensors(gen, weights: torch.Tensor, min_weight: float = DEFAULT_MIN_WEIGHT) -> dict[str, torch.Tensor]:
    """``{name: tensor}`` (float32, the layout's names): the weight-space blend ``weights [C]`` of
    the generator's training concepts (module docstring). Weights may be signed (a blend pushed
    past the zoo mean); those under ``min_weight`` in size are skipped, the rest renormalised."""
    if gen.prior is None:
        raise WeightinitError("a weight-space blend needs the generator's retrieval prior")
    weights = weights.to(torch.float32).reshape(-1)
    if weights.numel() != gen.prior.coef.shape[0] or not bool(torch.isfinite(weights).all()):
        raise WeightinitError(f"blend weights must be [{gen.prior.coef.shape[0]}] and finite")
    index = torch.nonzero(weights.abs() >= min_weight).flatten()
    if not index.numel():
        index = weights.abs().argmax().reshape(1)
    w = weights[index] / weights[index].sum()
    tensors = concept_tensors(gen, index)
    bad = [name for name, t in tensors.items() if not bool(torch.isfinite(t).all())]
    if bad:
        raise InvalidWeights(f"the blended concepts' weights contain NaN or Inf (first in {bad[0]}); nothing written")
    out = {}
    for name, stack in tensors.items():
        if name.endswith(LORA_A) or name.endswith(LORA_B):
            continue
        out[name] = torch.einsum("k,k...->...", w, stack)
    for name in tensors:
        if not name.endswith(LORA_A):
            continue
        target = name.removesuffix(LORA_A)
        a, b = tensors[name], tensors[target + LORA_B]  # [k, r, fan], [k, out, r]
        rank = a.shape[1]
        scaled_b = (b * w.view(-1, 1, 1)).permute(1, 0, 2).reshape(b.shape[1], -1)  # [out, k r]
        out[target + LORA_B], out[name] = best_factors(scaled_b, a.reshape(-1, a.shape[2]), rank)
    return {name: out[name] for name in tensors}
