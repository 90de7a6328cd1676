"""The adapter contract: how weightinit sees one family of architectures.

An adapter recognises a model by structure and class names (never by ``isinstance`` of
weightinit's own classes, so a user's copy of the network code is recognised too), says which
parameters are generated and in what canonical order, maps native state-dict keys to
canonical names and back, names the modules LoRA may target, and builds architectures from an
arch string ``ADAPTER:NAME[,key=value...]``.

Subclass :class:`Adapter`, set ``name``, implement the abstract methods, and register the class
through the ``register_adapters`` hook (see :mod:`weightinit.hookspecs`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from weightinit.errors import AdapterError, LayoutMismatch
from weightinit.layout import DEFAULT_BLOCK_SIZE, BlockLayout, Slot, dtype_name

# Prefixes that wrappers add to state-dict keys: DistributedDataParallel / DataParallel
# (``module.``) and ``torch.compile`` (``_orig_mod.``).
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def strip_wrapper_prefixes(key: str) -> str:
    """``module._orig_mod.model.0.weight`` -> ``model.0.weight``."""
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix) :], True
    return key


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside DDP / DataParallel / ``torch.compile`` wrappers."""
    while True:
        inner = getattr(model, "module", None)
        if isinstance(inner, nn.Module) and type(model).__name__ in ("DistributedDataParallel", "DataParallel"):
            model = inner
            continue
        inner = getattr(model, "_orig_mod", None)
        if isinstance(inner, nn.Module):
            model = inner
            continue
        return model


@dataclass(frozen=True)
class ArchSpec:
    """A parsed arch string: ``pix2pix:unet_64,ngf=16,norm=instance``."""

    adapter: str
    name: str
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, arch: str) -> ArchSpec:
        if not isinstance(arch, str) or ":" not in arch:
            raise AdapterError(f"arch {arch!r} is not of the form ADAPTER:NAME[,key=value...] (e.g. pix2pix:unet_256)")
        adapter, rest = arch.split(":", 1)
        parts = [p.strip() for p in rest.split(",")]
        name, options = parts[0], {}
        for part in parts[1:]:
            if "=" not in part:
                raise AdapterError(f"arch option {part!r} in {arch!r} is not key=value")
            key, value = part.split("=", 1)
            key = key.strip()
            if key in options:  # a silent "last one wins" hides a typo in a layout-defining option
                raise AdapterError(
                    f"arch option {key!r} is given twice in {arch!r} ({options[key]} and {value.strip()})"
                )
            options[key] = value.strip()
        if not adapter.strip() or not name:
            raise AdapterError(f"arch {arch!r} has an empty adapter or name")
        return cls(adapter.strip(), name, options)

    def __str__(self) -> str:
        opts = "".join(f",{k}={v}" for k, v in self.options.items())
        return f"{self.adapter}:{self.name}{opts}"


class ReferenceFlagsLike(Protocol):
    """What :meth:`Adapter.reference_flags` returns: the flags of a family's reference training
    script that build a network (``args()``, e.g. ``["--netG", "unet_256", ...]``), and a record of
    them (``to_dict()``, JSON-serialisable, with ``"args"``). ``str(flags)`` is the args joined."""

    def args(self) -> list[str]: ...

    def to_dict(self) -> dict: ...


class Adapter(abc.ABC):
    """Maps one family of architectures onto canonical, ordered weight tensors."""

    #: The adapter's name: the ``ADAPTER`` part of arch strings, shown by ``weightinit plugins``.
    name: ClassVar[str]
    #: One line for ``weightinit plugins``.
    description: ClassVar[str] = ""
    #: None for one network. An adapter of a model that holds one network per translation
    #: direction defines ``directions(model) -> [(canonical prefix, attribute), ...]``: the first
    #: is generated from the concept, the second from its reverse (``initialize`` does both).
    directions: ClassVar[Callable[..., list[tuple[str, str]]] | None] = None

    # --- recognising -----------------------------------------------------------------------
    @abc.abstractmethod
    def matches(self, model: nn.Module) -> bool:
        """True if this adapter understands ``model`` (already unwrapped)."""

    # --- naming ----------------------------------------------------------------------------
    @abc.abstractmethod
    def canonical_names(self, model: nn.Module) -> list[tuple[str, str]]:
        """``[(native_key, canonical_name), ...]`` for every generated parameter, in canonical order.

        ``native_key`` is the parameter's name in ``model.named_parameters()`` of the unwrapped
        model. Buffers (running statistics) are never generated.
        """

    def lora_targets(self, model: nn.Module) -> list[str]:
        """The modules that get LoRA (``model.named_modules()`` names): every Conv2d,
        ConvTranspose2d and Linear whose weight is generated, in the canonical order of their
        weights. Zoo builds, the benchmark and ``initialize(mode="lora")`` all ask this, and the
        order is the order ``inject_lora`` draws the shared initialisation of A in."""
        model = unwrap_model(model)
        order = {native: i for i, (native, _) in enumerate(self.canonical_names(model))}
        targets = [
            name
            for name, module in model.named_modules()
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and f"{name}.weight" in order
        ]
        return sorted(targets, key=lambda t: order[f"{t}.weight"])

    # --- capabilities: what code that serves every architecture asks, instead of names --------
    def reset_parameters(self, model: nn.Module) -> nn.Module:
        """Initialise ``model`` in place as its own training code does from scratch (the scratch
        baseline, a zoo's base before training); returns it. Default: each submodule's
        ``reset_parameters()``, PyTorch's default init."""
        for module in unwrap_model(model).modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
        return model

    def image_size(self, spec: ArchSpec) -> int | None:
        """The input side an architecture is made for (``unet_64``: 64), or None where any fits."""
        return None

    def arch_note(self, spec: ArchSpec) -> str | None:
        """A line worth printing about an arch string (a default users may not expect), or None."""
        return None

    def arch_options(self, spec: ArchSpec) -> dict[str, Any] | None:
        """The full options an arch string asks for, defaults filled in (``weightinit layout --json``
        shows them), or None for an adapter without named options."""
        return None

    def reference_flags(self, spec: ArchSpec, image_size: int | None = None) -> tuple[ReferenceFlagsLike | None, str]:
        """``(flags, note)``: the flags of the family's reference training script that build the
        network ``spec`` names (see :class:`ReferenceFlagsLike`), and a note on them; or ``(None, why
        not)``. ``image_size`` is the side a zoo trained on, where known (for the note). Default: none."""
        return None, f"adapter {self.name!r} does not build the reference code's generators"

    # --- training ------------------------------------------------------------------------------
    def discriminator(self, model: nn.Module, *, ndf: int, n_layers: int) -> nn.Module:
        """The discriminator the training recipe (:mod:`weightinit.recipe`) trains ``model`` against:
        it sees the condition and the image stacked on the channel axis and scores patches. ``ndf``
        and ``n_layers`` are the recipe's width and depth. The recipe seeds the random state first.
        Default: pix2pix's PatchGAN on 3-channel images (3 + 3 channels in), batch norm, initialised
        as the reference does; an adapter whose images have other channels, or whose family trains
        against another discriminator, overrides it."""
        from weightinit.adapters.pix2pix_networks import NLayerDiscriminator, get_norm_layer, init_normal_

        return init_normal_(NLayerDiscriminator(6, ndf, n_layers, norm_layer=get_norm_layer("batch")))

    # --- building --------------------------------------------------------------------------
    def arch_names(self) -> list[str]:
        """The ``NAME``s this adapter builds (empty if it builds none)."""
        return []

    def build(self, spec: ArchSpec) -> nn.Module:
        """Build the architecture an :class:`ArchSpec` names (its ``adapter`` is this one)."""
        raise AdapterError(f"adapter {self.name!r} cannot build architectures (asked for {spec})")

    # --- naming networks and carrying weights between them ----------------------------------
    def arch_of(self, model: nn.Module) -> str | None:
        """The arch string that builds ``model``'s layout, or None where this adapter cannot tell."""
        return None

    def arch_of_state_dict(self, state: Mapping[str, torch.Tensor]) -> str | None:
        """The arch string whose network has ``state``'s keys and shapes, or None where this adapter
        cannot tell (it raises :class:`AdapterError` for a state dict that is not one of its networks)."""
        return None

    def transfer(self, source: str, target: str):
        """The :class:`~weightinit.transfer.Plan` that carries weights made for arch ``source`` to arch
        ``target`` (a wider or deeper network of the family), or :class:`LayoutMismatch` saying why
        there is none. Default: only a network's own layout is served."""
        raise LayoutMismatch(f"adapter {self.name!r} serves only a generator's own network ({source}), not {target}")

    # --- derived, shared by every adapter --------------------------------------------------
    def layout(self, model: nn.Module, block_size: int = DEFAULT_BLOCK_SIZE) -> BlockLayout:
        model = unwrap_model(model)
        params = dict(model.named_parameters())
        slots = []
        for native, canonical in self.canonical_names(model):
            p = params[native]
            slots.append(Slot(canonical, tuple(p.shape), dtype_name(p.dtype)))
        return BlockLayout(slots, block_size)

    def native_to_canonical(self, model: nn.Module) -> dict[str, str]:
        return dict(self.canonical_names(unwrap_model(model)))

    def to_canonical(self, model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The generated tensors of a (possibly wrapper-prefixed) state dict, by canonical name, in order."""
        stripped = {strip_wrapper_prefixes(k): v for k, v in state_dict.items()}
        out = {}
        for native, canonical in self.canonical_names(unwrap_model(model)):
            if native not in stripped:
                raise AdapterError(f"state dict has no tensor {native!r} (canonical {canonical!r})")
            out[canonical] = stripped[native]
        return out

    def from_canonical(self, model: nn.Module, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Canonical tensors back to the model's native keys (unwrapped)."""
        mapping = self.canonical_names(unwrap_model(model))
        missing = [c for _, c in mapping if c not in tensors]
        if missing:
            raise AdapterError(f"missing canonical tensors: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        return {native: tensors[canonical] for native, canonical in mapping}
