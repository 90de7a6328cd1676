"""weightinit: a learned starting point for image-to-image GAN generators.

from weightinit import initialize
initialize(netG, "sketch to photo")
"""

from __future__ import annotations

from weightinit._version import __version__
from weightinit.adapters.cyclegan import CycleGANPair
from weightinit.apply import apply_blocks
from weightinit.codec import BlockCodec, SlotNormalizer
from weightinit.errors import FarConceptWarning, LayoutMismatch, WeightinitError
from weightinit.hookspecs import hookimpl
from weightinit.initialization import InitReport, initialize
from weightinit.layout import BlockLayout, Slot


def __getattr__(name: str):
    # the generator pulls in diffusers and transformers: imported when asked for, not on `import weightinit`
    if name == "WeightGenerator":
        from weightinit.generator.model import WeightGenerator

        return WeightGenerator
    raise AttributeError(f"module 'weightinit' has no attribute {name!r}")


__all__ = [
    "__version__",
    "hookimpl",
    "BlockLayout",
    "Slot",
    "BlockCodec",
    "SlotNormalizer",
    "WeightinitError",
    "LayoutMismatch",
    "FarConceptWarning",
    "CycleGANPair",
    "WeightGenerator",
    "apply_blocks",
    "initialize",
    "InitReport",
]
