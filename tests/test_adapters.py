"""The built-in adapters: recognition, canonical names, wrappers, arch strings, conformance.

Every model here is tiny (ngf 4-8); the full-size networks are pinned in
test_pix2pix_networks.py.
"""

from __future__ import annotations

import inspect
import types

import pluggy
import pytest
import torch
from torch import nn

from weightinit import hookspecs
from weightinit.adapters import cyclegan, generic, pix2pix, pix2pix_networks
from weightinit.adapters.base import Adapter, ArchSpec
from weightinit.adapters.cyclegan import CycleGANAdapter, CycleGANPair
from weightinit.adapters.generic import GenericAdapter
from weightinit.adapters.pix2pix import Pix2PixAdapter
from weightinit.errors import AdapterError
from weightinit.testing import DistributedDataParallel, adapter_conformance_cases, check_adapter

P2P, CYC, GEN = Pix2PixAdapter(), CycleGANAdapter(), GenericAdapter()


def build(arch: str) -> nn.Module:
    spec = ArchSpec.parse(arch)
    return {"pix2pix": P2P, "cyclegan": CYC}[spec.adapter].build(spec)


@pytest.fixture(scope="module")
def user_networks() -> types.ModuleType:
    """A user's own copy of the network code: same source, different class objects."""
    module = types.ModuleType("user_networks")
    exec(compile(inspect.getsource(pix2pix_networks), "user_networks.py", "exec"), module.__dict__)
    assert module.UnetGenerator is not pix2pix_networks.UnetGenerator
    return module


# --- recognition ---------------------------------------------------------------------------


def test_a_users_copy_of_the_networks_is_recognised(user_networks):
    norm = user_networks.get_norm_layer("batch")
    theirs = user_networks.UnetGenerator(3, 3, 6, 4, norm_layer=norm, use_dropout=True)
    ours = build("pix2pix:unet_64,ngf=4")
    assert P2P.matches(theirs)
    assert P2P.layout(theirs) == P2P.layout(ours)
    theirs = user_networks.ResnetGenerator(3, 3, 4, norm_layer=user_networks.get_norm_layer("instance"), n_blocks=6)
    assert P2P.layout(theirs) == P2P.layout(build("pix2pix:resnet_6blocks,ngf=4,norm=instance"))


def test_other_models_are_not_pix2pix_generators():
    class UnetGenerator(nn.Module):  # the right name, the wrong structure
        def __init__(self):
            super().__init__()
            self.model = nn.Sequential(nn.Conv2d(3, 3, 1))

    renamed = type("MyUnet", (nn.Module,), {})()
    renamed.model = build("pix2pix:unet_64,ngf=4").model
    extra = build("pix2pix:resnet_6blocks,ngf=4")
    extra.model.append(nn.Conv2d(3, 3, 1))  # a layer after the output convolution
    for model in (UnetGenerator(), renamed, extra, nn.Linear(2, 2)):
        assert not P2P.matches(model)
        assert not CYC.matches(model)
    with pytest.raises(AdapterError, match="pix2pix"):
        P2P.canonical_names(extra)


def test_hooks_pick_the_specific_adapter_first_and_generic_last():
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for module in (generic, pix2pix, cyclegan):  # registration order must not matter
        pm.register(module)
    registered = []
    pm.hook.register_adapters(register=registered.append)
    assert sorted(cls.name for cls in registered) == ["cyclegan", "generic", "pix2pix"]
    assert all(isinstance(cls, type) for cls in registered)
    assert pm.hook.adapter_for_model(model=build("pix2pix:unet_64,ngf=4")).name == "pix2pix"
    assert pm.hook.adapter_for_model(model=build("cyclegan:unet_64,ngf=4")).name == "cyclegan"
    assert pm.hook.adapter_for_model(model=nn.Linear(2, 2)).name == "generic"


# --- capabilities ----------------------------------------------------------------------------
def test_capabilities_say_what_generic_code_used_to_read_from_names():
    from weightinit import plugins

    assert plugins.image_size_of("pix2pix:unet_64,ngf=4") == 64 and plugins.image_size_of("cyclegan:unet_128") == 128
    assert plugins.image_size_of("pix2pix:resnet_9blocks") is None  # fully convolutional: not 9
    assert isinstance(plugins.adapter_for_arch("cyclegan:unet_64"), CycleGANAdapter)
    model = build("pix2pix:unet_64,ngf=4")
    assert (
        P2P.directions is None
        and GEN.directions is None
        and CYC.directions(model) == [("G_A", "netG_A"), ("G_B", "netG_B")]
    )
    assert (
        P2P.arch_note(ArchSpec.parse("pix2pix:resnet_6blocks"))
        and P2P.arch_note(ArchSpec.parse("pix2pix:unet_64")) is None
    )
    assert CYC.arch_note(ArchSpec.parse("cyclegan:resnet_6blocks")) is None


@pytest.mark.parametrize("arch", ["pix2pix:unet_64,ngf=4", "cyclegan:resnet_6blocks,ngf=4"])
def test_reset_parameters_is_the_reference_init(arch):
    torch.manual_seed(1)
    model, expected = build(arch), build(arch)
    torch.manual_seed(2)
    pix2pix_networks.init_normal_(expected)
    torch.manual_seed(2)
    adapter = CYC if arch.startswith("cyclegan") else P2P
    adapter.reset_parameters(DistributedDataParallel(model))  # through a wrapper too
    got, want = model.state_dict(), expected.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_the_generic_reset_is_each_module_s_own():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(7.0)
    GEN.reset_parameters(model)
    assert not torch.any(model[0].weight == 7.0) and torch.equal(model[1].weight, torch.ones(4))


# --- canonical names -----------------------------------------------------------------------


def test_unet_canonical_names_are_structural():
    names = [c for _, c in P2P.canonical_names(build("pix2pix:unet_64,ngf=4"))]
    assert names[:3] == ["unet.d0.down_conv.weight", "unet.d1.down_conv.weight", "unet.d1.down_norm.weight"]
    assert names[-3:] == ["unet.d1.up_norm.bias", "unet.d0.up_conv.weight", "unet.d0.up_conv.bias"]
    # data-flow order: all downs (level 0 .. 5), then all ups (level 5 .. 0)
    levels = [(n.split(".")[2].split("_")[0], int(n.split(".")[1][1:])) for n in names]
    downs = [lvl for kind, lvl in levels if kind == "down"]
    ups = [lvl for kind, lvl in levels if kind == "up"]
    assert levels == [("down", lvl) for lvl in downs] + [("up", lvl) for lvl in ups]
    assert downs == sorted(downs) and ups == sorted(ups, reverse=True) and max(downs) == 5


def test_resnet_canonical_names_are_structural():
    names = [c for _, c in P2P.canonical_names(build("pix2pix:resnet_6blocks,ngf=4"))]
    assert names[:4] == ["stem.conv.weight", "stem.norm.weight", "stem.norm.bias", "down0.conv.weight"]
    assert "res5.conv2.weight" in names and "res5.norm2.bias" in names and "res6.conv1.weight" not in names
    assert names[-5:] == ["up1.conv.weight", "up1.norm.weight", "up1.norm.bias", "head.conv.weight", "head.conv.bias"]


@pytest.mark.parametrize(
    ("base", "variants"),
    [
        ("pix2pix:resnet_6blocks,ngf=4", [",dropout=true", ",padding=zero", ",padding=replicate,dropout=true"]),
        ("pix2pix:unet_64,ngf=4", [",dropout=true"]),
        ("pix2pix:resnet_6blocks,ngf=4,norm=instance", [",dropout=true,padding=zero"]),
    ],
)
def test_canonical_names_do_not_depend_on_dropout_or_padding(base, variants):
    reference = P2P.layout(build(base))
    reference_keys = [n for n, _ in P2P.canonical_names(build(base))]
    for variant in variants:
        model = build(base + variant)
        assert P2P.layout(model) == reference, variant
        if "resnet" in base:  # the native keys do shift: that is why canonical names exist
            assert [n for n, _ in P2P.canonical_names(model)] != reference_keys, variant


def test_no_buffers_are_generated():
    model = build("pix2pix:unet_64,ngf=4,norm=batch")
    natives = {n for n, _ in P2P.canonical_names(model)}
    assert natives == {n for n, _ in model.named_parameters()}
    assert not natives & {n for n, _ in model.named_buffers()}


def test_wrappers_are_stripped():
    model = build("pix2pix:unet_64,ngf=4")
    state = model.state_dict()
    expected = P2P.to_canonical(model, state)
    wrappers = (DistributedDataParallel(model), torch.compile(model), DistributedDataParallel(torch.compile(model)))
    for wrapped in wrappers:
        assert P2P.layout(wrapped) == P2P.layout(model)
        assert P2P.native_to_canonical(wrapped) == P2P.native_to_canonical(model)
        got = P2P.to_canonical(wrapped, wrapped.state_dict())
        assert list(got) == list(expected) and all(torch.equal(got[k], expected[k]) for k in got)


# --- CycleGAN ------------------------------------------------------------------------------


def test_cyclegan_pair_names_g_a_then_g_b():
    pair = build("cyclegan:resnet_6blocks,ngf=4")
    assert isinstance(pair, CycleGANPair) and CYC.matches(pair) and not P2P.matches(pair)
    pairs = CYC.canonical_names(pair)
    half = len(pairs) // 2
    single = [c for _, c in P2P.canonical_names(pair.netG_A)]
    assert [c for _, c in pairs[:half]] == [f"G_A.{c}" for c in single]
    assert [c for _, c in pairs[half:]] == [f"G_B.{c}" for c in single]
    assert pairs[0][0].startswith("netG_A.") and pairs[-1][0].startswith("netG_B.")
    assert CYC.directions(pair) == [("G_A", "netG_A"), ("G_B", "netG_B")]
    # CycleGAN's reference default is instance norm: no norm parameters
    assert not any(".norm" in c for _, c in pairs)


def test_any_module_with_two_generators_is_a_cyclegan_pair(user_networks):
    class CycleGANModel(nn.Module):  # e.g. a user's training wrapper with wrapped generators
        def __init__(self):
            super().__init__()
            norm = user_networks.get_norm_layer("instance")
            self.netG_A = DistributedDataParallel(user_networks.UnetGenerator(3, 3, 6, 4, norm_layer=norm))
            self.netG_B = torch.compile(user_networks.UnetGenerator(3, 3, 6, 4, norm_layer=norm))
            self.netD_A = nn.Conv2d(3, 1, 4)

    model = CycleGANModel()
    pairs = CYC.canonical_names(model)
    assert pairs[0] == ("netG_A.module.model.model.0.weight", "G_A.unet.d0.down_conv.weight")
    assert pairs[-1] == ("netG_B._orig_mod.model.model.3.bias", "G_B.unet.d0.up_conv.bias")
    assert not any(n.startswith("netD") for n, _ in pairs)
    tensors = CYC.to_canonical(model, DistributedDataParallel(model).state_dict())
    assert torch.equal(tensors["G_A.unet.d0.down_conv.weight"], model.netG_A.module.model.model[0].weight)


def test_incomplete_or_shared_pairs_are_not_cyclegan():
    g = build("pix2pix:unet_64,ngf=4")
    one = nn.Module()
    one.netG_A = g
    with pytest.raises(AdapterError, match="got the same network twice"):
        CycleGANPair(g, g)
    shared = nn.Module()  # a user's own pair class holding one network twice
    shared.netG_A = shared.netG_B = g
    plain = types.SimpleNamespace(netG_A=g, netG_B=build("pix2pix:unet_64,ngf=4"))
    for model in (one, shared, plain):
        assert not CYC.matches(model)
    with pytest.raises(AdapterError, match="netG_A"):
        CYC.canonical_names(one)


# --- generic -------------------------------------------------------------------------------


def test_generic_takes_every_floating_parameter_in_order():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    model.register_parameter("step", nn.Parameter(torch.zeros(1, dtype=torch.long), requires_grad=False))
    model.inner = DistributedDataParallel(torch.compile(nn.Linear(3, 1)))
    assert GEN.matches(model) and GEN.matches(build("pix2pix:unet_64,ngf=4"))
    assert GEN.canonical_names(model) == [
        ("0.weight", "0.weight"),
        ("0.bias", "0.bias"),
        ("1.weight", "1.weight"),
        ("1.bias", "1.bias"),
        ("inner.module._orig_mod.weight", "inner.weight"),
        ("inner.module._orig_mod.bias", "inner.bias"),
    ]
    assert GEN.layout(DistributedDataParallel(model)) == GEN.layout(model)
    with pytest.raises(AdapterError, match="generic"):
        GEN.build(ArchSpec.parse("generic:anything"))
    assert GEN.arch_names() == []


# --- arch strings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ("pix2pix:unet_512", "unet_256, unet_128, unet_64, resnet_9blocks, resnet_6blocks"),
        ("pix2pix:unet_64,width=8", "valid options: ngf, norm, dropout, padding, input_nc, output_nc"),
        ("pix2pix:unet_64,norm=layer", "batch, instance, none"),
        ("pix2pix:resnet_6blocks,padding=circular", "reflect, replicate, zero"),
        ("pix2pix:unet_64,dropout=maybe", "true, false"),
        ("pix2pix:unet_64,ngf=0", "positive integer"),
        ("pix2pix:unet_64,input_nc=x", "positive integer"),
        ("pix2pix:unet_64,padding=zero", "only to resnet"),
        ("cyclegan:resnet_7blocks", "resnet_9blocks"),
        ("cyclegan:unet_64,norm=group", "batch, instance, none"),
    ],
)
def test_bad_arch_strings_list_the_choices(arch, message):
    with pytest.raises(AdapterError, match=message):
        build(arch)


def test_arch_for_another_adapter_is_refused():
    with pytest.raises(AdapterError, match="cyclegan"):
        P2P.build(ArchSpec.parse("cyclegan:unet_64"))


def test_options_and_defaults():
    expected = ["unet_256", "unet_128", "unet_64", "resnet_9blocks", "resnet_6blocks"]
    assert P2P.arch_names() == CYC.arch_names() == expected
    p2p = P2P.options(ArchSpec.parse("pix2pix:unet_64"))
    assert (p2p.ngf, p2p.norm, p2p.dropout, p2p.input_nc, p2p.output_nc) == (64, "batch", False, 3, 3)
    assert CYC.options(ArchSpec.parse("cyclegan:resnet_9blocks")).norm == "instance"
    opts = P2P.options(ArchSpec.parse("pix2pix:resnet_6blocks,ngf=8,norm=none,dropout=TRUE,padding=zero,input_nc=1"))
    assert (opts.ngf, opts.norm, opts.dropout, opts.padding, opts.input_nc) == (8, "none", True, "zero", 1)
    model = build("pix2pix:unet_64,ngf=4,input_nc=1,output_nc=2")
    assert model(torch.randn(1, 1, 64, 64)).shape == (1, 2, 64, 64)
    assert pix2pix.build_discriminator(ndf=4)(torch.randn(1, 6, 64, 64)).shape == (1, 1, 6, 6)
    with pytest.raises(AdapterError, match="batch, instance, none"):
        pix2pix.build_discriminator(norm="group")


# --- conformance suite ---------------------------------------------------------------------

CONFORMANCE_ARCHS = [
    "pix2pix:unet_64,ngf=8",
    "pix2pix:unet_128,ngf=4,norm=instance,dropout=true",
    "pix2pix:resnet_6blocks,ngf=8",
    "pix2pix:resnet_6blocks,ngf=4,norm=none,padding=zero",
    "cyclegan:resnet_6blocks,ngf=4",
    "cyclegan:unet_64,ngf=4,norm=batch",
]


@pytest.mark.parametrize("case", adapter_conformance_cases(CONFORMANCE_ARCHS, [P2P, CYC]))
def test_builtin_adapters_conform(case):
    layout = case.check()
    assert len(layout) > 0


def test_generic_adapter_conforms():
    check_adapter(GEN, lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 3, 1)))


def test_conformance_suite_catches_a_broken_adapter():
    class BufferAdapter(GenericAdapter):
        name = "broken"

        def canonical_names(self, model):
            return super().canonical_names(model) + [("1.running_mean", "1.running_mean")]

    with pytest.raises(AssertionError, match="buffers"):
        check_adapter(BufferAdapter(), lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))

    class UnstableAdapter(GenericAdapter):
        name = "unstable"
        calls = 0

        def canonical_names(self, model):
            UnstableAdapter.calls += 1
            return [(n, f"{c}.{UnstableAdapter.calls}") for n, c in super().canonical_names(model)]

    with pytest.raises(AssertionError, match="unstable"):
        check_adapter(UnstableAdapter(), lambda: nn.Linear(2, 2))


# --- what adapters declare for the recipe and the reference flags (issue 30 part 3) ---------


def test_adapter_declares_reference_flags_discriminator_and_options_with_defaults():
    for name in ("reference_flags", "discriminator", "arch_options"):
        assert callable(getattr(Adapter, name, None)), f"Adapter does not declare {name}"
    flags, note = GEN.reference_flags(ArchSpec.parse("generic:anything"))
    assert flags is None and "does not build the reference" in note
    assert GEN.arch_options(ArchSpec.parse("generic:anything")) is None
    assert P2P.arch_options(ArchSpec.parse("pix2pix:unet_64,ngf=8"))["ngf"] == 8
    assert CYC.arch_options(ArchSpec.parse("cyclegan:resnet_6blocks"))["norm"] == "instance"
    # the default: pix2pix's PatchGAN on 3 + 3 channels
    net_d = GEN.discriminator(nn.Conv2d(3, 3, 1), ndf=4, n_layers=1)
    assert net_d(torch.randn(1, 6, 32, 32)).dim() == 4


def _old_recipe_discriminator(config, in_channels=6):
    """What recipe.build_discriminator built for every architecture before adapters owned it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed + 1)
        net = pix2pix_networks.NLayerDiscriminator(
            in_channels, config.ndf, config.n_layers_d, norm_layer=pix2pix_networks.get_norm_layer("batch")
        )
        pix2pix_networks.init_normal_(net)
    return net


@pytest.mark.parametrize(
    "arch", ["pix2pix:unet_64,ngf=4", "pix2pix:resnet_6blocks,ngf=4,norm=instance", "generic-conv"]
)
def test_the_recipe_s_discriminator_is_bit_for_bit_what_it_was(arch):
    from weightinit.recipe import RecipeConfig, build_discriminator

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 3, 1)) if arch == "generic-conv" else build(arch)
    config = RecipeConfig(ndf=8, n_layers_d=2, seed=5)
    rng = torch.get_rng_state()
    new = build_discriminator(config, model)
    assert torch.equal(torch.get_rng_state(), rng)  # the caller's random stream is untouched
    old = _old_recipe_discriminator(config)
    assert new.state_dict().keys() == old.state_dict().keys()
    assert all(torch.equal(v, old.state_dict()[k]) for k, v in new.state_dict().items())


def test_pix2pix_s_discriminator_sees_the_network_s_own_channels():
    model = build("pix2pix:unet_64,ngf=4,input_nc=1,output_nc=2")
    assert pix2pix.image_channels(model) == (1, 2)
    assert pix2pix.image_channels(build("pix2pix:resnet_6blocks,ngf=4,output_nc=1")) == (3, 1)
    net_d = P2P.discriminator(model, ndf=4, n_layers=1)
    x = torch.randn(2, 1, 64, 64)
    assert net_d(torch.cat([x, model(x)], 1)).dim() == 4


def test_a_plugin_brings_its_own_discriminator_to_the_recipe():
    from weightinit.recipe import Pix2PixTrainer, RecipeConfig

    class Critic(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(6, 1, 3, padding=1)

        def forward(self, x):
            return self.conv(x)

    class OwnRecipeAdapter(GenericAdapter):
        name = "own-recipe"

        def discriminator(self, model, *, ndf, n_layers):
            return Critic()

    model = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1))
    trainer = Pix2PixTrainer(model, RecipeConfig(batch_size=2), adapter=OwnRecipeAdapter())
    assert isinstance(trainer.net_d, Critic)
    losses = trainer.step(torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16))
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())


def test_conformance_suite_checks_reference_flags_and_the_discriminator():
    arch = "pix2pix:unet_64,ngf=4"

    class NoReason(Pix2PixAdapter):
        def reference_flags(self, spec, image_size=None):
            return None, ""

    with pytest.raises(AssertionError, match="no flags and no reason"):
        check_adapter(NoReason(), lambda: build(arch), arch=arch)

    class SharedDiscriminator(Pix2PixAdapter):
        def discriminator(self, model, *, ndf, n_layers):
            return model  # a generator is not its own discriminator

    with pytest.raises(AssertionError, match="shares parameters"):
        check_adapter(SharedDiscriminator(), lambda: build(arch), arch=arch)

    class WrongChannels(Pix2PixAdapter):
        def discriminator(self, model, *, ndf, n_layers):
            return pix2pix.build_discriminator(4, ndf, n_layers)

    with pytest.raises(RuntimeError):  # 3 + 3 channels stacked, a discriminator for 4
        check_adapter(WrongChannels(), lambda: build(arch), arch=arch)
