"""How well each initialisation starts on the held-out concepts: test PSNR at step 0, no training.

    python -m experiments.heldout_start --zoo zoo --json docs/measurements/heldout_start.json

For every held-out concept of the zoo: the base alone, base + zoo mean, base + nearest training
concept by text, the generator's retrieval prior alone, generated (one step), and the concept's
own zoo weights (the upper bound), each written into the base model and evaluated on the
concept's test pairs (the benchmark's methods, ``experiments.bench.methods``). Prints a table,
the medians and how often the generated weights beat both the mean and the nearest concept. This
is the step-0 column of the benchmark (``python -m experiments.bench run``) without its
fine-tuning runs: a minute, not hours.

Medians and wins are also given per direction (``by_direction``): ``forward`` for the catalog's
own concepts, ``reverse`` for the reverse concepts (``weightinit.concepts.builtin``); the
benchmark report's step-0 sections are here too (``python -m experiments.bench report --section step0=FILE``).

``--pairs N`` also starts from N of each concept's train pairs, as ``initialize(pairs=)`` does:
``chosen`` (``pairs_start="choose"``: the candidate that fits them best) and ``pair_generated``
(``pairs_start="generate"``: the generator's pair start, ``weightinit.pair_start``), each row
getting their step-0 test PSNR, and the report a top-level ``seconds`` object with the median
seconds from pairs to weights of each (one thread; the generator must have a pair start)::

    python -m experiments.heldout_start --zoo zoo --pairs 8 --json FILE
"""

from __future__ import annotations

import argparse
import math
import statistics
import warnings

import torch

from experiments.bench.markdown import fmt
from experiments.bench.methods import METHODS as ALL
from experiments.bench.methods import BenchContext
from weightinit.concepts.catalog import default_catalog
from weightinit.errors import FarConceptWarning, WeightinitError
from weightinit.fileio import atomic_write_json
from weightinit.generators import bundled_generator_path
from weightinit.initialization import initialize
from weightinit.recipe import evaluate

METHODS = ("base", "mean", "nearest", "prior", "generated_1", "oracle")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", required=True)
    parser.add_argument("--generator", default=None, help="Generator folder or hub id (default: the bundled one).")
    parser.add_argument("--json")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pairs", type=int, default=0, help="Also start from this many train pairs per concept.")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    report = measure(args.zoo, args.generator, pairs=args.pairs)
    if args.json:
        atomic_write_json(args.json, report)


def measure(zoo: str, generator: str | None = None, pairs: int = 0) -> dict:
    """Step-0 test PSNR of every method on every held-out concept of ``zoo``, printed as it goes;
    returns the report ``--json`` writes (``per_concept``, ``median_psnr_step0``, ``generated_beats``,
    ``by_direction``, ...). ``generator``: a folder or hub id, None for the bundled one.
    ``pairs``: also the starts from that many train pairs (module docstring)."""
    ctx = BenchContext(zoo, generator or str(bundled_generator_path()))
    if pairs and ctx.generator.pair_start is None:
        raise WeightinitError(
            f"--pairs measures the generator's pair start, and {ctx.generator.name} has none "
            "(train it with --pair-start, weightinit.pair_start)"
        )
    methods = [m for m in METHODS if m != "prior" or ctx.generator.prior is not None]
    warnings.simplefilter("ignore", FarConceptWarning)  # the far ones are counted, not shouted
    rows = {}
    print(f"{'concept':34s} " + " ".join(f"{m:>11s}" for m in methods))
    for cid in ctx.zoo.ids("heldout"):
        test = ctx.zoo.test_pairs(cid)
        rows[cid] = {m: round(evaluate(ALL[m].build(ctx, cid).model, *test)["psnr"], 3) for m in methods}
        if pairs:
            rows[cid].update(pair_starts(ctx, cid, pairs, test))
        shown = [*methods, *(PAIR_METHODS if pairs else ())]
        print(f"{cid:34s} " + " ".join(f"{rows[cid][m]:11.2f}" for m in shown), flush=True)
    medians, beats = summarise(rows, methods)
    print(f"{'median':34s} " + " ".join(f"{medians[m]:11.2f}" for m in methods))
    print(
        f"generated beats mean and nearest on {beats['mean_and_nearest']} of {len(rows)}; the mean on {beats['mean']}, "
        f"the nearest on {beats['nearest']}"
    )
    catalog = default_catalog()
    direction = {cid: catalog.get(cid).direction if cid in catalog else "forward" for cid in rows}
    by_direction = {}
    for d in ("forward", "reverse"):
        part = {cid: r for cid, r in rows.items() if direction[cid] == d}
        if part:
            m, b = summarise(part, methods)
            by_direction[d] = {"concepts": len(part), "median_psnr_step0": m, "generated_beats": b}
            print(
                f"{d}: {len(part)} concepts; median "
                + ", ".join(f"{k} {v:.2f}" for k, v in m.items())
                + f"; generated beats mean and nearest on {b['mean_and_nearest']}"
            )
    gen = ctx.generator
    extra = {}
    if pairs:
        extra["pairs"] = pairs
        extra["seconds"] = {m: statistics.median(r[f"{m}_seconds"] for r in rows.values()) for m in PAIR_METHODS}
        for m in PAIR_METHODS:
            medians[m] = statistics.median(r[m] for r in rows.values())
        extra["pair_generated_at_least_chosen"] = sum(r["pair_generated"] >= r["chosen"] for r in rows.values())
        print("pairs to weights, median seconds:", extra["seconds"])
    return {
        **extra,
        "zoo": str(zoo),
        "generator": generator or "bundled",  # as named: the bundled one's path is this machine's
        "concepts": len(rows),
        "text_conditioning": gen.text_conditioning,
        "train_concepts": gen.zoo_summary.get("train_concepts"),
        "composition": None if gen.composition is None else gen.composition.to_dict(),
        "prior_target": gen.training.get("prior_target", "self"),
        "prior_rank": None if gen.prior is None else gen.prior.rank,
        "median_psnr_step0": medians,
        "generated_beats": beats,
        "by_direction": by_direction,
        "direction": direction,
        "command": f"python -m experiments.heldout_start --zoo {zoo}"
        + (f" --generator {generator}" if generator else "")
        + (f" --pairs {pairs}" if pairs else ""),
        "per_concept": rows,
    }


#: the starts from pairs (``--pairs``), as ``initialize(pairs=, pairs_start=...)`` makes them
PAIR_METHODS = ("chosen", "pair_generated")


def pair_starts(ctx: BenchContext, concept_id: str, n: int, test) -> dict:
    """Step-0 test PSNR of each start from ``n`` train pairs, and its seconds from pairs to weights."""
    pairs = ctx.zoo.train_pairs(concept_id, n, ctx.photos)
    text = ctx.zoo.record(concept_id).text
    row = {}
    for name, how in zip(PAIR_METHODS, ("choose", "generate")):
        model = ctx.base_model()
        report = initialize(model, text, generator=ctx.generator, seed=ctx.seed, pairs=pairs, pairs_start=how)
        row[name] = round(evaluate(model, *test)["psnr"], 3)
        row[f"{name}_seconds"] = round((report.choice or report.pair_start)["seconds"], 4)
    return row


def summarise(rows: dict, methods) -> tuple[dict, dict]:
    """Median step-0 PSNR per method, and how many concepts the generated weights win."""
    medians = {m: statistics.median(r[m] for r in rows.values()) for m in methods}
    beats = {
        "mean_and_nearest": sum(r["generated_1"] > max(r["mean"], r["nearest"]) for r in rows.values()),
        "mean": sum(r["generated_1"] > r["mean"] for r in rows.values()),
        "nearest": sum(r["generated_1"] > r["nearest"] for r in rows.values()),
        "prior": sum(r["generated_1"] > r["prior"] for r in rows.values())
        if all("prior" in r for r in rows.values())
        else None,
    }
    return medians, beats


# --- its section of docs/BENCHMARKS.md -----------------------------------------------------------
STEP0_METHODS = METHODS  # its columns: every start this experiment scores


def step0_section(step0: list[tuple[str, dict]]) -> list[str]:
    """Step-0 PSNR on every held-out concept, per generator and per direction, from
    ``experiments.heldout_start`` files (``[(source path, its JSON)]``)."""
    lines = [
        "## Step 0 on every held-out concept, by direction",
        "",
        (
            "Test PSNR of each start written into the base before any fine-tuning (`python -m "
            "experiments.heldout_start --zoo zoo --generator GEN --json FILE`). `forward`: the catalog's own "
            "held-out concepts; `reverse`: their reverse concepts. Wins count concepts where the generated start "
            "beats both the zoo mean and the nearest training concept by text (pooled embedding). Prior rank: the "
            "principal components its retrieval prior keeps (– where the file does not record it: those generators "
            "kept 64)."
        ),
        "",
    ]
    lines += [
        "| file | zoo | generator | trained on | text conditioning | composite texts | denoiser corrects | prior "
        "rank | direction | concepts | " + " | ".join(STEP0_METHODS) + " | generated beats mean and nearest |",
        "|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(STEP0_METHODS) + "---|",
    ]
    for source, data in step0:
        parts = dict(data.get("by_direction") or {})
        parts["all"] = {
            "concepts": data["concepts"],
            "median_psnr_step0": data["median_psnr_step0"],
            "generated_beats": data["generated_beats"],
        }
        for d, part in parts.items():
            med, beats = part["median_psnr_step0"], part["generated_beats"]
            lines.append(
                f"| `{source}` | `{data.get('zoo', '?')}` | `{data.get('generator', '?')}` | "
                f"{data.get('train_concepts', '?')} concepts | {data.get('text_conditioning', 'pooled')} | "
                f"{'parts' if data.get('composition') else 'whole'} | "
                f"{'leave-one-out blend' if data.get('prior_target') == 'leave_one_out' else 'own blend'} | "
                f"{data.get('prior_rank') or '–'} | {d} | {part['concepts']} | "
                + " | ".join(fmt(med.get(m)) for m in STEP0_METHODS)
                + f" | {beats['mean_and_nearest']}/{part['concepts']} |"
            )
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
    """A step-0 win: the generated start above both the zoo mean and the nearest concept (a
    missing column never wins)."""
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
    lines = [
        "Wins by held-out kind (a win: the generated start beats both the zoo mean and the nearest concept; nearest "
        f"≈ own: concepts whose nearest training concept is within {NEAREST_CLOSE_DB} dB of their own weights, "
        "where a start beats it only by a hair):",
        "",
        "| file | "
        + " | ".join(f"{k}: wins (nearest ≈ own)" for k in kinds)
        + f" | all: wins (target {WINS_TARGET:.0%}) | generated − prior, median dB (target +{PRIOR_GAIN_TARGET_DB}) "
        "|",
        "|---|" + "---|" * (len(kinds) + 2),
    ]
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
        cells.append(fmt(gain, 3))
        if wins >= needed or (gain is not None and gain >= PRIOR_GAIN_TARGET_DB):
            met.append(source)
        lines.append(f"| `{source}` | " + " | ".join(cells) + " |")
    lines += [
        "",
        (
            f"Text-only targets: the generated start above both the zoo mean and the nearest concept on at least "
            f"{WINS_TARGET:.0%} of the held-out concepts, and at least {PRIOR_GAIN_TARGET_DB} dB above the prior "
            "alone (median of per-concept differences). "
            + (
                f"Met, at least one of them, by {', '.join(f'`{m}`' for m in met)}."
                if met
                else "No generator here meets either."
            )
        ),
    ]
    best = min(losses, key=lambda f: sum(losses[f].values()))
    lines[-1] += (
        f" The one with the fewest losses, `{best}`, loses {sum(losses[best].values())}: "
        + ", ".join(f"{n} {k}" for k, n in losses[best].items() if n)
        + "."
    )
    return lines + [""]


def step0_table_section(source: str, data: dict) -> list[str]:
    """One generator's step-0 test PSNR on every held-out concept of its zoo (``experiments.heldout_start``)."""
    rows = data["per_concept"]
    methods = [m for m in STEP0_METHODS if any(m in r for r in rows.values())]
    b = data["generated_beats"]
    lines = [
        f"## Step 0 per held-out concept: generator `{data.get('generator', '?')}` on zoo `{data.get('zoo', '?')}`",
        "",
        (
            f"From `{source}` (`python -m experiments.heldout_start --zoo {data.get('zoo', 'ZOO')} --generator GEN`): "
            "test PSNR (dB) of each start before any fine-tuning; `oracle` is the concept's own zoo weights. The "
            f"generated start beats both the mean and the nearest concept on {b['mean_and_nearest']} of {len(rows)} "
            "(marked ✓)."
        ),
        "",
        "| concept | " + " | ".join(methods) + " | |",
        "|---|" + "---|" * (len(methods) + 1),
    ]
    for cid, r in rows.items():
        win = beats_mean_and_nearest(r)
        lines.append(f"| {cid} | " + " | ".join(fmt(r.get(m)) for m in methods) + f" | {'✓' if win else ''} |")
    med = data["median_psnr_step0"]
    lines.append("| **median** | " + " | ".join(f"**{fmt(med.get(m))}**" for m in methods) + " | |")
    return lines + [""]


def section(files: list[tuple[str, dict]]) -> list[str]:
    """docs/BENCHMARKS.md's step-0 section: every file's medians by direction, then its wins by
    held-out kind (``python -m experiments.bench report --section step0=FILE``, repeatable)."""
    return step0_section(files)


def per_concept_section(files: list[tuple[str, dict]]) -> list[str]:
    """One step-0 table per file, a row per held-out concept (``--section step0-table=FILE``)."""
    return [line for source, data in files for line in step0_table_section(source, data)]


if __name__ == "__main__":
    main()
