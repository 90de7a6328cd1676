"""initialize(model, concept): in place, seeded, atomic, LoRA mode, CycleGAN pairs, DDP ranks."""

from __future__ import annotations

import pytest
import torch
from ddp_helpers import run_torchrun

from weightinit import plugins
from weightinit.errors import InvalidWeights, LayoutMismatch, WeightinitError
from weightinit.initialization import initialize, load_generator
from weightinit.lora import LoRAWrapper

ARCH = "pix2pix:unet_64,ngf=4"


def fresh(arch: str = ARCH, seed: int = 0):
    torch.manual_seed(seed)
    return plugins.build_model(arch)


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_merge_writes_base_plus_generated_delta_in_place(tiny_generator_dir):
    model = fresh()
    opt = torch.optim.Adam(model.parameters())
    ids = [id(p) for p in model.parameters()]
    report = initialize(model, "sketch to photo", generator=tiny_generator_dir, seed=3)
    assert [id(p) for p in model.parameters()] == ids and opt.param_groups[0]["params"][0] is next(model.parameters())
    gen = load_generator(tiny_generator_dir)
    expected = gen.full_weights(gen.generate("sketch to photo", steps=1, seed=3, guidance=None))
    adapter = plugins.get_adapter("pix2pix")
    got = adapter.to_canonical(model, model.state_dict())
    assert got.keys() == expected.keys()
    for name in expected:
        assert torch.equal(got[name], expected[name].to(got[name].dtype)), name
    # At least one LoRA target really moved away from the base.
    assert any(not torch.equal(expected[n], gen.base_canonical[n].float()) for n in expected)
    assert report.mode == "merge" and report.adapter == "pix2pix" and report.seed == 3
    assert report.parameters_set == len(expected) and report.buffers_set > 0 and report.seconds > 0
    assert "sketch to photo" in str(report)


def test_same_seed_same_weights_other_seed_other_weights(tiny_generator_dir):
    a, b, c = fresh(seed=1), fresh(seed=2), fresh(seed=1)
    initialize(a, "sepia photo", generator=tiny_generator_dir, seed=0)
    initialize(b, "sepia photo", generator=tiny_generator_dir, seed=0)
    initialize(c, "sepia photo", generator=tiny_generator_dir, seed=1)
    sa, sb, sc = snapshot(a), snapshot(b), snapshot(c)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)


@pytest.mark.parametrize(
    "arch, why",
    [
        ("pix2pix:unet_64,ngf=8,input_nc=1", "input_nc 1 is not 3, and image channels do not widen"),
        ("pix2pix:unet_64,ngf=8,norm=none", "norm batch does not carry to norm none"),
        ("pix2pix:unet_64,ngf=2", "ngf 2 is narrower than 4"),
    ],
)
def test_a_model_the_generator_does_not_serve_gets_one_line_naming_its_arch_and_stays_unchanged(
    tiny_generator_dir, arch, why
):
    model = fresh(arch)
    before = snapshot(model)
    with pytest.raises(LayoutMismatch) as info:
        initialize(model, "sketch to photo", generator=tiny_generator_dir)
    msg = str(info.value)
    assert "\n" not in msg and f"does not serve this network ({arch.replace(',ngf', ',ngf')}" in msg.replace(
        ",norm=batch", ""
    )
    assert why in msg and "weightinit zoo build" in msg and "weightinit train" in msg
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_nan_from_the_generator_leaves_the_model_unchanged(tiny_generator_dir, monkeypatch):
    model = fresh()
    before = snapshot(model)
    gen = load_generator(tiny_generator_dir)
    real = gen.generate

    def nan_generate(*args, **kwargs):
        out = real(*args, **kwargs)
        name = next(iter(out))
        out[name] = out[name].clone()
        out[name].view(-1)[0] = float("nan")
        return out

    monkeypatch.setattr(gen, "generate", nan_generate)
    with pytest.raises(InvalidWeights):
        initialize(model, "sketch to photo", generator=gen)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_bad_arguments_are_errors(tiny_generator_dir):
    model = fresh()
    with pytest.raises(WeightinitError, match="mode"):
        initialize(model, "x", generator=tiny_generator_dir, mode="fuse")
    with pytest.raises(WeightinitError, match="steps"):
        initialize(model, "x", generator=tiny_generator_dir, steps=0)
    with pytest.raises(WeightinitError, match="concept"):
        initialize(model, "   ", generator=tiny_generator_dir)


def test_no_bundled_generator_is_a_clear_error(monkeypatch, tmp_path, installed_generator):
    import weightinit.generators as registry

    monkeypatch.setattr(registry, "bundled_generator_path", lambda: tmp_path / "nothing")  # nor any other installed
    with pytest.raises(WeightinitError, match="no bundled generator"):
        initialize(fresh(), "sketch to photo")


def test_lora_mode_wraps_targets_with_generated_factors_on_a_frozen_base(tiny_generator_dir):
    merged, lora = fresh(seed=1), fresh(seed=2)
    initialize(merged, "sketch to photo", generator=tiny_generator_dir, seed=5)
    report = initialize(lora, "sketch to photo", generator=tiny_generator_dir, seed=5, mode="lora")
    wrappers = [m for m in lora.modules() if isinstance(m, LoRAWrapper)]
    assert report.lora_modules == len(wrappers) > 0
    trainable = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_" in n for n in trainable)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    merged.eval(), lora.eval()
    with torch.no_grad():
        assert torch.allclose(merged(x), lora(x), atol=1e-5)


def test_cyclegan_pair_gets_the_concept_and_its_reverse(tiny_generator_dir):
    from weightinit.adapters.cyclegan import CycleGANPair

    pair = CycleGANPair(fresh(seed=1), fresh(seed=2))
    report = initialize(pair, "sketch to photo", generator=tiny_generator_dir)
    assert report.adapter == "cyclegan"
    # the catalog's exact reverse of sketch-to-photo is pencil-medium
    assert report.directions == {"netG_A": "sketch to photo", "netG_B": "photo to moderate pencil sketch"}
    assert set(report.based_on) == {"netG_A", "netG_B"}
    single_a, single_b = fresh(seed=3), fresh(seed=4)
    initialize(single_a, "sketch to photo", generator=tiny_generator_dir)
    initialize(single_b, "photo to moderate pencil sketch", generator=tiny_generator_dir)
    assert all(torch.equal(v, single_a.state_dict()[k]) for k, v in pair.netG_A.state_dict().items())
    assert all(torch.equal(v, single_b.state_dict()[k]) for k, v in pair.netG_B.state_dict().items())


@pytest.mark.parametrize("generator", ["tiny_generator_dir", "tiny_pair_generator_dir"])  # pairs: choose, generate
def test_every_ddp_rank_writes_identical_values(generator, request):
    out = run_torchrun("ddp_initialize_worker.py", str(request.getfixturevalue(generator)), ARCH)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    sums = [line.split()[-1] for line in out.stdout.splitlines() if line.startswith("checksum rank")]
    assert len(sums) == 2 and sums[0] == sums[1], out.stdout
    chosen = sorted(line.split(" ", 3)[-1] for line in out.stdout.splitlines() if line.startswith("chosen rank"))
    assert len(chosen) == 2 and chosen[0] == chosen[1], out.stdout


@pytest.mark.parametrize("mode", ["merge", "lora"])
@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_a_wider_network_computes_what_the_generators_own_does_in_eval_and_train_mode(tiny_generator_dir, mode, noise):
    own, wide = fresh(), fresh("pix2pix:unet_64,ngf=8")
    initialize(own, "sketch to photo", generator=tiny_generator_dir, mode=mode)
    report = initialize(wide, "sketch to photo", generator=tiny_generator_dir, mode=mode, widen_noise=noise)
    assert report.transfer == "widened from ngf 4 to 8" and report.widen_noise == noise
    assert "running statistics of" in report.statistics and "bundled photos at 64 px" in report.statistics
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    for train in (False, True):
        own.train(train)
        wide.train(train)
        with torch.no_grad():
            assert float((own(x) - wide(x)).abs().max()) < 1e-4


def test_widen_noise_must_be_a_non_negative_number(tiny_generator_dir):
    for bad in (-0.1, "0.1", True, float("nan")):
        with pytest.raises(WeightinitError, match="widen_noise must be a number >= 0"):
            initialize(fresh(), "sketch to photo", generator=tiny_generator_dir, widen_noise=bad)


def test_a_wider_cyclegan_pair_gets_both_directions_carried(tiny_generator_dir):
    from weightinit.adapters.cyclegan import CycleGANPair

    own = CycleGANPair(fresh(seed=1), fresh(seed=2))
    wide = CycleGANPair(fresh("pix2pix:unet_64,ngf=8", seed=1), fresh("pix2pix:unet_64,ngf=8", seed=2))
    initialize(own, "sketch to photo", generator=tiny_generator_dir)
    report = initialize(wide, "sketch to photo", generator=tiny_generator_dir, widen_noise=0.0)
    assert report.transfer == "widened from ngf 4 to 8" and set(report.directions) == {"netG_A", "netG_B"}
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        for a, b in ((own.netG_A, wide.netG_A), (own.netG_B, wide.netG_B)):
            assert float((a(x) - b(x)).abs().max()) < 1e-4
