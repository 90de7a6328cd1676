"""Which U-Net level to repeat when ``unet_128`` carries to ``unet_256``: step-0 quality at 256 px.

An extra level cannot keep the function, so the transfer that starts best is measured. On
training concepts of the unet128 zoo (every (N / count)-th, chosen by nobody), at 256 px, the
test PSNR at step 0 of the pix2pix default ``unet_256 ngf 64 batch`` when:

* ``outer``: the first full-width level (level 4) is repeated (weightinit's default);
* ``inner``: the deepest full-width level (the one above the innermost) is repeated;
* ``base``: the generator's base alone, carried the default way (no concept delta);
* ``reference``: the reference init, what training from scratch starts from.

    python -m experiments.depth_transfer --json docs/measurements/depth_transfer.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from pathlib import Path
from unittest import mock

import torch

from experiments.bench.runner import spread
from experiments.default_size import _photos
from weightinit import initialize, plugins
from weightinit.adapters import pix2pix_transfer
from weightinit.concepts.catalog import default_catalog
from weightinit.errors import FarConceptWarning
from weightinit.fileio import atomic_write_json
from weightinit.initialization import load_generator, write_base
from weightinit.pairs import ProceduralPairs
from weightinit.recipe import evaluate
from weightinit.zoo.weights import ZooWeights

ARCH = "pix2pix:unet_256,ngf=64,norm=batch"
_default_map = pix2pix_transfer._unet_level_map


def _inner_map(source_depth: int, target_depth: int):
    """The default map with the deepest full-width level repeated instead of the first."""
    mapping, note = _default_map(source_depth, target_depth)
    middle = [k for k in sorted(mapping) if 4 <= k < target_depth - 1]
    sources = list(range(4, source_depth - 1))
    for k, src in zip(middle, sources + [sources[-1]] * (len(middle) - len(sources))):
        mapping[k] = src
    return mapping, note and note.replace("level 4 repeated", f"level {sources[-1]} repeated")


def step0(zoo: ZooWeights, concept_id: str, start: str, size: int, pairs: int) -> float:
    torch.manual_seed(0)
    model = plugins.build_model(ARCH)
    text = zoo.record(concept_id).text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FarConceptWarning)
        if start == "outer":
            initialize(model, text, generator="unet128")
        elif start == "inner":
            with mock.patch.object(pix2pix_transfer, "_unet_level_map", _inner_map):
                initialize(model, text, generator="unet128")
        elif start == "base":
            write_base(model, load_generator("unet128"), adapter=plugins.adapter_for_model(model))
    source = ProceduralPairs(default_catalog().get(concept_id), _photos(size), size=size)
    return evaluate(model, *source.sample(pairs, split="test", seed=zoo.config.data_seed(concept_id)))["psnr"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zoo", default="zoo-unet128")
    p.add_argument("--concepts", type=int, default=6)
    p.add_argument("--pairs", type=int, default=8)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    zoo = ZooWeights(args.zoo)
    concepts = spread(zoo.ids("train"), args.concepts)
    starts = ("outer", "inner", "base", "reference")
    rows = []
    for concept_id in concepts:
        row = {"concept": concept_id, **{s: step0(zoo, concept_id, s, args.size, args.pairs) for s in starts}}
        rows.append(row)
        print(" ".join(f"{k} {v:.2f}" if isinstance(v, float) else v for k, v in row.items()), flush=True)
    medians = {s: statistics.median(r[s] for r in rows) for s in starts}
    out = {
        "command": "python -m experiments.depth_transfer",
        "arch": ARCH,
        "size": args.size,
        "concepts": concepts,
        "median_step0_psnr": medians,
        "rows": rows,
    }
    if args.json:
        atomic_write_json(args.json, out)
    print(medians)
    return 0


if __name__ == "__main__":
    sys.exit(main())
