"""A start fitted to the user's pairs inside the retrieval prior's span: a few Adam steps on the
prior coefficients, from the text's blend, minimising L1 on k of the user's pairs.

The candidates that ``initialize(pairs=)`` chooses among are points of the prior's span (blends,
and each training concept's delta); fitting the coefficients reaches any point of that span, so
it can start closer to a concept no training concept is. Gradients flow through the generator's
own decoding (normaliser, block codec, LoRA factors) into the network's L1 on the pairs, with batch
statistics as the benchmark evaluates.

Settings (learning rate, steps) are chosen on training concepts (every (N / count)-th, their text
blend leaving the concept out); then the held-out concepts are measured once, against the text
start and the start chosen on the same pairs, with the seconds each takes.

    python -m experiments.pair_fit --zoo zoo --json docs/measurements/pair_fit.json
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from experiments.bench.methods import METHODS as BENCH_METHODS
from experiments.bench.methods import BenchContext
from experiments.bench.runner import spread
from weightinit.errors import FarConceptWarning
from weightinit.fileio import atomic_write_json
from weightinit.generators import bundled_generator_path
from weightinit.pair_fit import PriorSpan
from weightinit.recipe import batch_statistics, evaluate

LEARNING_RATES = (0.1, 0.3, 1.0)  # times the spread of the training concepts' coefficients
STEPS = (10, 30)


class SpanFit:
    """The network's weights as a differentiable function of the prior coefficients
    (``weightinit.pair_fit.PriorSpan`` from the zoo mean)."""

    def __init__(self, ctx: BenchContext):
        self.ctx, self.gen = ctx, ctx.generator
        self.model = ctx.base_model()
        self.span = PriorSpan(self.model, ctx.adapter, self.gen)
        self.scale = self.span.scale

    def params(self, c: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.span.weights(self.span.blocks(self.span.origin_at(c)))

    def fit(self, c0: torch.Tensor, pairs, lr: float, steps: int) -> torch.Tensor:
        """``c0`` moved by ``steps`` Adam steps of ``lr`` in units of the concepts' spread per coefficient."""
        x, y = pairs
        u = torch.zeros_like(c0, requires_grad=True)
        opt = torch.optim.Adam([u], lr=lr)
        with batch_statistics(self.model):
            for _ in range(steps):
                c = c0 + self.scale * u
                loss = F.l1_loss(torch.func.functional_call(self.model, self.params(c), (x,)), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
        return (c0 + self.scale * u).detach()

    def psnr(self, c: torch.Tensor, test) -> float:
        with torch.no_grad():
            self.model.load_state_dict({**self.model.state_dict(), **self.params(c)})
        return evaluate(self.model, *test)["psnr"]


def candidate_coefficients(prior, name: str, text: torch.Tensor, gen, cid: str, ctx) -> torch.Tensor:
    """The prior coefficients of a candidate ``initialize(pairs=)`` chose, by its name."""
    if name.startswith("concept "):
        return prior.coef[list(prior.concept_ids).index(name.removeprefix("concept "))].float()
    if name.startswith("blend "):
        t, a = re.fullmatch(r"blend t=([\d.]+) x([\d.]+)", name).groups()
        query = gen.encode_text(ctx.zoo.record(cid).text).pooled
        return float(a) * prior.coefficients_of(prior.concept_weights(query, temperature=float(t)))[0]
    return text  # the generated start: the text's blend, which the denoiser leaves as it is


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zoo", default="zoo")
    p.add_argument("--generator", default=None)
    p.add_argument("--choose-on", type=int, default=20)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", FarConceptWarning)
    ctx = BenchContext(args.zoo, args.generator or str(bundled_generator_path()))
    fit = SpanFit(ctx)
    prior, gen = ctx.generator.prior, ctx.generator
    ids = list(prior.concept_ids)

    def text_start(cid: str, exclude: int | None) -> torch.Tensor:
        query = gen.encode_text(ctx.zoo.record(cid).text).pooled
        return prior.coefficients(query, None if exclude is None else torch.tensor([exclude]))[0].float()

    scores = {(lr, steps): [] for lr in LEARNING_RATES for steps in STEPS}
    text_only = []
    for cid in spread(ids, args.choose_on):
        c0, pairs, test = text_start(cid, ids.index(cid)), ctx.selection_pairs(cid), ctx.zoo.test_pairs(cid)
        text_only.append(fit.psnr(c0, test))
        for lr in LEARNING_RATES:
            c = c0
            done = 0
            for steps in STEPS:  # the longer runs continue the shorter ones
                c = fit.fit(c, pairs, lr, steps - done)
                done = steps
                scores[(lr, steps)].append(fit.psnr(c, test))
    train = {f"lr {lr:g} x spread, {steps} steps": statistics.median(v) for (lr, steps), v in scores.items()}
    best = max(scores, key=lambda k: statistics.median(scores[k]))
    print(
        f"training concepts: text only {statistics.median(text_only):.2f}; "
        + "; ".join(f"{k} {v:.2f}" for k, v in train.items())
        + f"; best {best}",
        flush=True,
    )

    rows = {}
    for cid in ctx.zoo.ids("heldout"):
        pairs, test = ctx.selection_pairs(cid), ctx.zoo.test_pairs(cid)
        start = time.perf_counter()
        c = fit.fit(text_start(cid, None), pairs, *best)
        seconds = time.perf_counter() - start
        row = {"fitted": fit.psnr(c, test), "fitted_seconds": seconds}
        for m in ("generated_1", "chosen_1"):
            point = BENCH_METHODS[m].build(ctx, cid)
            row[m], row[f"{m}_seconds"] = evaluate(point.model, *test)["psnr"], point.seconds
            if m == "chosen_1":  # the chosen candidate's coefficients, then the same fit from there
                start = time.perf_counter()
                c = fit.fit(
                    candidate_coefficients(prior, point.info["choice"]["chosen"], text_start(cid, None), gen, cid, ctx),
                    pairs,
                    *best,
                )
                row["chosen_then_fitted"] = fit.psnr(c, test)
                row["chosen_then_fitted_seconds"] = point.seconds + time.perf_counter() - start
        rows[cid] = {k: round(v, 3) for k, v in row.items()}
        print(cid, rows[cid], flush=True)
    methods = ("fitted", "generated_1", "chosen_1", "chosen_then_fitted")
    out = {
        "command": "python -m experiments.pair_fit --zoo " + args.zoo,
        "training": {
            "text_only_median": statistics.median(text_only),
            "median": train,
            "best": {"lr_times_spread": best[0], "steps": best[1]},
        },
        "heldout": {
            "concepts": len(rows),
            "median_psnr_step0": {m: statistics.median(r[m] for r in rows.values()) for m in methods},
            "median_seconds": {m: statistics.median(r[f"{m}_seconds"] for r in rows.values()) for m in methods},
            "fitted_beats_chosen": sum(r["fitted"] > r["chosen_1"] for r in rows.values()),
            "chosen_then_fitted_beats_chosen": sum(r["chosen_then_fitted"] > r["chosen_1"] for r in rows.values()),
            "per_concept": rows,
        },
    }
    if args.json:
        atomic_write_json(args.json, out)
    print(out["heldout"]["median_psnr_step0"], out["heldout"]["median_seconds"], out["heldout"]["fitted_beats_chosen"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
