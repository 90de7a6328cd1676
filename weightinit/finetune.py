"""A fine-tune tracked by its quality: evaluation schedule, curve, final PSNR and time to quality.

:func:`tracked_fine_tune` runs :func:`weightinit.recipe.fine_tune` and evaluates the model at the
steps of :func:`eval_schedule`, giving a curve ``[{step, seconds, l1, psnr, ssim}]`` whose seconds
exclude evaluation. :func:`final_psnr` and :func:`time_to_quality` read such a curve.
``weightinit demo`` compares its starts with these; the source repository's benchmark harness
(``experiments/bench/``) builds its time-to-quality comparisons on them too.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from weightinit.recipe import batch_statistics, evaluate, fine_tune

METRICS = ("l1", "psnr", "ssim")
EARLY_EVALS = (5, 10, 20, 30, 40, 50, 75, 100, 150, 200)


def eval_schedule(budget: int, steps: int, every: int, fractions=()) -> list[int]:
    """Evaluation steps for a run of ``steps`` within a budget of ``budget`` (step 0 included)."""
    points = {0, steps} | set(range(every, steps + 1, every)) | {s for s in EARLY_EVALS if s < steps}
    points |= {round(f * budget) for f in fractions if 0 < round(f * budget) <= steps}
    return sorted(points)


def final_psnr(curve: list[dict], window: float) -> float:
    """Mean PSNR of the evaluations in the last ``window`` of the run (at least the last one)."""
    last = curve[-1]["step"]
    tail = [p["psnr"] for p in curve if p["step"] >= last * (1 - window)] or [curve[-1]["psnr"]]
    return statistics.fmean(tail)


def time_to_quality(curve: list[dict], target: float) -> dict:
    """Seconds and steps to the first evaluation at or above ``target``, interpolated linearly."""
    for i, p in enumerate(curve):
        if p["psnr"] >= target:
            if i == 0:
                return {"reached": True, "seconds": p["seconds"], "step": 0.0}
            q = curve[i - 1]
            f = (target - q["psnr"]) / (p["psnr"] - q["psnr"]) if p["psnr"] > q["psnr"] else 1.0
            return {
                "reached": True,
                "seconds": q["seconds"] + f * (p["seconds"] - q["seconds"]),
                "step": q["step"] + f * (p["step"] - q["step"]),
            }
    best = max(curve, key=lambda p: p["psnr"])
    return {
        "reached": False,
        "seconds": None,
        "step": None,
        "best_psnr": best["psnr"],
        "last_step": curve[-1]["step"],
        "last_seconds": curve[-1]["seconds"],
    }


@torch.no_grad()
def predict(model, inputs: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """The model's outputs for ``inputs``, in batches, with batch statistics as the fine-tune used them."""
    with batch_statistics(model):
        return torch.cat([model(inputs[i : i + batch_size]).float() for i in range(0, len(inputs), batch_size)])


class _Stop(Exception):
    pass


def tracked_fine_tune(
    model,
    train_pairs,
    eval_pairs,
    steps: int,
    eval_at,
    *,
    recipe,
    params=None,
    time_offset: float = 0.0,
    should_stop: Callable[[list[dict]], bool] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> list[dict]:
    """:func:`weightinit.recipe.fine_tune` with evaluations at ``eval_at`` and an optional early stop.

    Returns the curve: ``[{step, seconds, l1, psnr, ssim}]``; seconds exclude evaluation.
    """
    eval_at = set(eval_at) | {steps}
    curve: list[dict] = []
    clock = {"seconds": time_offset, "mark": 0.0}

    def record(step: int) -> None:
        m = evaluate(model, *eval_pairs)
        curve.append({"step": step, "seconds": round(clock["seconds"], 4), **{k: round(m[k], 5) for k in METRICS}})

    def hook(step: int) -> None:
        clock["seconds"] += time.perf_counter() - clock["mark"]
        if on_step is not None:
            on_step(step)
        if step in eval_at:
            record(step)
            if should_stop is not None and should_stop(curve):
                raise _Stop
        clock["mark"] = time.perf_counter()

    record(0)
    if steps and not (should_stop is not None and should_stop(curve)):
        clock["mark"] = time.perf_counter()
        try:
            fine_tune(model, train_pairs, steps, config=recipe, params=params, on_step=hook)
        except _Stop:
            pass
    return curve
