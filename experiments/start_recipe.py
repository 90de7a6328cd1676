"""Does a recipe change keep a good start's quality through an all-weights fine-tune? Training concepts only.

    python -m experiments.start_recipe --zoo zoo --concepts 4 --steps 400 \\
        --variants 'none={};lr_warmup_100={"lr_warmup_steps":100};d_warmup_100={"d_warmup_steps":100}' \\
        --json docs/measurements/start_recipe.json

A fine-tune from a start that is already good can lose quality to the recipe: Adam's first
updates move every weight by about the learning rate, and a fresh discriminator's first
gradients are noise. For ``--concepts`` training concepts spread over the zoo's list (held-out
ones are never read, so the choice is not tuned to them), this fine-tunes the generated start
with the benchmark's recipe and with each ``--variants`` change (``weightinit.recipe.RecipeConfig``
fields), all weights, same data and data order, and records test PSNR through the run: where
it peaks, where it ends, and the end minus the peak. A variant worth adopting ends higher and
loses less from its peak than ``none``; it is then measured on held-out concepts at a fixed
budget (``experiments.rerun_methods --start-recipe``). An existing ``--json`` of the same zoo,
generator, steps and concepts is extended, and ``--merge`` folds in other such results: their
variants are kept and only new ones run.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from experiments.bench.markdown import fmt
from experiments.bench.methods import METHODS, BenchContext
from experiments.bench.runner import spread, zoo_pairs
from weightinit.fileio import atomic_write_json
from weightinit.finetune import tracked_fine_tune
from weightinit.generators import bundled_generator_path
from weightinit.recipe import RecipeConfig


def parse_variants(text: str) -> dict[str, dict]:
    """``'a={};b={"lr_warmup_steps": 100}'`` -> ``{"a": {}, "b": {...}}``, each checked as RecipeConfig fields."""
    variants = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, spec = part.partition("=")
        changes = json.loads(spec or "{}")
        RecipeConfig(**changes)  # an unknown field or bad value fails here, before any run
        variants[name.strip()] = changes
    return variants


def measure(
    zoo,
    generator: str | None = None,
    *,
    concepts: int = 4,
    steps: int = 400,
    every: int = 50,
    variants: dict[str, dict] | None = None,
    log=print,
    earlier: list[dict] = (),
) -> dict:
    """Per training concept and variant: the test PSNR curve of an all-weights fine-tune from the generated start.

    The first variant is the reference the others are compared with (recorded as ``reference``:
    the JSON file's keys are sorted). ``earlier``: results of the same zoo, generator, steps and
    concepts; their variants are kept, not run again, and the first one's reference stays the
    reference (``none`` in files written before it was recorded)."""
    variants = variants or {"none": {}}
    reference = earlier[0].get("reference", "none") if earlier else next(iter(variants))
    known, kept = {}, {}
    for result in [*earlier, {"variants": variants, "per_concept": {}}]:
        for name, changes in result["variants"].items():
            if name in known and known[name] != changes:
                raise ValueError(f"variant {name!r} is {known[name]} in an earlier result, not {changes}")
            known[name] = changes
        for cid, row in result["per_concept"].items():
            kept.setdefault(cid, {}).update(row)
    variants = {reference: known[reference]} | known
    ctx = BenchContext(zoo, generator or str(bundled_generator_path()))
    ids = ctx.zoo.ids("train")
    chosen = spread(ids, concepts)
    schedule = sorted({0, steps, *range(every, steps + 1, every)})
    for result in earlier:
        if (result["concepts"], result["steps"]) != (chosen, steps):
            raise ValueError(
                f"an earlier result is of concepts {result['concepts']} and {result['steps']} steps, "
                f"not {chosen} and {steps}; write to another file"
            )
    rows = {cid: dict(kept.get(cid, {})) for cid in chosen}
    for cid in chosen:
        train, test, _ = zoo_pairs(ctx.zoo, cid)
        seed = ctx.zoo.config.data_seed(cid)
        for name, changes in variants.items():
            if name in rows[cid]:
                continue
            start = METHODS["generated_1"].build(ctx, cid)
            recipe = RecipeConfig(batch_size=ctx.zoo.config.batch_size, seed=seed, **changes)
            curve = tracked_fine_tune(start.model, train, test, steps, schedule, recipe=recipe)
            psnr = [p["psnr"] for p in curve]
            rows.setdefault(cid, {})[name] = {
                "steps": [p["step"] for p in curve],
                "psnr": psnr,
                "best": max(psnr),
                "end": psnr[-1],
                "end_minus_best": psnr[-1] - max(psnr),
            }
            log(f"{cid:30s} {name:16s} " + " ".join(f"{p:.2f}" for p in psnr))
    summary = {
        name: {
            "median_end": statistics.median(r[name]["end"] for r in rows.values()),
            "median_end_minus_best": statistics.median(r[name]["end_minus_best"] for r in rows.values()),
            "median_end_minus_reference": statistics.median(
                r[name]["end"] - r[reference]["end"] for r in rows.values()
            ),
        }
        for name in variants
    }
    return {
        "zoo": str(zoo),
        "generator": generator or "bundled",
        "steps": steps,
        "variants": variants,
        "reference": reference,
        "concepts": chosen,
        "per_concept": rows,
        "summary": summary,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", required=True)
    parser.add_argument("--generator", default=None, help="Generator folder or hub id (default: the bundled one).")
    parser.add_argument("--concepts", type=int, default=4, help="Training concepts, spread over the zoo's list.")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument(
        "--variants", default="none={}", help="NAME=JSON;...: RecipeConfig changes (the first is the reference)."
    )
    parser.add_argument("--json", help="Written atomically; an existing one of the same setup is extended.")
    parser.add_argument(
        "--merge", action="append", default=[], help="Fold in another result of the same setup (repeatable)."
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    files = ([args.json] if args.json and Path(args.json).is_file() else []) + args.merge
    earlier = [json.loads(Path(f).read_text()) for f in files]
    for f, result in zip(files, earlier):
        if (result["zoo"], result["generator"]) != (args.zoo, args.generator or "bundled"):
            parser.error(
                f"{f} holds a result of zoo {result['zoo']} and generator {result['generator']}; write to another file"
            )
    result = measure(
        args.zoo,
        args.generator,
        concepts=args.concepts,
        steps=args.steps,
        every=args.every,
        variants=parse_variants(args.variants),
        log=lambda s: print(s, flush=True),
        earlier=earlier,
    )
    for name, s in result["summary"].items():
        print(
            f"{name:16s} median end {s['median_end']:.2f} dB, end - best {s['median_end_minus_best']:+.2f}, "
            f"end - reference {s['median_end_minus_reference']:+.2f}"
        )
    if args.json:
        atomic_write_json(args.json, result)


# --- its section of docs/BENCHMARKS.md -----------------------------------------------------------
def start_recipe_section(source: str, data: dict) -> list[str]:
    """Recipe variants fine-tuning the generated start on training concepts (``experiments.start_recipe``)."""
    header = (
        "| variant | recipe change | median PSNR at the end | median end − best |"
        + " median end − reference (first row) |"
    )
    lines = [
        "## Keeping a good start's quality: recipe variants on training concepts",
        "",
        (
            f"From `{source}`: {data['steps']} all-weights steps from the generated start on {len(data['concepts'])} "
            f"training concepts ({', '.join(data['concepts'])}); held-out concepts played no part. End minus best: "
            "how much of its peak a run gives back by its last step."
        ),
        "",
        header,
        "|---|---|---|---|---|",
    ]
    reference = data.get("reference", "none")  # the JSON's keys are sorted: the reference is named
    for name in [reference, *(n for n in data["summary"] if n != reference)]:
        r = data["summary"][name]
        change = ", ".join(f"{k} = {v}" for k, v in data["variants"][name].items()) or "none (the benchmark's recipe)"
        lines.append(
            f"| {name} | {change} | {fmt(r['median_end'])} | {fmt(r['median_end_minus_best'])} | "
            f"{fmt(r['median_end_minus_reference'])} |"
        )
    return lines + [""]


def section(files: list[tuple[str, dict]]) -> list[str]:
    """Its section of docs/BENCHMARKS.md, one per file
    (``python -m experiments.bench report --section start-recipe=FILE``)."""
    return [line for source, data in files for line in start_recipe_section(source, data)]


if __name__ == "__main__":
    main()
