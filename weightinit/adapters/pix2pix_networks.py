"""The pix2pix / CycleGAN networks, with the exact state-dict layout of the reference code.

Why a second copy of these networks: weightinit must build the architectures of the reference
implementation (junyanz/pytorch-CycleGAN-and-pix2pix, ``models/networks.py``) for the zoo and
the benchmark, and a generated weight set is only useful to a user whose own copy of that code
has the *same* parameter keys and shapes. So class names, module order inside every
``nn.Sequential`` and every ``bias=`` choice follow the reference, including its quirks:

* batch norm: convolutions before a norm have no bias (the norm's shift replaces it);
* instance norm: ``InstanceNorm2d(affine=False, track_running_stats=False)``, so the norm has
  no parameters and no buffers, and convolutions *do* have a bias;
* norm ``"none"``: an identity in the norm's place, and (as in the reference, which only turns
  the bias on for instance norm) convolutions have no bias;
* dropout and padding modules take positions in ``nn.Sequential``, so native keys shift with
  those options (the adapter's canonical names do not).

Nothing here imports the rest of weightinit: this module is plain torch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

NORM_TYPES = ("batch", "instance", "none")
PADDING_TYPES = ("reflect", "replicate", "zero")

NormFactory = Callable[[int], nn.Module]


def _identity_norm(num_features: int) -> nn.Module:
    """The ``"none"`` norm: takes a channel count like a real norm, does nothing."""
    return nn.Identity()


def get_norm_layer(norm_type: str = "instance") -> NormFactory:
    """A factory ``channels -> norm module`` for ``batch``, ``instance`` or ``none``."""
    if norm_type == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm_type == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm_type == "none":
        return _identity_norm
    raise ValueError(f"unknown norm {norm_type!r}; choose one of {list(NORM_TYPES)}")


def _conv_bias_for(norm_layer: NormFactory) -> bool:
    """Whether convolutions followed by this norm carry a bias (the reference's rule).

    Only instance norm turns the bias on: batch norm's shift makes a bias redundant, and the
    reference applies the same test to ``"none"``, which therefore has no bias either.
    """
    func = norm_layer.func if isinstance(norm_layer, functools.partial) else norm_layer
    return func is nn.InstanceNorm2d


def init_normal_(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """The reference's default init, in place: conv/linear weights N(0, gain), biases 0,
    batch-norm weights N(1, gain) and biases 0. Returns ``net``.

    Tensors on the meta device (a network built for its shapes, under
    ``accelerate.init_empty_weights``) hold no values and are left alone: ``normal_`` on meta
    would cost nothing but the second it takes torch to import its compiler stack."""

    def init_module(module: nn.Module) -> None:
        kind = type(module).__name__
        weight = getattr(module, "weight", None)
        bias = getattr(module, "bias", None)
        if isinstance(weight, torch.Tensor) and weight.is_meta:
            return
        if ("Conv" in kind or "Linear" in kind) and isinstance(weight, torch.Tensor):
            nn.init.normal_(weight, 0.0, gain)
            if isinstance(bias, torch.Tensor):
                nn.init.zeros_(bias)
        elif "BatchNorm2d" in kind and isinstance(weight, torch.Tensor):
            nn.init.normal_(weight, 1.0, gain)
            if isinstance(bias, torch.Tensor):
                nn.init.zeros_(bias)

    with torch.no_grad():
        net.apply(init_module)
    return net


# --- ResNet generator ----------------------------------------------------------------------


class ResnetBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (``x + conv_block(x)``)."""

    def __init__(
        self,
        dim: int,
        padding_type: str,
        norm_layer: NormFactory,
        use_dropout: bool,
        use_bias: bool,
    ):
        super().__init__()
        self.conv_block = self.build_conv_block(dim, padding_type, norm_layer, use_dropout, use_bias)

    @staticmethod
    def _padding(padding_type: str) -> tuple[list[nn.Module], int]:
        """Explicit padding modules and the conv's own padding for one 3x3 convolution."""
        if padding_type == "reflect":
            return [nn.ReflectionPad2d(1)], 0
        if padding_type == "replicate":
            return [nn.ReplicationPad2d(1)], 0
        if padding_type == "zero":
            return [], 1
        raise ValueError(f"unknown padding {padding_type!r}; choose one of {list(PADDING_TYPES)}")

    def build_conv_block(
        self,
        dim: int,
        padding_type: str,
        norm_layer: NormFactory,
        use_dropout: bool,
        use_bias: bool,
    ) -> nn.Sequential:
        layers: list[nn.Module] = []
        pad, conv_padding = self._padding(padding_type)
        layers += pad
        layers += [
            nn.Conv2d(dim, dim, kernel_size=3, padding=conv_padding, bias=use_bias),
            norm_layer(dim),
            nn.ReLU(True),
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        pad, conv_padding = self._padding(padding_type)
        layers += pad
        layers += [nn.Conv2d(dim, dim, kernel_size=3, padding=conv_padding, bias=use_bias), norm_layer(dim)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """7x7 stem, two stride-2 downsamplings, ``n_blocks`` residual blocks, two upsamplings,
    7x7 head with tanh: the reference's ``resnet_6blocks`` / ``resnet_9blocks``."""

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        ngf: int = 64,
        norm_layer: NormFactory = nn.BatchNorm2d,
        use_dropout: bool = False,
        n_blocks: int = 6,
        padding_type: str = "reflect",
    ):
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        super().__init__()
        use_bias = _conv_bias_for(norm_layer)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
            norm_layer(ngf),
            nn.ReLU(True),
        ]
        n_downsampling = 2
        for i in range(n_downsampling):
            channels = ngf * 2**i
            layers += [
                nn.Conv2d(channels, channels * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                norm_layer(channels * 2),
                nn.ReLU(True),
            ]
        width = ngf * 2**n_downsampling
        for _ in range(n_blocks):
            layers.append(ResnetBlock(width, padding_type, norm_layer, use_dropout, use_bias))
        for i in range(n_downsampling):
            channels = ngf * 2 ** (n_downsampling - i)
            layers += [
                nn.ConvTranspose2d(
                    channels, channels // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=use_bias
                ),
                norm_layer(channels // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# --- U-Net generator -----------------------------------------------------------------------


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: down, the inner levels (``submodule``), up, and a skip connection
    (concatenation of input and output) everywhere except the outermost level."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm_layer: NormFactory = nn.BatchNorm2d,
        use_dropout: bool = False,
    ):
        super().__init__()
        self.outermost = outermost
        use_bias = _conv_bias_for(norm_layer)
        if input_nc is None:
            input_nc = outer_nc
        down_conv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)

        def up_conv(in_channels: int, bias: bool) -> nn.ConvTranspose2d:
            return nn.ConvTranspose2d(in_channels, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)

        layers: list[nn.Module]
        if outermost:
            # No norm on either side; the output conv always has a bias, then tanh.
            layers = [down_conv, submodule, nn.ReLU(True), up_conv(inner_nc * 2, True), nn.Tanh()]
        elif innermost:
            # No submodule, no down norm; the up conv sees only the bottleneck (no concat).
            layers = [
                nn.LeakyReLU(0.2, True),
                down_conv,
                nn.ReLU(True),
                up_conv(inner_nc, use_bias),
                norm_layer(outer_nc),
            ]
        else:
            layers = [
                nn.LeakyReLU(0.2, True),
                down_conv,
                norm_layer(inner_nc),
                submodule,
                nn.ReLU(True),
                up_conv(inner_nc * 2, use_bias),
                norm_layer(outer_nc),
            ]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """A U-Net of ``num_downs`` levels built from the innermost level outwards; an image of
    size 2**num_downs becomes 1x1 at the bottleneck (``unet_256``: 8, ``unet_128``: 7)."""

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        num_downs: int,
        ngf: int = 64,
        norm_layer: NormFactory = nn.BatchNorm2d,
        use_dropout: bool = False,
    ):
        if num_downs < 5:
            raise ValueError(f"num_downs must be >= 5, got {num_downs}")
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm_layer=norm_layer, innermost=True)
        # The extra levels at full width (ngf * 8) carry the dropout.
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(
                ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer, use_dropout=use_dropout
            )
        for outer in (ngf * 4, ngf * 2, ngf):
            block = UnetSkipConnectionBlock(outer, outer * 2, submodule=block, norm_layer=norm_layer)
        self.model = UnetSkipConnectionBlock(
            output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm_layer=norm_layer
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# --- PatchGAN discriminator ----------------------------------------------------------------


class NLayerDiscriminator(nn.Module):
    """The PatchGAN discriminator: ``n_layers`` stride-2 4x4 convolutions, one stride-1, and a
    1-channel output map (70x70 receptive field for ``n_layers=3``)."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm_layer: NormFactory = nn.BatchNorm2d):
        super().__init__()
        use_bias = _conv_bias_for(norm_layer)
        layers: list[nn.Module] = [
            nn.Conv2d(input_nc, ndf, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, kernel_size=4, stride=2, padding=1, bias=use_bias),
                norm_layer(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        # One stride-1 block, always present (also for n_layers=0, as in the reference).
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, kernel_size=4, stride=1, padding=1, bias=use_bias),
            norm_layer(ndf * mult),
            nn.LeakyReLU(0.2, True),
        ]
        layers.append(nn.Conv2d(ndf * mult, 1, kernel_size=4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
