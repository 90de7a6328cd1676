"""Time to quality on the networks users train: the reference defaults at their real size.

For each held-out concept of a zoo (every (N / count)-th, a sample chosen by nobody) and one
network the reference flags build (``--arch``), at ``--size`` px and batch size 1 as the
reference trains, four fine-tunes with the pix2pix recipe:

* ``scratch``: the reference init, every weight, ``--scratch-steps`` steps;
* ``base_lora``: the generator's base carried to the network, fresh LoRA (the zoo's rank and
  seed, B = 0), only the factors train;
* ``generated_lora``: ``initialize(net, text, mode="lora")``, only the factors train;
* ``generated_all``: ``initialize(net, text)``, every weight trains.

Starts stop once they reach the target (scratch's final PSNR - 0.5 dB) or at ``--cap`` steps.
A concept counts in the medians when scratch beats the trivial outputs (input as output, mean
target) by 3 dB at this size: the catalog's learnability rule, decided by scratch alone.
Seconds are training wall seconds plus the start's own (generation, transfer, statistics).

Resumable: one JSON per (concept, method) under ``OUT/runs/<concept>/``, written atomically.
``--device cuda`` runs the fine-tunes on a GPU (the starts are made on the CPU, as a user's
``initialize`` would); seconds then compare only with runs on the same device, and ``--shard I/N``
splits the concepts over N processes.

    python -m experiments.default_size --generator unet128 --zoo zoo-unet128 \\
        --arch pix2pix:unet_256,ngf=64,norm=batch --size 256 --concepts 6 --out bench-runs/unet256
    python -m experiments.default_size ... --report-only --json docs/measurements/default_size_unet256.json
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from experiments.bench.runner import spread
from weightinit import plugins
from weightinit.cli.zoo import load_photos
from weightinit.concepts.catalog import default_catalog
from weightinit.fileio import atomic_write_json
from weightinit.finetune import final_psnr, time_to_quality, tracked_fine_tune
from weightinit.initialization import initialize, load_generator, write_base
from weightinit.lora import inject_lora
from weightinit.pairs import ProceduralPairs
from weightinit.recipe import DEVICES, RecipeConfig, select_device, trivial_baselines
from weightinit.zoo.weights import ZooWeights

METHODS = ("scratch", "base_lora", "generated_lora", "generated_all")
TOLERANCE_DB, MARGIN_DB, FINAL_WINDOW = 0.5, 3.0, 0.1


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--generator", required=True, help="generator name, folder or hub id")
    p.add_argument("--zoo", required=True, help="the generator's zoo: its held-out concepts and LoRA settings")
    p.add_argument("--arch", required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--concepts", type=int, default=6)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--scratch-steps", type=int, default=1000)
    p.add_argument("--cap", type=int, default=500, help="steps at most for a start")
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--pool", type=int, default=64, help="train pairs per concept")
    p.add_argument("--test-pairs", type=int, default=8)
    p.add_argument("--ndf", type=int, default=64, help="the discriminator's width (the reference's 64)")
    p.add_argument("--device", default="cpu", choices=DEVICES, help="where the fine-tunes run (auto: CUDA if seen)")
    p.add_argument("--shard", default="0/1", help="I/N: this process runs every N-th concept from the I-th")
    p.add_argument("--json", type=Path, help="write the summary here")
    p.add_argument("--report-only", action="store_true", help="summarise what has finished; train nothing")
    return p.parse_args(argv)


def command_line(args: argparse.Namespace) -> str:
    parts = ["python -m experiments.default_size"]
    for key in ("generator", "zoo", "arch", "size", "concepts", "out"):
        parts.append(f"--{key} {getattr(args, key)}")
    defaults = parse_args(["--generator", "g", "--zoo", "z", "--arch", "a", "--size", "1", "--out", "o"])
    for key in ("scratch_steps", "cap", "eval_every", "pool", "test_pairs", "ndf", "device"):
        if getattr(args, key) != getattr(defaults, key):
            parts.append(f"--{key.replace('_', '-')} {getattr(args, key)}")
    return " ".join(parts)


def chosen_concepts(zoo: ZooWeights, count: int) -> list[str]:
    return spread(zoo.ids("heldout"), count)


@functools.cache
def _photos(size: int):
    return load_photos(None, size)


def _pairs(zoo: ZooWeights, concept_id: str, args):
    # the bundled photos, upscaled as `weightinit zoo build` does where they are smaller than the size
    source = ProceduralPairs(default_catalog().get(concept_id), _photos(args.size), size=args.size)
    seed = zoo.config.data_seed(concept_id)
    return source.sample(args.pool, split="train", seed=seed), source.sample(args.test_pairs, split="test", seed=seed)


def _start(method: str, args, zoo: ZooWeights, concept_id: str):
    """``(model, params to train or None, seconds, info)``."""
    text = zoo.record(concept_id).text
    torch.manual_seed(0)
    model = plugins.build_model(args.arch)  # the reference init (what scratch trains)
    start = time.perf_counter()
    if method == "scratch":
        return model, None, 0.0, {}
    if method == "generated_all":
        report = initialize(model, text, generator=args.generator)
        return model, None, time.perf_counter() - start, {"transfer": report.transfer, "statistics": report.statistics}
    if method == "generated_lora":
        report = initialize(model, text, generator=args.generator, mode="lora")
        params = [p for n, p in model.named_parameters() if n.endswith(("lora_A", "lora_B"))]
        return model, params, time.perf_counter() - start, {"transfer": report.transfer}
    # base + fresh LoRA: the same carried base, no generated delta, statistics fitted the same way
    adapter = plugins.adapter_for_model(model)
    transfer = write_base(model, load_generator(args.generator), adapter=adapter)
    wrappers = inject_lora(model, adapter.lora_targets(model), zoo.config.lora_rank, seed=zoo.config.lora_seed)
    params = [p for w in wrappers.values() for p in (w.lora_A, w.lora_B)]
    return model, params, time.perf_counter() - start, {"transfer": transfer}


def run_method(method: str, args, zoo: ZooWeights, concept_id: str, target: float | None) -> dict:
    train, test = _pairs(zoo, concept_id, args)
    model, params, seconds, info = _start(method, args, zoo, concept_id)
    model.to(select_device(args.device))  # the start is made on the CPU; the parameters keep their identity
    lr = zoo.config.concept_lr if params is not None else 2e-4
    recipe = RecipeConfig(batch_size=1, ndf=args.ndf, lr=lr)
    steps = args.scratch_steps if method == "scratch" else args.cap
    eval_at = range(0, steps + 1, args.eval_every)
    stop = None if target is None else (lambda curve: curve[-1]["psnr"] >= target)
    curve = tracked_fine_tune(
        model, train, test, steps, eval_at, recipe=recipe, params=params, time_offset=seconds, should_stop=stop
    )
    return {"method": method, "concept": concept_id, "start_seconds": seconds, "curve": curve, "lr": lr, **info}


def run(args) -> None:
    zoo = ZooWeights(args.zoo)
    index, count = (int(x) for x in args.shard.split("/"))
    concepts = chosen_concepts(zoo, args.concepts)[index::count]
    for concept_id in concepts:
        folder = args.out / "runs" / concept_id
        folder.mkdir(parents=True, exist_ok=True)
        train, test = _pairs(zoo, concept_id, args)
        trivial = trivial_baselines(*test)["trivial_psnr"]
        atomic_write_json(folder / "trivial.json", {"trivial_psnr": trivial})
        target = None
        for method in METHODS:
            path = folder / f"{method}.json"
            if not path.exists():
                print(f"{concept_id} {method} ...", flush=True)
                t0 = time.perf_counter()
                result = run_method(method, args, zoo, concept_id, target)
                atomic_write_json(path, result)
                print(f"{concept_id} {method}: {result['curve'][-1]} in {time.perf_counter() - t0:.0f} s", flush=True)
            result = json.loads(path.read_text())
            if method == "scratch":
                final = final_psnr(result["curve"], FINAL_WINDOW)
                if final - trivial < MARGIN_DB:
                    print(
                        f"{concept_id}: scratch {final:.2f} dB is within {MARGIN_DB} dB of trivial {trivial:.2f}: apart"
                    )
                    break
                target = final - TOLERANCE_DB


def summarize(args) -> dict:
    zoo = ZooWeights(args.zoo)
    rows, apart, pending = [], [], []
    for concept_id in chosen_concepts(zoo, args.concepts):
        folder = args.out / "runs" / concept_id
        runs = {m: json.loads((folder / f"{m}.json").read_text()) for m in METHODS if (folder / f"{m}.json").exists()}
        if "scratch" not in runs:
            pending.append(concept_id)
            continue
        trivial = json.loads((folder / "trivial.json").read_text())["trivial_psnr"]
        final = final_psnr(runs["scratch"]["curve"], FINAL_WINDOW)
        if final - trivial < MARGIN_DB:
            apart.append({"concept": concept_id, "scratch_final": final, "trivial": trivial})
            continue
        if len(runs) < len(METHODS):
            pending.append(concept_id)
            continue
        target = final - TOLERANCE_DB
        scratch_ttq = time_to_quality(runs["scratch"]["curve"], target)
        row = {"concept": concept_id, "trivial": trivial, "scratch_final": final, "target": target}
        for m in METHODS:
            ttq = time_to_quality(runs[m]["curve"], target)
            curve = runs[m]["curve"]
            entry = {
                "step0_psnr": curve[0]["psnr"],
                "psnr_at_stop": curve[-1]["psnr"],
                "stop_step": curve[-1]["step"],
                "reached": ttq["reached"],
                "steps": ttq["step"],
                "seconds": ttq["seconds"],
                "start_seconds": runs[m].get("start_seconds", 0.0),
            }
            if m != "scratch" and ttq["reached"]:
                entry["speedup_steps"] = scratch_ttq["step"] / max(ttq["step"], 1.0)
                entry["speedup_seconds"] = scratch_ttq["seconds"] / max(ttq["seconds"], 1e-9)
            row[m] = entry
        rows.append(row)
    medians = {}
    for m in METHODS[1:]:
        reached = [r[m] for r in rows if r[m]["reached"]]
        medians[m] = {
            "reached": f"{len(reached)} of {len(rows)}",
            "speedup_steps": _median([e["speedup_steps"] for e in reached]),
            "speedup_seconds": _median([e["speedup_seconds"] for e in reached]),
            "step0_psnr": _median([r[m]["step0_psnr"] for r in rows]),
        }
        if m != "base_lora":
            vs = [
                r["base_lora"]["seconds"] / max(r[m]["seconds"], 1e-9)
                for r in rows
                if r[m]["reached"] and r["base_lora"]["reached"]
            ]
            medians[m]["vs_base_lora_seconds"] = _median(vs)
    return {
        "command": command_line(args),
        "arch": args.arch,
        "size": args.size,
        "batch_size": 1,
        "scratch_steps": args.scratch_steps,
        "cap": args.cap,
        "concepts_asked": args.concepts,
        "complete": rows,
        "apart": apart,
        "pending": pending,
        "medians": medians,
    }


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    if not args.report_only:
        run(args)
    summary = summarize(args)
    if args.json:
        atomic_write_json(args.json, summary)
    print(json.dumps(summary["medians"], indent=2))
    print(f"{len(summary['complete'])} complete, {len(summary['apart'])} apart, {len(summary['pending'])} pending")
    return 0


if __name__ == "__main__":
    sys.exit(main())
