"""Measure how a zoo's per-concept fine-tune should be set: representation, learning rate, steps.

    python -m experiments.zoo_budget --arch pix2pix:unet_64,ngf=16 --out runs/zoo_budget.json

Trains a base on a mixture of training concepts, then for a few concepts records PSNR curves on
their test pairs for: scratch (reference init, all weights), the base fine-tuned in full, and
the base plus LoRA at several learning rates. Prints where each curve levels off (the first
step within 0.5 dB of its best) and writes every curve to JSON.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from weightinit import plugins
from weightinit.concepts.catalog import default_catalog
from weightinit.fileio import atomic_write_json
from weightinit.images import PhotoSet
from weightinit.lora import inject_lora
from weightinit.recipe import Pix2PixTrainer, RecipeConfig, fine_tune, trivial_baselines
from weightinit.zoo.build import ZooBuilder, concept_seed
from weightinit.zoo.manifest import ZooConfig


def levels_off(curve: list[list[float]], tolerance: float = 0.5) -> int:
    best = max(p[2] for p in curve)
    return next(int(p[0]) for p in curve if p[2] >= best - tolerance)


def step_cost(threads: int, steps: int = 20) -> None:
    """Seconds per pix2pix step (batch 8, 64 px) of the U-Net at several widths."""
    for ngf in (8, 16, 32):
        model = plugins.build_model(f"pix2pix:unet_64,ngf={ngf}")
        trainer = Pix2PixTrainer(model, RecipeConfig(ndf=2 * ngf))
        x, y = torch.rand(8, 3, 64, 64) * 2 - 1, torch.rand(8, 3, 64, 64) * 2 - 1
        for _ in range(3):
            trainer.step(x, y)
        start = time.perf_counter()
        for _ in range(steps):
            trainer.step(x, y)
        per_step = (time.perf_counter() - start) / steps
        params = sum(p.numel() for p in model.parameters())
        print(
            f"ngf {ngf:2d}: {params:>9,} generator parameters, {per_step * 1000:6.0f} ms per step ({threads} "
            "thread(s))",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="pix2pix:unet_64,ngf=16")
    parser.add_argument("--base-steps", type=int, default=1500)
    parser.add_argument("--base-lr", type=float, default=2e-4)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--concepts", default="sketch-to-photo,sepia-medium,night-heavy,chromatic-aberration-medium")
    parser.add_argument("--variants", default="scratch,full,lora_r6_lr1e-3,lora_r6_lr3e-3")
    parser.add_argument("--out", default="runs/zoo_budget.json")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--step-cost", action="store_true", help="only time one pix2pix step at ngf 8/16/32 and exit")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.step_cost:
        step_cost(args.threads)
        return

    catalog = default_catalog()
    config = ZooConfig(
        arch=args.arch,
        base_steps=args.base_steps,
        base_lr=args.base_lr,
        image_size=args.image_size,
        batch_size=args.batch_size,
    )
    builder = ZooBuilder(
        f"runs/zoo_budget_base_{Path(args.out).stem}", config, catalog.by_split("train"), photos=PhotoSet.load(None)
    )
    results: dict = {"args": vars(args), "concepts": {}}
    t = time.perf_counter()
    base, base_seconds, base_metrics = builder.train_base()
    results["base"] = {"seconds": base_seconds, "metrics": base_metrics, "wall": time.perf_counter() - t}
    print(f"base: {base_seconds:.0f} s, mixture test PSNR {base_metrics['psnr']:.2f}", flush=True)
    base_state = {k: v.clone() for k, v in base.state_dict().items()}

    for cid in args.concepts.split(","):
        concept = catalog.get(cid)
        seed = concept_seed(cid, 0)
        train = builder.pairs(concept, config.pool_size, "train", seed)
        test = builder.pairs(concept, config.test_pairs, "test", seed)
        row = {"trivial": trivial_baselines(*test), "runs": {}}
        for variant in args.variants.split(","):
            model = builder.new_model()
            params, lr = None, 2e-4
            if variant != "scratch":
                model.load_state_dict(base_state)
            if variant.startswith("lora"):
                _, rank, lr_s = variant.split("_")
                lr = float(lr_s[2:])
                wrappers = inject_lora(model, builder.adapter.lora_targets(model), int(rank[1:]), seed=config.lora_seed)
                params = [p for w in wrappers.values() for p in (w.lora_A, w.lora_B)]
            result = fine_tune(
                model,
                train,
                args.steps,
                config=RecipeConfig(lr=lr, seed=seed, batch_size=args.batch_size),
                params=params,
                eval_pairs=test,
                eval_every=args.eval_every,
            )
            curve = [[p.step, round(p.seconds, 2), round(p.metrics["psnr"], 3)] for p in result.curve]
            row["runs"][variant] = {
                "curve": curve,
                "levels_off_step": levels_off(curve),
                "best": max(p[2] for p in curve),
            }
            print(
                f"{cid:32s} {variant:18s} start {curve[0][2]:6.2f} final {curve[-1][2]:6.2f} best "
                f"{row['runs'][variant]['best']:6.2f} "
                f"levels off at {row['runs'][variant]['levels_off_step']} ({result.seconds:.0f} s)",
                flush=True,
            )
            results["concepts"][cid] = row
            atomic_write_json(args.out, results)
        print(f"{cid:32s} trivial PSNR {row['trivial']['trivial_psnr']:.2f}", flush=True)


if __name__ == "__main__":
    main()
