"""Time to target of the text policies on training concepts: does a better step 0 train faster?

    python -m experiments.text_policy_ttq --zoo zoo --generator GEN --policy docs/measurements/text_policy.json \\
        --concepts 8 --json docs/measurements/text_policy_ttq.json

For the training concepts where a policy chosen by ``experiments.text_policy`` changes the start
(held out as there: for the weight-blend and sibling policies the concept and its reverse are out
of the prior, for the far policy its whole group), ``--concepts`` of each, spread over them in the prior's order
(chosen by nobody): a LoRA-only fine-tune (the zoo's rank, seed, learning rate and batch size)
from the start without the policy and from the start with it, until the test PSNR reaches the
concept's own zoo weights' less ``--margin`` dB, or ``--cap`` steps. Held-out concepts are never
read. Prints and saves the steps and seconds to the target of each start, per concept and as
medians. The weight-blend policy is compared with the factor blend of the same text; under it, the
other two are measured with weight-space blends. ``--write`` keeps the weight-blend and sibling
policies and the far policy's fallback in the generator folder only where each reached the target
sooner on more of these concepts than later (the step-0 choice alone does not ship them); a far
policy without its fallback keeps its threshold, so far texts are still warned about.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from experiments.bench.methods import BenchContext
from experiments.bench.runner import spread
from experiments.text_policy import blend_of, twin
from weightinit.codec import BlockCodec
from weightinit.concepts.concept import concept_group
from weightinit.fileio import atomic_write_json
from weightinit.finetune import time_to_quality, tracked_fine_tune
from weightinit.generator.folder import write_policies
from weightinit.generator.model import WeightGenerator
from weightinit.generator.siblings import sibling_weights
from weightinit.generator.weight_blend import blend_tensors
from weightinit.recipe import RecipeConfig, evaluate


def factors_of(ctx: BenchContext, weights: torch.Tensor, space: str) -> dict[str, torch.Tensor]:
    """The LoRA factors of blend ``weights [1, C]``: the prior's blend of factors, or (``space``
    ``weights``) the best factors of the blend of weight changes (``weightinit.generator.weight_blend``)."""
    gen = ctx.generator
    if space == "weights":
        return blend_tensors(gen, weights[0])
    center = gen.center if gen.center is not None else 0
    blocks = gen.normalizer.denormalize(center + gen.prior.blend(weights), torch.float32)
    return BlockCodec(gen.layout).decode(blocks, copy=True)


def starts(ctx: BenchContext, cid: str, policy: dict, which: str) -> tuple[dict, dict]:
    """The start's factors without and with the policy ``which`` ("weight_blend", "siblings" or "far")."""
    gen, prior = ctx.generator, ctx.generator.prior
    ids = list(prior.concept_ids)
    text = ctx.zoo.record(cid).text
    space = policy["space"]
    if which == "weight_blend":
        weights = blend_of(gen, text, torch.tensor([[c in (cid, twin(cid)) for c in ids]]))[0].mean(0, keepdim=True)
        return factors_of(ctx, weights, "factors"), factors_of(ctx, weights, "weights")
    plain, with_policy = blends(ctx, cid, policy, which)
    return factors_of(ctx, plain, space), factors_of(ctx, with_policy, space)


def blends(ctx: BenchContext, cid: str, policy: dict, which: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The blend weights ``[1, C]`` without and with the policy ``which`` ("siblings" or "far")."""
    gen, prior = ctx.generator, ctx.generator.prior
    ids = list(prior.concept_ids)
    text = ctx.zoo.record(cid).text
    if which == "siblings":
        out = torch.tensor([[c in (cid, twin(cid)) for c in ids]])
        weights, sims, _ = blend_of(gen, text, out)
        t = policy["siblings"]["temperature"]
        again = sibling_weights(weights, sims, ids, t, out.expand(len(weights), -1))
        return weights.mean(0, keepdim=True), again.mean(0, keepdim=True)
    out = torch.tensor([[concept_group(c) == concept_group(cid) for c in ids]])
    weights, _, _ = blend_of(gen, text, out)
    fallback = policy["far"]["fallback"]
    if fallback == "mean":
        return weights.mean(0, keepdim=True), torch.full((1, len(ids)), 1.0 / len(ids))
    broader, _, _ = blend_of(gen, text, out, float(fallback.removeprefix("prior_t")))
    return weights.mean(0, keepdim=True), broader.mean(0, keepdim=True)


def changed(rows: list[dict], policy: dict, which: str) -> list[str]:
    """The training concepts whose start the policy changes, in the prior's order."""
    if which == "weight_blend":
        return [r["concept"] for r in rows if r["self"]["prior"] != r["self"]["prior_factors"]]
    if which == "siblings":
        t = policy["siblings"]["temperature"]
        key = f"siblings_t{t}"
        return [r["concept"] for r in rows if key in r["self"] and r["self"][key] != r["self"]["prior"]]
    far = policy["far"]
    return [r["concept"] for r in rows if r["similarity"] < far["similarity"] and r[far["fallback"]] != r["prior"]]


def fine_tune(ctx: BenchContext, cid: str, factors: dict[str, torch.Tensor], target: float, args) -> dict:
    model, params = ctx.with_lora(factors)
    train, test = ctx.zoo.train_pairs(cid, None, ctx.photos), ctx.zoo.test_pairs(cid)
    zc = ctx.zoo.config
    recipe = RecipeConfig(batch_size=zc.batch_size, seed=zc.data_seed(cid), lr=zc.concept_lr)
    curve = tracked_fine_tune(
        model,
        train,
        test,
        args.cap,
        range(0, args.cap + 1, args.eval_every),
        recipe=recipe,
        params=params,
        should_stop=lambda c: c[-1]["psnr"] >= target,
    )
    ttq = time_to_quality(curve, target)
    return {"step0_psnr": curve[0]["psnr"], "reached": ttq["reached"], "steps": ttq["step"], "seconds": ttq["seconds"]}


def measure(ctx: BenchContext, policy: dict, rows: list[dict], args, log=print) -> dict:
    out = {}
    for which in ("weight_blend", "siblings", "far"):
        if which == "siblings" and policy["siblings"]["temperature"] is None:
            continue
        if which == "weight_blend" and policy["space"] != "weights":
            continue
        chosen = spread(changed(rows, policy, which), args.concepts)
        per = {}
        for cid in chosen:
            own = evaluate(ctx.merged(ctx.delta(ctx.zoo.concept(cid))), *ctx.zoo.test_pairs(cid))["psnr"]
            target = own - args.margin
            plain, with_policy = starts(ctx, cid, policy, which)
            per[cid] = {"target": round(target, 4)}
            per[cid]["without"] = fine_tune(ctx, cid, plain, target, args)
            per[cid]["with"] = fine_tune(ctx, cid, with_policy, target, args)
            a, b = per[cid]["without"], per[cid]["with"]
            log(
                f"{which} {cid:34s} target {target:.2f}: without {a['step0_psnr']:.2f} dB -> {a['steps']} steps; "
                f"with {b['step0_psnr']:.2f} dB -> {b['steps']} steps",
                flush=True,
            )
        out[which] = {"concepts": per, "summary": summarise(per, args.cap)}
    return out


def summarise(per: dict, cap: int) -> dict:
    def steps(e):  # not reached: the cap, a lower bound
        return e["steps"] if e["reached"] else cap

    return {
        "concepts": len(per),
        "with_faster": sum(steps(p["with"]) < steps(p["without"]) for p in per.values()),
        "with_slower": sum(steps(p["with"]) > steps(p["without"]) for p in per.values()),
        "median_steps_without": statistics.median(steps(p["without"]) for p in per.values()) if per else None,
        "median_steps_with": statistics.median(steps(p["with"]) for p in per.values()) if per else None,
        "reached_without": sum(p["without"]["reached"] for p in per.values()),
        "reached_with": sum(p["with"]["reached"] for p in per.values()),
    }


def without_fallback(stored: dict, summary: dict) -> dict:
    """A stored far policy whose fallback reached the target later: far texts keep their blend and
    are only warned about (``fallback`` ``blend``), the measurement added to ``measured_on``."""
    out = {k: v for k, v in stored.items() if k != "temperature"}
    out["fallback"] = "blend"
    out["measured_on"] = (
        f"{stored.get('measured_on', 'training concepts')}; the fallback ({stored['fallback']}) reached the "
        f"target later on {summary['with_slower']} of {summary['concepts']} training concepts (sooner on "
        f"{summary['with_faster']}), so far texts keep their blend (experiments/text_policy_ttq.py)"
    )
    return out


def faster(summary: dict) -> bool:
    """Whether a policy reached the target sooner on more concepts than later (what ``--write`` keeps)."""
    return summary["with_faster"] > summary["with_slower"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zoo", required=True)
    p.add_argument("--generator", required=True)
    p.add_argument("--policy", required=True, help="experiments.text_policy's --json (its rows and choice)")
    p.add_argument("--concepts", type=int, default=8, help="training concepts per policy")
    p.add_argument("--cap", type=int, default=400)
    p.add_argument("--eval-every", type=int, default=20)
    p.add_argument("--margin", type=float, default=1.0, help="dB below the concept's own zoo weights")
    p.add_argument("--json", type=Path)
    p.add_argument(
        "--write",
        action="store_true",
        help="drop the weight-blend and sibling policies and the far fallback (keeping its warning) from the "
        "generator folder where not faster on more concepts than slower",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    data = json.loads(Path(args.policy).read_text())
    space = (data.get("space") or {}).get("space", "factors")  # rows scored in factor space have none
    policy = {"space": space, "siblings": data["siblings"], "far": data["far"]}
    result = measure(BenchContext(args.zoo, args.generator), policy, data["per_concept"], args)
    for which, part in result.items():
        print(which, part["summary"])
    if args.write:
        gen = WeightGenerator.from_pretrained(args.generator)
        slower = [w for w in ("weight_blend", "siblings", "far") if w in result and not faster(result[w]["summary"])]
        for which in slower:
            t = result[which]["summary"]
            print(f"{which} not faster to the target ({t['with_faster']} faster, {t['with_slower']} slower): dropped")
            if which == "far":  # the threshold stays, for the warning; the fallback goes
                gen.far_policy = without_fallback(gen.far_policy.to_dict(), t)
            else:
                setattr(gen, which, None)
        if slower:
            write_policies(gen, args.generator)
    if args.json:
        command = " ".join(["python -m experiments.text_policy_ttq", *(argv if argv is not None else sys.argv[1:])])
        atomic_write_json(args.json, {"command": command, "cap": args.cap, "margin_db": args.margin, **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
