"""Adapters: how weightinit sees an architecture (see :mod:`weightinit.adapters.base`).

Built-ins, registered from ``weightinit.plugins.BUILTIN_PLUGINS`` through the same hooks as any
plugin: ``pix2pix`` (U-Net / ResNet generators of the reference code), ``cyclegan`` (a pair of them,
the concept and its reverse) and ``generic`` (any ``nn.Module``, the fallback; essential, so it cannot be disabled).
"""

from __future__ import annotations

from weightinit.adapters.base import Adapter, ArchSpec, strip_wrapper_prefixes, unwrap_model

__all__ = ["Adapter", "ArchSpec", "strip_wrapper_prefixes", "unwrap_model"]
