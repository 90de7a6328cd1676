"""Run some methods of a recorded benchmark again (current code or another stop rule), reusing its scratch runs.

    python -m experiments.rerun_methods --results docs/measurements/bench_full.json --zoo zoo \\
        --mode lora --methods chosen_1_lora --out runs/rerun-selection --json docs/measurements/bench_selection.json

Scratch's 4000 steps are most of a benchmark's CPU time, and they depend on neither the
generator nor the stop rule. This seeds a fresh ``python -m experiments.bench run`` results folder with the
recorded scratch run of every concept, then runs the ``--methods`` asked for there, through the
benchmark's own runner (same recipe, data, keys and resume). Two uses:

- what a change to a method costs in wall seconds (``chosen_*``'s faster scoring): the rerun
  methods keep the recorded stop rule, and ``--reuse`` copies other recorded methods (``lora``,
  base + fresh LoRA) into the folder so that the summary compares them;
- quality at a fixed budget: ``--stop-at cap --cap-fraction 0.25`` runs every method to 25% of
  scratch's budget, and ``fixed_budget`` in the JSON counts, at each budget fraction, the
  concepts where a method is at or above scratch's final PSNR;
- a fine-tune recipe for good starts: ``--start-recipe '{"lr_warmup_steps": 50}'`` (or
  ``d_warmup_steps``) changes the recipe of every method but scratch.

A recorded run is reused only where it is reproducible: the recorded config must equal the
benchmark's (every field but the stop rule and start recipe), and each concept's scratch start is
rebuilt and must give the recorded step-0 test PSNR (within ``REPRODUCE_DB``), which checks the
zoo's pairs, the photos and the seeded init. A reused run other than scratch also needs the
recorded stop rule. Concepts default to the results' own, in their order (``--first N`` takes
the first N, nothing chosen).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import torch

from experiments.bench.curves import summarize
from experiments.bench.methods import METHODS
from experiments.bench.report import _json_safe
from experiments.bench.runner import BenchConfig, BenchRunner, collect_results
from weightinit.errors import WeightinitError
from weightinit.fileio import atomic_write_json
from weightinit.finetune import final_psnr
from weightinit.generators import bundled_generator_path
from weightinit.recipe import evaluate

#: Step-0 PSNR must match the recorded one this closely for the recorded runs to be reused.
REPRODUCE_DB = 1e-3
#: BenchConfig fields that only change methods other than scratch: when they stop, their recipe.
STOP_FIELDS = ("cap_fraction", "min_fraction", "stop_at", "start_recipe")


def seed_recorded_runs(runner: BenchRunner, recorded: dict, reuse: list[str]) -> dict[str, list[str]]:
    """Write the recorded scratch run (and ``reuse`` methods') of every concept of ``runner`` into
    its folder under the keys the runner computes, after checking that each is reproducible.
    Returns ``{concept: [methods seeded]}``; raises on a concept whose start does not reproduce."""
    for concept in runner.concepts:  # every check before anything is written
        runs = recorded["runs"].get(concept) or {}
        missing = [name for name in ["scratch", *reuse] if name not in runs]
        if missing:
            raise WeightinitError(f"the recorded results have no {', '.join(missing)} run of {concept!r}")
        start = METHODS["scratch"].build(runner.ctx, concept)
        _, test, _ = runner.pairs(concept)
        now = evaluate(start.model, *test)["psnr"]
        then = runs["scratch"]["curve"][0]["psnr"]
        if abs(now - then) > REPRODUCE_DB:
            raise WeightinitError(
                f"{concept}: scratch's step-0 test PSNR is {now:.5f} dB now, {then:.5f} dB when recorded: "
                "the zoo's pairs, photos or init changed, so its recorded runs cannot be reused"
            )
    seeded = {}
    for concept in runner.concepts:
        runs = recorded["runs"][concept]
        target = final_psnr(runs["scratch"]["curve"], runner.config.final_window) - runner.config.tolerance_db
        seeded[concept] = []
        for name in ["scratch", *reuse]:
            method = METHODS[name]
            key = runner.run_key(concept, method, None if name == "scratch" else target)
            path = runner.run_path(concept, name)
            if runner.load_run(concept, method, key) is not None:
                continue
            run = {"concept": concept, "method": name, "key": key, "reused_from_record": True, **runs[name]}
            atomic_write_json(path, run)
            seeded[concept].append(name)
    return seeded


def fixed_budget(results: dict, fractions: list[float]) -> dict:
    """Per method and budget fraction: on how many concepts (not apart) its PSNR there is at or
    above scratch's final."""
    concepts = {c: s for c, s in results["concepts"].items() if not s["apart"]}
    out = {}
    methods = {m for s in concepts.values() for m in s["methods"]} - {"scratch"}
    for m in sorted(methods):
        rows = {}
        for f in fractions:
            values = [
                (s["methods"][m]["psnr_at_fraction"].get(str(f)), s["scratch_final_psnr"])
                for s in concepts.values()
                if m in s["methods"]
            ]
            values = [(v, ref) for v, ref in values if v is not None]
            rows[str(f)] = {
                "concepts": len(values),
                "at_or_above_scratch_final": sum(v >= ref for v, ref in values),
                "median_minus_scratch_final": sorted(v - ref for v, ref in values)[len(values) // 2]
                if values
                else None,
            }
        out[m] = rows
    return out


def measure(
    results_file,
    zoo,
    out,
    *,
    mode: str,
    methods: list[str],
    reuse: list[str] = (),
    generator: str | None = None,
    first: int | None = None,
    concepts: list[str] | None = None,
    overrides: dict | None = None,
    run: bool = True,
    log=print,
) -> dict:
    """Seed ``out`` from ``results_file``, run ``methods`` there and return the collected results
    (``python -m experiments.bench run``'s JSON) with ``rerun`` (what was seeded, run and changed) and ``fixed_budget``.
    ``run=False`` only collects the concepts whose runs are complete (``pending`` lists the others)."""
    recorded = json.loads(Path(results_file).read_text())
    recorded_config = BenchConfig(**recorded["config"])
    config = replace(recorded_config, **(overrides or {}))
    changed = {k for k in config.to_dict() if config.to_dict()[k] != recorded_config.to_dict()[k]}
    if changed - set(STOP_FIELDS):
        raise WeightinitError(
            f"only the stop rule and start recipe ({', '.join(STOP_FIELDS)}) may differ from the recorded config, not "
            f"{sorted(changed)}"
        )
    if changed and reuse:
        raise WeightinitError(f"--reuse needs the recorded stop rule and recipe; this run changes {sorted(changed)}")
    overlap = set(reuse) & set(methods)
    if overlap:
        raise WeightinitError(f"{sorted(overlap)} cannot be both rerun and reused")
    chosen = concepts or list(recorded["runs"])
    if first is not None:
        chosen = chosen[:first]
    runner = BenchRunner(
        zoo,
        out,
        config,
        generator=generator or _bundled(),
        concepts=chosen,
        methods=["scratch", *methods, *reuse],
        mode=mode,
        log=log,
        progress=False,
    )
    seeded = seed_recorded_runs(runner, recorded, list(reuse))
    if run:
        runner.run()
    results = collect_results(out, config)
    # only this call's concepts: the folder may hold runs of other concept lists
    results["concepts"] = {c: s for c, s in results["concepts"].items() if c in chosen}
    results["runs"] = {c: r for c, r in results["runs"].items() if c in chosen}
    found = list(dict.fromkeys(m for r in results["runs"].values() for m in r))
    results["summary"] = summarize(results["concepts"], found) if results["concepts"] else {}
    results["rerun"] = {
        "recorded": str(results_file),
        "methods": methods,
        "reused": ["scratch", *reuse],
        "changed": sorted(changed),
        "seeded_now": seeded,
        "pending": [c for c in chosen if c not in results["concepts"]],
    }
    # Under the target stop rule a method stops once it is good enough, so later fractions are unmeasured.
    results["fixed_budget"] = (
        fixed_budget(results, [f for f in config.fractions if f <= config.cap_fraction])
        if config.stop_at == "cap"
        else None
    )
    return results


def _bundled() -> str:
    """The bundled generator's folder, relative to the working directory where it is below it (what
    the results record, so that they name no machine's paths)."""
    path = bundled_generator_path()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, help="A recorded `python -m experiments.bench run --json` file.")
    parser.add_argument("--zoo", required=True)
    parser.add_argument("--generator", default=None, help="Generator folder or hub id (default: the bundled one).")
    parser.add_argument("--mode", default="lora", choices=["merge", "lora", "both"])
    parser.add_argument("--methods", required=True, help="Comma-separated methods to run again.")
    parser.add_argument(
        "--reuse", default="", help="Comma-separated recorded methods to copy in (recorded stop rule only)."
    )
    parser.add_argument("--first", type=int, default=None, help="Only the first N concepts of the results.")
    parser.add_argument("--concepts", default=None, help="Comma-separated concept ids (default: the results').")
    parser.add_argument("--stop-at", choices=["target", "cap"], default=None)
    parser.add_argument("--cap-fraction", type=float, default=None)
    parser.add_argument(
        "--start-recipe",
        type=json.loads,
        default=None,
        help="RecipeConfig fields for every method but scratch, as JSON: '{\"lr_warmup_steps\": 50}'.",
    )
    parser.add_argument("--out", required=True, help="The benchmark folder to seed and run in (resumable).")
    parser.add_argument("--no-run", action="store_true", help="Only collect the concepts already complete in --out.")
    parser.add_argument("--json")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    given = (("stop_at", args.stop_at), ("cap_fraction", args.cap_fraction), ("start_recipe", args.start_recipe))
    overrides = {k: v for k, v in given if v is not None}
    split = lambda s: [x.strip() for x in s.split(",") if x.strip()]  # noqa: E731
    results = measure(
        args.results,
        args.zoo,
        args.out,
        mode=args.mode,
        methods=split(args.methods),
        reuse=split(args.reuse),
        generator=args.generator,
        first=args.first,
        concepts=split(args.concepts) if args.concepts else None,
        overrides=overrides,
        run=not args.no_run,
        log=lambda s: print(s, flush=True),
    )
    results["command"] = (
        "python -m experiments.rerun_methods "
        + shlex.join(  # quoted: --start-recipe is JSON
            a for a in (argv or sys.argv[1:]) if a != "--no-run"
        )
    )
    summary = results["summary"]
    for m, s in summary.get("methods", {}).items():
        print(
            f"{m:20s} reached {s['reached']}/{s['concepts']}  median speedup {s['median_speedup'] or 0:.1f}x  "
            f"step 0 {s['median_psnr_step0']:.2f}  at stop {s['median_psnr_at_stop']:.2f} dB"
        )
    for m, rows in (results["fixed_budget"] or {}).items():
        print(m, ", ".join(f"{f}: {r['at_or_above_scratch_final']}/{r['concepts']}" for f, r in rows.items()))
    if args.json:
        atomic_write_json(args.json, _json_safe(results))


if __name__ == "__main__":
    main()
