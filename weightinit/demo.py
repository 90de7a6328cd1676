"""``weightinit demo``: scratch against generated weights on a held-out concept, in a few minutes.

Works from the generator folder alone (the zoo is not shipped): the folder holds the base
checkpoint and the architecture; pairs come from the concept's procedural edit of the bundled
photos, with the same seeds the zoo uses. Both runs get the same recipe, data, data order and
number of steps; seconds are training wall seconds (evaluation excluded) plus, for the
generated run, the generation itself.

Budget: 400 steps per run at ``pix2pix:unet_64,ngf=16`` is ~0.13 s/step on one idle CPU
thread, so ~105 s of training for both runs plus ~15 s of loading and evaluation: about 2 min.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch

from weightinit import plugins
from weightinit.concepts.catalog import default_catalog
from weightinit.errors import WeightinitError
from weightinit.fileio import atomic_write_json
from weightinit.finetune import eval_schedule, final_psnr, predict, time_to_quality, tracked_fine_tune
from weightinit.images import from_tensor
from weightinit.initialization import initialize, load_generator
from weightinit.pairs import ProceduralPairs
from weightinit.recipe import RecipeConfig, trivial_baselines
from weightinit.zoo.build import concept_seed

DEFAULT_STEPS = 400
#: The moving average the README recommends for fine-tuning every weight from a good start.
GENERATED_EMA_DECAY = 0.99
DEFAULT_CONCEPTS = ("sepia-heldout-strength", "warm-heldout-strength")  # clear, quick-to-learn edits
SHOW = 4


def default_concept():
    catalog = default_catalog()
    for cid in DEFAULT_CONCEPTS:
        if cid in catalog:
            return catalog.get(cid)
    heldout = catalog.by_split("heldout")
    if not heldout:
        raise WeightinitError("the concept catalog has no held-out concept; pass --concept")
    return heldout[0]


def demo_image_size(gen) -> int:
    """The side the generator's zoo trained at; else what its arch is made for; else pix2pix's 256."""
    if gen.zoo is not None:
        return gen.zoo.image_size
    return plugins.image_size_of(gen.arch) or 256


def run_demo(
    generator=None,
    concept: str | None = None,
    out: str | Path = "demo_out",
    *,
    steps: int = DEFAULT_STEPS,
    eval_every: int = 25,
    pool_size: int = 256,
    test_pairs: int = 16,
    batch_size: int = 8,
    seed: int = 0,
    tolerance_db: float = 0.5,
    progress: bool = True,
    console=None,
) -> dict:
    """Fine-tune from scratch and from generated weights; write grid.png, psnr_vs_seconds.png, summary.json."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console(stderr=True, highlight=False)
    t_start = time.perf_counter()
    out = Path(out)
    if steps < 1:
        raise WeightinitError(f"steps must be positive, got {steps}")
    gen = load_generator(generator)
    gen.text_encoder  # noqa: B018 - loaded here, not inside the timed generation
    c = default_catalog().resolve(concept) if concept else default_concept()
    size = demo_image_size(gen)
    source = ProceduralPairs(c, None, size=size)
    data_seed = concept_seed(c.id, seed)
    train = source.sample(pool_size, split="train", seed=data_seed)
    test = source.sample(test_pairs, split="test", seed=data_seed)
    recipe = RecipeConfig(batch_size=batch_size, seed=data_seed)
    schedule = eval_schedule(steps, steps, eval_every)
    console.print(
        f"demo: [bold]{c.text}[/] ({c.id}, {c.split}); {gen.arch}; {steps} steps each from scratch and from generated "
        "weights"
    )

    runs = {}
    bars = Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not progress,
    )
    with bars:
        # scratch: the reference pix2pix init
        task = bars.add_task("scratch", total=steps)
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            scratch = gen.base_adapter.reset_parameters(plugins.build_model(gen.arch))
        init_s = time.perf_counter() - t0
        curve = tracked_fine_tune(
            scratch,
            train,
            test,
            steps,
            schedule,
            recipe=recipe,
            time_offset=init_s,
            on_step=lambda s: bars.update(task, completed=s),
        )
        runs["scratch"] = {"init_seconds": init_s, "curve": curve, "pred_after": predict(scratch, test[0])[:SHOW]}

        # generated: base + generated delta, fine-tuned with the moving average the README recommends
        # for a start that is already good; once more without it, to show what the average keeps
        for name, decay in (("generated", GENERATED_EMA_DECAY), ("generated, no average", 0.0)):
            task = bars.add_task(name, total=steps)
            model = plugins.build_model(gen.arch)
            model.load_state_dict(gen.base_state)
            t0 = time.perf_counter()
            report = initialize(model, c.text, generator=gen, steps=1, seed=seed)
            init_s = time.perf_counter() - t0
            before = predict(model, test[0])[:SHOW]
            curve = tracked_fine_tune(
                model,
                train,
                test,
                steps,
                schedule,
                recipe=replace(recipe, ema_decay=decay),
                time_offset=init_s,
                on_step=lambda s, task=task: bars.update(task, completed=s),
            )
            runs[name] = {
                "init_seconds": init_s,
                "generation_seconds": report.generation_seconds,
                "curve": curve,
                "pred_before": before,
                "pred_after": predict(model, test[0])[:SHOW],
                "ema_decay": decay,
            }

    final = final_psnr(runs["scratch"]["curve"], 0.1)
    target = final - tolerance_db
    ref = time_to_quality(runs["scratch"]["curve"], target)
    summary = {
        "concept": c.id,
        "text": c.text,
        "arch": gen.arch,
        "generator": gen.name,
        "steps": steps,
        "seed": seed,
        "threads": torch.get_num_threads(),
        "trivial": trivial_baselines(*test),
        "scratch_final_psnr": final,
        "target_psnr": target,
        "tolerance_db": tolerance_db,
        "runs": {},
    }
    for name, run in runs.items():
        ttq = time_to_quality(run["curve"], target)
        summary["runs"][name] = {
            "init_seconds": run["init_seconds"],
            "step0": run["curve"][0],
            "final": run["curve"][-1],
            "curve": run["curve"],
            "seconds_to_target": ttq["seconds"],
            "steps_to_target": ttq["step"],
            "speedup": ref["seconds"] / max(ttq["seconds"], 1e-9) if ttq["reached"] and ref["reached"] else None,
        }
        if "generation_seconds" in run:
            summary["runs"][name]["generation_seconds"] = run["generation_seconds"]
            summary["runs"][name]["ema_decay"] = run["ema_decay"]
    out.mkdir(parents=True, exist_ok=True)
    write_grid(out / "grid.png", test, runs)
    plot_psnr(out / "psnr_vs_seconds.png", summary)
    summary["seconds_total"] = time.perf_counter() - t_start
    atomic_write_json(out / "summary.json", summary)
    print_table(summary, console)
    console.print(
        f"wrote {out / 'grid.png'}, {out / 'psnr_vs_seconds.png'} and {out / 'summary.json'} "
        f"({summary['seconds_total']:.0f} s in all)"
    )
    return summary


def write_grid(path: Path, test, runs: dict) -> None:
    """Rows: test examples; columns: input, scratch, generated before, generated after, target."""
    import numpy as np
    from PIL import Image, ImageDraw

    cols = [
        ("input", test[0][:SHOW]),
        ("scratch", runs["scratch"]["pred_after"]),
        ("generated, before", runs["generated"]["pred_before"]),
        ("generated, after", runs["generated"]["pred_after"]),
        ("target", test[1][:SHOW]),
    ]
    imgs = [from_tensor(t) for _, t in cols]
    n, h, w = imgs[0].shape[0], imgs[0].shape[1], imgs[0].shape[2]
    scale = max(1, 128 // w)
    cell_w, cell_h, top = w * scale, h * scale, 18
    canvas = Image.new("RGB", (cell_w * len(cols), top + cell_h * n), "white")
    draw = ImageDraw.Draw(canvas)
    for j, (name, _) in enumerate(cols):
        draw.text((j * cell_w + 3, 3), name, fill="black")
        for i in range(n):
            tile = Image.fromarray((np.asarray(imgs[j][i]) * 255).round().astype("uint8")).resize(
                (cell_w, cell_h), Image.NEAREST
            )
            canvas.paste(tile, (j * cell_w, top + i * cell_h))
    canvas.save(path)


def plot_psnr(path: Path, summary: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, run in summary["runs"].items():
        style = "--" if run.get("ema_decay") == 0.0 else "-"  # the run without the moving average, dashed
        label = f"{name} (moving average {run['ema_decay']})" if run.get("ema_decay") else name
        ax.plot([p["seconds"] for p in run["curve"]], [p["psnr"] for p in run["curve"]], style, marker=".", label=label)
    target = f"scratch final − {summary['tolerance_db']} dB"
    ax.axhline(summary["target_psnr"], color="k", ls=":", lw=0.8, label=target)
    ax.axhline(
        summary["trivial"]["trivial_psnr"], color="grey", ls="--", lw=0.8, label="trivial (input or mean target)"
    )
    ax.set_xlabel("seconds (generation included, evaluation excluded)")
    ax.set_ylabel("PSNR on test pairs (dB)")
    ax.set_title(summary["text"], fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def print_table(summary: dict, console) -> None:
    from rich.table import Table

    table = Table(
        title=f"{summary['text']}: {summary['steps']} steps each; target = scratch's final PSNR − "
        f"{summary['tolerance_db']} dB"
    )
    for col in ("init", "PSNR 0", "PSNR end", "SSIM", "L1", "s", "to target", "speedup"):
        table.add_column(col, justify="right" if col != "init" else "left")
    for name, r in summary["runs"].items():
        reach = (
            "not reached"
            if r["seconds_to_target"] is None
            else f"{r['seconds_to_target']:.1f} s / {r['steps_to_target']:.0f} st"
        )
        table.add_row(
            name,
            f"{r['step0']['psnr']:.2f}",
            f"{r['final']['psnr']:.2f}",
            f"{r['final']['ssim']:.3f}",
            f"{r['final']['l1']:.4f}",
            f"{r['final']['seconds']:.1f}",
            reach,
            "–" if r["speedup"] is None else f"{r['speedup']:.1f}x",
        )
    console.print(table)
