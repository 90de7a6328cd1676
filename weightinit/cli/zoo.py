"""``weightinit zoo``: build and verify weight zoos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from weightinit.cli.config import ConfigOptions, build_config, config_option
from weightinit.zoo.manifest import ZooConfig

app = typer.Typer(
    help="Build and verify weight zoos (a base generator plus one weight set per concept).", no_args_is_help=True
)

DEFAULT_ZOO = "zoo"


#: ``zoo build``'s options of ZooConfig fields: type, help and default from the field.
ZOO = ConfigOptions(
    ZooConfig,
    lora_rank={"decls": ("--lora-rank", "--rank")},
    shared_data={"decls": ("--shared-data/--per-concept-data",)},
    lora_train_a={"decls": ("--lora-train-a/--lora-freeze-a",)},
)


#: The heavy commands' runtime options, declared once (``zoo build`` and ``train`` use these).
#: Neither is part of a zoo's or a generator's config: a build started on one device resumes on another.
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        help="auto (CUDA when visible, else CPU), cpu, cuda or cuda:N. Under torchrun/accelerate each process takes "
        "LOCAL_RANK's GPU; more processes than GPUs share them round-robin.",
    ),
]
MixedPrecisionOption = Annotated[
    str,
    typer.Option("--mixed-precision", help="auto (bf16 autocast on a CUDA device with bf16, else none), no or bf16."),
]


def load_photos(images: Path | None, size: int):
    """The photos a zoo of ``size``-px pairs crops from: the user's folder (each photo at least ``size`` px),
    or the bundled photos, upscaled (bicubic) when they are smaller than ``size`` (they are 256 x 170 px)."""
    import numpy as np
    from PIL import Image

    from weightinit.images import Photo, PhotoSet

    if images is not None:
        return PhotoSet.load(images, min_size=size)
    bundled = PhotoSet.bundled(min_size=min(size, 64))
    smallest = min(min(p.pixels.shape[:2]) for p in bundled.photos)
    if smallest >= size:
        return PhotoSet.bundled(min_size=size)
    scale = size / smallest
    upscaled = []
    for photo in bundled.photos:
        h, w = photo.pixels.shape[:2]
        new = (max(size, round(w * scale)), max(size, round(h * scale)))
        pil = Image.fromarray((np.clip(photo.pixels, 0, 1) * 255.0 + 0.5).astype(np.uint8)).resize(new, Image.BICUBIC)
        upscaled.append(Photo(photo.name, np.asarray(pil, dtype=np.float32) / 255.0))
    typer.echo(
        f"note: the bundled photos ({smallest} px on the short side) are upscaled {scale:.2f}x for {size}-px crops; "
        "pass --images DIR with photos of at least that size for sharper pairs",
        err=True,
    )
    return PhotoSet(upscaled, source=f"the bundled photos, upscaled {scale:.2f}x", min_size=size)


@app.command()
def build(
    ctx: typer.Context,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Zoo folder (created; an existing build is resumed).")
    ] = Path(DEFAULT_ZOO),
    config_file: config_option("ZooConfig") = None,
    arch: ZOO.arch = ZOO.default.arch,
    representation: ZOO.representation = ZOO.default.representation,
    lora_rank: ZOO.lora_rank = ZOO.default.lora_rank,
    base_steps: ZOO.base_steps = ZOO.default.base_steps,
    base_lr: ZOO.base_lr = ZOO.default.base_lr,
    concept_steps: ZOO.concept_steps = ZOO.default.concept_steps,
    concept_lr: ZOO.concept_lr = ZOO.default.concept_lr,
    pool_size: ZOO.pool_size = ZOO.default.pool_size,
    test_pairs: ZOO.test_pairs = ZOO.default.test_pairs,
    image_size: ZOO.image_size = ZOO.default.image_size,
    batch_size: ZOO.batch_size = ZOO.default.batch_size,
    split: Annotated[str | None, typer.Option(help="Only concepts of this split: train or heldout.")] = None,
    concepts: Annotated[str | None, typer.Option(help="Only these concept ids, comma-separated.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many concepts (after filtering).")] = None,
    images: Annotated[
        Path | None,
        typer.Option(
            help="A folder of your own photos instead of the bundled ones "
            "(what the pairs crop, and what --pairs editor edits)."
        ),
    ] = None,
    pairs: ZOO.pairs = ZOO.default.pairs,
    editor: ZOO.editor = ZOO.default.editor,
    editor_size: ZOO.editor_size = ZOO.default.editor_size,
    editor_steps: ZOO.editor_steps = ZOO.default.editor_steps,
    seed: ZOO.seed = ZOO.default.seed,
    shared_data: ZOO.shared_data = ZOO.default.shared_data,
    lora_train_a: ZOO.lora_train_a = ZOO.default.lora_train_a,
    threads: Annotated[int, typer.Option(help="Torch threads per process.")] = 1,
    device: DeviceOption = "auto",
    mixed_precision: MixedPrecisionOption = "auto",
) -> None:
    """Build (or resume) a zoo. Many processes: `torchrun --nproc_per_node N -m weightinit zoo build ...` (CPU or GPU),
    or `accelerate launch --multi_gpu -m weightinit zoo build ...` on GPUs.

    Several processes may share a GPU: `torchrun --nproc_per_node 4` on one GPU trains four concepts on it at once.
    Device and precision are not part of the zoo (not in build.json): a build resumes on any device.

    Example: weightinit zoo build --out zoo --split train --limit 4 --base-steps 50 --concept-steps 20

    The paper's data path (a GPU and hub access): weightinit zoo build --pairs editor
    --editor timbrooks/instruct-pix2pix --images DIR
    """
    from datetime import timedelta

    import torch
    from accelerate import PartialState

    from weightinit.concepts.catalog import default_catalog
    from weightinit.pairs import load_editor
    from weightinit.recipe import resolve_mixed_precision, select_device
    from weightinit.zoo.build import ZooBuilder

    torch.set_num_threads(threads)
    options = {name: value for name, value in locals().items() if name in ZooConfig.__dataclass_fields__}
    config = build_config(ZooConfig, ctx, config_file, options)
    catalog = default_catalog()
    chosen = select_concepts(catalog, split=split, ids=concepts, limit=limit)
    resolve_mixed_precision(mixed_precision, "cpu")  # a bad value fails before any process group starts
    select_device(device, 0)
    photos = load_photos(images, config.image_size)
    # The processes only meet at barriers, so they use gloo (cpu=True), which lets several share one GPU (NCCL
    # refuses two ranks on one device); the training device is chosen per process below.
    # Other processes wait at a barrier while process 0 trains the base: allow hours, not the default 30 min.
    state = PartialState(cpu=True, timeout=timedelta(hours=12))
    run_device = select_device(device, state.local_process_index)
    # Loaded before the build touches the folder: a model that does not load leaves nothing behind.
    pipeline = load_editor(config.editor, str(run_device)) if config.pairs == "editor" else None
    builder = ZooBuilder(
        out,
        config,
        chosen,
        rank=state.process_index,
        world_size=state.num_processes,
        barrier=state.wait_for_everyone,
        photos=photos,
        device=run_device,
        mixed_precision=mixed_precision,
        editor=pipeline,
    )
    if state.process_index == 0:
        typer.echo(
            f"building on {run_device} ({state.num_processes} process(es), {builder.mixed_precision} autocast)",
            err=True,
        )
    manifest = builder.run()
    if manifest is not None:
        typer.echo(f"zoo {out}: {len(manifest.concepts)} concepts, layout {manifest.layout_fingerprint}")


def select_concepts(catalog, *, split: str | None = None, ids: str | None = None, limit: int | None = None) -> list:
    from weightinit.errors import WeightinitError
    from weightinit.zoo.build import interleave_splits

    if split not in (None, "train", "heldout"):
        raise WeightinitError(f"--split must be train or heldout, got {split!r}")
    if ids:
        chosen = [catalog.get(i.strip()) for i in ids.split(",") if i.strip()]
    else:
        chosen = interleave_splits(catalog.by_split("train"), catalog.by_split("heldout"))
        if split:
            chosen = [c for c in chosen if c.split == split]
    if limit is not None:
        chosen = chosen[:limit]
    if not chosen:
        raise WeightinitError("no concepts selected")
    return chosen


@app.command()
def verify(folder: Annotated[Path, typer.Argument(help="The zoo folder.")] = Path(DEFAULT_ZOO)) -> None:
    """Check every file of a zoo against its manifest; exit 1 on any mismatch."""
    from weightinit.errors import WeightinitError
    from weightinit.zoo.build import verify_zoo
    from weightinit.zoo.manifest import ZooManifest

    problems = verify_zoo(folder)
    if problems:
        for p in problems:
            typer.echo(p, err=True)
        raise WeightinitError(f"zoo {folder} failed verification: {len(problems)} problem(s), first: {problems[0]}")
    manifest = ZooManifest.load(folder)
    typer.echo(f"zoo {folder}: base and {len(manifest.concepts)} concepts verified")


@app.command()
def show(
    folder: Annotated[Path, typer.Argument(help="The zoo folder.")] = Path(DEFAULT_ZOO),
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Summarise a zoo: concepts, seconds, and PSNR of the base and of each concept model."""
    import json
    import statistics

    from weightinit.zoo.manifest import ZooManifest

    manifest = ZooManifest.load(folder)
    rows = [
        {
            "id": r.id,
            "split": r.split,
            "family": r.family,
            "seconds": r.seconds,
            "psnr_base": round(r.metrics_base["psnr"], 3),
            "psnr_trained": round(r.metrics_trained["psnr"], 3),
            "psnr_trivial": round(r.trivial.get("trivial_psnr", float("nan")), 3),
        }
        for r in manifest.concepts.values()
    ]
    gains = [r["psnr_trained"] - r["psnr_base"] for r in rows]
    summary = {
        "concepts": len(rows),
        "train": sum(r["split"] == "train" for r in rows),
        "heldout": sum(r["split"] == "heldout" for r in rows),
        "median_psnr_gain_over_base": round(statistics.median(gains), 3) if gains else None,
        "median_seconds": round(statistics.median(r["seconds"] for r in rows), 2) if rows else None,
        "config": manifest.config.to_dict(),
    }
    if json_out:
        typer.echo(json.dumps({"summary": summary, "concepts": rows}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"zoo {folder}")
    for col in ("id", "split", "family", "seconds", "psnr_base", "psnr_trained", "psnr_trivial"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            *(str(r[c]) for c in ("id", "split", "family", "seconds", "psnr_base", "psnr_trained", "psnr_trivial"))
        )
    console = Console()
    console.print(table)
    console.print(summary)
