"""Which pix2pix networks a generator's network carries to, and how (:mod:`weightinit.transfer`).

A generator made for one pix2pix network serves others of its family:

* **width**: any ``ngf`` at or above its own, odd ones included; exact (Net2WiderNet), through
  the U-Net's skip concatenations and the ResNet's residual adds;
* **U-Net depth**: a full-width level (``8 ngf`` in and out) is repeated, or the deepest ones
  dropped; the innermost level stays innermost. ``unet_128 -> unet_256`` repeats level 4, the
  first full-width one: on 6 training concepts at 256 px its step-0 PSNR ties repeating the
  deepest one by the median (22.58 and 22.59 dB; above it on 4 of 6, by 0.29 dB on average) and is
  7.2 dB above the base alone (the source repository's ``experiments/depth_transfer.py``, docs/NETWORKS.md);
* **ResNet depth**: a shallower network keeps the first blocks; an added block starts as the
  identity (its last norm's affine zeroed under batch norm, its last convolution zeroed under
  instance norm, which has no affine);
* **norm**: instance -> batch is exact in train mode at batch size 1 (batch norm of one image is
  instance norm with a unit affine; the convolution biases it drops are what the norm removes);
  batch -> instance drops the affine, which instance norm lacks.

Anything else (another family, ``input_nc`` or ``output_nc``, a narrower network, norm ``none``)
is refused with the reason. Rules come from the canonical names and shapes of both networks
built on the meta device, so no weight is allocated to plan.
"""

from __future__ import annotations

import re

import torch

from weightinit.adapters.base import ArchSpec
from weightinit.errors import LayoutMismatch
from weightinit.transfer import CONSUME, KEEP, PRODUCE, Dim, Plan, Rule, canonical_shapes

_UNET = re.compile(r"unet\.d(\d+)\.(down_conv|down_norm|up_conv|up_norm)\.(\w+)$")
_RESNET_BLOCK = re.compile(r"res(\d+)\.(conv1|norm1|conv2|norm2)\.(\w+)$")


class NotCarried(LayoutMismatch):
    """No transfer takes the source network to the target one; the message says why."""


def _dims(kind: str, ndim: int, *, out: str, inp: str = KEEP, groups: int = 1) -> tuple[Dim, ...]:
    """Dims of a parameter: a conv weight ``[out, in, k, k]``, a transposed conv weight
    ``[in, out, k, k]``, or a 1-D bias/affine/statistic (``[out]``)."""
    if ndim == 1:
        return (Dim(out),)
    if kind == "conv_transpose":
        return (Dim(inp, groups), Dim(out), Dim(KEEP), Dim(KEEP))
    return (Dim(out), Dim(inp, groups), Dim(KEEP), Dim(KEEP))


def _unet_levels(names) -> int:
    return 1 + max(int(m.group(1)) for n in names if (m := _UNET.match(n)))


def _unet_level_map(source_depth: int, target_depth: int) -> tuple[dict[int, int], str | None]:
    """Target level -> source level. Levels 0-3 change width; 4 .. depth-2 are the full-width
    middle ones; depth-1 is the innermost."""
    first_middle = 4
    src_middle = list(range(first_middle, source_depth - 1))
    n_middle = target_depth - 1 - first_middle
    if n_middle < 0 or not src_middle:
        raise NotCarried(f"U-Nets of {source_depth} and {target_depth} levels have no full-width level to carry")
    if n_middle >= len(src_middle):
        middle = [src_middle[0]] * (n_middle - len(src_middle) + 1) + src_middle[1:]
    else:
        middle = src_middle[:n_middle]
    mapping = {i: i for i in range(first_middle)}
    mapping.update({first_middle + j: src for j, src in enumerate(middle)})
    mapping[target_depth - 1] = source_depth - 1
    if target_depth > source_depth:
        note = f"deepened from {source_depth} to {target_depth} U-Net levels (level {first_middle} repeated)"
    elif target_depth < source_depth:
        note = f"shallowed from {source_depth} to {target_depth} U-Net levels (the deepest full-width ones dropped)"
    else:
        note = None
    return mapping, note


def _unet_rule(name: str, level_map: dict[int, int], depth: int, source_names) -> tuple[Rule, str]:
    """The rule of one target U-Net tensor, and its source name."""
    m = _UNET.match(name)
    level, role, param = int(m.group(1)), m.group(2), m.group(3)
    source = f"unet.d{level_map[level]}.{role}.{param}"
    outermost, innermost = level == 0, level == depth - 1
    if role == "down_conv" and param == "weight":
        dims = _dims("conv", 4, out=PRODUCE, inp=KEEP if outermost else CONSUME)
    elif (
        role == "up_conv" and param == "weight"
    ):  # input: this level's down output and, but innermost, the level below's up output
        out = KEEP if outermost else PRODUCE
        dims = _dims("conv_transpose", 4, out=out, inp=CONSUME, groups=1 if innermost else 2)
    elif role == "up_conv":  # its bias: the outermost's is the image
        dims = _dims("conv", 1, out=KEEP if outermost else PRODUCE)
    else:
        dims = (Dim(PRODUCE),)
    return Rule(source if source in source_names else None, dims, fill=1.0 if _is_unit(param) else 0.0), source


def _is_unit(param: str) -> bool:
    """Norm entries that a missing source fills with one (a unit scale, a unit variance)."""
    return param in ("weight", "running_var")


def _resnet_blocks(names) -> int:
    return len({int(m.group(1)) for n in names if (m := _RESNET_BLOCK.match(n))})


def _resnet_rule(name: str, n_source: int, source_names, norm: str) -> Rule:
    m = _RESNET_BLOCK.match(name)
    if m:
        block, part, param = int(m.group(1)), m.group(2), m.group(3)
        added = block >= n_source
        source = f"res{min(block, n_source - 1)}.{part}.{param}"
        dims = _dims("conv", 4 if param == "weight" and part.startswith("conv") else 1, out=PRODUCE, inp=CONSUME)
        # an added block starts as the identity: what its second half adds is zero
        zeroed = added and (
            (norm == "batch" and part == "norm2" and param in ("weight", "bias"))
            or (norm != "batch" and part == "conv2")
        )
        return Rule(
            source if source in source_names else None,
            dims,
            scale=0.0 if zeroed else 1.0,
            fill=1.0 if _is_unit(param) else 0.0,
        )
    stage, param = name.rsplit(".", 1)
    conv = stage.endswith(".conv") and param == "weight"
    if stage == "stem.conv" and conv:
        dims = _dims("conv", 4, out=PRODUCE, inp=KEEP)
    elif stage == "head.conv":
        dims = _dims("conv", 4, out=KEEP, inp=CONSUME) if conv else (Dim(KEEP),)
    elif stage.startswith("up") and conv:
        dims = _dims("conv_transpose", 4, out=PRODUCE, inp=CONSUME)
    elif conv:
        dims = _dims("conv", 4, out=PRODUCE, inp=CONSUME)
    else:
        dims = (Dim(PRODUCE),)
    return Rule(name if name in source_names else None, dims, fill=1.0 if _is_unit(param) else 0.0)


def plan(adapter, source: ArchSpec, target: ArchSpec) -> Plan:
    """The :class:`~weightinit.transfer.Plan` from ``source``'s network to ``target``'s (both of
    ``adapter``'s arch strings); :class:`NotCarried` with the reason when there is none."""
    so, to = adapter.options(source), adapter.options(target)
    s_family, t_family = (name.split("_")[0] for name in (source.name, target.name))
    if s_family != t_family:
        raise NotCarried(f"a {s_family} network does not carry to a {t_family} one")
    for key in ("input_nc", "output_nc"):
        if getattr(so, key) != getattr(to, key):
            raise NotCarried(f"{key} {getattr(to, key)} is not {getattr(so, key)}, and image channels do not widen")
    if to.ngf < so.ngf:
        raise NotCarried(f"ngf {to.ngf} is narrower than {so.ngf}, and narrowing is not done")
    if so.norm != to.norm and "none" in (so.norm, to.norm):
        raise NotCarried(f"norm {so.norm} does not carry to norm {to.norm}")
    with torch.device("meta"):
        s_model, t_model = adapter.build(source), adapter.build(target)
    s_shapes, s_buffers = canonical_shapes(s_model, adapter)
    t_shapes, t_buffers = canonical_shapes(t_model, adapter)
    source_names = set(s_shapes) | set(s_buffers)
    steps, exact = [], True
    if to.ngf != so.ngf:
        steps.append(f"widened from ngf {so.ngf} to {to.ngf}")
    if s_family == "unet":
        depth = _unet_levels(t_shapes)
        level_map, note = _unet_level_map(_unet_levels(s_shapes), depth)
        exact = note is None  # an extra or missing level changes what the network computes
        rule_of = lambda name: _unet_rule(name, level_map, depth, source_names)[0]  # noqa: E731
    else:
        n_source, n_target = _resnet_blocks(s_shapes), _resnet_blocks(t_shapes)
        note = None
        if n_target > n_source:
            note = f"deepened from {n_source} to {n_target} residual blocks (added ones start as the identity)"
        elif n_target < n_source:
            note = f"shallowed from {n_source} to {n_target} residual blocks (the first kept)"
            exact = False
        rule_of = lambda name: _resnet_rule(name, n_source, source_names, to.norm)  # noqa: E731
    if note:
        steps.append(note)
    if so.norm != to.norm:
        steps.append(f"norm {so.norm} -> {to.norm}")
        exact = False
    parameters = {name: rule_of(name) for name in t_shapes}
    buffers = {name: rule_of(name) for name in t_buffers}
    for name, rule in buffers.items():
        if name.endswith("num_batches_tracked"):
            buffers[name] = Rule(rule.source, (), fill=0.0)
    plan = Plan(str(source), str(target), parameters, buffers, exact=exact, steps=steps)
    _check_shapes(plan, s_shapes | s_buffers, t_shapes | t_buffers)
    return plan


def _check_shapes(plan: Plan, source: dict, target: dict) -> None:
    """Every rule carries its source to exactly the target's shape (on meta tensors): a planning
    error surfaces here, not as a wrong network."""
    from weightinit.transfer import _apply

    for name, rule in {**plan.parameters, **plan.buffers}.items():
        if rule.source is None or not rule.dims:
            continue
        _apply(torch.empty(source[rule.source], device="meta"), rule, target[name])
