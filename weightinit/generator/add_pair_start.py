"""Add a pair start (:mod:`weightinit.pair_start`) to a generator folder that has none, or learn it
again: only ``pair_start.safetensors`` and the model card change; the denoiser, the prior and
every other file stay as they are.

    python -m weightinit.generator.add_pair_start --generator DIR --zoo ZOO [--checked N --fit-steps N --fit-lr X
        --text-origin written]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from weightinit.fileio import atomic_write_text
from weightinit.generator.card import model_card
from weightinit.generator.folder import CARD_NAME
from weightinit.generator.model import WeightGenerator
from weightinit.pair_start import DEFAULT_SETTINGS, PAIR_START_NAME, TEXT_ORIGINS, PairProposer, fit_pair_start
from weightinit.zoo.weights import ZooWeights


def add_pair_start(folder: str | os.PathLike, zoo_dir: str | os.PathLike, *, photos=None, **settings) -> PairProposer:
    """Learn the pair start of the generator in ``folder`` from ``zoo_dir`` (the zoo it was trained
    on) and write it there (``pair_start.safetensors``, atomically, and the model card); the
    denoiser and every other file stay as they are."""
    folder = Path(folder)
    gen = WeightGenerator.from_pretrained(folder)
    gen.pair_start = fit_pair_start(gen, ZooWeights(zoo_dir), photos=photos, **settings)
    gen.pair_start.save(folder / PAIR_START_NAME, gen.layout.fingerprint)
    atomic_write_text(folder / CARD_NAME, model_card(gen))
    return gen.pair_start


def main(argv=None) -> int:
    """``python -m weightinit.generator.add_pair_start --generator DIR --zoo DIR``."""
    p = argparse.ArgumentParser(description=add_pair_start.__doc__.split(";")[0])
    p.add_argument("--generator", required=True, help="the generator folder")
    p.add_argument("--zoo", required=True, help="the zoo it was trained on")
    p.add_argument("--checked", type=int, default=DEFAULT_SETTINGS["checked"])
    p.add_argument("--fit-steps", type=int, default=DEFAULT_SETTINGS["fit_steps"])
    p.add_argument("--fit-lr", type=float, default=DEFAULT_SETTINGS["fit_lr"])
    p.add_argument(
        "--text-origin",
        choices=TEXT_ORIGINS,
        default=DEFAULT_SETTINGS["text_origin"],
        help="the text's point: the span's, or the start text alone writes (a generator that blends weights)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    proposer = add_pair_start(
        args.generator,
        args.zoo,
        checked=args.checked,
        fit_steps=args.fit_steps,
        fit_lr=args.fit_lr,
        text_origin=args.text_origin,
    )
    print(f"wrote {args.generator}/{PAIR_START_NAME}: learned on {len(proposer.names)} training concepts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
