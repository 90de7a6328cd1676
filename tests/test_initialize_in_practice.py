"""initialize where users put it (issue 14): LoRA with a built optimizer, DDP, dtypes, wrappers,
cheap one-line errors before the generator loads, and NaN/Inf refused everywhere."""

from __future__ import annotations

import pytest
import torch
from ddp_helpers import run_torchrun
from torch import nn

from weightinit import plugins
from weightinit.errors import AdapterError, InvalidWeights, WeightinitError
from weightinit.initialization import initialize, load_generator
from weightinit.lora import LoRAWrapper, merged_state_dict

ARCH = "pix2pix:unet_64,ngf=4"
CONCEPT = "sketch to photo"
NOWHERE = "/nonexistent/generator"  # loading it would fail: errors that name something else came first


def fresh(seed: int = 0, arch: str = ARCH):
    torch.manual_seed(seed)
    return plugins.build_model(arch)


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def unchanged(model, before) -> bool:
    state = model.state_dict()
    return state.keys() == before.keys() and all(torch.equal(state[k], before[k]) for k in before)


class ReferenceModel:
    """The reference Pix2PixModel's order: networks, default init and optimizers in __init__."""

    def __init__(self, seed: int = 0):
        self.netG = fresh(seed)
        self.optimizer_G = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer_G, lambda epoch: 1.0 - 0.1 * epoch)


def train_steps(netG, optimizer, n=3):
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    for _ in range(n):
        loss = (netG(x) - x.flip(-1)).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


# --- LoRA mode at the documented line ------------------------------------------------------
def test_lora_after_the_optimizer_exists_without_it_is_refused_and_changes_nothing(tiny_generator_dir):
    model = ReferenceModel()
    before = snapshot(model.netG)
    with pytest.raises(WeightinitError, match="optimizer=") as info:
        initialize(model.netG, CONCEPT, generator=tiny_generator_dir, mode="lora")
    assert "Adam" in str(info.value) and "\n" not in str(info.value)
    assert unchanged(model.netG, before) and not any(isinstance(m, LoRAWrapper) for m in model.netG.modules())
    assert all(p.requires_grad for p in model.netG.parameters())


def test_lora_with_the_users_optimizer_trains_and_its_scheduler_applies(tiny_generator_dir):
    model = ReferenceModel()
    groups_before = len(model.optimizer_G.param_groups)
    report = initialize(model.netG, CONCEPT, generator=tiny_generator_dir, mode="lora", optimizer=model.optimizer_G)
    lora = [p for n, p in model.netG.named_parameters() if ".lora_" in n]
    assert report.lora_modules > 0 and len(lora) == 2 * report.lora_modules
    held = {id(p) for g in model.optimizer_G.param_groups for p in g["params"]}
    assert all(id(p) in held for p in lora) and len(model.optimizer_G.param_groups) == groups_before
    frozen = {n: p.detach().clone() for n, p in model.netG.named_parameters() if not p.requires_grad}
    lora_before = [p.detach().clone() for p in lora]
    train_steps(model.netG, model.optimizer_G)
    model.scheduler.step()
    assert all(not torch.equal(p, b) for p, b in zip(lora, lora_before))  # every factor moved
    assert all(torch.equal(p, frozen[n]) for n, p in model.netG.named_parameters() if n in frozen)
    assert model.optimizer_G.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.9)  # the scheduler reaches them


def test_an_optimizer_that_does_not_hold_the_network_is_refused(tiny_generator_dir):
    net = fresh()
    other = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    with pytest.raises(WeightinitError, match="does not hold"):
        initialize(net, CONCEPT, generator=tiny_generator_dir, mode="lora", optimizer=other)
    assert not any(isinstance(m, LoRAWrapper) for m in net.modules())


def test_a_lora_netG_saves_what_the_reference_loader_reads(tiny_generator_dir, tmp_path):
    model = ReferenceModel()
    initialize(model.netG, CONCEPT, generator=tiny_generator_dir, mode="lora", optimizer=model.optimizer_G)
    train_steps(model.netG, model.optimizer_G, n=2)
    path = tmp_path / "latest_net_G.pth"
    torch.save(model.netG.state_dict(), path)  # the reference save_networks, unchanged
    plain = fresh(seed=9)
    plain.load_state_dict(torch.load(path, weights_only=True), strict=True)  # the reference load_networks
    assert list(plain.state_dict()) == list(merged_state_dict(model.netG))
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    plain.eval(), model.netG.eval()
    with torch.no_grad():
        assert torch.allclose(plain(x), model.netG(x), atol=1e-5)
        # and the LoRA network loads a plain checkpoint back (into its base, same function)
        model.netG.load_state_dict(plain.state_dict())
        assert torch.allclose(plain(x), model.netG(x), atol=1e-5)


def test_a_second_lora_call_and_a_custom_wrapper_say_what_is_wrong(tiny_generator_dir):
    net = fresh()
    initialize(net, CONCEPT, generator=tiny_generator_dir, mode="lora")
    for mode in ("lora", "merge"):
        with pytest.raises(WeightinitError, match="already has .* LoRA modules"):
            initialize(net, CONCEPT, generator=NOWHERE, mode=mode)

    class Wrapper(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.module = inner

    wrapped = Wrapper(fresh())
    before = snapshot(wrapped)
    with pytest.raises(AdapterError, match=r"model\.module") as info:
        initialize(wrapped, CONCEPT, generator=tiny_generator_dir)
    assert "zoo build" not in str(info.value) and unchanged(wrapped, before)


def test_a_meta_model_is_refused_before_the_generator_loads():
    with torch.device("meta"):
        net = plugins.build_model(ARCH)
    with pytest.raises(WeightinitError, match="meta device"):
        initialize(net, CONCEPT, generator=NOWHERE)


def test_under_ddp_lora_refuses_on_the_wrapped_net_and_ranks_agree_before_the_wrap(tiny_generator_dir):
    out = run_torchrun("ddp_lora_worker.py", str(tiny_generator_dir), ARCH)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    refused = [line for line in lines if line.startswith("refused rank")]
    assert len(refused) == 2 and all(
        "DistributedDataParallel" in r and "before the DDP wrap" in r and "unchanged" in r for r in refused
    ), out.stdout
    sums = [line.split()[-1] for line in lines if line.startswith("trained rank")]
    assert len(sums) == 2 and sums[0] == sums[1], out.stdout
    moved = [line for line in lines if line.startswith("moved rank")]
    assert len(moved) == 2 and all(line.endswith("True") for line in moved), out.stdout


# --- dtypes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_half_bfloat_and_double_models_get_the_float32_weights_cast(tiny_generator_dir, dtype):
    net, ref = fresh(1).to(dtype), fresh(2)
    report = initialize(net, CONCEPT, generator=tiny_generator_dir, seed=3)
    initialize(ref, CONCEPT, generator=tiny_generator_dir, seed=3)
    assert report.parameters_set == len(list(ref.parameters()))
    ref_state = ref.state_dict()
    for k, v in net.state_dict().items():
        assert v.dtype == (dtype if ref_state[k].is_floating_point() else ref_state[k].dtype), k
        assert torch.equal(v, ref_state[k].to(v.dtype)), k


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_lora_on_a_half_model_trains_in_its_dtype(tiny_generator_dir, dtype):
    net = fresh().to(dtype)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    initialize(net, CONCEPT, generator=tiny_generator_dir, mode="lora", optimizer=opt)
    lora = [p for n, p in net.named_parameters() if ".lora_" in n]
    assert lora and all(p.dtype == dtype for p in lora)
    before = [p.detach().clone() for p in lora]
    x = (torch.rand(2, 3, 64, 64) * 2 - 1).to(dtype)
    net(x).float().abs().mean().backward()
    opt.step()
    assert any(not torch.equal(p, b) for p, b in zip(lora, before))


def test_pairs_work_on_a_half_model(tiny_generator_dir):
    net = fresh().to(torch.bfloat16)
    inputs = torch.rand(2, 3, 64, 64) * 2 - 1
    report = initialize(net, CONCEPT, generator=tiny_generator_dir, pairs=(inputs, inputs.flip(-1)))
    assert report.choice is not None and report.choice["pairs"] == 2


# --- one clear error, before anything loads ---------------------------------------------------
@pytest.mark.parametrize(
    "concept, match",
    [(None, "must be text"), (b"sketch to photo", "bytes"), ("sketch \udcff photo", "UTF-8"), ("  ", "non-empty")],
)
def test_bad_concepts_are_one_line_before_the_generator_loads(concept, match):
    net = fresh()
    with pytest.raises(WeightinitError, match=match) as info:
        initialize(net, concept, generator=NOWHERE)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "pairs, match",
    [
        ((torch.zeros(2, 3, 64, 64, dtype=torch.uint8),) * 2, "uint8"),
        ((torch.zeros(2, 64, 64, 3),) * 2, "NHWC"),
        ((torch.full((2, 3, 48, 48), -0.5),) * 2, "cannot take pair inputs of shape"),
        ((torch.full((2, 1, 64, 64), -0.5),) * 2, "cannot take pair inputs"),
        ((torch.zeros(2, 3, 64, 64), torch.zeros(2, 3, 32, 32)), "same N, H, W"),
    ],
)
def test_bad_pairs_are_one_line_before_the_generator_loads(pairs, match):
    net = fresh()
    before = snapshot(net)
    with pytest.raises(WeightinitError, match=match) as info:
        initialize(net, CONCEPT, generator=NOWHERE, pairs=pairs)
    assert "\n" not in str(info.value) and unchanged(net, before)


def test_a_duplicated_arch_option_is_an_error():
    with pytest.raises(AdapterError, match="twice"):
        plugins.build_model("pix2pix:unet_64,ngf=16,ngf=32")


# --- NaN and Inf -----------------------------------------------------------------------------
def test_encode_and_decode_refuse_nan_naming_the_tensor():
    from weightinit.codec import BlockCodec
    from weightinit.layout import BlockLayout

    tensors = {"a.weight": torch.ones(3, 4), "b.bias": torch.ones(5)}
    codec = BlockCodec(BlockLayout.from_tensors(tensors, block_size=4))
    blocks = codec.encode(tensors)
    bad = dict(tensors, **{"b.bias": torch.tensor([1.0, float("inf"), 1, 1, 1])})
    with pytest.raises(InvalidWeights, match="b.bias"):
        codec.encode(bad)
    blocks[1, 0] = float("nan")
    with pytest.raises(InvalidWeights, match="a.weight"):
        codec.decode(blocks)


def test_nan_in_the_base_running_statistics_is_refused_and_nothing_is_written(tiny_generator_dir, monkeypatch):
    gen = load_generator(tiny_generator_dir)
    key = next(k for k in gen.base_buffers if k.endswith("running_var"))
    poisoned = dict(gen.base_buffers, **{key: torch.full_like(gen.base_buffers[key], float("nan"))})
    monkeypatch.setattr(gen, "base_buffers", poisoned)
    for mode in ("merge", "lora"):
        net = fresh()
        before = snapshot(net)
        with pytest.raises(InvalidWeights, match=key):  # kept as they are: the base's statistics are written
            initialize(net, CONCEPT, generator=gen, mode=mode, fit_statistics=False)
        assert unchanged(net, before) and not any(isinstance(m, LoRAWrapper) for m in net.modules())
        fitted = fresh()  # fitted: the base's statistics never reach the model
        report = initialize(fitted, CONCEPT, generator=gen, mode=mode)
        assert "running statistics of" in report.statistics
        assert all(torch.isfinite(b).all() for b in fitted.buffers())


def test_a_failed_statistics_fit_leaves_the_model_unchanged(tiny_generator_dir, monkeypatch):
    from weightinit import initialization

    def wrong_size(*args):
        return torch.zeros(1, 3, 2, 2), "bundled photos"  # too small for the U-Net's depth

    monkeypatch.setattr(initialization, "_statistics_inputs", wrong_size)
    for mode in ("merge", "lora"):
        net = fresh()
        before = snapshot(net)
        with pytest.raises(WeightinitError, match="could not fit the running statistics on 1 bundled photos"):
            initialize(net, CONCEPT, generator=tiny_generator_dir, mode=mode)
        assert unchanged(net, before) and not any(isinstance(m, LoRAWrapper) for m in net.modules())


def test_nan_generation_with_pairs_is_refused_not_replaced_by_a_candidate(tiny_generator_dir, monkeypatch):
    gen = load_generator(tiny_generator_dir)
    real = gen.generate

    def nan_generate(*args, **kwargs):
        out = {k: v.clone() for k, v in real(*args, **kwargs).items()}
        out[next(iter(out))].view(-1)[0] = float("nan")
        return out

    monkeypatch.setattr(gen, "generate", nan_generate)
    net = fresh()
    before = snapshot(net)
    inputs = torch.rand(2, 3, 64, 64) * 2 - 1
    with pytest.raises(InvalidWeights, match="NaN or Inf"):
        initialize(net, CONCEPT, generator=gen, pairs=(inputs, inputs))
    assert unchanged(net, before)


def test_weights_that_overflow_a_half_model_are_refused(tiny_generator_dir, monkeypatch):
    gen = load_generator(tiny_generator_dir)
    real = gen.full_weights

    def huge(factors):
        out = real(factors)
        name = next(iter(out))
        out[name] = out[name] + 1e6  # finite in float32, Inf in float16
        return out

    monkeypatch.setattr(gen, "full_weights", huge)
    net = fresh().half()
    before = snapshot(net)
    with pytest.raises(InvalidWeights, match="overflows"):
        initialize(net, CONCEPT, generator=gen)
    assert unchanged(net, before)
