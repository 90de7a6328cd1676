"""Carrying a generator's network to wider and deeper ones: exact where promised, refused with one line."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from weightinit import plugins
from weightinit.errors import LayoutMismatch
from weightinit.representation import LORA_A, LORA_B, full_weights
from weightinit.running_stats import fit_running_statistics
from weightinit.transfer import (
    add_widen_noise,
    canonical_buffer_names,
    canonical_shapes,
    carry,
    carry_factors,
    channel_index,
)

UNET_BATCH = "pix2pix:unet_64,ngf=4,norm=batch"
RESNET_INSTANCE = "pix2pix:resnet_6blocks,ngf=4,norm=instance"


def _random_source(arch: str, seed: int = 0) -> nn.Module:
    """A source network with non-trivial weights and running statistics."""
    torch.manual_seed(seed)
    model = plugins.build_model(arch)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.normal_(0, 0.1)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 1.5)
    return model


def _carried(source: nn.Module, source_arch: str, target_arch: str, *, noise: float, factors=None):
    """The target network holding ``source`` carried (full weights, or base + LoRA factors merged)."""
    adapter = plugins.adapter_for_arch(source_arch)
    plan = adapter.transfer(source_arch, target_arch)
    target = plugins.build_model(target_arch)
    s_shapes, _ = canonical_shapes(source, adapter)
    t_shapes, t_buffers = canonical_shapes(target, adapter)
    weights = carry(plan.parameters, adapter.to_canonical(source, source.state_dict()), t_shapes)
    add_widen_noise(plan.parameters, weights, s_shapes, noise, torch.Generator().manual_seed(0))
    if factors is not None:
        weights = full_weights(carry_factors(plan.parameters, factors, s_shapes, t_shapes), weights)
    names = canonical_buffer_names(source, adapter)
    buffers = carry(plan.buffers, {names[k]: v for k, v in source.state_dict().items() if k in names}, t_buffers)
    native = {c: n for n, c in canonical_buffer_names(target, adapter).items()}
    target.load_state_dict({**adapter.from_canonical(target, weights), **{native[c]: v for c, v in buffers.items()}})
    return target, plan


def _max_difference(a: nn.Module, b: nn.Module, x: torch.Tensor, train: bool) -> float:
    a.train(train)
    b.train(train)
    with torch.no_grad():
        return float((a(x) - b(x)).abs().max())


def test_channel_index_copies_in_order_and_wraps_round_for_odd_widths():
    assert channel_index(3, 5).tolist() == [0, 1, 2, 0, 1]
    assert channel_index(4, 4).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="cannot widen"):
        channel_index(4, 3)


@pytest.mark.parametrize("noise", [0.0, 0.1])
@pytest.mark.parametrize(
    "source_arch, target_arch",
    [
        (UNET_BATCH, "pix2pix:unet_64,ngf=8,norm=batch"),
        (UNET_BATCH, "pix2pix:unet_64,ngf=6,norm=batch"),  # odd multiple: replica groups of 1 and 2
        (RESNET_INSTANCE, "pix2pix:resnet_6blocks,ngf=10,norm=instance"),
        (RESNET_INSTANCE, "pix2pix:resnet_9blocks,ngf=8,norm=instance"),  # wider and deeper (identity blocks)
        ("pix2pix:resnet_6blocks,ngf=4,norm=batch", "pix2pix:resnet_9blocks,ngf=4,norm=batch"),
    ],
)
def test_widening_keeps_the_function_in_eval_and_train_mode_at_any_noise(source_arch, target_arch, noise):
    source = _random_source(source_arch)
    target, plan = _carried(source, source_arch, target_arch, noise=noise)
    assert plan.exact and plan.steps
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    for train in (False, True):
        assert _max_difference(source, target, x, train) < 1e-4


@pytest.mark.parametrize(
    "source_arch, target_arch",
    [
        (UNET_BATCH, "pix2pix:unet_64,ngf=8,norm=batch"),
        (RESNET_INSTANCE, "pix2pix:resnet_6blocks,ngf=6,norm=instance"),
    ],
)
def test_lora_factors_carry_so_that_b_times_a_is_the_carried_delta(source_arch, target_arch):
    source = _random_source(source_arch)
    adapter = plugins.adapter_for_arch(source_arch)
    torch.manual_seed(1)
    factors = {}
    for target in adapter.lora_targets(source):
        weight = source.get_submodule(target).weight
        name = adapter.native_to_canonical(source)[f"{target}.weight"]
        factors[name + LORA_A] = torch.randn(2, weight[0].numel()) * 0.1
        factors[name + LORA_B] = torch.randn(weight.shape[0], 2) * 0.1
    merged = plugins.build_model(source_arch)
    weights = full_weights(factors, adapter.to_canonical(source, source.state_dict()))
    merged.load_state_dict({**source.state_dict(), **adapter.from_canonical(merged, weights)})
    target, _ = _carried(source, source_arch, target_arch, noise=0.0, factors=factors)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    for train in (False, True):
        assert _max_difference(merged, target, x, train) < 1e-4


def _replicas_equal(model: nn.Module) -> bool:
    """Whether the U-Net's first convolution's copied output channels (ngf 4 -> 8) are still equal."""
    weight = model.get_submodule("model.model.0").weight
    return torch.equal(weight[:4], weight[4:])


@pytest.mark.parametrize("noise, diverge", [(0.0, False), (0.1, True)])
def test_exact_copies_never_diverge_and_the_noise_breaks_the_tie(noise, diverge):
    source = _random_source(UNET_BATCH)
    target, _ = _carried(source, UNET_BATCH, "pix2pix:unet_64,ngf=8,norm=batch", noise=noise)
    assert _replicas_equal(target)
    optimizer = torch.optim.Adam(target.parameters(), lr=1e-2)
    torch.manual_seed(0)
    for _ in range(3):
        x, y = torch.rand(1, 3, 64, 64) * 2 - 1, torch.rand(1, 3, 64, 64) * 2 - 1
        optimizer.zero_grad()
        (target(x) - y).abs().mean().backward()
        optimizer.step()
    assert _replicas_equal(target) is not diverge


def test_deepening_a_unet_repeats_a_full_width_level_and_says_so():
    adapter = plugins.get_adapter("pix2pix")
    plan = adapter.transfer("pix2pix:unet_128,ngf=4,norm=batch", "pix2pix:unet_256,ngf=8,norm=batch")
    assert not plan.exact
    assert plan.describe() == "widened from ngf 4 to 8; deepened from 7 to 8 U-Net levels (level 4 repeated)"
    assert plan.parameters["unet.d5.down_conv.weight"].source == "unet.d4.down_conv.weight"
    assert plan.parameters["unet.d7.up_conv.weight"].source == "unet.d6.up_conv.weight"  # innermost stays innermost
    shallower = adapter.transfer("pix2pix:unet_128,ngf=4,norm=batch", "pix2pix:unet_64,ngf=4,norm=batch")
    assert "shallowed from 7 to 6" in shallower.describe()


def test_instance_to_batch_norm_is_exact_in_train_mode_at_batch_size_one():
    source = _random_source(RESNET_INSTANCE)
    target, plan = _carried(source, RESNET_INSTANCE, "pix2pix:resnet_6blocks,ngf=8,norm=batch", noise=0.0)
    assert not plan.exact and "norm instance -> batch" in plan.describe()
    assert _max_difference(source, target, torch.rand(1, 3, 64, 64) * 2 - 1, train=True) < 1e-4


@pytest.mark.parametrize(
    "target, why",
    [
        ("pix2pix:unet_64,ngf=2,norm=batch", "narrowing is not done"),
        ("pix2pix:unet_64,ngf=8,norm=batch,input_nc=1", "input_nc 1 is not 3"),
        ("pix2pix:unet_64,ngf=8,norm=none", "norm batch does not carry to norm none"),
        ("pix2pix:resnet_6blocks,ngf=8,norm=batch", "a unet network does not carry to a resnet one"),
    ],
)
def test_what_no_transfer_serves_is_refused_with_the_reason(target, why):
    with pytest.raises(LayoutMismatch, match=why):
        plugins.get_adapter("pix2pix").transfer(UNET_BATCH, target)


NETGS = ("unet_128", "unet_256", "resnet_6blocks", "resnet_9blocks")


@pytest.mark.parametrize("netg", NETGS)
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_the_arch_of_a_network_is_read_back_from_its_keys_and_shapes(netg, norm):
    adapter = plugins.get_adapter("pix2pix")
    for options in (f"ngf=24,norm={norm}", f"ngf=8,norm={norm},dropout=true", f"ngf=8,norm={norm},input_nc=1"):
        arch = f"pix2pix:{netg},{options}"
        with torch.device("meta"):
            model = plugins.build_model(arch)
        assert adapter.arch_of(model) == arch
        if "dropout" in arch and netg.startswith("unet"):  # a U-Net's dropout shifts no key
            assert adapter.arch_of_state_dict(model.state_dict()) == arch.replace(",dropout=true", "")
    with torch.device("meta"):
        zero = plugins.build_model(f"pix2pix:resnet_6blocks,ngf=8,norm={norm},padding=zero")
    assert adapter.arch_of_state_dict(zero.state_dict()) == f"pix2pix:resnet_6blocks,ngf=8,norm={norm},padding=zero"


def test_running_statistics_are_the_average_of_each_images_batch_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5))
    images = torch.randn(3, 3, 8, 8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    new_weight = torch.randn(4, 3, 3, 3)
    buffers, fit = fit_running_statistics(model, {"0.weight": new_weight}, dict(model.named_buffers()), images)
    assert fit.norms == 1 and fit.images == 3 and fit.size == 8
    features = torch.nn.functional.conv2d(images, new_weight, model[0].bias)
    means = features.mean(dim=(2, 3)).mean(0)
    variances = features.var(dim=(2, 3), unbiased=True).mean(0)
    assert torch.allclose(buffers["1.running_mean"], means, atol=1e-5)
    assert torch.allclose(buffers["1.running_var"], variances, atol=1e-5)
    assert int(buffers["1.num_batches_tracked"]) == 3
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the model's own: untouched
    assert model.training and model[1].momentum == 0.1
