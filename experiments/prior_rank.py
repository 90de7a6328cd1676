"""Choose the retrieval prior's rank by what the weights do, on training concepts; then measure held-out.

    python -m experiments.prior_rank --zoo zoo --json docs/measurements/prior_rank.json

The prior keeps each training concept's delta in a rank-R principal-component basis
(``weightinit.generator.prior``). The rank was chosen by weight-space error, where truncation
helps; but a blend at the prior's low temperature is nearly one concept, and its truncated delta
can map images much worse than the delta itself. This measures the function instead:

- **training, leave one concept out** (``--limit`` concepts, evenly spaced): for each concept, the
  prior is refitted (centre, basis, coefficients) on the *other* training concepts at every rank of
  ``--ranks`` ("full" keeps every component), queried with the concept's text, written into the base
  and scored by step-0 test PSNR. The rank with the best median is the choice; held-out concepts are
  not read for it.
- **held-out**: the generator's prior refitted on all training concepts at each rank, its start (the
  generator's own path: composition rule included, no denoiser) on every held-out concept, with how
  often it beats both the zoo mean and the nearest concept by text (``heldout_start``'s rule).

The normaliser is the generator's (fitted on every training concept); it is affine per slot, so a
blend is the same before or after it.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

from experiments.bench.methods import METHODS as ALL
from experiments.bench.methods import BenchContext
from weightinit.errors import FarConceptWarning
from weightinit.fileio import atomic_write_json
from weightinit.generator.prior import RetrievalPrior
from weightinit.generator.training import GeneratorTrainingConfig, load_training_data
from weightinit.generators import bundled_generator_path
from weightinit.recipe import evaluate

RANKS = ("32", "64", "128", "full")
DEFAULT_LIMIT = 60


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", required=True)
    parser.add_argument("--generator", default=None, help="Generator folder (default: the bundled one).")
    parser.add_argument("--ranks", default=",".join(RANKS))
    parser.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help="Training concepts for the leave-one-out choice."
    )
    parser.add_argument("--json")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    report = measure(args.zoo, args.generator, args.ranks.split(","), limit=args.limit)
    if args.json:
        atomic_write_json(args.json, report)


def _rank(name: str, concepts: int) -> int:
    return concepts if name == "full" else int(name)


def measure(zoo_dir: str, generator: str | None, ranks, *, limit: int) -> dict:
    ctx = BenchContext(zoo_dir, generator or str(bundled_generator_path()))
    gen, zoo = ctx.generator, ctx.zoo
    warnings.simplefilter("ignore", FarConceptWarning)
    known = set(GeneratorTrainingConfig.__dataclass_fields__)
    config = GeneratorTrainingConfig.from_dict(
        {k: v for k, v in gen.training.items() if k in known}
    )  # minus the run's summary
    data = load_training_data(zoo, gen.text_encoder, config)
    ids, temperature = data.concept_ids, gen.prior.temperature
    owner = torch.repeat_interleave(torch.arange(len(ids)), data.phrasing_count)
    keys = data.text.pooled
    raw = data.blocks + data.center  # normalised, not centred

    def start_psnr(blocks, cid):
        return evaluate(ctx.merged_blocks(gen.normalizer.denormalize(blocks, torch.float32)), *zoo.test_pairs(cid))[
            "psnr"
        ]

    # --- training concepts, each left out of its own prior
    chosen = ids if limit >= len(ids) else [ids[round(i * (len(ids) - 1) / (limit - 1))] for i in range(limit)]
    train_rows, t0 = {}, time.perf_counter()
    for cid in chosen:
        i = ids.index(cid)
        others = torch.arange(len(ids)) != i
        centre = raw[others].mean(0)
        phr = others[owner]
        remap = torch.cumsum(others.long(), 0) - 1
        query = gen.encode_text(zoo.record(cid).text).pooled
        row = {}
        for r in ranks:
            prior = RetrievalPrior.fit(
                raw[others] - centre, keys[phr], remap[owner[phr]], rank=_rank(r, len(ids)), temperature=temperature
            )
            row[r] = round(start_psnr(centre + prior.blocks(query), cid), 3)
        train_rows[cid] = row
        print(f"train {cid:34s} " + " ".join(f"{r}={v:.2f}" for r, v in row.items()), flush=True)
    train_median = {r: statistics.median(row[r] for row in train_rows.values()) for r in ranks}
    best = max(ranks, key=lambda r: train_median[r])
    print(
        "training, leave one out, median: "
        + " ".join(f"{r}={v:.2f}" for r, v in train_median.items())
        + f"; best rank {best} ({time.perf_counter() - t0:.0f} s)"
    )

    # --- held-out concepts, the generator's prior refitted at each rank on every training concept
    fitted = {
        r: RetrievalPrior.fit(
            data.blocks, keys, owner, rank=_rank(r, len(ids)), temperature=temperature, concept_ids=tuple(ids)
        )
        for r in ranks
    }
    held_rows = {}
    for cid in zoo.ids("heldout"):
        test = zoo.test_pairs(cid)
        row = {m: round(evaluate(ALL[m].build(ctx, cid).model, *test)["psnr"], 3) for m in ("mean", "nearest")}
        for r in ranks:
            gen.prior = fitted[r]
            row[r] = round(evaluate(ALL["prior"].build(ctx, cid).model, *test)["psnr"], 3)
        held_rows[cid] = row
        print(f"heldout {cid:34s} " + " ".join(f"{k}={v:.2f}" for k, v in row.items()), flush=True)
    held = {
        r: {
            "median_psnr_step0": statistics.median(row[r] for row in held_rows.values()),
            "beats_mean_and_nearest": sum(row[r] > max(row["mean"], row["nearest"]) for row in held_rows.values()),
        }
        for r in ranks
    }
    for r, v in held.items():
        print(
            f"held-out rank {r}: median {v['median_psnr_step0']:.2f}, beats mean and nearest on "
            f"{v['beats_mean_and_nearest']} of {len(held_rows)}"
        )
    return {
        "zoo": str(zoo_dir),
        "generator": generator or "bundled",
        "temperature": temperature,
        "ranks": list(ranks),
        "training_concepts": len(ids),
        "train": {
            "concepts": len(train_rows),
            "median_psnr_step0": train_median,
            "best": best,
            "per_concept": train_rows,
        },
        "heldout": {"concepts": len(held_rows), "by_rank": held, "per_concept": held_rows},
        "command": command_line(zoo_dir, generator, ranks, limit),
    }


def command_line(zoo_dir: str, generator: str | None, ranks, limit: int) -> str:
    """The command that reproduces a result: every option that is not its default."""
    extra = f" --generator {generator}" if generator else ""
    extra += f" --ranks {','.join(ranks)}" if tuple(ranks) != RANKS else ""
    extra += f" --limit {limit}" if limit != DEFAULT_LIMIT else ""
    return f"python -m experiments.prior_rank --zoo {zoo_dir}{extra}"


# --- its section of docs/BENCHMARKS.md -----------------------------------------------------------
def prior_rank_section(source: str, data: dict) -> list[str]:
    """The retrieval prior's rank chosen on training concepts left out of their own prior, then the
    held-out concepts at every rank (``experiments.prior_rank``)."""
    train, held = data["train"], data["heldout"]
    zoo = f" (`{data['zoo']}`)" if data.get("zoo") else ""
    lines = [
        f"## Retrieval prior: principal components kept{zoo}",
        "",
        (
            f"From `{source}` (`{data.get('command', 'python -m experiments.prior_rank')}`): step-0 test PSNR of the "
            f"prior alone (no denoiser, temperature {data['temperature']}), {data['training_concepts']} training "
            f"concepts. Training rows: {train['concepts']} concepts, each with the prior refitted on the other "
            f"training concepts; the rank with the best median (**{train['best']}**) is the one chosen, and held-out "
            "rows played no part in it. Held-out rows: the prior fitted on every training concept; a win beats both "
            "the zoo mean and the nearest concept by text."
        ),
        "",
        "| rank | training, median (dB) | held-out, median (dB) | held-out wins over mean and nearest |",
        "|---|---|---|---|",
    ]
    for r in data["ranks"]:
        h = held["by_rank"][r]
        lines.append(
            f"| {r} | {train['median_psnr_step0'][r]:.2f} | {h['median_psnr_step0']:.2f} | "
            f"{h['beats_mean_and_nearest']} of {held['concepts']} |"
        )
    return lines + [""]


def section(files: list[tuple[str, dict]]) -> list[str]:
    """Its section of docs/BENCHMARKS.md, one per file
    (``python -m experiments.bench report --section prior-rank=FILE``)."""
    return [line for source, data in files for line in prior_rank_section(source, data)]


if __name__ == "__main__":
    main()
