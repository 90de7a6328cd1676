"""Composite texts: does a start built from the parts' blends beat the blend of the whole text?

    python -m experiments.composed_prior --zoo zoo --generator runs/generator \\
        --json docs/measurements/composed_prior.json [--write]

For every zoo concept whose text splits into parts (``weightinit.generator.composition``), this
evaluates at step 0 (test PSNR, no training) the retrieval prior's centre for the whole text and
the mean of its parts' blends (``mean_of_parts``), with the similarities that decide whether a
text counts as composite. Training concepts are scored leave-group-out: the concept, its other
strengths and its reverse are masked out of the prior, as a held-out composition has none of
them. The policy's ``margin`` (compose when the weakest part is at least as similar as the whole
text minus the margin) is the one with the best mean PSNR over the *training* rows; held-out
rows are only reported. ``--write`` stores the policy as the generator's ``composition``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

import torch

from experiments.bench.markdown import fmt
from experiments.bench.methods import BenchContext
from experiments.bench.runner import zoo_test_pairs
from weightinit.concepts.concept import concept_group as group_of
from weightinit.fileio import atomic_write_json
from weightinit.generator.composition import CompositionPolicy, split_parts
from weightinit.recipe import evaluate


def masked_prior(prior, concept_ids: list[str], group: str):
    """The prior without the phrasings of every concept in ``group``."""
    drop = torch.tensor([group_of(c) == group for c in concept_ids])
    keep = ~drop[prior.owner]
    return dataclasses.replace(prior, keys=prior.keys[keep], owner=prior.owner[keep])


def measure(ctx, scales: tuple[float, ...] = ()) -> dict[str, dict]:
    """Per splittable concept: similarities, PSNR of the whole text's centre and of the mean of
    the parts' blends, and (``scales``) of the parts' blends summed and scaled by each factor."""
    gen = ctx.generator
    full_prior, saved_policy = gen.prior, gen.composition
    ids = list(full_prior.concept_ids)
    always = CompositionPolicy(margin=float("inf"))
    rows = {}
    try:
        for cid in ctx.zoo.ids():
            record = ctx.zoo.record(cid)
            parts = split_parts(record.text)
            if len(parts) < 2:
                continue
            gen.prior = masked_prior(full_prior, ids, group_of(cid)) if record.split == "train" else full_prior
            test = zoo_test_pairs(ctx.zoo, cid)
            embedding = gen.encode_text(record.text)
            whole_sim = float(gen.prior.concept_similarity(embedding.pooled)[0].max())
            part_sims = gen.prior.concept_similarity(gen.encode_text(parts).pooled).max(1).values.tolist()
            psnr = {}
            for name, policy in (("whole", None), ("parts", always)):
                gen.composition = policy
                psnr[name] = round(evaluate(ctx.merged_blocks(gen.prior_blocks(record.text)), *test)["psnr"], 3)
            part_weights = gen.prior.concept_weights(gen.encode_text(parts).pooled).sum(0)
            for scale in scales:
                blocks = gen.normalizer.denormalize(
                    gen.center + gen.prior.blend(scale * part_weights[None]), torch.float32
                )
                psnr[f"sum_x{scale}"] = round(evaluate(ctx.merged_blocks(blocks), *test)["psnr"], 3)
            rows[cid] = {
                "split": record.split,
                "family": record.family,
                "text": record.text,
                "parts": parts,
                "whole_similarity": round(whole_sim, 4),
                "part_similarity": [round(s, 4) for s in part_sims],
                **psnr,
            }
            print(
                f"{cid:36s} {record.split:8s} similarity whole {whole_sim:.2f} parts {min(part_sims):.2f}: "
                f"whole {psnr['whole']:6.2f} dB, mean of parts {psnr['parts']:6.2f} dB",
                flush=True,
            )
    finally:
        gen.prior, gen.composition = full_prior, saved_policy
    return rows


def choose_margin(rows: dict[str, dict]) -> tuple[float, float]:
    """The margin with the best mean PSNR over the training rows, and that mean."""
    train = [r for r in rows.values() if r["split"] == "train"]
    gaps = sorted({round(r["whole_similarity"] - min(r["part_similarity"]), 4) for r in train})
    # never composing (below every gap), and composing down to each observed gap (a hair above it,
    # so rounding does not drop the row it is taken from)
    candidates = [min(gaps) - 1e-3, *(round(g + 1e-4, 4) for g in gaps)] if gaps else [0.0]
    best, best_mean = candidates[0], float("-inf")
    for m in candidates:
        policy = CompositionPolicy(margin=m)
        mean = statistics.fmean(
            r["parts"] if policy.accepts(r["whole_similarity"], r["part_similarity"]) else r["whole"] for r in train
        )
        if mean > best_mean + 1e-9:
            best, best_mean = m, mean
    return best, best_mean


def summarise(rows: dict[str, dict], margin: float) -> dict:
    policy = CompositionPolicy(margin=margin)
    out = {"policy": policy.to_dict()}
    scaled = sorted({k for r in rows.values() for k in r if k.startswith("sum_x")}, key=lambda k: float(k[5:]))
    for split in ("train", "heldout"):
        for scope, sel in (("all", None), ("compositions", "composition")):
            chosen = [r for r in rows.values() if r["split"] == split and (sel is None or r["family"] == sel)]
            if not chosen:
                continue
            composed = [
                r["parts"] if policy.accepts(r["whole_similarity"], r["part_similarity"]) else r["whole"]
                for r in chosen
            ]
            out[f"{split}_{scope}"] = {
                "concepts": len(chosen),
                "composed": sum(policy.accepts(r["whole_similarity"], r["part_similarity"]) for r in chosen),
                "median_whole": statistics.median(r["whole"] for r in chosen),
                "median_policy": statistics.median(composed),
                "policy_beats_whole": sum(c > r["whole"] for c, r in zip(composed, chosen)),
                **{
                    f"median_{k}": statistics.median(r[k] for r in chosen)
                    for k in scaled
                    if all(k in r for r in chosen)
                },
            }
    return out


def main(argv: list[str] | None = None) -> None:
    from weightinit.generator.model import WeightGenerator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", required=True)
    parser.add_argument("--generator", required=True, help="Generator folder (written with --write).")
    parser.add_argument(
        "--scales", default="", help="also score the parts' summed blends at these factors, e.g. 0.4,0.5,0.75,1"
    )
    parser.add_argument("--json")
    parser.add_argument("--rows-from", help="Re-choose from the rows of an earlier --json instead of measuring.")
    parser.add_argument("--write", action="store_true", help="store the chosen policy in the generator folder")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    if args.rows_from:
        rows = json.loads(Path(args.rows_from).read_text())["per_concept"]
    else:
        rows = measure(BenchContext(args.zoo, args.generator), tuple(float(x) for x in args.scales.split(",") if x))
    margin, train_mean = choose_margin(rows)
    result = {
        "command": f"python -m experiments.composed_prior --zoo {args.zoo} --generator {args.generator}"
        + (f" --scales {args.scales}" if args.scales else ""),
        "chosen_on": "training concepts, each with its group left out of the prior",
        "train_mean_psnr_at_margin": round(train_mean, 3),
        **summarise(rows, margin),
        "per_concept": rows,
    }
    for key in ("train_all", "train_compositions", "heldout_all", "heldout_compositions"):
        if key in result:
            s = result[key]
            print(
                f"{key:22s} {s['concepts']:3d} concepts, {s['composed']:3d} composed: median whole "
                f"{s['median_whole']:.2f} dB, "
                f"policy {s['median_policy']:.2f} dB, policy better on {s['policy_beats_whole']}"
            )
    print(f"policy: compose when the weakest part's similarity >= the whole's - {margin:.4f}")
    if args.json:
        atomic_write_json(args.json, result)
    if args.write:
        gen = WeightGenerator.from_pretrained(args.generator)
        gen.composition = CompositionPolicy(margin=margin)
        gen.save_pretrained(args.generator)
        print(f"wrote the composition policy to {args.generator}")


# --- its section of docs/BENCHMARKS.md -----------------------------------------------------------
def composition_section(source: str, data: dict) -> list[str]:
    """Composite texts built from their parts' blends against the blend of the whole text
    (``experiments.composed_prior``), with the policy chosen on the training rows."""
    policy = data["policy"]
    lines = [
        "## Composite texts: the parts' blends against the whole text's",
        "",
        (
            f"From `{source}` (`{data.get('command', 'python -m experiments.composed_prior')}`): step-0 test PSNR of "
            'the prior\'s centre (no denoiser) for every zoo concept whose text splits at "with", "plus" or '
            '"and"; training concepts with their whole group (other strengths, reverse) left out of the prior. The '
            "policy composes when the weakest part's similarity is at least the whole text's minus "
            f"{policy['margin']:.4f}, the margin with the best mean PSNR on the training rows; held-out rows played "
            "no part in it."
        ),
        "",
    ]
    scaled = sorted(
        {
            k.removeprefix("median_")
            for part in data.values()
            if isinstance(part, dict)
            for k in part
            if k.startswith("median_sum_x")
        },
        key=lambda k: float(k[5:]),
    )
    lines += [
        "| rows | concepts | composed by the policy | median, whole text | median, policy | policy better on | "
        + " | ".join(f"median, parts summed x{k[5:]}" for k in scaled)
        + " |",
        "|---|---|---|---|---|---|" + "---|" * len(scaled),
    ]
    for key in ("train_all", "train_compositions", "heldout_all", "heldout_compositions"):
        if key in data:
            r = data[key]
            lines.append(
                f"| {key.replace('_', ' ')} | {r['concepts']} | {r['composed']} | {fmt(r['median_whole'])} | "
                f"{fmt(r['median_policy'])} | {r['policy_beats_whole']} of {r['concepts']} | "
                + " | ".join(fmt(r.get(f"median_{k}")) for k in scaled)
                + " |"
            )
    return lines + [""]


def section(files: list[tuple[str, dict]]) -> list[str]:
    """Its section of docs/BENCHMARKS.md, one per file
    (``python -m experiments.bench report --section composition=FILE``)."""
    return [line for source, data in files for line in composition_section(source, data)]


if __name__ == "__main__":
    main()
