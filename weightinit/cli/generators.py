"""``weightinit generators``: the installed generators, the layout each serves, and its reference flags."""

from __future__ import annotations

from typing import Annotated

import typer


def generators(
    extra: Annotated[
        list[str] | None,
        typer.Argument(
            help="More generators to list: folders or hub ids (org/name). `download ORG/NAME ...` fetches hub "
            "generators into the local hub cache instead, for offline use.",
            show_default=False,
        ),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(
            "--arch", help="Only say which generator serves this arch (ADAPTER:NAME[,key=value...]); exit 1 if none."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    readme: Annotated[
        str | None,
        typer.Option(
            "--readme",
            help="Rewrite this file's generated table of generators (between its markers) instead of printing.",
        ),
    ] = None,
) -> None:
    """List the generators installed (the bundled one, those generator packages register, and any named), each
    with its arch, the layout fingerprint of its own network, and the reference pix2pix/CycleGAN train.py flags
    that build it. --arch says which generator serves a network and how (its own, or widened or deepened).
    Reads only their JSON configs, never the weights.

    Examples:

      weightinit generators --arch pix2pix:unet_256 ./my-generator

      weightinit generators download someorg/unet256-generator
    """
    import json

    from weightinit.generators import arch_layout_fingerprint, installed_generators, pick_for_arch

    extra = list(extra or [])
    if extra[:1] == ["download"]:
        _download(extra[1:], json_out)
        return
    if arch is not None:
        fingerprint = arch_layout_fingerprint(arch)
        info, plan = pick_for_arch(arch, extra)  # LayoutMismatch (exit 1) names the arch and why none serves it
        how = "its own network" if plan is None else plan.describe()
        if json_out:
            out = {
                "arch": arch,
                "layout_fingerprint": fingerprint,
                "generator": info.to_dict(),
                "transfer": how,
                "exact": True if plan is None else plan.exact,
            }
            typer.echo(json.dumps(out, indent=2))
        else:
            typer.echo(f"{arch} (layout {fingerprint}): {info.name} ({info.reference}), {how}")
        return
    rows = [g.to_dict(with_layout_file=True) for g in installed_generators(extra)]
    if readme is not None:
        from pathlib import Path

        from weightinit.generators import served_flag_sets, write_readme_table

        write_readme_table(Path(readme), rows, served_flag_sets(extra))
        typer.echo(f"{readme}: table of {len(rows)} generator(s) updated")
        return
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no generators installed; build one with `weightinit zoo build` and `weightinit train`")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="installed generators")
    for col in ("name", "arch", "layout", "reference train.py flags", "where"):
        table.add_column(col, overflow="fold")
    for r in rows:
        flags = " ".join(r["reference_flags"]["args"]) if r["reference_flags"] else f"none: {r['note']}"
        table.add_row(r["name"], r["arch"], r["layout_fingerprint"], flags, r["reference"])
    Console().print(table)


def _download(repo_ids: list[str], json_out: bool) -> None:
    """Fetch hub generators into the hub cache, check each loads, and say where they are."""
    import json

    from weightinit import hub
    from weightinit.errors import WeightinitError
    from weightinit.generators import GeneratorInfo

    if not repo_ids:
        raise WeightinitError("`weightinit generators download` needs one or more hub ids (org/name)")
    rows = []
    for repo_id in repo_ids:
        folder = hub.download(repo_id)
        info = GeneratorInfo(repo_id, kind="extra")
        rows.append({"hub_id": repo_id, "folder": str(folder), "arch": info.arch})
        if not json_out:
            typer.echo(f"{repo_id}: {info.arch}, in the hub cache at {folder}")
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
