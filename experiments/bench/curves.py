"""Curves and time to quality: pure functions over a run's curve ``[{step, seconds, l1, psnr, ssim}]``.

A concept's runs are summarised against scratch's: its final PSNR (the mean over the last
``final_window`` of its budget), the target (that minus ``tolerance_db``), and each method's
time to that target, interpolated linearly between evaluations (see :mod:`experiments.bench.runner`).
"""

from __future__ import annotations

import math
import statistics

from weightinit.finetune import final_psnr, time_to_quality


def at_step(curve: list[dict], step: int) -> dict | None:
    return next((p for p in curve if p["step"] == step), None)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _finite(x: float | None) -> float | None:
    return None if x is None or math.isinf(x) or math.isnan(x) else x


def summarize_concept(runs: dict[str, dict], trivial_psnr: float, config) -> dict:
    """Time to quality, speedups and fractions for one concept's runs (``{method: run}``, with scratch);
    ``config`` is the run's ``BenchConfig``."""
    scratch = runs["scratch"]["curve"]
    final = final_psnr(scratch, config.final_window)
    target = final - config.tolerance_db
    ref = time_to_quality(scratch, target)
    out = {
        "scratch_final_psnr": final,
        "target_psnr": target,
        "trivial_psnr": trivial_psnr,
        "margin_db": final - trivial_psnr,
        "apart": final < trivial_psnr + config.trivial_margin_db,
        "scratch_seconds": ref["seconds"],
        "scratch_steps": ref["step"],
        "methods": {},
    }
    oracle0 = next((r["curve"][0]["psnr"] for m, r in runs.items() if m.startswith("oracle")), None)
    for name, run in runs.items():
        curve = run["curve"]
        ttq = time_to_quality(curve, target)
        row = {
            "reached": ttq["reached"],
            "seconds": ttq["seconds"],
            "steps": ttq["step"],
            "init_seconds": run["init_seconds"],
            "psnr_step0": curve[0]["psnr"],
            "ssim_step0": curve[0]["ssim"],
            "l1_step0": curve[0]["l1"],
            "psnr_at_stop": curve[-1]["psnr"],
            "ssim_at_stop": curve[-1]["ssim"],
            "steps_run": curve[-1]["step"],
            "seconds_run": curve[-1]["seconds"],
            "best_psnr": max(p["psnr"] for p in curve),
            "rel_l2_to_oracle": run.get("rel_l2_to_oracle"),
        }
        if oracle0 is not None:
            row["psnr_step0_minus_oracle"] = curve[0]["psnr"] - oracle0
        row["psnr_at_fraction"] = {}
        for f in config.fractions:
            p = at_step(curve, round(f * config.scratch_steps))
            row["psnr_at_fraction"][str(f)] = p["psnr"] if p else None
        if ttq["reached"] and ref["reached"]:
            row["speedup"] = ref["seconds"] / max(ttq["seconds"], 1e-9)
            row["speedup_steps"] = (
                _finite(ref["step"] / ttq["step"]) if ttq["step"] > 0 else None
            )  # None: reached at step 0
        else:
            row["speedup"] = row["speedup_steps"] = None
            if ref["reached"] and curve[-1]["seconds"] > 0:
                row["speedup_upper_bound"] = ref["seconds"] / curve[-1]["seconds"]
        if "fid" in run:
            row["fid"] = run["fid"]
        out["methods"][name] = row
    return out


def summarize(concepts: dict[str, dict], methods: list[str]) -> dict:
    """Medians over the concepts that are not apart; step-0 win rates; the targets."""
    main = {c: s for c, s in concepts.items() if not s["apart"]}
    apart = sorted(c for c, s in concepts.items() if s["apart"])
    per_method = {}
    for m in methods:
        rows = [s["methods"][m] for s in main.values() if m in s["methods"]]
        if not rows:
            continue
        # Not reached counts as speedup 0, so the median is conservative (a lower bound).
        speedups = [r["speedup"] if r["reached"] and r["speedup"] is not None else 0.0 for r in rows]
        fractions = {
            f: _median([r["psnr_at_fraction"][f] for r in rows if r["psnr_at_fraction"].get(f) is not None])
            for f in rows[0]["psnr_at_fraction"]
        }
        per_method[m] = {
            "concepts": len(rows),
            "reached": sum(r["reached"] for r in rows),
            "median_speedup": _median(speedups),
            "median_speedup_steps": _median(
                [r["speedup_steps"] if r["speedup_steps"] is not None else math.inf for r in rows if r["reached"]]
            ),
            "median_seconds": _median([r["seconds"] for r in rows if r["reached"]]),
            "median_psnr_step0": _median([r["psnr_step0"] for r in rows]),
            "median_psnr_at_stop": _median([r["psnr_at_stop"] for r in rows]),
            "median_psnr_step0_minus_oracle": _median(
                [r["psnr_step0_minus_oracle"] for r in rows if r.get("psnr_step0_minus_oracle") is not None]
            ),
            "median_rel_l2_to_oracle": _median(
                [r["rel_l2_to_oracle"] for r in rows if r.get("rel_l2_to_oracle") is not None]
            ),
            "median_psnr_at_fraction": fractions,
        }
        per_method[m]["median_speedup_steps"] = _finite(per_method[m]["median_speedup_steps"])
    out = {
        "concepts": sorted(main),
        "apart": apart,
        "methods": per_method,
        "median_speedup": {m: v["median_speedup"] for m, v in per_method.items()},
        "median_scratch_final_psnr": _median([s["scratch_final_psnr"] for s in main.values()]),
    }
    out["targets"] = targets(main)
    return out


def targets(main: dict[str, dict]) -> dict:
    """The targets the benchmark is judged by (15x median speedup, a step-0 PSNR above the mean's
    and the nearest's on 70% of concepts, 3x faster than fresh LoRA), for generated 1-step (merge)
    and, where run, its LoRA-mode twin and the starts chosen on or generated from pairs."""
    result = {}
    for gen, mean, near, lora in (
        ("generated_1", "mean", "nearest", "lora"),
        ("generated_1_lora", "mean_lora", "nearest_lora", "lora"),
        ("chosen_1", "mean", "nearest", "lora"),
        ("chosen_1_lora", "mean_lora", "nearest_lora", "lora"),
        ("pair_generated_1", "mean", "nearest", "lora"),
        ("pair_generated_1_lora", "mean_lora", "nearest_lora", "lora"),
    ):
        rows = [s["methods"] for s in main.values() if gen in s["methods"]]
        if not rows:
            continue
        speed = _median([r[gen]["speedup"] if r[gen]["reached"] else 0.0 for r in rows])
        better_final = [
            r[gen]["psnr_at_stop"] > s["scratch_final_psnr"]
            for s, r in ((s, s["methods"]) for s in main.values() if gen in s["methods"])
        ]
        t = {
            "median_speedup": speed,
            "speedup_15x": speed is not None and speed >= 15,
            "better_final_psnr_fraction": statistics.fmean(better_final) if better_final else None,
        }
        if all(mean in r and near in r for r in rows):
            wins = [r[gen]["psnr_step0"] > max(r[mean]["psnr_step0"], r[near]["psnr_step0"]) for r in rows]
            t["step0_beats_mean_and_nearest_fraction"] = statistics.fmean(wins)
            t["step0_70pct"] = statistics.fmean(wins) >= 0.7

            def sooner(a, b):
                return a["reached"] and (not b["reached"] or a["seconds"] < b["seconds"])

            t["sooner_than_mean_and_nearest_fraction"] = statistics.fmean(
                [sooner(r[gen], r[mean]) and sooner(r[gen], r[near]) for r in rows]
            )
        if all(lora in r for r in rows):
            ratios = []
            for r in rows:
                g, lo = r[gen], r[lora]
                if not g["reached"]:
                    ratios.append(0.0)
                elif not lo["reached"]:  # LoRA never got there: its whole run is a lower bound on its time
                    ratios.append(lo["seconds_run"] / g["seconds"])
                else:
                    ratios.append(lo["seconds"] / g["seconds"])
            t["median_speedup_over_lora"] = _median(ratios)
            t["speedup_over_lora_3x"] = t["median_speedup_over_lora"] is not None and t["median_speedup_over_lora"] >= 3
        result[gen] = t
    return result
