"""Training the weight generator on a zoo, with ``accelerate`` (laptop, many GPUs, mixed precision).

Data: every *training* concept of the zoo (``split == "train"``; held-out concepts are never
read), encoded into blocks with :class:`BlockCodec` and normalised per slot with
:meth:`SlotNormalizer.fit` over the training concepts. One training sample is a (concept, block
index) pair with a random phrasing of the concept's text; the text embeddings are computed once
per phrasing. Noise: diffusers' ``DDPMScheduler``; the target is the clean sample by default
(``prediction_type="sample"``, so one-step generation is natural), epsilon or v as options.
The denoiser learns each concept's difference to the mean normalised block of the training
concepts (the "center", saved with the generator and added back at sampling): LoRA A factors
share one initialisation and move little, so without it most of the capacity goes to memorising
that shared random init, and with it a model that predicts zero is already the zoo-mean baseline.
With ``prior="retrieval"`` (the default) the centre also depends on the text: the target is the
concept minus the retrieval prior's blend for the sampled phrasing
(:mod:`weightinit.generator.prior`), so a model that predicts zero is the text-similarity blend
of the training concepts, which measures closer to held-out concepts than the mean or the
nearest concept; ``prior="mean"`` is the paper's setting. A
fraction of every batch (``last_timestep_fraction``) is drawn at the last timestep, the point
one-step sampling uses; the rest uniformly. The loss is MSE over real (non-padding) values.
Classifier-free guidance: the text is dropped (mask zeroed) with probability ``cond_dropout``.

Checkpoints go to ``out/checkpoints/step-NNNNNNN/`` every ``save_every`` steps, written to a
temporary folder and renamed, keeping the last ``keep_checkpoints``. They hold the same things
``accelerator.save_state`` would (model, optimizer, every process's RNG state, the step) but as
safetensors + JSON: accelerate's own ``save_state`` writes its optimizer and RNG state with
pickle, which this project never writes or reads. ``resume=True`` continues from the newest
complete checkpoint with the same config (only ``steps``/``save_every``/``log_every`` may
change). At the end the generator is saved to ``out`` (``WeightGenerator.save_pretrained``) with
a ``train_log.jsonl`` of the loss beside it.

Defaults are set by measurement on a 2-core CPU shared with other jobs (one thread): the default
``mlp`` denoiser at batch 256 runs ~5 steps/s, so 6000 steps take ~20-30 min for any zoo size;
on the default zoo (~190 training concepts x 415 blocks) that is ~20 passes over every block.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from weightinit.codec import BlockCodec, SlotNormalizer
from weightinit.errors import WeightinitError
from weightinit.fileio import atomic_write_json, read_safetensors, save_safetensors
from weightinit.generator.config import GeneratorConfig, TextEncoderConfig
from weightinit.generator.denoisers import DEFAULT_DENOISER, build_denoiser, count_parameters
from weightinit.generator.model import WeightGenerator
from weightinit.generator.prior import DEFAULT_RANK, RetrievalPrior
from weightinit.generator.sampling import PREDICTION_TYPES, make_scheduler
from weightinit.generator.text import (
    DEFAULT_CONDITIONING,
    DEFAULT_MAX_LENGTH,
    DEFAULT_TEXT_ENCODER,
    TEXT_CONDITIONINGS,
    TextEmbedding,
    TextEncoder,
    shared_text_encoder,
)
from weightinit.pair_start import fit_pair_start
from weightinit.recipe import resolve_mixed_precision, select_device
from weightinit.zoo.weights import ZooWeights

CHECKPOINT_DIR = "checkpoints"
LOG_NAME = "train_log.jsonl"
#: Config fields that may change when a run is resumed.
RESUMABLE_CHANGES = {"steps", "save_every", "log_every", "keep_checkpoints", "mixed_precision"}
#: What the denoiser's clean sample is relative to: the zoo's mean block, or the text-dependent
#: blend of the training concepts (:mod:`weightinit.generator.prior`).
PRIORS = ("retrieval", "mean")
PRIOR_TARGETS = ("self", "leave_one_out")


@dataclass
class GeneratorTrainingConfig:
    """How a generator is trained. Saved in every checkpoint and in the generator's config."""

    denoiser: str = field(
        default=DEFAULT_DENOISER,
        metadata={"help": "Denoiser: 'mlp' (fast on CPUs, the default) or 'unet1d' (the paper's 1-D UNet)."},
    )
    denoiser_kwargs: dict = field(
        default_factory=dict,
        metadata={
            "help": "Denoiser constructor options as a JSON object, e.g. '{\"hidden_dim\": 384}' (default: none)."
        },
    )
    steps: int = field(
        default=6000, metadata={"help": "Optimizer steps in all (a resumed run counts the steps already done)."}
    )
    batch_size: int = field(default=256, metadata={"help": "Blocks per step (per process)."})
    lr: float = field(default=1e-3, metadata={"help": "Peak learning rate (AdamW; warm-up then cosine to 10%)."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW's weight decay."})
    warmup_steps: int = field(default=200, metadata={"help": "Steps of linear learning-rate warm-up."})
    prediction_type: str = field(
        default="sample",
        metadata={"help": "What the denoiser predicts: sample (one-step friendly), epsilon or v_prediction."},
    )
    num_train_timesteps: int = field(default=1000, metadata={"help": "Timesteps of the DDPM noise schedule."})
    beta_schedule: str = field(default="squaredcos_cap_v2", metadata={"help": "The DDPM scheduler's beta schedule."})
    last_timestep_fraction: float = field(
        default=0.25, metadata={"help": "Fraction of every batch drawn at the last timestep (one-step sampling's)."}
    )
    cond_dropout: float = field(
        default=0.1, metadata={"help": "Probability of dropping the text (classifier-free guidance)."}
    )
    prior: str = field(
        default="retrieval",
        metadata={
            "help": "What the denoiser learns differences to: 'retrieval' (a text-similarity blend of the training "
            "concepts) or 'mean' (the zoo's mean block, the paper's setting)."
        },
    )
    prior_rank: int | None = field(
        default=DEFAULT_RANK,
        metadata={
            "help": "Principal components kept of the training concepts for the retrieval prior; 'all' (the "
            "default) keeps every one, best measured on training concepts (experiments/prior_rank.py in the "
            "source repository)."
        },
    )
    # Leave-one-concept-out PSNR at step 0 is best at 0.01 of 0.01-0.1; the weight-space error prefers
    # broad blends that map images worse.
    prior_temperature: float | None = field(
        default=0.01,
        metadata={
            "help": "Softmax temperature of the retrieval prior (0.01 measured best on training concepts by "
            "experiments/prior_temperature.py in the source repository); 'none' chooses it by "
            "leave-one-concept-out error in weight space."
        },
    )
    # "self": at 0.01 the blend is nearly the concept, so the target residual is nearly zero.
    prior_target: str = field(
        default="self",
        metadata={
            "help": "What the denoiser corrects: 'self' (each phrasing's blend with its own concept in it) or "
            "'leave_one_out' (the blend of the other concepts, as a held-out concept sees it)."
        },
    )
    pair_start: bool = field(
        default=True,
        metadata={
            "help": "Also learn the start from a user's pairs (weightinit.pair_start: features of each training "
            "concept's first pairs -> its coefficients in the retrieval prior); needs the retrieval prior."
        },
    )
    no_text: bool = field(default=False, metadata={"help": "Ablation: no text condition."})
    no_block_index: bool = field(default=False, metadata={"help": "Ablation: no block-index condition."})
    slot_embedding: bool = field(default=False, metadata={"help": "Ablation: add a per-slot (layer) embedding."})
    text_encoder: str = field(
        default=DEFAULT_TEXT_ENCODER, metadata={"help": "Text encoder: the bundled default, a folder or a hub id."}
    )
    text_max_length: int = field(default=DEFAULT_MAX_LENGTH, metadata={"help": "Tokens kept of a phrasing."})
    text_conditioning: str = field(
        default=DEFAULT_CONDITIONING,
        metadata={
            "help": "How a phrasing is embedded: 'directional' embeds its source and target apart "
            "(weightinit.generator.text), 'pooled' as one text."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of the model init and the data order."})
    save_every: int = field(default=1000, metadata={"help": "Checkpoint every N steps."})
    log_every: int = field(default=50, metadata={"help": "Log the loss every N steps."})
    keep_checkpoints: int = field(default=2, metadata={"help": "Checkpoints kept (the newest)."})
    mixed_precision: str = field(
        default="auto",
        metadata={"help": "auto (bf16 autocast on a CUDA device with bf16, else none), no, bf16 or fp16."},
    )

    def __post_init__(self) -> None:
        if self.prediction_type not in PREDICTION_TYPES:
            raise WeightinitError(f"prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}")
        for name in ("steps", "batch_size", "num_train_timesteps", "save_every", "log_every", "keep_checkpoints"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise WeightinitError(f"training config {name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("cond_dropout", "last_timestep_fraction"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise WeightinitError(f"training config {name} must be in [0, 1], got {getattr(self, name)!r}")
        if self.prior not in PRIORS:
            raise WeightinitError(f"prior must be one of {PRIORS}, got {self.prior!r}")
        if self.prior_rank is not None and (not isinstance(self.prior_rank, int) or self.prior_rank < 1):
            raise WeightinitError(
                f"prior_rank must be a positive integer or None (every component), got {self.prior_rank!r}"
            )
        if self.prior_temperature is not None and not self.prior_temperature > 0:
            raise WeightinitError(f"prior_temperature must be positive, got {self.prior_temperature!r}")
        if self.prior_target not in PRIOR_TARGETS:
            raise WeightinitError(f"prior_target must be one of {PRIOR_TARGETS}, got {self.prior_target!r}")
        if self.lr <= 0:
            raise WeightinitError(f"learning rate must be positive, got {self.lr}")
        if self.text_conditioning not in TEXT_CONDITIONINGS:
            raise WeightinitError(
                f"text_conditioning must be one of {TEXT_CONDITIONINGS}, got {self.text_conditioning!r}"
            )
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise WeightinitError(f"mixed_precision must be auto, no, bf16 or fp16, got {self.mixed_precision!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GeneratorTrainingConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise WeightinitError(f"training config has unknown fields {unknown}")
        # runs saved before the field existed were trained on pooled embeddings
        return cls(**{"text_conditioning": "pooled", **data})


@dataclass
class TrainingData:
    """Normalised blocks of the training concepts and their phrasings' text embeddings."""

    concept_ids: list[str]
    blocks: torch.Tensor  # [C, N, block_size] normalised float32
    valid: torch.Tensor  # [N, block_size] bool, False on padding
    slots: torch.Tensor  # [N] slot of each block
    text: TextEmbedding  # one row per phrasing
    phrasing_start: torch.Tensor  # [C] first phrasing row of each concept
    phrasing_count: torch.Tensor  # [C]
    normalizer: SlotNormalizer
    families: dict[str, int]
    center: torch.Tensor  # [N, block_size] mean normalised block over the training concepts
    prior: RetrievalPrior | None = None
    prior_coef: torch.Tensor | None = None  # [phrasings, R] the prior's coefficients for each phrasing


def load_training_data(zoo, encoder: TextEncoder, config: GeneratorTrainingConfig | None = None) -> TrainingData:
    """Every ``train`` concept of ``zoo`` (a :class:`ZooWeights`), normalised; held-out ones are never read.

    With ``config.prior == "retrieval"`` the retrieval prior is fitted here, and ``blocks`` stay
    relative to the mean: the loop subtracts each phrasing's prior.
    """
    config = config or GeneratorTrainingConfig()
    ids = zoo.ids("train")
    if not ids:
        raise WeightinitError(f"zoo {zoo.folder} has no training concepts")
    layout = zoo.layout
    codec = BlockCodec(layout)
    # Stored dtype per slot (the zoo reads float32; fp16 -> fp32 -> fp16 is exact).
    tensors = [{k: v.to(layout[k].torch_dtype) for k, v in zoo.concept(cid).items()} for cid in ids]
    normalizer = SlotNormalizer.fit(layout, tensors)
    blocks = torch.stack([normalizer.normalize(codec.encode(t, dtype=torch.float32)) for t in tensors])
    del tensors
    center = blocks.mean(0)
    blocks -= center
    texts, start, count, families = [], [], [], {}
    for cid in ids:
        record = zoo.record(cid)
        phrasings = list(dict.fromkeys([record.text, *record.phrasings]))
        start.append(len(texts))
        count.append(len(phrasings))
        texts.extend(phrasings)
        families[record.family] = families.get(record.family, 0) + 1
    text = encoder.encode(texts, conditioning=config.text_conditioning)
    owner = torch.repeat_interleave(torch.arange(len(ids)), torch.tensor(count))
    prior = prior_coef = None
    if config.prior == "retrieval" and len(ids) > 1:
        prior = RetrievalPrior.fit(
            blocks,
            text.pooled,
            owner,
            rank=config.prior_rank,
            temperature=config.prior_temperature,
            concept_ids=tuple(ids),
        )
        prior_coef = prior.coefficients(text.pooled, exclude=owner if config.prior_target == "leave_one_out" else None)
    return TrainingData(
        concept_ids=ids,
        blocks=blocks,
        valid=codec.index.valid_mask(layout.block_size),
        slots=codec.index.slot,
        text=text,
        phrasing_start=torch.tensor(start),
        phrasing_count=torch.tensor(count),
        normalizer=normalizer,
        families=families,
        center=center,
        prior=prior,
        prior_coef=prior_coef,
    )


def _lr_factor(step: int, config: GeneratorTrainingConfig) -> float:
    """Linear warm-up, then cosine decay to 10% at ``config.steps``."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


# --- checkpoints (safetensors + JSON, never pickle) ------------------------------------------
def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{pid}.{key}"] = value.detach().cpu()
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_state(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    for key, value in meta.get("scalars", {}).items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def checkpoints(out_dir: Path) -> list[Path]:
    """Complete checkpoints (with ``state.json``), oldest first."""
    root = Path(out_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step-*") if (p / "state.json").is_file())


def _rng_state(generator: torch.Generator) -> dict[str, torch.Tensor]:
    out = {"data": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state()
    return out


def _restore_rng(state: dict[str, torch.Tensor], generator: torch.Generator) -> None:
    generator.set_state(state["data"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


# --- the loop, in named steps -----------------------------------------------------------------
def _accelerator(device: str, config: GeneratorTrainingConfig):
    """``(accelerator, precision)``: the process's device (``auto``, ``cpu`` or ``cuda``) and autocast."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if device.startswith("cuda:"):
        raise WeightinitError(
            f"train takes device auto, cpu or cuda, not {device!r}; choose the GPUs with CUDA_VISIBLE_DEVICES"
        )
    run_device = select_device(device)
    mixed = config.mixed_precision
    if mixed != "fp16":
        mixed = resolve_mixed_precision(mixed, run_device)
    if AcceleratorState._shared_state and AcceleratorState._shared_state.get("_mixed_precision") != mixed:
        # accelerate keeps one state per process and refuses another precision; a second run in the same
        # process (a notebook, the tests) may ask for one. The process group (PartialState) is kept.
        AcceleratorState._reset_state()
    return Accelerator(cpu=run_device.type == "cpu", mixed_precision=mixed), mixed


def _new_denoiser(config: GeneratorTrainingConfig, layout, encoder: TextEncoder) -> torch.nn.Module:
    """The denoiser for ``layout``'s blocks, initialised from ``config.seed``."""
    kwargs = dict(config.denoiser_kwargs)
    kwargs.update(
        block_size=layout.block_size,
        num_blocks=layout.num_blocks,
        text_dim=encoder.dim,
        num_slots=len(layout),
        slot_embedding=config.slot_embedding,
        use_text=not config.no_text,
        use_block_index=not config.no_block_index,
    )
    torch.manual_seed(config.seed)
    return build_denoiser(config.denoiser, **kwargs)


@dataclass
class _Progress:
    """Where a run stands: steps done, seconds of earlier runs, the last loss."""

    step: int = 0
    elapsed: float = 0.0
    loss: float = float("nan")


def _resume(
    latest: Path,
    config: GeneratorTrainingConfig,
    layout,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data_gen: torch.Generator,
    process_index: int,
) -> _Progress:
    """Load checkpoint ``latest`` into the model, optimizer and this process's data stream."""
    state = json.loads((latest / "state.json").read_text())
    saved = GeneratorTrainingConfig.from_dict(state["config"]).to_dict()
    changed = sorted(k for k, v in config.to_dict().items() if saved.get(k) != v and k not in RESUMABLE_CHANGES)
    if changed:
        raise WeightinitError(f"cannot resume {latest.name} with another config: {', '.join(changed)} differ")
    if state.get("zoo_fingerprint") != layout.fingerprint:
        raise WeightinitError(
            f"cannot resume: {latest.name} was trained on a zoo with layout {state.get('zoo_fingerprint')}"
        )
    model.load_state_dict(read_safetensors(latest / "model.safetensors")[0])
    opt_tensors, _ = read_safetensors(latest / "optimizer.safetensors")
    optimizer.load_state_dict(_optimizer_state(opt_tensors, json.loads((latest / "optimizer.json").read_text())))
    rng_file = latest / f"rng_{process_index}.safetensors"
    if rng_file.is_file():
        _restore_rng(read_safetensors(rng_file)[0], data_gen)
    return _Progress(int(state["step"]), float(state.get("seconds", 0.0)), float(state.get("loss", float("nan"))))


@dataclass
class _DeviceData:
    """The training data on the training device, moved once."""

    blocks: torch.Tensor
    valid: torch.Tensor
    slots: torch.Tensor
    tokens: torch.Tensor
    mask: torch.Tensor
    alphas: torch.Tensor
    prior: RetrievalPrior | None
    prior_coef: torch.Tensor | None

    @classmethod
    def of(cls, data: TrainingData, scheduler, device) -> _DeviceData:
        prior = prior_coef = None
        if data.prior is not None:  # a float32 copy of the basis on the device, converted once, not every step
            prior = dataclasses.replace(data.prior, basis=data.prior.basis.to(device, torch.float32))
            prior_coef = data.prior_coef.to(device)
        return cls(
            blocks=data.blocks.to(device),
            valid=data.valid.to(device),
            slots=data.slots.to(device),
            tokens=data.text.tokens.to(device),
            mask=data.text.mask.to(device),
            alphas=scheduler.alphas_cumprod.to(device),
            prior=prior,
            prior_coef=prior_coef,
        )


def _batch_loss(
    model, accelerator, data: TrainingData, on: _DeviceData, config: GeneratorTrainingConfig, data_gen
) -> torch.Tensor:
    """One batch, drawn from ``data_gen``: (concept, block, phrasing, timestep, text dropout), noised;
    the masked MSE of the denoiser's prediction."""
    device = accelerator.device
    n_concepts, n_blocks, bs = on.blocks.shape
    b = config.batch_size
    c = torch.randint(0, n_concepts, (b,), generator=data_gen)
    j = torch.randint(0, n_blocks, (b,), generator=data_gen)
    p = data.phrasing_start[c] + (torch.rand(b, generator=data_gen) * data.phrasing_count[c]).long()
    t = torch.randint(0, config.num_train_timesteps, (b,), generator=data_gen)
    t = torch.where(
        torch.rand(b, generator=data_gen) < config.last_timestep_fraction, config.num_train_timesteps - 1, t
    )
    drop = torch.rand(b, generator=data_gen) < config.cond_dropout
    noise = torch.randn(b, bs, generator=data_gen).to(device)
    c, j, p, t, drop = c.to(device), j.to(device), p.to(device), t.to(device), drop.to(device)
    x0 = on.blocks[c, j]
    if on.prior is not None:
        x0 = x0 - on.prior.blocks_at(on.prior_coef[p], j)
    a = on.alphas[t].unsqueeze(1)
    noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
    if config.prediction_type == "sample":
        target = x0
    elif config.prediction_type == "epsilon":
        target = noise
    else:
        target = a.sqrt() * noise - (1 - a).sqrt() * x0
    text_mask = on.mask[p] * (~drop).unsqueeze(1)
    with accelerator.autocast():
        pred = model(noisy, t, j, on.tokens[p], text_mask, on.slots[j])
    m = on.valid[j]
    return ((pred.float() - target) ** 2 * m).sum() / m.sum()


def _save_checkpoint(
    out_dir: Path, accelerator, model, optimizer, data_gen, config, layout, at_step: int, seconds: float, loss: float
) -> None:
    """``out_dir/checkpoints/step-NNNNNNN``: written to a temporary folder by every process, then renamed."""
    main = accelerator.is_main_process
    root = out_dir / CHECKPOINT_DIR
    tmp = root / f".step-{at_step:07d}.tmp"
    final = root / f"step-{at_step:07d}"
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    save_safetensors(tmp / f"rng_{accelerator.process_index}.safetensors", _rng_state(data_gen))
    accelerator.wait_for_everyone()
    if main:
        save_safetensors(tmp / "model.safetensors", accelerator.unwrap_model(model).state_dict())
        opt_tensors, opt_meta = _optimizer_tensors(optimizer)
        save_safetensors(tmp / "optimizer.safetensors", opt_tensors)
        atomic_write_json(tmp / "optimizer.json", opt_meta)
        atomic_write_json(
            tmp / "state.json",
            {
                "step": at_step,
                "seconds": seconds,
                "loss": loss,
                "config": config.to_dict(),
                "zoo_fingerprint": layout.fingerprint,
            },
        )
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in checkpoints(out_dir)[: -config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def _progress_bar(total: int, completed: int):
    """A rich progress bar, started: ``(bar, task)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
    )
    task = bar.add_task("train", total=total, completed=completed, info="")
    bar.start()
    return bar, task


def _finished_generator(
    denoiser, scheduler, zoo, data: TrainingData, encoder: TextEncoder, config, progress: _Progress, seconds, processes
) -> WeightGenerator:
    """The trained :class:`WeightGenerator`, with the zoo's and the run's summaries."""
    zoo_summary = {
        "train_concepts": len(data.concept_ids),
        "heldout_concepts": len(zoo.ids("heldout")),
        "families": [f"{k} ({v})" for k, v in sorted(data.families.items())],
        "zoo_layout": zoo.layout.fingerprint,
    }
    training = {
        **{k: v for k, v in config.to_dict().items() if k not in ("save_every", "log_every", "keep_checkpoints")},
        "steps_done": progress.step,
        "seconds": round(seconds, 1),
        "steps_per_s": round(progress.step / max(seconds, 1e-9), 2),
        "final_loss": progress.loss,
        "parameters": count_parameters(denoiser),
        "processes": processes,
    }
    text_config = TextEncoderConfig(encoder.reference, config.text_max_length, config.text_conditioning)
    generator_config = GeneratorConfig(
        zoo.layout.fingerprint,
        zoo.config.arch,
        text_encoder=text_config,
        zoo=zoo.config,
        zoo_summary=zoo_summary,
        training=training,
    )
    generator = WeightGenerator(
        denoiser,
        {"_class_name": "DDPMScheduler", **dict(scheduler.config)},
        zoo.layout,
        data.normalizer,
        generator_config,
        base_state=zoo.base_state(),
        center=data.center,
        prior=data.prior,
    )
    generator._text_encoder = encoder
    return generator


def train_generator(
    zoo_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: GeneratorTrainingConfig | None = None,
    resume: bool = False,
    *,
    log: Callable[[str], None] | None = None,
    progress: bool = True,
    stop_after: int | None = None,
    device: str = "auto",
):
    """Train a generator on the zoo in ``zoo_dir``; write checkpoints and the generator to ``out_dir``.

    ``device`` (``auto``, ``cpu``, ``cuda``; runtime only, never saved) chooses the CPU or the
    GPUs; under ``accelerate launch`` / ``torchrun`` each process takes ``LOCAL_RANK``'s GPU
    (one process per GPU: DDP's NCCL refuses two ranks on one device). ``config.mixed_precision``
    ``auto`` is bf16 autocast on a CUDA device with bf16 support, else none; it may change on resume.

    Returns the :class:`~weightinit.generator.model.WeightGenerator` (on every process).
    ``stop_after`` ends this call after that many steps of this run without saving the
    generator (tests use it to simulate a killed run).
    """
    config = config or GeneratorTrainingConfig()
    out_dir = Path(out_dir)
    say = log or (lambda s: None)
    accelerator, mixed = _accelerator(device, config)
    main = accelerator.is_main_process

    existing = checkpoints(out_dir)
    if existing and not resume:
        raise WeightinitError(
            f"{out_dir} already holds training checkpoints; pass --resume to continue, or use another folder"
        )

    zoo = ZooWeights(zoo_dir)
    encoder = shared_text_encoder(config.text_encoder, config.text_max_length)
    data = load_training_data(zoo, encoder, config)
    layout = zoo.layout
    model = _new_denoiser(config, layout, encoder)
    scheduler = make_scheduler(config.num_train_timesteps, config.prediction_type, config.beta_schedule)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    done = _Progress()
    data_gen = torch.Generator().manual_seed(config.seed * 1000 + accelerator.process_index)
    if resume and existing:
        done = _resume(existing[-1], config, layout, model, optimizer, data_gen, accelerator.process_index)
        say(f"resumed from {existing[-1].name} at step {done.step}")

    model, optimizer = accelerator.prepare(model, optimizer)
    on = _DeviceData.of(data, scheduler, accelerator.device)
    n_concepts, n_blocks, bs = on.blocks.shape
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        say(
            f"training {config.denoiser} ({count_parameters(accelerator.unwrap_model(model)):,} parameters) on "
            f"{n_concepts} training concepts x {n_blocks} blocks of {bs}, {len(data.text)} phrasings; "
            + (
                f"retrieval prior rank {on.prior.rank}, temperature {on.prior.temperature}; "
                if on.prior is not None
                else ""
            )
            + f"{config.steps} steps of {config.batch_size} on {accelerator.device} "
            f"({accelerator.num_processes} process(es), precision {mixed})"
        )

    bar, task = _progress_bar(config.steps, done.step) if main and progress else (None, None)
    log_file = open(out_dir / LOG_NAME, "a") if main else None
    model.train()
    # a resume of a finished run trains no step: the summary keeps the last loss
    run_steps, t0, window_t, window_loss, window_n = 0, time.perf_counter(), time.perf_counter(), 0.0, 0
    try:
        while done.step < config.steps and (stop_after is None or run_steps < stop_after):
            for group in optimizer.param_groups:
                group["lr"] = config.lr * _lr_factor(done.step, config)
            loss = _batch_loss(model, accelerator, data, on, config, data_gen)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            done.step += 1
            run_steps += 1
            done.loss = float(loss.detach())
            window_loss += done.loss
            window_n += 1
            if done.step % config.log_every == 0 or done.step == config.steps:
                now = time.perf_counter()
                rate = window_n / max(now - window_t, 1e-9)
                record = {
                    "step": done.step,
                    "loss": window_loss / window_n,
                    "lr": config.lr * _lr_factor(done.step - 1, config),
                    "steps_per_s": rate,
                    "seconds": done.elapsed + now - t0,
                }
                if log_file is not None:
                    log_file.write(json.dumps(record) + "\n")
                    log_file.flush()
                if bar is not None:
                    bar.update(task, completed=done.step, info=f"loss {record['loss']:.4f}  {rate:.1f} steps/s")
                elif main and log is not None:
                    say(f"step {done.step}/{config.steps} loss {record['loss']:.4f} ({rate:.1f} steps/s)")
                window_t, window_loss, window_n = now, 0.0, 0
            if done.step % config.save_every == 0 or done.step == config.steps:
                seconds = done.elapsed + time.perf_counter() - t0
                _save_checkpoint(
                    out_dir, accelerator, model, optimizer, data_gen, config, layout, done.step, seconds, done.loss
                )
    finally:
        if bar is not None:
            bar.stop()
        if log_file is not None:
            log_file.close()

    seconds = done.elapsed + time.perf_counter() - t0
    denoiser = accelerator.unwrap_model(model).float().eval()
    generator = _finished_generator(
        denoiser, scheduler, zoo, data, encoder, config, done, seconds, accelerator.num_processes
    )
    if done.step >= config.steps and config.pair_start and generator.prior is not None:
        generator.pair_start = fit_pair_start(generator, zoo)
        say(f"learned the pair start from {len(generator.pair_start.names)} training concepts")
    if done.step >= config.steps:
        if main:
            generator.save_pretrained(out_dir)
            say(f"saved the generator to {out_dir} ({done.step} steps, {seconds:.0f} s)")
        accelerator.wait_for_everyone()
    return generator
