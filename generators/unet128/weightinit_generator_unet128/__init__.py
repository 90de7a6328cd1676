"""weightinit's unet128 generator: ``pix2pix:unet_128,ngf=16,norm=batch``, found through ``register_generators``."""

from __future__ import annotations

from pathlib import Path

from weightinit.hookspecs import hookimpl

FOLDER = Path(__file__).parent / "generator"


@hookimpl
def register_generators(register):
    register("unet128", FOLDER)
