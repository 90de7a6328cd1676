"""How well each initialisation starts on the held-out concepts: test PSNR at step 0, no training.

    python -m weightinit.benchmarks.heldout_start --zoo zoo --json docs/measurements/heldout_start.json

For every held-out concept of the zoo: the base alone, base + zoo mean, base + nearest training
concept by text, the generator's retrieval prior alone, generated (one step), and the concept's
own zoo weights (the upper bound), each written into the base model and evaluated on the
concept's test pairs (the benchmark's methods, ``weightinit.bench.methods``). Prints a table,
the medians and how often the generated weights beat both the mean and the nearest concept. This
is the step-0 column of ``weightinit bench`` without its fine-tuning runs: a minute, not hours.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from weightinit.fileio import atomic_write_json

METHODS = ("base", "mean", "nearest", "prior", "generated_1", "oracle")


def main() -> None:
    from weightinit.bench.methods import METHODS as ALL, BenchContext
    from weightinit.bench.runner import zoo_test_pairs
    from weightinit.recipe import evaluate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", required=True)
    parser.add_argument("--generator", default=None, help="Generator folder or hub id (default: the bundled one).")
    parser.add_argument("--json")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from weightinit.initialization import bundled_generator_path

    ctx = BenchContext(args.zoo, args.generator or str(bundled_generator_path()))
    methods = [m for m in METHODS if m != "prior" or ctx.generator.generator.prior is not None]
    rows = {}
    print(f"{'concept':34s} " + " ".join(f"{m:>11s}" for m in methods))
    for cid in ctx.zoo.ids("heldout"):
        test = zoo_test_pairs(ctx.zoo, cid)
        rows[cid] = {m: round(evaluate(ALL[m].build(ctx, cid).model, *test)["psnr"], 3) for m in methods}
        print(f"{cid:34s} " + " ".join(f"{rows[cid][m]:11.2f}" for m in methods), flush=True)
    medians = {m: statistics.median(r[m] for r in rows.values()) for m in methods}
    beats = {
        "mean_and_nearest": sum(r["generated_1"] > max(r["mean"], r["nearest"]) for r in rows.values()),
        "mean": sum(r["generated_1"] > r["mean"] for r in rows.values()),
        "nearest": sum(r["generated_1"] > r["nearest"] for r in rows.values()),
    }
    print(f"{'median':34s} " + " ".join(f"{medians[m]:11.2f}" for m in methods))
    print(f"generated beats mean and nearest on {beats['mean_and_nearest']} of {len(rows)}; the mean on {beats['mean']}, the nearest on {beats['nearest']}")
    if args.json:
        atomic_write_json(args.json, {"zoo": str(args.zoo), "generator": ctx.generator.name, "concepts": len(rows),
                                      "median_psnr_step0": medians, "generated_beats": beats, "per_concept": rows})  # fmt: skip


if __name__ == "__main__":
    main()
