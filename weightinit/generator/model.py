"""WeightGenerator: a trained block denoiser with everything needed to turn text into weights.

On disk it is a folder in the diffusers/hub style, never a pickle::

    generator_config.json                      format version, layout fingerprint, arch, adapter,
                                               text encoder reference, the zoo's config
                                               (``ZooConfig``), its counts, training summary
    denoiser/config.json                       the denoiser's constructor arguments (diffusers)
    denoiser/diffusion_pytorch_model.safetensors
    scheduler/scheduler_config.json            the DDPMScheduler it was trained with
    layout.json                                the layout of the generated weights
    normalizer.safetensors                     per-slot mean and scale (de-normalisation) and the
                                               mean normalised block of the zoo ("block_center")
    prior.safetensors                          optional: the retrieval prior (text-similarity blend
                                               of the training concepts, weightinit.generator.prior)
    base.safetensors                           the base checkpoint the weights are relative to
    README.md                                  model card: training data and measured quality

The loaded object is also what ``initialize`` uses: the base model's canonical weights, buffers
and layout are derived from it lazily, the first time they are needed.

``WeightGenerator.from_pretrained`` takes a folder or a hub id (``revision`` optional); hub
loading honours ``HF_HUB_OFFLINE`` and then reads only the local hub cache. A folder holding a
pickle-format file (``.bin .pt .pth .pkl .pickle .ckpt``), a missing file, a fingerprint that
does not match, or a newer format version is refused with one clear line; nothing is ever
unpickled.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from weightinit import hub, plugins, representation
from weightinit.codec import BlockCodec, SlotNormalizer
from weightinit.concepts.catalog import default_catalog
from weightinit.errors import CheckpointError, FarConceptWarning, LayoutMismatch, WeightinitError
from weightinit.fileio import atomic_write_json, read_json_object, read_safetensors, save_safetensors
from weightinit.generator.composition import CompositionPolicy, split_parts
from weightinit.generator.denoisers import BlockDenoiser, denoiser_class, denoiser_name
from weightinit.generator.far_policy import FarPolicy
from weightinit.generator.prior import PRIOR_NAME, RetrievalPrior
from weightinit.generator.sampling import DEFAULT_CHUNK_SIZE, sample_blocks, scheduler_from_config
from weightinit.generator.text import (
    DEFAULT_MAX_LENGTH,
    DEFAULT_TEXT_ENCODER,
    TEXT_CONDITIONINGS,
    TextEmbedding,
    TextEncoder,
    shared_text_encoder,
)
from weightinit.layout import BlockLayout
from weightinit.zoo.manifest import ZooConfig

#: 2 added ``text_encoder.conditioning`` (format-1 folders read as ``"pooled"``).
#: 3 made ``zoo`` the zoo's whole ``ZooConfig`` and moved its counts to ``zoo_summary``; format-1
#: and -2 folders kept one dict of both, read by :func:`migrate_config`.
FORMAT_VERSION = 3
CONFIG_NAME = "generator_config.json"
DENOISER_DIR = "denoiser"
DENOISER_WEIGHTS = "diffusion_pytorch_model.safetensors"
SCHEDULER_CONFIG = "scheduler/scheduler_config.json"
LAYOUT_NAME = "layout.json"
NORMALIZER_NAME = "normalizer.safetensors"
BASE_NAME = "base.safetensors"
CARD_NAME = "README.md"
REQUIRED_FILES = (
    CONFIG_NAME,
    f"{DENOISER_DIR}/config.json",
    f"{DENOISER_DIR}/{DENOISER_WEIGHTS}",
    SCHEDULER_CONFIG,
    LAYOUT_NAME,
    NORMALIZER_NAME,
    BASE_NAME,
)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


@dataclass
class Provenance:
    """What a generated start is based on: the training concepts the retrieval prior blends for
    the text, with their blend weight and text similarity (cosine of the conditioning embeddings),
    the best similarity to any training phrasing, and whether the text counts as far. ``parts``
    are the texts a composite text was built from (``weightinit.generator.composition``)."""

    text: str
    similarity: float
    concepts: list[dict]
    far: bool = False
    fallback: str | None = None
    parts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self, top: int = 3) -> str:
        """The most similar training concepts, with their similarity."""
        nearest = sorted(self.concepts, key=lambda c: -c["similarity"])[:top]
        return ", ".join(f"{c['concept']} (sim {c['similarity']:.2f})" for c in nearest) or "no training concepts"


class WeightGenerator:
    """Text -> weights for one layout: denoiser, noise schedule, text encoder reference, layout,
    normalisation statistics and the base checkpoint the weights belong to.

    ``zoo`` is the config of the zoo it was trained on and ``zoo_summary`` that zoo's counts
    (training and held-out concepts, families); ``name`` is how messages refer to it."""

    def __init__(
        self,
        denoiser: BlockDenoiser,
        scheduler_config: dict,
        layout: BlockLayout,
        normalizer: SlotNormalizer,
        *,
        text_encoder: str = DEFAULT_TEXT_ENCODER,
        text_max_length: int = DEFAULT_MAX_LENGTH,
        text_conditioning: str = "pooled",
        base_state: dict[str, torch.Tensor] | None = None,
        arch: str | None = None,
        adapter: str | None = None,
        zoo: ZooConfig | None = None,
        zoo_summary: dict | None = None,
        training: dict | None = None,
        quality: dict | None = None,
        center: torch.Tensor | None = None,
        prior: RetrievalPrior | None = None,
        far_policy: FarPolicy | dict | None = None,
        composition: dict | CompositionPolicy | None = None,
        name: str | None = None,
    ):
        if normalizer.layout != layout:
            layout.check_same(normalizer.layout, what="normalisation statistics", expected_name="generator's")
        if denoiser.config.num_blocks != layout.num_blocks or denoiser.config.block_size != layout.block_size:
            raise LayoutMismatch(
                f"denoiser was built for {denoiser.config.num_blocks} blocks of {denoiser.config.block_size}, "
                f"layout {layout.fingerprint} has {layout.num_blocks} blocks of {layout.block_size}",
                expected=layout.fingerprint,
            )
        self.denoiser = denoiser.eval()
        self.scheduler_config = dict(scheduler_config)
        self.layout = layout
        self.normalizer = normalizer
        self.center = None if center is None else center.to(torch.float32)
        if self.center is not None and tuple(self.center.shape) != (layout.num_blocks, layout.block_size):
            raise LayoutMismatch(
                f"center blocks are {list(self.center.shape)}, layout {layout.fingerprint} has {layout.num_blocks} blocks",
                expected=layout.fingerprint,
            )
        if prior is not None and (prior.num_blocks != layout.num_blocks or prior.block_size != layout.block_size):
            raise LayoutMismatch(
                f"prior covers {prior.num_blocks} blocks of {prior.block_size}, layout {layout.fingerprint} has "
                f"{layout.num_blocks} blocks of {layout.block_size}",
                expected=layout.fingerprint,
            )
        if prior is not None and prior.keys.shape[1] != denoiser.config.text_dim:
            raise WeightinitError(
                f"prior keys have dim {prior.keys.shape[1]}, the denoiser's text has {denoiser.config.text_dim}"
            )
        self.prior = prior
        self.text_encoder_ref = text_encoder
        self.text_max_length = int(text_max_length)
        if text_conditioning not in TEXT_CONDITIONINGS:
            raise WeightinitError(
                f"unknown text conditioning {text_conditioning!r}; expected one of {', '.join(TEXT_CONDITIONINGS)}"
            )
        self.text_conditioning = text_conditioning
        self.far_policy = far_policy
        #: When a composite text is built from its parts' blends (measured; None: never).
        self.composition = (
            composition
            if isinstance(composition, CompositionPolicy) or composition is None
            else CompositionPolicy.from_dict(composition)
        )
        self.base_state = base_state or {}
        self.arch = arch
        self.adapter = adapter or (arch.split(":", 1)[0] if arch else None)
        if zoo is not None and not isinstance(zoo, ZooConfig):
            raise WeightinitError(
                f"zoo must be a ZooConfig (ZooConfig.from_dict reads a dict), got {type(zoo).__name__}"
            )
        self.zoo = zoo
        self.zoo_summary = dict(zoo_summary or {})
        self.training = dict(training or {})
        self.quality = dict(quality or {})
        self.name = name or repr(self)
        self._scheduler = None
        self._text_encoder: TextEncoder | None = None

    @property
    def far_policy(self) -> FarPolicy | None:
        """When a text counts as far and which start it gets (:class:`FarPolicy`); None: never far."""
        return self._far_policy

    @far_policy.setter
    def far_policy(self, policy: FarPolicy | dict | None) -> None:
        self._far_policy = FarPolicy.from_dict(policy)  # checked: a bad policy is one clear error

    def __repr__(self) -> str:
        return (
            f"WeightGenerator({denoiser_name(self.denoiser)}, arch={self.arch!r}, layout={self.layout.fingerprint}, "
            f"{self.layout.num_blocks} blocks, text={self.text_encoder_ref!r})"
        )

    # --- the base model the weights belong to (what ``initialize`` needs, derived once) --------
    @cached_property
    def base_model(self) -> torch.nn.Module:
        """The base network (built from ``arch``, ``base_state`` loaded), for layouts and names only."""
        if not self.arch or not self.base_state:
            raise WeightinitError(f"generator {self.name} has no base checkpoint or arch; it cannot initialise a model")
        model = plugins.build_model(self.arch)
        model.load_state_dict(self.base_state)
        return model

    @cached_property
    def base_adapter(self):
        return plugins.get_adapter(self.adapter)

    @cached_property
    def base_layout(self) -> BlockLayout:
        """The layout of the base model's generated parameters: the models this generator covers."""
        return self.base_adapter.layout(self.base_model)

    @cached_property
    def base_canonical(self) -> dict[str, torch.Tensor]:
        """The base's generated parameters by canonical name, in canonical order."""
        return self.base_adapter.to_canonical(self.base_model, self.base_state)

    @cached_property
    def base_buffers(self) -> dict[str, torch.Tensor]:
        """The base's buffers (running statistics), which ``initialize`` copies alongside."""
        names = {k for k, _ in self.base_model.named_buffers()}
        return {k: v for k, v in self.base_state.items() if k in names}

    @property
    def representation(self) -> str:
        """``"lora"`` (factors per LoRA target) or ``"delta"`` (full differences to the base):
        what the layout's tensors are (:mod:`weightinit.representation`)."""
        return representation.kind_of(self.layout.names)

    def full_weights(self, factors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Base plus the delta of generated ``factors``, for every generated parameter (canonical names)."""
        return representation.full_weights(factors, self.base_canonical)

    def based_on(self, concept: str, direction: str) -> dict:
        """``Provenance.to_dict()`` of ``concept``; warns (:class:`FarConceptWarning`) when it is far."""
        prov = self.provenance(concept)
        if prov.far:
            warnings.warn(
                f"{concept!r} ({direction}) is far from every concept {self.name} was trained on "
                f"(best similarity {prov.similarity:.3f} < {self.far_policy.similarity:.3f}; nearest: "
                f"{prov.describe()}); it starts from the {self.far_policy.fallback_name()} instead",
                FarConceptWarning,
                stacklevel=4,
            )
        return prov.to_dict()

    # --- parts --------------------------------------------------------------------------------
    @property
    def scheduler(self):
        if self._scheduler is None:
            from diffusers import DDPMScheduler

            self._scheduler = scheduler_from_config(DDPMScheduler, self.scheduler_config)
        return self._scheduler

    @property
    def text_encoder(self) -> TextEncoder:
        if self._text_encoder is None:
            self._text_encoder = shared_text_encoder(self.text_encoder_ref, self.text_max_length)
        return self._text_encoder

    def encode_text(self, concept_text: str | list[str]) -> TextEmbedding:
        """The text condition this generator was trained with (``text_conditioning``)."""
        return self.text_encoder.encode(concept_text, conditioning=self.text_conditioning)

    @text_encoder.setter
    def text_encoder(self, encoder: TextEncoder) -> None:
        if encoder.dim != self.denoiser.config.text_dim:
            raise WeightinitError(
                f"text encoder {encoder.reference!r} has dim {encoder.dim}, the denoiser expects {self.denoiser.config.text_dim}"
            )
        self._text_encoder = encoder

    def to(self, device) -> WeightGenerator:
        self.denoiser.to(device)
        return self

    # --- generation ---------------------------------------------------------------------------
    def sample_blocks(
        self,
        concept_text: str,
        *,
        steps: int = 1,
        seed: int | None = 0,
        generator: torch.Generator | None = None,
        guidance: float | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        progress=None,
    ) -> torch.Tensor:
        """De-normalised blocks ``[num_blocks, block_size]`` (float32) for ``concept_text``."""
        embedding = self.encode_text(concept_text)
        return sample_blocks(
            self.denoiser, self.scheduler, self.layout, self.normalizer, embedding,
            steps=steps, guidance=guidance, generator=generator, seed=None if generator is not None else seed,
            chunk_size=chunk_size, progress=progress, center=self.center_for(embedding, concept_text),
        )  # fmt: skip

    def composed_parts(self, concept_text: str, embedding=None) -> list[str] | None:
        """The parts a composite text is built from under the generator's ``composition`` policy, or None."""
        if self.prior is None or self.composition is None:
            return None
        parts = split_parts(concept_text)
        if len(parts) < 2:
            return None
        embedding = embedding if embedding is not None else self.encode_text(concept_text)
        whole = float(self.prior.concept_similarity(embedding.pooled)[0].max())
        part_sims = self.prior.concept_similarity(self.encode_text(parts).pooled).max(1).values.tolist()
        return parts if self.composition.accepts(whole, part_sims) else None

    def prior_weights(self, concept_text: str, embedding=None, *, temperature: float | None = None) -> torch.Tensor:
        """``[C]``: how much of each training concept the prior's centre takes for this text (sums to 1);
        for a composite text (``composed_parts``), the mean of its parts' blends."""
        embedding = embedding if embedding is not None else self.encode_text(concept_text)
        parts = self.composed_parts(concept_text, embedding)
        if parts is None:
            return self.prior.concept_weights(embedding.pooled, temperature=temperature)[0]
        return self.prior.concept_weights(self.encode_text(parts).pooled, temperature=temperature).mean(0)

    def center_for(self, embedding, concept_text: str | None = None) -> torch.Tensor | None:
        """What the denoiser's output is added to for this text: the zoo mean, plus the prior's blend
        (of the parts, for a composite ``concept_text``)."""
        if self.prior is None:
            return self.center
        if concept_text is None:
            blend = self.prior.blocks(embedding.pooled)
        else:
            weights = self.prior_weights(concept_text, embedding)
            blend = self.prior.blend(weights[None])
        return blend if self.center is None else self.center + blend

    def prior_blocks(self, concept_text: str) -> torch.Tensor:
        """De-normalised blocks of the centre alone (no denoiser): the ``prior only`` ablation."""
        center = self.center_for(self.encode_text(concept_text), concept_text)
        if center is None:
            raise WeightinitError("this generator has neither a centre nor a prior")
        return self.normalizer.denormalize(center, torch.float32)

    def provenance(self, concept_text: str, *, top: int = 5) -> Provenance:
        """The training concepts the start for ``concept_text`` draws on (needs a prior), and
        whether it is far from all of them by the generator's measured ``far_policy`` (never for a
        phrasing of a concept in the catalog)."""
        if self.prior is None:
            return Provenance(concept_text, float("nan"), [])
        embedding = self.encode_text(concept_text)
        sims = self.prior.concept_similarity(embedding.pooled)[0]
        best = float(sims.max())
        parts = self.composed_parts(concept_text, embedding)
        if parts is not None:  # a composite text is as near as its farthest part
            best = max(best, float(self.prior.concept_similarity(self.encode_text(parts).pooled).max(1).values.min()))
        # a phrasing of a catalog concept is never far: the catalog vouches for it
        far = (
            self.far_policy is not None
            and best < self.far_policy.similarity
            and default_catalog().find_by_text(concept_text) is None
        )
        fallback = self.far_policy.fallback if far else None
        if fallback == "mean":  # every training concept alike
            weights = torch.full_like(sims, 1.0 / sims.numel())
        else:  # the blend the start is made of: the prior's, or the broader one a far text falls back to
            temperature = float(self.far_policy.temperature) if fallback == "prior" else None
            weights = self.prior_weights(concept_text, embedding, temperature=temperature)
        order = torch.argsort(weights, descending=True)[:top]
        names = self.prior.concept_ids or tuple(f"#{i}" for i in range(weights.numel()))
        concepts = [
            {"concept": names[i], "weight": round(float(weights[i]), 4), "similarity": round(float(sims[i]), 4)}
            for i in order.tolist() if float(weights[i]) >= 0.005
        ]  # fmt: skip
        return Provenance(concept_text, round(best, 4), concepts, far, fallback, parts=parts or [])

    def fallback_blocks(self, concept_text: str) -> torch.Tensor:
        """De-normalised blocks of the far-concept start (``far_policy.fallback``)."""
        if self.far_policy is None:
            raise WeightinitError("this generator has no far-concept policy")
        kind = self.far_policy.fallback
        if kind == "mean":
            if self.center is None:
                raise WeightinitError("this generator has no zoo mean to fall back to")
            return self.normalizer.denormalize(self.center, torch.float32)
        temperature = float(self.far_policy.temperature or self.prior.temperature)
        query = self.encode_text(concept_text).pooled
        blend = self.prior.blend(self.prior.concept_weights(query, temperature=temperature))
        center = self.center if self.center is not None else 0
        return self.normalizer.denormalize(center + blend, torch.float32)

    def candidate_blocks(self, concept_text: str) -> list[tuple[str, torch.Tensor]]:
        """Named de-normalised blocks of other starts for ``concept_text``: the zoo mean plus each
        of the prior's candidates (``RetrievalPrior.candidates``); empty without a prior."""
        if self.prior is None:
            return []
        center = self.center if self.center is not None else torch.zeros(self.layout.num_blocks, self.layout.block_size)
        return [
            (name, self.normalizer.denormalize(center + delta, torch.float32))
            for name, delta in self.prior.candidates(self.encode_text(concept_text).pooled)
        ]

    def generate(
        self,
        concept_text: str,
        *,
        steps: int = 1,
        seed: int = 0,
        guidance: float | None = None,
        dtype: torch.dtype | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        fallback: bool = False,
    ) -> dict[str, torch.Tensor]:
        """``{canonical name: tensor}`` for ``concept_text`` in the layout's dtypes (or ``dtype``).

        Seeded: the same text, seed and steps give bitwise identical weights in every process.
        ``fallback=True``: a text that :meth:`provenance` calls far gets :meth:`fallback_blocks`.
        """
        if fallback and self.provenance(concept_text).far:
            blocks = self.fallback_blocks(concept_text)
        else:
            blocks = self.sample_blocks(concept_text, steps=steps, seed=seed, guidance=guidance, chunk_size=chunk_size)
        codec = BlockCodec(self.layout)
        codec.check_finite(blocks)
        out = codec.decode(blocks, copy=True)
        return {k: v.to(dtype) for k, v in out.items()} if dtype is not None else out

    # --- saving -------------------------------------------------------------------------------
    def config_dict(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "weightinit_version": _version(),
            "layout_fingerprint": self.layout.fingerprint,
            "arch": self.arch,
            "adapter": self.adapter,
            "denoiser": denoiser_name(self.denoiser),
            "text_encoder": {
                "reference": self.text_encoder_ref,
                "max_length": self.text_max_length,
                "dim": self.denoiser.config.text_dim,
                "conditioning": self.text_conditioning,
            },
            "zoo": self.zoo.to_dict() if self.zoo is not None else None,
            "zoo_summary": self.zoo_summary,
            "training": self.training,
            "quality": self.quality,
            "far_policy": self.far_policy.to_dict() if self.far_policy is not None else None,
            "composition": None if self.composition is None else self.composition.to_dict(),
        }

    def save_pretrained(self, directory: str | os.PathLike, *, quality: dict | None = None) -> Path:
        """Write the generator folder atomically (a temporary folder beside it, then renamed).

        Files already in ``directory`` that are not part of a generator (logs, checkpoints) stay.
        """
        if quality:
            self.quality.update(quality)
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
        try:
            self.denoiser.save_pretrained(tmp / DENOISER_DIR, safe_serialization=True)
            atomic_write_json(tmp / SCHEDULER_CONFIG, self.scheduler_config)
            (tmp / LAYOUT_NAME).write_text(self.layout.to_json(indent=2) + "\n")
            meta = {"weightinit.fingerprint": self.layout.fingerprint}
            stats = self.normalizer.state_dict()
            if self.center is not None:
                stats["block_center"] = self.center
            save_safetensors(tmp / NORMALIZER_NAME, stats, meta)
            if self.prior is not None:
                self.prior.save(tmp / PRIOR_NAME, self.layout.fingerprint)
            save_safetensors(tmp / BASE_NAME, self.base_state, {"weightinit.arch": self.arch or ""})
            (tmp / CARD_NAME).write_text(model_card(self))
            atomic_write_json(tmp / CONFIG_NAME, self.config_dict())  # last: its presence marks a complete folder
            directory.mkdir(exist_ok=True)
            for name in (DENOISER_DIR, "scheduler"):
                old = directory / name
                if old.exists():
                    aside = directory / f".{name}.old"
                    shutil.rmtree(aside, ignore_errors=True)
                    old.rename(aside)
                (tmp / name).rename(old)
                shutil.rmtree(directory / f".{name}.old", ignore_errors=True)
            if self.prior is None and (directory / PRIOR_NAME).exists():
                (directory / PRIOR_NAME).unlink()
            for name in (
                LAYOUT_NAME,
                NORMALIZER_NAME,
                *([PRIOR_NAME] if self.prior is not None else []),
                BASE_NAME,
                CARD_NAME,
                CONFIG_NAME,
            ):
                os.replace(tmp / name, directory / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return directory

    # --- loading ------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        path_or_hub_id: str | os.PathLike,
        revision: str | None = None,
        *,
        cache_dir: str | os.PathLike | None = None,
        token: str | None = None,
        device="cpu",
    ) -> WeightGenerator:
        """Load a generator folder, or a hub repo (offline: from the local hub cache only)."""
        folder = hub.resolve(path_or_hub_id, revision=revision, cache_dir=cache_dir, token=token)
        check_generator_folder(folder)
        config = migrate_config(read_json_object(folder / CONFIG_NAME), folder / CONFIG_NAME)
        layout = BlockLayout.from_json((folder / LAYOUT_NAME).read_text())
        if layout.fingerprint != config.get("layout_fingerprint"):
            raise CheckpointError(
                f"{folder}: layout.json has fingerprint {layout.fingerprint} but generator_config.json says "
                f"{config.get('layout_fingerprint')}; the folder is inconsistent"
            )
        norm_state, norm_meta = read_safetensors(folder / NORMALIZER_NAME)
        if norm_meta.get("weightinit.fingerprint") != layout.fingerprint:
            raise CheckpointError(
                f"{folder / NORMALIZER_NAME}: made for layout {norm_meta.get('weightinit.fingerprint')}, not {layout.fingerprint}"
            )
        normalizer = SlotNormalizer.from_state_dict(layout, norm_state)
        center = norm_state.get("block_center")
        prior = (
            RetrievalPrior.load(folder / PRIOR_NAME, layout.fingerprint) if (folder / PRIOR_NAME).is_file() else None
        )
        denoiser = load_denoiser(folder / DENOISER_DIR, device=device)
        scheduler_config = read_json_object(folder / SCHEDULER_CONFIG)
        base_state, _ = read_safetensors(folder / BASE_NAME)
        text = config.get("text_encoder") or {}
        zoo = _zoo_config(config.get("zoo"), folder / CONFIG_NAME)
        if zoo is not None and zoo.representation != representation.kind_of(layout.names):
            raise CheckpointError(
                f"{folder}: the zoo config says {zoo.representation!r}, but layout.json holds {representation.kind_of(layout.names)!r} tensors"
            )
        return cls(
            denoiser, scheduler_config, layout, normalizer,
            text_encoder=text.get("reference", DEFAULT_TEXT_ENCODER), text_max_length=text.get("max_length", DEFAULT_MAX_LENGTH),
            text_conditioning=text.get("conditioning", "pooled"), base_state=base_state, arch=config.get("arch"), adapter=config.get("adapter"),
            zoo=zoo, zoo_summary=config.get("zoo_summary"), training=config.get("training"), quality=config.get("quality"),
            center=center, prior=prior, far_policy=config.get("far_policy"), composition=config.get("composition"), name=str(path_or_hub_id),
        )  # fmt: skip


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
            f"{Path(source).parent}: generator format version {version} is newer than this weightinit reads ({FORMAT_VERSION}); upgrade weightinit"
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


def load_denoiser(folder: Path, device="cpu") -> BlockDenoiser:
    """A denoiser from ``config.json`` + safetensors weights (strict: every name and shape must match)."""
    config = read_json_object(folder / "config.json")
    cls = denoiser_class(str(config.get("_class_name", "")))
    init = {k: v for k, v in config.items() if not k.startswith("_")}
    try:
        model = cls.from_config(init)
    except TypeError as exc:
        raise CheckpointError(f"{folder / 'config.json'}: bad denoiser config: {exc}") from None
    state, _ = read_safetensors(folder / DENOISER_WEIGHTS)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{folder / DENOISER_WEIGHTS} does not match its config: {str(exc).splitlines()[0]}"
        ) from None
    return model.to(device).eval()


def check_generator_folder(folder: Path) -> None:
    """Refuse pickle-format files anywhere in the folder and name the first missing file."""
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in PICKLE_SUFFIXES:
            raise CheckpointError(
                f"{folder} holds a pickle-format file ({p.relative_to(folder)}); weightinit never unpickles, "
                "and refuses such folders: remove it"
            )
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise CheckpointError(f"{folder} is not a complete weightinit generator: missing {', '.join(missing)}")


def _version() -> str:
    try:
        from weightinit._version import __version__

        return __version__
    except ImportError:  # pragma: no cover
        return ""


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def model_card(gen: WeightGenerator) -> str:
    """The README of a generator folder: what it generates, its training data, measured quality."""
    zoo = {**(gen.zoo.to_dict() if gen.zoo is not None else {}), **gen.zoo_summary}
    training, quality = gen.training, gen.quality
    lines = [
        "---",
        "library_name: weightinit",
        "tags: [weightinit, weight-generation, diffusion, pix2pix]",
        "---",
        "",
        f"# weightinit generator for `{gen.arch}`",
        "",
        "A text- and block-index-conditioned block denoiser that generates the initial weights of an "
        "image-to-image generator for a concept described in text (Gong et al., ECCV 2024).",
        "",
        "```python",
        "from weightinit.generator import WeightGenerator",
        "",
        'gen = WeightGenerator.from_pretrained("<this folder or hub id>")',
        'weights = gen.generate("sketch to photo", seed=0)',
        "```",
        "",
        "## What it generates",
        "",
        f"- architecture `{gen.arch}` (adapter `{gen.adapter}`), representation `{gen.representation}`"
        + (
            f", LoRA rank {gen.zoo.lora_rank}, LoRA seed {gen.zoo.lora_seed}"
            if gen.zoo is not None and gen.representation == "lora"
            else ""
        ),
        f"- layout `{gen.layout.fingerprint}`: {len(gen.layout)} tensors, {gen.layout.num_params:,} values, "
        f"{gen.layout.num_blocks:,} blocks of {gen.layout.block_size}",
        f"- denoiser `{denoiser_name(gen.denoiser)}` ({sum(p.numel() for p in gen.denoiser.parameters()):,} parameters), "
        f"prediction type `{gen.scheduler_config.get('prediction_type')}`, one-step sampling by default",
        f"- text encoder `{gen.text_encoder_ref}` (max {gen.text_max_length} tokens), `{gen.text_conditioning}` conditioning"
        + (
            ' (source and target of the phrasing embedded apart, so "X to Y" and "Y to X" differ)'
            if gen.text_conditioning == "directional"
            else ""
        ),
        (
            f"- centre: retrieval prior, a text-similarity blend (temperature {gen.prior.temperature}) of the "
            f"{gen.prior.coef.shape[0]} training concepts in {gen.prior.rank} principal components; the denoiser adds its residual"
            if gen.prior is not None
            else "- centre: the zoo's mean block; the denoiser adds its residual"
        ),
        (
            f"- far concepts: a text whose best similarity to the training phrasings is below {gen.far_policy.similarity} starts "
            f"from the {gen.far_policy.fallback} start"
            + (f" (temperature {gen.far_policy.temperature})" if gen.far_policy.fallback == "prior" else "")
            + f", with a `FarConceptWarning` (measured on {gen.far_policy.measured.get('measured_on', 'the training concepts')})"
            if gen.far_policy
            else "- far concepts: no policy measured; every text gets the generated start"
        ),
        (
            '- composite texts ("A with B", "add A and B"): the centre is the mean of the parts\' blends when the weakest '
            f"part is at least as similar to a training phrasing as the whole text minus {gen.composition.margin:.4f} "
            "(measured on the training compositions by experiments/composed_prior.py of weightinit's source repository)"
            if gen.composition is not None
            else "- composite texts: blended as one text (no composition policy measured)"
        ),
        "",
        "## Training data",
        "",
    ]
    if zoo:
        for key in (
            "train_concepts",
            "heldout_concepts",
            "families",
            "arch",
            "base_steps",
            "concept_steps",
            "image_size",
            "lora_rank",
            "lora_seed",
        ):
            if key in zoo:
                lines.append(
                    f"- {key.replace('_', ' ')}: {_fmt(zoo[key]) if not isinstance(zoo[key], list) else ', '.join(map(str, zoo[key]))}"
                )
    else:
        lines.append("- (not recorded)")
    if training:
        lines += ["", "## Training", ""]
        for key, value in sorted(training.items()):
            if not isinstance(value, dict | list):
                lines.append(f"- {key}: {_fmt(value)}")
    lines += ["", "## Measured quality", ""]
    if quality:
        for key, value in sorted(quality.items()):
            lines.append(f"- {key}: {json.dumps(value) if isinstance(value, dict | list) else _fmt(value)}")
    else:
        lines.append("Not measured yet: `weightinit demo --generator DIR` compares its start with scratch.")
    return "\n".join(lines) + "\n"
