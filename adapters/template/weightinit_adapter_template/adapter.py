"""The adapter, commented line by line: copy it for your own architecture.

The plugin module (``__init__.py``) hands this class to weightinit from inside its hooks. Run the
conformance suite (``tests/test_conformance.py``) after every change.
"""

from __future__ import annotations

from torch import nn

from weightinit.adapters.base import Adapter, ArchSpec, unwrap_model  # the contract every adapter implements
from weightinit.adapters.pix2pix_networks import init_normal_  # the init this network's training script uses
from weightinit.errors import AdapterError  # the error for anything a user got wrong
from weightinit_adapter_template.network import TinyEncoderDecoder  # your architecture

#: Arch names this adapter builds: the NAME in ``template:NAME,key=value``.
ARCHS = ("tiny",)
#: Options an arch string may set, and their defaults (all integers here).
DEFAULT_OPTIONS = {"width": 8, "in_channels": 3, "out_channels": 3}

#: Module path in your network -> its canonical prefix. Canonical names must not change when
#: options that add no parameters change (dropout, padding), and are the same for every copy
#: of your code: they name *what* a tensor is, not where it happens to sit.
CANONICAL_PREFIXES = {"encoder.0": "enc.conv", "decoder.0": "dec.conv"}


class TemplateAdapter(Adapter):
    """The adapter for :class:`TinyEncoderDecoder` (rename it after your architecture)."""

    name = "template"  # the ADAPTER in arch strings; unique among all installed plugins
    description = "template: TinyEncoderDecoder (copy this plugin for your own architecture)"

    def matches(self, model: nn.Module) -> bool:
        # Recognise by class name and structure, never by isinstance: a user's copy of the
        # network (another module, same code) must match too. ``model`` arrives unwrapped.
        if type(model).__name__ != "TinyEncoderDecoder":
            return False
        params = {name for name, _ in model.named_parameters()}
        # Every parameter must be one we name, and every name must exist: no half matches.
        expected = {f"{path}.{p}" for path in CANONICAL_PREFIXES for p in ("weight", "bias")}
        return params == expected

    def canonical_names(self, model: nn.Module) -> list[tuple[str, str]]:
        # [(native key, canonical name)] in canonical order; parameters only, never buffers.
        if not self.matches(model):
            raise AdapterError(f"{type(model).__name__} is not a TinyEncoderDecoder")
        pairs = []
        for path, prefix in CANONICAL_PREFIXES.items():  # data-flow order: encoder, decoder
            module = model.get_submodule(path)
            for pname, _ in module.named_parameters(recurse=False):  # weight, then bias
                pairs.append((f"{path}.{pname}", f"{prefix}.{pname}"))
        return pairs

    def arch_names(self) -> list[str]:
        return list(ARCHS)  # shown by `weightinit plugins`, checked by the conformance suite

    def build(self, spec: ArchSpec) -> nn.Module:
        # `spec` is a parsed arch string, e.g. template:tiny,width=8.
        if spec.name not in ARCHS:  # unknown names and options list the valid choices
            raise AdapterError(f"unknown template arch {spec.name!r}; choose one of: {', '.join(ARCHS)}")
        options = dict(DEFAULT_OPTIONS)
        for key, value in spec.options.items():
            if key not in options:
                raise AdapterError(f"unknown option {key!r}; valid options: {', '.join(options)}")
            if not value.isdigit() or int(value) < 1:
                raise AdapterError(f"option {key}={value!r} must be a positive integer")
            options[key] = int(value)
        return TinyEncoderDecoder(**options)

    def reset_parameters(self, model: nn.Module) -> nn.Module:
        # Optional: initialise in place as your training script does from scratch. A zoo's base
        # starts from it and the benchmark's scratch baseline is it; without this method each
        # layer's own reset_parameters() (PyTorch's default) runs. This network's script uses
        # the reference pix2pix init, N(0, 0.02) weights and zero biases.
        init_normal_(unwrap_model(model))
        return model
