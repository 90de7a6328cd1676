"""``generator_config.json`` as a typed value: :class:`GeneratorConfig`, written once.

What a generator folder says about itself besides its tensors: the format version, the layout
fingerprint, the architecture and adapter, the denoiser's name, the text encoder reference
(:class:`TextEncoderConfig`), the zoo's config (``ZooConfig``) and counts, the training
summary, the measured quality, and the far-concept, composition, strength-sibling and weight-blend
policies (:class:`FarPolicy`, :class:`CompositionPolicy`, :class:`SiblingPolicy`,
:class:`WeightBlendPolicy`).
:meth:`GeneratorConfig.from_dict` reads every format this version reads (:func:`migrate_config`);
:meth:`GeneratorConfig.to_dict` writes the current one.
``training``, ``quality`` and ``zoo_summary`` are records of a run and of measurements, kept as
the JSON objects they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from weightinit.adapters.base import ArchSpec
from weightinit.errors import CheckpointError, WeightinitError
from weightinit.generator.composition import CompositionPolicy
from weightinit.generator.far_policy import FarPolicy
from weightinit.generator.siblings import SiblingPolicy
from weightinit.generator.text import DEFAULT_MAX_LENGTH, DEFAULT_TEXT_ENCODER, TEXT_CONDITIONINGS
from weightinit.generator.weight_blend import WeightBlendPolicy
from weightinit.zoo.manifest import ZooConfig

#: 2 added ``text_encoder.conditioning`` (format-1 folders read as ``"pooled"``).
#: 3 made ``zoo`` the zoo's whole ``ZooConfig`` and moved its counts to ``zoo_summary``; format-1
#: and -2 folders kept one dict of both, read by :func:`migrate_config`.
#: Format-3 folders may hold ``phrasings.json`` (:mod:`weightinit.generator.phrasings`): older
#: readers ignore it, and a folder without it reads the live concept catalog.
FORMAT_VERSION = 3
CONFIG_NAME = "generator_config.json"


@dataclass(frozen=True)
class TextEncoderConfig:
    """The text encoder a generator was trained with, and how its text conditions the denoiser."""

    reference: str = DEFAULT_TEXT_ENCODER
    max_length: int = DEFAULT_MAX_LENGTH
    conditioning: str = "pooled"
    #: the embedding width (written from the denoiser; a check, not a choice)
    dim: int | None = None

    def __post_init__(self) -> None:
        if self.conditioning not in TEXT_CONDITIONINGS:
            raise WeightinitError(
                f"unknown text conditioning {self.conditioning!r}; expected one of {', '.join(TEXT_CONDITIONINGS)}"
            )
        object.__setattr__(self, "max_length", int(self.max_length))

    @classmethod
    def from_dict(cls, data: dict | None) -> TextEncoderConfig:
        data = data or {}
        return cls(
            data.get("reference", DEFAULT_TEXT_ENCODER),
            data.get("max_length", DEFAULT_MAX_LENGTH),
            data.get("conditioning", "pooled"),
            data.get("dim"),
        )

    def to_dict(self) -> dict:
        return {
            "reference": self.reference,
            "max_length": self.max_length,
            "dim": self.dim,
            "conditioning": self.conditioning,
        }


@dataclass
class GeneratorConfig:
    """Everything ``generator_config.json`` holds (module docstring)."""

    layout_fingerprint: str
    arch: str | None = None
    adapter: str | None = None
    denoiser: str | None = None
    text_encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    zoo: ZooConfig | None = None
    zoo_summary: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    quality: dict = field(default_factory=dict)
    far_policy: FarPolicy | None = None
    composition: CompositionPolicy | None = None
    siblings: SiblingPolicy | None = None
    weight_blend: WeightBlendPolicy | None = None
    format_version: int = FORMAT_VERSION
    #: the weightinit that wrote the folder ("" for one not written yet)
    weightinit_version: str = ""

    def __post_init__(self) -> None:
        if self.adapter is None and self.arch:
            self.adapter = ArchSpec.parse(self.arch).adapter
        if self.zoo is not None and not isinstance(self.zoo, ZooConfig):
            raise WeightinitError(
                f"zoo must be a ZooConfig (ZooConfig.from_dict reads a dict), got {type(self.zoo).__name__}"
            )
        self.zoo_summary = dict(self.zoo_summary or {})
        self.training = dict(self.training or {})
        self.quality = dict(self.quality or {})
        self.far_policy = FarPolicy.from_dict(self.far_policy)  # checked: a bad policy is one clear error
        if self.composition is not None and not isinstance(self.composition, CompositionPolicy):
            self.composition = CompositionPolicy.from_dict(self.composition)
        self.siblings = SiblingPolicy.from_dict(self.siblings)
        self.weight_blend = WeightBlendPolicy.from_dict(self.weight_blend)

    @classmethod
    def from_fields(
        cls,
        layout_fingerprint: str,
        *,
        text_encoder: str = DEFAULT_TEXT_ENCODER,
        text_max_length: int = DEFAULT_MAX_LENGTH,
        text_conditioning: str = "pooled",
        **fields,
    ) -> GeneratorConfig:
        """A config from ``WeightGenerator``'s keyword arguments of before the config was typed
        (``text_encoder`` a reference, ``text_max_length``, ``text_conditioning``, and the fields)."""
        text = TextEncoderConfig(text_encoder, text_max_length, text_conditioning)
        return cls(layout_fingerprint, text_encoder=text, **fields)

    @classmethod
    def from_dict(cls, data: dict, source: Path | str = CONFIG_NAME) -> GeneratorConfig:
        """A config of any format this version reads (migrated first: :func:`migrate_config`)."""
        data = migrate_config(data, source)
        return cls(
            layout_fingerprint=data.get("layout_fingerprint"),
            arch=data.get("arch"),
            adapter=data.get("adapter"),
            denoiser=data.get("denoiser"),
            text_encoder=TextEncoderConfig.from_dict(data.get("text_encoder")),
            zoo=_zoo_config(data.get("zoo"), source),
            zoo_summary=data.get("zoo_summary"),
            training=data.get("training"),
            quality=data.get("quality"),
            far_policy=data.get("far_policy"),
            composition=data.get("composition"),
            siblings=data.get("siblings"),
            weight_blend=data.get("weight_blend"),
            format_version=data["format_version"],
            weightinit_version=data.get("weightinit_version", ""),
        )

    def to_dict(self) -> dict:
        """The JSON object of ``generator_config.json`` (``siblings`` and ``weight_blend`` only where
        a policy is set: folders written before them read the same)."""
        out = {
            "format_version": self.format_version,
            "weightinit_version": self.weightinit_version,
            "layout_fingerprint": self.layout_fingerprint,
            "arch": self.arch,
            "adapter": self.adapter,
            "denoiser": self.denoiser,
            "text_encoder": self.text_encoder.to_dict(),
            "zoo": self.zoo.to_dict() if self.zoo is not None else None,
            "zoo_summary": self.zoo_summary,
            "training": self.training,
            "quality": self.quality,
            "far_policy": self.far_policy.to_dict() if self.far_policy is not None else None,
            "composition": None if self.composition is None else self.composition.to_dict(),
        }
        if self.siblings is not None:
            out["siblings"] = self.siblings.to_dict()
        if self.weight_blend is not None:
            out["weight_blend"] = self.weight_blend.to_dict()
        return out


#: The counts format-1/2 folders kept in ``zoo`` beside the config's fields.
_SUMMARY_KEYS = ("train_concepts", "heldout_concepts", "families", "zoo_layout")


def migrate_config(config: dict, source: Path | str = CONFIG_NAME) -> dict:
    """A ``generator_config.json`` of any format this version reads, as format :data:`FORMAT_VERSION`.

    Format 1 and 2 recorded only some of the zoo's config (arch, representation, LoRA rank and
    seed, base and concept steps, image size) mixed with its counts, plus a ``lora_scale`` that
    was always 1.0; the config's other fields read as ``ZooConfig``'s defaults.
    """
    version = config.get("format_version")
    if not isinstance(version, int):
        raise CheckpointError(f"{source}: no format_version; not a weightinit generator config")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{Path(source).parent}: generator format version {version} is newer than this weightinit reads "
            f"({FORMAT_VERSION}); upgrade weightinit"
        )
    config = dict(config)
    if version < 3:
        old = dict(config.get("zoo") or {})
        scale = old.pop("lora_scale", 1.0)
        if float(scale) != 1.0:  # nothing ever wrote another; the factors would mean something else
            raise CheckpointError(f"{source}: lora_scale {scale} (weightinit's LoRA update is B @ A, unscaled)")
        config["zoo_summary"] = {k: old.pop(k) for k in _SUMMARY_KEYS if k in old}
        known = set(ZooConfig.__dataclass_fields__)
        config["zoo"] = {k: v for k, v in old.items() if k in known} if old else None
        config["format_version"] = FORMAT_VERSION
    return config


def _zoo_config(data: dict | None, source: Path | str) -> ZooConfig | None:
    if data is None:
        return None
    try:
        return ZooConfig.from_dict(data)
    except (WeightinitError, TypeError) as exc:
        raise CheckpointError(f"{source}: bad zoo config: {exc} (a newer weightinit may have written it)") from None


def current_version() -> str:
    """The installed weightinit's version ("" where it cannot tell)."""
    try:
        from weightinit._version import __version__

        return __version__
    except ImportError:  # pragma: no cover
        return ""
