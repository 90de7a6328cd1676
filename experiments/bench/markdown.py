"""What every section of docs/BENCHMARKS.md writes numbers with."""

from __future__ import annotations

import math


def fmt(x, digits: int = 2, suffix: str = "") -> str:
    """A number as the tables show it: ``–`` where there is none, ``∞`` for an infinite one."""
    if x is None:
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return f"{x:.{digits}f}{suffix}"
