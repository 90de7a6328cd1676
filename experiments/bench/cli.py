"""The benchmark's command line, outside the installed package: ``python -m experiments.bench``.

    python -m experiments.bench run --zoo zoo --quick       # compare initialisations on held-out concepts
    python -m experiments.bench report --results bench_out  # rewrite docs/BENCHMARKS.md from the runs
    python -m experiments.bench ablations --generator GEN   # train and score the generator ablations

Run from a checkout of the repository (``make bench``, ``make bench-report`` and ``make bench-quick``
call these). Known errors exit 1 with one line, as ``weightinit``'s commands do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from experiments.bench.runner import BenchConfig
from weightinit.cli.config import build_config, config_option, default


class _Group(TyperGroup):
    """A known error (:class:`~weightinit.errors.WeightinitError`) is one red line and exit 1."""

    def invoke(self, ctx):
        from weightinit.cli.app import report_error
        from weightinit.errors import WeightinitError

        try:
            return super().invoke(ctx)
        except WeightinitError as exc:
            report_error(exc)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="python -m experiments.bench",
    cls=_Group,
    help="The held-out benchmark: run it, report it, and the generator ablations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _bench(name: str):
    """The default of BenchConfig's field ``name``: ``bench``'s options default to the config's."""
    return default(BenchConfig, name)


def _parse_shard(shard: str) -> tuple[int, int]:
    from weightinit.errors import WeightinitError

    try:
        i, n = (int(x) for x in shard.split("/"))
    except ValueError:
        raise WeightinitError(f"--shard must look like I/N (e.g. 0/2), got {shard!r}") from None
    if not 0 <= i < n:
        raise WeightinitError(f"--shard {shard}: need 0 <= I < N")
    return i, n


@app.command("run")
def bench(
    ctx: typer.Context,
    zoo: Annotated[
        Path, typer.Option("--zoo", help="A built zoo folder (its held-out concepts, base and weights).")
    ] = Path("zoo"),
    generator: Annotated[
        str | None, typer.Option(help="Generator folder or hub id (default: the bundled one, if installed).")
    ] = None,
    concepts: Annotated[
        str | None, typer.Option(help="Comma-separated concept ids (default: every held-out concept of the zoo).")
    ] = None,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="5 concepts, scratch 500 steps, cap 25%: a ~15-20 min smoke test, not the benchmark "
            "(--config and the budget options given override its budget).",
        ),
    ] = False,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Results folder: runs/ (one JSON per concept and method, resumable), results.json, BENCHMARKS.md.",
        ),
    ] = Path("bench_out"),
    config_file: config_option("BenchConfig") = None,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Also write every number (median speedups under summary.median_speedup) here."),
    ] = None,
    fid_weights: Annotated[
        Path | None,
        typer.Option("--fid-weights", help="A TorchScript Inception-v3 feature network for FID (never downloaded)."),
    ] = None,
    mode: Annotated[
        str,
        typer.Option(
            help="merge: fine-tune all weights from each init; lora: LoRA-only from each init's factors; both "
            "(scratch is shared)."
        ),
    ] = "both",
    methods: Annotated[
        str | None, typer.Option(help="Comma-separated subset of methods (scratch is always run).")
    ] = None,
    scratch_steps: Annotated[
        int, typer.Option(help="Scratch's budget in steps (once per concept, reused on resume).")
    ] = _bench("scratch_steps"),
    cap_fraction: Annotated[
        float,
        typer.Option(help="Other methods stop here (fraction of the scratch budget) if they never reach the target."),
    ] = _bench("cap_fraction"),
    min_fraction: Annotated[
        float,
        typer.Option(
            help="Other methods run at least this fraction of the budget, even when they reach the target sooner."
        ),
    ] = _bench("min_fraction"),
    eval_every: Annotated[
        int, typer.Option(help="Evaluate every N steps (plus dense early steps and the budget fractions).")
    ] = _bench("eval_every"),
    tolerance_db: Annotated[
        float,
        typer.Option(
            "--tolerance-db", "--tolerance", help="Target = scratch's final PSNR minus this (dB), for every method."
        ),
    ] = _bench("tolerance_db"),
    trivial_margin_db: Annotated[
        float,
        typer.Option(
            "--trivial-margin-db",
            "--trivial-margin",
            help="Concepts where scratch beats the trivial outputs by less than this (dB) are reported apart.",
        ),
    ] = _bench("trivial_margin_db"),
    stop_at: Annotated[
        str,
        typer.Option(
            help="target: stop once the target is reached (and min fraction run); cap: always run to the cap."
        ),
    ] = _bench("stop_at"),
    ddim_steps: Annotated[int, typer.Option(help="Sampling steps of the 'generated_k' method (DDIM).")] = _bench(
        "ddim_steps"
    ),
    lora_lr: Annotated[
        float | None, typer.Option(help="Learning rate of LoRA-only fine-tunes (default: the zoo's concept_lr).")
    ] = _bench("lora_lr"),
    seed: Annotated[
        int, typer.Option(help="Benchmark seed (scratch init, generation, per-concept data order).")
    ] = _bench("seed"),
    images: Annotated[
        Path | None, typer.Option(help="The photos the zoo was built from, if not the bundled ones.")
    ] = None,
    shard: Annotated[
        str, typer.Option(help="Run concepts I, I+N, ... of the list (I/N), e.g. two processes with 0/2 and 1/2.")
    ] = "0/1",
    threads: Annotated[int, typer.Option(help="Torch threads (CPU).")] = 1,
    doc: Annotated[
        Path | None, typer.Option(help="Write the markdown report here (default: OUT/BENCHMARKS.md).")
    ] = None,
) -> None:
    """Fine-tune every initialisation with the same recipe, data and budget on held-out concepts.

    Methods: scratch, base, base + fresh LoRA (LoRA-only), zoo mean, nearest concept by text,
    generated (1 step and DDIM k steps), and the concept's own zoo weights (upper bound). Time to
    quality = seconds (generation included) to scratch's final PSNR within the tolerance.
    Resumable: rerun the same command; finished (concept, method) runs are skipped.

    Cost at the defaults on one CPU thread (~0.12-0.17 s/step at ngf 16): scratch 4000 steps
    ~11 min per concept, other methods up to 2000 steps each; about 30 min per concept in both
    modes (merge ~25, LoRA-only ~5 on top of scratch), so ~16 CPU-hours for 32 concepts.

    Example: python -m experiments.bench run --zoo zoo --generator generator --quick --json bench.json
    """
    import torch

    from experiments.bench.report import _json_safe, write_report
    from experiments.bench.runner import QUICK, QUICK_CONCEPTS, BenchRunner, spread
    from weightinit.generators import bundled_generator_path
    from weightinit.images import PhotoSet

    torch.set_num_threads(threads)
    if generator is None and (bundled_generator_path() / "generator_config.json").is_file():
        generator = str(bundled_generator_path())
    if generator is None:
        typer.echo("no generator given and none bundled: the generated methods are skipped", err=True)
    options = {name: value for name, value in locals().items() if name in BenchConfig.__dataclass_fields__}
    config = build_config(BenchConfig, ctx, config_file, options, base=QUICK if quick else None)
    chosen = [c.strip() for c in concepts.split(",") if c.strip()] if concepts else None
    runner = BenchRunner(
        zoo,
        out,
        config,
        generator=generator,
        concepts=chosen,
        mode=mode,
        methods=[m.strip() for m in methods.split(",")] if methods else None,
        fid_weights=fid_weights,
        photos=PhotoSet.load(images) if images else None,
        log=lambda s: typer.echo(s, err=True),
        shard=_parse_shard(shard),
    )
    if quick and not chosen:
        runner.concepts = spread(runner.concepts, QUICK_CONCEPTS)
    runner.run()
    results = write_report(out, doc or out / "BENCHMARKS.md")
    if json_out is not None:
        from weightinit.fileio import atomic_write_json

        atomic_write_json(json_out, _json_safe(results))
    _print_summary(results)


def _print_summary(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    summary = results.get("summary") or {}
    table = Table(
        title=f"median over {len(summary.get('concepts', []))} concept(s); apart: {len(summary.get('apart', []))}"
    )
    for col in ("method", "reached", "speedup", "PSNR step 0", "PSNR at stop"):
        table.add_column(col)
    for m, s in (summary.get("methods") or {}).items():
        sp = s["median_speedup"]
        table.add_row(
            m,
            f"{s['reached']}/{s['concepts']}",
            "–" if sp is None else f"{sp:.1f}x",
            f"{s['median_psnr_step0']:.2f}",
            f"{s['median_psnr_at_stop']:.2f}",
        )
    Console(stderr=True).print(table)


@app.command("report")
def bench_report(
    results: Annotated[
        Path, typer.Option("--results", help="A benchmark's --out folder, or a saved results.json.")
    ] = Path("bench_out"),
    out: Annotated[
        Path, typer.Option("--out", "-o", help="The markdown to write; plots go to bench/ beside it.")
    ] = Path("docs/BENCHMARKS.md"),
    grids: Annotated[int, typer.Option(help="Image grids for this many concepts.")] = 4,
    section: Annotated[
        list[str] | None,
        typer.Option(
            "--section",
            help="NAME=FILE: a measurement to tabulate, by the section of the experiment that wrote it "
            "(step0, step0-table, prior-rank, composition, selection, other, seed-spread, crop-size, start-recipe, "
            "directions, ablations). Repeatable: in the order the names first appear, the files of one name together.",
        ),
    ] = None,
    readme: Annotated[
        Path | None, typer.Option("--readme", help="Also rewrite the results table of this README.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the median speedups as JSON.")] = False,
) -> None:
    """Regenerate results.json and docs/BENCHMARKS.md (plots, grids) from a benchmark's run files.

    Without an ablations section, RESULTS/ablations/ablations.json is one if it is there.

    Example: python -m experiments.bench report --results bench_out --section step0=heldout_start.json
    """
    from experiments.bench.report import _json_safe, parse_sections, write_report
    from weightinit.errors import WeightinitError

    if not results.is_file() and not (results / "runs").is_dir():
        raise WeightinitError(
            f"{results} holds no benchmark runs (no runs/ folder); run `python -m experiments.bench run --out "
            f"{results}` first"
        )
    res = write_report(results, out, grids=grids, sections=parse_sections(section or []), readme=readme)
    if json_out:
        typer.echo(json.dumps(_json_safe(res["summary"].get("median_speedup", {})), indent=2))
    else:
        _print_summary(res)
        typer.echo(f"wrote {out}" + ("" if results.is_file() else f" and {results / 'results.json'}"), err=True)


@app.command("ablations")
def bench_ablations(
    generator: Annotated[
        str, typer.Option(help="The main generator folder (its training config is reused for every ablation).")
    ],
    zoo: Annotated[Path, typer.Option("--zoo", help="The zoo the main generator was trained on.")] = Path("zoo"),
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Results folder; generators and scores go to OUT/ablations/<name>/.")
    ] = Path("bench_out"),
    only: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated subset of block128, block512, no_text, no_block_index, mean_center, train25, train50."
        ),
    ] = None,
    concepts: Annotated[str | None, typer.Option(help="Comma-separated held-out concept ids (default: all).")] = None,
    steps: Annotated[
        int | None, typer.Option(help="Override the generators' training steps (a quick look, not the ablation).")
    ] = None,
    threads: Annotated[int, typer.Option(help="Torch threads (CPU).")] = 1,
) -> None:
    """Train and score the generator ablations (hours; resumable): block size, text, block index,
    training-set size, and 1/5/25 sampling steps, by step-0 PSNR and distance to the concept's own weights.

    Example: python -m experiments.bench ablations --zoo zoo --generator generator --out bench_out
    """
    import torch

    from experiments.bench.ablations import markdown, run_ablations

    torch.set_num_threads(threads)
    results = run_ablations(
        zoo,
        generator,
        out,
        names=only.split(",") if only else None,
        concepts=concepts.split(",") if concepts else None,
        steps=steps,
        log=lambda s: typer.echo(s, err=True),
    )
    typer.echo(markdown(results))
