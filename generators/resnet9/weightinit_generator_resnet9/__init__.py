"""weightinit's resnet9 generator: ``pix2pix:resnet_9blocks,ngf=8,norm=instance``, found through
``register_generators``."""

from __future__ import annotations

from pathlib import Path

from weightinit.hookspecs import hookimpl

FOLDER = Path(__file__).parent / "generator"


@hookimpl
def register_generators(register):
    register("resnet9", FOLDER)
