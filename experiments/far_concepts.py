"""When is a concept too far from the zoo for the retrieval prior, and what should it start from?

    python -m experiments.far_concepts --zoo zoo --generator runs/generator \\
        --json docs/measurements/far_concepts.json [--write]

Measured on the generator's *training* concepts only (held-out concepts are never read): each
training concept is treated as unseen by leaving out its whole group (every strength of the same
edit, ``-light/-medium/-heavy``), its best text similarity to the remaining training phrasings is
recorded, and its test PSNR at step 0 is measured for the prior's blend of the remaining
concepts (at the generator's temperature and at broader ones), the zoo mean and the base alone.
Far is where the prior stops gaining over the zoo mean: the threshold is the similarity that
maximises the mean step-0 PSNR over the training concepts when every concept below it gets the
mean instead of the prior, never below the lowest similarity measured (below it nothing was
measured). The fallback is whichever start (the mean, or the prior at a broader temperature) did
best on the concepts below the threshold. ``--write``
stores it as the generator's ``far_policy`` (``generator_config.json``); ``initialize`` then warns
with :class:`~weightinit.errors.FarConceptWarning` below the threshold and uses the fallback.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

import torch

from experiments.bench.methods import BenchContext
from weightinit.fileio import atomic_write_json
from weightinit.generator.model import WeightGenerator
from weightinit.recipe import evaluate

BROADER_TEMPERATURES = (0.03, 0.1, 0.3)
_STRENGTH = re.compile(r"-(?:light|medium|heavy|full)(?=$|-reverse$)")


def concept_group(concept_id: str) -> str:
    """Concepts that differ only in strength share a group ("sepia-light" and "sepia-heavy")."""
    return _STRENGTH.sub("", concept_id)


def choose_policy(rows: list[dict], fallbacks: list[str]) -> dict:
    """The (threshold, fallback) with the best mean PSNR when concepts with ``similarity`` below
    the threshold get the fallback and the others the prior; ties go to the lower threshold."""
    rows = sorted(rows, key=lambda r: r["similarity"])
    best = {"similarity": -1.0, "fallback": fallbacks[0], "mean_psnr": statistics.fmean(r["prior"] for r in rows)}
    for f in fallbacks:
        below = 0.0
        above = sum(r["prior"] for r in rows)
        for i, r in enumerate(rows):
            below += r[f]
            above -= r["prior"]
            # threshold just above this row's similarity: rows[:i+1] fall back
            if i + 1 < len(rows) and rows[i + 1]["similarity"] == r["similarity"]:
                continue
            score = (below + above) / len(rows)
            if score > best["mean_psnr"] + 1e-9:
                nxt = rows[i + 1]["similarity"] if i + 1 < len(rows) else r["similarity"] + 1e-3
                best = {"similarity": round((r["similarity"] + nxt) / 2, 4), "fallback": f, "mean_psnr": score}
    best["mean_psnr"] = round(best["mean_psnr"], 4)
    return best


def extend_to_support(policy: dict, rows: list[dict], fallbacks: list[str], fraction: float = 0.1) -> dict:
    """Texts less similar to the zoo than every concept measured are outside what the measurement
    covers: there the threshold is at least the lowest similarity measured, with the fallback
    that did best on the least similar ``fraction`` of the concepts (the closest evidence)."""
    lowest = min(r["similarity"] for r in rows)
    if policy["similarity"] >= lowest:
        return dict(policy, reason="maximises mean step-0 PSNR over the training concepts")
    tail = sorted(rows, key=lambda r: r["similarity"])[: max(1, round(fraction * len(rows)))]
    best = max(fallbacks, key=lambda f: statistics.fmean(r[f] for r in tail))
    return dict(
        policy,
        similarity=round(lowest, 4),
        fallback=best,
        reason=(
            f"the prior never lost to a fallback over the measured range; below the lowest similarity measured "
            f"the fallback best on the least similar {len(tail)} concepts"
        ),
    )


def measure(ctx, *, limit: int | None = None, log=print) -> dict:
    gen = ctx.generator
    prior = gen.prior
    if prior is None:
        raise SystemExit("the generator has no retrieval prior; nothing to measure")
    ids = list(prior.concept_ids)
    groups = [concept_group(c) for c in ids]
    center = gen.center if gen.center is not None else torch.zeros(gen.layout.num_blocks, gen.layout.block_size)
    mean_blocks = gen.normalizer.denormalize(center, torch.float32)
    rows = []
    for i, cid in enumerate(ids[:limit]):
        query = gen.encode_text(ctx.zoo.record(cid).text).pooled
        out = torch.tensor([groups[prior.owner[k]] == groups[i] for k in range(prior.owner.numel())])
        sims = prior.similarity(query)[0].masked_fill(out[None], -1.0)
        test = ctx.zoo.test_pairs(cid)
        row = {"concept": cid, "group": groups[i], "similarity": round(float(sims.max()), 4)}
        for name, t in (("prior", prior.temperature), *((f"prior_t{t}", t) for t in BROADER_TEMPERATURES)):
            blocks = gen.normalizer.denormalize(center + prior.blend(prior.weights_from(sims, t)), torch.float32)
            row[name] = round(evaluate(ctx.merged_blocks(blocks), *test)["psnr"], 4)
        row["mean"] = round(evaluate(ctx.merged_blocks(mean_blocks), *test)["psnr"], 4)
        row["base"] = round(evaluate(ctx.base_model(), *test)["psnr"], 4)
        rows.append(row)
        log(
            f"{cid:34s} sim {row['similarity']:.3f}  prior {row['prior']:6.2f}  mean {row['mean']:6.2f}  base "
            f"{row['base']:6.2f}  " + "  ".join(f"t{t} {row[f'prior_t{t}']:6.2f}" for t in BROADER_TEMPERATURES)
        )
    return summarise(rows, prior.temperature)


def far_policy(rows: list[dict]) -> dict:
    """Far is where the prior stops gaining over the zoo mean: the threshold that maximises the mean
    step-0 PSNR when concepts below it get the mean instead of the prior (never below the lowest
    similarity measured); the fallback is the start best on the concepts below it."""
    fallbacks = ["mean", *(f"prior_t{t}" for t in BROADER_TEMPERATURES)]
    threshold = extend_to_support(choose_policy(rows, ["mean"]), rows, ["mean"])["similarity"]
    below = [r for r in rows if r["similarity"] < threshold] or sorted(rows, key=lambda r: r["similarity"])[:1]
    best = max(fallbacks, key=lambda f: statistics.fmean(r[f] for r in below))
    mean_psnr = statistics.fmean(r[best] if r["similarity"] < threshold else r["prior"] for r in rows)
    return {
        "similarity": threshold,
        "fallback": best,
        "mean_psnr": round(mean_psnr, 4),
        "concepts_below": len(below),
        "fallback_psnr_below": {f: round(statistics.fmean(r[f] for r in below), 4) for f in ["prior", *fallbacks]},
    }


def summarise(rows: list[dict], base_temperature: float) -> dict:
    """The policy, the gain of the prior over the mean by similarity quartile, and the rows."""
    policy = far_policy(rows)
    quartiles = statistics.quantiles([r["similarity"] for r in rows], n=4)
    bins = []
    edges = [-1.0, *quartiles, 1.01]
    for lo, hi in zip(edges, edges[1:]):
        inside = [r for r in rows if lo <= r["similarity"] < hi]
        if inside:
            bins.append(
                {
                    "similarity": [round(lo, 3), round(hi, 3)],
                    "concepts": len(inside),
                    "median_prior_minus_mean_db": round(statistics.median(r["prior"] - r["mean"] for r in inside), 3),
                }
            )
    stored = {"similarity": policy["similarity"], "fallback": "mean" if policy["fallback"] == "mean" else "prior"}
    if policy["fallback"] != "mean":
        stored["temperature"] = float(policy["fallback"].removeprefix("prior_t"))
    stored.update(
        measured_on=f"{len(rows)} training concepts, each with its strength group left out",
        command="python -m experiments.far_concepts",
    )
    return {
        "policy": stored,
        "choice": policy,
        "bins_by_similarity": bins,
        "per_concept": rows,
        "base_temperature": base_temperature,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", required=True)
    parser.add_argument("--generator", required=True, help="generator folder")
    parser.add_argument("--json")
    parser.add_argument("--write", action="store_true", help="store the chosen policy in the generator folder")
    parser.add_argument("--limit", type=int, help="only the first N training concepts (a quick look)")
    parser.add_argument(
        "--rows-from", help="choose the policy again from the per-concept rows of an earlier --json (no scoring)"
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.rows_from:
        earlier = json.loads(Path(args.rows_from).read_text())
        result = summarise(earlier["per_concept"], earlier["base_temperature"])
    else:
        result = measure(BenchContext(args.zoo, args.generator), limit=args.limit)
    print(
        f"policy: below similarity {result['policy']['similarity']} fall back to {result['choice']['fallback']} "
        f"(mean step-0 PSNR {result['choice']['mean_psnr']:.2f} dB over {len(result['per_concept'])} training concepts)"
    )
    for b in result["bins_by_similarity"]:
        print(
            f"  similarity {b['similarity'][0]:.2f}-{b['similarity'][1]:.2f}: {b['concepts']} concepts, "
            f"prior - mean {b['median_prior_minus_mean_db']:+.2f} dB (median)"
        )
    if args.json:
        atomic_write_json(args.json, result)
    if args.write:
        gen = WeightGenerator.from_pretrained(args.generator)
        gen.far_policy = result["policy"]
        gen.save_pretrained(args.generator)
        print(f"wrote far_policy to {args.generator}")


if __name__ == "__main__":
    main()
