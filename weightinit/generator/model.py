"""WeightGenerator: a trained block denoiser with everything needed to turn text into weights.

Its folder on disk (files, checks, writing, reading) is :mod:`weightinit.generator.folder`, its
``generator_config.json`` the typed :class:`~weightinit.generator.config.GeneratorConfig`, its
model card :mod:`weightinit.generator.card`. A concept text is read once, by :meth:`resolve`,
into a :class:`~weightinit.generator.resolved.ResolvedConcept` that sampling, the far-concept
start and the candidate starts take (the methods also take the text, and resolve it first).

The loaded object is also what ``initialize`` uses: the base model's canonical weights, buffers
and layout are derived from it lazily, the first time they are needed.

``WeightGenerator.from_pretrained`` takes a folder or a hub id (``revision`` optional); hub
loading honours ``HF_HUB_OFFLINE`` and then reads only the local hub cache.
"""

from __future__ import annotations

import dataclasses
import os
from functools import cached_property
from pathlib import Path

import torch

from weightinit import hub, plugins, representation
from weightinit.codec import BlockCodec, SlotNormalizer
from weightinit.concepts.direction import reverse_text as turn_round
from weightinit.errors import WeightinitError
from weightinit.generator.composition import CompositionPolicy
from weightinit.generator.config import FORMAT_VERSION, GeneratorConfig, current_version, migrate_config
from weightinit.generator.denoisers import BlockDenoiser, denoiser_name
from weightinit.generator.far_policy import FarPolicy
from weightinit.generator.folder import (
    DENOISER_DIR,
    DENOISER_WEIGHTS,
    check_generator_folder,
    check_parts,
    load_denoiser,
    read_folder,
    write_folder,
)
from weightinit.generator.phrasings import KnownPhrasings
from weightinit.generator.prior import RetrievalPrior
from weightinit.generator.resolved import Provenance, ResolvedConcept, resolve_concept
from weightinit.generator.sampling import DEFAULT_CHUNK_SIZE, sample_blocks, scheduler_from_config
from weightinit.generator.siblings import SiblingPolicy
from weightinit.generator.text import TextEmbedding, TextEncoder, shared_text_encoder
from weightinit.generator.weight_blend import WeightBlendPolicy, blend_tensors
from weightinit.layout import BlockLayout
from weightinit.pair_start import PairProposer

__all__ = [
    "DENOISER_DIR",
    "DENOISER_WEIGHTS",
    "FORMAT_VERSION",
    "GeneratorConfig",
    "Provenance",
    "ResolvedConcept",
    "WeightGenerator",
    "check_generator_folder",
    "load_denoiser",
    "migrate_config",
]

TextOrResolved = str | ResolvedConcept


class WeightGenerator:
    """Text -> weights for one layout: denoiser, noise schedule, layout, normalisation statistics,
    the base checkpoint the weights belong to, and its :class:`GeneratorConfig` (text encoder
    reference, the zoo it was trained on, the far-concept and composition policies); ``name`` is
    how messages refer to it, ``phrasings`` the known phrasings it resolves concepts against.
    The config's fields may be given as keywords instead (``GeneratorConfig.from_fields``: ``arch=``,
    ``text_encoder=`` a reference, ...), as before the config was typed."""

    def __init__(
        self,
        denoiser: BlockDenoiser,
        scheduler_config: dict,
        layout: BlockLayout,
        normalizer: SlotNormalizer,
        config: GeneratorConfig | None = None,
        *,
        base_state: dict[str, torch.Tensor] | None = None,
        center: torch.Tensor | None = None,
        prior: RetrievalPrior | None = None,
        phrasings: KnownPhrasings | None = None,
        pair_start: PairProposer | None = None,
        name: str | None = None,
        **fields,
    ):
        check_parts(denoiser, layout, normalizer, center, prior)
        if pair_start is not None:
            if prior is None:
                raise WeightinitError("a pair start proposes points of the retrieval prior's span: it needs the prior")
            pair_start.check(prior.rank)
        self.denoiser = denoiser.eval()
        self.scheduler_config = dict(scheduler_config)
        self.layout = layout
        self.normalizer = normalizer
        self.center = None if center is None else center.to(torch.float32)
        self.prior = prior
        #: what a start from the user's pairs learned (``weightinit.pair_start``), or None
        self.pair_start = pair_start
        if fields and config is not None:
            raise WeightinitError(f"pass a GeneratorConfig or its fields ({', '.join(sorted(fields))}), not both")
        self.config = config if config is not None else GeneratorConfig.from_fields(layout.fingerprint, **fields)
        self.base_state = base_state or {}
        self._phrasings = phrasings
        self.name = name or repr(self)
        self._scheduler = None
        self._text_encoder: TextEncoder | None = None

    # --- the config, by name (a setter replaces this generator's config: copies keep theirs) --
    def _set(self, **changes) -> None:
        self.config = dataclasses.replace(self.config, **changes)

    arch = property(lambda self: self.config.arch, lambda self, value: self._set(arch=value))
    adapter = property(lambda self: self.config.adapter, lambda self, value: self._set(adapter=value))
    text_encoder_ref = property(lambda self: self.config.text_encoder.reference)
    text_max_length = property(lambda self: self.config.text_encoder.max_length)
    text_conditioning = property(lambda self: self.config.text_encoder.conditioning)

    #: the config of the zoo it was trained on (``ZooConfig``), and that zoo's counts
    zoo = property(lambda self: self.config.zoo)
    zoo_summary = property(lambda self: self.config.zoo_summary)
    #: the training run's summary and the measured quality (what the model card lists)
    training = property(lambda self: self.config.training)
    quality = property(lambda self: self.config.quality)

    @property
    def far_policy(self) -> FarPolicy | None:
        """When a text counts as far and which start it gets (:class:`FarPolicy`); None: never far."""
        return self.config.far_policy

    @far_policy.setter
    def far_policy(self, policy: FarPolicy | dict | None) -> None:
        self._set(far_policy=FarPolicy.from_dict(policy))  # checked: a bad policy is one clear error

    @property
    def siblings(self) -> SiblingPolicy | None:
        """How a text that leans on one edit blends that edit's strengths (measured; None: it does not)."""
        return self.config.siblings

    @siblings.setter
    def siblings(self, policy: SiblingPolicy | dict | None) -> None:
        self._set(siblings=SiblingPolicy.from_dict(policy))

    @property
    def weight_blend(self) -> WeightBlendPolicy | None:
        """Whether a text's start is its blend of weight changes (measured; None: the denoiser around
        the factor blend), :mod:`weightinit.generator.weight_blend`."""
        return self.config.weight_blend

    @weight_blend.setter
    def weight_blend(self, policy: WeightBlendPolicy | dict | None) -> None:
        self._set(weight_blend=WeightBlendPolicy.from_dict(policy))

    @property
    def composition(self) -> CompositionPolicy | None:
        """When a composite text is built from its parts' blends (measured; None: never)."""
        return self.config.composition

    @composition.setter
    def composition(self, policy: CompositionPolicy | dict | None) -> None:
        self._set(composition=policy)  # a dict is read by GeneratorConfig

    @property
    def phrasings(self) -> KnownPhrasings:
        """The known phrasings concepts resolve against: the folder's frozen table, else the live catalog's."""
        if self._phrasings is None:
            self._phrasings = KnownPhrasings.live()
        return self._phrasings

    @phrasings.setter
    def phrasings(self, table: KnownPhrasings) -> None:
        self._phrasings = table

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

    @text_encoder.setter
    def text_encoder(self, encoder: TextEncoder) -> None:
        if encoder.dim != self.denoiser.config.text_dim:
            raise WeightinitError(
                f"text encoder {encoder.reference!r} has dim {encoder.dim}, "
                f"the denoiser expects {self.denoiser.config.text_dim}"
            )
        self._text_encoder = encoder

    def encode_text(self, concept_text: str | list[str]) -> TextEmbedding:
        """The text condition this generator was trained with (``text_conditioning``)."""
        return self.text_encoder.encode(concept_text, conditioning=self.text_conditioning)

    def to(self, device) -> WeightGenerator:
        self.denoiser.to(device)
        return self

    # --- concepts -----------------------------------------------------------------------------
    def resolve(self, concept: TextOrResolved) -> ResolvedConcept:
        """``concept`` read once (:mod:`weightinit.generator.resolved`); a resolved one as it is.

        Resolve again after changing ``prior``, ``far_policy``, ``composition``, ``siblings`` or ``phrasings``."""
        return concept if isinstance(concept, ResolvedConcept) else resolve_concept(self, concept)

    def reverse_text(self, concept: str) -> str:
        """The text of ``concept``'s opposite edit (CycleGAN's ``netG_B``): a known concept's
        reverse (its reverse concept's text, or its ``reverse`` phrasing, as the generator's table
        froze them), else the text turned round by ``concepts.direction``."""
        known = self.phrasings.find(concept)
        return known.reverse if known is not None else turn_round(concept)

    def based_on(self, concept: TextOrResolved, direction: str) -> dict:
        """``Provenance.to_dict()`` of ``concept``; warns (:class:`FarConceptWarning`) when it is far."""
        resolved = self.resolve(concept)
        resolved.warn_if_far(self.name, direction, self.far_policy, stacklevel=4)
        return resolved.provenance.to_dict()

    def provenance(self, concept: TextOrResolved, *, top: int = 5) -> Provenance:
        """The training concepts the start for ``concept`` draws on (needs a prior), and
        whether it is far from all of them by the generator's measured ``far_policy`` (never for a
        phrasing of one of its training concepts: ``phrasings``)."""
        resolved = self.resolve(concept)
        return resolved.provenance if top == 5 else resolved.describe(top)

    def composed_parts(self, concept: TextOrResolved, embedding=None) -> list[str] | None:
        """The parts a composite text is built from under the generator's ``composition`` policy, or None."""
        return list(self.resolve(concept).parts) or None

    def prior_weights(
        self, concept: TextOrResolved, embedding=None, *, temperature: float | None = None
    ) -> torch.Tensor:
        """``[C]``: how much of each training concept the prior's centre takes for this text (sums to 1);
        for a composite text (``composed_parts``), the mean of its parts' blends."""
        resolved = self.resolve(concept)
        if temperature is None:
            return resolved.weights
        if resolved.parts:
            return self.prior.weights_from(resolved.part_cosines, temperature).mean(0)
        return self.prior.weights_from(resolved.cosines, temperature)[0]

    def centre(self, resolved: ResolvedConcept) -> torch.Tensor | None:
        """What the denoiser's output is added to for ``resolved``: the zoo mean, plus the prior's
        blend (of the parts, for a composite text)."""
        if self.prior is None:
            return self.center
        blend = self.prior.blend(resolved.weights[None])
        return blend if self.center is None else self.center + blend

    def center_for(self, embedding, concept_text: str | None = None) -> torch.Tensor | None:
        """:meth:`centre` of ``concept_text``; without it, of the text whose ``embedding`` this is
        (taken whole, as it was never split into parts)."""
        if concept_text is not None:
            return self.centre(self.resolve(concept_text))
        if self.prior is None:
            return self.center
        blend = self.prior.blend(self.prior.concept_weights(embedding.pooled))
        return blend if self.center is None else self.center + blend

    # --- generation ---------------------------------------------------------------------------
    def sample_blocks(
        self,
        concept: TextOrResolved,
        *,
        steps: int = 1,
        seed: int | None = 0,
        generator: torch.Generator | None = None,
        guidance: float | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        progress=None,
    ) -> torch.Tensor:
        """De-normalised blocks ``[num_blocks, block_size]`` (float32) for ``concept``."""
        resolved = self.resolve(concept)
        return sample_blocks(
            self.denoiser,
            self.scheduler,
            self.layout,
            self.normalizer,
            resolved.embedding,
            steps=steps,
            guidance=guidance,
            generator=generator,
            seed=None if generator is not None else seed,
            chunk_size=chunk_size,
            progress=progress,
            center=self.centre(resolved),
        )

    def prior_blocks(self, concept: TextOrResolved) -> torch.Tensor:
        """De-normalised blocks of the centre alone (no denoiser): the ``prior only`` ablation."""
        center = self.centre(self.resolve(concept))
        if center is None:
            raise WeightinitError("this generator has neither a centre nor a prior")
        return self.normalizer.denormalize(center, torch.float32)

    def fallback_blocks(self, concept: TextOrResolved) -> torch.Tensor:
        """De-normalised blocks of the far-concept start (``far_policy.fallback``)."""
        if self.far_policy is None:
            raise WeightinitError("this generator has no far-concept policy")
        if self.far_policy.fallback == "mean":
            if self.center is None:
                raise WeightinitError("this generator has no zoo mean to fall back to")
            return self.normalizer.denormalize(self.center, torch.float32)
        blend = self.prior.blend(self.resolve(concept).fallback_weights[None])
        center = self.center if self.center is not None else 0
        return self.normalizer.denormalize(center + blend, torch.float32)

    def candidate_blocks(self, concept: TextOrResolved) -> list[tuple[str, torch.Tensor]]:
        """Named de-normalised blocks of other starts for ``concept``: the zoo mean plus each
        of the prior's candidates (``RetrievalPrior.candidates``); empty without a prior."""
        if self.prior is None:
            return []
        center = self.center if self.center is not None else torch.zeros(self.layout.num_blocks, self.layout.block_size)
        return [
            (name, self.normalizer.denormalize(center + delta, torch.float32))
            for name, delta in self.prior.candidates_from(self.resolve(concept).cosines)
        ]

    def generate(
        self,
        concept: TextOrResolved,
        *,
        steps: int = 1,
        seed: int = 0,
        guidance: float | None = None,
        dtype: torch.dtype | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        fallback: bool = False,
    ) -> dict[str, torch.Tensor]:
        """``{canonical name: tensor}`` for ``concept`` in the layout's dtypes (or ``dtype``).

        Seeded: the same text, seed and steps give bitwise identical weights in every process.
        ``fallback=True``: a text that :meth:`resolve` calls far gets :meth:`fallback_blocks`.
        With a weight-blend policy (:attr:`weight_blend`) the start is the blend of the weight changes
        of the concepts the text resolves to (far, with ``fallback``: its fallback's), and the
        denoiser (``steps``, ``seed``, ``guidance``) is not run.
        """
        resolved = self.resolve(concept)
        codec = BlockCodec(self.layout)
        if self.weight_blend is not None and resolved.weights is not None:
            out = self.blend_start(resolved.start_weights if fallback else resolved.weights)  # raises on NaN/Inf
            return {s.name: out[s.name].to(dtype or s.torch_dtype) for s in self.layout.slots}
        if fallback and resolved.far and resolved.fallback is not None:
            blocks = self.fallback_blocks(resolved)
        else:
            blocks = self.sample_blocks(resolved, steps=steps, seed=seed, guidance=guidance, chunk_size=chunk_size)
        codec.check_finite(blocks)
        out = codec.decode(blocks, copy=True)
        return {k: v.to(dtype) for k, v in out.items()} if dtype is not None else out

    def blend_start(self, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{name: float32 tensor}``: the start this generator's weight-blend policy writes for blend
        ``weights [C]`` of its training concepts (:func:`weightinit.generator.weight_blend.blend_tensors`)."""
        if self.weight_blend is None:
            raise WeightinitError(f"generator {self.name} has no weight-blend policy: it blends factors")
        return blend_tensors(self, weights, self.weight_blend.min_weight)

    # --- saving and loading -------------------------------------------------------------------
    def config_dict(self) -> dict:
        """``generator_config.json`` as this generator writes it now."""
        text = dataclasses.replace(self.config.text_encoder, dim=self.denoiser.config.text_dim)
        written = dataclasses.replace(
            self.config,
            format_version=FORMAT_VERSION,
            weightinit_version=current_version(),
            layout_fingerprint=self.layout.fingerprint,
            denoiser=denoiser_name(self.denoiser),
            text_encoder=text,
        )
        return written.to_dict()

    def save_pretrained(self, directory: str | os.PathLike, *, quality: dict | None = None) -> Path:
        """Write the generator folder atomically (:func:`weightinit.generator.folder.write_folder`).

        Files already in ``directory`` that are not part of a generator (logs, checkpoints) stay.
        """
        if quality:
            self.quality.update(quality)
        return write_folder(self, directory)

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
        parts = read_folder(folder, device=device)
        return cls(
            parts.denoiser,
            parts.scheduler_config,
            parts.layout,
            parts.normalizer,
            parts.config,
            base_state=parts.base_state,
            center=parts.center,
            prior=parts.prior,
            pair_start=parts.pair_start,
            phrasings=parts.phrasings,
            name=str(path_or_hub_id),
        )
