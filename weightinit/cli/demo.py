"""``weightinit demo``: the README's main job, offline, in about two minutes on two CPU cores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    generator: Annotated[
        str | None, typer.Option(help="Generator folder or hub id (default: the bundled one).")
    ] = None,
    concept: Annotated[
        str | None, typer.Option(help="A catalog concept id or text (default: a held-out concept).")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for grid.png, psnr_vs_seconds.png and summary.json.")
    ] = Path("demo_out"),
    steps: Annotated[int, typer.Option(help="Fine-tune steps for each run (scratch and generated).")] = 400,
    eval_every: Annotated[int, typer.Option(help="Evaluate on the test pairs every N steps.")] = 25,
    seed: Annotated[int, typer.Option(help="Seed of the scratch init, the generation and the data order.")] = 0,
    threads: Annotated[int | None, typer.Option(help="Torch threads (default: torch's choice, all cores).")] = None,
) -> None:
    """Fine-tune a held-out concept from scratch and from generated weights with the same budget.

    Writes OUT/grid.png (input, scratch, generated before and after fine-tuning, target),
    OUT/psnr_vs_seconds.png and OUT/summary.json, and prints a summary table. Offline.

    Example: weightinit demo --out demo_out
    """
    import torch

    from weightinit.demo import run_demo

    if threads:
        torch.set_num_threads(threads)
    run_demo(generator, concept, out, steps=steps, eval_every=eval_every, seed=seed)
