"""Carrying weights from the network a generator was made for to a wider or deeper one.

This module knows no models: an adapter says, per tensor of the target network, which tensor of
the source network it comes from and what each dimension does (:class:`Rule`), and the functions
here apply that to full weights, LoRA factors and running statistics.

Width follows Net2WiderNet (Chen et al., 2016): a target channel ``j`` copies source channel
``index[j]``. A dimension that *produces* channels (a convolution's outputs, a norm's affine, a
running mean) copies; a dimension that *consumes* them (a convolution's inputs) copies and
divides by the number of replicas of the source channel, so every replica group sums to the
source weight and the network computes exactly what the narrow one did. A consumed dimension can
be a concatenation (a U-Net's skip connection): its index then runs over the concatenated source.

Replicas of one channel get identical gradients, so they would never diverge.
:func:`add_widen_noise` breaks that without changing the function: it adds Gaussian noise to the
consumer weights, centred within each replica group, so a group still sums to the source weight.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from weightinit.representation import LORA_A, LORA_B

PRODUCE, CONSUME, KEEP = "produce", "consume", "keep"
#: The buffers a norm module holds, named after its parameters' canonical module.
NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
ROLES = (PRODUCE, CONSUME, KEEP)


def channel_index(source: int, target: int) -> torch.Tensor:
    """Which source channel each of ``target`` channels copies: the first ``source`` in order,
    then round again (``3 -> 5``: ``0 1 2 0 1``), so odd widths work too."""
    if target < source:
        raise ValueError(f"cannot widen {source} channels to {target}")
    return torch.arange(target) % source


@dataclass(frozen=True)
class Dim:
    """What one dimension of a target tensor does: ``role`` and, for a concatenation, its parts."""

    role: str
    groups: int = 1

    def index(self, source: int, target: int) -> torch.Tensor | None:
        """The source index of every target position, or None where the sizes agree."""
        if source == target:
            return None
        if self.role == KEEP:
            raise ValueError(f"a kept dimension changes size ({source} -> {target})")
        if source % self.groups or target % self.groups:
            raise ValueError(f"{source} -> {target} channels do not split into {self.groups} equal parts")
        part_s, part_t = source // self.groups, target // self.groups
        return torch.cat([channel_index(part_s, part_t) + g * part_s for g in range(self.groups)])


@dataclass(frozen=True)
class Rule:
    """How one target tensor is made.

    ``source``: the source tensor's canonical name, or None for a tensor the source network lacks
    (a norm's affine after a change of norm), which is filled with ``fill``. ``dims``: one
    :class:`Dim` per dimension. ``scale``: 0 zeroes a copied tensor (a residual block added by
    deepening starts as the identity); LoRA factors of a zeroed weight keep A and zero B.
    """

    source: str | None
    dims: tuple[Dim, ...]
    scale: float = 1.0
    fill: float = 0.0


@dataclass
class Plan:
    """Rules for every parameter and buffer of a target network (canonical names, target order)."""

    source_arch: str
    target_arch: str
    parameters: dict[str, Rule]
    buffers: dict[str, Rule] = field(default_factory=dict)
    #: Whether the target computes what the source does (in eval and train mode) before noise.
    exact: bool = True
    #: What was done, for reports: ``["widened from ngf 16 to 64", ...]``.
    steps: list[str] = field(default_factory=list)

    @property
    def identity(self) -> bool:
        return not self.steps

    def describe(self) -> str:
        return "; ".join(self.steps) if self.steps else "its own network"


def _apply(value: torch.Tensor, rule: Rule, shape: tuple[int, ...], *, dim_offset: int = 0) -> torch.Tensor:
    """``value`` carried along ``rule`` to ``shape`` (``dim_offset`` skips leading dims, as LoRA's A has)."""
    out = value
    for d, dim in enumerate(rule.dims):
        axis = d + dim_offset
        index = dim.index(out.shape[axis], shape[axis])
        if index is None:
            continue
        out = out.index_select(axis, index.to(out.device))
        if dim.role == CONSUME:
            counts = torch.bincount(index, minlength=int(index.max()) + 1)[index].to(out)
            view = [1] * out.dim()
            view[axis] = -1
            out = out / counts.view(view)
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"carried to {list(out.shape)}, expected {list(shape)}")
    return out * rule.scale if rule.scale != 1.0 else out


def carry(
    plan_rules: Mapping[str, Rule], source: Mapping[str, torch.Tensor], shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, torch.Tensor]:
    """Target tensors (in ``shapes``' order) from source tensors by canonical name."""
    out = {}
    for name, shape in shapes.items():
        rule = plan_rules[name]
        if rule.source is None:
            dtype = torch.long if name.endswith("num_batches_tracked") else torch.float32
            device = next((v.device for v in source.values()), None)
            out[name] = torch.full(tuple(shape), rule.fill, dtype=dtype, device=device)
        else:
            out[name] = _apply(source[rule.source], rule, tuple(shape))
    return out


def carry_factors(
    plan_rules: Mapping[str, Rule],
    factors: Mapping[str, torch.Tensor],
    source_shapes: Mapping[str, tuple[int, ...]],
    shapes: Mapping[str, tuple[int, ...]],
) -> dict[str, torch.Tensor]:
    """LoRA factors (``W.lora_A`` ``[r, prod(W.shape[1:])]``, ``W.lora_B`` ``[W.shape[0], r]``) carried so
    that the target's ``B @ A`` is the carried ``B @ A``: B takes the weight's first dimension and A
    the others (a consumed dimension is divided once, in whichever factor holds it). A weight the
    plan zeroes gets ``B = 0`` and keeps its A, so its delta is zero and it still trains."""
    out = {}
    for name, shape in shapes.items():
        rule = plan_rules[name]
        if rule.source is None or rule.source + LORA_A not in factors:
            continue
        a, b = factors[rule.source + LORA_A], factors[rule.source + LORA_B]
        rank = a.shape[0]
        a_full = a.reshape(rank, *source_shapes[rule.source][1:])
        a_t = _apply(a_full, Rule(rule.source, rule.dims[1:]), (rank, *shape[1:]), dim_offset=1)
        b_t = _apply(b, Rule(rule.source, rule.dims[:1] + (Dim(KEEP),)), (shape[0], rank))
        out[name + LORA_A] = a_t.reshape(rank, -1)
        out[name + LORA_B] = torch.zeros_like(b_t) if rule.scale == 0.0 else b_t
    return out


@torch.no_grad()
def add_widen_noise(
    plan_rules: Mapping[str, Rule],
    weights: dict[str, torch.Tensor],
    source_shapes: Mapping[str, tuple[int, ...]],
    noise: float,
    generator: torch.Generator,
) -> int:
    """Add noise to the consumed dimensions of ``weights`` (in place), centred within each replica
    group so that the function is unchanged; its scale is ``noise`` times the tensor's standard
    deviation. Returns how many tensors got noise."""
    if noise < 0:
        raise ValueError(f"widen_noise must be >= 0, got {noise}")
    touched = 0
    for name, value in weights.items():
        rule = plan_rules[name]
        if noise == 0 or rule.source is None or rule.scale == 0.0 or value.dim() < 2:
            continue
        for axis, dim in enumerate(rule.dims):
            if dim.role != CONSUME:
                continue
            index = dim.index(source_shapes[rule.source][axis], value.shape[axis])
            if index is None:
                continue
            index = index.to(value.device)
            std = float(value.float().std())
            sample = torch.randn(value.shape, generator=generator, dtype=torch.float32).to(value) * (noise * std)
            # the mean of each replica group along ``axis``, spread back over the group
            moved = sample.movedim(axis, 0)
            sums = torch.zeros((int(index.max()) + 1, *moved.shape[1:]), dtype=moved.dtype, device=moved.device)
            sums.index_add_(0, index, moved)
            counts = torch.bincount(index).to(moved).view(-1, *([1] * (moved.dim() - 1)))
            centred = (moved - (sums / counts)[index]).movedim(0, axis)
            value.add_(centred)
            touched += 1
    return touched


def canonical_buffer_names(model, adapter) -> dict[str, str]:
    """Native buffer key -> canonical name, for the buffers of modules whose parameters are
    generated (``model.1.running_mean`` -> ``unet.d1.down_norm.running_mean``)."""
    buffers = dict(model.named_buffers())
    out = {}
    for native, canonical in adapter.canonical_names(model):
        module, cmodule = native.rsplit(".", 1)[0], canonical.rsplit(".", 1)[0]
        for b in NORM_BUFFERS:
            if f"{module}.{b}" in buffers:
                out[f"{module}.{b}"] = f"{cmodule}.{b}"
    return out


def canonical_shapes(model, adapter) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """``(parameters, buffers)`` of ``model``: canonical name -> shape (see :func:`canonical_buffer_names`)."""
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    shapes = {canonical: tuple(params[native].shape) for native, canonical in adapter.canonical_names(model)}
    buffer_shapes = {c: tuple(buffers[n].shape) for n, c in canonical_buffer_names(model, adapter).items()}
    return shapes, buffer_shapes
