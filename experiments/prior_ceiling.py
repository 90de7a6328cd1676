"""How far can a text-similarity blend of the zoo go at step 0? A diagnostic, not a method.

    python -m experiments.prior_ceiling --zoo zoo --json docs/measurements/prior_ceiling.json

For every held-out concept: test PSNR at step 0 of the zoo mean, the nearest training concept by
text, and the retrieval prior's blend on a grid of temperatures (how sharply it follows text
similarity) and scales (0 is the zoo mean, 1 the bundled prior, above 1 extrapolates away from the
mean), and the blend re-blended among its heaviest concept's strength siblings at each of
``experiments.text_policy.SIBLING_TEMPERATURES`` (whole texts, not split into parts). It counts,
for each grid point, in all and by held-out kind, the concepts where the blend beats *both* the mean and the
nearest concept, and how many concepts any grid point wins. The grid is scored on the held-out
concepts themselves, so the best row is an upper bound for this family of priors, not a tuned
setting (the bundled temperature was chosen on training concepts, ``prior_temperature``).
About 20 s per concept on one CPU thread.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from experiments.bench.methods import METHODS, BenchContext
from experiments.text_policy import SIBLING_TEMPERATURES
from weightinit.concepts.catalog import default_catalog
from weightinit.errors import WeightinitError
from weightinit.fileio import atomic_write_json
from weightinit.generator.prior import CANDIDATE_SCALES as SCALES
from weightinit.generator.prior import CANDIDATE_TEMPERATURES as TEMPERATURES
from weightinit.generator.siblings import sibling_weights
from weightinit.generator.weight_blend import blend_tensors
from weightinit.generators import bundled_generator_path
from weightinit.recipe import evaluate


def grid_key(temperature: float, scale: float) -> str:
    return f"t{temperature}_a{scale}"


def measure(zoo: str, generator: str, space: str = "factors") -> dict[str, dict[str, float]]:
    """Per held-out concept: the mean's, the nearest concept's and every grid point's step-0 PSNR.
    ``space``: blends of LoRA factors (scaled away from the mean of the factors) or of weight
    changes (``weights``: scaled away from the mean of the changes, ``weightinit.generator.weight_blend``)."""
    ctx = BenchContext(zoo, generator)
    gen = ctx.generator
    prior = gen.prior
    if prior is None:
        raise WeightinitError(f"generator {generator} has no retrieval prior")
    uniform = torch.full((prior.coef.shape[0],), 1.0 / prior.coef.shape[0])

    def start(weights: torch.Tensor, scale: float = 1.0):
        """The network of blend ``weights [C]`` at ``scale`` from the mean (1: the blend itself)."""
        if space == "weights":
            return ctx.merged(ctx.delta(blend_tensors(gen, scale * weights.reshape(-1) + (1 - scale) * uniform)))
        center = (gen.center if gen.center is not None else 0) + scale * prior.blend(weights)
        return ctx.merged_blocks(gen.normalizer.denormalize(center, torch.float32))

    rows = {}
    for cid in ctx.zoo.ids("heldout"):
        test = ctx.zoo.test_pairs(cid)
        query = gen.encode_text(ctx.zoo.record(cid).text).pooled
        row = {"max_similarity": (torch.nn.functional.normalize(query.float(), dim=-1) @ prior.keys.T).max().item()}
        for m in ("mean", "nearest"):
            row[m] = evaluate(METHODS[m].build(ctx, cid).model, *test)["psnr"]
        cosines = prior.similarity(query)[0]
        for t in SIBLING_TEMPERATURES:  # the blend re-blended among its heaviest concept's strengths
            weights = sibling_weights(
                prior.weights_from(cosines), prior.best_similarity(cosines), prior.concept_names, t
            )
            row[f"siblings_t{t}"] = evaluate(start(weights), *test)["psnr"]
        for t in TEMPERATURES:
            weights = prior.concept_weights(query, temperature=t)
            for a in SCALES:
                row[grid_key(t, a)] = evaluate(start(weights, a), *test)["psnr"]
        rows[cid] = row
        print(
            cid,
            f"mean {row['mean']:.2f} nearest {row['nearest']:.2f} bundled {row[grid_key(0.01, 1.0)]:.2f}",
            flush=True,
        )
    return rows


def summarize(rows: dict[str, dict[str, float]]) -> dict:
    keys = [grid_key(t, a) for t in TEMPERATURES for a in SCALES]
    keys += [k for k in (f"siblings_t{t}" for t in SIBLING_TEMPERATURES) if all(k in r for r in rows.values())]
    catalog = default_catalog()
    kind = {cid: (catalog.get(cid).heldout_kind or "other") if cid in catalog else "other" for cid in rows}

    def beats(r, k):
        return r[k] > max(r["mean"], r["nearest"])

    grid = {
        k: {
            "beats_mean_and_nearest": sum(beats(r, k) for r in rows.values()),
            "median_psnr_step0": statistics.median(r[k] for r in rows.values()),
        }
        for k in keys
    }
    best = max(grid, key=lambda k: (grid[k]["beats_mean_and_nearest"], grid[k]["median_psnr_step0"]))
    return {
        "concepts": len(rows),
        "grid": grid,
        "bundled": grid_key(0.01, 1.0),
        "best_fixed": best,
        "any_grid_point_beats_both": sum(any(beats(r, k) for k in keys) for r in rows.values()),
        "any_grid_point_beats_both_by_kind": {
            k: f"{sum(any(beats(r, g) for g in keys) for c, r in rows.items() if kind[c] == k)} of "
            f"{sum(kind[c] == k for c in rows)}"
            for k in sorted(set(kind.values()))
        },
        "median_mean": statistics.median(r["mean"] for r in rows.values()),
        "median_nearest": statistics.median(r["nearest"] for r in rows.values()),
        "per_concept": rows,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", required=True)
    parser.add_argument("--generator", default=None, help="Generator folder (default: the bundled one).")
    parser.add_argument("--json")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--space", choices=("factors", "weights"), default="factors", help="what the blends blend")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = summarize(measure(args.zoo, args.generator or str(bundled_generator_path()), args.space))
    n = out["concepts"]
    for k in (out["bundled"], out["best_fixed"]):
        g = out["grid"][k]
        print(
            f"{k}: beats the mean and the nearest concept on {g['beats_mean_and_nearest']} of {n}, median "
            f"{g['median_psnr_step0']:.2f} dB"
        )
    print(
        f"some grid point beats both on {out['any_grid_point_beats_both']} of {n} (choosing per concept with the test "
        f"set); by held-out kind: {out['any_grid_point_beats_both_by_kind']}"
    )
    if args.json:
        atomic_write_json(args.json, {"zoo": args.zoo, "space": args.space} | out)


if __name__ == "__main__":
    main()
