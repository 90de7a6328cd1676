"""A start generated from the concept text and the user's pairs (``weightinit.pair_start``): how
its settings were chosen, and what it gives on held-out concepts.

The pair start proposes points of the retrieval prior's span from what the pairs look like (the
text's blend, a ridge regression from the edit's features, the training concepts whose pairs look
most alike), checks ``checked`` of them by the network's L1 on the pairs, and moves the best by
``steps`` Adam steps of ``lr`` (in the training concepts' spread per coefficient). Where the
generator blends in weight space, the text's point may be the start text alone writes instead
(``text_origin``: ``span``, ``written``, ``written-text-only``; ``weightinit.pair_start.TEXT_ORIGINS``).

Settings are chosen on training concepts (every (N / count)-th), leave-group-out: a concept's
whole group (strengths, reverse) is out of its text's blend, of the regression, of the feature
statistics and of the neighbours it may propose. The choice is the best median step-0 test PSNR
among the settings whose median estimated time (features, ``checked`` checks, ``steps`` steps, as
measured per concept on one thread) is within ``--seconds``. Then the pair start fitted on every
training concept with those settings is measured once on the held-out concepts through the
library (``start_from_pairs``, the path ``initialize(pairs=)`` takes), against the text's blend
and the start ``initialize(pairs=, pairs_start="choose")`` chooses, with the seconds each takes
from pairs to weights (one thread).

    python -m experiments.pair_generator --zoo zoo --json docs/measurements/pair_generator.json
    python -m experiments.pair_generator --zoo zoo-unet128 --generator unet128 --lrs 0.1,0.2 --choose-on 24 \\
        --seconds 1 --json docs/measurements/pair_generator_unet128.json   # 128 px: 4x the pixels, 4x the budget
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

from experiments.bench.methods import BenchContext
from experiments.bench.runner import spread
from weightinit.errors import FarConceptWarning
from weightinit.fileio import atomic_write_json
from weightinit.generators import bundled_generator_path
from weightinit.initialization import load_generator
from weightinit.metrics import mean_psnr
from weightinit.pair_features import pair_features
from weightinit.pair_fit import PriorSpan
from weightinit.pair_start import (
    TEXT_ORIGINS,
    pair_start_data,
    start_from_pairs,
    text_coefficients,
    text_origins,
    written_origin,
)
from weightinit.recipe import batch_statistics
from weightinit.selection import choose_on_pairs

#: points checked on the pairs: 1 is the text's blend alone, 2 adds the regressed point, more add
#: the training concepts whose pairs look most alike
CHECKED = (1, 2, 4, 6, 10)
STEPS = (0, 1, 2, 3, 4, 5, 6)
LEARNING_RATES = (0.05, 0.1, 0.2)


def psnr(span: PriorSpan, blocks: torch.Tensor, test) -> float:
    """Test PSNR as ``weightinit.metrics.paired_metrics`` gives it, in batch statistics as the
    benchmark evaluates; without SSIM, which this loop does not need."""
    x, y = test
    with torch.no_grad(), batch_statistics(span.model):
        return mean_psnr(span.forward(blocks, x), y)


def adam_path(span: PriorSpan, origin: torch.Tensor, pairs, lr: float, steps: int) -> list[torch.Tensor]:
    """The blocks after 0, 1, ..., ``steps`` Adam steps from ``origin`` (as ``fit_to_pairs`` moves)."""
    x, y = pairs
    u = torch.zeros(span.basis.shape[0], requires_grad=True)
    opt = torch.optim.Adam([u], lr=lr)
    out = [span.blocks(origin)]
    with batch_statistics(span.model):
        for _ in range(steps):
            loss = span.l1(span.blocks(origin, u), x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            out.append(span.blocks(origin, u.detach()))
    return out


def measure_settings(
    span: PriorSpan, proposer, text: torch.Tensor, weights: torch.Tensor, pairs, test, grid
) -> tuple[dict, dict]:
    """Step-0 test PSNR of every setting of ``grid`` (checked, steps, learning rates, text origins)
    on one concept whose text blends as ``weights`` (``text``: its coefficients), and the seconds of
    each part."""
    checked_grid, steps_grid, lr_grid, origin_grid = grid
    t = time.perf_counter()
    rows, _ = proposer.propose(pair_features(*pairs), text, max(checked_grid))
    t_propose = time.perf_counter() - t
    span_origins = [span.origin_at(r) for r in rows]
    t = time.perf_counter()
    written = written_origin(span, span.gen, weights) if set(origin_grid) - {"span"} else None
    t_written = time.perf_counter() - t
    origins = {o: text_origins(span_origins, written, o) for o in origin_grid}
    l1 = {}  # the same point is checked once (the concepts' points are shared by every origin)
    t = time.perf_counter()
    with torch.no_grad(), batch_statistics(span.model):
        for o, points in origins.items():
            for i, point in enumerate(points):
                key = (o if i < 2 else "span", i)
                if key not in l1:
                    l1[key] = float(span.l1(span.blocks(point), *pairs))
    t_check = (time.perf_counter() - t) / len(l1)
    out, t_step, paths = {}, [], {}
    for checked, lr, o in itertools.product(checked_grid, lr_grid, origin_grid):
        keys = [(o if i < 2 else "span", i) for i in range(checked)]
        best = min(range(checked), key=lambda i: (l1[keys[i]], i))
        if (keys[best], lr) not in paths:
            t = time.perf_counter()
            path = adam_path(span, origins[o][best], pairs, lr, max(steps_grid))
            t_step.append((time.perf_counter() - t) / max(max(steps_grid), 1))
            paths[(keys[best], lr)] = [psnr(span, b, test) for b in path]
        for s in steps_grid:
            out[(checked, s, lr, o)] = paths[(keys[best], lr)][s]
    seconds = {"propose": t_propose, "check": t_check, "step": statistics.median(t_step)}
    return out, seconds | ({"written": t_written} if written is not None else {})


def cost(seconds: dict, checked: int, steps: int, lr: float = 0.0, origin: str = "span") -> float:
    written = seconds.get("written", 0.0) if origin != "span" else 0.0
    return seconds["propose"] + written + (checked if checked > 1 else 0) * seconds["check"] + steps * seconds["step"]


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(","))


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(","))


def name(setting) -> str:
    return "checked={} steps={} lr={:g} text_origin={}".format(*setting)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zoo", default="zoo")
    p.add_argument("--generator", default=None)
    p.add_argument("--choose-on", type=int, default=60, help="training concepts the settings are chosen on")
    p.add_argument("--heldout", type=int, default=0, help="held-out concepts measured (0: all)")
    p.add_argument("--seconds", type=float, default=0.25, help="the settings' median estimated time at most")
    p.add_argument("--checked", type=_ints, default=CHECKED, help="comma-separated grid (default: %(default)s)")
    p.add_argument("--steps", type=_ints, default=STEPS, help="comma-separated grid")
    p.add_argument("--lrs", type=_floats, default=LEARNING_RATES, help="comma-separated grid")
    p.add_argument(
        "--text-origins",
        type=lambda t: tuple(t.split(",")),
        default=None,
        help=f"comma-separated grid of {', '.join(TEXT_ORIGINS)} (default: all where the generator blends weights)",
    )
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", FarConceptWarning)
    ctx = BenchContext(args.zoo, args.generator or str(bundled_generator_path()))
    gen = load_generator(args.generator)
    origins = args.text_origins or (TEXT_ORIGINS if gen.weight_blend is not None else ("span",))
    if set(origins) - set(TEXT_ORIGINS) or (gen.weight_blend is None and set(origins) != {"span"}):
        p.error(f"--text-origins: {', '.join(TEXT_ORIGINS)} (written ones need a generator that blends weights)")
    grid = (args.checked, args.steps, args.lrs, origins)
    span = PriorSpan(ctx.base_model(), ctx.adapter, gen)
    coef = gen.prior.coef.float()
    t0 = time.perf_counter()
    data = pair_start_data(gen, ctx.zoo, photos=ctx.photos)
    print(f"features of {len(data.ids)} training concepts in {time.perf_counter() - t0:.0f} s", flush=True)

    # --- settings, leave-group-out on training concepts ------------------------------------------
    chosen_on = spread(data.ids, args.choose_on)
    settings = list(itertools.product(*grid))
    scores, costs, text_only = {s: [] for s in settings}, {s: [] for s in settings}, []
    for cid in chosen_on:
        i = data.ids.index(cid)
        keep = torch.tensor([g != data.groups[i] for g in data.groups])
        proposer = data.proposer(coef, keep)
        pairs, test = ctx.selection_pairs(cid), ctx.zoo.test_pairs(cid)
        text_only.append(psnr(span, span.blocks(span.origin_at(data.texts[i])), test))
        got, seconds = measure_settings(span, proposer, data.texts[i], data.weights[i], pairs, test, grid)
        for s in settings:
            scores[s].append(got[s])
            costs[s].append(cost(seconds, *s))
        print(
            f"{cid}: text {text_only[-1]:.2f}, best here {max(got.values()):.2f}; "
            + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in seconds.items()),
            flush=True,
        )
    medians = {s: statistics.median(v) for s, v in scores.items()}
    median_costs = {s: statistics.median(v) for s, v in costs.items()}
    within = [s for s in settings if median_costs[s] <= args.seconds]
    best = max(within, key=lambda s: (medians[s], -median_costs[s]))
    print(
        f"training: text only {statistics.median(text_only):.2f}; best within {args.seconds} s: {name(best)} "
        f"{medians[best]:.2f} dB, about {median_costs[best]:.3f} s",
        flush=True,
    )

    # --- held-out concepts, once, through the library ---------------------------------------------
    checked, steps, lr, text_origin = best
    gen.pair_start = data.proposer(coef, checked=checked, fit_steps=steps, fit_lr=lr, text_origin=text_origin)
    rows = {}
    heldout = ctx.zoo.ids("heldout")
    for cid in spread(heldout, args.heldout) if args.heldout else heldout:
        pairs, test = ctx.selection_pairs(cid), ctx.zoo.test_pairs(cid)
        resolved = gen.resolve(ctx.zoo.record(cid).text)
        factors, made = start_from_pairs(span.model, ctx.adapter, gen, resolved, pairs)
        chosen, choice = choose_on_pairs(
            ctx.base_model(), ctx.adapter, gen, gen.generate(resolved, steps=1, seed=ctx.seed), resolved, pairs
        )
        row = {
            "text_blend": psnr(span, span.blocks(span.origin_at(text_coefficients(gen, resolved))), test),
            **(
                {"text_written": psnr(span, span.stored(gen.generate(resolved, fallback=True)), test)}
                if gen.weight_blend is not None
                else {}
            ),
            "pair_generated": psnr(span, span.stored(factors), test),
            "pair_generated_seconds": made.seconds,
            "pair_generated_kept": made.chosen,
            "chosen": psnr(span, span.stored(chosen), test),
            "chosen_seconds": choice.seconds,
            "chosen_kept": choice.chosen,
        }
        rows[cid] = {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
        print(cid, rows[cid], flush=True)
    methods = ("text_blend", "pair_generated", "chosen") + (("text_written",) if gen.weight_blend is not None else ())
    out = {
        "command": "python -m experiments.pair_generator --zoo "
        + args.zoo
        + (f" --generator {args.generator}" if args.generator else "")
        + "".join(
            f" --{k} {','.join(f'{v:g}' for v in getattr(args, k))}"
            for k, default in (("checked", CHECKED), ("steps", STEPS), ("lrs", LEARNING_RATES))
            if getattr(args, k) != default
        )
        + (f" --text-origins {','.join(args.text_origins)}" if args.text_origins else "")
        + (f" --choose-on {args.choose_on}" if args.choose_on != 60 else "")
        + (f" --seconds {args.seconds:g}" if args.seconds != 0.25 else ""),
        "pairs": len(ctx.selection_pairs(heldout[0])[0]),
        "training": {
            "concepts": chosen_on,
            "text_only_median": statistics.median(text_only),
            "median_psnr": {name(s): v for s, v in medians.items()},
            "median_seconds": {name(s): v for s, v in median_costs.items()},
            "budget_seconds": args.seconds,
            "best": {"checked": checked, "steps": steps, "lr": lr, "text_origin": text_origin},
        },
        "heldout": {
            "concepts": len(rows),
            "median_psnr_step0": {k: statistics.median(r[k] for r in rows.values()) for k in methods},
            "median_seconds": {k: statistics.median(r[f"{k}_seconds"] for r in rows.values()) for k in methods[1:3]},
            "pair_generated_at_least_chosen": sum(r["pair_generated"] >= r["chosen"] for r in rows.values()),
            "per_concept": rows,
        },
    }
    if args.json:
        atomic_write_json(args.json, out)
    h = out["heldout"]
    print(h["median_psnr_step0"], h["median_seconds"], f"at least chosen on {h['pair_generated_at_least_chosen']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
