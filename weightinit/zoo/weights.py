"""Reading a zoo: its layout, its base generator and each concept's weights.

In ``lora`` zoos a concept is the factors of every LoRA target, named
``<canonical weight>.lora_A`` (``[rank, fan]``) and ``.lora_B`` (``[out, rank]``); in ``delta``
zoos it is the full difference to the base for every generated parameter
(:mod:`weightinit.representation`). Either way :meth:`ZooWeights.delta` gives the full,
canonical weight difference.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import torch
from torch import nn

from weightinit import plugins
from weightinit.concepts.catalog import default_catalog
from weightinit.errors import WeightinitError
from weightinit.fileio import read_safetensors
from weightinit.layout import BlockLayout, Slot
from weightinit.pairs import zoo_pair_source
from weightinit.representation import LORA_A, LORA_B, delta
from weightinit.zoo.manifest import BASE_NAME, ZooConfig, ZooManifest


def concept_layout(adapter, model: nn.Module, config: ZooConfig, block_size: int = 256) -> BlockLayout:
    """The layout of one concept's stored weights for this zoo config."""
    if config.representation == "delta":
        return BlockLayout(
            (Slot(s.name, s.shape, config.storage_dtype) for s in adapter.layout(model, block_size)), block_size
        )
    names = adapter.native_to_canonical(model)
    slots = []
    for target in adapter.lora_targets(model):
        weight = model.get_submodule(target).weight
        fan = weight[0].numel()
        canonical = names[f"{target}.weight"]
        slots.append(Slot(canonical + LORA_A, (config.lora_rank, fan), config.storage_dtype))
        slots.append(Slot(canonical + LORA_B, (weight.shape[0], config.lora_rank), config.storage_dtype))
    return BlockLayout(slots, block_size)


class ZooWeights:
    """Read access to a built (or partly built) zoo folder."""

    def __init__(self, folder: str | os.PathLike, manifest: ZooManifest | None = None, *, editor=None):
        self.folder = Path(folder)
        #: For a zoo of editor pairs: a loaded pipeline to make them with (else the config's editor loads once).
        self.editor = editor
        self.manifest = manifest or ZooManifest.load(self.folder)
        self.config = self.manifest.config
        self.layout = BlockLayout.from_dict(self.manifest.layout)
        if self.layout.fingerprint != self.manifest.layout_fingerprint:
            raise WeightinitError(f"{self.folder}: manifest layout does not match its fingerprint")

    def ids(self, split: str | None = None) -> list[str]:
        return sorted(cid for cid, r in self.manifest.concepts.items() if split is None or r.split == split)

    def record(self, concept_id: str):
        try:
            return self.manifest.concepts[concept_id]
        except KeyError:
            raise WeightinitError(f"zoo {self.folder} has no concept {concept_id!r}") from None

    def concept(self, concept_id: str, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
        """A concept's stored tensors (canonical names, layout order), checked against the layout."""
        record = self.record(concept_id)
        tensors, metadata = read_safetensors(self.folder / record.file)
        stored = metadata.get("weightinit.fingerprint")
        if stored != self.layout.fingerprint:
            raise WeightinitError(
                f"{record.file}: layout fingerprint {stored} is not the zoo's ({self.layout.fingerprint})"
            )
        missing = [s.name for s in self.layout.slots if s.name not in tensors]
        if missing:
            raise WeightinitError(f"{record.file}: missing tensors {missing[:3]}")
        return {s.name: tensors[s.name].to(dtype) for s in self.layout.slots}

    def base_state(self) -> dict[str, torch.Tensor]:
        return read_safetensors(self.folder / BASE_NAME)[0]

    @cached_property
    def adapter(self):
        return plugins.adapter_for_arch(self.config.arch)

    def base_model(self) -> nn.Module:
        """A fresh base network, the zoo's base checkpoint loaded."""
        model = plugins.build_model(self.config.arch)
        model.load_state_dict(self.base_state())
        return model

    @cached_property
    def base_canonical(self) -> dict[str, torch.Tensor]:
        """The base's generated parameters (float32), by canonical name, in canonical order."""
        model = self.base_model()
        return {k: v.float() for k, v in self.adapter.to_canonical(model, model.state_dict()).items()}

    # --- a concept's pairs, exactly as the build made them ---------------------------------
    def pair_source(self, concept_id: str, photos=None):
        """The concept's pair source as the build made it (``zoo_pair_source``; ``photos``: the build's)."""
        catalog = default_catalog()
        if concept_id not in catalog:
            raise WeightinitError(
                f"concept {concept_id!r} is in the zoo but not in the catalog (a plugin that registered it is not "
                "loaded)"
            )
        return zoo_pair_source(self.config, catalog.get(concept_id), photos, editor=self.editor)

    def train_pairs(self, concept_id: str, n: int | None = None, photos=None):
        """The first ``n`` (default: the whole pool) of the concept's train pairs; pair i depends only on i."""
        n = self.config.pool_size if n is None else n
        return self.pair_source(concept_id, photos).sample(n, split="train", seed=self.config.data_seed(concept_id))

    def test_pairs(self, concept_id: str, photos=None):
        """The concept's test pairs (without building its train pool)."""
        return self.pair_source(concept_id, photos).sample(
            self.config.test_pairs, split="test", seed=self.config.data_seed(concept_id)
        )

    def delta(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Full canonical weight differences of a concept's stored tensors (zeros where it stores nothing)."""
        return delta(tensors, self.base_canonical)
