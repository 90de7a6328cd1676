"""experiments.default_size: the summary of what has finished, learnability decided by scratch alone."""

from __future__ import annotations

import json

from experiments.default_size import chosen_concepts, parse_args, summarize
from weightinit.zoo.weights import ZooWeights


def _curve(points):
    return [{"step": s, "seconds": s * 2.0, "psnr": p, "l1": 0.1, "ssim": 0.5} for s, p in points]


def _write(out, concept, trivial, runs):
    folder = out / "runs" / concept
    folder.mkdir(parents=True)
    (folder / "trivial.json").write_text(json.dumps({"trivial_psnr": trivial}))
    for method, points in runs.items():
        (folder / f"{method}.json").write_text(json.dumps({"curve": _curve(points), "start_seconds": 0.0}))


def test_summary_counts_speedups_against_scratch_and_sets_unlearnable_concepts_apart(tiny_zoo_dir, tmp_path):
    concept = chosen_concepts(ZooWeights(tiny_zoo_dir), 1)[0]
    args = parse_args(
        [
            "--generator",
            "g",
            "--zoo",
            str(tiny_zoo_dir),
            "--arch",
            "pix2pix:unet_64",
            "--size",
            "64",
            "--concepts",
            "1",
            "--out",
            str(tmp_path / "learnable"),
            "--scratch-steps",
            "100",
        ]
    )
    scratch = [(0, 10.0), (50, 18.0), (90, 20.0), (100, 20.0)]  # final 20 dB, target 19.5
    _write(
        args.out,
        concept,
        12.0,
        {
            "scratch": scratch,
            "base_lora": [(0, 14.0), (20, 19.5)],  # reaches the target at step 20
            "generated_lora": [(0, 19.5)],  # at step 0
            "generated_all": [(0, 15.0), (50, 17.0)],  # never
        },
    )
    summary = summarize(args)
    row = summary["complete"][0]
    assert row["scratch_final"] == 20.0 and row["target"] == 19.5
    assert row["base_lora"]["reached"] and row["base_lora"]["steps"] == 20.0
    assert row["generated_lora"]["steps"] == 0.0 and not row["generated_all"]["reached"]
    assert row["generated_all"]["psnr_at_stop"] == 17.0 and "speedup_steps" not in row["generated_all"]
    assert summary["medians"]["generated_all"]["reached"] == "0 of 1"
    assert summary["apart"] == [] and summary["pending"] == []

    args.out = tmp_path / "apart"
    _write(args.out, concept, 18.5, {"scratch": scratch})  # 20 dB is within 3 dB of trivial 18.5
    summary = summarize(args)
    assert summary["complete"] == [] and summary["apart"][0]["concept"] == concept
