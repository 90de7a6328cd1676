"""The CycleGAN adapter: a pair of pix2pix generators, one per translation direction.

A CycleGAN concept has two directions: ``netG_A`` maps domain A to B (the concept, e.g.
"photo to sketch") and ``netG_B`` maps B back to A (its reverse, "sketch to photo"). The
adapter matches any ``nn.Module`` with both attributes holding pix2pix generators (possibly
wrapped in DDP / DataParallel / ``torch.compile``), and :class:`CycleGANPair`, which it builds.
The reference ``CycleGANModel`` is a plain object, not an ``nn.Module``; view its generators
in place with ``CycleGANPair(model.netG_A, model.netG_B)`` (no copy: writes reach the model).

Canonical names are ``G_A.<pix2pix canonical name>`` for all of G_A, then ``G_B.<...>``.
:meth:`CycleGANAdapter.directions` tells the caller which prefix gets the concept (G_A) and
which gets the reverse concept (G_B).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from torch import nn

from weightinit.adapters.base import Adapter, ArchSpec, unwrap_model
from weightinit.adapters.pix2pix import (
    GENERATOR_ARCHS,
    GeneratorOptions,
    arch_image_size,
    build_generator,
    generator_canonical_names,
    is_pix2pix_generator,
    parse_generator_options,
    reference_flags,
)
from weightinit.adapters.pix2pix_networks import init_normal_
from weightinit.errors import AdapterError
from weightinit.hookspecs import hookimpl

#: ``(canonical prefix, attribute)`` per direction: G_A gets the concept, G_B its reverse.
DIRECTIONS: tuple[tuple[str, str], ...] = (("G_A", "netG_A"), ("G_B", "netG_B"))

#: CycleGAN's defaults in the reference: instance norm (ResNet generators are the usual arch).
CYCLEGAN_DEFAULTS = GeneratorOptions(norm="instance")


class CycleGANPair(nn.Module):
    """Two generators: ``netG_A`` (A -> B, the concept) and ``netG_B`` (B -> A, the reverse)."""

    def __init__(self, netG_A: nn.Module, netG_B: nn.Module):
        if netG_A is netG_B:
            raise AdapterError(
                "CycleGANPair(netG_A, netG_B) got the same network twice: a pair holds two generators, one per "
                "direction (the concept and its reverse); build a second one"
            )
        super().__init__()
        self.netG_A = netG_A
        self.netG_B = netG_B

    def forward(self, real_A, real_B):
        """``(fake_B, fake_A)``: each domain translated into the other."""
        return self.netG_A(real_A), self.netG_B(real_B)


class CycleGANAdapter(Adapter):
    """A CycleGAN generator pair: ``G_A.*`` (the concept) then ``G_B.*`` (its reverse)."""

    name = "cyclegan"
    description = "CycleGAN generator pairs (netG_A: the concept, netG_B: its reverse)"
    #: Options an arch string does not give: the reference's CycleGAN defaults.
    default_options: GeneratorOptions = CYCLEGAN_DEFAULTS

    def directions(self, model: nn.Module | None = None) -> list[tuple[str, str]]:
        """``[(canonical_prefix, attribute)]``: ``("G_A", "netG_A")`` is generated from the
        concept, ``("G_B", "netG_B")`` from its reverse. The same for every pair."""
        return list(DIRECTIONS)

    def matches(self, model: nn.Module) -> bool:
        model = unwrap_model(model)
        if not isinstance(model, nn.Module):
            return False
        generators = [getattr(model, attr, None) for _, attr in DIRECTIONS]
        if not all(isinstance(g, nn.Module) for g in generators):
            return False
        generators = [unwrap_model(g) for g in generators]
        # One generator shared by both directions cannot hold a concept and its reverse.
        if generators[0] is generators[1]:
            return False
        return all(is_pix2pix_generator(g) for g in generators)

    def canonical_names(self, model: nn.Module) -> list[tuple[str, str]]:
        model = unwrap_model(model)
        if not self.matches(model):
            raise AdapterError(
                f"{type(model).__name__} is not a CycleGAN pair: it needs pix2pix generators as "
                f"attributes {', '.join(attr for _, attr in DIRECTIONS)}"
            )
        # Native keys come from the pair's own named_parameters(): a generator wrapped inside
        # the pair (``netG_A.module.model...``) keeps its wrapper segment, as its state dict does.
        native_of = {id(p): name for name, p in model.named_parameters()}
        pairs = []
        for prefix, attr in DIRECTIONS:
            generator = unwrap_model(getattr(model, attr))
            params = dict(generator.named_parameters())
            for inner, canonical in generator_canonical_names(generator):
                pairs.append((native_of[id(params[inner])], f"{prefix}.{canonical}"))
        return pairs

    def arch_names(self) -> list[str]:
        return list(GENERATOR_ARCHS)

    def options(self, spec: ArchSpec) -> GeneratorOptions:
        """The full, validated options an arch spec asks for (defaults filled in)."""
        if spec.adapter != self.name:
            raise AdapterError(f"arch {str(spec)!r} is for adapter {spec.adapter!r}, not {self.name!r}")
        return parse_generator_options(spec, self.default_options)

    def arch_options(self, spec: ArchSpec) -> dict[str, Any]:
        return asdict(self.options(spec))

    def reference_flags(self, spec: ArchSpec, image_size: int | None = None):
        """The reference ``train.py`` flags that build each of the pair's generators."""
        return reference_flags(spec, self.options(spec), image_size)

    def build(self, spec: ArchSpec) -> nn.Module:
        """Two generators with the same options, e.g. ``cyclegan:resnet_9blocks,ngf=32``."""
        options = self.options(spec)
        return CycleGANPair(build_generator(spec.name, options), build_generator(spec.name, options))

    def reset_parameters(self, model: nn.Module) -> nn.Module:
        """The reference's init for both generators (conv weights N(0, 0.02), biases 0, ...)."""
        init_normal_(unwrap_model(model))
        return model

    def image_size(self, spec: ArchSpec) -> int | None:
        return arch_image_size(spec.name)


@hookimpl
def register_adapters(register):
    register(CycleGANAdapter)


@hookimpl
def adapter_for_model(model):
    adapter = CycleGANAdapter()
    return adapter if adapter.matches(model) else None
