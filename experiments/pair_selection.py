"""Would a few of the user's own pairs pick a better start than text alone? A diagnostic, not a method.

    python -m experiments.pair_selection --zoo zoo --json docs/measurements/pair_selection.json

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

``--timing`` measures instead what ``initialize(..., pairs=...)`` costs: for every held-out
concept, the seconds of ``selection.choose_on_pairs`` with its default screen and with
``screen=None`` (every candidate scored on every pair, the exact choice), on ``--pairs`` of the
train pairs as the bench's ``chosen_*`` methods see them, one thread, plus how often the two
choose differently and the test PSNR of both choices. It adds ``selection_timing`` to the JSON
and keeps the file's other keys::

    python -m experiments.pair_selection --zoo zoo --timing --json docs/measurements/pair_selection.json

About 5 s per concept on one CPU thread beside other jobs (the exhaustive scoring is most of it).

``--study CACHE`` is how the default :class:`~weightinit.selection.Screen` was chosen: for every
held-out concept it scores every candidate on the first 1, 2, 4 and all ``--pairs`` pairs in
float32 and on all of them in bfloat16, and the test PSNR of the 30 best (cached per concept in
``CACHE``, 15-60 s each on a busy CPU), then replays screens on those scores: screening every candidate on
1-4 pairs and rescoring the best 6, the bfloat16 screen of every candidate, and the default
screen at several budgets. It adds ``screen_study`` to the JSON. The default was chosen on these
same concepts, so its agreement there is in-sample; ``--study CACHE --split train --limit 24``
checks it on training concepts scored as unseen (each one's group out of the prior and out of
the candidates), under ``screen_study_train``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from experiments.bench.markdown import fmt
from experiments.bench.methods import METHODS, BenchContext
from experiments.bench.runner import spread, zoo_pairs
from experiments.composed_prior import group_of, masked_prior
from weightinit import plugins
from weightinit.fileio import atomic_write_json
from weightinit.generators import bundled_generator_path
from weightinit.recipe import evaluate
from weightinit.selection import (
    DEFAULT_SCREEN,
    Screen,
    _fast_screen_supported,
    _rescored,
    _screen,
    _Selection,
    choose_on_pairs,
)

SELECTIONS = ("generator", "generator+concepts", "nearest_by_pairs")


def l1(model, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    return evaluate(model, inputs, targets)["l1"]


def measure_concept(ctx, cid: str, n_pairs: int) -> dict:
    gen = ctx.generator
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
    pools = {
        "generator": {"generator"},
        "generator+concepts": {"generator", "concepts"},
        "nearest_by_pairs": {"concepts"},
    }
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


def time_concept(ctx, cid: str, n_pairs: int, exhaustive: bool = True) -> dict:
    """Seconds, choice and test PSNR of the screened and (``exhaustive``) the exact selection."""
    gen = ctx.generator
    text = ctx.zoo.record(cid).text
    inputs, targets = ctx.selection_pairs(cid)
    pairs = inputs[:n_pairs], targets[:n_pairs]
    test = ctx.zoo.test_pairs(cid, ctx.photos)
    torch.manual_seed(0)
    model = plugins.build_model(gen.arch)
    start = time.perf_counter()
    generated = gen.generate(text, steps=1, seed=ctx.seed, guidance=None, dtype=torch.float32, fallback=True)
    row = {"generation_seconds": time.perf_counter() - start}
    runs = {"screened": {}} | ({"exhaustive": {"screen": None}} if exhaustive else {})
    for kind, kwargs in runs.items():
        cpu = time.process_time()
        factors, choice = choose_on_pairs(model, ctx.adapter, gen, generated, text, pairs, **kwargs)
        cpu = (
            time.process_time() - cpu
        )  # CPU time: not the other jobs' turns on the core (their cache and memory traffic still count)
        row[kind] = {
            "seconds": choice.seconds,
            "cpu_seconds": cpu,
            "choice": choice.chosen,
            "pairs_l1": choice.pairs_l1,
            "scored": choice.scored,
            "rescored": choice.rescored,
            "psnr": evaluate(ctx.merged(ctx.delta(factors)), *test)["psnr"],
        }
    row["generated_l1"] = choice.generated_l1
    row["candidates"] = choice.candidates
    return row


def summarize_timing(rows: dict[str, dict], n_pairs: int, threads: int, load: tuple) -> dict:
    def med(kind, key):
        return statistics.median(r[kind][key] for r in rows.values())

    out = {
        "command": "python -m experiments.pair_selection --zoo zoo --timing --json "
        "docs/measurements/pair_selection.json",
        "concepts": len(rows),
        "pairs": n_pairs,
        "image_size": 64,
        "threads": threads,
        "candidates": statistics.median(r["candidates"] for r in rows.values()),
        "screen": asdict(DEFAULT_SCREEN),
        "bfloat16_screen": _fast_screen_supported(torch.device("cpu")),
        "load_average_1min_before_after": [round(v, 2) for v in load],
        "cpus": os.cpu_count(),
        "median_generation_seconds": statistics.median(r["generation_seconds"] for r in rows.values()),
        "median_selection_seconds": {"screened": med("screened", "seconds")},
        "median_selection_cpu_seconds": {"screened": med("screened", "cpu_seconds")},
        "median_forward_passes": {"screened": med("screened", "scored"), "rescored": med("screened", "rescored")},
        "median_test_psnr": {"screened": med("screened", "psnr")},
    }
    if all("exhaustive" in r for r in rows.values()):
        same = [r["screened"]["choice"] == r["exhaustive"]["choice"] for r in rows.values()]
        loss = [r["exhaustive"]["psnr"] - r["screened"]["psnr"] for r in rows.values()]
        ratio = [r["screened"]["pairs_l1"] / r["exhaustive"]["pairs_l1"] for r in rows.values()]
        out["median_selection_seconds"]["exhaustive"] = med("exhaustive", "seconds")
        out["median_selection_cpu_seconds"]["exhaustive"] = med("exhaustive", "cpu_seconds")
        out["median_test_psnr"]["exhaustive"] = med("exhaustive", "psnr")
        out["same_choice_as_exhaustive"] = sum(same)
        out["test_psnr_exhaustive_minus_screened"] = {
            "mean": statistics.fmean(loss),
            "max": max(loss),
            "min": min(loss),
        }
        out["pairs_l1_screened_over_exhaustive"] = {"mean": statistics.fmean(ratio), "max": max(ratio)}
    out["per_concept"] = rows
    return out


def score_matrix(ctx, cid: str, n_pairs: int) -> dict:
    """Every candidate's L1 on the first 1, 2, 4 and ``n_pairs`` pairs (float32) and on all of
    them (bfloat16), the prior candidates' coefficient rows, and the test PSNR of the 30 best.

    A training concept is scored as unseen: its group (other strengths, its reverse) is out of the
    prior while the start is generated, and their own candidates score infinity, so no screen
    can choose them (the denoiser did see it in training; it adds about nothing over the prior,
    ``experiments.heldout_start``)."""
    gen = ctx.generator
    record = ctx.zoo.record(cid)
    text = record.text
    inputs, targets = ctx.selection_pairs(cid)
    full_prior = gen.prior
    group = group_of(cid) if record.split == "train" else None
    if group is not None:
        gen.prior = masked_prior(full_prior, list(full_prior.concept_ids), group)
    try:
        torch.manual_seed(0)
        generated = gen.generate(text, steps=1, seed=ctx.seed, guidance=None, dtype=torch.float32, fallback=True)
        sel = _Selection(
            plugins.build_model(gen.arch),
            ctx.adapter,
            gen,
            generated,
            text,
            inputs[:n_pairs],
            targets[:n_pairs],
            fast=True,
        )
    finally:
        gen.prior = full_prior
    ms = sorted({m for m in (1, 2, 4) if m < n_pairs} | {n_pairs})
    everyone = list(range(len(sel.names)))
    with torch.no_grad(), sel.mode():
        scores = torch.stack([torch.stack([sel.score([i], m)[0] for m in ms]) for i in everyone], 1)
        fast = sel.score(everyone, kind="fast")
    if group is not None:
        own = [
            i
            for i, n in enumerate(sel.names)
            if n.startswith("concept ") and group_of(n.removeprefix("concept ")) == group
        ]
        scores[:, own], fast[own] = math.inf, math.inf
    test = ctx.zoo.test_pairs(cid, ctx.photos)
    psnr = {}
    for i in torch.argsort(scores[-1])[:30].tolist():
        psnr[i] = evaluate(ctx.merged(ctx.delta(sel.factors_of(i))), *test)["psnr"]
    return {"names": sel.names, "ms": ms, "scores": scores, "bf16": fast, "rows": sel.cands.rows.cpu(), "psnr": psnr}


def replay(d: dict, screen=None, proxy: str = "bf16", m: int | None = None, rescore: int = 6) -> tuple[int, int, int]:
    """(chosen index, screen forward passes, rescored) of a screen replayed on ``score_matrix``'s
    scores: ``screen`` (a Screen) on the ``proxy`` scores, or every candidate on ``proxy``
    ("float32" on the first ``m`` pairs, or "bf16") with the best ``rescore`` rescored."""
    exact = d["scores"][-1]
    p = d["bf16"] if proxy == "bf16" else d["scores"][d["ms"].index(m)]
    if screen is None:
        rough = {i: float(p[i]) for i in range(len(exact))}
        screen = Screen(rescore=rescore)
    else:
        rough = _screen(d["rows"], screen, lambda idx: [float(p[i]) for i in idx])
    again = _rescored(rough, screen)
    return min(again, key=lambda i: (float(exact[i]), i)), len(rough), len(again)


def summarize_study(matrices: dict[str, dict]) -> dict:
    n = max(d["ms"][-1] for d in matrices.values())
    strategies = {
        f"float32 on {m} pair(s), all candidates, best 6 rescored": {"proxy": "float32", "m": m} for m in (1, 2, 4)
    }
    strategies["bfloat16 on every pair, all candidates, best 6 rescored"] = {"proxy": "bf16"}
    for budget in (40, 60, 80, 90, 120, 160):
        label = "default screen" + (
            f" with budget {budget}" if budget != DEFAULT_SCREEN.budget else f" (budget {budget})"
        )
        strategies[label] = {"screen": replace(DEFAULT_SCREEN, budget=budget)}
    out = {"concepts": len(matrices), "pairs": n, "screen": asdict(DEFAULT_SCREEN), "strategies": {}}
    for label, kw in strategies.items():
        same, ratio, loss, missing, passes = 0, [], [], 0, []
        for d in matrices.values():
            exact = d["scores"][-1]
            truth = int(torch.argmin(exact))
            best, screened, rescored = replay(d, **kw)
            same += best == truth
            ratio.append(float(exact[best] / exact[truth]))
            passes.append(screened + rescored)
            if best in d["psnr"]:
                loss.append(d["psnr"][truth] - d["psnr"][best])
            else:
                missing += 1
        out["strategies"][label] = {
            "same_choice_as_exhaustive": same,
            "pairs_l1_over_exhaustive": {"mean": statistics.fmean(ratio), "max": max(ratio)},
            "test_psnr_exhaustive_minus_chosen": {"mean": statistics.fmean(loss), "max": max(loss)} if loss else None,
            "chosen_outside_the_30_best": missing,
            "median_forward_passes": statistics.median(passes),
        }
    return out


def study_main(ctx, ids: list[str], args) -> None:
    cache = Path(args.study)
    cache.mkdir(parents=True, exist_ok=True)
    matrices = {}
    for cid in ids:
        path = cache / f"{cid}.pt"
        if not path.is_file():
            torch.save(score_matrix(ctx, cid, args.pairs), path)
        matrices[cid] = torch.load(path)
        d = matrices[cid]
        print(f"{cid:34s} best of {len(d['names'])}: {d['names'][int(torch.argmin(d['scores'][-1]))]}", flush=True)
    out = summarize_study(matrices)
    for label, r in out["strategies"].items():
        loss = r["test_psnr_exhaustive_minus_chosen"]
        print(
            f"{label}: same choice on {r['same_choice_as_exhaustive']} of {out['concepts']}, "
            f"{r['median_forward_passes']} passes, "
            f"L1 ratio mean {r['pairs_l1_over_exhaustive']['mean']:.4f}"
            + (f", test PSNR loss mean {loss['mean']:.3f} dB" if loss else "")
        )
    if args.json:
        path = Path(args.json)
        existing = json.loads(path.read_text()) if path.is_file() else {}
        key = "screen_study" if args.split == "heldout" else "screen_study_train"
        atomic_write_json(path, existing | {key: out | {"split": args.split, "ids": ids}})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", required=True)
    parser.add_argument("--generator", default=None, help="Generator folder (default: the bundled one).")
    parser.add_argument("--pairs", type=int, default=8, help="Train pairs the selection may look at.")
    parser.add_argument("--concepts", default=None, help="Comma-separated concept ids (default: those of --split).")
    parser.add_argument(
        "--split",
        choices=["heldout", "train"],
        default="heldout",
        help="With --study: train scores training concepts as unseen (group left out), under screen_study_train.",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="At most N concepts, spread evenly over the split's list."
    )
    parser.add_argument("--json")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--timing", action="store_true", help="Time the selection (screened and exhaustive) instead.")
    parser.add_argument("--no-exhaustive", action="store_true", help="With --timing: the screened selection only.")
    parser.add_argument(
        "--study", metavar="CACHE", help="Replay screens on every candidate's scores (cached in CACHE) instead."
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    ctx = BenchContext(args.zoo, args.generator or str(bundled_generator_path()))
    if ctx.generator.prior is None:
        parser.error("the generator has no retrieval prior")
    ids = args.concepts.split(",") if args.concepts else ctx.zoo.ids(args.split)
    if args.limit:
        ids = spread(ids, args.limit)
    if args.split == "train" and not args.study:
        parser.error("--split train is for --study (the other measurements are of held-out concepts)")
    if args.timing:
        return timing_main(ctx, ids, args)
    if args.study:
        return study_main(ctx, ids, args)
    rows = {}
    for cid in ids:
        rows[cid] = r = measure_concept(ctx, cid, args.pairs)
        print(
            f"{cid:34s} mean {r['mean']:.2f} nearest {r['nearest']:.2f} generated {r['generated_1']:.2f} | "
            + " ".join(f"{s} {r[s]:.2f} ({r[s + '_choice']})" for s in SELECTIONS),
            flush=True,
        )
    out = summarize(rows)
    n = out["concepts"]
    for k, v in out["beats_mean_and_nearest"].items():
        print(
            f"{k}: beats the mean and the nearest concept by text on {v} of {n}, median "
            f"{out['median_psnr_step0'][k]:.2f} dB"
        )
    if args.json:
        atomic_write_json(args.json, {"zoo": args.zoo, "pairs": args.pairs} | out)


def timing_main(ctx, ids: list[str], args) -> None:
    load = [os.getloadavg()[0]]
    time_concept(
        ctx, ids[0], args.pairs, exhaustive=False
    )  # once untimed: first-call costs (text, kernels) are not per call
    rows = {}
    for cid in ids:
        rows[cid] = r = time_concept(ctx, cid, args.pairs, exhaustive=not args.no_exhaustive)
        ex = r.get("exhaustive")
        print(
            f"{cid:34s} screened {r['screened']['seconds']:.3f} s (CPU {r['screened']['cpu_seconds']:.3f}) "
            f"{r['screened']['choice']} (PSNR {r['screened']['psnr']:.2f})"
            + (f" | exhaustive {ex['seconds']:.3f} s {ex['choice']} (PSNR {ex['psnr']:.2f})" if ex else ""),
            flush=True,
        )
    load.append(os.getloadavg()[0])
    out = summarize_timing(rows, args.pairs, args.threads, tuple(load))
    sec = out["median_selection_seconds"]
    print(
        f"selection on {args.pairs} pairs, {out['candidates']} candidates, {args.threads} thread(s), median over "
        f"{out['concepts']} concepts: "
        + ", ".join(f"{k} {v:.3f} s" for k, v in sec.items())
        + " (CPU time: "
        + ", ".join(f"{k} {v:.3f} s" for k, v in out["median_selection_cpu_seconds"].items())
        + f"; load average {out['load_average_1min_before_after']} on {out['cpus']} CPUs)"
    )
    if "same_choice_as_exhaustive" in out:
        d = out["test_psnr_exhaustive_minus_screened"]
        print(
            f"screened chose as the exhaustive scoring on {out['same_choice_as_exhaustive']} of {out['concepts']}; "
            "test PSNR exhaustive - "
            f"screened: mean {d['mean']:.3f} dB, max {d['max']:.2f} dB; median test PSNR {out['median_test_psnr']}"
        )
    if args.json:
        path = Path(args.json)
        existing = json.loads(path.read_text()) if path.is_file() else {}
        atomic_write_json(path, existing | {"selection_timing": out})


# --- its section of docs/BENCHMARKS.md -----------------------------------------------------------
#: Seconds of selection (8 pairs, 64 px, one thread) the pair-selection target asks for.
SELECTION_TARGET_SECONDS = 0.5


def selection_section(source: str, data: dict) -> list[str]:
    """How long choosing a start on the user's pairs takes, screened and exhaustive, and how often
    the screen keeps the exhaustive choice (``experiments.pair_selection --timing``)."""
    t = data["selection_timing"]
    sec, cpu = t["median_selection_seconds"], t["median_selection_cpu_seconds"]
    met = "met" if sec["screened"] < SELECTION_TARGET_SECONDS else "**missed**"
    train_study = data.get("screen_study_train") or {}
    chosen_on = (
        "its budget was chosen on the training concepts scored as unseen below, so its agreement here is out of sample."
        if (train_study.get("screen") or {}).get("budget") == t["screen"]["budget"]
        else "its settings were chosen on these same held-out concepts, so its agreement is in-sample."
    )
    lines = [
        "## Choosing the start on your pairs: how long it takes",
        "",
        (
            f"From `{source}` (`{t['command']}`): {t['concepts']} held-out concepts, {t['pairs']} pairs at "
            f"{t['image_size']} px, {t['threads']} thread on {t['cpus']} CPUs (load average "
            f"{t['load_average_1min_before_after'][0]} before, {t['load_average_1min_before_after'][1]} after), "
            f"{t['candidates']} candidates. The screen visits {t['screen']['budget']} of them and rescores the best "
            f"{t['screen']['rescore']} exactly; " + chosen_on
        ),
        "",
        "| selection | median seconds | median CPU seconds | median forward passes | median test PSNR of the chosen "
        "start |",
        "|---|---|---|---|---|",
        f"| every candidate scored | {fmt(sec['exhaustive'])} | {fmt(cpu['exhaustive'])} | {t['candidates']} | "
        f"{fmt(t['median_test_psnr']['exhaustive'])} |",
        f"| screened | {fmt(sec['screened'])} | {fmt(cpu['screened'])} | "
        f"{t['median_forward_passes']['screened'] + t['median_forward_passes']['rescored']} | "
        f"{fmt(t['median_test_psnr']['screened'])} |",
        "",
        (
            f"Target: selection under {SELECTION_TARGET_SECONDS} s: {met} ({fmt(sec['screened'])} s). The screen "
            f"keeps the exhaustive choice on {t['same_choice_as_exhaustive']} of {t['concepts']}; test PSNR lost to "
            f"it: mean {fmt(t['test_psnr_exhaustive_minus_screened']['mean'])} dB, worst "
            f"{fmt(t['test_psnr_exhaustive_minus_screened']['max'])} dB."
        ),
        "",
    ]
    for key, which in (
        (
            "screen_study",
            "the held-out concepts (in-sample for the default screen of the time, whose budget was chosen here)",
        ),
        (
            "screen_study_train",
            "training concepts scored as unseen (each one's group out of the prior and the candidates)",
        ),
    ):
        study = data.get(key) or {}
        if not study.get("strategies"):
            continue
        lines += [
            f"Screens replayed on every candidate's scores, {study['concepts']} {which}:",
            "",
            "| screen strategy | same choice as exhaustive | median forward passes | mean test PSNR lost, dB |",
            "|---|---|---|---|",
        ]
        for name, r in study["strategies"].items():
            lost = r["test_psnr_exhaustive_minus_chosen"]
            lines.append(
                f"| {name} | {r['same_choice_as_exhaustive']} of {study['concepts']} | {r['median_forward_passes']} | "
                f"{fmt(lost['mean']) if lost else '–'} |"
            )
        lines.append("")
    return lines


def section(files: list[tuple[str, dict]]) -> list[str]:
    """Its section of docs/BENCHMARKS.md, one per file
    (``python -m experiments.bench report --section selection=FILE``)."""
    return [line for source, data in files for line in selection_section(source, data)]


if __name__ == "__main__":
    main()
