"""weightinit: a learned starting point for image-to-image GAN generators.

from weightinit import initialize
initialize(netG, "sketch to photo")
"""

from __future__ import annotations

import importlib

from weightinit._version import __version__
from weightinit.hookspecs import hookimpl

#: What ``from weightinit import X`` gives, imported on first use: ``import weightinit`` (and so
#: ``weightinit --help``) does not pay for torch, diffusers or transformers.
_EXPORTS = {
    "CycleGANPair": "weightinit.adapters.cyclegan",
    "apply_blocks": "weightinit.apply",
    "BlockCodec": "weightinit.codec",
    "SlotNormalizer": "weightinit.codec",
    "FarConceptWarning": "weightinit.errors",
    "LayoutMismatch": "weightinit.errors",
    "WeightinitError": "weightinit.errors",
    "InitReport": "weightinit.initialization",
    "initialize": "weightinit.initialization",
    "BlockLayout": "weightinit.layout",
    "Slot": "weightinit.layout",
    "WeightGenerator": "weightinit.generator.model",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'weightinit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = ["__version__", "hookimpl", *_EXPORTS]
