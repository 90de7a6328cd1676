"""Generator ablations: block size 128/512, no text, no block index, the zoo-mean centre instead
of the retrieval prior, mean-pooled instead of directional text, 25/50% of the training concepts
(each a generator trained with the main generator's config), and 1/5/25 sampling steps of the
main generator. Each is scored on held-out concepts by the PSNR of its weights
before any fine-tuning (step 0) and the relative L2 distance of its weights to the concept's own
zoo weights; the zoo mean and the oracle are scored beside them.

    python -m experiments.bench ablations --zoo zoo --generator generator --out bench_out

Resumable: generators train into ``OUT/ablations/<name>/`` (``train_generator`` checkpoints,
``--resume`` semantics), scores go to ``OUT/ablations/<name>/eval.json``; both are skipped when
present. Cost: one generator training each (~20-30 min at the default config on one CPU
thread), so about 2-3 h for the seven.

``train_generator`` takes its block size from the zoo's layout, so the block-size ablations
train on a *view* of the zoo re-blocked at that size (``OUT/ablations/zoo_block<N>/``: the same
base and tensors, the layout and fingerprints rewritten); the training-fraction ablations on a
view that lists a seeded subset of the training concepts (files linked, not copied).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
from dataclasses import fields
from pathlib import Path

from experiments.bench.markdown import fmt
from experiments.bench.methods import BenchContext
from weightinit.errors import WeightinitError
from weightinit.fileio import atomic_write_json, read_safetensors, save_safetensors, sha256_file
from weightinit.generator.training import GeneratorTrainingConfig, checkpoints, train_generator
from weightinit.initialization import initialize
from weightinit.layout import BlockLayout
from weightinit.recipe import evaluate
from weightinit.zoo.manifest import BASE_NAME, ZooManifest

ABLATIONS: dict[str, dict] = {
    "block128": {"block_size": 128},
    "block512": {"block_size": 512},
    # without text the retrieval prior (a blend by text similarity) goes too: the zoo-mean centre
    "no_text": {"no_text": True, "prior": "mean"},
    "no_block_index": {"no_block_index": True},
    # the paper's setting: the denoiser learns differences to the zoo mean, no retrieval prior
    "mean_center": {"prior": "mean"},
    "train25": {"train_fraction": 0.25},
    "train50": {"train_fraction": 0.5},
    # the text side before direction-aware conditioning: mean-pooled embeddings only
    "pooled_text": {"text_conditioning": "pooled"},
}
SAMPLING_STEPS = (1, 5, 25)
NOT_CONFIG = {"steps_done", "seconds", "steps_per_s", "final_loss", "parameters", "processes"}


def main_training_config(generator: str | os.PathLike):
    """The main generator's training config (from its generator_config.json)."""
    path = Path(generator) / "generator_config.json"
    if not path.is_file():
        raise WeightinitError(f"{generator} is not a generator folder (no generator_config.json)")
    training = json.loads(path.read_text()).get("training", {})
    known = {f.name for f in fields(GeneratorTrainingConfig)}
    return GeneratorTrainingConfig(**{k: v for k, v in training.items() if k in known and k not in NOT_CONFIG})


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def zoo_view(
    zoo, folder: str | os.PathLike, *, block_size: int | None = None, train_fraction: float | None = None, seed: int = 0
) -> Path:
    """A zoo folder with the same base and weights, re-blocked and/or with fewer training concepts."""
    folder = Path(folder)
    if (folder / "manifest.json").is_file():
        return folder
    manifest = ZooManifest.load(zoo.folder)
    layout = zoo.layout if block_size is None else BlockLayout(zoo.layout.slots, block_size)
    train = zoo.ids("train")
    keep = set(train)
    if train_fraction is not None:
        keep = set(random.Random(seed).sample(train, max(1, round(train_fraction * len(train)))))
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    _link(zoo.folder / BASE_NAME, tmp / BASE_NAME)
    concepts = {}
    for cid, record in manifest.concepts.items():
        if record.split == "train" and cid not in keep:
            continue
        src, dst = zoo.folder / record.file, tmp / record.file
        if block_size is None:
            _link(src, dst)
        else:
            tensors, meta = read_safetensors(src)
            save_safetensors(dst, tensors, {**meta, "weightinit.fingerprint": layout.fingerprint})
        record.sha256 = sha256_file(dst)
        concepts[cid] = record
    manifest.concepts = concepts
    manifest.layout = layout.to_dict()
    manifest.layout_fingerprint = layout.fingerprint
    manifest.save(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


def train_ablation(zoo, generator: str, out: Path, name: str, *, steps: int | None = None, log=print) -> Path:
    """Train (or resume, or skip when done) one ablation generator into ``out/ablations/<name>``."""
    spec = dict(ABLATIONS[name])
    target = out / "ablations" / name
    if (target / "generator_config.json").is_file():
        return target
    config = main_training_config(generator)
    for flag in ("no_text", "no_block_index"):
        if spec.pop(flag, False):
            config.__dict__[flag] = True
    for key in ("prior", "text_conditioning"):
        if key in spec:
            setattr(config, key, spec.pop(key))
    if steps is not None:
        config.steps = steps
        config.save_every = min(config.save_every, steps)
    block_size, fraction = spec.pop("block_size", None), spec.pop("train_fraction", None)
    zoo_dir = zoo.folder
    if block_size is not None:
        zoo_dir = zoo_view(zoo, out / "ablations" / f"zoo_block{block_size}", block_size=block_size)
    elif fraction is not None:
        zoo_dir = zoo_view(
            zoo, out / "ablations" / f"zoo_train{round(fraction * 100)}", train_fraction=fraction, seed=config.seed
        )
    log(f"training ablation {name} into {target}")
    train_generator(zoo_dir, target, config, resume=bool(checkpoints(target)), log=log, progress=False)
    return target


def score(ctx, generator, concepts: list[str], *, steps: int = 1, photos=None) -> dict:
    """Step-0 PSNR and relative L2 to the oracle weights of a generator on ``concepts``."""
    rows = {}
    for cid in concepts:
        test = ctx.zoo.test_pairs(cid, photos)
        model = ctx.base_model()
        if generator == "zoo_mean":
            model = ctx.merged(ctx.mean_delta())
        elif generator == "oracle":
            model = ctx.merged(ctx.oracle_delta(cid))
        else:
            initialize(model, ctx.zoo.record(cid).text, generator=str(generator), steps=steps, seed=ctx.seed)
        rows[cid] = {"psnr_step0": evaluate(model, *test)["psnr"], "rel_l2_to_oracle": ctx.rel_l2_to_oracle(model, cid)}
    return {
        "concepts": rows,
        "median_psnr_step0": statistics.median(r["psnr_step0"] for r in rows.values()),
        "median_rel_l2_to_oracle": statistics.median(r["rel_l2_to_oracle"] for r in rows.values()),
    }


def run_ablations(
    zoo_dir,
    generator: str,
    out,
    *,
    names: list[str] | None = None,
    concepts: list[str] | None = None,
    steps: int | None = None,
    photos=None,
    log=print,
) -> dict:
    """Train the ablation generators (resumably), score everything, write ``OUT/ablations/ablations.json``."""
    out = Path(out)
    ctx = BenchContext(zoo_dir, generator)
    concepts = concepts or ctx.zoo.ids("heldout")
    names = names or list(ABLATIONS)
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown:
        raise WeightinitError(f"unknown ablation(s) {unknown}; known: {', '.join(ABLATIONS)}")
    jobs = [("zoo_mean", "zoo_mean", 1), ("oracle", "oracle", 1)]
    jobs += [(f"steps{k}", generator, k) for k in SAMPLING_STEPS]
    jobs += [(n, None, 1) for n in names]
    results = {}
    for name, gen, k in jobs:
        path = out / "ablations" / name / "eval.json"
        key = {"concepts": concepts, "steps": k, "generator": str(gen) if gen else name}
        if path.is_file() and json.loads(path.read_text()).get("key") == key:
            results[name] = json.loads(path.read_text())
            continue
        if gen is None:
            gen = str(train_ablation(ctx.zoo, generator, out, name, steps=steps, log=log))
        log(f"scoring {name} on {len(concepts)} held-out concept(s)")
        results[name] = {"key": key, **score(ctx, gen, concepts, steps=k, photos=photos)}
        atomic_write_json(path, results[name])
    atomic_write_json(out / "ablations" / "ablations.json", results)
    return results


def markdown(results: dict) -> str:
    lines = ["| variant | median PSNR at step 0 | median rel. L2 to own weights |", "|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['median_psnr_step0']:.2f} | {r['median_rel_l2_to_oracle']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train and score the generator ablations (hours; resumable).")
    parser.add_argument("--zoo", default="zoo")
    parser.add_argument("--generator", required=True, help="The main generator (its training config is reused).")
    parser.add_argument("--out", default="bench_out")
    parser.add_argument("--only", default=None, help=f"Comma-separated subset of {', '.join(ABLATIONS)}.")
    parser.add_argument("--concepts", default=None, help="Comma-separated held-out concept ids (default: all).")
    parser.add_argument("--steps", type=int, default=None, help="Override the training steps (for a quick look).")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    results = run_ablations(
        args.zoo,
        args.generator,
        args.out,
        names=args.only.split(",") if args.only else None,
        concepts=args.concepts.split(",") if args.concepts else None,
        steps=args.steps,
    )
    print(markdown(results))


# --- its section of docs/BENCHMARKS.md -----------------------------------------------------------
ABLATION_LABELS = {
    "zoo_mean": "zoo mean (no generator)",
    "oracle": "the concept's own weights (upper bound)",
    "steps1": "main generator, 1 sampling step",
    "steps5": "main generator, 5 DDIM steps",
    "steps25": "main generator, 25 DDIM steps",
    "block128": "block size 128 (main: 256)",
    "block512": "block size 512",
    "no_text": "no text condition (and so no retrieval prior)",
    "no_block_index": "no block-index condition",
    "mean_center": "zoo-mean centre instead of the retrieval prior (the paper's setting)",
    "train25": "trained on 25% of the training concepts",
    "train50": "trained on 50% of the training concepts",
    "pooled_text": "mean-pooled text embedding instead of the directional one",
}


def ablations_section(ablations: dict, source: str) -> list[str]:
    """The generator ablations: step-0 PSNR and distance to the concept's own weights, against the main generator."""
    main = ablations.get("steps1", {}).get("median_psnr_step0")
    lines = [
        "## Generator ablations (step 0, no fine-tuning)",
        "",
        (
            f"From `{source}` (`python -m experiments.bench ablations`): each variant is a generator trained with the "
            "main one's config but for the one change, scored on the held-out concepts by the PSNR of its weights "
            "before any fine-tuning and the relative L2 distance to the concept's own zoo weights. Medians over the "
            "held-out concepts; the main generator is `steps1`, trained on 100% of the training concepts at block "
            "size 256."
        ),
        "",
        "| variant | what changes | concepts | median PSNR at step 0 | vs main (dB) | median rel. L2 to own weights |",
        "|---|---|---|---|---|---|",
    ]
    if ablations.get("_note"):
        lines += [ablations["_note"], ""]
    order = {name: i for i, name in enumerate(ABLATION_LABELS)}
    variants = {k: v for k, v in ablations.items() if not k.startswith("_")}
    for name, r in sorted(variants.items(), key=lambda kv: order.get(kv[0], len(order))):
        delta = None if main is None else r["median_psnr_step0"] - main
        lines.append(
            f"| {name} | {ABLATION_LABELS.get(name, name)} | {r.get('concept_count', len(r.get('concepts', {})))} | "
            f"{fmt(r['median_psnr_step0'])} | {fmt(delta, 2)} | {fmt(r['median_rel_l2_to_oracle'], 3)} |"
        )
    return lines + [""]


def section(files: list[tuple[str, dict]]) -> list[str]:
    """Its section of docs/BENCHMARKS.md, one per file
    (``python -m experiments.bench report --section ablations=FILE``)."""
    return [line for source, data in files for line in ablations_section(data, source)]


if __name__ == "__main__":
    main()
