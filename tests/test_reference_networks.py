"""The one line on networks that the reference pytorch-CycleGAN-and-pix2pix code builds from its flags.

For every installed generator that states reference flags, an independent copy of the reference
``define_G`` builds the network from those flags alone, and ``initialize`` (no generator named)
must find that generator and change the network's output.
"""

from __future__ import annotations

import pytest
import torch
from test_generators import reference_define_G

from weightinit import initialize
from weightinit.generators import installed_generators

SERVED = [g for g in installed_generators() if g.flags is not None]


def test_the_package_installs_a_generator_for_a_reference_unet_or_resnet():
    assert {g.flags.netG.split("_")[0] for g in SERVED} & {"unet", "resnet"}, (
        "no installed generator serves the reference code's flags (make setup installs generators/*)"
    )


@pytest.mark.parametrize("info", SERVED, ids=[g.name for g in SERVED])
def test_initialize_finds_the_generator_for_a_network_built_from_its_reference_flags(info):
    f = info.flags
    torch.manual_seed(0)
    net = reference_define_G(f.netG, f.ngf, f.norm, f.no_dropout, f.input_nc, f.output_nc)
    # the reference's own init: N(0, 0.02) convolutions, N(1, 0.02) norm scales
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            torch.nn.init.normal_(m.weight, 0.0, 0.02)
    size = 64 if f.netG.startswith("resnet") else f.crop_size  # a ResNet serves any size
    x = torch.rand(2, f.input_nc, size, size) * 2 - 1
    net.eval()
    with torch.no_grad():
        before = net(x)
    report = initialize(net, "photo to sepia")
    with torch.no_grad():
        after = net(x)
    assert report.generator == f"generator {info.name}" and report.parameters_set > 0
    assert after.shape == before.shape and not torch.allclose(after, before)


def test_the_cyclegan_default_is_served_by_the_installed_resnet_generator_widened():
    from weightinit.generators import pick_for_arch

    installed = {g.name for g in installed_generators()}
    if "resnet9" not in installed:
        pytest.skip("the resnet9 generator package is not installed (make setup installs it)")
    for arch in ("cyclegan:resnet_9blocks", "pix2pix:resnet_9blocks,ngf=64,norm=instance"):
        info, plan = pick_for_arch(arch)
        assert info.name == "resnet9" and plan.describe() == "widened from ngf 8 to 64" and plan.exact
