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
]


def __getattr__(name: str):
    # Heavy parts load on first use so `import weightinit` and `weightinit --help` stay fast.
    if name == "apply_blocks":
        from weightinit.apply import apply_blocks

        return apply_blocks
    if name == "initialize":
        from weightinit.initialize import initialize

        return initialize
    raise AttributeError(f"module 'weightinit' has no attribute {name!r}")
