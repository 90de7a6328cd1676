"""Choosing ``initialize(widen_noise=...)`` on training concepts: fine-tunes of a widened network.

Copied channels get identical gradients and never diverge; the noise breaks the tie without
changing the function. On training concepts of the bundled zoo (every (N / count)-th, chosen by
nobody), the bundled generator's ``unet_64 ngf 16`` start is widened to ``ngf 64`` at each noise
level and fine-tuned with the pix2pix recipe at batch size 1 (LoRA-only at the zoo's learning
rate, and all weights at the reference's), evaluated every 50 steps on the concept's test pairs.
Held-out concepts are not looked at: the default is chosen here and measured elsewhere.

    python -m experiments.widen_noise --json docs/measurements/widen_noise.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

from experiments.bench.runner import spread
from weightinit import initialize, plugins
from weightinit.fileio import atomic_write_json
from weightinit.finetune import tracked_fine_tune
from weightinit.recipe import RecipeConfig
from weightinit.zoo.weights import ZooWeights

TARGET_ARCH = "pix2pix:unet_64,ngf=64,norm=batch"


def run(zoo: ZooWeights, concept_id: str, noise: float, mode: str, steps: int, every: int) -> list[dict]:
    torch.manual_seed(0)
    model = plugins.build_model(TARGET_ARCH)
    initialize(model, zoo.record(concept_id).text, mode=mode, widen_noise=noise)
    params = [p for n, p in model.named_parameters() if n.endswith(("lora_A", "lora_B"))] if mode == "lora" else None
    recipe = RecipeConfig(batch_size=1, lr=zoo.config.concept_lr if mode == "lora" else 2e-4)
    train = zoo.train_pairs(concept_id)
    test = zoo.test_pairs(concept_id)
    return tracked_fine_tune(model, train, test, steps, range(0, steps + 1, every), recipe=recipe, params=params)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zoo", default="zoo")
    p.add_argument("--concepts", type=int, default=4)
    p.add_argument("--noise", default="0,0.1,1")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--every", type=int, default=50)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    zoo = ZooWeights(args.zoo)
    levels = [float(x) for x in args.noise.split(",")]
    concepts = spread(zoo.ids("train"), args.concepts)
    rows = []
    for concept_id in concepts:
        for mode in ("lora", "merge"):
            for noise in levels:
                curve = run(zoo, concept_id, noise, mode, args.steps, args.every)
                rows.append({"concept": concept_id, "mode": mode, "noise": noise, "curve": curve})
                print(
                    f"{concept_id} {mode} noise {noise}: {curve[0]['psnr']:.2f} -> {curve[-1]['psnr']:.2f} dB",
                    flush=True,
                )
    summary = {}
    for mode in ("lora", "merge"):
        for noise in levels:
            gains = [
                r["curve"][-1]["psnr"] - r["curve"][0]["psnr"]
                for r in rows
                if r["mode"] == mode and r["noise"] == noise
            ]
            finals = [r["curve"][-1]["psnr"] for r in rows if r["mode"] == mode and r["noise"] == noise]
            summary[f"{mode} {noise:g}"] = {
                "median_gain_db": statistics.median(gains),
                "median_final_db": statistics.median(finals),
            }
    defaults = {"zoo": "zoo", "concepts": 4, "noise": "0,0.1,1", "steps": 300, "every": 50}
    options = "".join(f" --{k} {getattr(args, k)}" for k, v in defaults.items() if getattr(args, k) != v)
    out = {
        "command": "python -m experiments.widen_noise" + options,
        "target_arch": TARGET_ARCH,
        "concepts": concepts,
        "steps": args.steps,
        "summary": summary,
        "runs": rows,
    }
    if args.json:
        atomic_write_json(args.json, out)
    for key, value in summary.items():
        print(f"{key}: gain {value['median_gain_db']:+.2f} dB, final {value['median_final_db']:.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
