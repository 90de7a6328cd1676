"""The pix2pix adapter: U-Net and ResNet generators with the reference code's layout.

Recognition is by class names and structure, never ``isinstance`` of weightinit's classes: a
module named ``UnetGenerator`` whose ``.model`` is a ``UnetSkipConnectionBlock`` chain, or one
named ``ResnetGenerator`` whose ``.model`` is an ``nn.Sequential``. A user's own copy of the
reference ``networks.py`` therefore matches, as long as every parameter sits where the
reference puts it; anything unexpected (an extra layer, a LoRA wrapper) makes the model fall
through to another adapter instead of being half understood.

Canonical names are structural, so they do not shift when dropout or padding modules change the
positional native keys (``model.model.1.model.3...``):

* U-Net, level ``i`` (0 = outermost, the one that sees the image)::

      unet.d{i}.down_conv.{weight,bias}   unet.d{i}.down_norm.{weight,bias}
      unet.d{i}.up_conv.{weight,bias}     unet.d{i}.up_norm.{weight,bias}

  Canonical order is data-flow order: the down path from level 0 to the innermost level,
  then the up path from the innermost level back to level 0.

* ResNet::

      stem.conv  stem.norm  down{i}.conv  down{i}.norm
      res{i}.conv1  res{i}.norm1  res{i}.conv2  res{i}.norm2
      up{i}.conv  up{i}.norm  head.conv                      (each .weight then .bias)

  Canonical order is data-flow order: stem, downsamplings, residual blocks, upsamplings, head.

Only parameters are generated; batch-norm running statistics are buffers and stay as they are.
Which of ``.weight``/``.bias``/norm entries exist depends on the norm option (see
:mod:`weightinit.adapters.pix2pix_networks`), exactly as the native keys do.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from weightinit.adapters.base import Adapter, ArchSpec, unwrap_model
from weightinit.adapters.pix2pix_networks import (
    NORM_TYPES,
    PADDING_TYPES,
    NLayerDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    get_norm_layer,
    init_normal_,
)
from weightinit.errors import AdapterError
from weightinit.hookspecs import hookimpl

#: Arch name -> (family, depth): U-Net levels (``num_downs``) or ResNet residual blocks.
GENERATOR_ARCHS: dict[str, tuple[str, int]] = {
    "unet_256": ("unet", 8),
    "unet_128": ("unet", 7),
    "unet_64": ("unet", 6),
    "resnet_9blocks": ("resnet", 9),
    "resnet_6blocks": ("resnet", 6),
}

_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def arch_image_size(arch_name: str) -> int | None:
    """A U-Net's input side (``unet_64``: 64, what its depth is made for); None for a ResNet,
    which is fully convolutional (any multiple of 4 px)."""
    family, _ = GENERATOR_ARCHS.get(arch_name, (None, 0))
    return int(arch_name.removeprefix("unet_")) if family == "unet" else None


@dataclass(frozen=True)
class GeneratorOptions:
    """The options of one pix2pix generator (the ``key=value`` part of an arch string)."""

    ngf: int = 64
    norm: str = "batch"
    dropout: bool = False
    padding: str = "reflect"
    input_nc: int = 3
    output_nc: int = 3


#: pix2pix's defaults in the reference: U-Net, batch norm, 64 filters, RGB in and out.
PIX2PIX_DEFAULTS = GeneratorOptions()
OPTION_NAMES = tuple(asdict(PIX2PIX_DEFAULTS))


def _positive_int(key: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise AdapterError(f"option {key}={value!r} must be a positive integer")
    return number


def _choice(key: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise AdapterError(f"option {key}={value!r} is not valid; choose one of: {', '.join(choices)}")
    return value


def _boolean(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise AdapterError(f"option {key}={value!r} is not valid; choose one of: true, false")


def parse_generator_options(spec: ArchSpec, defaults: GeneratorOptions = PIX2PIX_DEFAULTS) -> GeneratorOptions:
    """Validate an arch spec's name and options; unknown names, keys or values list the choices."""
    if spec.name not in GENERATOR_ARCHS:
        raise AdapterError(
            f"unknown {spec.adapter} arch {spec.name!r} in {str(spec)!r}; choose one of: {', '.join(GENERATOR_ARCHS)}"
        )
    family = GENERATOR_ARCHS[spec.name][0]
    values = asdict(defaults)
    for key, raw in spec.options.items():
        if key not in OPTION_NAMES:
            raise AdapterError(f"unknown option {key!r} in {str(spec)!r}; valid options: {', '.join(OPTION_NAMES)}")
        if key == "padding" and family != "resnet":
            raise AdapterError(f"option 'padding' applies only to resnet arches, not {spec.name!r}")
        if key in ("ngf", "input_nc", "output_nc"):
            values[key] = _positive_int(key, raw)
        elif key == "norm":
            values[key] = _choice(key, raw, NORM_TYPES)
        elif key == "padding":
            values[key] = _choice(key, raw, PADDING_TYPES)
        else:
            values[key] = _boolean(key, raw)
    return GeneratorOptions(**values)


#: The reference ``define_G``'s ``--netG`` choices (no 64-px U-Net: ``num_downs`` is 7 or 8).
REFERENCE_NETG = ("resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128")
#: The reference resizes to ``load_size`` then crops ``crop_size`` (defaults 286 and 256).
_LOAD_PER_CROP = 286 / 256
_REFERENCE_CROP = 256


@dataclass(frozen=True)
class ReferenceFlags:
    """Flags of the reference ``train.py`` that build the network a generator serves.

    ``no_dropout`` is how the zoo was trained; dropout has no weights, so a model built with the
    other setting has the same layout and is served as well. A U-Net's ``crop_size`` is its own
    side. A ResNet is fully convolutional and serves any size that is a multiple of 4, so its
    flags give the reference's default ``--load_size 286 --crop_size 256``, whatever crop size its
    zoo trained on (the note says which; ``experiments/crop_size.py`` measures what it costs).
    """

    netG: str
    ngf: int
    norm: str
    no_dropout: bool
    crop_size: int | None = None
    load_size: int | None = None
    input_nc: int = 3
    output_nc: int = 3

    def args(self) -> list[str]:
        out = ["--netG", self.netG, "--ngf", str(self.ngf), "--norm", self.norm]
        if self.no_dropout:
            out.append("--no_dropout")
        if self.input_nc != 3:
            out += ["--input_nc", str(self.input_nc)]
        if self.output_nc != 3:
            out += ["--output_nc", str(self.output_nc)]
        if self.crop_size is not None:
            out += ["--load_size", str(self.load_size), "--crop_size", str(self.crop_size)]
        return out

    def __str__(self) -> str:
        return " ".join(self.args())

    def to_dict(self) -> dict:
        return {**asdict(self), "args": self.args()}


def reference_flags(
    spec: ArchSpec, options: GeneratorOptions, image_size: int | None = None
) -> tuple[ReferenceFlags | None, str]:
    """``(flags, note)``: the reference ``train.py`` flags that build the generator ``spec`` names
    with ``options`` (its full options), or None and why not. ``image_size``: the zoo's crops."""
    if spec.name not in REFERENCE_NETG:
        return None, (
            f"the reference define_G has no {spec.name!r} (its --netG choices are {', '.join(REFERENCE_NETG)}; "
            "a U-Net needs 128 or 256 px); it serves weightinit's own pix2pix networks of that arch"
        )
    resnet = GENERATOR_ARCHS[spec.name][0] == "resnet"
    if resnet and options.padding != "reflect":
        return None, f"the reference ResNet always pads with reflect, not {options.padding!r}"
    crop = _REFERENCE_CROP if resnet else arch_image_size(spec.name)
    flags = ReferenceFlags(
        netG=spec.name,
        ngf=options.ngf,
        norm=options.norm,
        no_dropout=not options.dropout,
        crop_size=crop,
        load_size=round(crop * _LOAD_PER_CROP) if crop else None,
        input_nc=options.input_nc,
        output_nc=options.output_nc,
    )
    note = "dropout has no weights: --no_dropout or not, the layout is the same"
    if resnet:
        trained = f"its zoo trained on {image_size}-px crops" if image_size else "its zoo's crop size is not recorded"
        note += f"; a ResNet serves any multiple of 4 px ({trained})"
    return flags, note


def build_generator(arch_name: str, options: GeneratorOptions = PIX2PIX_DEFAULTS) -> nn.Module:
    """A reference-layout generator, initialised like the reference (``init_normal_``)."""
    if arch_name not in GENERATOR_ARCHS:
        raise AdapterError(f"unknown generator arch {arch_name!r}; choose one of: {', '.join(GENERATOR_ARCHS)}")
    family, depth = GENERATOR_ARCHS[arch_name]
    norm_layer = get_norm_layer(options.norm)
    if family == "unet":
        net: nn.Module = UnetGenerator(
            options.input_nc, options.output_nc, depth, options.ngf, norm_layer=norm_layer, use_dropout=options.dropout
        )
    else:
        net = ResnetGenerator(
            options.input_nc,
            options.output_nc,
            options.ngf,
            norm_layer=norm_layer,
            use_dropout=options.dropout,
            n_blocks=depth,
            padding_type=options.padding,
        )
    return init_normal_(net)


def build_discriminator(input_nc: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> nn.Module:
    """The pix2pix PatchGAN discriminator (input = condition and image stacked: 3 + 3 channels)."""
    if norm not in NORM_TYPES:
        raise AdapterError(f"norm {norm!r} is not valid; choose one of: {', '.join(NORM_TYPES)}")
    return init_normal_(NLayerDiscriminator(input_nc, ndf, n_layers, norm_layer=get_norm_layer(norm)))


# --- recognising and naming ----------------------------------------------------------------


class _Unrecognised(Exception):
    """The model looks like a pix2pix generator by name but not by structure."""


def generator_family(model: nn.Module) -> str | None:
    """``"unet"`` or ``"resnet"`` by class names (the first test; structure is checked after)."""
    kind = type(model).__name__
    inner = getattr(model, "model", None)
    if kind == "UnetGenerator" and type(inner).__name__ == "UnetSkipConnectionBlock":
        return "unet"
    if kind == "ResnetGenerator" and isinstance(inner, nn.Sequential):
        return "resnet"
    return None


def _has_own_params(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


def _is_conv(module: nn.Module) -> bool:
    return type(module) is nn.Conv2d


def _is_conv_transpose(module: nn.Module) -> bool:
    return type(module) is nn.ConvTranspose2d


def _is_norm(module: nn.Module) -> bool:
    """A parameter-bearing leaf that is not a convolution: the norm of the conv before it."""
    return not _is_conv(module) and not _is_conv_transpose(module) and next(module.children(), None) is None


def _unet_modules(gen: nn.Module) -> list[tuple[str, str]]:
    """``[(module_path, canonical_prefix)]`` for a U-Net, in data-flow order."""
    downs: list[list[tuple[str, str]]] = []
    ups: list[list[tuple[str, str]]] = []
    block, block_path = gen.model, "model"
    while block is not None:
        level = len(downs)
        seq = getattr(block, "model", None)
        if not isinstance(seq, nn.Sequential):
            raise _Unrecognised(f"U-Net level {level} ({block_path}) has no nn.Sequential `.model`")
        down: list[tuple[str, str]] = []
        up: list[tuple[str, str]] = []
        roles: set[str] = set()
        inner, phase = None, "down"
        for idx, child in seq.named_children():
            path = f"{block_path}.model.{idx}"
            if type(child).__name__ == "UnetSkipConnectionBlock":
                if inner is not None or phase != "down":
                    raise _Unrecognised(f"U-Net level {level} has a misplaced inner block at {path}")
                inner, phase = (child, path), "up"
                continue
            if _is_conv_transpose(child):
                phase = "up"
            if not _has_own_params(child):
                continue
            if phase == "down" and _is_conv(child):
                role = "down_conv"
            elif phase == "down" and _is_norm(child) and "down_conv" in roles:
                role = "down_norm"
            elif phase == "up" and _is_conv_transpose(child):
                role = "up_conv"
            elif phase == "up" and _is_norm(child) and "up_conv" in roles:
                role = "up_norm"
            else:
                raise _Unrecognised(f"unexpected {type(child).__name__} with parameters at {path}")
            if role in roles:
                raise _Unrecognised(f"U-Net level {level} has a second {role} at {path}")
            roles.add(role)
            (down if phase == "down" else up).append((path, f"unet.d{level}.{role}"))
        if not {"down_conv", "up_conv"} <= roles:
            raise _Unrecognised(f"U-Net level {level} ({block_path}) lacks a down or up convolution")
        downs.append(down)
        ups.append(up)
        block, block_path = inner if inner is not None else (None, "")
    return [entry for level in downs for entry in level] + [entry for level in reversed(ups) for entry in level]


def _resnet_block_modules(block: nn.Module, path: str, prefix: str) -> list[tuple[str, str]]:
    seq = getattr(block, "conv_block", None)
    if not isinstance(seq, nn.Sequential):
        raise _Unrecognised(f"residual block {path} has no nn.Sequential `.conv_block`")
    out: list[tuple[str, str]] = []
    convs, last_norm = 0, 0
    for idx, child in seq.named_children():
        if not _has_own_params(child):
            continue
        child_path = f"{path}.conv_block.{idx}"
        if _is_conv(child) and convs < 2:
            convs += 1
            out.append((child_path, f"{prefix}.conv{convs}"))
        elif _is_norm(child) and convs > last_norm:
            last_norm = convs
            out.append((child_path, f"{prefix}.norm{convs}"))
        else:
            raise _Unrecognised(f"unexpected {type(child).__name__} with parameters at {child_path}")
    if convs != 2:
        raise _Unrecognised(f"residual block {path} has {convs} convolutions, not 2")
    return out


def _resnet_modules(gen: nn.Module) -> list[tuple[str, str]]:
    """``[(module_path, canonical_prefix)]`` for a ResNet generator, in data-flow order."""
    out: list[tuple[str, str]] = []
    n_down = n_res = n_up = 0
    stage: str | None = None  # canonical prefix of the last conv stage, which a norm belongs to
    normed: set[str] = set()
    head = False
    for idx, child in gen.model.named_children():
        path = f"model.{idx}"
        if head and _has_own_params(child) and not _is_norm(child):
            raise _Unrecognised(f"parameters after the output convolution at {path}")
        if type(child).__name__ == "ResnetBlock":
            if n_up or head or not out:
                raise _Unrecognised(f"residual block at {path} outside the bottleneck")
            out += _resnet_block_modules(child, path, f"res{n_res}")
            n_res, stage = n_res + 1, None
            continue
        if not _has_own_params(child):
            continue
        if _is_conv(child):
            if not out:
                stage = "stem"
            elif n_res or n_up:
                stage, head = "head", True
            else:
                stage, n_down = f"down{n_down}", n_down + 1
            out.append((path, f"{stage}.conv"))
        elif _is_conv_transpose(child):
            stage, n_up = f"up{n_up}", n_up + 1
            out.append((path, f"{stage}.conv"))
        elif _is_norm(child) and stage is not None and stage not in normed:
            normed.add(stage)
            out.append((path, f"{stage}.norm"))
        else:
            raise _Unrecognised(f"unexpected {type(child).__name__} with parameters at {path}")
    if not head:
        raise _Unrecognised("no output convolution after the residual blocks")
    return out


def generator_canonical_names(model: nn.Module) -> list[tuple[str, str]]:
    """``[(native_key, canonical_name)]`` of a pix2pix generator; :class:`AdapterError` if it is not one."""
    model = unwrap_model(model)
    family = generator_family(model)
    if family is None:
        raise AdapterError(
            f"{type(model).__name__} is not a pix2pix generator "
            "(expected UnetGenerator or ResnetGenerator with `.model`)"
        )
    try:
        modules = _unet_modules(model) if family == "unet" else _resnet_modules(model)
    except _Unrecognised as exc:
        raise AdapterError(f"{type(model).__name__} does not have the reference pix2pix structure: {exc}") from None
    pairs = []
    for path, prefix in modules:
        module = model.get_submodule(path)
        for pname, _ in module.named_parameters(recurse=False):
            pairs.append((f"{path}.{pname}", f"{prefix}.{pname}"))
    covered = {native for native, _ in pairs}
    missed = [name for name, _ in model.named_parameters() if name not in covered]
    if missed:
        raise AdapterError(f"{type(model).__name__} has parameters outside the pix2pix structure: {missed[:5]}")
    return pairs


def image_channels(model: nn.Module) -> tuple[int, int]:
    """``(input_nc, output_nc)`` of a pix2pix generator, read from its first and last convolutions."""
    model = unwrap_model(model)
    params = dict(model.named_parameters())
    shapes = {canonical: params[native].shape for native, canonical in generator_canonical_names(model)}
    if "stem.conv.weight" in shapes:  # ResNet: Conv2d weights are (out, in, k, k)
        return shapes["stem.conv.weight"][1], shapes["head.conv.weight"][0]
    # U-Net: the outermost up convolution is a ConvTranspose2d, (in, out, k, k)
    return shapes["unet.d0.down_conv.weight"][1], shapes["unet.d0.up_conv.weight"][1]


def is_pix2pix_generator(model: nn.Module) -> bool:
    try:
        generator_canonical_names(model)
    except AdapterError:
        return False
    return True


def _shapes(state) -> dict[str, tuple[int, ...]]:
    """Key -> shape, wrapper prefixes stripped; ``num_batches_tracked`` left out (old checkpoints lack it)."""
    from weightinit.adapters.base import strip_wrapper_prefixes

    return {
        strip_wrapper_prefixes(k): tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")
    }


def arch_of_state_dict(adapter_name: str, defaults: GeneratorOptions, state) -> str:
    """The arch string of the reference generator with exactly ``state``'s keys and shapes.

    Width, channels and norm are read from the first and last convolutions and the keys; the
    arch name, dropout and padding (which shift keys in a ResNet block) are found by building the
    candidates on the meta device and comparing keys and shapes."""
    import torch

    shapes = _shapes(state)
    if "model.model.0.weight" in shapes:
        family, first, last = "unet", shapes["model.model.0.weight"], shapes.get("model.model.3.weight")
        output_nc = last[1] if last else None
        has_bias = "model.model.0.bias" in shapes
    elif "model.1.weight" in shapes:
        family, first = "resnet", shapes["model.1.weight"]
        convs = sorted((int(k.split(".")[1]), v) for k, v in shapes.items() if re.fullmatch(r"model\.\d+\.weight", k))
        output_nc = convs[-1][1][0] if convs and len(convs[-1][1]) == 4 else None
        has_bias = "model.1.bias" in shapes
    else:
        raise AdapterError("the state dict is not a pix2pix generator's (no model.model.0.weight or model.1.weight)")
    if len(first) != 4 or output_nc is None:
        raise AdapterError("the state dict is not a pix2pix generator's (its first or last convolution is missing)")
    norm = "batch" if any(k.endswith("running_mean") for k in shapes) else "instance" if has_bias else "none"
    fixed = f"ngf={first[0]},norm={norm}"
    if first[1] != defaults.input_nc:
        fixed += f",input_nc={first[1]}"
    if output_nc != defaults.output_nc:
        fixed += f",output_nc={output_nc}"
    tried = []
    for name, (fam, _) in GENERATOR_ARCHS.items():
        if fam != family:
            continue
        for extra in ("", ",dropout=true") + ((",padding=zero",) if fam == "resnet" else ()):
            arch = f"{adapter_name}:{name},{fixed}{extra}"
            with torch.device("meta"):
                net = build_generator(name, parse_generator_options(ArchSpec.parse(arch), defaults))
            if _shapes(net.state_dict()) == shapes:
                return arch
            tried.append(arch)
    raise AdapterError(
        f"the state dict looks like a pix2pix {family} generator with {fixed} but fits none of "
        f"{', '.join(ArchSpec.parse(a).name for a in tried[::2])} (a changed network, or one saved "
        "with extra modules); pass --arch"
    )


class Pix2PixAdapter(Adapter):
    """pix2pix / CycleGAN generators (``UnetGenerator``, ``ResnetGenerator``) of the reference code."""

    name = "pix2pix"
    description = "U-Net and ResNet generators with the reference pytorch-CycleGAN-and-pix2pix layout"
    #: Options an arch string does not give: the reference's pix2pix defaults.
    default_options: GeneratorOptions = PIX2PIX_DEFAULTS

    def matches(self, model: nn.Module) -> bool:
        return is_pix2pix_generator(model)

    def canonical_names(self, model: nn.Module) -> list[tuple[str, str]]:
        return generator_canonical_names(model)

    def arch_names(self) -> list[str]:
        return list(GENERATOR_ARCHS)

    def options(self, spec: ArchSpec) -> GeneratorOptions:
        """The full, validated options an arch spec asks for (defaults filled in)."""
        self._check_adapter(spec)
        return parse_generator_options(spec, self.default_options)

    def arch_options(self, spec: ArchSpec) -> dict[str, Any]:
        return asdict(self.options(spec))

    def build(self, spec: ArchSpec) -> nn.Module:
        return build_generator(spec.name, self.options(spec))

    def reference_flags(self, spec: ArchSpec, image_size: int | None = None) -> tuple[ReferenceFlags | None, str]:
        """The reference pytorch-CycleGAN-and-pix2pix ``train.py`` flags (``--netG``, ``--ngf``,
        ``--norm``, ``--no_dropout``, ``--load_size``/``--crop_size``) that build ``spec``'s network."""
        return reference_flags(spec, self.options(spec), image_size)

    def discriminator(self, model: nn.Module, *, ndf: int, n_layers: int) -> nn.Module:
        """pix2pix's PatchGAN on the condition and the image stacked (``input_nc + output_nc``
        channels, read from ``model``), batch norm, initialised as the reference does."""
        return build_discriminator(sum(image_channels(model)), ndf, n_layers)

    def reset_parameters(self, model: nn.Module) -> nn.Module:
        """The reference's init: conv weights N(0, 0.02), biases 0, batch-norm weights N(1, 0.02)."""
        init_normal_(unwrap_model(model))
        return model

    def image_size(self, spec: ArchSpec) -> int | None:
        return arch_image_size(spec.name)

    def arch_note(self, spec: ArchSpec) -> str | None:
        if spec.name.startswith("resnet_") and "norm" not in spec.options:
            return (
                f"{spec} uses batch norm, pix2pix's default; CycleGAN's reference default is instance norm "
                f"(cyclegan:{spec.name}, or add norm=instance)"
            )
        return None

    def arch_of(self, model: nn.Module) -> str:
        arch = self.arch_of_state_dict(unwrap_model(model).state_dict())
        if any(isinstance(m, nn.Dropout) for m in model.modules()) and "dropout=" not in arch:
            arch += ",dropout=true"  # a U-Net's dropout shifts no key: only its modules show it
        return arch

    def arch_of_state_dict(self, state) -> str:
        return arch_of_state_dict(self.name, self.default_options, state)

    def transfer(self, source: str, target: str):
        from weightinit.adapters.pix2pix_transfer import plan

        return plan(self, ArchSpec.parse(source), ArchSpec.parse(target))

    def _check_adapter(self, spec: ArchSpec) -> None:
        if spec.adapter != self.name:
            raise AdapterError(f"arch {str(spec)!r} is for adapter {spec.adapter!r}, not {self.name!r}")


@hookimpl
def register_adapters(register):
    register(Pix2PixAdapter)


@hookimpl
def adapter_for_model(model):
    adapter = Pix2PixAdapter()
    return adapter if adapter.matches(model) else None
