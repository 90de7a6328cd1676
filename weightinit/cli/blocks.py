"""``layout``, ``encode``, ``decode`` and ``apply``: a generator's weights as blocks, and back.

Every output is written atomically: when a command fails, no output file exists.
Heavy imports (torch, the adapters) happen inside the commands so ``--help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

ArchOption = Annotated[
    str,
    typer.Option(
        "--arch",
        "-a",
        help="Architecture as ADAPTER:NAME[,key=value...], e.g. pix2pix:unet_256 or "
        "pix2pix:unet_64,ngf=16,norm=instance.",
    ),
]
BlockSizeOption = Annotated[int, typer.Option("--block-size", min=1, help="Values per block.")]


def _check_checkpoint_name(path: Path) -> None:
    """Fail before any work if OUTPUT cannot be a checkpoint (weightinit writes safetensors only)."""
    from weightinit.errors import CheckpointError
    from weightinit.fileio import check_output_path

    check_output_path(path)  # a folder, a path under a file, a read-only folder: before any work
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: weightinit writes checkpoints as .safetensors only")


def _console():
    from rich.console import Console

    return Console(highlight=False)


def _build(arch: str, *, meta: bool = False):
    """``(model, adapter)`` for an arch string; shapes only (every tensor on the meta device) if ``meta``."""
    from weightinit.adapters.base import ArchSpec
    from weightinit.cli.console import plugin_registry

    plugin_registry()
    from weightinit import plugins
    from weightinit.errors import WeightinitError

    spec = ArchSpec.parse(arch)
    adapter = plugins.adapter_for_arch(spec)
    if meta:
        from accelerate import init_empty_weights

        try:
            with init_empty_weights(include_buffers=True):  # every tensor on the meta device: shapes, no memory
                return adapter.build(spec), adapter
        except WeightinitError:
            raise
        except Exception:  # an adapter whose build needs real values: build it for real
            pass
    return adapter.build(spec), adapter


def layout(
    arch: Annotated[str, typer.Argument(help="Architecture as ADAPTER:NAME[,key=value...].", show_default=False)],
    block_size: BlockSizeOption = 256,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print JSON (fingerprint, num_blocks, block_size, num_params, options, note, slots with their native "
            "state-dict keys).",
        ),
    ] = False,
) -> None:
    """Show the block layout of an architecture: slots, blocks per slot, totals and fingerprint.

    --json names each slot's own state-dict key (native) beside its canonical name. Options
    an arch string leaves out take the adapter's defaults: pix2pix:resnet_9blocks is batch norm
    (pix2pix's default), while CycleGAN's reference default is instance norm
    (cyclegan:resnet_9blocks, or pix2pix:resnet_9blocks,norm=instance).

    Example: weightinit layout pix2pix:unet_256 --json
    """
    model, adapter = _build(arch, meta=True)
    lay = adapter.layout(model, block_size=block_size)
    native = {canonical: key for key, canonical in adapter.canonical_names(model)}
    rows = [{**row, "native": native.get(row["name"])} for row in lay.table()]
    summary = {
        "arch": arch,
        "adapter": adapter.name,
        "options": _resolved_options(adapter, arch),
        "note": _norm_note(adapter, arch),
        "fingerprint": lay.fingerprint,
        "block_size": lay.block_size,
        "num_blocks": lay.num_blocks,
        "num_params": lay.num_params,
        "num_slots": len(lay),
        "slots": rows,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    from rich import box
    from rich.table import Table

    table = Table(
        title=f"{arch} ({adapter.name})",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )
    for column, justify in (
        ("#", "right"),
        ("slot", "left"),
        ("shape", "left"),
        ("dtype", "left"),
        ("params", "right"),
        ("blocks", "right"),
        ("first", "right"),
    ):
        table.add_column(column, justify=justify, no_wrap=True)
    for i, row in enumerate(summary["slots"]):
        table.add_row(
            str(i),
            row["name"],
            "x".join(map(str, row["shape"])),
            row["dtype"],
            f"{row['numel']:,}",
            f"{row['blocks']:,}",
            f"{row['first_block']:,}",
        )
    console = _console()
    console.print(table)
    console.print(
        f"{len(lay)} slots, {lay.num_params:,} parameters, {lay.num_blocks:,} blocks of {lay.block_size}, "
        f"fingerprint [bold]{lay.fingerprint}[/]",
        soft_wrap=True,
    )
    if summary["note"]:
        console.print(f"note: {summary['note']}", soft_wrap=True, markup=False)


def _resolved_options(adapter, arch: str) -> dict | None:
    """The full options an arch string asks for, defaults filled in (adapters that have options)."""
    from weightinit.adapters.base import ArchSpec

    return adapter.arch_options(ArchSpec.parse(arch))


def _norm_note(adapter, arch: str) -> str | None:
    """The adapter's note on the arch (pix2pix: its ResNets default to batch norm, which the
    CycleGAN users who build them do not expect)."""
    from weightinit.adapters.base import ArchSpec

    return adapter.arch_note(ArchSpec.parse(arch))


def encode(
    checkpoint: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            show_default=False,
            help="State dict: .safetensors, or .pt/.pth/.bin read with weights_only=True.",
        ),
    ],
    arch: ArchOption,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Blocks file to write (safetensors).", show_default=False)
    ],
    block_size: BlockSizeOption = 256,
) -> None:
    """Encode a checkpoint's generated weights into a blocks file.

    Wrapper prefixes (module., _orig_mod.) are stripped; buffers and non-generated keys are ignored.

    Example: weightinit encode netG.safetensors --arch pix2pix:unet_256 -o netG.blocks.safetensors
    """
    from weightinit.blocksfile import save_blocks
    from weightinit.codec import BlockCodec
    from weightinit.fileio import check_output_path, load_state_dict_file

    check_output_path(output)
    state = load_state_dict_file(checkpoint)
    model, adapter = _build(arch, meta=True)
    lay = adapter.layout(model, block_size=block_size)
    tensors = adapter.to_canonical(model, state)
    blocks = BlockCodec(lay).encode(tensors)
    save_blocks(output, lay, blocks, extra_metadata={"arch": arch, "source": Path(checkpoint).name})
    _console().print(
        f"encoded {lay.num_params:,} parameters ({len(lay)} slots) of {arch} into {lay.num_blocks:,} blocks "
        f"of {lay.block_size} -> {output} (fingerprint {lay.fingerprint})"
    )


def decode(
    blocks: Annotated[Path, typer.Argument(exists=True, dir_okay=False, show_default=False, help="Blocks file.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Checkpoint to write (.safetensors).", show_default=False)
    ],
    arch: Annotated[
        str | None,
        typer.Option(
            "--arch", "-a", help="Write the architecture's native keys instead of canonical names.", show_default=False
        ),
    ] = None,
) -> None:
    """Decode a blocks file into a safetensors checkpoint of the generated tensors.

    With --arch the keys are the model's own, so model.load_state_dict(state, strict=False) loads
    them (buffers are not generated; use `weightinit apply` for a complete checkpoint).

    Example: weightinit decode netG.blocks.safetensors --arch pix2pix:unet_256 -o netG.safetensors
    """
    from weightinit.blocksfile import load_blocks
    from weightinit.codec import BlockCodec
    from weightinit.fileio import save_state_dict_file

    _check_checkpoint_name(output)
    bf = load_blocks(blocks)
    tensors = BlockCodec(bf.layout).decode(bf.blocks)
    metadata = {"weightinit.fingerprint": bf.layout.fingerprint, "weightinit.keys": "canonical"}
    if arch is not None:
        model, adapter = _build(arch, meta=True)
        adapter.layout(model, block_size=bf.layout.block_size).check_same(
            bf.layout, what=f"blocks in {blocks}", expected_name=f"{arch}"
        )
        tensors = adapter.from_canonical(model, tensors)
        metadata.update({"weightinit.keys": "native", "weightinit.arch": arch})
    save_state_dict_file(output, tensors, metadata)
    _console().print(f"decoded {len(tensors)} tensors ({bf.layout.num_params:,} values) -> {output}")


def apply(
    blocks: Annotated[Path, typer.Argument(exists=True, dir_okay=False, show_default=False, help="Blocks file.")],
    checkpoint: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            show_default=False,
            help="The model's checkpoint (safetensors, or .pt/.pth/.bin read with weights_only=True).",
        ),
    ],
    arch: ArchOption,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Checkpoint to write (.safetensors).", show_default=False)
    ],
) -> None:
    """Write a blocks file into a checkpoint: the full state dict (buffers included) goes to OUTPUT.

    Example: weightinit apply concept.blocks.safetensors netG.safetensors --arch pix2pix:unet_256
    -o netG_init.safetensors
    """
    from weightinit.adapters.base import strip_wrapper_prefixes
    from weightinit.apply import apply_blocks
    from weightinit.blocksfile import load_blocks
    from weightinit.errors import CheckpointError
    from weightinit.fileio import load_state_dict_file, save_state_dict_file

    _check_checkpoint_name(output)
    bf = load_blocks(blocks)

    state = {strip_wrapper_prefixes(k): v for k, v in load_state_dict_file(checkpoint).items()}
    model, adapter = _build(arch)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        detail = " ".join(str(exc).split())
        raise CheckpointError(f"{checkpoint} does not fit {arch}: {detail}") from None
    if result.missing_keys or result.unexpected_keys:
        parts = []
        if result.missing_keys:
            parts.append(f"{len(result.missing_keys)} missing (first {result.missing_keys[0]})")
        if result.unexpected_keys:
            parts.append(f"{len(result.unexpected_keys)} unexpected (first {result.unexpected_keys[0]})")
        raise CheckpointError(f"{checkpoint} does not fit {arch}: " + "; ".join(parts))
    report = apply_blocks(model, bf, adapter=adapter)
    save_state_dict_file(
        output, model.state_dict(), {"weightinit.fingerprint": bf.layout.fingerprint, "weightinit.arch": arch}
    )
    _console().print(
        f"set {report.values_set:,} values in {len(report.parameters_set)} parameters "
        f"({len(report.parameters_left_alone)} left alone) -> {output}"
    )
