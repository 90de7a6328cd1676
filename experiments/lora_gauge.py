"""Does the gauge of a LoRA start change how fast LoRA-only fine-tuning reaches the target?

A LoRA start ``B A`` can be written with other factors of the same product: ``B M``, ``M^-1 A``
for any invertible ``M``. Step 0 is the same; the first steps are not (Adam moves each factor by
about its learning rate, so the product moves by ``dB A + B dA``, which depends on the split). The
weight blend writes its factors balanced (``U sqrt(S)``, ``sqrt(S) V^T``,
``weightinit.generator.weight_blend.best_factors``); a concept's own zoo factors and the pair
start's (points of the prior's span, decoded) are not. On the weight blend's training concepts
its balanced factors reached the target sooner even where step 0 was no higher (issue 28).

For training concepts (every (N / ``--concepts``)-th of the prior's, held out as a new concept's
would be: its whole group out of the text's blend, of the pair start and of the nearest concepts),
two starts a user gets, each as it is written today and re-gauged to balanced factors of the same
product (rank unchanged):

- ``nearest``: the own factors of the training concept nearest by text (what ``pairs_start="choose"``
  often keeps);
- ``pair``: the pair start with the generator's own settings, fitted without the concept's group.

Each is fine-tuned LoRA-only (the zoo's rank, seed, learning rate and batch size) until the test
PSNR reaches the concept's own zoo weights' less ``--margin`` dB, or ``--cap`` steps. Held-out
concepts are never read. Prints and saves steps to the target per concept and their medians.

    python -m experiments.lora_gauge --zoo zoo --concepts 12 --json docs/measurements/lora_gauge.json
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

from experiments.bench.methods import BenchContext
from experiments.bench.runner import spread
from experiments.text_policy_ttq import fine_tune, summarise
from weightinit.errors import FarConceptWarning
from weightinit.fileio import atomic_write_json
from weightinit.generator.weight_blend import best_factors
from weightinit.generators import bundled_generator_path
from weightinit.pair_features import pair_features
from weightinit.pair_fit import PriorSpan, fit_to_pairs
from weightinit.pair_start import pair_start_data, text_origins, written_origin
from weightinit.recipe import batch_statistics, evaluate
from weightinit.representation import LORA_A, LORA_B


def balanced(factors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same products ``B A`` per LoRA target, as balanced factors of the same rank."""
    out = dict(factors)
    for name in factors:
        if name.endswith(LORA_A):
            target = name.removesuffix(LORA_A)
            a, b = factors[name].float(), factors[target + LORA_B].float()
            out[target + LORA_B], out[name] = best_factors(b, a, a.shape[0])
    return out


def pair_start(ctx: BenchContext, span: PriorSpan, data, i: int, keep: torch.Tensor) -> dict[str, torch.Tensor]:
    """Concept ``i``'s pair start as ``start_from_pairs`` makes it, with the concept's group left out
    of the proposer and of the text's blend."""
    gen, shipped = ctx.generator, ctx.generator.pair_start
    settings = {k: getattr(shipped, k) for k in ("checked", "fit_steps", "fit_lr", "text_origin")}
    proposer = data.proposer(gen.prior.coef.float(), keep, **settings)
    cid = data.ids[i]
    pairs = ctx.selection_pairs(cid)
    rows, _ = proposer.propose(pair_features(*pairs), data.texts[i], proposer.checked)
    origins = [span.origin_at(r) for r in rows]
    if proposer.text_origin != "span":
        origins = text_origins(origins, written_origin(span, gen, data.weights[i]), proposer.text_origin)
    with torch.no_grad(), batch_statistics(span.model):
        l1 = [float(span.l1(span.blocks(o), *pairs)) for o in origins]
    best = min(range(len(l1)), key=lambda k: (l1[k], k))
    factors = span.factors(span.blocks(origins[best]))
    if proposer.fit_steps:
        factors, _ = fit_to_pairs(
            span.model, ctx.adapter, gen, factors, pairs, steps=proposer.fit_steps, lr=proposer.fit_lr,
            origin=origins[best], l1_before=l1[best], span=span,
        )  # fmt: skip
    return factors


def nearest(ctx: BenchContext, data, i: int, keep: torch.Tensor) -> dict[str, torch.Tensor]:
    """The own zoo factors of the training concept nearest to concept ``i`` by its text's blend
    (its group out)."""
    weights = data.weights[i].clone()
    weights[~keep] = -1
    return ctx.zoo.concept(data.ids[int(weights.argmax())])


def _steps(run: dict) -> str:
    return f"{run['steps']:.0f} steps" if run["reached"] else "not reached"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zoo", default="zoo")
    p.add_argument("--generator", default=None)
    p.add_argument("--concepts", type=int, default=12)
    p.add_argument("--cap", type=int, default=400)
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--margin", type=float, default=1.0, help="dB below the concept's own zoo weights")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", FarConceptWarning)
    ctx = BenchContext(args.zoo, args.generator or str(bundled_generator_path()))
    gen = ctx.generator
    span = PriorSpan(ctx.base_model(), ctx.adapter, gen)
    data = pair_start_data(gen, ctx.zoo, photos=ctx.photos)
    chosen = spread(data.ids, args.concepts)
    per = {"nearest": {}, "pair": {}}
    for cid in chosen:
        i = data.ids.index(cid)
        keep = torch.tensor([g != data.groups[i] for g in data.groups])
        target = evaluate(ctx.merged(ctx.delta(ctx.zoo.concept(cid))), *ctx.zoo.test_pairs(cid))["psnr"] - args.margin
        for kind, factors in (("nearest", nearest(ctx, data, i, keep)), ("pair", pair_start(ctx, span, data, i, keep))):
            row = {"target": round(target, 4)}
            row["without"] = fine_tune(ctx, cid, factors, target, args)  # as written today
            row["with"] = fine_tune(ctx, cid, balanced(factors), target, args)
            per[kind][cid] = row
            a, b = row["without"], row["with"]
            print(
                f"{kind:8s} {cid:34s} target {target:.2f}: as written {a['step0_psnr']:.2f} dB -> {_steps(a)}; "
                f"balanced {b['step0_psnr']:.2f} dB -> {_steps(b)}",
                flush=True,
            )
            if args.json:  # after every concept: a stopped run keeps what it measured
                out = {
                    "command": f"python -m experiments.lora_gauge --zoo {args.zoo}"
                    + (f" --generator {args.generator}" if args.generator else "")
                    + f" --concepts {args.concepts} --cap {args.cap} --eval-every {args.eval_every}",
                    "margin": args.margin,
                    "concepts": chosen,
                    **{k: {"concepts": v, "summary": summarise(v, args.cap)} for k, v in per.items()},
                }
                atomic_write_json(args.json, out)
    for kind, rows in per.items():
        s = summarise(rows, args.cap)
        print(
            f"{kind}: balanced faster on {s['with_faster']}, slower on {s['with_slower']} of {s['concepts']} "
            f"(median {s['median_steps_with']:.0f} steps against {s['median_steps_without']:.0f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
