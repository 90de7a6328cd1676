"""Would a few of the user's own pairs pick a better start than text alone? A diagnostic, not a method.

    python -m weightinit.benchmarks.pair_selection --zoo zoo --json docs/measurements/pair_selection.json

Text alone does not beat both the zoo mean and the nearest concept at step 0 on 70% of the
held-out concepts (``prior_ceiling``: no blend of the prior does, even chosen per concept on the
test set). A user who fine-tunes has pairs, though. For every held-out concept this scores
candidate starts by L1 on ``--pairs`` of the concept's *train* pairs and reports the chosen one's
step-0 PSNR on the *test* pairs, for two candidate sets that need only the generator bundle:

- ``generator``: the generated weights (1 step) and the prior's blends on a grid of temperatures
  and scales (as in ``prior_ceiling``);
- ``generator+concepts``: those plus every training concept's weights as the prior's basis
  reconstructs them (retrieval by data rather than by text). This is what
  ``initialize(..., pairs=...)`` chooses among (``weightinit.selection``).

A fair baseline gets the same pairs: ``nearest_by_pairs`` picks among the training concepts
alone. Also reported: the mean, the nearest concept by text and the generated weights, and how
often each selection beats both the mean and the nearest concept by text (the issue's step-0
target). About 35 s per concept on one CPU thread beside two other jobs.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from weightinit.fileio import atomic_write_json

SELECTIONS = ("generator", "generator+concepts", "nearest_by_pairs")


def l1(model, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    from weightinit.recipe import evaluate

    return evaluate(model, inputs, targets)["l1"]


def measure_concept(ctx, cid: str, n_pairs: int) -> dict:
    from weightinit.bench.methods import METHODS
    from weightinit.bench.runner import zoo_pairs
    from weightinit.recipe import evaluate

    gen = ctx.generator.generator
    (train_in, train_out), test, _ = zoo_pairs(ctx.zoo, cid)
    pairs = train_in[:n_pairs], train_out[:n_pairs]
    generated = METHODS["generated_1"].build(ctx, cid).model
    # (set, name, de-normalised blocks or None for the generated weights); models are built again
    # when chosen rather than kept: ~200 of them would not fit comfortably
    candidates = [("generator", "generated_1", None)] + [
        ("concepts" if name.startswith("concept ") else "generator", name, blocks)
        for name, blocks in gen.candidate_blocks(ctx.zoo.record(cid).text)
    ]

    def model_of(blocks):
        return generated if blocks is None else ctx.merged_blocks(blocks)

    scored = [(kind, name, l1(model_of(blocks), *pairs), blocks) for kind, name, blocks in candidates]
    pools = {"generator": {"generator"}, "generator+concepts": {"generator", "concepts"}, "nearest_by_pairs": {"concepts"}}
    row: dict = {m: evaluate(METHODS[m].build(ctx, cid).model, *test)["psnr"] for m in ("mean", "nearest")}
    row["generated_1"] = evaluate(generated, *test)["psnr"]
    for selection, kinds in pools.items():
        _, name, _, blocks = min((c for c in scored if c[0] in kinds), key=lambda c: c[2])
        row[selection] = evaluate(model_of(blocks), *test)["psnr"]
        row[f"{selection}_choice"] = name
    return row


def summarize(rows: dict[str, dict]) -> dict:
    def beats_both(r, k):
        return r[k] > max(r["mean"], r["nearest"])

    keys = ("generated_1",) + SELECTIONS
    return {
        "concepts": len(rows),
        "median_psnr_step0": {k: statistics.median(r[k] for r in rows.values()) for k in ("mean", "nearest") + keys},
        "beats_mean_and_nearest": {k: sum(beats_both(r, k) for r in rows.values()) for k in keys},
        "per_concept": rows,
    }


def main() -> None:
    from weightinit.bench.methods import BenchContext
    from weightinit.initialization import bundled_generator_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", required=True)
    parser.add_argument("--generator", default=None, help="Generator folder (default: the bundled one).")
    parser.add_argument("--pairs", type=int, default=8, help="Train pairs the selection may look at.")
    parser.add_argument("--concepts", default=None, help="Comma-separated held-out concept ids (default: all).")
    parser.add_argument("--json")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ctx = BenchContext(args.zoo, args.generator or str(bundled_generator_path()))
    if ctx.generator.generator.prior is None:
        parser.error("the generator has no retrieval prior")
    ids = args.concepts.split(",") if args.concepts else ctx.zoo.ids("heldout")
    rows = {}
    for cid in ids:
        rows[cid] = r = measure_concept(ctx, cid, args.pairs)
        print(f"{cid:34s} mean {r['mean']:.2f} nearest {r['nearest']:.2f} generated {r['generated_1']:.2f} | "
              + " ".join(f"{s} {r[s]:.2f} ({r[s + '_choice']})" for s in SELECTIONS), flush=True)  # fmt: skip
    out = summarize(rows)
    n = out["concepts"]
    for k, v in out["beats_mean_and_nearest"].items():
        print(f"{k}: beats the mean and the nearest concept by text on {v} of {n}, median {out['median_psnr_step0'][k]:.2f} dB")
    if args.json:
        atomic_write_json(args.json, {"zoo": args.zoo, "pairs": args.pairs} | out)


if __name__ == "__main__":
    main()
