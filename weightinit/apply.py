"""Writing weights into a live model: validated first, then in place, all or nothing.

Values are copied into the model's existing parameters under ``no_grad`` on each parameter's
device and dtype, so optimizers that already hold those parameters keep working. Everything
is checked before the first value is written; if a write still fails, the parameters written
so far are restored, so the model is either fully updated or bitwise unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from weightinit import plugins
from weightinit.adapters.base import Adapter, unwrap_model
from weightinit.blocksfile import BlocksFile
from weightinit.codec import BlockCodec
from weightinit.errors import InvalidWeights, LayoutMismatch
from weightinit.layout import BlockLayout


@dataclass
class ApplyReport:
    """What a write did."""

    adapter: str
    layout_fingerprint: str
    parameters_set: list[str] = field(default_factory=list)
    parameters_left_alone: list[str] = field(default_factory=list)
    values_set: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "adapter": self.adapter,
            "layout_fingerprint": self.layout_fingerprint,
            "parameters_set": len(self.parameters_set),
            "parameters_left_alone": len(self.parameters_left_alone),
            "values_set": self.values_set,
            "seconds": round(self.seconds, 4),
        }


def _resolve_adapter(model: nn.Module, adapter: Adapter | str | None) -> Adapter:
    if adapter is None:
        return plugins.adapter_for_model(model)
    if isinstance(adapter, str):
        return plugins.get_adapter(adapter)
    return adapter


def prepare_update(
    model: nn.Module, tensors: Mapping[str, torch.Tensor], adapter: Adapter
) -> tuple[list[tuple[str, nn.Parameter, torch.Tensor]], BlockLayout]:
    """Check canonical ``tensors`` against the model; return ``(native_key, parameter, value)`` triples.

    Raises before anything is written: missing or extra tensors, wrong shapes, NaN/Inf.
    """
    inner = unwrap_model(model)
    layout = adapter.layout(inner)
    expected = {s.name: s for s in layout.slots}
    missing = [n for n in expected if n not in tensors]
    extra = [n for n in tensors if n not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} (first {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} not in the model (first {extra[0]})")
        raise LayoutMismatch(
            f"weights do not cover the model's layout {layout.fingerprint} ({adapter.name}): " + "; ".join(parts),
            expected=layout.fingerprint,
        )
    params = dict(inner.named_parameters())
    triples = []
    for native, canonical in adapter.canonical_names(inner):
        value = tensors[canonical]
        param = params[native]
        if tuple(value.shape) != tuple(param.shape):
            raise LayoutMismatch(
                f"{canonical} ({native}) has shape {list(value.shape)}, the model's is {list(param.shape)}",
                expected=layout.fingerprint,
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise InvalidWeights(f"{canonical} contains NaN or Inf; nothing was written")
        cast = value.detach().to(dtype=param.dtype)  # float32 in, the model's dtype out
        if cast.is_floating_point() and not bool(torch.isfinite(cast).all()):
            raise InvalidWeights(
                f"{canonical} overflows the model's {param.dtype} (Inf after the cast); nothing was written"
            )
        triples.append((native, param, cast))
    return triples, layout


@torch.no_grad()
def write_in_place(triples: list[tuple[str, nn.Parameter, torch.Tensor]]) -> None:
    """Copy every value into its parameter; on any failure restore what was already written."""
    written: list[tuple[nn.Parameter, torch.Tensor]] = []
    try:
        for _, param, value in triples:
            backup = param.detach().clone()
            param.copy_(value.to(param.device))
            written.append((param, backup))
    except BaseException:
        for param, backup in reversed(written):
            param.copy_(backup)
        raise


def buffer_pairs(model: nn.Module, buffers: Mapping[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(own buffer, value)`` for the ``buffers`` (a base's running statistics) that match
    ``model``'s by name and shape, cast to each buffer's dtype and checked: NaN/Inf is refused,
    naming the buffer. Nothing is written."""
    own = dict(model.named_buffers())
    pairs = []
    for k, v in buffers.items():
        if k in own and own[k].shape == v.shape:
            value = v.to(own[k].dtype)
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise InvalidWeights(
                    f"the generator's base buffer {k} contains NaN or Inf (in {own[k].dtype}); nothing was written"
                )
            pairs.append((own[k], value))
    return pairs


@torch.no_grad()
def copy_buffers(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> int:
    """Write what :func:`buffer_pairs` checked; returns how many buffers."""
    for buf, value in pairs:
        buf.copy_(value.to(buf.device))
    return len(pairs)


def write_buffers(model: nn.Module, buffers: Mapping[str, torch.Tensor]) -> int:
    """Copy matching ``buffers`` into ``model``'s (shape- and NaN-checked first)."""
    return copy_buffers(buffer_pairs(model, buffers))


def apply_tensors(
    model: nn.Module, tensors: Mapping[str, torch.Tensor], adapter: Adapter | str | None = None
) -> ApplyReport:
    """Write canonical tensors into ``model``'s parameters in place (atomic)."""
    start = time.perf_counter()
    adapter = _resolve_adapter(model, adapter)
    triples, layout = prepare_update(model, tensors, adapter)
    write_in_place(triples)
    set_names = {native for native, _, _ in triples}
    inner = unwrap_model(model)
    return ApplyReport(
        adapter=adapter.name,
        layout_fingerprint=layout.fingerprint,
        parameters_set=[n for n, _, _ in triples],
        parameters_left_alone=[n for n, _ in inner.named_parameters() if n not in set_names],
        values_set=sum(v.numel() for _, _, v in triples),
        seconds=time.perf_counter() - start,
    )


def apply_blocks(
    model: nn.Module,
    blocks: BlocksFile | torch.Tensor,
    *,
    layout: BlockLayout | None = None,
    adapter: Adapter | str | None = None,
) -> ApplyReport:
    """Decode ``blocks`` and write them into ``model`` in place.

    ``blocks`` is a :class:`~weightinit.blocksfile.BlocksFile` (its layout travels with it) or a
    ``[num_blocks, block_size]`` tensor together with ``layout``. The layout must be the model's
    (same fingerprint at that block size), else :class:`LayoutMismatch` names both.
    """
    start = time.perf_counter()
    adapter = _resolve_adapter(model, adapter)
    if isinstance(blocks, BlocksFile):
        layout, tensor = blocks.layout, blocks.blocks
    else:
        if layout is None:
            raise TypeError("apply_blocks needs `layout` when `blocks` is a tensor")
        tensor = blocks
    model_layout = adapter.layout(unwrap_model(model), block_size=layout.block_size)
    model_layout.check_same(layout, what="blocks", expected_name=f"model's ({adapter.name})")
    codec = BlockCodec(layout)
    codec.check_blocks(tensor)
    codec.check_finite(tensor)
    report = apply_tensors(model, codec.decode(tensor), adapter)
    report.seconds = time.perf_counter() - start
    return report
