"""Blocks files: encoded weights in safetensors, with the layout in the metadata.

A blocks file holds ``blocks`` (``[num_blocks, block_size]``) and optionally the normaliser's
``norm_mean`` / ``norm_scale``; its metadata carry the layout JSON, its fingerprint, the file
format version and the weightinit version that wrote it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from weightinit._version import __version__
from weightinit.codec import BlockCodec, SlotNormalizer
from weightinit.errors import CheckpointError, LayoutMismatch
from weightinit.fileio import read_safetensors, save_safetensors
from weightinit.layout import BlockLayout

BLOCKS_FORMAT = 1


@dataclass
class BlocksFile:
    layout: BlockLayout
    blocks: torch.Tensor
    normalizer: SlotNormalizer | None = None
    extra_metadata: dict[str, str] | None = None

    def decode(self) -> dict[str, torch.Tensor]:
        return BlockCodec(self.layout).decode(self.blocks)


def save_blocks(
    path: str | os.PathLike,
    layout: BlockLayout,
    blocks: torch.Tensor,
    normalizer: SlotNormalizer | None = None,
    extra_metadata: dict[str, str] | None = None,
) -> None:
    BlockCodec(layout).check_blocks(blocks)
    tensors = {"blocks": blocks}
    if normalizer is not None:
        layout.check_same(normalizer.layout, what="normalizer statistics")
        tensors.update(normalizer.state_dict())
    metadata = dict(extra_metadata or {})
    metadata.update(
        {
            "weightinit.format": str(BLOCKS_FORMAT),
            "weightinit.version": __version__,
            "weightinit.layout": layout.to_json(),
            "weightinit.fingerprint": layout.fingerprint,
        }
    )
    save_safetensors(path, tensors, metadata)


def load_blocks(path: str | os.PathLike, expected: BlockLayout | None = None) -> BlocksFile:
    """Read a blocks file; with ``expected``, raise :class:`LayoutMismatch` unless it matches."""
    tensors, metadata = read_safetensors(path)
    if "weightinit.layout" not in metadata or "blocks" not in tensors:
        raise CheckpointError(f"{path} is not a weightinit blocks file (no layout metadata or no 'blocks')")
    fmt = int(metadata.get("weightinit.format", "1"))
    if fmt > BLOCKS_FORMAT:
        raise CheckpointError(
            f"{path} has blocks format {fmt}, newer than this weightinit ({__version__}) reads ({BLOCKS_FORMAT}); "
            "upgrade weightinit"
        )
    layout = BlockLayout.from_json(metadata["weightinit.layout"])
    stored = metadata.get("weightinit.fingerprint")
    if stored is not None and stored != layout.fingerprint:
        raise CheckpointError(f"{path}: stored fingerprint {stored} does not match its layout ({layout.fingerprint})")
    if expected is not None:
        expected.check_same(layout, what=f"blocks in {path}", expected_name="model's")
    blocks = tensors["blocks"]
    try:
        BlockCodec(layout).check_blocks(blocks)
    except LayoutMismatch as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    normalizer = SlotNormalizer.from_state_dict(layout, tensors) if "norm_mean" in tensors else None
    extra = {k: v for k, v in metadata.items() if not k.startswith("weightinit.")}
    return BlocksFile(layout, blocks, normalizer, extra)
