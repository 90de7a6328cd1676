"""A start generated from the user's pairs: pair features -> the retrieval prior's coefficients.

One forward pass: the edit's features (``weightinit.pair_features``, from k of the user's pairs)
and the text's prior blend go through a ridge regression to the coefficients of the concept's
delta in the prior's basis. It is trained on training concepts only, each with its own first k
train pairs as the condition and its own weights (its row of the prior) as the target.

Settings are chosen on training concepts, leave-group-out: a concept's whole group (its
strengths and its reverse) is held out while the regression that scores it is fitted, so it
must generalise rather than look up. Then, with those settings fitted on every training concept,
the held-out concepts are measured once: step-0 test PSNR against the text-only start, the
start chosen on the same pairs, and the zoo mean, plus the seconds each takes.

    python -m experiments.pair_start --zoo zoo --json docs/measurements/pair_start.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

from experiments.bench.methods import METHODS as BENCH_METHODS
from experiments.bench.methods import BenchContext
from experiments.bench.runner import spread
from weightinit.concepts.concept import concept_group as group_of
from weightinit.errors import FarConceptWarning
from weightinit.fileio import atomic_write_json
from weightinit.generators import bundled_generator_path
from weightinit.pair_features import pair_features
from weightinit.recipe import evaluate

#: The predictors tried on training concepts: ridge regression of the coefficients (``direct``) or
#: of their difference to the text's prior blend (``residual``), and a softmax blend of the
#: training concepts nearest in feature space (``blend``, its temperature).
SETTINGS = (
    tuple(("direct", lam) for lam in (10.0, 100.0, 1000.0))
    + tuple(("residual", lam) for lam in (10.0, 100.0, 1000.0))
    + tuple(("blend", t) for t in (0.1, 0.3, 1.0))
)


class PairPredictor:
    """Pair features (and the text's prior blend) -> the concept's coefficients in the prior's basis."""

    def __init__(self, features: torch.Tensor, text: torch.Tensor, coef: torch.Tensor, kind: str, value: float):
        self.mu, self.sd = features.mean(0), features.std(0).clamp_min(1e-6)
        self.kind, self.value = kind, value
        z = (features - self.mu) / self.sd
        if kind == "blend":
            self.keys, self.coef = z, coef
            return
        target = coef - text if kind == "residual" else coef
        design = torch.cat([z, torch.ones(len(z), 1)], dim=1)
        eye = torch.eye(design.shape[1])
        eye[-1, -1] = 0  # the intercept is not shrunk
        self.w = torch.linalg.solve(design.T @ design + value * eye, design.T @ target)

    def predict(self, features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        z = (features - self.mu) / self.sd
        if self.kind == "blend":
            distance = torch.cdist(z, self.keys) / z.shape[1] ** 0.5
            return torch.softmax(-distance / self.value, dim=1) @ self.coef
        out = torch.cat([z, torch.ones(len(z), 1)], dim=1) @ self.w
        return out + text if self.kind == "residual" else out


def text_coefficients(gen, cid: str, text: str, exclude: int | None) -> torch.Tensor:
    """The prior's blend for the text in the basis (the concept's own row left out when ``exclude``)."""
    query = gen.encode_text(text).pooled
    excl = None if exclude is None else torch.tensor([exclude])
    return gen.prior.coefficients(query, exclude=excl)[0].float()


def blocks_of(gen, coefficients: torch.Tensor) -> torch.Tensor:
    center = gen.center if gen.center is not None else 0
    return gen.normalizer.denormalize(center + gen.prior.delta(coefficients[None]), torch.float32)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zoo", default="zoo")
    p.add_argument("--generator", default=None)
    p.add_argument("--pairs", type=int, default=8)
    p.add_argument("--choose-on", type=int, default=60, help="training concepts the settings are chosen on")
    p.add_argument("--setting", help="KIND:VALUE to use without the search (one chosen earlier on training concepts)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", FarConceptWarning)
    ctx = BenchContext(args.zoo, args.generator or str(bundled_generator_path()))
    gen = ctx.generator
    prior = gen.prior
    ids = list(prior.concept_ids)
    coef = prior.coef.float()
    t0 = time.perf_counter()
    features = torch.stack([pair_features(*ctx.zoo.train_pairs(c, args.pairs)) for c in ids])
    texts = torch.stack([text_coefficients(gen, c, ctx.zoo.record(c).text, i) for i, c in enumerate(ids)])
    print(f"features of {len(ids)} training concepts in {time.perf_counter() - t0:.0f} s", flush=True)
    groups = [group_of(c) for c in ids]

    # --- settings, leave-group-out on training concepts -----------------------------------------
    chosen_on = spread(ids, args.choose_on)
    settings = SETTINGS
    if args.setting:
        kind, value = args.setting.split(":")
        settings = ((kind, float(value)),)
    scores: dict[tuple[str, float], list[float]] = {setting: [] for setting in settings}
    text_only = []
    for cid in chosen_on:
        i = ids.index(cid)
        keep = torch.tensor([g != groups[i] for g in groups])
        test = ctx.zoo.test_pairs(cid)
        text_only.append(evaluate(ctx.merged_blocks(blocks_of(gen, texts[i])), *test)["psnr"])
        for setting in scores:
            predictor = PairPredictor(features[keep], texts[keep], coef[keep], *setting)
            c = predictor.predict(features[i : i + 1], texts[i : i + 1])[0]
            scores[setting].append(evaluate(ctx.merged_blocks(blocks_of(gen, c)), *test)["psnr"])
    train_median = {f"{kind} {value:g}": statistics.median(v) for (kind, value), v in scores.items()}
    best = max(scores, key=lambda k: statistics.median(scores[k]))
    print(
        f"training concepts (leave-group-out): text only {statistics.median(text_only):.2f} dB; "
        + "; ".join(f"{k} {v:.2f}" for k, v in train_median.items())
        + f"; best {best}",
        flush=True,
    )

    # --- held-out concepts, once ---------------------------------------------------------------
    reg = PairPredictor(features, texts, coef, *best)
    rows = {}
    for cid in ctx.zoo.ids("heldout"):
        test = ctx.zoo.test_pairs(cid)
        pairs = ctx.selection_pairs(cid)
        start = time.perf_counter()
        f = pair_features(*pairs)
        c = reg.predict(f[None], text_coefficients(gen, cid, ctx.zoo.record(cid).text, None)[None])[0]
        blocks = blocks_of(gen, c)
        seconds = time.perf_counter() - start
        model = ctx.merged_blocks(blocks)
        row = {
            "pairs": evaluate(model, *test)["psnr"],
            "pairs_seconds": seconds,
            "pairs_l1": evaluate(model, *pairs)["l1"],
        }
        for m in ("generated_1", "chosen_1", "mean"):
            point = BENCH_METHODS[m].build(ctx, cid)
            row[m] = evaluate(point.model, *test)["psnr"]
            row[f"{m}_seconds"] = point.seconds
            row[f"{m}_l1"] = evaluate(point.model, *pairs)["l1"]
        # the pair start kept only where it fits the pairs better: over the text start, and over the chosen one
        row["pairs_or_generated"] = row["pairs"] if row["pairs_l1"] < row["generated_1_l1"] else row["generated_1"]
        row["chosen_or_pairs"] = row["pairs"] if row["pairs_l1"] < row["chosen_1_l1"] else row["chosen_1"]
        rows[cid] = {k: round(v, 3) for k, v in row.items()}
        print(cid, rows[cid], flush=True)
    methods = ("pairs", "generated_1", "chosen_1", "mean", "pairs_or_generated", "chosen_or_pairs")
    medians = {m: statistics.median(r[m] for r in rows.values()) for m in methods}
    seconds = {
        m: statistics.median(r[f"{m}_seconds"] for r in rows.values()) for m in ("pairs", "generated_1", "chosen_1")
    }
    out = {
        "command": "python -m experiments.pair_start --zoo "
        + args.zoo
        + (f" --generator {args.generator}" if args.generator else "")
        + (f" --setting {args.setting}" if args.setting else ""),
        "pairs": args.pairs,
        "features": int(features.shape[1]),
        "rank": prior.rank,
        "training": {
            "concepts": chosen_on,
            "text_only_median": statistics.median(text_only),
            "median": train_median,
            "best": {"kind": best[0], "value": best[1]},
        },
        "heldout": {
            "concepts": len(rows),
            "median_psnr_step0": medians,
            "median_seconds": seconds,
            "pairs_beats_chosen": sum(r["pairs"] > r["chosen_1"] for r in rows.values()),
            "pairs_beats_generated": sum(r["pairs"] > r["generated_1"] for r in rows.values()),
            "per_concept": rows,
        },
    }
    if args.json:
        atomic_write_json(args.json, out)
    print(out["heldout"]["median_psnr_step0"], out["heldout"]["median_seconds"])
    print(
        f"pairs beat chosen on {out['heldout']['pairs_beats_chosen']} of {len(rows)}, generated on "
        f"{out['heldout']['pairs_beats_generated']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
