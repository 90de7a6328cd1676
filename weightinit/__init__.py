"""weightinit: a learned starting point for image-to-image GAN generators.

    from weightinit import initialize
    initialize(netG, "sketch to photo")
"""

from __future__ import annotations

from weightinit._version import __version__
from weightinit.hookspecs import hookimpl
from weightinit.layout import BlockLayout, Slot
from weightinit.codec import BlockCodec, SlotNormalizer
from weightinit.errors import WeightinitError, LayoutMismatch
from weightinit.apply import apply_blocks
from weightinit.initialization import InitReport, initialize

__all__ = [
    "__version__",
    "hookimpl",
    "BlockLayout",
    "Slot",
    "BlockCodec",
    "SlotNormalizer",
    "WeightinitError",
    "LayoutMismatch",
    "apply_blocks",
    "initialize",
    "InitReport",
]
