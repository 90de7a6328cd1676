"""Our pix2pix networks have exactly the reference code's state-dict keys and shapes.

Where the expectations come from: the functions ``reference_unet_keys`` and
``reference_resnet_keys`` below enumerate, by hand, what the reference implementation
(junyanz/pytorch-CycleGAN-and-pix2pix, ``models/networks.py``) registers:

* ``UnetGenerator`` nests ``UnetSkipConnectionBlock``s in ``.model``; each block's ``.model`` is
  an ``nn.Sequential``: outermost ``[downconv, submodule, relu, upconv(+bias), tanh]``, middle
  ``[leakyrelu, downconv, downnorm, submodule, relu, upconv, upnorm(, dropout)]``, innermost
  ``[leakyrelu, downconv, relu, upconv, upnorm]``. Channels: level 0 maps input_nc -> ngf,
  then ngf -> 2ngf -> 4ngf -> 8ngf, and every deeper level 8ngf -> 8ngf.
* ``ResnetGenerator.model`` is ``[pad, conv7, norm, relu, (conv3/2, norm, relu) x2,
  ResnetBlock x n, (convT3/2, norm, relu) x2, pad, conv7(+bias), tanh]``; a block's
  ``conv_block`` is ``[pad, conv3, norm, relu, pad, conv3, norm]`` with reflect padding.
* Batch norm: convs without bias; ``BatchNorm2d`` has weight, bias, running_mean, running_var,
  num_batches_tracked. Instance norm: ``affine=False, track_running_stats=False`` (nothing in
  the state dict) and convs with bias.

The parameter counts 54,413,955 (unet_256, batch) and 11,378,179 (resnet_9blocks, instance),
both ngf=64 and RGB, are the numbers the reference prints for those networks.
"""

from __future__ import annotations

import pytest
import torch

from weightinit.adapters.pix2pix_networks import (
    NLayerDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    get_norm_layer,
    init_normal_,
)

Keys = list[tuple[str, list[int]]]


def _norm_entries(prefix: str, channels: int, norm: str) -> Keys:
    if norm != "batch":
        return []
    return [
        (f"{prefix}.weight", [channels]),
        (f"{prefix}.bias", [channels]),
        (f"{prefix}.running_mean", [channels]),
        (f"{prefix}.running_var", [channels]),
        (f"{prefix}.num_batches_tracked", []),
    ]


def _conv_entries(prefix: str, shape: list[int], bias_channels: int, bias: bool) -> Keys:
    return [(f"{prefix}.weight", shape)] + ([(f"{prefix}.bias", [bias_channels])] if bias else [])


def reference_unet_keys(num_downs: int, ngf: int, norm: str, input_nc: int = 3, output_nc: int = 3) -> Keys:
    bias = norm == "instance"
    # (outer_nc, inner_nc) per level, outermost first.
    levels = [(output_nc, ngf), (ngf, 2 * ngf), (2 * ngf, 4 * ngf), (4 * ngf, 8 * ngf)]
    levels += [(8 * ngf, 8 * ngf)] * (num_downs - 4)

    def level(i: int, prefix: str) -> Keys:
        outer, inner = levels[i]
        if i == 0:
            return (
                _conv_entries(f"{prefix}.model.0", [inner, input_nc, 4, 4], inner, bias)
                + level(1, f"{prefix}.model.1")
                + _conv_entries(f"{prefix}.model.3", [inner * 2, outer, 4, 4], outer, True)
            )
        if i == num_downs - 1:
            return (
                _conv_entries(f"{prefix}.model.1", [inner, outer, 4, 4], inner, bias)
                + _conv_entries(f"{prefix}.model.3", [inner, outer, 4, 4], outer, bias)
                + _norm_entries(f"{prefix}.model.4", outer, norm)
            )
        return (
            _conv_entries(f"{prefix}.model.1", [inner, outer, 4, 4], inner, bias)
            + _norm_entries(f"{prefix}.model.2", inner, norm)
            + level(i + 1, f"{prefix}.model.3")
            + _conv_entries(f"{prefix}.model.5", [inner * 2, outer, 4, 4], outer, bias)
            + _norm_entries(f"{prefix}.model.6", outer, norm)
        )

    return level(0, "model")


def reference_resnet_keys(n_blocks: int, ngf: int, norm: str, input_nc: int = 3, output_nc: int = 3) -> Keys:
    bias = norm == "instance"
    keys = _conv_entries("model.1", [ngf, input_nc, 7, 7], ngf, bias) + _norm_entries("model.2", ngf, norm)
    keys += _conv_entries("model.4", [2 * ngf, ngf, 3, 3], 2 * ngf, bias) + _norm_entries("model.5", 2 * ngf, norm)
    keys += _conv_entries("model.7", [4 * ngf, 2 * ngf, 3, 3], 4 * ngf, bias) + _norm_entries("model.8", 4 * ngf, norm)
    for b in range(n_blocks):
        p = f"model.{10 + b}.conv_block"
        for conv, nrm in ((1, 2), (5, 6)):
            keys += _conv_entries(f"{p}.{conv}", [4 * ngf, 4 * ngf, 3, 3], 4 * ngf, bias)
            keys += _norm_entries(f"{p}.{nrm}", 4 * ngf, norm)
    up = 10 + n_blocks
    # ConvTranspose2d weights are [in, out, k, k].
    keys += _conv_entries(f"model.{up}", [4 * ngf, 2 * ngf, 3, 3], 2 * ngf, bias)
    keys += _norm_entries(f"model.{up + 1}", 2 * ngf, norm)
    keys += _conv_entries(f"model.{up + 3}", [2 * ngf, ngf, 3, 3], ngf, bias)
    keys += _norm_entries(f"model.{up + 4}", ngf, norm)
    keys += _conv_entries(f"model.{up + 7}", [output_nc, ngf, 7, 7], output_nc, True)
    return keys


def state_keys(net: torch.nn.Module) -> Keys:
    return [(k, list(v.shape)) for k, v in net.state_dict().items()]


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.fixture(scope="module")
def unet_256_batch() -> torch.nn.Module:
    # The only full-size U-Net built in this file (54M parameters).
    return UnetGenerator(3, 3, 8, 64, norm_layer=get_norm_layer("batch"))


def test_unet_256_batch_keys_shapes_and_count(unet_256_batch):
    assert state_keys(unet_256_batch) == reference_unet_keys(8, 64, "batch")
    assert n_params(unet_256_batch) == 54_413_955
    sd = unet_256_batch.state_dict()
    assert list(sd["model.model.0.weight"].shape) == [64, 3, 4, 4]
    assert "model.model.0.bias" not in sd
    assert list(sd["model.model.3.bias"].shape) == [3]
    innermost = "model.model.1" + ".model.3" * 6
    assert list(sd[f"{innermost}.model.1.weight"].shape) == [512, 512, 4, 4]


def test_unet_256_instance_keys_and_shapes():
    net = UnetGenerator(3, 3, 8, 8, norm_layer=get_norm_layer("instance"), use_dropout=True)
    assert state_keys(net) == reference_unet_keys(8, 8, "instance")
    assert list(net.state_dict()["model.model.0.bias"].shape) == [8]


def test_resnet_9blocks_instance_keys_shapes_and_count():
    net = ResnetGenerator(3, 3, 64, norm_layer=get_norm_layer("instance"), n_blocks=9)
    assert state_keys(net) == reference_resnet_keys(9, 64, "instance")
    assert n_params(net) == 11_378_179
    sd = net.state_dict()
    assert list(sd["model.1.weight"].shape) == [64, 3, 7, 7]
    assert list(sd["model.19.weight"].shape) == [256, 128, 3, 3]
    assert list(sd["model.26.bias"].shape) == [3]


def test_resnet_9blocks_batch_keys_and_shapes():
    net = ResnetGenerator(3, 3, 8, norm_layer=get_norm_layer("batch"), n_blocks=9)
    assert state_keys(net) == reference_resnet_keys(9, 8, "batch")


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_other_depths_and_channels_follow_the_reference(norm):
    unet = UnetGenerator(1, 2, 6, 4, norm_layer=get_norm_layer(norm))
    resnet = ResnetGenerator(1, 2, 4, norm_layer=get_norm_layer(norm), n_blocks=6)
    if norm == "none":
        # The reference gives convs a bias only for instance norm; "none" leaves identities.
        assert [k for k, _ in state_keys(unet) if k.endswith("bias")] == ["model.model.3.bias"]
        assert [k for k, _ in state_keys(resnet) if k.endswith("bias")] == ["model.23.bias"]
    else:
        assert state_keys(unet) == reference_unet_keys(6, 4, norm, 1, 2)
        assert state_keys(resnet) == reference_resnet_keys(6, 4, norm, 1, 2)


def test_dropout_and_padding_shift_resnet_block_keys():
    net = ResnetGenerator(
        3, 3, 4, norm_layer=get_norm_layer("batch"), use_dropout=True, n_blocks=1, padding_type="zero"
    )
    block_keys = [k for k, _ in state_keys(net) if k.startswith("model.10.") and k.endswith("weight")]
    # zero padding: no pad modules; dropout after the first ReLU.
    assert block_keys == [
        "model.10.conv_block.0.weight",
        "model.10.conv_block.1.weight",
        "model.10.conv_block.4.weight",
        "model.10.conv_block.5.weight",
    ]


def test_patchgan_discriminator_matches_the_reference():
    net = NLayerDiscriminator(6, 64, 3, norm_layer=get_norm_layer("batch"))
    weights = [(k, s) for k, s in state_keys(net) if k.endswith("weight")]
    assert weights == [
        ("model.0.weight", [64, 6, 4, 4]),
        ("model.2.weight", [128, 64, 4, 4]),
        ("model.3.weight", [128]),
        ("model.5.weight", [256, 128, 4, 4]),
        ("model.6.weight", [256]),
        ("model.8.weight", [512, 256, 4, 4]),
        ("model.9.weight", [512]),
        ("model.11.weight", [1, 512, 4, 4]),
    ]
    assert n_params(net) == 2_768_705


def test_small_networks_run_and_keep_the_image_size():
    x = torch.randn(1, 3, 64, 64)
    assert UnetGenerator(3, 3, 6, 4, norm_layer=get_norm_layer("batch"), use_dropout=True)(x).shape == x.shape
    assert ResnetGenerator(3, 3, 4, norm_layer=get_norm_layer("instance"), n_blocks=1)(x).shape == x.shape
    assert NLayerDiscriminator(3, 4)(x).shape == (1, 1, 6, 6)


def test_init_normal_matches_the_reference_init():
    torch.manual_seed(0)
    net = init_normal_(ResnetGenerator(3, 3, 8, norm_layer=get_norm_layer("batch"), n_blocks=2))
    convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert abs(weights.mean().item()) < 0.005 and abs(weights.std().item() - 0.02) < 0.002
    assert all(m.bias is None or not m.bias.any() for m in convs)
    gammas = torch.cat([m.weight for m in norms])
    assert abs(gammas.mean().item() - 1.0) < 0.01 and abs(gammas.std().item() - 0.02) < 0.01
    assert not torch.cat([m.bias for m in norms]).any()


def test_unknown_norm_is_refused():
    with pytest.raises(ValueError, match="batch"):
        get_norm_layer("layer")
