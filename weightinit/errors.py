"""The errors weightinit raises on purpose.

Every error a user can cause derives from :class:`WeightinitError`; the CLI turns these into
one clear line and exit code 1. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class WeightinitError(Exception):
    """A known, user-facing failure (bad input, mismatch, missing file)."""


class LayoutMismatch(WeightinitError):
    """Blocks or weights were made for a different :class:`~weightinit.layout.BlockLayout`."""

    def __init__(self, message: str, *, expected: str | None = None, actual: str | None = None):
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class AdapterError(WeightinitError):
    """No adapter fits a model, an arch string is unknown, or an adapter misbehaves."""


class PluginError(WeightinitError):
    """A plugin registered something invalid."""


class CheckpointError(WeightinitError):
    """A checkpoint or blocks file is missing, unreadable, unsafe or inconsistent."""


class InvalidWeights(WeightinitError):
    """Weights contain NaN/Inf or have the wrong shape; nothing was written."""


class FarConceptWarning(UserWarning):
    """A concept is far from every concept the generator was trained on: the start falls back to
    the one measured best for far concepts, and the report says so."""
