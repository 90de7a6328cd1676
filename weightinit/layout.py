"""Block layouts: the ordered tensors of a model and how they are cut into equal blocks.

A layout knows no models and no plugins. It is the ordered list of slots (canonical name,
shape, dtype) plus the block size. Each slot is flattened and zero-padded to a multiple of the
block size on its own, so no block ever mixes two tensors; a block's index is its global
position in layout order. The fingerprint identifies a layout across processes and machines.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

import torch

from weightinit.errors import LayoutMismatch, WeightinitError

DEFAULT_BLOCK_SIZE = 256
LAYOUT_FORMAT = 1

# Only floating dtypes are generated; the names are torch's, without the "torch." prefix.
SUPPORTED_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
}


def dtype_name(dtype: torch.dtype) -> str:
    for name, value in SUPPORTED_DTYPES.items():
        if value == dtype:
            return name
    raise WeightinitError(f"unsupported dtype {dtype}: weightinit generates only {sorted(SUPPORTED_DTYPES)}")


@dataclass(frozen=True)
class Slot:
    """One tensor of a layout: its canonical name, shape and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise WeightinitError(f"slot name must be a non-empty string, got {self.name!r}")
        shape = tuple(int(s) for s in self.shape)
        if any(s < 0 for s in shape):
            raise WeightinitError(f"slot {self.name!r} has a negative dimension: {shape}")
        object.__setattr__(self, "shape", shape)
        if self.dtype not in SUPPORTED_DTYPES:
            raise WeightinitError(f"slot {self.name!r} has unsupported dtype {self.dtype!r}")

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def torch_dtype(self) -> torch.dtype:
        return SUPPORTED_DTYPES[self.dtype]

    def num_blocks(self, block_size: int) -> int:
        return -(-self.numel // block_size)

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    def describe(self) -> str:
        return f"{self.name} {list(self.shape)} {self.dtype}"


class BlockLayout:
    """The ordered slots of a weight set and the block size that cuts them."""

    def __init__(self, slots: Iterable[Slot], block_size: int = DEFAULT_BLOCK_SIZE):
        self.slots: tuple[Slot, ...] = tuple(slots)
        if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 1:
            raise WeightinitError(f"block size must be a positive integer, got {block_size!r}")
        self.block_size = block_size
        names = [s.name for s in self.slots]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise WeightinitError(f"layout has duplicate slot names: {dup}")
        self._index = {s.name: i for i, s in enumerate(self.slots)}

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor], block_size: int = DEFAULT_BLOCK_SIZE) -> BlockLayout:
        """The layout of named tensors, in the mapping's order."""
        return cls(
            (Slot(name, tuple(t.shape), dtype_name(t.dtype)) for name, t in tensors.items()),
            block_size,
        )

    # --- sizes -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.slots)

    def __iter__(self):
        return iter(self.slots)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __getitem__(self, name: str) -> Slot:
        return self.slots[self._index[name]]

    def index(self, name: str) -> int:
        return self._index[name]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.slots]

    @cached_property
    def blocks_per_slot(self) -> tuple[int, ...]:
        return tuple(s.num_blocks(self.block_size) for s in self.slots)

    @cached_property
    def slot_block_start(self) -> tuple[int, ...]:
        """The global index of each slot's first block."""
        starts, total = [], 0
        for n in self.blocks_per_slot:
            starts.append(total)
            total += n
        return tuple(starts)

    @property
    def num_blocks(self) -> int:
        return sum(self.blocks_per_slot)

    @property
    def num_params(self) -> int:
        return sum(s.numel for s in self.slots)

    @cached_property
    def block_dtype(self) -> torch.dtype:
        """The dtype that holds every slot exactly (float16/bfloat16 promote to float32)."""
        dtype = None
        for s in self.slots:
            dtype = s.torch_dtype if dtype is None else torch.promote_types(dtype, s.torch_dtype)
        return dtype or torch.float32

    # --- identity --------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": LAYOUT_FORMAT,
            "block_size": self.block_size,
            "slots": [s.to_dict() for s in self.slots],
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping) -> BlockLayout:
        try:
            fmt = data.get("format", LAYOUT_FORMAT)
            if fmt > LAYOUT_FORMAT:
                raise WeightinitError(
                    f"layout format {fmt} is newer than this weightinit understands ({LAYOUT_FORMAT}); upgrade "
                    "weightinit"
                )
            slots = [Slot(s["name"], tuple(s["shape"]), s.get("dtype", "float32")) for s in data["slots"]]
            return cls(slots, int(data["block_size"]))
        except (KeyError, TypeError, AttributeError) as exc:
            raise WeightinitError(f"not a valid layout description: {exc!r}") from None

    @classmethod
    def from_json(cls, text: str) -> BlockLayout:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WeightinitError(f"layout JSON does not parse: {exc}") from None
        return cls.from_dict(data)

    @cached_property
    def fingerprint(self) -> str:
        """16 hex digits of sha256 over the canonical JSON: same on every machine."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BlockLayout) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        return (
            f"BlockLayout({len(self.slots)} slots, {self.num_params:,} params, "
            f"{self.num_blocks:,} blocks of {self.block_size}, fingerprint={self.fingerprint})"
        )

    def with_dtype(self, dtype: str = "float32") -> BlockLayout:
        """The same slots, every one in ``dtype``: compares layouts where only the dtype differs
        (weights are generated in float32 and cast to a float16/bfloat16/float64 model's dtype)."""
        if dtype not in SUPPORTED_DTYPES:
            raise WeightinitError(f"unsupported dtype {dtype!r}: weightinit generates only {sorted(SUPPORTED_DTYPES)}")
        return BlockLayout((Slot(s.name, s.shape, dtype) for s in self.slots), self.block_size)

    def first_difference(self, other: BlockLayout) -> str | None:
        """A one-line description of where two layouts first differ, or None if equal."""
        if self.block_size != other.block_size:
            return f"block size {self.block_size} vs {other.block_size}"
        for i, (a, b) in enumerate(zip(self.slots, other.slots)):
            if a != b:
                return f"slot {i}: {a.describe()} vs {b.describe()}"
        if len(self.slots) != len(other.slots):
            longer, which = (self, "first") if len(self.slots) > len(other.slots) else (other, "second")
            extra = longer.slots[min(len(self.slots), len(other.slots))]
            return f"the {which} layout has more slots, starting with {extra.describe()}"
        return None

    def check_same(self, other: BlockLayout, *, what: str = "blocks", expected_name: str = "expected") -> None:
        """Raise :class:`LayoutMismatch` naming both fingerprints and the first difference."""
        diff = self.first_difference(other)
        if diff is not None:
            raise LayoutMismatch(
                f"{what} were made for layout {other.fingerprint}, but the {expected_name} layout is "
                f"{self.fingerprint}; first difference: {diff}",
                expected=self.fingerprint,
                actual=other.fingerprint,
            )

    def table(self) -> list[dict]:
        """One row per slot (for the CLI's layout table)."""
        return [
            {
                "name": s.name,
                "shape": list(s.shape),
                "dtype": s.dtype,
                "numel": s.numel,
                "blocks": n,
                "first_block": start,
            }
            for s, n, start in zip(self.slots, self.blocks_per_slot, self.slot_block_start)
        ]
