"""BlockCodec: named tensors <-> a ``[num_blocks, block_size]`` tensor, exactly.

Encoding flattens every slot of a :class:`~weightinit.layout.BlockLayout`, zero-pads it on its
own to a multiple of the block size and stacks the blocks in layout order; decoding returns the
original tensors bitwise. Both are one copy per slot (memory-bound). :class:`SlotNormalizer`
holds per-slot mean and scale with an exact inverse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

from weightinit.errors import InvalidWeights, LayoutMismatch, WeightinitError
from weightinit.layout import BlockLayout, dtype_name


@dataclass
class BlockIndex:
    """Per block: its slot (index into the layout), element offset in that slot, valid length."""

    slot: torch.Tensor
    offset: torch.Tensor
    valid_length: torch.Tensor

    def valid_mask(self, block_size: int) -> torch.Tensor:
        """``[num_blocks, block_size]`` bool, False on padding."""
        return torch.arange(block_size).unsqueeze(0) < self.valid_length.unsqueeze(1)


class BlockCodec:
    """Encodes and decodes the tensors of one layout."""

    def __init__(self, layout: BlockLayout):
        self.layout = layout
        self._index: BlockIndex | None = None

    @property
    def block_size(self) -> int:
        return self.layout.block_size

    @property
    def index(self) -> BlockIndex:
        if self._index is None:
            bs = self.block_size
            slot, offset, valid = [], [], []
            for i, (s, n) in enumerate(zip(self.layout.slots, self.layout.blocks_per_slot)):
                if n == 0:
                    continue
                offs = torch.arange(n, dtype=torch.long) * bs
                slot.append(torch.full((n,), i, dtype=torch.long))
                offset.append(offs)
                valid.append((s.numel - offs).clamp(max=bs))
            empty = torch.zeros(0, dtype=torch.long)
            self._index = BlockIndex(
                torch.cat(slot) if slot else empty,
                torch.cat(offset) if offset else empty,
                torch.cat(valid) if valid else empty,
            )
        return self._index

    def check_tensors(self, tensors: Mapping[str, torch.Tensor], *, what: str = "tensors") -> None:
        """Raise if ``tensors`` do not have exactly the layout's names, shapes and dtypes."""
        names = list(tensors)
        missing = [n for n in self.layout.names if n not in tensors]
        extra = [n for n in names if n not in self.layout]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
            if extra:
                parts.append(f"unexpected {extra[:5]}{' ...' if len(extra) > 5 else ''}")
            raise LayoutMismatch(
                f"{what} do not match layout {self.layout.fingerprint}: " + "; ".join(parts),
                expected=self.layout.fingerprint,
            )
        for s in self.layout.slots:
            t = tensors[s.name]
            if tuple(t.shape) != s.shape or dtype_name(t.dtype) != s.dtype:
                raise LayoutMismatch(
                    f"{what}: {s.name} is {list(t.shape)} {dtype_name(t.dtype)}, layout "
                    f"{self.layout.fingerprint} expects {list(s.shape)} {s.dtype}",
                    expected=self.layout.fingerprint,
                )

    def encode(self, tensors: Mapping[str, torch.Tensor], *, dtype: torch.dtype | None = None) -> torch.Tensor:
        """``{name: tensor}`` -> ``[num_blocks, block_size]`` in the layout's block dtype (or ``dtype``)."""
        self.check_tensors(tensors)
        for s in self.layout.slots:  # NaN/Inf never enter blocks silently (apply refuses them too)
            if not bool(torch.isfinite(tensors[s.name]).all()):
                raise InvalidWeights(f"{s.name} contains NaN or Inf; nothing was encoded")
        bs = self.block_size
        out = torch.zeros(self.layout.num_blocks * bs, dtype=dtype or self.layout.block_dtype)
        for s, start in zip(self.layout.slots, self.layout.slot_block_start):
            if s.numel:
                out[start * bs : start * bs + s.numel].copy_(tensors[s.name].detach().reshape(-1))
        return out.view(self.layout.num_blocks, bs)

    def decode(self, blocks: torch.Tensor, *, copy: bool = False) -> dict[str, torch.Tensor]:
        """``[num_blocks, block_size]`` -> ``{name: tensor}`` in each slot's shape and dtype.

        Tensors whose dtype equals the blocks' are views into ``blocks`` unless ``copy``.
        """
        self.check_blocks(blocks)
        self.check_finite(blocks, what="blocks")
        bs = self.block_size
        flat = blocks.reshape(-1)
        out = {}
        for s, start in zip(self.layout.slots, self.layout.slot_block_start):
            t = flat[start * bs : start * bs + s.numel].view(s.shape)
            converted = t.to(s.torch_dtype)
            out[s.name] = converted.clone() if copy and converted.dtype == flat.dtype else converted
        return out

    def check_blocks(self, blocks: torch.Tensor) -> None:
        expected = (self.layout.num_blocks, self.block_size)
        if not isinstance(blocks, torch.Tensor) or tuple(blocks.shape) != expected:
            shape = list(blocks.shape) if isinstance(blocks, torch.Tensor) else type(blocks).__name__
            raise LayoutMismatch(
                f"blocks have shape {shape}, layout {self.layout.fingerprint} expects {list(expected)}",
                expected=self.layout.fingerprint,
            )
        if not blocks.is_floating_point():
            raise WeightinitError(f"blocks must be floating point, got {blocks.dtype}")

    def check_finite(self, blocks: torch.Tensor, *, what: str = "generated weights") -> None:
        """Raise :class:`InvalidWeights` naming the first slot with a NaN or Inf."""
        bad = ~torch.isfinite(blocks)
        if bool(bad.any()):
            first_block = int(bad.any(dim=1).nonzero()[0])
            slot = self.layout.slots[int(self.index.slot[first_block])]
            raise InvalidWeights(
                f"{what} contain NaN or Inf ({int(bad.sum())} values, first in {slot.name}); nothing was written"
            )


class SlotNormalizer:
    """Per-slot mean and power-of-two scale, so normalisation has an exact inverse.

    The mean is a float32 value and the scale a power of two; arithmetic runs in float64, where
    ``x - mean`` of float32/16/bf16 values is exact and a power-of-two scale is exact, so
    ``denormalize(normalize(x, dtype=float64))`` returns ``x`` bitwise (for magnitudes within
    2**29 of the mean's, i.e. any real weights). Padding stays zero.
    """

    def __init__(self, layout: BlockLayout, mean: torch.Tensor, scale: torch.Tensor):
        if mean.shape != (len(layout),) or scale.shape != (len(layout),):
            raise WeightinitError(
                f"normalizer needs one mean and one scale per slot ({len(layout)}), got {tuple(mean.shape)} and "
                f"{tuple(scale.shape)}"
            )
        if not bool(torch.isfinite(mean).all()) or not bool((scale > 0).all()):
            raise WeightinitError("normalizer statistics must be finite with positive scales")
        self.layout = layout
        self.mean = mean.to(torch.float32)
        self.scale = scale.to(torch.float32)
        self.codec = BlockCodec(layout)

    @classmethod
    def identity(cls, layout: BlockLayout) -> SlotNormalizer:
        return cls(layout, torch.zeros(len(layout)), torch.ones(len(layout)))

    @classmethod
    def fit(cls, layout: BlockLayout, samples: Iterable[Mapping[str, torch.Tensor]]) -> SlotNormalizer:
        """Mean and scale of each slot over all samples (e.g. every concept of a zoo)."""
        n = len(layout)
        total = torch.zeros(n, dtype=torch.float64)
        total_sq = torch.zeros(n, dtype=torch.float64)
        count = torch.zeros(n, dtype=torch.float64)
        for sample in samples:
            for i, s in enumerate(layout.slots):
                t = sample[s.name].detach().to(torch.float64)
                total[i] += t.sum()
                total_sq[i] += (t * t).sum()
                count[i] += t.numel()
        safe = count.clamp(min=1)
        mean = total / safe
        var = (total_sq / safe - mean * mean).clamp(min=0)
        std = var.sqrt()
        # Round the std to a power of two (exact division); tiny or zero spread gets scale 1.
        scale = torch.where(
            std > 1e-12, torch.exp2(torch.round(torch.log2(std.clamp(min=1e-30)))), torch.ones_like(std)
        )
        return cls(layout, mean.to(torch.float32), scale.to(torch.float32))

    def _per_block(self, values: torch.Tensor) -> torch.Tensor:
        return values.to(torch.float64)[self.codec.index.slot].unsqueeze(1)

    def normalize(self, blocks: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        self.codec.check_blocks(blocks)
        mask = self.codec.index.valid_mask(self.layout.block_size).to(blocks.device)
        out = (blocks.to(torch.float64) - self._per_block(self.mean).to(blocks.device)) / self._per_block(
            self.scale
        ).to(blocks.device)
        return out.masked_fill(~mask, 0).to(dtype)

    def denormalize(self, blocks: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        self.codec.check_blocks(blocks)
        mask = self.codec.index.valid_mask(self.layout.block_size).to(blocks.device)
        out = blocks.to(torch.float64) * self._per_block(self.scale).to(blocks.device) + self._per_block(self.mean).to(
            blocks.device
        )
        return out.masked_fill(~mask, 0).to(dtype or self.layout.block_dtype)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"norm_mean": self.mean.clone(), "norm_scale": self.scale.clone()}

    @classmethod
    def from_state_dict(cls, layout: BlockLayout, state: Mapping[str, torch.Tensor]) -> SlotNormalizer:
        try:
            return cls(layout, state["norm_mean"], state["norm_scale"])
        except KeyError as exc:
            raise WeightinitError(f"normalizer statistics missing {exc}") from None
