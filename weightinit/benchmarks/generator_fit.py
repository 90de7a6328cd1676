"""Does a generator fit its own training concepts? Per concept: relative L2 of the generated
blocks to the true ones beside the zoo mean's, and the cosine between the generated and the
true deviation from the mean (0 means the text is ignored).

    python -m weightinit.benchmarks.generator_fit --generator runs/generator --zoo zoo [--split train] [--limit 8]

Blocks are compared in the zoo's stored (de-normalised) space.
"""

from __future__ import annotations

import argparse

import torch


def main() -> None:
    from weightinit.codec import BlockCodec
    from weightinit.generator.model import WeightGenerator
    from weightinit.zoo.weights import ZooWeights

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", required=True)
    parser.add_argument("--zoo", required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    gen = WeightGenerator.from_pretrained(args.generator)
    zoo = ZooWeights(args.zoo)
    codec = BlockCodec(zoo.layout)

    def blocks(cid: str) -> torch.Tensor:
        return codec.encode({k: v.to(zoo.layout[k].torch_dtype) for k, v in zoo.concept(cid).items()}, dtype=torch.float32)

    mean = torch.stack([blocks(c) for c in zoo.ids("train")]).mean(0)
    for cid in zoo.ids(args.split)[: args.limit]:
        true = blocks(cid)
        out = gen.sample_blocks(zoo.record(cid).text, seed=args.seed)
        rel = float((out - true).norm() / true.norm())
        rel_mean = float((mean - true).norm() / true.norm())
        dev, true_dev = out - mean, true - mean
        cos = float((dev * true_dev).sum() / (dev.norm() * true_dev.norm()).clamp(min=1e-12))
        print(f"{cid:32s} generated rel L2 {rel:.3f}   zoo mean {rel_mean:.3f}   cosine of deviations {cos:+.3f}", flush=True)


if __name__ == "__main__":
    main()
