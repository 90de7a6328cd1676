"""A generator folder on disk: its files, their checks, and writing and reading it.

The folder is in the diffusers/hub style, never a pickle::

    generator_config.json                      format version, layout fingerprint, arch, adapter,
                                               text encoder reference, the zoo's config
                                               (``ZooConfig``), its counts, training summary
                                               (``weightinit.generator.config.GeneratorConfig``)
    denoiser/config.json                       the denoiser's constructor arguments (diffusers)
    denoiser/diffusion_pytorch_model.safetensors
    scheduler/scheduler_config.json            the DDPMScheduler it was trained with
    layout.json                                the layout of the generated weights
    normalizer.safetensors                     per-slot mean and scale (de-normalisation) and the
                                               mean normalised block of the zoo ("block_center")
    prior.safetensors                          optional: the retrieval prior (text-similarity blend
                                               of the training concepts, weightinit.generator.prior)
    phrasings.json                             optional: the known phrasings, frozen when it was
                                               saved (weightinit.generator.phrasings)
    pair_start.safetensors                     optional: what a start from the user's pairs learned
                                               (weightinit.pair_start; needs the prior)
    base.safetensors                           the base checkpoint the weights are relative to
    README.md                                  model card: training data and measured quality

A folder holding a pickle-format file (``.bin .pt .pth .pkl .pickle .ckpt``), a missing file, a
fingerprint that does not match, or a newer format version is refused with one clear line;
nothing is ever unpickled.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from weightinit import representation
from weightinit.codec import SlotNormalizer
from weightinit.errors import CheckpointError, LayoutMismatch, WeightinitError
from weightinit.fileio import atomic_write_json, atomic_write_text, read_json_object, read_safetensors, save_safetensors
from weightinit.generator.card import model_card
from weightinit.generator.config import CONFIG_NAME, GeneratorConfig
from weightinit.generator.denoisers import BlockDenoiser, denoiser_class
from weightinit.generator.phrasings import PHRASINGS_NAME, KnownPhrasings
from weightinit.generator.prior import PRIOR_NAME, RetrievalPrior
from weightinit.layout import BlockLayout
from weightinit.pair_start import PAIR_START_NAME, PairProposer

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
class FolderContents:
    """What :func:`read_folder` reads: the parts ``WeightGenerator`` is made of."""

    denoiser: BlockDenoiser
    scheduler_config: dict
    layout: BlockLayout
    normalizer: SlotNormalizer
    config: GeneratorConfig
    base_state: dict[str, torch.Tensor]
    center: torch.Tensor | None
    prior: RetrievalPrior | None
    phrasings: KnownPhrasings | None
    pair_start: PairProposer | None = None


def read_folder(folder: Path, device="cpu") -> FolderContents:
    """Every part of a generator folder, checked (module docstring); ``phrasings`` is None for a
    folder without ``phrasings.json`` (the generator then reads the live catalog)."""
    check_generator_folder(folder)
    config = GeneratorConfig.from_dict(read_json_object(folder / CONFIG_NAME), folder / CONFIG_NAME)
    layout = BlockLayout.from_json((folder / LAYOUT_NAME).read_text())
    if layout.fingerprint != config.layout_fingerprint:
        raise CheckpointError(
            f"{folder}: layout.json has fingerprint {layout.fingerprint} but generator_config.json says "
            f"{config.layout_fingerprint}; the folder is inconsistent"
        )
    norm_state, norm_meta = read_safetensors(folder / NORMALIZER_NAME)
    if norm_meta.get("weightinit.fingerprint") != layout.fingerprint:
        raise CheckpointError(
            f"{folder / NORMALIZER_NAME}: made for layout {norm_meta.get('weightinit.fingerprint')}, "
            f"not {layout.fingerprint}"
        )
    normalizer = SlotNormalizer.from_state_dict(layout, norm_state)
    prior = RetrievalPrior.load(folder / PRIOR_NAME, layout.fingerprint) if (folder / PRIOR_NAME).is_file() else None
    pair_start = None
    if (folder / PAIR_START_NAME).is_file():
        if prior is None:
            raise CheckpointError(f"{folder}: {PAIR_START_NAME} needs the retrieval prior, and {PRIOR_NAME} is missing")
        pair_start = PairProposer.load(folder / PAIR_START_NAME, layout.fingerprint)
        pair_start.check(prior.rank)
    if config.zoo is not None and config.zoo.representation != representation.kind_of(layout.names):
        raise CheckpointError(
            f"{folder}: the zoo config says {config.zoo.representation!r}, but layout.json holds "
            f"{representation.kind_of(layout.names)!r} tensors"
        )
    return FolderContents(
        denoiser=load_denoiser(folder / DENOISER_DIR, device=device),
        scheduler_config=read_json_object(folder / SCHEDULER_CONFIG),
        layout=layout,
        normalizer=normalizer,
        config=config,
        base_state=read_safetensors(folder / BASE_NAME)[0],
        center=norm_state.get("block_center"),
        prior=prior,
        phrasings=KnownPhrasings.load(folder / PHRASINGS_NAME) if (folder / PHRASINGS_NAME).is_file() else None,
        pair_start=pair_start,
    )


def write_folder(gen, directory: str | os.PathLike) -> Path:
    """Write generator ``gen`` (``WeightGenerator``) to ``directory`` atomically: a temporary
    folder beside it, then renamed. Files already in ``directory`` that are not part of a
    generator (logs, checkpoints) stay."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        gen.denoiser.save_pretrained(tmp / DENOISER_DIR, safe_serialization=True)
        atomic_write_json(tmp / SCHEDULER_CONFIG, gen.scheduler_config)
        (tmp / LAYOUT_NAME).write_text(gen.layout.to_json(indent=2) + "\n")
        meta = {"weightinit.fingerprint": gen.layout.fingerprint}
        stats = gen.normalizer.state_dict()
        if gen.center is not None:
            stats["block_center"] = gen.center
        save_safetensors(tmp / NORMALIZER_NAME, stats, meta)
        if gen.prior is not None:
            gen.prior.save(tmp / PRIOR_NAME, gen.layout.fingerprint)
        if gen.pair_start is not None:
            gen.pair_start.save(tmp / PAIR_START_NAME, gen.layout.fingerprint)
        save_safetensors(tmp / BASE_NAME, gen.base_state, {"weightinit.arch": gen.arch or ""})
        gen.phrasings.save(tmp / PHRASINGS_NAME)  # the live catalog's, frozen now, where it had none
        (tmp / CARD_NAME).write_text(model_card(gen))
        atomic_write_json(tmp / CONFIG_NAME, gen.config_dict())  # last: its presence marks a complete folder
        directory.mkdir(exist_ok=True)
        for name in (DENOISER_DIR, "scheduler"):
            old = directory / name
            if old.exists():
                aside = directory / f".{name}.old"
                shutil.rmtree(aside, ignore_errors=True)
                old.rename(aside)
            (tmp / name).rename(old)
            shutil.rmtree(directory / f".{name}.old", ignore_errors=True)
        for optional, present in ((PRIOR_NAME, gen.prior), (PAIR_START_NAME, gen.pair_start)):
            if present is None and (directory / optional).exists():
                (directory / optional).unlink()
        for name in (
            LAYOUT_NAME,
            NORMALIZER_NAME,
            *([PRIOR_NAME] if gen.prior is not None else []),
            *([PAIR_START_NAME] if gen.pair_start is not None else []),
            BASE_NAME,
            PHRASINGS_NAME,
            CARD_NAME,
            CONFIG_NAME,
        ):
            os.replace(tmp / name, directory / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def write_policies(gen, directory: str | os.PathLike) -> Path:
    """Write only ``gen``'s config and model card into its existing folder ``directory`` (each
    atomically): the policies measured after training (far texts, siblings) change, while the
    tensors, and the version that wrote them, stay as they are."""
    directory = Path(directory)
    if not (directory / CONFIG_NAME).is_file():
        raise CheckpointError(f"{directory} is not a generator folder (no {CONFIG_NAME})")
    atomic_write_text(directory / CARD_NAME, model_card(gen))
    atomic_write_json(directory / CONFIG_NAME, gen.config.to_dict())
    return directory


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


def check_parts(denoiser: BlockDenoiser, layout: BlockLayout, normalizer: SlotNormalizer, center, prior) -> None:
    """The parts of one generator agree: the denoiser, normalisation statistics, centre and prior
    all cover the layout's blocks, and the prior's keys have the denoiser's text width."""
    if normalizer.layout != layout:
        layout.check_same(normalizer.layout, what="normalisation statistics", expected_name="generator's")
    if denoiser.config.num_blocks != layout.num_blocks or denoiser.config.block_size != layout.block_size:
        raise LayoutMismatch(
            f"denoiser was built for {denoiser.config.num_blocks} blocks of {denoiser.config.block_size}, "
            f"layout {layout.fingerprint} has {layout.num_blocks} blocks of {layout.block_size}",
            expected=layout.fingerprint,
        )
    if center is not None and tuple(center.shape) != (layout.num_blocks, layout.block_size):
        raise LayoutMismatch(
            f"center blocks are {list(center.shape)}, layout {layout.fingerprint} has {layout.num_blocks} blocks",
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
