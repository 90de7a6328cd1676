"""A start from the user's pairs in one learned step: the pairs' gradient at the text's start,
mapped to a move in the retrieval prior's coefficients by a map learned on training concepts.

The text gives a point of the prior's span (its blend). One forward and backward pass of the
network on k of the user's pairs gives the L1 gradient with respect to the coefficients (in units
of the training concepts' spread per coefficient, as ``weightinit.pair_fit`` moves them). A
linear map learned on training concepts turns that gradient into the move: each training concept,
its whole group (strengths and reverse) left out of the text's blend, contributes its gradient
and the move from that blend to its own coefficients. The maps tried: a per-coefficient step
(``diagonal``) and a ridge regression (``ridge``), each at several regularisations, and a blend of
the moves to the training concepts weighted by how steeply the gradient says each lowers the
pairs' L1 (``attend``, a softmax at several sharpnesses: a one-pass stand-in for choosing).

The map is chosen on training concepts, leave-group-out (a concept's group is also left out of
the map that scores it), by step-0 test PSNR; then fitted on every training concept and the
held-out concepts measured once against the text's blend, the start ``initialize(pairs=)``
chooses on the same pairs, and the seconds each takes (pairs to weights, one thread).

    python -m experiments.pair_step --zoo zoo --json docs/measurements/pair_step.json
"""

from __future__ import annotations

import argparse
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
from experiments.pair_fit import SpanFit
from weightinit.concepts.concept import concept_group as group_of
from weightinit.errors import FarConceptWarning
from weightinit.fileio import atomic_write_json
from weightinit.generators import bundled_generator_path
from weightinit.recipe import batch_statistics, evaluate

SETTINGS = (
    tuple(("diagonal", lam) for lam in (0.1, 1.0, 10.0))
    + tuple(("ridge", lam) for lam in (1.0, 10.0, 100.0))
    + tuple(("attend", beta) for beta in (3.0, 10.0, 30.0, 100.0))
)


def gradient(fit: SpanFit, c0: torch.Tensor, pairs) -> torch.Tensor:
    """d L1 / d u at u = 0, where the coefficients are ``c0 + spread * u``."""
    x, y = pairs
    u = torch.zeros_like(c0, requires_grad=True)
    with batch_statistics(fit.model):
        loss = F.l1_loss(torch.func.functional_call(fit.model, fit.params(c0 + fit.scale * u), (x,)), y)
        (g,) = torch.autograd.grad(loss, u)
    return g / g.norm().clamp_min(1e-12)  # the direction; its length is the map's to learn


class StepMap:
    """Gradient direction -> move in spread units, fitted by least squares."""

    def __init__(self, grads: torch.Tensor, moves: torch.Tensor, kind: str, lam: float):
        self.kind = kind
        if kind == "diagonal":
            self.d = (grads * moves).sum(0) / ((grads * grads).sum(0) + lam)
        else:
            self.w = torch.linalg.solve(grads.T @ grads + lam * torch.eye(grads.shape[1]), grads.T @ moves)

    def move(self, g: torch.Tensor) -> torch.Tensor:
        return self.d * g if self.kind == "diagonal" else g @ self.w


def attend_move(g: torch.Tensor, c0: torch.Tensor, candidates: torch.Tensor, scale, beta: float) -> torch.Tensor:
    """A blend of the moves to the training concepts ``candidates`` (their coefficients), weighted
    by how steeply each lowers the pairs' L1 at the text's blend (the gradient's cosine with the
    move): softmax(-beta * cosine). Large beta picks the steepest concept."""
    moves = (candidates - c0) / scale
    cosine = (moves @ g) / moves.norm(dim=1).clamp_min(1e-12)
    return torch.softmax(-beta * cosine, dim=0) @ moves


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zoo", default="zoo")
    p.add_argument("--generator", default=None)
    p.add_argument("--choose-on", type=int, default=60, help="training concepts the map is chosen on")
    p.add_argument("--train", type=int, default=0, help="training concepts the map learns from (0: all)")
    p.add_argument("--heldout", type=int, default=0, help="held-out concepts measured (0: all)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", FarConceptWarning)
    ctx = BenchContext(args.zoo, args.generator or str(bundled_generator_path()))
    gen, fit = ctx.generator, SpanFit(ctx)
    prior = gen.prior
    ids = list(prior.concept_ids)
    groups = [group_of(c) for c in ids]
    coef = prior.coef.float()

    def text_start(cid: str, leave_out: str | None) -> torch.Tensor:
        query = gen.encode_text(ctx.zoo.record(cid).text).pooled
        weights = prior.concept_weights(query)[0]
        if leave_out is not None:
            weights = weights * torch.tensor([g != leave_out for g in groups], dtype=weights.dtype)
            weights = weights / weights.sum()
        return prior.coefficients_of(weights[None])[0].float()

    learn_from = spread(ids, args.train) if args.train else ids
    t0 = time.perf_counter()
    starts, grads, moves = {}, {}, {}
    for cid in learn_from:
        i = ids.index(cid)
        starts[cid] = text_start(cid, groups[i])
        grads[cid] = gradient(fit, starts[cid], ctx.selection_pairs(cid))
        moves[cid] = (coef[i] - starts[cid]) / fit.scale
    print(f"gradients of {len(learn_from)} training concepts in {time.perf_counter() - t0:.0f} s", flush=True)

    # --- the map, leave-group-out on training concepts -----------------------------------------
    chosen_on = spread(learn_from, args.choose_on)
    scores = {s: [] for s in SETTINGS}
    text_only = []
    for cid in chosen_on:
        group = group_of(cid)
        rest = [c for c in learn_from if group_of(c) != group]
        g_rest, m_rest = torch.stack([grads[c] for c in rest]), torch.stack([moves[c] for c in rest])
        test = ctx.zoo.test_pairs(cid)
        text_only.append(fit.psnr(starts[cid], test))
        rest_coef = coef[[ids.index(c) for c in rest]]
        for kind, lam in SETTINGS:
            if kind == "attend":
                move = attend_move(grads[cid], starts[cid], rest_coef, fit.scale, lam)
            else:
                move = StepMap(g_rest, m_rest, kind, lam).move(grads[cid])
            scores[(kind, lam)].append(fit.psnr(starts[cid] + fit.scale * move, test))
    train = {f"{k} {lam:g}": statistics.median(v) for (k, lam), v in scores.items()}
    best = max(scores, key=lambda s: statistics.median(scores[s]))
    print(f"training concepts: text only {statistics.median(text_only):.2f}; {train}; best {best}", flush=True)

    if best[0] == "attend":
        learned = None
    else:
        learned = StepMap(torch.stack(list(grads.values())), torch.stack(list(moves.values())), *best)
    rows = {}
    heldout = ctx.zoo.ids("heldout")
    for cid in spread(heldout, args.heldout) if args.heldout else heldout:
        pairs, test = ctx.selection_pairs(cid), ctx.zoo.test_pairs(cid)
        c0 = text_start(cid, None)
        start = time.perf_counter()
        g = gradient(fit, c0, pairs)
        move = attend_move(g, c0, coef, fit.scale, best[1]) if learned is None else learned.move(g)
        c = c0 + fit.scale * move
        seconds = time.perf_counter() - start
        row = {"text_blend": fit.psnr(c0, test), "pair_step": fit.psnr(c, test), "pair_step_seconds": seconds}
        point = BENCH_METHODS["chosen_1"].build(ctx, cid)
        row["chosen_1"], row["chosen_1_seconds"] = evaluate(point.model, *test)["psnr"], point.seconds
        rows[cid] = {k: round(v, 3) for k, v in row.items()}
        print(cid, rows[cid], flush=True)
    methods = ("text_blend", "pair_step", "chosen_1")
    out = {
        "command": "python -m experiments.pair_step --zoo " + args.zoo,
        "training": {
            "concepts": len(learn_from),
            "chosen_on": len(chosen_on),
            "text_only_median": statistics.median(text_only),
            "median": train,
            "best": {"kind": best[0], "lambda": best[1]},
        },
        "heldout": {
            "concepts": len(rows),
            "median_psnr_step0": {m: statistics.median(r[m] for r in rows.values()) for m in methods},
            "median_seconds": {m: statistics.median(r[f"{m}_seconds"] for r in rows.values()) for m in methods[1:]},
            "pair_step_beats_chosen": sum(r["pair_step"] > r["chosen_1"] for r in rows.values()),
            "per_concept": rows,
        },
    }
    if args.json:
        atomic_write_json(args.json, out)
    print(
        out["heldout"]["median_psnr_step0"], out["heldout"]["median_seconds"], out["heldout"]["pair_step_beats_chosen"]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
