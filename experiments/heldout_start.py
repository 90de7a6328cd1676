"""How well each initialisation starts on the held-out concepts: test PSNR at step 0, no training.

    python -m experiments.heldout_start --zoo zoo --json docs/measurements/heldout_start.json

For every held-out concept of the zoo: the base alone, base + zoo mean, base + nearest training
concept by text, the generator's retrieval prior alone, generated (one step), and the concept's
own zoo weights (the upper bound), each written into the base model and evaluated on the
concept's test pairs (the benchmark's methods, ``experiments.bench.methods``). Prints a table,
the medians and how often the generated weights beat both the mean and the nearest concept. This
is the step-0 column of ``weightinit bench`` without its fine-tuning runs: a minute, not hours.

Medians and wins are also given per direction (``by_direction``): ``forward`` for the catalog's
own concepts, ``reverse`` for the reverse concepts (``weightinit.concepts.builtin``); the
benchmark report's step-0 section reads these files (``weightinit bench-report --step0 FILE``).
"""

from __future__ import annotations

import argparse
import statistics
import warnings

import torch

from experiments.bench.methods import METHODS as ALL
from experiments.bench.methods import BenchContext
from weightinit.concepts.catalog import default_catalog
from weightinit.errors import FarConceptWarning
from weightinit.fileio import atomic_write_json
from weightinit.generators import bundled_generator_path
from weightinit.recipe import evaluate

METHODS = ("base", "mean", "nearest", "prior", "generated_1", "oracle")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", required=True)
    parser.add_argument("--generator", default=None, help="Generator folder or hub id (default: the bundled one).")
    parser.add_argument("--json")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    report = measure(args.zoo, args.generator)
    if args.json:
        atomic_write_json(args.json, report)


def measure(zoo: str, generator: str | None = None) -> dict:
    """Step-0 test PSNR of every method on every held-out concept of ``zoo``, printed as it goes;
    returns the report ``--json`` writes (``per_concept``, ``median_psnr_step0``, ``generated_beats``,
    ``by_direction``, ...). ``generator``: a folder or hub id, None for the bundled one."""
    ctx = BenchContext(zoo, generator or str(bundled_generator_path()))
    methods = [m for m in METHODS if m != "prior" or ctx.generator.prior is not None]
    warnings.simplefilter("ignore", FarConceptWarning)  # the far ones are counted, not shouted
    rows = {}
    print(f"{'concept':34s} " + " ".join(f"{m:>11s}" for m in methods))
    for cid in ctx.zoo.ids("heldout"):
        test = ctx.zoo.test_pairs(cid)
        rows[cid] = {m: round(evaluate(ALL[m].build(ctx, cid).model, *test)["psnr"], 3) for m in methods}
        print(f"{cid:34s} " + " ".join(f"{rows[cid][m]:11.2f}" for m in methods), flush=True)
    medians, beats = summarise(rows, methods)
    print(f"{'median':34s} " + " ".join(f"{medians[m]:11.2f}" for m in methods))
    print(
        f"generated beats mean and nearest on {beats['mean_and_nearest']} of {len(rows)}; the mean on {beats['mean']}, the nearest on {beats['nearest']}"
    )
    catalog = default_catalog()
    direction = {cid: catalog.get(cid).direction if cid in catalog else "forward" for cid in rows}
    by_direction = {}
    for d in ("forward", "reverse"):
        part = {cid: r for cid, r in rows.items() if direction[cid] == d}
        if part:
            m, b = summarise(part, methods)
            by_direction[d] = {"concepts": len(part), "median_psnr_step0": m, "generated_beats": b}
            print(f"{d}: {len(part)} concepts; median " + ", ".join(f"{k} {v:.2f}" for k, v in m.items())
                  + f"; generated beats mean and nearest on {b['mean_and_nearest']}")  # fmt: skip
    gen = ctx.generator
    return {
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
        "command": "python -m experiments.heldout_start",
        "per_concept": rows,
    }


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


if __name__ == "__main__":
    main()
