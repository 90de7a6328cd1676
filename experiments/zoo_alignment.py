"""How aligned a zoo's concept weights are: cosine of their weight deltas, within and across families.

    python -m experiments.zoo_alignment zoo [--pairs a:b,c:d] [--json OUT]

A generator can only learn weights that vary smoothly with the concept. Related concepts (the
same edit at two strengths) should have deltas that point the same way; unrelated ones need
not. Deltas are each concept's full weight difference to the base (``ZooWeights.delta``: ``B @ A``
per LoRA target, or the stored delta), flattened over the generated parameters.
"""

from __future__ import annotations

import argparse
import itertools
import statistics

import torch

from weightinit.fileio import atomic_write_json
from weightinit.zoo.weights import ZooWeights


def flat_delta(zoo, concept_id: str) -> torch.Tensor:
    return torch.cat([d.flatten() for d in zoo.delta(zoo.concept(concept_id)).values()])


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()).clamp(min=1e-12))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoo")
    parser.add_argument("--pairs", help="concept pairs to print, a:b,c:d")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    zoo = ZooWeights(args.zoo)
    ids = zoo.ids()
    deltas = {cid: flat_delta(zoo, cid) for cid in ids}
    family = {cid: zoo.record(cid).family for cid in ids}
    within, across = [], []
    for a, b in itertools.combinations(ids, 2):
        (within if family[a] == family[b] else across).append(cosine(deltas[a], deltas[b]))
    result = {
        "concepts": len(ids),
        "median_cosine_within_family": statistics.median(within) if within else None,
        "median_cosine_across_families": statistics.median(across) if across else None,
        "pairs": {},
    }
    for pair in (args.pairs or "").split(","):
        if ":" in pair:
            a, b = pair.split(":")
            result["pairs"][pair] = cosine(deltas[a], deltas[b])
    print(
        f"{len(ids)} concepts; median delta cosine within a family {result['median_cosine_within_family']}, "
        f"across families {result['median_cosine_across_families']}"
    )
    for pair, value in result["pairs"].items():
        print(f"  {pair}: {value:.3f}")
    if args.json:
        atomic_write_json(args.json, result)


if __name__ == "__main__":
    main()
