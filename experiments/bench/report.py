"""Benchmark results as files: ``results.json``, ``docs/BENCHMARKS.md``, plots and image grids.

    python -m experiments.bench.report --results bench_out --out docs/BENCHMARKS.md

Everything is regenerated from the run files under ``RESULTS/runs`` (nothing is re-run): the
JSON of every number at ``RESULTS/results.json``, the markdown at ``--out`` with its plots and
image grids in a ``bench/`` folder beside it, stating the machine, threads, library versions,
seeds and date of the runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
from pathlib import Path

from experiments.bench.curves import summarize
from experiments.bench.methods import METHODS, SELECTION_PAIRS
from experiments.bench.runner import collect_results
from weightinit.concepts import default_catalog
from weightinit.errors import WeightinitError
from weightinit.fileio import atomic_write_json, atomic_write_text

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


def _f(x, digits: int = 2, suffix: str = "") -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return f"{x:.{digits}f}{suffix}"


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


CURVE_COLORS = {"scratch": "black", "base": "#999999", "lora": "#2ca02c", "mean": "#ff7f0e", "nearest": "#9467bd",
                "generated_1": "#1f77b4", "generated_k": "#17becf", "chosen_1": "#e377c2", "oracle": "#d62728"}  # fmt: skip


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
            ax.plot([max(p["seconds"], 1e-2) for p in pts], [p["psnr"] for p in pts], label=method, lw=1.6 if family == "generated_1" else 1.0,
                    color=CURVE_COLORS.get(family), ls="--" if run.get("trains") == "lora" else "-")  # fmt: skip
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
    """Median speedups per held-out kind: where a close training twin exists (strength, phrasing) and where none does."""
    summary = results["summary"]
    kinds = concept_kinds(summary["concepts"])
    methods = [m for m in KIND_METHODS if m in summary["methods"]]
    groups: dict[str, list[str]] = {}
    for cid in summary["concepts"]:
        groups.setdefault(kinds[cid], []).append(cid)
    lines = ["## Median speedup by held-out kind", "",
             "Strength and phrasing concepts have a close training concept; composition and novel ones do not.", "",
             "| kind | concepts | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]  # fmt: skip
    for kind in sorted(groups):
        cells = []
        for m in methods:
            rows = [
                results["concepts"][c]["methods"][m] for c in groups[kind] if m in results["concepts"][c]["methods"]
            ]
            vals = sorted(r["speedup"] if r["reached"] and r["speedup"] is not None else 0.0 for r in rows)
            cells.append(_f(statistics.median(vals), 1, "x") if vals else "–")
        lines.append(f"| {kind} | {len(groups[kind])} | " + " | ".join(cells) + " |")
    return lines + [""]


def grid_concepts(concept_ids: list[str], count: int) -> list[str]:
    """``count`` concepts for the image grids, taking the held-out kinds in turn (not just the first ids)."""
    kinds = concept_kinds(concept_ids)
    groups = [[c for c in concept_ids if kinds[c] == k] for k in sorted(set(kinds.values()))]
    picked = [g[i] for i in range(max(map(len, groups), default=0)) for g in groups if i < len(g)]
    return picked[:count]


ABLATION_LABELS = {
    "zoo_mean": "zoo mean (no generator)",
    "oracle": "the concept's own weights (upper bound)",
    "steps1": "main generator, 1 sampling step",
    "steps5": "main generator, 5 DDIM steps",
    "steps25": "main generator, 25 DDIM steps",
    "block128": "block size 128 (main: 256)",
    "block512": "block size 512",
    "no_text": "no text condition (and so no retrieval prior)",
    "no_block_index": "no block-index condition",
    "mean_center": "zoo-mean centre instead of the retrieval prior (the paper's setting)",
    "train25": "trained on 25% of the training concepts",
    "train50": "trained on 50% of the training concepts",
    "pooled_text": "mean-pooled text embedding instead of the directional one",
}


def ablations_section(ablations: dict, source: str) -> list[str]:
    """The generator ablations: step-0 PSNR and distance to the concept's own weights, against the main generator."""
    main = ablations.get("steps1", {}).get("median_psnr_step0")
    lines = ["## Generator ablations (step 0, no fine-tuning)", "",
             (f"From `{source}` (`weightinit bench-ablations`): each variant is a generator trained with the main one's config but "
              "for the one change, scored on the held-out concepts by the PSNR of its weights before any fine-tuning and the "
              "relative L2 distance to the concept's own zoo weights. Medians over the held-out concepts; the main generator is "
              "`steps1`, trained on 100% of the training concepts at block size 256."), "",
             "| variant | what changes | concepts | median PSNR at step 0 | vs main (dB) | median rel. L2 to own weights |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    if ablations.get("_note"):
        lines += [ablations["_note"], ""]
    order = {name: i for i, name in enumerate(ABLATION_LABELS)}
    variants = {k: v for k, v in ablations.items() if not k.startswith("_")}
    for name, r in sorted(variants.items(), key=lambda kv: order.get(kv[0], len(order))):
        delta = None if main is None else r["median_psnr_step0"] - main
        lines.append(f"| {name} | {ABLATION_LABELS.get(name, name)} | {r.get('concept_count', len(r.get('concepts', {})))} | {_f(r['median_psnr_step0'])} "
                     f"| {_f(delta, 2)} | {_f(r['median_rel_l2_to_oracle'], 3)} |")  # fmt: skip
    return lines + [""]


STEP0_METHODS = ("base", "mean", "nearest", "prior", "generated_1", "oracle")


def step0_section(step0: list[tuple[str, dict]]) -> list[str]:
    """Step-0 PSNR on every held-out concept, per generator and per direction, from
    ``experiments.heldout_start`` files (``[(source path, its JSON)]``)."""
    lines = ["## Step 0 on every held-out concept, by direction", "",
             ("Test PSNR of each start written into the base before any fine-tuning "
              "(`python -m experiments.heldout_start --zoo zoo --generator GEN --json FILE`). `forward`: the catalog's "
              "own held-out concepts; `reverse`: their reverse concepts. Wins count concepts where the generated start beats both "
              "the zoo mean and the nearest training concept by text (pooled embedding). Prior rank: the principal components "
              "its retrieval prior keeps (– where the file does not record it: those generators kept 64)."), ""]  # fmt: skip
    lines += ["| file | zoo | generator | trained on | text conditioning | composite texts | denoiser corrects | prior rank | direction | concepts | "
              + " | ".join(STEP0_METHODS) + " | generated beats mean and nearest |",
              "|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(STEP0_METHODS) + "---|"]  # fmt: skip
    for source, data in step0:
        parts = dict(data.get("by_direction") or {})
        parts["all"] = {
            "concepts": data["concepts"],
            "median_psnr_step0": data["median_psnr_step0"],
            "generated_beats": data["generated_beats"],
        }
        for d, part in parts.items():
            med, beats = part["median_psnr_step0"], part["generated_beats"]
            lines.append(f"| `{source}` | `{data.get('zoo', '?')}` | `{data.get('generator', '?')}` | {data.get('train_concepts', '?')} concepts | "
                         f"{data.get('text_conditioning', 'pooled')} | {'parts' if data.get('composition') else 'whole'} | "
                         f"{'leave-one-out blend' if data.get('prior_target') == 'leave_one_out' else 'own blend'} | {data.get('prior_rank') or '–'} | "
                         f"{d} | {part['concepts']} | "
                         + " | ".join(_f(med.get(m)) for m in STEP0_METHODS)
                         + f" | {beats['mean_and_nearest']}/{part['concepts']} |")  # fmt: skip
    return lines + [""] + step0_kind_lines(step0)


#: A nearest concept this close to a held-out concept's own weights (dB) leaves a start little to beat it by.
NEAREST_CLOSE_DB = 0.5
#: The generator's text-only step-0 targets: share of held-out concepts above both the zoo mean and the
#: nearest concept, and median gain over the retrieval prior alone.
WINS_TARGET = 0.7
PRIOR_GAIN_TARGET_DB = 0.5
#: The catalog's held-out kinds (``weightinit.concepts.builtin``), in the order the table shows them.
HELDOUT_KINDS = ("strength", "phrasing", "composition", "novel")


def beats_mean_and_nearest(row: dict) -> bool:
    """A step-0 win: the generated start above both the zoo mean and the nearest concept (a missing column never wins)."""
    return row.get("generated_1", -math.inf) > max(row.get("mean", math.inf), row.get("nearest", math.inf))


def step0_kind_lines(step0: list[tuple[str, dict]]) -> list[str]:
    """Wins over both the mean and the nearest concept per held-out kind, from each file's
    ``per_concept`` rows (kinds from the catalog; concepts it does not know count as ``other``).
    "nearest ≈ own" counts the concepts whose nearest training concept is already within
    ``NEAREST_CLOSE_DB`` of their own weights: there a start can beat the nearest only by a hair."""
    files = [(s, d) for s, d in step0 if d.get("per_concept")]
    if not files:
        return []
    catalog = default_catalog()

    def kind(cid: str) -> str:
        return (catalog.get(cid).heldout_kind or "other") if cid in catalog else "other"

    kinds = [k for k in (*HELDOUT_KINDS, "other") if any(kind(c) == k for _, d in files for c in d["per_concept"])]
    lines = ["Wins by held-out kind (a win: the generated start beats both the zoo mean and the nearest concept; "
             f"nearest ≈ own: concepts whose nearest training concept is within {NEAREST_CLOSE_DB} dB of their own weights, "
             "where a start beats it only by a hair):", "",
             "| file | " + " | ".join(f"{k}: wins (nearest ≈ own)" for k in kinds)
             + f" | all: wins (target {WINS_TARGET:.0%}) | generated − prior, median dB (target +{PRIOR_GAIN_TARGET_DB}) |",
             "|---|" + "---|" * (len(kinds) + 2)]  # fmt: skip
    met, losses = [], {}
    for source, data in files:
        won = {c: beats_mean_and_nearest(r) for c, r in data["per_concept"].items()}
        losses[source] = {k: sum(kind(c) == k and not w for c, w in won.items()) for k in kinds}
        cells = []
        for k in kinds:
            rows = [r for c, r in data["per_concept"].items() if kind(c) == k]
            wins = sum(won[c] for c in data["per_concept"] if kind(c) == k)
            close = sum(r["nearest"] >= r["oracle"] - NEAREST_CLOSE_DB for r in rows)
            cells.append(f"{wins}/{len(rows)} ({close})")
        rows = list(data["per_concept"].values())
        wins = sum(won.values())
        needed = math.ceil(WINS_TARGET * len(rows))
        gain = (
            statistics.median(r["generated_1"] - r["prior"] for r in rows) if all("prior" in r for r in rows) else None
        )
        cells.append(f"{wins}/{len(rows)} ({needed} needed)")
        cells.append(_f(gain, 3))
        if wins >= needed or (gain is not None and gain >= PRIOR_GAIN_TARGET_DB):
            met.append(source)
        lines.append(f"| `{source}` | " + " | ".join(cells) + " |")
    lines += ["", (f"Text-only targets: the generated start above both the zoo mean and the nearest concept on at least "
                   f"{WINS_TARGET:.0%} of the held-out concepts, and at least {PRIOR_GAIN_TARGET_DB} dB above the prior "
                   "alone (median of per-concept differences). "
                   + (f"Met, at least one of them, by {', '.join(f'`{m}`' for m in met)}." if met else "No generator here meets either."))]  # fmt: skip
    best = min(losses, key=lambda f: sum(losses[f].values()))
    lines[-1] += (f" The one with the fewest losses, `{best}`, loses {sum(losses[best].values())}: "
                  + ", ".join(f"{n} {k}" for k, n in losses[best].items() if n) + ".")  # fmt: skip
    return lines + [""]


def step0_table_section(source: str, data: dict) -> list[str]:
    """One generator's step-0 test PSNR on every held-out concept of its zoo (``experiments.heldout_start``)."""
    rows = data["per_concept"]
    methods = [m for m in STEP0_METHODS if any(m in r for r in rows.values())]
    b = data["generated_beats"]
    lines = [f"## Step 0 per held-out concept: generator `{data.get('generator', '?')}` on zoo `{data.get('zoo', '?')}`", "",
             (f"From `{source}` (`python -m experiments.heldout_start --zoo {data.get('zoo', 'ZOO')} --generator GEN`): test PSNR "
              f"(dB) of each start before any fine-tuning; `oracle` is the concept's own zoo weights. The generated start beats "
              f"both the mean and the nearest concept on {b['mean_and_nearest']} of {len(rows)} (marked ✓)."), "",
             "| concept | " + " | ".join(methods) + " | |", "|---|" + "---|" * (len(methods) + 1)]  # fmt: skip
    for cid, r in rows.items():
        win = beats_mean_and_nearest(r)
        lines.append(f"| {cid} | " + " | ".join(_f(r.get(m)) for m in methods) + f" | {'✓' if win else ''} |")
    med = data["median_psnr_step0"]
    lines.append("| **median** | " + " | ".join(f"**{_f(med.get(m))}**" for m in methods) + " | |")
    return lines + [""]


def crop_size_section(source: str, data: dict) -> list[str]:
    """What training a fully convolutional zoo on small crops costs at the size it is used at
    (``experiments.crop_size``): the zoo's weights against the same fine-tune at full size."""
    s = data["summary"]
    requested = s.get("requested", s["concepts"])
    measured = (
        f"{s['concepts']} of {requested} concept(s) so far (the command resumes)"
        if s["concepts"] < requested
        else f"{s['concepts']} concept(s)"
    )
    lines = [f"## What {s['zoo_crop_size']}-px training crops cost at {s['size']} px (`{data['arch']}`)", "",
             (f"From `{source}` (`{data['command']}`): per concept, the base, the zoo's weights (fine-tuned on "
              f"{s['zoo_crop_size']}-px crops) and the same LoRA fine-tune run on {s['size']}-px crops, all evaluated on "
              f"{s['size']}-px test pairs. Cost = full-size minus zoo, dB (negative: the small crops did better). "
              f"{measured}."), "",
             "| concept | base | zoo, small crops | fine-tuned at full size | trivial | cost, dB | full-size fine-tune, s |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for cid, r in data["per_concept"].items():
        lines.append(f"| {cid} | {_f(r['base'])} | {_f(r['zoo_crops'])} | {_f(r['full_size'])} | {_f(r['trivial']['trivial_psnr'])} | "
                     f"{_f(r['cost_db'])} | {_f(r.get('full_size_seconds'), 0)} |")  # fmt: skip
    lines.append(f"| **median** | {_f(s['median_base'])} | {_f(s['median_zoo_crops'])} | {_f(s['median_full_size'])} | | "
                 f"{_f(s['median_cost_db'])} | |")  # fmt: skip
    return lines + [""]


def start_recipe_section(source: str, data: dict) -> list[str]:
    """Recipe variants fine-tuning the generated start on training concepts (``experiments.start_recipe``)."""
    lines = ["## Keeping a good start's quality: recipe variants on training concepts", "",
             (f"From `{source}`: {data['steps']} all-weights steps from the generated start on {len(data['concepts'])} training "
              f"concepts ({', '.join(data['concepts'])}); held-out concepts played no part. End minus best: how much of its peak "
              "a run gives back by its last step."), "",
             "| variant | recipe change | median PSNR at the end | median end − best | median end − reference (first row) |", "|---|---|---|---|---|"]  # fmt: skip
    reference = data.get("reference", "none")  # the JSON's keys are sorted: the reference is named
    for name in [reference, *(n for n in data["summary"] if n != reference)]:
        r = data["summary"][name]
        change = ", ".join(f"{k} = {v}" for k, v in data["variants"][name].items()) or "none (the benchmark's recipe)"
        lines.append(
            f"| {name} | {change} | {_f(r['median_end'])} | {_f(r['median_end_minus_best'])} | {_f(r['median_end_minus_reference'])} |"
        )
    return lines + [""]


def directions_section(source: str, data: dict) -> list[str]:
    """CycleGAN pairs initialised from text: each direction's L1 on both tasks, per generator
    (``experiments.cyclegan_directions``)."""
    lines = ["## CycleGAN: does each direction start the right way?", "",
             (f"From `{source}` (`{data.get('command', 'python -m experiments.cyclegan_directions')}`): L1 on bundled-photo "
              "test pairs of a CycleGAN pair initialised from the text; forward = photo → edited, reverse = edited → photo. Right "
              "when netG_A is better forward and netG_B better in reverse; equal numbers mean both got the same weights."), "",
             "| generator | text | netG_B's text | forward A / B | reverse B / A | right | netG_B draws on |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for gen, rows in data["generators"].items():
        for r in rows:
            f, b = r["forward_l1"], r["reverse_l1"]
            lines.append(f"| `{gen}` | {r['text']} | {r['netG_B_text']} | {f['netG_A']:.3f} / {f['netG_B']:.3f} | {b['netG_B']:.3f} / "
                         f"{b['netG_A']:.3f} | {'yes' if r['both_directions_right'] else '**no**'} | {', '.join(r['netG_B_draws_on'])} |")  # fmt: skip
    return lines + [""]


#: Seconds of selection (8 pairs, 64 px, one thread) the pair-selection target asks for.
SELECTION_TARGET_SECONDS = 0.5


def selection_section(source: str, data: dict) -> list[str]:
    """How long choosing a start on the user's pairs takes, screened and exhaustive, and how often
    the screen keeps the exhaustive choice (``experiments.pair_selection --timing``)."""
    t = data["selection_timing"]
    sec, cpu = t["median_selection_seconds"], t["median_selection_cpu_seconds"]
    met = "met" if sec["screened"] < SELECTION_TARGET_SECONDS else "**missed**"
    train_study = data.get("screen_study_train") or {}
    chosen_on = (
        "its budget was chosen on the training concepts scored as unseen below, so its agreement here is out of sample."
        if (train_study.get("screen") or {}).get("budget") == t["screen"]["budget"]
        else "its settings were chosen on these same held-out concepts, so its agreement is in-sample."
    )
    lines = ["## Choosing the start on your pairs: how long it takes", "",
             (f"From `{source}` (`{t['command']}`): {t['concepts']} held-out concepts, {t['pairs']} pairs at {t['image_size']} px, "
              f"{t['threads']} thread on {t['cpus']} CPUs (load average {t['load_average_1min_before_after'][0]} before, "
              f"{t['load_average_1min_before_after'][1]} after), {t['candidates']} candidates. The screen visits "
              f"{t['screen']['budget']} of them and rescores the best {t['screen']['rescore']} exactly; " + chosen_on), "",
             "| selection | median seconds | median CPU seconds | median forward passes | median test PSNR of the chosen start |",
             "|---|---|---|---|---|",
             f"| every candidate scored | {_f(sec['exhaustive'])} | {_f(cpu['exhaustive'])} | {t['candidates']} | {_f(t['median_test_psnr']['exhaustive'])} |",
             f"| screened | {_f(sec['screened'])} | {_f(cpu['screened'])} | {t['median_forward_passes']['screened'] + t['median_forward_passes']['rescored']} | "
             f"{_f(t['median_test_psnr']['screened'])} |", "",
             (f"Target: selection under {SELECTION_TARGET_SECONDS} s: {met} ({_f(sec['screened'])} s). The screen keeps the exhaustive "
              f"choice on {t['same_choice_as_exhaustive']} of {t['concepts']}; test PSNR lost to it: mean "
              f"{_f(t['test_psnr_exhaustive_minus_screened']['mean'])} dB, worst {_f(t['test_psnr_exhaustive_minus_screened']['max'])} dB."), ""]  # fmt: skip
    for key, which in (("screen_study", "the held-out concepts (in-sample for the default screen of the time, whose budget was chosen here)"),
                       ("screen_study_train", "training concepts scored as unseen (each one's group out of the prior and the candidates)")):  # fmt: skip
        study = data.get(key) or {}
        if not study.get("strategies"):
            continue
        lines += [f"Screens replayed on every candidate's scores, {study['concepts']} {which}:", "",
                  "| screen strategy | same choice as exhaustive | median forward passes | mean test PSNR lost, dB |", "|---|---|---|---|"]  # fmt: skip
        for name, r in study["strategies"].items():
            lost = r["test_psnr_exhaustive_minus_chosen"]
            lines.append(f"| {name} | {r['same_choice_as_exhaustive']} of {study['concepts']} | {r['median_forward_passes']} | "
                         f"{_f(lost['mean']) if lost else '–'} |")  # fmt: skip
        lines.append("")
    return lines


#: Fraction of scratch's budget at which the fixed-budget target is judged, and the share of concepts it asks for.
FIXED_BUDGET_FRACTION, FIXED_BUDGET_SHARE = "0.25", 0.7


def per_concept_lines(results: dict) -> list[str]:
    """Each complete concept's speedup over scratch per method (PSNR at step 0), apart ones marked."""
    cfg, summary = results["config"], results["summary"]
    methods = list(dict.fromkeys(m for s in results["concepts"].values() for m in s["methods"]))
    lines = ["| concept | scratch final | trivial | scratch s | " + " | ".join(m for m in methods if m != "scratch") + " |",
             "|---|---|---|---|" + "---|" * (len(methods) - 1)]  # fmt: skip
    for cid, s in sorted(results["concepts"].items()):
        cells = []
        for m in methods:
            if m == "scratch":
                continue
            r = s["methods"].get(m)
            if r is None:
                cells.append("–")
            elif r["reached"]:
                cells.append(f"{_f(r['speedup'], 1)}x ({_f(r['psnr_step0'], 1)})")
            else:
                cells.append(
                    f"not reached: {_f(r['best_psnr'], 1)} dB in {r['steps_run']} steps ({_f(r['psnr_step0'], 1)})"
                )
        name = cid + (" *(apart)*" if s["apart"] else "")
        lines.append(
            f"| {name} | {_f(s['scratch_final_psnr'])} | {_f(s['trivial_psnr'])} | {_f(s['scratch_seconds'], 1)} | "
            + " | ".join(cells)
            + " |"
        )
    if summary["apart"]:
        lines += ["", f"Reported apart (scratch beats input-as-output / mean-target by < {cfg['trivial_margin_db']} dB): "
                  + ", ".join(f"`{c}`" for c in summary["apart"]) + "."]  # fmt: skip
    return lines


def other_bench_section(source: str, data: dict) -> list[str]:
    """Another benchmark's results (``weightinit bench --json`` or ``experiments.rerun_methods``): a
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
    what = [f"From `{source}`" + (f" (`{command}`)" if command else "") + f"; {_modes(data)}, stop rule {cfg['stop_at']}, "
            f"scratch {cfg['scratch_steps']} steps, cap {cfg['cap_fraction']:.0%}."]  # fmt: skip
    if rerun:
        what.append(f"Scratch's runs (and {', '.join(m for m in rerun['reused'] if m != 'scratch') or 'nothing else'}) are reused from "
                    f"`{rerun['recorded']}` after its step-0 test PSNR was reproduced on every concept; {', '.join(rerun['methods'])} "
                    "ran again side by side, so their seconds are comparable with each other. Scratch's seconds are the "
                    "recorded run's, taken under that run's load, so a speedup over scratch holds in steps, not in seconds.")  # fmt: skip
    if rerun and rerun.get("pending"):
        what.append(f"**Partial:** {len(rerun['pending'])} planned concept(s) not complete yet ({', '.join(f'`{c}`' for c in rerun['pending'])}); "
                    "rerun the command to resume.")  # fmt: skip
    lines += [" ".join(what), ""]
    if not data.get("concepts"):
        return lines + ["No complete concept yet.", ""]
    per_concept = (
        ["Per concept: speedup over scratch (PSNR at step 0):", "", *per_concept_lines(data), ""] if reference else []
    )
    if not summary.get("methods"):
        return lines + [f"Every concept is reported apart (scratch does not beat the trivial outputs by {cfg['trivial_margin_db']} dB), "
                        "so no median is taken: the ratios below are against a scratch run that learned little.", ""] + per_concept  # fmt: skip
    lines += [f"Medians over {len(summary['concepts'])} concept(s)" + (f" ({len(summary['apart'])} apart)" if summary["apart"] else "") + ":", "",
              "| method | reached | speedup (seconds) | speedup (steps) | seconds to target | PSNR step 0 | PSNR at stop |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for m, r in summary["methods"].items():
        lines.append(f"| {_label(data, m)} | {r['reached']}/{r['concepts']} | {_f(r['median_speedup'], 1, 'x')} | "
                     f"{_f(r['median_speedup_steps'], 1, 'x')} | {_f(r['median_seconds'], 2)} | {_f(r['median_psnr_step0'])} | "
                     f"{_f(r['median_psnr_at_stop'])} |")  # fmt: skip
    lines.append("")
    for gen, t in summary.get("targets", {}).items():
        if "median_speedup_over_lora" in t:
            ok = "met" if t["speedup_over_lora_3x"] else "**missed**"
            lines.append(f"- `{gen}` is {_f(t['median_speedup_over_lora'], 2)}x faster to the target than base + fresh LoRA "
                         f"(median of per-concept ratios; target 3x: {ok}).")  # fmt: skip
    fixed = data.get("fixed_budget")
    if fixed:
        fractions = list(next(iter(fixed.values())))
        lines += ["", "At or above scratch's final PSNR (after its full budget), concepts of those run, at fractions of scratch's budget:", "",
                  "| method | " + " | ".join(f"{float(f):.1%}" for f in fractions) + f" | target: {FIXED_BUDGET_SHARE:.0%} at "
                  f"{float(FIXED_BUDGET_FRACTION):.0%} |", "|---|" + "---|" * (len(fractions) + 1)]  # fmt: skip
        for m, rows in fixed.items():
            at = rows.get(FIXED_BUDGET_FRACTION)
            verdict = (
                "–"
                if not at or not at["concepts"]
                else ("met" if at["at_or_above_scratch_final"] >= FIXED_BUDGET_SHARE * at["concepts"] else "**missed**")
            )
            lines.append(f"| {m} | " + " | ".join(f"{r['at_or_above_scratch_final']}/{r['concepts']}" for r in rows.values())
                         + f" | {verdict} |")  # fmt: skip
        lines.append("")
    return lines + [""] + per_concept


def seed_spread_section(runs: list[tuple[str, dict]]) -> list[str]:
    """The headline speedups of the same methods on the same concepts under each benchmark seed
    (scratch rerun per seed too), and their spread: the medians are taken over the concepts every
    seed completed and none reports apart, so only the seed differs between the columns."""
    by_seed = {}
    for source, data in runs:
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
    lines = ["## Seed spread: the same methods and concepts under other benchmark seeds", "",
             "Each seed reruns scratch too (its init, the generated start's noise and the data order change with it); "
             f"medians over the {len(concepts)} concept(s) that every seed completed"
             + (f" ({len(apart)} apart: {', '.join(f'`{c}`' for c in apart)})" if apart else "")
             + ". Files: " + ", ".join(f"seed {s} `{by_seed[s][0]}`" for s in seeds) + "."]  # fmt: skip
    reused = [s for s in seeds if "scratch" in (by_seed[s][1].get("rerun") or {}).get("reused", ())]
    if reused:
        lines[-1] += (f" Seed {', '.join(map(str, reused))} reuses scratch's runs from an earlier run of the same seed, so its "
                      "speedups over scratch in seconds compare two times (and loads) of the machine; in steps they do not.")  # fmt: skip
    lines.append("")
    if len(seeds) < 2 or not concepts:
        return lines + ["Fewer than two seeds with shared concepts yet.", ""]
    summaries = {
        s: summarize({c: by_seed[s][1]["concepts"][c] for c in concepts}, ["scratch", *methods]) for s in seeds
    }

    def row(label, values, digits, suffix):
        known = [v for v in values if v is not None]
        spread = f"{_f(min(known), digits, suffix)} – {_f(max(known), digits, suffix)}" if known else "–"
        return f"| {label} | " + " | ".join(_f(v, digits, suffix) for v in values) + f" | {spread} |"

    lines += [
        "| median | " + " | ".join(f"seed {s}" for s in seeds) + " | spread |",
        "|---|" + "---|" * (len(seeds) + 1),
    ]
    for m in methods:
        lines.append(row(f"{_label(by_seed[seeds[0]][1], m)}: speedup over scratch (seconds)",
                         [summaries[s]["methods"][m]["median_speedup"] for s in seeds], 1, "x"))  # fmt: skip
        lines.append(row(f"{_label(by_seed[seeds[0]][1], m)}: speedup over scratch (steps)",
                         [summaries[s]["methods"][m]["median_speedup_steps"] for s in seeds], 1, "x"))  # fmt: skip
    for m in methods:
        if all("median_speedup_over_lora" in summaries[s]["targets"].get(m, {}) for s in seeds):
            lines.append(row(f"{m}: speedup over base + fresh LoRA (seconds)",
                             [summaries[s]["targets"][m]["median_speedup_over_lora"] for s in seeds], 2, "x"))  # fmt: skip
    lines.append(row("scratch's final PSNR (dB)", [summaries[s]["median_scratch_final_psnr"] for s in seeds], 2, ""))
    return lines + [""]


def prior_rank_section(source: str, data: dict) -> list[str]:
    """The retrieval prior's rank chosen on training concepts left out of their own prior, then the
    held-out concepts at every rank (``experiments.prior_rank``)."""
    train, held = data["train"], data["heldout"]
    zoo = f" (`{data['zoo']}`)" if data.get("zoo") else ""
    lines = [f"## Retrieval prior: principal components kept{zoo}", "",
             (f"From `{source}` (`{data.get('command', 'python -m experiments.prior_rank')}`): step-0 test PSNR of the prior alone "
              f"(no denoiser, temperature {data['temperature']}), {data['training_concepts']} training concepts. Training rows: "
              f"{train['concepts']} concepts, each with the prior refitted on the other training concepts; the rank with the best "
              f"median (**{train['best']}**) is the one chosen, and held-out rows played no part in it. Held-out rows: the prior "
              "fitted on every training concept; a win beats both the zoo mean and the nearest concept by text."), "",
             "| rank | training, median (dB) | held-out, median (dB) | held-out wins over mean and nearest |", "|---|---|---|---|"]  # fmt: skip
    for r in data["ranks"]:
        h = held["by_rank"][r]
        lines.append(f"| {r} | {train['median_psnr_step0'][r]:.2f} | {h['median_psnr_step0']:.2f} | "
                     f"{h['beats_mean_and_nearest']} of {held['concepts']} |")  # fmt: skip
    return lines + [""]


def composition_section(source: str, data: dict) -> list[str]:
    """Composite texts built from their parts' blends against the blend of the whole text
    (``experiments.composed_prior``), with the policy chosen on the training rows."""
    policy = data["policy"]
    lines = ["## Composite texts: the parts' blends against the whole text's", "",
             (f"From `{source}` (`{data.get('command', 'python -m experiments.composed_prior')}`): step-0 test PSNR of "
              "the prior's centre (no denoiser) for every zoo concept whose text splits at \"with\", \"plus\" or \"and\"; training "
              "concepts with their whole group (other strengths, reverse) left out of the prior. The policy composes when the "
              f"weakest part's similarity is at least the whole text's minus {policy['margin']:.4f}, the margin with the best mean "
              "PSNR on the training rows; held-out rows played no part in it."), ""]  # fmt: skip
    scaled = sorted({k.removeprefix("median_") for part in data.values() if isinstance(part, dict) for k in part
                     if k.startswith("median_sum_x")}, key=lambda k: float(k[5:]))  # fmt: skip
    lines += ["| rows | concepts | composed by the policy | median, whole text | median, policy | policy better on | "
              + " | ".join(f"median, parts summed x{k[5:]}" for k in scaled) + " |",
              "|---|---|---|---|---|---|" + "---|" * len(scaled)]  # fmt: skip
    for key in ("train_all", "train_compositions", "heldout_all", "heldout_compositions"):
        if key in data:
            r = data[key]
            lines.append(f"| {key.replace('_', ' ')} | {r['concepts']} | {r['composed']} | {_f(r['median_whole'])} | {_f(r['median_policy'])} | "
                         f"{r['policy_beats_whole']} of {r['concepts']} | " + " | ".join(_f(r.get(f'median_{k}')) for k in scaled) + " |")  # fmt: skip
    return lines + [""]


def markdown(
    results: dict,
    assets: str,
    grids: list[str],
    results_dir: str,
    ablations: dict | None = None,
    ablations_source: str = "",
    step0: list[tuple[str, dict]] | None = None,
    directions: tuple[str, dict] | None = None,
    composition: tuple[str, dict] | None = None,
    selection: tuple[str, dict] | None = None,
    others: list[tuple[str, dict]] | None = None,
    step0_tables: list[tuple[str, dict]] | None = None,
    crop_sizes: list[tuple[str, dict]] | None = None,
    start_recipe: tuple[str, dict] | None = None,
    seed_spread: list[tuple[str, dict]] | None = None,
    prior_ranks: list[tuple[str, dict]] | None = None,
) -> str:
    meta, cfg, summary = results.get("meta", {}), results["config"], results["summary"]
    if summary:  # the methods' own order, also when results come back from a sorted JSON file
        rank = {name: i for i, name in enumerate(["scratch", *METHODS])}
        summary = dict(summary, **{k: dict(sorted(summary[k].items(), key=lambda kv: rank.get(kv[0], len(rank))))
                                   for k in ("methods", "targets") if k in summary})  # fmt: skip
    machine = meta.get("machine", {})
    versions = ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items() if v)
    lines = [
        "# Benchmarks",
        "",
        # The comment names the report's command as it was when docs/BENCHMARKS.md was last written, word
        # for word, so the file regenerates identically; the command is now `python -m experiments.bench report`.
        f"<!-- generated by `python -m weightinit.bench.report --results {results_dir} --out <this file>`; do not edit by hand -->",
        "",
        f"Regenerated {datetime.date.today().isoformat()} from the runs in `{results_dir}` (the last invocation started {machine.get('date', '?')}).",
        "",
        f"**Machine:** {machine.get('cpu', '?')}, {machine.get('cpu_count', '?')} cores, {'CUDA' if machine.get('cuda') else 'CPU only'}; "
        f"torch threads per process: {machine.get('threads', '?')}; {machine.get('platform', '?')}, Python {machine.get('python', '?')}.",
        "",
        f"**Libraries:** {versions}.",
        "",
        f"**Zoo:** `{meta.get('zoo', '?')}`; **generator:** `{meta.get('generator', '?')}`; **fine-tune modes:** {_modes(results)}.",
        "",
        f"**Seeds:** benchmark seed {cfg['seed']} (scratch init, generation); recipe seed and data order per concept "
        f"the zoo's data seed of each concept plus {cfg['seed']}, the same for every method; train/test pairs as the zoo made them.",
        "",
        f"**Budgets:** scratch {cfg['scratch_steps']} steps; other methods until they reach the target and have run "
        f"{cfg['min_fraction']:.0%} of that budget, capped at {cfg['cap_fraction']:.0%} (stop rule: {cfg['stop_at']}); evaluation every "
        f"{cfg['eval_every']} steps plus early steps and fractions {', '.join(str(f) for f in cfg['fractions'])}. Target = scratch's final "
        f"PSNR (mean over the last {cfg['final_window']:.0%} of its budget) − {cfg['tolerance_db']} dB, for every method alike. "
        f"Seconds are training wall seconds plus initialisation (generation included), evaluation excluded; they depend on "
        f"what else the machine runs, the speedup in steps does not. "
        f"Concepts where scratch beats the trivial outputs by less than {cfg['trivial_margin_db']} dB are reported apart.",
        "",
    ]
    if results.get("redrawn_from_file"):
        lines += [("**Redrawn** from saved results: the fine-tuning runs were made with the generator and zoo named above as "
                   f"they were on {machine.get('date', '?')[:10]}; starts from a generator retrained since are not in these runs."), ""]  # fmt: skip
    planned = meta.get("concepts") or []
    pending = [c for c in planned if c not in results["concepts"]]
    if pending:
        lines += [(f"**Partial:** {len(planned) - len(pending)} of the {len(planned)} planned concepts are complete; the medians "
                   f"below are over those only. Pending: {', '.join(f'`{c}`' for c in pending)}. Rerun the benchmark command to resume."),
                  ""]  # fmt: skip
    abl = ablations_section(ablations, ablations_source) if ablations else []
    abl = (
        (step0_section(step0) if step0 else [])
        + [line for table in step0_tables or [] for line in step0_table_section(*table)]
        + [line for rank in prior_ranks or [] for line in prior_rank_section(*rank)]
        + (composition_section(*composition) if composition else [])
        + (selection_section(*selection) if selection else [])
        + [line for other in others or [] for line in other_bench_section(*other)]
        + (seed_spread_section(seed_spread) if seed_spread else [])
        + [line for crop in crop_sizes or [] for line in crop_size_section(*crop)]
        + (start_recipe_section(*start_recipe) if start_recipe else [])
        + (directions_section(*directions) if directions else [])
        + abl
    )
    if not summary:
        return "\n".join(lines + ["No complete concept yet.", ""] + abl)
    if not summary["methods"]:
        lines += ["Every concept is reported apart (scratch does not beat the trivial outputs by the margin): "
                  + ", ".join(f"`{c}`" for c in summary["apart"]) + ".", ""]  # fmt: skip
        summary = dict(summary, methods={}, targets={})
    lines += [f"## Summary: medians over {len(summary['concepts'])} held-out concept(s)"
              + (f" ({len(summary['apart'])} reported apart)" if summary["apart"] else ""), ""]  # fmt: skip
    lines += ["| method | reached | speedup (seconds) | speedup (steps) | seconds to target | PSNR step 0 | step 0 − oracle | rel. L2 to oracle | PSNR at stop |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for m, s in summary["methods"].items():
        lines.append(
            f"| {_label(results, m)} | {s['reached']}/{s['concepts']} | {_f(s['median_speedup'], 1, 'x')} | {_f(s['median_speedup_steps'], 1, 'x')} "
            f"| {_f(s['median_seconds'], 2)} | {_f(s['median_psnr_step0'])} | {_f(s['median_psnr_step0_minus_oracle'])} "
            f"| {_f(s['median_rel_l2_to_oracle'], 3)} | {_f(s['median_psnr_at_stop'])} |"
        )
    lines += ["", "Not reached counts as speedup 0 in the medians (so they are lower bounds); speedup in steps is `–`/∞ where the "
              "target was met at step 0. Median scratch final PSNR: " + _f(summary.get("median_scratch_final_psnr")) + " dB.", ""]  # fmt: skip
    lines += ["## Targets", ""]
    for gen, t in summary.get("targets", {}).items():

        def ok(flag):
            return "met" if flag else "**missed**"

        lines.append(f"- `{gen}` reaches scratch's final PSNR {_f(t['median_speedup'], 1)}x faster (median; target 15x: {ok(t['speedup_15x'])}); "
                     f"its PSNR at stop beats scratch's final on {_f(100 * (t['better_final_psnr_fraction'] or 0), 0)}% of concepts.")  # fmt: skip
        if "step0_beats_mean_and_nearest_fraction" in t:
            lines.append(f"- `{gen}` beats both the mean and the nearest concept at step 0 on {_f(100 * t['step0_beats_mean_and_nearest_fraction'], 0)}% "
                         f"of concepts (target 70%: {ok(t['step0_70pct'])}); reaches the target sooner than both on "
                         f"{_f(100 * t['sooner_than_mean_and_nearest_fraction'], 0)}%.")  # fmt: skip
        if "median_speedup_over_lora" in t:
            lines.append(f"- `{gen}` is {_f(t['median_speedup_over_lora'], 1)}x faster to that PSNR than base + fresh LoRA (median; target 3x: "
                         f"{ok(t['speedup_over_lora_3x'])}).")  # fmt: skip

        if METHODS[gen].sees_pairs:
            lines.append(f"  (`{gen}` chooses its start on {SELECTION_PAIRS} of the concept's train pairs, time included; the mean and the "
                         "nearest concept see only the text, so its step-0 comparison is not like for like.)")  # fmt: skip
    lines.append("")
    lines += by_kind(results)
    fractions = list(next(iter(summary["methods"].values()))["median_psnr_at_fraction"]) if summary["methods"] else []
    lines += ["## PSNR at fractions of the scratch budget (medians over the concepts whose run got that far; – where none did)", "",
              "| method | step 0 | " + " | ".join(f"{float(f):.1%} ({round(float(f) * cfg['scratch_steps'])} steps)" for f in fractions) + " |",
              "|---|---|" + "---|" * len(fractions)]  # fmt: skip
    for m, s in summary["methods"].items():
        lines.append(
            f"| {m} | {_f(s['median_psnr_step0'])} | "
            + " | ".join(_f(s["median_psnr_at_fraction"][f]) for f in fractions)
            + " |"
        )
    lines += ["", "## Per concept: speedup over scratch (PSNR at step 0)", ""] + per_concept_lines(results)
    fids = [(c, m, r["fid"]) for c, s in results["concepts"].items() for m, r in s["methods"].items() if r.get("fid")]
    if fids:
        lines += ["", "## FID (user-supplied feature network)", "", fids[0][2]["note"] + f" (weights: `{fids[0][2]['weights']}`).", "",
                  "| concept | method | FID |", "|---|---|---|"]  # fmt: skip
        lines += [f"| {c} | {m} | {_f(f['value'])} |" for c, m, f in fids]
    else:
        lines += ["", "FID: not computed (no `--fid-weights`); weightinit never downloads Inception weights."]
    lines += [""] + abl
    lines += ["## Plots", "", f"![PSNR against seconds per concept]({assets}/psnr_vs_seconds.png)", "",
              f"![Median speedup over scratch]({assets}/speedups.png)", ""]  # fmt: skip
    if grids:
        lines += ["## Image grids", ""] + [f"![{g}]({assets}/grid_{g}.jpg)" for g in grids] + [""]
    return "\n".join(lines)


README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"
#: (label, the LoRA-only method, the all-weights one): the table shows LoRA-only runs where there are any.
README_ROWS = (("base + fresh LoRA", "lora", "lora"), ("zoo mean", "mean_lora", "mean"), ("nearest concept by text", "nearest_lora", "nearest"),
               ("generated from text (1 step)", "generated_1_lora", "generated_1"), ("chosen on 8 of your pairs", "chosen_1_lora", "chosen_1"),
               ("the concept's own zoo weights", "oracle_lora", "oracle"))  # fmt: skip


def readme_results(results: dict, source: str) -> str:
    """The README's small results table: LoRA-only fine-tunes on the held-out concepts."""
    summary = results["summary"]
    methods = summary["methods"]
    n = len(summary["concepts"])
    lora = any(m.endswith("_lora") for m in methods)
    lines = [README_START,
             f"<!-- generated by `weightinit bench-report --readme README.md` from `{source}`; do not edit by hand -->",
             f"Held-out concepts of the zoo `{results['meta'].get('zoo', '?')}` ({n} that scratch learns; "
             f"{results['meta'].get('machine', {}).get('threads', '?')} CPU thread per run; runs of "
             f"{results['meta'].get('machine', {}).get('date', '?')[:10]}), each start "
             + ("fine-tuned (LoRA factors only) until" if lora else "fine-tuned (all weights) until")
             + f" it reaches scratch's final PSNR − "
             f"{results['config']['tolerance_db']} dB; medians, generation time included:",
             "",
             "| start | speedup over scratch (seconds) | (steps) | test PSNR before training, dB |",
             "|---|---|---|---|"]  # fmt: skip
    lines.append(
        f"| scratch ({results['config']['scratch_steps']} steps, final PSNR {_f(summary.get('median_scratch_final_psnr'))} dB) | 1x | 1x | |"
    )
    for label, lora_method, merge_method in README_ROWS:
        m = lora_method if lora else merge_method
        if m in methods:
            r = methods[m]
            lines.append(
                f"| {label} | {_f(r['median_speedup'], 1, 'x')} | {_f(r['median_speedup_steps'], 1, 'x')} | {_f(r['median_psnr_step0'])} |"
            )
    lines += [
        "",
        "All numbers, the all-weights fine-tunes and the targets: [docs/BENCHMARKS.md](docs/BENCHMARKS.md).",
        README_END,
    ]
    return "\n".join(lines)


def replace_readme_results(readme: str | os.PathLike, results: dict, source: str) -> None:
    """Rewrite the section between ``README_START`` and ``README_END`` of ``readme``."""
    path = Path(readme)
    text = path.read_text()
    if README_START not in text or README_END not in text:
        raise WeightinitError(f"{path} has no {README_START} ... {README_END} section to rewrite")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    atomic_write_text(path, head + readme_results(results, source) + tail)


def write_report(results_dir: str | os.PathLike, md_path: str | os.PathLike, *, grids: int = 4,
                 ablations: str | os.PathLike | None = None, step0: list[str | os.PathLike] = (),
                 readme: str | os.PathLike | None = None, directions: str | os.PathLike | None = None,
                 composition: str | os.PathLike | None = None, selection: str | os.PathLike | None = None,
                 others: list[str | os.PathLike] = (), step0_tables: list[str | os.PathLike] = (),
                 crop_sizes: list[str | os.PathLike] = (), start_recipe: str | os.PathLike | None = None,
                 seed_spread: list[str | os.PathLike] = (), prior_ranks: list[str | os.PathLike] = ()) -> dict:  # fmt: skip
    """results.json in the results folder; the markdown, plots and grids at ``md_path``.

    ``results_dir`` may also be a saved ``results.json`` (``docs/measurements/bench_full.json``):
    the report is then redrawn from it, with the image grids already drawn.

    ``ablations``: a ``weightinit bench-ablations`` result (``OUT/ablations/ablations.json``);
    by default the one in the results folder, if there is one. ``others``: further benchmark
    results (``weightinit bench --json``, ``experiments.rerun_methods --json``), a section each;
    ``step0_tables``: ``experiments.heldout_start`` files tabulated per held-out concept;
    ``crop_sizes``: ``experiments.crop_size`` results; ``start_recipe``: an ``experiments.start_recipe`` result;
    ``seed_spread``: benchmark results of the same methods and concepts under different seeds, one section;
    ``prior_ranks``: ``experiments.prior_rank`` results, one section each (one per zoo).
    """
    results_dir, md_path = Path(results_dir), Path(md_path)
    abl_path = Path(ablations) if ablations else results_dir / "ablations" / "ablations.json"
    if ablations and not abl_path.is_file():
        raise WeightinitError(f"no ablation results at {abl_path}; run `weightinit bench-ablations` first")
    abl = json.loads(abl_path.read_text()) if abl_path.is_file() else None
    missing = [
        str(p)
        for p in [
            *step0,
            *others,
            *step0_tables,
            *crop_sizes,
            *seed_spread,
            *prior_ranks,
            *(f for f in (directions, composition, selection, start_recipe) if f),
        ]
        if not Path(p).is_file()
    ]
    if missing:
        raise WeightinitError(
            f"no measurement files at {', '.join(missing)}; run the command that writes each first (docs/reproducing.md)"
        )
    step0_data = [(os.path.relpath(p, md_path.parent), json.loads(Path(p).read_text())) for p in step0]
    directions_data = (
        (os.path.relpath(directions, md_path.parent), json.loads(Path(directions).read_text())) if directions else None
    )
    composition_data, selection_data, start_recipe_data = (
        (os.path.relpath(f, md_path.parent), json.loads(Path(f).read_text())) if f else None
        for f in (composition, selection, start_recipe)
    )
    others_data, tables_data, crops_data, seeds_data, ranks_data = (
        [(os.path.relpath(p, md_path.parent), json.loads(Path(p).read_text())) for p in files]
        for files in (others, step0_tables, crop_sizes, seed_spread, prior_ranks)
    )
    from_file = results_dir.is_file()  # a saved results.json (the run files are not at hand)
    results = (
        json.loads(results_dir.read_text()) | {"redrawn_from_file": True} if from_file else write_results(results_dir)
    )
    if abl is not None:
        results["ablations"] = abl
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
    abl_rel = os.path.relpath(abl_path, md_path.parent) if abl is not None else ""
    atomic_write_text(
        md_path,
        markdown(
            results,
            ASSETS,
            grid_ids,
            rel,
            abl,
            abl_rel,
            step0_data,
            directions_data,
            composition_data,
            selection_data,
            others_data,
            tables_data,
            crops_data,
            start_recipe_data,
            seeds_data,
            ranks_data,
        ),
    )
    if readme is not None and results["summary"]:
        source = results_dir if from_file else results_dir / "results.json"
        replace_readme_results(readme, results, os.path.relpath(source, Path(readme).parent))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Regenerate results.json and BENCHMARKS.md from a benchmark's run files."
    )
    parser.add_argument("--results", required=True, help="The benchmark's --out folder.")
    parser.add_argument(
        "--out", default="docs/BENCHMARKS.md", help="The markdown to write (plots go to bench/ beside it)."
    )
    parser.add_argument("--grids", type=int, default=4, help="Image grids for this many concepts.")
    parser.add_argument(
        "--ablations",
        default=None,
        help="A bench-ablations result (default: RESULTS/ablations/ablations.json if present).",
    )
    parser.add_argument(
        "--step0", action="append", default=[], help="A heldout_start result to tabulate by direction (repeatable)."
    )
    parser.add_argument("--readme", default=None, help="Also rewrite the results table of this README.")
    parser.add_argument("--directions", default=None, help="A cyclegan_directions result to tabulate.")
    parser.add_argument("--composition", default=None, help="A composed_prior result to tabulate.")
    parser.add_argument("--selection", default=None, help="A pair_selection --timing result to tabulate.")
    parser.add_argument("--other", action="append", default=[], help="Another benchmark's results JSON (repeatable).")
    parser.add_argument(
        "--step0-table",
        action="append",
        default=[],
        help="A heldout_start result to tabulate per concept (repeatable).",
    )
    parser.add_argument("--crop-size", action="append", default=[], help="A crop_size result to tabulate (repeatable).")
    parser.add_argument("--start-recipe", default=None, help="A start_recipe result to tabulate.")
    parser.add_argument(
        "--prior-rank", action="append", default=[], help="A prior_rank result to tabulate (repeatable, one per zoo)."
    )
    parser.add_argument(
        "--seed-spread",
        action="append",
        default=[],
        help="A benchmark result under one seed (repeatable, one section).",
    )
    args = parser.parse_args(argv)
    results = write_report(
        args.results,
        args.out,
        grids=args.grids,
        ablations=args.ablations,
        step0=args.step0,
        readme=args.readme,
        directions=args.directions,
        composition=args.composition,
        selection=args.selection,
        others=args.other,
        step0_tables=args.step0_table,
        crop_sizes=args.crop_size,
        start_recipe=args.start_recipe,
        seed_spread=args.seed_spread,
        prior_ranks=args.prior_rank,
    )
    print(json.dumps({"results": str(Path(args.results) / "results.json"), "markdown": args.out,
                      "median_speedup": _json_safe(results["summary"].get("median_speedup", {}))}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
