"""The generic adapter: the fallback that understands any ``nn.Module``.

Every floating-point parameter is generated, in ``named_parameters()`` order, under its native
name with wrapper segments removed (``module.`` of DDP / DataParallel, ``_orig_mod.`` of
``torch.compile``, also when a wrapped submodule sits inside the model). It knows nothing about
the architecture, so its canonical names are only stable across models built by the same code;
it builds nothing. Its ``adapter_for_model`` runs last (``trylast``) and always answers, so any
specific adapter wins.
"""

from __future__ import annotations

from torch import nn

from weightinit.adapters.base import Adapter
from weightinit.hookspecs import hookimpl

_WRAPPER_CLASSES = ("DistributedDataParallel", "DataParallel")


def _wrapper_attribute(module: nn.Module) -> str | None:
    """``"module"`` / ``"_orig_mod"`` if ``module`` is a wrapper whose inner model lives there."""
    if type(module).__name__ in _WRAPPER_CLASSES and isinstance(getattr(module, "module", None), nn.Module):
        return "module"
    if isinstance(getattr(module, "_orig_mod", None), nn.Module):
        return "_orig_mod"
    return None


def unwrapped_name(model: nn.Module, native: str) -> str:
    """``netG.module.model.0.weight`` -> ``netG.model.0.weight``: drop every wrapper segment."""
    kept: list[str] = []
    module = model
    for part in native.split("."):
        inner = module is not None and _wrapper_attribute(module)
        if inner == part:
            module = getattr(module, part)
            continue
        kept.append(part)
        child = getattr(module, part, None) if module is not None else None
        module = child if isinstance(child, nn.Module) else None
    return ".".join(kept)


class GenericAdapter(Adapter):
    """Any ``nn.Module``: every floating-point parameter, in ``named_parameters()`` order."""

    name = "generic"
    description = "any nn.Module: every floating-point parameter in named_parameters() order"

    def matches(self, model: nn.Module) -> bool:
        return isinstance(model, nn.Module)

    def canonical_names(self, model: nn.Module) -> list[tuple[str, str]]:
        return [
            (native, unwrapped_name(model, native))
            for native, param in model.named_parameters()
            if param.is_floating_point()
        ]


@hookimpl
def register_adapters(register):
    register(GenericAdapter)


@hookimpl(trylast=True)
def adapter_for_model(model):
    return GenericAdapter()
