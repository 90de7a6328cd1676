"""Benchmark results as files: ``results.json``, ``docs/BENCHMARKS.md``, plots and image grids.

    python -m experiments.bench report --results bench_out --out docs/BENCHMARKS.md \
        --section step0=docs/measurements/heldout_start.json --section directions=FILE ...

Everything is regenerated from the run files under ``RESULTS/runs`` (nothing is re-run): the
JSON of every number at ``RESULTS/results.json``, the markdown at ``--out`` with its plots and
image grids in a ``bench/`` folder beside it, stating the machine, threads, library versions,
seeds and date of the runs (the date is ``SOURCE_DATE_EPOCH``'s where that is set).

Other measurements become sections of it: ``--section NAME=FILE`` hands FILE to the ``section``
function of the experiment that wrote it (:data:`SECTIONS`), which returns its markdown lines.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import statistics
from pathlib import Path

from experiments.bench.curves import summarize
from experiments.bench.markdown import fmt
from experiments.bench.methods import METHODS, SELECTION_PAIRS
from experiments.bench.runner import collect_results
from weightinit.concepts import default_catalog
from weightinit.errors import WeightinitError
from weightinit.fileio import atomic_write_json, atomic_write_text, replace_marked_block

ASSETS = "bench"


def write_results(results_dir: str | os.PathLike) -> dict:
    results = collect_results(results_dir)
    for key in ("zoo", "generator"):
        if key in results["meta"]:
            results["meta"][key] = _shown_path(results["meta"][key])
    atomic_write_json(Path(results_dir) / "results.json", _json_safe(results))
    return results


def _json_safe(x):
    if isinstance(x, float) and (math.isinf(x) or math.isnan(x)):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def _today() -> str:
    """Today's date, or ``SOURCE_DATE_EPOCH``'s (reproducible builds' variable) where it is set."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return datetime.datetime.fromtimestamp(int(epoch), datetime.UTC).date().isoformat()
    return datetime.date.today().isoformat()


def _shown_path(path) -> str:
    """A path as the report shows it: relative to the working directory when under it (no machine paths in docs)."""
    if not path:
        return "?"
    p = Path(str(path))
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve())) if p.is_absolute() else str(p)
    except ValueError:
        return p.name


def _modes(results: dict) -> str:
    """Which fine-tune modes the complete concepts were run in (shards may have run different ``--mode``s)."""
    runs = [results["runs"][c] for c in results["concepts"]]
    merge = sum(any(r["trains"] == "all" for m, r in rs.items() if m != "scratch") for rs in runs)
    lora = sum(
        any(r["trains"] == "lora" for m, r in rs.items() if m != "lora") for rs in runs
    )  # fresh LoRA runs in both modes
    return f"all weights on {merge} concept(s), LoRA factors only on {lora}"


def _label(results: dict, method: str) -> str:
    for runs in results.get("runs", {}).values():
        if method in runs:
            return runs[method]["label"]
    return method


# --- plots -----------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


CURVE_COLORS = {
    "scratch": "black",
    "base": "#999999",
    "lora": "#2ca02c",
    "mean": "#ff7f0e",
    "nearest": "#9467bd",
    "generated_1": "#1f77b4",
    "generated_k": "#17becf",
    "chosen_1": "#e377c2",
    "oracle": "#d62728",
}


def plot_curves(results: dict, path: Path, concepts: list[str] | None = None) -> Path:
    """PSNR against seconds, one panel per concept, scratch's target as a dashed line."""
    plt = _pyplot()
    concepts = concepts or sorted(results["runs"])
    n = len(concepts)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    legend_h = 0.9  # inches under the panels for the shared legend
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows + legend_h), squeeze=False)
    for ax, cid in zip(axes.flat, concepts):
        for method, run in results["runs"][cid].items():
            pts = run["curve"]
            # one colour per starting point; LoRA-only fine-tunes dashed, so the two modes of one init read as a pair
            family = method.removesuffix("_lora")
            ax.plot(
                [max(p["seconds"], 1e-2) for p in pts],
                [p["psnr"] for p in pts],
                label=method,
                lw=1.6 if family == "generated_1" else 1.0,
                color=CURVE_COLORS.get(family),
                ls="--" if run.get("trains") == "lora" else "-",
            )
        s = results["concepts"][cid]
        ax.axhline(s["target_psnr"], color="k", lw=0.6, ls=":")
        ax.set_xscale("log")
        ax.set_title(cid + (" (apart)" if s["apart"] else ""), fontsize=9)
        ax.set_xlabel("seconds (generation included)", fontsize=8)
        ax.set_ylabel("PSNR (dB)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 7), fontsize=8)
    fig.tight_layout(rect=(0, legend_h / (3.2 * rows + legend_h), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_speedups(results: dict, path: Path) -> Path:
    """Median speedup over scratch per method (bars) and every concept's (dots); not reached at 0."""
    plt = _pyplot()
    summary = results["summary"]
    methods = [m for m in summary["methods"] if m != "scratch"]
    fig, ax = plt.subplots(figsize=(1.1 * len(methods) + 2, 3.6))
    med = [summary["methods"][m]["median_speedup"] or 0.0 for m in methods]
    ax.bar(range(len(methods)), [max(v, 1e-2) for v in med], color="#4c78a8")
    for i, m in enumerate(methods):
        pts = [
            s["methods"][m]["speedup"] or 0.0
            for c, s in results["concepts"].items()
            if c in summary["concepts"] and m in s["methods"]
        ]
        ax.scatter([i] * len(pts), [max(p, 1e-2) for p in pts], color="k", s=8, zorder=3)
    ax.axhline(1.0, color="k", lw=0.6)
    ax.axhline(15.0, color="r", lw=0.6, ls=":")
    ax.set_yscale("log")
    ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("speedup to scratch's final PSNR")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def image_grid(results_dir: Path, concept: str, methods: list[str], path: Path) -> Path | None:
    """Rows: input, target, then each method at step 0 (left) and at the end of its run (right)."""
    import numpy as np
    from PIL import Image, ImageDraw

    folder = results_dir / "runs" / concept
    pairs = folder / "pairs.png"
    if not pairs.is_file():
        return None
    pair_img = np.asarray(Image.open(pairs).convert("RGB"))
    h = pair_img.shape[0] // 2
    rows = [("input", pair_img[:h], pair_img[:h]), ("target", pair_img[h:], pair_img[h:])]
    for m in methods:
        p = folder / f"{m}.png"
        if p.is_file():
            img = np.asarray(Image.open(p).convert("RGB"))
            rows.append((m, img[:h], img[h:]))
    label_w, gap = 120, 8
    width = label_w + 2 * pair_img.shape[1] + gap
    canvas = Image.new("RGB", (width, 16 + h * len(rows)), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((label_w, 2), "step 0", fill="black")
    draw.text((label_w + pair_img.shape[1] + gap, 2), "after fine-tuning", fill="black")
    for i, (name, left, right) in enumerate(rows):
        y = 16 + i * h
        draw.text((4, y + h // 2 - 6), name, fill="black")
        canvas.paste(Image.fromarray(left), (label_w, y))
        canvas.paste(Image.fromarray(right), (label_w + pair_img.shape[1] + gap, y))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, quality=90)  # JPEG: a quarter of the PNG, for figures kept in the repository
    return path


# --- markdown --------------------------------------------------------------------------------
def concept_kinds(concept_ids) -> dict[str, str]:
    """Why each held-out concept is held out (strength, composition, phrasing, novel), from the catalog."""
    catalog = default_catalog()
    kinds = {}
    for cid in concept_ids:
        try:
            kinds[cid] = catalog.get(cid).heldout_kind or "train"
        except WeightinitError:  # a concept of a plugin that is not installed here
            kinds[cid] = "unknown"
    return kinds


KIND_METHODS = (
    "lora",
    "mean",
    "nearest",
    "generated_1",
    "chosen_1",
    "mean_lora",
    "nearest_lora",
    "generated_1_lora",
    "chosen_1_lora",
)


def by_kind(results: dict) -> list[str]:
    """Median speedups per held-out kind: where a close training twin exists (strength, phrasing)
    and where none does."""
    summary = results["summary"]
    kinds = concept_kinds(summary["concepts"])
    methods = [m for m in KIND_METHODS if m in summary["methods"]]
    groups: dict[str, list[str]] = {}
    for cid in summary["concepts"]:
        groups.setdefault(kinds[cid], []).append(cid)
    lines = [
        "## Median speedup by held-out kind",
        "",
        "Strength and phrasing concepts have a close training concept; composition and novel ones do not.",
        "",
        "| kind | concepts | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for kind in sorted(groups):
        cells = []
        for m in methods:
            rows = [
                results["concepts"][c]["methods"][m] for c in groups[kind] if m in results["concepts"][c]["methods"]
            ]
            vals = sorted(r["speedup"] if r["reached"] and r["speedup"] is not None else 0.0 for r in rows)
            cells.append(fmt(statistics.median(vals), 1, "x") if vals else "–")
        lines.append(f"| {kind} | {len(groups[kind])} | " + " | ".join(cells) + " |")
    return lines + [""]


def grid_concepts(concept_ids: list[str], count: int) -> list[str]:
    """``count`` concepts for the image grids, taking the held-out kinds in turn (not just the first ids)."""
    kinds = concept_kinds(concept_ids)
    groups = [[c for c in concept_ids if kinds[c] == k] for k in sorted(set(kinds.values()))]
    picked = [g[i] for i in range(max(map(len, groups), default=0)) for g in groups if i < len(g)]
    return picked[:count]


#: Fraction of scratch's budget at which the fixed-budget target is judged, and the share of concepts it asks for.
FIXED_BUDGET_FRACTION, FIXED_BUDGET_SHARE = "0.25", 0.7


def per_concept_lines(results: dict) -> list[str]:
    """Each complete concept's speedup over scratch per method (PSNR at step 0), apart ones marked."""
    cfg, summary = results["config"], results["summary"]
    methods = list(dict.fromkeys(m for s in results["concepts"].values() for m in s["methods"]))
    lines = [
        "| concept | scratch final | trivial | scratch s | " + " | ".join(m for m in methods if m != "scratch") + " |",
        "|---|---|---|---|" + "---|" * (len(methods) - 1),
    ]
    for cid, s in sorted(results["concepts"].items()):
        cells = []
        for m in methods:
            if m == "scratch":
                continue
            r = s["methods"].get(m)
            if r is None:
                cells.append("–")
            elif r["reached"]:
                cells.append(f"{fmt(r['speedup'], 1)}x ({fmt(r['psnr_step0'], 1)})")
            else:
                cells.append(
                    f"not reached: {fmt(r['best_psnr'], 1)} dB in {r['steps_run']} steps ({fmt(r['psnr_step0'], 1)})"
                )
        name = cid + (" *(apart)*" if s["apart"] else "")
        lines.append(
            f"| {name} | {fmt(s['scratch_final_psnr'])} | {fmt(s['trivial_psnr'])} | {fmt(s['scratch_seconds'], 1)} | "
            + " | ".join(cells)
            + " |"
        )
    if summary["apart"]:
        lines += [
            "",
            f"Reported apart (scratch beats input-as-output / mean-target by < {cfg['trivial_margin_db']} dB): "
            + ", ".join(f"`{c}`" for c in summary["apart"])
            + ".",
        ]
    return lines


def other_bench_section(source: str, data: dict) -> list[str]:
    """Another benchmark's results (``python -m experiments.bench run --json`` or ``experiments.rerun_methods``): a
    reference generator's time-to-quality, a rerun with today's code, or a fixed-budget run."""
    meta, cfg, summary = data.get("meta", {}), data["config"], data.get("summary") or {}
    rerun = data.get("rerun")
    if cfg["stop_at"] == "cap":
        mode = {"lora": "LoRA-only", "merge": "all weights"}.get(meta.get("mode"), "both modes")
        title = f"Fixed budget, {mode}: every method run to {cfg['cap_fraction']:.0%} of scratch's budget"
    elif rerun:
        title = f"Rerun with today's code: {', '.join(rerun['methods'])}"
    else:
        title = f"Time to quality with generator `{meta.get('generator', '?')}` on zoo `{meta.get('zoo', '?')}`"
    if cfg.get("start_recipe"):
        title += ", starts fine-tuned with " + ", ".join(f"{k} = {v}" for k, v in sorted(cfg["start_recipe"].items()))
    lines = [f"## {title}", ""]
    command = data.get("command")
    # A reference generator's own time-to-quality run: the Makefile's target, and every concept's row (it has 8).
    reference = not rerun and cfg["stop_at"] != "cap"
    generator = Path(meta.get("generator", ""))
    if command is None and reference and generator.parent.as_posix() == "weightinit/data/generators":
        command = f"make bench-{generator.name}"
    what = [
        f"From `{source}`" + (f" (`{command}`)" if command else "") + f"; {_modes(data)}, stop rule {cfg['stop_at']}, "
        f"scratch {cfg['scratch_steps']} steps, cap {cfg['cap_fraction']:.0%}."
    ]
    if rerun:
        what.append(
            f"Scratch's runs (and {', '.join(m for m in rerun['reused'] if m != 'scratch') or 'nothing else'}) are "
            f"reused from `{rerun['recorded']}` after its step-0 test PSNR was reproduced on every concept; "
            f"{', '.join(rerun['methods'])} ran again side by side, so their seconds are comparable with each other. "
            "Scratch's seconds are the recorded run's, taken under that run's load, so a speedup over scratch holds "
            "in steps, not in seconds."
        )
    if rerun and rerun.get("pending"):
        what.append(
            f"**Partial:** {len(rerun['pending'])} planned concept(s) not complete yet "
            f"({', '.join(f'`{c}`' for c in rerun['pending'])}); rerun the command to resume."
        )
    lines += [" ".join(what), ""]
    if not data.get("concepts"):
        return lines + ["No complete concept yet.", ""]
    per_concept = (
        ["Per concept: speedup over scratch (PSNR at step 0):", "", *per_concept_lines(data), ""] if reference else []
    )
    if not summary.get("methods"):
        return (
            lines
            + [
                "Every concept is reported apart (scratch does not beat the trivial outputs by "
                f"{cfg['trivial_margin_db']} dB), so no median is taken: the ratios below are against a scratch run "
                "that learned little.",
                "",
            ]
            + per_concept
        )
    lines += [
        f"Medians over {len(summary['concepts'])} concept(s)"
        + (f" ({len(summary['apart'])} apart)" if summary["apart"] else "")
        + ":",
        "",
        "| method | reached | speedup (seconds) | speedup (steps) | seconds to target | PSNR step 0 | PSNR at stop |",
        "|---|---|---|---|---|---|---|",
    ]
    for m, r in summary["methods"].items():
        lines.append(
            f"| {_label(data, m)} | {r['reached']}/{r['concepts']} | {fmt(r['median_speedup'], 1, 'x')} | "
            f"{fmt(r['median_speedup_steps'], 1, 'x')} | {fmt(r['median_seconds'], 2)} | "
            f"{fmt(r['median_psnr_step0'])} | {fmt(r['median_psnr_at_stop'])} |"
        )
    lines.append("")
    for gen, t in summary.get("targets", {}).items():
        if "median_speedup_over_lora" in t:
            ok = "met" if t["speedup_over_lora_3x"] else "**missed**"
            lines.append(
                f"- `{gen}` is {fmt(t['median_speedup_over_lora'], 2)}x faster to the target than base + fresh LoRA "
                f"(median of per-concept ratios; target 3x: {ok})."
            )
    fixed = data.get("fixed_budget")
    if fixed:
        fractions = list(next(iter(fixed.values())))
        lines += [
            "",
            "At or above scratch's final PSNR (after its full budget), concepts of those run, at fractions of "
            "scratch's budget:",
            "",
            "| method | "
            + " | ".join(f"{float(f):.1%}" for f in fractions)
            + f" | target: {FIXED_BUDGET_SHARE:.0%} at "
            f"{float(FIXED_BUDGET_FRACTION):.0%} |",
            "|---|" + "---|" * (len(fractions) + 1),
        ]
        for m, rows in fixed.items():
            at = rows.get(FIXED_BUDGET_FRACTION)
            verdict = (
                "–"
                if not at or not at["concepts"]
                else ("met" if at["at_or_above_scratch_final"] >= FIXED_BUDGET_SHARE * at["concepts"] else "**missed**")
            )
            lines.append(
                f"| {m} | "
                + " | ".join(f"{r['at_or_above_scratch_final']}/{r['concepts']}" for r in rows.values())
                + f" | {verdict} |"
            )
        lines.append("")
    return lines + [""] + per_concept


def seed_spread_section(files: list[tuple[str, dict]]) -> list[str]:
    """The headline speedups of the same methods on the same concepts under each benchmark seed
    (scratch rerun per seed too), and their spread: the medians are taken over the concepts every
    seed completed and none reports apart, so only the seed differs between the columns."""
    by_seed = {}
    for source, data in files:
        seed = data["config"]["seed"]
        if seed in by_seed:
            raise WeightinitError(f"two seed-spread files have benchmark seed {seed}: {by_seed[seed][0]} and {source}")
        by_seed[seed] = (source, data)
    seeds = sorted(by_seed)
    shared = set.intersection(*(set(d["concepts"]) for _, d in by_seed.values()))
    concepts = sorted(c for c in shared if not any(d["concepts"][c]["apart"] for _, d in by_seed.values()))
    apart = sorted(shared - set(concepts))
    methods = [
        m for m in METHODS if all(m in d["concepts"][c]["methods"] for _, d in by_seed.values() for c in concepts)
    ]
    lines = [
        "## Seed spread: the same methods and concepts under other benchmark seeds",
        "",
        "Each seed reruns scratch too (its init, the generated start's noise and the data order change with it); "
        f"medians over the {len(concepts)} concept(s) that every seed completed"
        + (f" ({len(apart)} apart: {', '.join(f'`{c}`' for c in apart)})" if apart else "")
        + ". Files: "
        + ", ".join(f"seed {s} `{by_seed[s][0]}`" for s in seeds)
        + ".",
    ]
    reused = [s for s in seeds if "scratch" in (by_seed[s][1].get("rerun") or {}).get("reused", ())]
    if reused:
        lines[-1] += (
            f" Seed {', '.join(map(str, reused))} reuses scratch's runs from an earlier run of the same seed, so its "
            "speedups over scratch in seconds compare two times (and loads) of the machine; in steps they do not."
        )
    lines.append("")
    if len(seeds) < 2 or not concepts:
        return lines + ["Fewer than two seeds with shared concepts yet.", ""]
    summaries = {
        s: summarize({c: by_seed[s][1]["concepts"][c] for c in concepts}, ["scratch", *methods]) for s in seeds
    }

    def row(label, values, digits, suffix):
        known = [v for v in values if v is not None]
        spread = f"{fmt(min(known), digits, suffix)} – {fmt(max(known), digits, suffix)}" if known else "–"
        return f"| {label} | " + " | ".join(fmt(v, digits, suffix) for v in values) + f" | {spread} |"

    lines += [
        "| median | " + " | ".join(f"seed {s}" for s in seeds) + " | spread |",
        "|---|" + "---|" * (len(seeds) + 1),
    ]
    for m in methods:
        lines.append(
            row(
                f"{_label(by_seed[seeds[0]][1], m)}: speedup over scratch (seconds)",
                [summaries[s]["methods"][m]["median_speedup"] for s in seeds],
                1,
                "x",
            )
        )
        lines.append(
            row(
                f"{_label(by_seed[seeds[0]][1], m)}: speedup over scratch (steps)",
                [summaries[s]["methods"][m]["median_speedup_steps"] for s in seeds],
                1,
                "x",
            )
        )
    for m in methods:
        if all("median_speedup_over_lora" in summaries[s]["targets"].get(m, {}) for s in seeds):
            lines.append(
                row(
                    f"{m}: speedup over base + fresh LoRA (seconds)",
                    [summaries[s]["targets"][m]["median_speedup_over_lora"] for s in seeds],
                    2,
                    "x",
                )
            )
    lines.append(row("scratch's final PSNR (dB)", [summaries[s]["median_scratch_final_psnr"] for s in seeds], 2, ""))
    return lines + [""]


def markdown(results: dict, assets: str, grids: list[str], results_dir: str, sections: list[str] = ()) -> str:
    """docs/BENCHMARKS.md: the benchmark's own tables around ``sections``, the measurements' lines
    (:func:`render_sections`), which go after its per-concept table (or the header, if no concept is complete)."""
    meta, cfg, summary = results.get("meta", {}), results["config"], results["summary"]
    if summary:  # the methods' own order, also when results come back from a sorted JSON file
        rank = {name: i for i, name in enumerate(["scratch", *METHODS])}
        summary = dict(
            summary,
            **{
                k: dict(sorted(summary[k].items(), key=lambda kv: rank.get(kv[0], len(rank))))
                for k in ("methods", "targets")
                if k in summary
            },
        )
    machine = meta.get("machine", {})
    versions = ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items() if v)
    lines = [
        "# Benchmarks",
        "",
        f"<!-- generated by `python -m experiments.bench report --results {results_dir} --out <this file>`; "
        "do not edit by hand -->",
        "",
        f"Regenerated {_today()} from the runs in `{results_dir}` (the last invocation started "
        f"{machine.get('date', '?')}).",
        "",
        f"**Machine:** {machine.get('cpu', '?')}, {machine.get('cpu_count', '?')} cores, "
        f"{'CUDA' if machine.get('cuda') else 'CPU only'}; torch threads per process: {machine.get('threads', '?')}; "
        f"{machine.get('platform', '?')}, Python {machine.get('python', '?')}.",
        "",
        f"**Libraries:** {versions}.",
        "",
        f"**Zoo:** `{meta.get('zoo', '?')}`; **generator:** `{meta.get('generator', '?')}`; **fine-tune modes:** "
        f"{_modes(results)}.",
        "",
        f"**Seeds:** benchmark seed {cfg['seed']} (scratch init, generation); recipe seed and data order per concept "
        f"the zoo's data seed of each concept plus {cfg['seed']}, the same for every method; train/test pairs as the "
        "zoo made them.",
        "",
        f"**Budgets:** scratch {cfg['scratch_steps']} steps; other methods until they reach the target and have run "
        f"{cfg['min_fraction']:.0%} of that budget, capped at {cfg['cap_fraction']:.0%} (stop rule: "
        f"{cfg['stop_at']}); evaluation every {cfg['eval_every']} steps plus early steps and fractions "
        f"{', '.join(str(f) for f in cfg['fractions'])}. Target = scratch's final PSNR (mean over the last "
        f"{cfg['final_window']:.0%} of its budget) − {cfg['tolerance_db']} dB, for every method alike. Seconds are "
        "training wall seconds plus initialisation (generation included), evaluation excluded; they depend on what "
        "else the machine runs, the speedup in steps does not. Concepts where scratch beats the trivial outputs by "
        f"less than {cfg['trivial_margin_db']} dB are reported apart.",
        "",
    ]
    if results.get("redrawn_from_file"):
        lines += [
            (
                "**Redrawn** from saved results: the fine-tuning runs were made with the generator and zoo named "
                f"above as they were on {machine.get('date', '?')[:10]}; starts from a generator retrained since are "
                "not in these runs."
            ),
            "",
        ]
    planned = meta.get("concepts") or []
    pending = [c for c in planned if c not in results["concepts"]]
    if pending:
        lines += [
            (
                f"**Partial:** {len(planned) - len(pending)} of the {len(planned)} planned concepts are complete; the "
                f"medians below are over those only. Pending: {', '.join(f'`{c}`' for c in pending)}. Rerun the "
                "benchmark command to resume."
            ),
            "",
        ]
    abl = list(sections)
    if not summary:
        return "\n".join(lines + ["No complete concept yet.", ""] + abl)
    if not summary["methods"]:
        lines += [
            "Every concept is reported apart (scratch does not beat the trivial outputs by the margin): "
            + ", ".join(f"`{c}`" for c in summary["apart"])
            + ".",
            "",
        ]
        summary = dict(summary, methods={}, targets={})
    lines += [
        f"## Summary: medians over {len(summary['concepts'])} held-out concept(s)"
        + (f" ({len(summary['apart'])} reported apart)" if summary["apart"] else ""),
        "",
    ]
    lines += [
        "| method | reached | speedup (seconds) | speedup (steps) | seconds to target | PSNR step 0 | step 0 − "
        "oracle | rel. L2 to oracle | PSNR at stop |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m, s in summary["methods"].items():
        lines.append(
            f"| {_label(results, m)} | {s['reached']}/{s['concepts']} | {fmt(s['median_speedup'], 1, 'x')} | "
            f"{fmt(s['median_speedup_steps'], 1, 'x')} | {fmt(s['median_seconds'], 2)} | "
            f"{fmt(s['median_psnr_step0'])} | {fmt(s['median_psnr_step0_minus_oracle'])} | "
            f"{fmt(s['median_rel_l2_to_oracle'], 3)} | {fmt(s['median_psnr_at_stop'])} |"
        )
    lines += [
        "",
        "Not reached counts as speedup 0 in the medians (so they are lower bounds); speedup in steps is `–`/∞ "
        "where the target was met at step 0. Median scratch final PSNR: "
        + fmt(summary.get("median_scratch_final_psnr"))
        + " dB.",
        "",
    ]
    lines += ["## Targets", ""]
    for gen, t in summary.get("targets", {}).items():

        def ok(flag):
            return "met" if flag else "**missed**"

        lines.append(
            f"- `{gen}` reaches scratch's final PSNR {fmt(t['median_speedup'], 1)}x faster (median; target 15x: "
            f"{ok(t['speedup_15x'])}); its PSNR at stop beats scratch's final on "
            f"{fmt(100 * (t['better_final_psnr_fraction'] or 0), 0)}% of concepts."
        )
        if "step0_beats_mean_and_nearest_fraction" in t:
            lines.append(
                f"- `{gen}` beats both the mean and the nearest concept at step 0 on "
                f"{fmt(100 * t['step0_beats_mean_and_nearest_fraction'], 0)}% of concepts (target 70%: "
                f"{ok(t['step0_70pct'])}); reaches the target sooner than both on "
                f"{fmt(100 * t['sooner_than_mean_and_nearest_fraction'], 0)}%."
            )
        if "median_speedup_over_lora" in t:
            lines.append(
                f"- `{gen}` is {fmt(t['median_speedup_over_lora'], 1)}x faster to that PSNR than base + fresh LoRA "
                f"(median; target 3x: {ok(t['speedup_over_lora_3x'])})."
            )

        if METHODS[gen].sees_pairs:
            lines.append(
                f"  (`{gen}` chooses its start on {SELECTION_PAIRS} of the concept's train pairs, time included; the "
                "mean and the nearest concept see only the text, so its step-0 comparison is not like for like.)"
            )
    lines.append("")
    lines += by_kind(results)
    fractions = list(next(iter(summary["methods"].values()))["median_psnr_at_fraction"]) if summary["methods"] else []
    lines += [
        "## PSNR at fractions of the scratch budget (medians over the concepts whose run got that far; – where none "
        "did)",
        "",
        "| method | step 0 | "
        + " | ".join(f"{float(f):.1%} ({round(float(f) * cfg['scratch_steps'])} steps)" for f in fractions)
        + " |",
        "|---|---|" + "---|" * len(fractions),
    ]
    for m, s in summary["methods"].items():
        lines.append(
            f"| {m} | {fmt(s['median_psnr_step0'])} | "
            + " | ".join(fmt(s["median_psnr_at_fraction"][f]) for f in fractions)
            + " |"
        )
    lines += ["", "## Per concept: speedup over scratch (PSNR at step 0)", ""] + per_concept_lines(results)
    fids = [(c, m, r["fid"]) for c, s in results["concepts"].items() for m, r in s["methods"].items() if r.get("fid")]
    if fids:
        lines += [
            "",
            "## FID (user-supplied feature network)",
            "",
            fids[0][2]["note"] + f" (weights: `{fids[0][2]['weights']}`).",
            "",
            "| concept | method | FID |",
            "|---|---|---|",
        ]
        lines += [f"| {c} | {m} | {fmt(f['value'])} |" for c, m, f in fids]
    else:
        lines += ["", "FID: not computed (no `--fid-weights`); weightinit never downloads Inception weights."]
    lines += [""] + abl
    lines += [
        "## Plots",
        "",
        f"![PSNR against seconds per concept]({assets}/psnr_vs_seconds.png)",
        "",
        f"![Median speedup over scratch]({assets}/speedups.png)",
        "",
    ]
    if grids:
        lines += ["## Image grids", ""] + [f"![{g}]({assets}/grid_{g}.jpg)" for g in grids] + [""]
    return "\n".join(lines)


README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"
#: (label, the LoRA-only method, the all-weights one): the table shows LoRA-only runs where there are any.
README_ROWS = (
    ("base + fresh LoRA", "lora", "lora"),
    ("zoo mean", "mean_lora", "mean"),
    ("nearest concept by text", "nearest_lora", "nearest"),
    ("generated from text (1 step)", "generated_1_lora", "generated_1"),
    ("chosen on 8 of your pairs", "chosen_1_lora", "chosen_1"),
    ("the concept's own zoo weights", "oracle_lora", "oracle"),
)


def readme_results(results: dict, source: str) -> str:
    """The README's small results table: LoRA-only fine-tunes on the held-out concepts."""
    summary = results["summary"]
    methods = summary["methods"]
    n = len(summary["concepts"])
    lora = any(m.endswith("_lora") for m in methods)
    lines = [
        README_START,
        f"<!-- generated by `python -m experiments.bench report --readme README.md` from `{source}`; "
        "do not edit by hand -->",
        f"Held-out concepts of the zoo `{results['meta'].get('zoo', '?')}` ({n} that scratch learns; "
        f"{results['meta'].get('machine', {}).get('threads', '?')} CPU thread per run; runs of "
        f"{results['meta'].get('machine', {}).get('date', '?')[:10]}), each start "
        + ("fine-tuned (LoRA factors only) until" if lora else "fine-tuned (all weights) until")
        + f" it reaches scratch's final PSNR − "
        f"{results['config']['tolerance_db']} dB; medians, generation time included:",
        "",
        "| start | speedup over scratch (seconds) | (steps) | test PSNR before training, dB |",
        "|---|---|---|---|",
    ]
    lines.append(
        f"| scratch ({results['config']['scratch_steps']} steps, final PSNR "
        f"{fmt(summary.get('median_scratch_final_psnr'))} dB) | 1x | 1x | |"
    )
    for label, lora_method, merge_method in README_ROWS:
        m = lora_method if lora else merge_method
        if m in methods:
            r = methods[m]
            lines.append(
                f"| {label} | {fmt(r['median_speedup'], 1, 'x')} | {fmt(r['median_speedup_steps'], 1, 'x')} | "
                f"{fmt(r['median_psnr_step0'])} |"
            )
    lines += [
        "",
        "All numbers, the all-weights fine-tunes and the targets: [docs/BENCHMARKS.md](docs/BENCHMARKS.md).",
        README_END,
    ]
    return "\n".join(lines)


def replace_readme_results(readme: str | os.PathLike, results: dict, source: str) -> None:
    """Rewrite the section between ``README_START`` and ``README_END`` of ``readme``."""
    replace_marked_block(readme, README_START, README_END, readme_results(results, source))


#: The sections the report can add, in no particular order: ``--section NAME=FILE`` names one, and
#: each is a ``section(files) -> lines`` function of the experiment that writes FILE, ``files`` being
#: ``[(FILE as the report shows it, its JSON)]`` for every file given to NAME.
SECTIONS = {
    "step0": "experiments.heldout_start:section",
    "step0-table": "experiments.heldout_start:per_concept_section",
    "prior-rank": "experiments.prior_rank:section",
    "composition": "experiments.composed_prior:section",
    "selection": "experiments.pair_selection:section",
    "other": "experiments.bench.report:other_section",
    "seed-spread": "experiments.bench.report:seed_spread_section",
    "crop-size": "experiments.crop_size:section",
    "start-recipe": "experiments.start_recipe:section",
    "directions": "experiments.cyclegan_directions:section",
    "ablations": "experiments.bench.ablations:section",
}


def other_section(files: list[tuple[str, dict]]) -> list[str]:
    """Another benchmark's results per file (``python -m experiments.bench run --json``,
    ``experiments.rerun_methods --json``): ``--section other=FILE``."""
    return [line for source, data in files for line in other_bench_section(source, data)]


def parse_sections(specs: list[str]) -> list[tuple[str, Path]]:
    """``["NAME=FILE", ...]`` as ``[(NAME, FILE)]``; an unknown NAME or a missing ``=`` is one error."""
    out = []
    for spec in specs:
        name, sep, file = spec.partition("=")
        if not sep or not file:
            raise WeightinitError(f"--section {spec!r}: expected NAME=FILE, NAME one of {', '.join(SECTIONS)}")
        if name not in SECTIONS:
            raise WeightinitError(f"--section {spec!r}: no section {name!r}; known: {', '.join(SECTIONS)}")
        out.append((name, Path(file)))
    return out


def render_sections(sections: list[tuple[str, str | os.PathLike]], relative_to: Path) -> list[str]:
    """Every named section's lines, in the order the names first appear; the files given to one name
    go to its function together, in order, shown relative to ``relative_to``."""
    import importlib

    missing = [str(f) for _, f in sections if not Path(f).is_file()]
    if missing:
        raise WeightinitError(
            f"no measurement files at {', '.join(missing)}; run the command that writes each first "
            "(docs/reproducing.md)"
        )
    files: dict[str, list[tuple[str, dict]]] = {}
    for name, f in sections:
        files.setdefault(name, []).append((os.path.relpath(f, relative_to), json.loads(Path(f).read_text())))
    lines = []
    for name, given in files.items():
        module, function = SECTIONS[name].split(":")
        lines += getattr(importlib.import_module(module), function)(given)
    return lines


def write_report(
    results_dir: str | os.PathLike,
    md_path: str | os.PathLike,
    *,
    grids: int = 4,
    sections: list[tuple[str, str | os.PathLike]] = (),
    readme: str | os.PathLike | None = None,
) -> dict:
    """results.json in the results folder; the markdown, plots and grids at ``md_path``.

    ``results_dir`` may also be a saved ``results.json`` (``docs/measurements/bench_full.json``):
    the report is then redrawn from it, with the image grids already drawn.

    ``sections``: ``[(NAME, FILE)]``, a section of the report each NAME (:data:`SECTIONS`); without
    an ``ablations`` one, the ablations of the results folder (``ablations/ablations.json``) if any.
    Nothing is written if a file is missing.
    """
    results_dir, md_path = Path(results_dir), Path(md_path)
    sections = list(sections)
    default_ablations = results_dir / "ablations" / "ablations.json"
    if not any(name == "ablations" for name, _ in sections) and default_ablations.is_file():
        sections.append(("ablations", default_ablations))
    lines = render_sections(sections, md_path.parent)
    from_file = results_dir.is_file()  # a saved results.json (the run files are not at hand)
    results = (
        json.loads(results_dir.read_text()) | {"redrawn_from_file": True} if from_file else write_results(results_dir)
    )
    assets = md_path.parent / ASSETS
    grid_ids = []
    if results["summary"]:
        plot_curves(results, assets / "psnr_vs_seconds.png")
        plot_speedups(results, assets / "speedups.png")
        methods = list(dict.fromkeys(m for s in results["concepts"].values() for m in s["methods"]))
        for cid in grid_concepts(sorted(results["concepts"]), grids):
            if from_file:  # grids need the runs' images: keep the ones drawn before
                if (assets / f"grid_{cid}.jpg").is_file():
                    grid_ids.append(cid)
            elif image_grid(results_dir, cid, methods, assets / f"grid_{cid}.jpg"):
                grid_ids.append(cid)
    rel = os.path.relpath(results_dir, md_path.parent) if md_path.parent != results_dir else "."
    atomic_write_text(md_path, markdown(results, ASSETS, grid_ids, rel, lines))
    if readme is not None and results["summary"]:
        source = results_dir if from_file else results_dir / "results.json"
        replace_readme_results(readme, results, os.path.relpath(source, Path(readme).parent))
    return results
