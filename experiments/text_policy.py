"""The text-only start's policies, chosen on training concepts: strength siblings and far texts.

    python -m experiments.text_policy --zoo zoo --generator GEN --json docs/measurements/text_policy.json [--write]

Held-out concepts are never read. Every training concept of the generator's prior is scored at
step 0 (test PSNR) under two leave-outs, each the situation of one kind of unseen text:

* ``self``: the concept and its reverse twin are out of the prior, its other strengths stay: a
  strength no training concept has. Scored: the zoo mean, the nearest allowed concept by text
  (its own delta), the prior's blend, and the blend re-blended among the heaviest concept's
  strength siblings (:mod:`weightinit.generator.siblings`) at each of ``SIBLING_TEMPERATURES``.
  The sibling temperature is the one that beats both the mean and the nearest concept on the most
  concepts where the policy applies (ties: the higher median PSNR), or none where no temperature
  beats the plain blend on that count. Keeping it in a generator also takes reaching the target
  sooner on training concepts (``experiments.text_policy_ttq --write`` drops it otherwise).
* ``group``: the concept's whole group (every strength, both directions) is out: a text no
  training edit answers. Scored: the blend at the generator's temperature and at broader ones,
  and the zoo mean; the far policy (threshold and fallback) is chosen from these rows by
  :func:`far_policy` in two stages, as ``experiments.far_concepts`` chose it, with the median
  for its mean (the mean PSNR is carried by a few large gains of the sharp blend while most far
  concepts lose to the zoo mean): the threshold with the best median over all, then the fallback
  best by the median on the concepts below it. The alternative that beats the mean on the
  most concepts less the number it loses on is chosen and saved beside it: on the bundled
  generator it falls back below similarity 0.93, which warns on "photo to sepia" (its nearest
  training concept, sepia-medium, at 0.90) and sends most composite texts to the fallback, so it
  is an ablation (``--write-alternative``), not what ships.

A composite text is blended from its parts as ``weightinit.generator.resolved`` does, the parts'
similarities taken with the same concepts left out. ``--write`` stores both policies in the
generator folder (``siblings`` and ``far_policy`` of ``generator_config.json``; only that file and
the model card change). About 10 s per concept at 64 px on one thread beside another job;
``--every N`` scores every N-th training concept (a larger generator).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from experiments.bench.methods import BenchContext
from experiments.far_concepts import BROADER_TEMPERATURES
from weightinit.concepts.concept import concept_group
from weightinit.fileio import atomic_write_json
from weightinit.generator.composition import split_parts
from weightinit.generator.folder import write_policies
from weightinit.generator.model import WeightGenerator
from weightinit.generator.siblings import sibling_keys, sibling_weights
from weightinit.generator.weight_blend import DEFAULT_MIN_WEIGHT, blend_tensors
from weightinit.recipe import evaluate

#: How a shipped generator's config names this measurement: as a script of the source repository
#: (a pip user has no ``experiments`` package).
SOURCE_COMMAND = "weightinit's source repository, experiments/text_policy.py"
#: Temperatures of the sibling re-blend tried; 100 is as good as uniform among a group's strengths.
SIBLING_TEMPERATURES = (0.01, 0.03, 0.1, 0.3, 100.0)


def twin(concept_id: str) -> str:
    return concept_id.removesuffix("-reverse") if concept_id.endswith("-reverse") else f"{concept_id}-reverse"


def blend_of(gen, text: str, exclude: torch.Tensor, temperature: float | None = None):
    """``(weights [R, C], similarities [R, C], best similarity)`` of ``text`` with the concepts
    where ``exclude [1, C]`` is True left out: one row for the whole text, or one a part for a
    composite text (as ``resolve``; its start is the mean of the rows)."""
    prior, policy = gen.prior, gen.composition
    split = split_parts(text) if policy is not None else [text]
    parts = split if len(split) > 1 else []
    pooled = gen.encode_text([text, *parts]).pooled
    cosines = prior.similarity(pooled)[0]
    sims = prior.best_similarity(cosines).masked_fill(exclude.expand(len(cosines), -1), -1.0)
    best = float(sims[0].max())
    if parts:
        part_best = sims[1:].max(1).values
        if policy.accepts(best, part_best.tolist()):
            best = max(best, float(part_best.min()))
            rows = prior.weights_from(cosines[1:], temperature, exclude.expand(len(parts), -1))
            return rows, sims[1:], best
    return prior.weights_from(cosines[:1], temperature, exclude), sims[:1], best


def measure(
    ctx: BenchContext, limit: int | None = None, every: int = 1, space: str = "factors", log=print
) -> list[dict]:
    """Every ``every``-th training concept's rows (module docstring). ``space``: where the blends are
    made, ``factors`` (the prior's blend of LoRA factors) or ``weights`` (the blend of the weight
    changes, :mod:`weightinit.generator.weight_blend`; each self row then also has the factor
    blend, ``prior_factors``, and each row the factor mean, ``mean_factors``, for the comparison)."""
    gen = ctx.generator
    prior = gen.prior
    ids = list(prior.concept_ids)
    groups = [concept_group(c) for c in ids]
    keys = sibling_keys(ids)
    center = gen.center if gen.center is not None else torch.zeros(gen.layout.num_blocks, gen.layout.block_size)
    uniform = torch.full((len(ids),), 1.0 / len(ids))
    weight_mean = blend_tensors(gen, uniform) if space == "weights" else None

    def score_factors(delta, test) -> float:
        blocks = gen.normalizer.denormalize(center + delta, torch.float32)
        return round(evaluate(ctx.merged_blocks(blocks), *test)["psnr"], 4)

    def score_tensors(tensors, test) -> float:
        return round(evaluate(ctx.merged(ctx.delta(tensors)), *test)["psnr"], 4)

    def score(weights, test) -> float:
        """The start of blend ``weights [R, C]`` (the mean of its rows, as ``resolve`` takes them)."""
        if space == "weights":
            return score_tensors(blend_tensors(gen, weights.mean(0)), test)
        return score_factors(prior.blend(weights.mean(0, keepdim=True)), test)

    rows = []
    for i, cid in list(enumerate(ids))[:limit:every]:
        text = ctx.zoo.record(cid).text
        test = ctx.zoo.test_pairs(cid)
        self_out = torch.tensor([[c in (cid, twin(cid)) for c in ids]])
        group_out = torch.tensor([[g == groups[i] for g in groups]])
        row = {"concept": cid, "mean": score_factors(torch.zeros_like(center), test)}
        if weight_mean is not None:
            row["mean_factors"], row["mean"] = row["mean"], score_tensors(weight_mean, test)
        weights, sims, best = blend_of(gen, text, self_out)
        whole_sims = prior.best_similarity(prior.similarity(gen.encode_text(text).pooled)[0])
        near = int(whole_sims[0].masked_fill(self_out[0], -2.0).argmax())
        row["self"] = {"similarity": round(best, 4), "nearest": score_factors(prior.delta(prior.coef[near]), test)}
        row["self"]["nearest_concept"] = ids[near]
        row["self"]["prior"] = score(weights, test)
        if space == "weights":
            row["self"]["prior_factors"] = score_factors(prior.blend(weights.mean(0, keepdim=True)), test)
        top = int(weights.mean(0).argmax())
        siblings = sum(k == keys[top] and not self_out[0, c] for c, k in enumerate(keys))
        row["self"]["siblings"] = siblings
        if siblings >= 2:
            for t in SIBLING_TEMPERATURES:
                re = sibling_weights(weights, sims, ids, t, self_out.expand(len(weights), -1))
                row["self"][f"siblings_t{t}"] = score(re, test)
        weights, _, best = blend_of(gen, text, group_out)
        row["similarity"] = round(best, 4)  # the far policy's rows: group out
        row["prior"] = score(weights, test)
        for t in BROADER_TEMPERATURES:
            row[f"prior_t{t}"] = score(blend_of(gen, text, group_out, t)[0], test)
        rows.append(row)
        s = row["self"]
        log(
            f"{cid:36s} self: sim {s['similarity']:.3f} near {s['nearest']:6.2f} prior {s['prior']:6.2f} "
            + " ".join(f"{k[9:]}:{v:.2f}" for k, v in s.items() if k.startswith("siblings_t"))
            + f" | group: sim {row['similarity']:.3f} prior {row['prior']:6.2f} mean {row['mean']:6.2f}",
            flush=True,
        )
    return rows


def wins(rows: list[dict], key: str) -> int:
    return sum(r["self"][key] > max(r["mean"], r["self"]["nearest"]) for r in rows)


def sibling_policy(rows: list[dict]) -> dict:
    """The sibling temperature chosen on the rows where it applies (module docstring)."""
    applies = [r for r in rows if r["self"]["siblings"] >= 2]
    if not applies:
        return {"temperature": None, "concepts": 0, "table": {}}
    scored = [k for k in (f"siblings_t{t}" for t in SIBLING_TEMPERATURES) if all(k in r["self"] for r in applies)]
    table = {
        key: {"wins": wins(applies, key), "median_psnr": round(statistics.median(r["self"][key] for r in applies), 4)}
        for key in ["prior", *scored]
    }
    best = max(table, key=lambda k: (table[k]["wins"], table[k]["median_psnr"]))
    chosen = None if best == "prior" else float(best.removeprefix("siblings_t"))
    return {"temperature": chosen, "concepts": len(applies), "table": table}


FAR_FALLBACKS = ("mean", *(f"prior_t{t}" for t in BROADER_TEMPERATURES))


#: What a far policy is chosen for: ``median``, the best median step-0 PSNR over the training
#: concepts (what ships); ``balance``, the start above the zoo mean on the most concepts less the
#: number below it (no harm against the mean; kept as the alternative measured beside it).
FAR_OBJECTIVES = ("median", "balance")


def _balance(values: list[float], rows: list[dict]) -> int:
    return sum((v > r["mean"]) - (v < r["mean"]) for v, r in zip(values, rows))


def far_policy(rows: list[dict], objective: str = "median") -> dict:
    """The threshold and fallback for ``objective`` over the training concepts (whole group out),
    those below the threshold getting the fallback and the others the blend.

    ``median``, in two stages as ``experiments.far_concepts`` chose: the threshold is where the
    median over all concepts is best when those below it get the zoo mean (ties: the better
    mean, then the lower threshold); the fallback is the start with the best median *on the
    concepts below it* (the mean first on a tie). ``balance``: threshold and fallback searched
    together for the most concepts above the mean less below (ties: the better median, then the
    lower threshold)."""
    rows = sorted(rows, key=lambda r: r["similarity"])
    sims = [r["similarity"] for r in rows]
    cuts = [-1.0] + [round((a + b) / 2, 4) for a, b in zip(sims, sims[1:]) if b > a] + [round(sims[-1] + 1e-3, 4)]

    def values(cut, fallback):
        return [r[fallback] if r["similarity"] < cut else r["prior"] for r in rows]

    if objective == "median":

        def score(cut):
            v = values(cut, "mean")
            return round(statistics.median(v), 6), round(statistics.fmean(v), 6), -cut

        cut = max(cuts, key=score)
        below = [r for r in rows if r["similarity"] < cut] or rows[:1]
        fallback = max(FAR_FALLBACKS, key=lambda f: (statistics.median(r[f] for r in below), f == "mean"))
    else:

        def score(pair):
            v = values(*pair)
            return _balance(v, rows), round(statistics.median(v), 6), -pair[0]

        cut, fallback = max(((c, f) for f in FAR_FALLBACKS for c in cuts), key=score)
    chosen = values(cut, fallback)
    below = [r for r in rows if r["similarity"] < cut]
    plain = [r["prior"] for r in rows]
    return {
        "objective": objective,
        "similarity": cut,
        "fallback": fallback,
        "above_mean_less_below": _balance(chosen, rows),
        "median_psnr": round(statistics.median(chosen), 4),
        "mean_psnr": round(statistics.fmean(chosen), 4),
        "concepts_below": len(below),
        "without_policy": {
            "above_mean_less_below": _balance(plain, rows),
            "median_psnr": round(statistics.median(plain), 4),
            "mean_psnr": round(statistics.fmean(plain), 4),
        },
        "median_psnr_below": {f: round(statistics.median(r[f] for r in below), 4) for f in ("prior", *FAR_FALLBACKS)}
        if below
        else {},
    }


def stored_far_policy(far: dict, rows: list[dict]) -> dict:
    """``far_policy``'s choice as ``generator_config.json`` stores it."""
    stored = {"similarity": far["similarity"], "fallback": "mean" if far["fallback"] == "mean" else "prior"}
    if far["fallback"] != "mean":
        stored["temperature"] = float(far["fallback"].removeprefix("prior_t"))
    stored.update(
        measured_on=f"{len(rows)} training concepts, each with its whole group left out, by the best "
        + ("median step-0 PSNR" if far["objective"] == "median" else "count above the zoo mean less below it"),
        command=SOURCE_COMMAND,
    )
    return stored


def weight_blend_choice(rows: list[dict]) -> dict | None:
    """Blend in weight space or in factor space, from rows scored in weight space (``prior`` and
    ``prior_factors`` of each self row): the one that beats both the zoo mean (of the weight
    changes, the stronger one) and the nearest concept on more training concepts, ties by the
    median. None for rows scored in factor space."""
    if not rows or "prior_factors" not in rows[0]["self"]:
        return None
    table = {
        space: {"wins": wins(rows, key), "median_psnr": round(statistics.median(r["self"][key] for r in rows), 4)}
        for space, key in (("weights", "prior"), ("factors", "prior_factors"))
    }
    chosen = max(table, key=lambda k: (table[k]["wins"], table[k]["median_psnr"], k == "factors"))
    return {"space": chosen, "concepts": len(rows), "table": table}


def choose(rows: list[dict]) -> dict:
    space = weight_blend_choice(rows)
    stored_blend = None
    if space is not None and space["space"] == "weights":
        t = space["table"]
        stored_blend = {
            "min_weight": DEFAULT_MIN_WEIGHT,
            "measured_on": f"{space['concepts']} training concepts, each with itself and its reverse left out: "
            f"beats the zoo mean and the nearest concept on {t['weights']['wins']} (median "
            f"{t['weights']['median_psnr']:.2f} dB), the factor blend on {t['factors']['wins']} "
            f"({t['factors']['median_psnr']:.2f} dB)",
            "command": SOURCE_COMMAND,
        }
    siblings = sibling_policy(rows)
    far = {objective: far_policy(rows, objective) for objective in FAR_OBJECTIVES}
    stored_siblings = None
    if siblings["temperature"] is not None:
        stored_siblings = {
            "temperature": siblings["temperature"],
            "measured_on": f"{siblings['concepts']} training concepts with strength siblings, each with itself and "
            "its reverse left out",
            "command": SOURCE_COMMAND,
        }
    policies = {"siblings": stored_siblings, "weight_blend": stored_blend}
    return {
        "space": space,
        "siblings": siblings,
        "far": far["median"],
        "far_alternative": far["balance"],
        "policy": {**policies, "far_policy": stored_far_policy(far["median"], rows)},
        "alternative": {**policies, "far_policy": stored_far_policy(far["balance"], rows)},
    }


def rows_from(path: str) -> tuple[list[dict], str]:
    """An earlier ``--json``'s rows and the command that scored them."""
    earlier = json.loads(Path(path).read_text())
    return earlier["per_concept"], earlier["command"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", required=True)
    parser.add_argument("--generator", required=True, help="generator folder")
    parser.add_argument("--json")
    parser.add_argument("--limit", type=int, help="only the first N training concepts (a quick look)")
    parser.add_argument("--every", type=int, default=1, help="every N-th training concept (in the prior's order)")
    parser.add_argument("--write", action="store_true", help="store the chosen policies in the generator folder")
    parser.add_argument(
        "--write-alternative", action="store_true", help="store the alternative far policy instead (an ablation)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows-from", help="choose again from the per-concept rows of an earlier --json (no scoring)")
    parser.add_argument(
        "--space", choices=("factors", "weights"), default="factors", help="blend LoRA factors or weight changes"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = " ".join(["python -m experiments.text_policy", *(argv if argv is not None else sys.argv[1:])])
    if args.rows_from:
        rows, command = rows_from(args.rows_from)
    else:
        rows = measure(BenchContext(args.zoo, args.generator), limit=args.limit, every=args.every, space=args.space)
    result = choose(rows)
    if result["space"] is not None:
        for k, v in result["space"]["table"].items():
            print(f"blend in {k} space: beats mean and nearest on {v['wins']}, median {v['median_psnr']:.2f} dB")
    s = result["siblings"]
    print(f"siblings ({s['concepts']} concepts): chosen temperature {s['temperature']}")
    for k, v in s["table"].items():
        print(f"  {k:18s} beats mean and nearest on {v['wins']}, median {v['median_psnr']:.2f} dB")
    for f in (result["far"], result["far_alternative"]):
        print(
            f"far by the {f['objective']}: below similarity {f['similarity']} fall back to {f['fallback']} "
            f"({f['concepts_below']} below; median {f['median_psnr']:.2f} dB, above the mean less below "
            f"{f['above_mean_less_below']})"
        )
    if args.json:
        atomic_write_json(args.json, {"command": command, **result, "per_concept": rows})
    if args.write or args.write_alternative:
        policy = result["alternative" if args.write_alternative else "policy"]
        gen = WeightGenerator.from_pretrained(args.generator)
        gen.far_policy = policy["far_policy"]
        gen.siblings = policy["siblings"]
        gen.weight_blend = policy["weight_blend"]
        write_policies(gen, args.generator)  # the config and the card; the tensors stay
        print(f"wrote weight_blend, siblings and far_policy to {args.generator}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
