"""``weightinit train``: train the weight generator on a zoo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from weightinit.cli.config import ConfigOptions, build_config, config_option, optional_float, optional_int
from weightinit.cli.zoo import DeviceOption, MixedPrecisionOption
from weightinit.generator.training import GeneratorTrainingConfig


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


#: ``train``'s options of GeneratorTrainingConfig fields: type, help and default from the field.
TRAIN = ConfigOptions(
    GeneratorTrainingConfig,
    denoiser_kwargs={
        "decls": ("--denoiser-kwargs", "--denoiser-options"),
        "metavar": "JSON",
        "parser": _json_object,
        "show_default": False,
    },
    prior_rank={"metavar": "INT|all", "parser": optional_int},
    prior_temperature={"metavar": "FLOAT|none", "parser": optional_float},
    pair_start={"decls": ("--pair-start/--no-pair-start",)},
    no_text={"decls": ("--no-text",)},
    no_block_index={"decls": ("--no-block-index",)},
    slot_embedding={"decls": ("--slot-embedding",)},
)


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
    denoiser: TRAIN.denoiser = TRAIN.default.denoiser,
    denoiser_kwargs: TRAIN.denoiser_kwargs = TRAIN.default.denoiser_kwargs,
    steps: TRAIN.steps = TRAIN.default.steps,
    batch_size: TRAIN.batch_size = TRAIN.default.batch_size,
    lr: TRAIN.lr = TRAIN.default.lr,
    prediction_type: TRAIN.prediction_type = TRAIN.default.prediction_type,
    cond_dropout: TRAIN.cond_dropout = TRAIN.default.cond_dropout,
    prior: TRAIN.prior = TRAIN.default.prior,
    prior_rank: TRAIN.prior_rank = TRAIN.default.prior_rank,
    prior_temperature: TRAIN.prior_temperature = TRAIN.default.prior_temperature,
    prior_target: TRAIN.prior_target = TRAIN.default.prior_target,
    pair_start: TRAIN.pair_start = TRAIN.default.pair_start,
    no_text: TRAIN.no_text = TRAIN.default.no_text,
    no_block_index: TRAIN.no_block_index = TRAIN.default.no_block_index,
    slot_embedding: TRAIN.slot_embedding = TRAIN.default.slot_embedding,
    text_encoder: TRAIN.text_encoder = TRAIN.default.text_encoder,
    seed: TRAIN.seed = TRAIN.default.seed,
    save_every: TRAIN.save_every = TRAIN.default.save_every,
    log_every: TRAIN.log_every = TRAIN.default.log_every,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the newest checkpoint in --out.")] = False,
    threads: Annotated[int, typer.Option(help="Torch threads per process (CPU).")] = 1,
    device: DeviceOption = "auto",
    mixed_precision: MixedPrecisionOption = TRAIN.default.mixed_precision,
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
