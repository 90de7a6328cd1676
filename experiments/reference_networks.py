"""The reference pix2pix/CycleGAN generators, written apart from weightinit to check it against.

A user's ``models/networks.py`` is not weightinit's: this module rebuilds the reference
structure (junyanz/pytorch-CycleGAN-and-pix2pix, ``define_G``: class names, module order inside
every ``nn.Sequential``, the bias rule) without importing anything from weightinit, so that the
measurements and tests that use it find what a user's own copy would give.
"""

from __future__ import annotations

import functools

import torch
from torch import nn


def norm_layer(norm: str):
    if norm == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"norm {norm!r}")


class ResnetBlock(nn.Module):
    def __init__(self, dim, norm, use_dropout, use_bias):
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm(dim), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, ngf, norm, use_dropout, n_blocks, use_bias):
        super().__init__()
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=use_bias), norm(ngf), nn.ReLU(True)]
        for i in range(2):  # two downsamplings
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=use_bias),
                norm(ngf * mult * 2),
                nn.ReLU(True),
            ]
        layers += [ResnetBlock(ngf * 4, norm, use_dropout, use_bias) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(
                    ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=use_bias
                ),
                norm(ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class UnetSkipConnectionBlock(nn.Module):
    def __init__(
        self,
        outer_nc,
        inner_nc,
        input_nc=None,
        submodule=None,
        outermost=False,
        innermost=False,
        norm=None,
        use_dropout=False,
        use_bias=False,
    ):
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        down = [nn.LeakyReLU(0.2, True), nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=use_bias)]
        if outermost:
            down = down[1:]
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1), nn.Tanh()]
            layers = down + [submodule] + up
        elif innermost:
            up = [
                nn.ReLU(True),
                nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=use_bias),
                norm(outer_nc),
            ]
            layers = down + up
        else:
            down = down + [norm(inner_nc)]
            up = [
                nn.ReLU(True),
                nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=use_bias),
                norm(outer_nc),
            ]
            layers = down + [submodule] + up + ([nn.Dropout(0.5)] if use_dropout else [])
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf, norm, use_dropout, use_bias):
        super().__init__()
        kw = dict(norm=norm, use_bias=use_bias)
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, **kw)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout, **kw)
        for mult in (4, 2, 1):
            block = UnetSkipConnectionBlock(ngf * mult, ngf * mult * 2, submodule=block, **kw)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, **kw)

    def forward(self, x):
        return self.model(x)


def define_G(
    netG: str, ngf: int = 64, norm: str = "batch", no_dropout: bool = True, input_nc: int = 3, output_nc: int = 3
) -> nn.Module:
    """The network ``train.py --netG NETG --ngf NGF --norm NORM [--no_dropout]`` builds, with the
    reference's init (conv weights N(0, 0.02), batch-norm weights N(1, 0.02), biases 0)."""
    layer, use_dropout = norm_layer(norm), not no_dropout
    use_bias = norm == "instance"
    if netG in ("resnet_9blocks", "resnet_6blocks"):
        net = ResnetGenerator(input_nc, output_nc, ngf, layer, use_dropout, int(netG[7]), use_bias)
    elif netG in ("unet_128", "unet_256"):
        net = UnetGenerator(
            input_nc, output_nc, {"unet_128": 7, "unet_256": 8}[netG], ngf, layer, use_dropout, use_bias
        )
    else:
        raise ValueError(f"--netG {netG!r}")

    def init(m):
        name = type(m).__name__
        if hasattr(m, "weight") and ("Conv" in name or "Linear" in name):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif "BatchNorm2d" in name:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)

    net.apply(init)
    return net
