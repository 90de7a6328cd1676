"""What training a fully convolutional zoo on small crops costs at the size it is used on.

    python -m experiments.crop_size --zoo zoo-resnet9 --size 256 --concepts 8 \\
        --json docs/measurements/crop_size_resnet9.json

A ResNet generator runs on any image size, so its zoo can train on 64-px crops (16x cheaper per
step than 256 px) and its weights be used at 256 px. For the first ``--concepts`` training
concepts of the zoo (zoo order: one per family first, so no choice of ours), this evaluates at
``--size`` px, on test pairs made by the concept's own edit from held-out photo regions:

* ``base``: the zoo's base alone;
* ``zoo_crops``: base + the zoo's concept weights, trained on the zoo's crops (its image size);
* ``full_size``: base + the same LoRA fine-tune (same recipe, steps, seed) run on ``--size``-px crops;
* the trivial outputs (input as output, mean target) at ``--size`` px;

and the zoo's own record at its crop size for comparison. ``cost_db`` is ``full_size - zoo_crops``.

Each concept takes a 256-px fine-tune (about 15 CPU-minutes for the ngf-8 ResNet), so with
``--json`` the file is rewritten after every concept and a rerun with the same settings keeps the
concepts already measured: raise ``--concepts`` to extend a committed result.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import time
from pathlib import Path

import torch

from experiments.bench.markdown import fmt
from experiments.bench.methods import BenchContext
from weightinit.cli.zoo import load_photos
from weightinit.concepts.catalog import default_catalog
from weightinit.fileio import atomic_write_json
from weightinit.lora import inject_lora
from weightinit.pairs import ProceduralPairs
from weightinit.recipe import RecipeConfig, evaluate, fine_tune, trivial_baselines


def pick_concepts(zoo, n: int) -> list[str]:
    """The first training concept of each family in zoo order, then the next ones, up to ``n``."""
    train = zoo.ids("train")
    firsts, seen = [], set()
    for cid in train:
        family = zoo.record(cid).family
        if family not in seen:
            seen.add(family)
            firsts.append(cid)
    rest = [c for c in train if c not in firsts]
    return (firsts + rest)[:n]


def measure(
    zoo, size: int = 256, concepts: int = 4, test_pairs: int = 16, log=print, images=None, done=None, on_progress=None
) -> dict:
    """Per concept (``pick_concepts``): base, zoo weights and the same fine-tune at ``size`` px, all at ``size`` px.

    The photos are ``images`` or the bundled ones, upscaled as ``weightinit zoo build`` upscales
    them when they are smaller than ``size`` (they are 256 x 170 px). ``done``: rows measured
    before under the same settings, kept as they are; ``on_progress`` gets the result so far after
    every concept measured here."""
    ctx = BenchContext(zoo)
    zc = ctx.config
    catalog = default_catalog()
    photos = load_photos(images, size)
    picked = pick_concepts(ctx.zoo, concepts)
    # Kept rows are in every save from the first on, so an interrupted rerun loses none of them.
    rows = {cid: done[cid] for cid in picked if cid in (done or {})}

    def result() -> dict:
        ordered = {cid: rows[cid] for cid in picked if cid in rows}
        summary = {
            "concepts": len(rows),
            "requested": len(picked),
            "zoo_crop_size": zc.image_size,
            "size": size,
            **{
                f"median_{k}": statistics.median(r[k] for r in rows.values())
                for k in ("cost_db", "zoo_crops", "full_size", "base")
            },
        }
        return {"arch": zc.arch, "summary": summary, "per_concept": ordered}

    for cid in picked:
        if cid in rows:
            log(f"{cid:32s} kept from the earlier run")
            continue
        seed = zc.data_seed(cid)
        source = ProceduralPairs(catalog.get(cid), photos, size=size)
        test = source.sample(test_pairs, split="test", seed=seed)
        train = source.sample(zc.pool_size, split="train", seed=seed)
        row = {
            "trivial": trivial_baselines(*test),
            "zoo_record_psnr_at_crop_size": ctx.zoo.record(cid).metrics_trained["psnr"],
        }
        row["base"] = evaluate(ctx.base_model(), *test)["psnr"]
        row["zoo_crops"] = evaluate(ctx.merged(ctx.oracle_delta(cid)), *test)["psnr"]
        model = ctx.base_model()
        wrappers = inject_lora(model, ctx.targets, zc.lora_rank, seed=zc.lora_seed)
        params = [p for w in wrappers.values() for p in (w.lora_A, w.lora_B)]
        start = time.perf_counter()
        fine_tune(
            model,
            train,
            zc.concept_steps,
            config=RecipeConfig(batch_size=zc.batch_size, seed=seed, lr=zc.concept_lr),
            params=params,
        )
        row["full_size_seconds"] = round(time.perf_counter() - start, 1)
        row["full_size"] = evaluate(model, *test)["psnr"]
        row["cost_db"] = row["full_size"] - row["zoo_crops"]
        rows[cid] = row
        log(
            f"{cid:32s} at {size} px: base {row['base']:.2f}, zoo ({zc.image_size}-px crops) {row['zoo_crops']:.2f}, "
            f"trained at {size} px {row['full_size']:.2f} ({row['full_size_seconds']:.0f} s), trivial "
            f"{row['trivial']['trivial_psnr']:.2f}; "
            f"zoo record at {zc.image_size} px {row['zoo_record_psnr_at_crop_size']:.2f}"
        )
        if on_progress:
            on_progress(result())
    return result()


def command_line(args: argparse.Namespace) -> str:
    images = f" --images {shlex.quote(args.images)}" if args.images else ""
    return (
        f"python -m experiments.crop_size --zoo {args.zoo} --size {args.size} --concepts {args.concepts} "
        f"--test-pairs {args.test_pairs}{images}"
    )


def earlier_rows(path: str | None, args: argparse.Namespace) -> dict:
    """The concepts of an earlier ``--json`` result measured under the settings of ``args`` (all but
    ``--concepts``); an earlier result under other settings is an error, not something to overwrite."""
    if not path or not Path(path).exists():
        return {}
    earlier = json.loads(Path(path).read_text())
    before = build_parser().parse_args(shlex.split(earlier["command"])[3:])
    differ = [k for k in ("zoo", "size", "test_pairs", "images") if getattr(before, k) != getattr(args, k)]
    if differ:
        raise SystemExit(
            f"{path} was measured with other settings ({', '.join('--' + k.replace('_', '-') for k in differ)}): "
            f"{earlier['command']!r}. Pass another --json, or remove it to start over."
        )
    return earlier["per_concept"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", required=True)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--concepts", type=int, default=4)
    parser.add_argument("--test-pairs", type=int, default=16)
    parser.add_argument(
        "--images", default=None, help="a folder of photos of at least --size px (default: the bundled ones, upscaled)"
    )
    parser.add_argument("--json")
    parser.add_argument("--threads", type=int, default=1)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    done = earlier_rows(args.json, args)

    def save(result: dict) -> None:
        result["command"] = command_line(args)
        if args.json:
            atomic_write_json(args.json, result)

    result = measure(
        args.zoo,
        args.size,
        args.concepts,
        args.test_pairs,
        log=lambda line: print(line, flush=True),
        images=args.images,
        done=done,
        on_progress=save,
    )
    save(result)
    print(result["summary"])


# --- its section of docs/BENCHMARKS.md -----------------------------------------------------------
def crop_size_section(source: str, data: dict) -> list[str]:
    """What training a fully convolutional zoo on small crops costs at the size it is used at
    (``experiments.crop_size``): the zoo's weights against the same fine-tune at full size."""
    s = data["summary"]
    requested = s.get("requested", s["concepts"])
    measured = (
        f"{s['concepts']} of {requested} concept(s) so far (the command resumes)"
        if s["concepts"] < requested
        else f"{s['concepts']} concept(s)"
    )
    lines = [
        f"## What {s['zoo_crop_size']}-px training crops cost at {s['size']} px (`{data['arch']}`)",
        "",
        (
            f"From `{source}` (`{data['command']}`): per concept, the base, the zoo's weights (fine-tuned on "
            f"{s['zoo_crop_size']}-px crops) and the same LoRA fine-tune run on {s['size']}-px crops, all evaluated on "
            f"{s['size']}-px test pairs. Cost = full-size minus zoo, dB (negative: the small crops did better). "
            f"{measured}."
        ),
        "",
        "| concept | base | zoo, small crops | fine-tuned at full size | trivial | cost, dB | full-size fine-tune, s |",
        "|---|---|---|---|---|---|---|",
    ]
    for cid, r in data["per_concept"].items():
        lines.append(
            f"| {cid} | {fmt(r['base'])} | {fmt(r['zoo_crops'])} | {fmt(r['full_size'])} | "
            f"{fmt(r['trivial']['trivial_psnr'])} | {fmt(r['cost_db'])} | {fmt(r.get('full_size_seconds'), 0)} |"
        )
    lines.append(
        f"| **median** | {fmt(s['median_base'])} | {fmt(s['median_zoo_crops'])} | {fmt(s['median_full_size'])} | | "
        f"{fmt(s['median_cost_db'])} | |"
    )
    return lines + [""]


def section(files: list[tuple[str, dict]]) -> list[str]:
    """Its section of docs/BENCHMARKS.md, one per file
    (``python -m experiments.bench report --section crop-size=FILE``)."""
    return [line for source, data in files for line in crop_size_section(source, data)]


if __name__ == "__main__":
    main()
