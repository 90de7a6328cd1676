"""``weightinit concepts``: list the concept catalog and preview a concept's pairs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from weightinit.errors import WeightinitError

app = typer.Typer(
    help="List editing concepts, or preview one's image pairs.\n\n"
    "Examples:\n\n  weightinit concepts --split heldout\n\n  weightinit concepts preview sketch-to-photo -o grid.png",
    no_args_is_help=False,
)


def _catalog():
    from weightinit.concepts import default_catalog

    return default_catalog()


@app.callback(invoke_without_command=True)
def list_concepts(
    ctx: typer.Context,
    split: Annotated[str | None, typer.Option("--split", help="Only this split: train or heldout.")] = None,
    family: Annotated[str | None, typer.Option("--family", help="Only this family (e.g. tone, style).")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (one list of objects) instead of a table.")
    ] = False,
) -> None:
    """List concepts (id, family, split, text, other phrasings)."""
    if ctx.invoked_subcommand is not None:
        return
    if split is not None and split not in ("train", "heldout"):
        raise typer.BadParameter(f"{split!r} is not train or heldout", param_hint="--split")
    catalog = _catalog()
    concepts = catalog.by_split(split) if split else catalog.all()
    if family is not None:
        if family not in catalog.families():
            raise WeightinitError(f"unknown family {family!r}; families: {', '.join(catalog.families())}")
        concepts = [c for c in concepts if c.family == family]
    if as_json:
        typer.echo(json.dumps([c.to_dict() for c in concepts], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(concepts)} concepts")
    for col in ("id", "family", "split", "text", "other phrasings"):
        table.add_column(col, overflow="fold")
    for c in concepts:
        split_label = c.split if c.heldout_kind is None else f"{c.split} ({c.heldout_kind})"
        table.add_row(c.id, c.family, split_label, c.text, "; ".join(c.phrasings[1:]))
    Console().print(table)


def _image_format(path: Path) -> str:
    """The PIL format the file name asks for (x.jpg -> JPEG); an unknown suffix is an error."""
    from PIL import Image

    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise WeightinitError(f"{path}: unknown image format {path.suffix or '(no suffix)'!r}; use .png, .jpg or .webp")
    return fmt


def _write_image_atomic(image, path: Path) -> None:
    """In the format the suffix names, through a temporary file (no partial file on failure)."""
    from weightinit.fileio import atomic_path

    fmt = _image_format(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        image.save(fh, format=fmt)


def preview_grid(inputs, targets, pad: int = 2):
    """A PIL image: one column per pair, input above target, on a white background."""
    import numpy as np
    from PIL import Image

    n, h, w, _ = inputs.shape
    canvas = np.ones((2 * h + 3 * pad, n * (w + pad) + pad, 3), dtype=np.float32)
    for i in range(n):
        x = pad + i * (w + pad)
        canvas[pad : pad + h, x : x + w] = inputs[i]
        canvas[2 * pad + h : 2 * pad + 2 * h, x : x + w] = targets[i]
    return Image.fromarray((np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8))


@app.command("preview")
def preview(
    concept_id: Annotated[str, typer.Argument(metavar="ID", help="Concept id (or one of its phrasings).")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Image to write; the suffix picks the format (.png, .jpg, ...).")
    ],
    n: Annotated[int, typer.Option("--n", min=1, max=64, help="Number of pairs.")] = 6,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the crops and the edit.")] = 0,
    split: Annotated[str, typer.Option("--split", help="Photos to crop from: train or test.")] = "train",
    size: Annotated[int, typer.Option("--size", min=16, help="Crop size in pixels.")] = 64,
    images: Annotated[
        Path | None, typer.Option("--images", help="Your own photos instead of the bundled ones.")
    ] = None,
) -> None:
    """Write a grid of input/target pairs (inputs on the top row, targets below)."""
    from weightinit.fileio import check_output_path
    from weightinit.images import PhotoSet
    from weightinit.pairs import ProceduralPairs

    if split not in ("train", "test"):
        raise typer.BadParameter(f"{split!r} is not train or test", param_hint="--split")
    check_output_path(output)
    _image_format(Path(output))
    concept = _catalog().resolve(concept_id)
    photos = PhotoSet.load(images, min_size=size, require_color=concept.needs_color)
    inputs, targets = ProceduralPairs(concept, photos, size=size).sample_numpy(n, split, seed)
    _write_image_atomic(preview_grid(inputs, targets), Path(output))
    typer.echo(f"wrote {output} ({n} pairs of {concept.id!r}: inputs on top, targets below)")
