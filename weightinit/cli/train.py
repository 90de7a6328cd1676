"""``weightinit train``: train the weight generator on a zoo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from weightinit.cli.config import build_config, config_option, default, optional_float, optional_int
from weightinit.cli.zoo import DeviceOption, MixedPrecisionOption
from weightinit.generator.training import GeneratorTrainingConfig


def _cfg(name: str):
    """The default of GeneratorTrainingConfig's field ``name``: ``train``'s options default to the config's."""
    return default(GeneratorTrainingConfig, name)


#: ``denoiser_kwargs``'s default (a ``default_factory``): read once, as ruff's B008 asks of a mutable default.
_DENOISER_KWARGS = _cfg("denoiser_kwargs")


def _json_object(value):
    """``--denoiser-kwargs``: a JSON object (a dict passes through: the default)."""
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise typer.BadParameter("must be a JSON object")
    return parsed


def train(
    ctx: typer.Context,
    zoo: Annotated[Path, typer.Option("--zoo", help="A built zoo folder (`weightinit zoo build`).")],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Generator folder: checkpoints, train_log.jsonl and, at the end, the generator."
        ),
    ],
    config_file: config_option("GeneratorTrainingConfig") = None,
    denoiser: Annotated[
        str, typer.Option(help="Denoiser: 'mlp' (fast on CPUs, the default) or 'unet1d' (the paper's 1-D UNet).")
    ] = _cfg("denoiser"),
    denoiser_kwargs: Annotated[
        dict,
        typer.Option(
            "--denoiser-kwargs",
            "--denoiser-options",
            metavar="JSON",
            parser=_json_object,
            show_default=False,
            help="Denoiser constructor options as a JSON object, e.g. '{\"hidden_dim\": 384}' (default: none).",
        ),
    ] = _DENOISER_KWARGS,
    steps: Annotated[
        int, typer.Option(help="Optimizer steps in all (a resumed run counts the steps already done).")
    ] = _cfg("steps"),
    batch_size: Annotated[int, typer.Option(help="Blocks per step (per process).")] = _cfg("batch_size"),
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW; warm-up then cosine to 10%).")] = _cfg("lr"),
    prediction_type: Annotated[
        str, typer.Option(help="What the denoiser predicts: sample (one-step friendly), epsilon or v_prediction.")
    ] = _cfg("prediction_type"),
    cond_dropout: Annotated[
        float, typer.Option(help="Probability of dropping the text (classifier-free guidance).")
    ] = _cfg("cond_dropout"),
    prior: Annotated[
        str,
        typer.Option(
            help="What the denoiser learns differences to: 'retrieval' (a text-similarity blend of the training concepts) or 'mean' (the zoo's mean block, the paper's setting)."
        ),
    ] = _cfg("prior"),
    prior_rank: Annotated[
        int | None,
        typer.Option(
            metavar="INT|all",
            parser=optional_int,
            help="Principal components kept of the training concepts for the retrieval prior; 'all' (the default) keeps every one, best measured on training concepts (experiments/prior_rank.py in the source repository).",
        ),
    ] = _cfg("prior_rank"),
    prior_temperature: Annotated[
        float | None,
        typer.Option(
            metavar="FLOAT|none",
            parser=optional_float,
            help="Softmax temperature of the retrieval prior (0.01 measured best on training concepts by experiments/prior_temperature.py in the source repository); 'none' chooses it by leave-one-concept-out error in weight space.",
        ),
    ] = _cfg("prior_temperature"),
    prior_target: Annotated[
        str,
        typer.Option(
            help="What the denoiser corrects: 'self' (each phrasing's blend with its own concept in it) or 'leave_one_out' (the blend of the other concepts, as a held-out concept sees it)."
        ),
    ] = _cfg("prior_target"),
    no_text: Annotated[bool, typer.Option("--no-text", help="Ablation: no text condition.")] = _cfg("no_text"),
    no_block_index: Annotated[
        bool, typer.Option("--no-block-index", help="Ablation: no block-index condition.")
    ] = _cfg("no_block_index"),
    slot_embedding: Annotated[
        bool, typer.Option("--slot-embedding", help="Ablation: add a per-slot (layer) embedding.")
    ] = _cfg("slot_embedding"),
    text_encoder: Annotated[str, typer.Option(help="Text encoder: the bundled default, a folder or a hub id.")] = _cfg(
        "text_encoder"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the model init and the data order.")] = _cfg("seed"),
    save_every: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = _cfg("save_every"),
    log_every: Annotated[int, typer.Option(help="Log the loss every N steps.")] = _cfg("log_every"),
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the newest checkpoint in --out.")] = False,
    threads: Annotated[int, typer.Option(help="Torch threads per process (CPU).")] = 1,
    device: DeviceOption = "auto",
    mixed_precision: MixedPrecisionOption = GeneratorTrainingConfig.mixed_precision,
) -> None:
    """Train the weight generator on a zoo's training concepts (held-out concepts are never read).

    The same command trains on a laptop or on many GPUs:
    `accelerate launch --num_processes 8 -m weightinit train --zoo zoo --out gen` (bf16 on GPUs; one process per GPU).
    A killed run continues with --resume. The loss goes to OUT/train_log.jsonl.

    Example: weightinit train --zoo zoo --out generator --steps 6000
    """
    import torch

    from weightinit.generator.training import train_generator

    torch.set_num_threads(threads)
    options = {name: value for name, value in locals().items() if name in GeneratorTrainingConfig.__dataclass_fields__}
    config = build_config(GeneratorTrainingConfig, ctx, config_file, options)
    train_generator(zoo, out, config, resume=resume, log=lambda s: typer.echo(s, err=True), device=device)
