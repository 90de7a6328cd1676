"""The zoo's manifest: what a zoo folder holds, validated on load.

A zoo folder::

    manifest.json            this file's content (versioned)
    base.safetensors         the base generator (native keys, fp32)
    concepts/<id>.safetensors  one weight set per concept (canonical names, fp16)
    records/<id>.json        one record per finished concept (written by the process that trained it)

Each concept file carries the layout fingerprint in its metadata and its sha256 in the
manifest; every write is atomic.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from weightinit.errors import WeightinitError
from weightinit.fileio import atomic_write_json
from weightinit.pairs import PAIR_SOURCES

MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"
BASE_NAME = "base.safetensors"
REPRESENTATIONS = ("lora", "delta")
#: The pair-source fields, written only for a zoo whose pairs are not procedural: a procedural
#: zoo's build.json and manifest are what they were before the fields existed (older weightinit
#: reads them), and a zoo without them reads as procedural.
PAIR_SOURCE_FIELDS = ("pairs", "editor", "editor_size", "editor_steps")


@dataclass
class ZooConfig:
    """How a zoo is built. Saved in the manifest; a resumed build must use the same one."""

    arch: str = field(
        default="pix2pix:unet_64,ngf=16", metadata={"help": "Generator architecture, ADAPTER:NAME[,key=value...]."}
    )
    representation: str = field(
        default="lora", metadata={"help": "What a concept stores: 'lora' factors or the full 'delta'."}
    )
    lora_rank: int = field(default=6, metadata={"help": "LoRA rank."})
    lora_seed: int = field(
        default=1234, metadata={"help": "Seed of LoRA's A, one initialisation shared by every concept."}
    )
    base_steps: int = field(
        default=3000, metadata={"help": "Pix2pix steps of the base generator on a concept mixture."}
    )
    base_lr: float = field(
        default=2e-4, metadata={"help": "Adam learning rate of the base (a ResNet learns faster at 5e-4)."}
    )
    concept_steps: int = field(default=400, metadata={"help": "Fine-tune steps per concept."})
    concept_lr: float = field(default=3e-3, metadata={"help": "Learning rate of the per-concept fine-tune (LoRA)."})
    pool_size: int = field(default=256, metadata={"help": "Training pairs per concept."})
    base_pool_per_concept: int = field(
        default=32, metadata={"help": "Training pairs of each training concept in the base's mixture."}
    )
    test_pairs: int = field(default=64, metadata={"help": "Test pairs per concept (from held-out photo regions)."})
    image_size: int = field(default=64, metadata={"help": "Pair size in pixels (unet_256 needs 256, unet_128 128)."})
    batch_size: int = field(
        default=8, metadata={"help": "Pix2pix batch size of the base and of every concept fine-tune."}
    )
    storage_dtype: str = field(
        default="float16", metadata={"help": "dtype of the stored concept weights: float16, bfloat16 or float32."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the base model and data."})
    # Shared: concept weights then differ by what the edit asks for, not by the noise of their own runs.
    shared_data: bool = field(
        default=True,
        metadata={"help": "Same crops, batch order and discriminator init for every concept."},
    )
    # Frozen: the delta B @ A is linear in what is stored, with no factor symmetry left between concepts.
    lora_train_a: bool = field(
        default=True, metadata={"help": "Train LoRA's A too, or keep it at the shared seeded init."}
    )
    # (:func:`weightinit.pairs.zoo_pair_source`) Not written for procedural zoos (``PAIR_SOURCE_FIELDS``).
    pairs: str = field(
        default="procedural",
        metadata={
            "help": "What makes each concept's pairs: 'procedural' (its own pair builder on photo crops, offline) "
            "or 'editor' (an InstructPix2Pix pipeline edits the crops with the concept's text; needs --editor)."
        },
    )
    # Guidance: the pipeline defaults of :class:`~weightinit.pairs.DiffusionEditorPairs`.
    editor: str | None = field(
        default=None,
        metadata={
            "help": "With --pairs editor: the diffusers InstructPix2Pix model id or local path "
            "(e.g. timbrooks/instruct-pix2pix); loaded before anything is written."
        },
    )
    editor_size: int = field(
        default=256,
        metadata={"help": "With --pairs editor: the side in px the crops are upscaled to for the editor."},
    )
    editor_steps: int = field(default=20, metadata={"help": "With --pairs editor: the editor's denoising steps."})

    def __post_init__(self) -> None:
        if self.representation not in REPRESENTATIONS:
            raise WeightinitError(f"representation must be one of {REPRESENTATIONS}, got {self.representation!r}")
        if self.pairs not in PAIR_SOURCES:
            raise WeightinitError(f"pairs must be one of {', '.join(PAIR_SOURCES)}, got {self.pairs!r}")
        if self.pairs == "editor" and not self.editor:
            raise WeightinitError(
                "pairs='editor' needs an editor: a diffusers InstructPix2Pix model id or local path (--editor "
                "MODEL_ID, "
                "e.g. timbrooks/instruct-pix2pix)"
            )
        if self.pairs != "editor":
            defaults = {f.name: f.default for f in fields(self) if f.name in PAIR_SOURCE_FIELDS[1:]}
            given = [name for name, default in defaults.items() if getattr(self, name) != default]
            if given:
                raise WeightinitError(
                    f"{', '.join(given)} ({', '.join(repr(getattr(self, n)) for n in given)}) set the editor, which "
                    "makes pairs "
                    "only with pairs='editor' (--pairs editor)"
                )
        if self.storage_dtype not in ("float16", "float32", "bfloat16"):
            raise WeightinitError(f"storage dtype must be float16, bfloat16 or float32, got {self.storage_dtype!r}")
        for name in (
            "lora_rank",
            "concept_steps",
            "pool_size",
            "test_pairs",
            "image_size",
            "batch_size",
            "editor_size",
            "editor_steps",
        ):
            if int(getattr(self, name)) < 1:
                raise WeightinitError(f"zoo config {name} must be positive, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        out = asdict(self)
        if self.pairs == "procedural":
            for name in PAIR_SOURCE_FIELDS:
                del out[name]
        return out

    def data_seed(self, concept_id: str) -> int:
        """The seed of a concept's pairs and training run."""
        if self.shared_data:
            return self.seed
        return (int(hashlib.sha256(concept_id.encode()).hexdigest()[:8], 16) + self.seed) % (2**31)

    @classmethod
    def from_dict(cls, data: dict) -> ZooConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise WeightinitError(f"zoo config has unknown fields {unknown}")
        return cls(**data)


@dataclass
class ConceptRecord:
    """One finished concept: where its weights are and how good they are."""

    id: str
    text: str
    phrasings: list[str]
    family: str
    split: str
    file: str
    sha256: str
    steps: int
    seconds: float
    metrics_base: dict[str, float]
    metrics_trained: dict[str, float]
    trivial: dict[str, float] = field(default_factory=dict)
    curve: list[list[float]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict) -> ConceptRecord:
        try:
            return cls(**data)
        except TypeError as exc:
            raise WeightinitError(f"invalid concept record: {exc}") from None


@dataclass
class ZooManifest:
    config: ZooConfig
    layout_fingerprint: str
    layout: dict
    base_sha256: str
    base_metrics: dict[str, float] = field(default_factory=dict)
    base_seconds: float = 0.0
    concepts: dict[str, ConceptRecord] = field(default_factory=dict)
    version: int = MANIFEST_VERSION
    weightinit_version: str = ""

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "weightinit_version": self.weightinit_version,
            "config": self.config.to_dict(),
            "layout_fingerprint": self.layout_fingerprint,
            "layout": self.layout,
            "base": {
                "file": BASE_NAME,
                "sha256": self.base_sha256,
                "metrics": self.base_metrics,
                "seconds": self.base_seconds,
            },
            "concepts": {cid: asdict(rec) for cid, rec in sorted(self.concepts.items())},
        }

    def save(self, folder: str | Path) -> None:
        atomic_write_json(Path(folder) / MANIFEST_NAME, self.to_dict())

    @classmethod
    def load(cls, folder: str | Path) -> ZooManifest:
        path = Path(folder) / MANIFEST_NAME
        if not path.is_file():
            raise WeightinitError(f"{folder} is not a zoo: no {MANIFEST_NAME} (build one with `weightinit zoo build`)")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise WeightinitError(f"{path} does not parse: {exc}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict, source: str = "manifest") -> ZooManifest:
        if not isinstance(data, dict) or "version" not in data:
            raise WeightinitError(f"{source}: not a zoo manifest (no version)")
        if data["version"] > MANIFEST_VERSION:
            raise WeightinitError(
                f"{source}: manifest version {data['version']} is newer than this weightinit reads "
                f"({MANIFEST_VERSION}); upgrade weightinit"
            )
        try:
            return cls(
                config=ZooConfig.from_dict(data["config"]),
                layout_fingerprint=data["layout_fingerprint"],
                layout=data["layout"],
                base_sha256=data["base"]["sha256"],
                base_metrics=data["base"].get("metrics", {}),
                base_seconds=data["base"].get("seconds", 0.0),
                concepts={cid: ConceptRecord.from_dict(rec) for cid, rec in data["concepts"].items()},
                version=data["version"],
                weightinit_version=data.get("weightinit_version", ""),
            )
        except (KeyError, TypeError) as exc:
            raise WeightinitError(f"{source}: invalid zoo manifest, missing {exc}") from None
