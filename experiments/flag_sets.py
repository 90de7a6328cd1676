"""Which reference flag sets ``initialize`` serves, and whether the start helps, in train mode and eval().

Every ``--netG {unet_128, unet_256, resnet_6blocks, resnet_9blocks} x --norm {batch, instance} x
--ngf {8, 16, 32, 64}`` network is built by :mod:`experiments.reference_networks` (written apart
from weightinit, as a user's copy of the reference code is) and initialised with the installed
generators, no generator named. On held-out concepts of the catalog (every (N / count)-th, a
sample chosen by nobody), at the network's training size (a U-Net's own side; 256 px, the
reference crop, for a ResNet), it records the mean L1 to the edit's targets on test pairs:

* of the reference init (what training from scratch starts from), in train mode;
* of the start in train mode (batch norm on each image's own statistics, batch size 1);
* of the start in ``eval()`` (the running statistics ``initialize`` wrote).

"Helps" means the start's train-mode L1 is below 0.8x the reference init's. The installed U-Net
generators are also measured on their own networks (``--own-only``), for the eval() check.

    python -m experiments.flag_sets --json docs/measurements/flag_sets.json
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

from experiments.bench.runner import spread
from experiments.reference_networks import define_G
from weightinit import initialize, plugins
from weightinit.cli.zoo import load_photos
from weightinit.concepts.catalog import default_catalog
from weightinit.errors import FarConceptWarning, LayoutMismatch
from weightinit.fileio import atomic_write_json
from weightinit.generators import installed_generators, pick_for_arch
from weightinit.pairs import ProceduralPairs

NETGS = ("unet_128", "unet_256", "resnet_6blocks", "resnet_9blocks")
NORMS = ("batch", "instance")
NGFS = (8, 16, 32, 64)
HELPS = 0.8


@functools.cache
def test_pairs(concept_id: str, size: int, count: int):
    source = ProceduralPairs(default_catalog().get(concept_id), load_photos(None, size), size=size)
    return source.sample(count, split="test", seed=0)


@torch.no_grad()
def l1(model, inputs, targets, *, train: bool) -> float:
    """Mean L1 over the pairs, one image at a time (batch size 1, as the reference trains)."""
    model.train(train)
    return statistics.fmean(float((model(x[None]) - y[None]).abs().mean()) for x, y in zip(inputs, targets))


def report_arch(netg: str, norm: str, ngf: int) -> str:
    return f"pix2pix:{netg},ngf={ngf},norm={norm}"


def measure(netg: str, norm: str, ngf: int, concepts: list[str], pairs: int) -> dict:
    size = 256 if netg.startswith("resnet") or netg == "unet_256" else 128
    row = {"netG": netg, "norm": norm, "ngf": ngf, "size": size, "flags": f"--netG {netg} --ngf {ngf} --norm {norm}"}
    per_concept = []
    for concept_id in concepts:
        inputs, targets = test_pairs(concept_id, size, pairs)
        torch.manual_seed(0)
        net = define_G(netg, ngf, norm)
        reference = l1(net, inputs, targets, train=True)
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FarConceptWarning)
                report = initialize(net, default_catalog().get(concept_id).text)
        except LayoutMismatch as exc:
            return {**row, "served": False, "why": str(exc).split(". Build")[0]}
        seconds = time.perf_counter() - start
        train, evaluated = l1(net, inputs, targets, train=True), l1(net, inputs, targets, train=False)
        per_concept.append(
            {
                "concept": concept_id,
                "reference_l1": reference,
                "train_l1": train,
                "eval_l1": evaluated,
                "seconds": seconds,
                "statistics_seconds": report.statistics_seconds,
            }
        )
        row.update(generator=pick_for_arch(report_arch(netg, norm, ngf))[0].name, transfer=report.transfer)
    med = {k: statistics.median(c[k] for c in per_concept) for k in per_concept[0] if k != "concept"}
    return {
        **row,
        "served": True,
        **med,
        "helps": med["train_l1"] < HELPS * med["reference_l1"],
        "per_concept": per_concept,
    }


def own_networks(concepts: list[str], pairs: int) -> list[dict]:
    """Each installed U-Net generator on its own network: eval() against train mode."""
    rows = []
    for info in installed_generators():
        if "unet" not in info.arch:
            continue
        size = plugins.image_size_of(info.arch)
        values = []
        for concept_id in concepts:
            inputs, targets = test_pairs(concept_id, size, pairs)
            net = plugins.build_model(info.arch)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FarConceptWarning)
                initialize(net, default_catalog().get(concept_id).text, generator=info.reference)
            values.append((l1(net, inputs, targets, train=True), l1(net, inputs, targets, train=False)))
        train, evaluated = (statistics.median(v[i] for v in values) for i in (0, 1))
        rows.append(
            {
                "generator": info.name,
                "arch": info.arch,
                "size": size,
                "train_l1": train,
                "eval_l1": evaluated,
                "eval_over_train": evaluated / train,
            }
        )
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--concepts", type=int, default=3)
    p.add_argument("--pairs", type=int, default=8)
    p.add_argument("--own-only", action="store_true")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    concepts = spread([c.id for c in default_catalog().by_split("heldout")], args.concepts)
    out = {
        "command": "python -m experiments.flag_sets" + (f" --concepts {args.concepts}" if args.concepts != 3 else ""),
        "concepts": concepts,
        "pairs": args.pairs,
        "own_networks": own_networks(concepts, args.pairs),
    }
    for row in out["own_networks"]:
        print(f"{row['generator']}: eval {row['eval_l1']:.4f} train {row['train_l1']:.4f}", flush=True)
    if not args.own_only:
        rows = []
        for netg in NETGS:
            for norm in NORMS:
                for ngf in NGFS:
                    rows.append(measure(netg, norm, ngf, concepts, args.pairs))
                    r = rows[-1]
                    shown = (
                        (
                            f"ref {r['reference_l1']:.3f} train {r['train_l1']:.3f} eval {r['eval_l1']:.3f} "
                            f"{r['transfer']}"
                        )
                        if r["served"]
                        else r["why"]
                    )
                    print(f"{r['flags']}: {shown}", flush=True)
        out["flag_sets"] = rows
        out["served"] = sum(r["served"] for r in rows)
        out["helped"] = sum(r.get("helps", False) for r in rows)
    if args.json:
        atomic_write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
