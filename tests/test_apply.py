"""apply_blocks / apply_tensors: in place, optimizer-safe, and all-or-nothing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from weightinit.apply import apply_blocks, apply_tensors
from weightinit.blocksfile import BlocksFile, load_blocks, save_blocks
from weightinit.codec import BlockCodec
from weightinit.errors import InvalidWeights, LayoutMismatch
from weightinit.plugins import get_adapter


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1))


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_bitwise_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def encoded(model: nn.Module, block_size: int = 16) -> BlocksFile:
    adapter = get_adapter("generic")
    layout = adapter.layout(model, block_size)
    tensors = adapter.to_canonical(model, model.state_dict())
    return BlocksFile(layout, BlockCodec(layout).encode(tensors))


def test_apply_writes_in_place_and_keeps_optimizer_references():
    source, target = tiny_model(1), tiny_model(2)
    opt = torch.optim.SGD(target.parameters(), lr=0.1)
    params_before = [id(p) for p in target.parameters()]
    buffers_before = {k: v.clone() for k, v in target.named_buffers()}
    report = apply_blocks(target, encoded(source))
    assert [id(p) for p in target.parameters()] == params_before
    assert all(p is q for p, q in zip(opt.param_groups[0]["params"], target.parameters()))
    for (name, p), q in zip(target.named_parameters(), source.parameters()):
        assert torch.equal(p, q), name
    for k, v in target.named_buffers():  # running statistics are not generated
        assert torch.equal(v, buffers_before[k])
    assert (
        report.adapter == "generic"
        and len(report.parameters_set) == 6
        and report.values_set == sum(p.numel() for p in source.parameters())
    )
    target(torch.randn(2, 3, 8, 8)).sum().backward()
    opt.step()  # the optimizer still drives the same tensors


def test_apply_through_a_blocks_file(tmp_path):
    source, target = tiny_model(1), tiny_model(2)
    blocks = encoded(source)
    save_blocks(tmp_path / "b.safetensors", blocks.layout, blocks.blocks)
    apply_blocks(target, load_blocks(tmp_path / "b.safetensors"))
    assert_bitwise_equal(
        {k: v for k, v in target.state_dict().items() if "running" not in k and "num_batches" not in k},
        {k: v for k, v in source.state_dict().items() if "running" not in k and "num_batches" not in k},
    )


def test_apply_casts_to_each_parameters_dtype():
    source, target = tiny_model(1), tiny_model(2).to(torch.float64)
    adapter = get_adapter("generic")
    apply_tensors(target, {k: v.double() for k, v in adapter.to_canonical(source, source.state_dict()).items()})
    assert all(p.dtype == torch.float64 for p in target.parameters())
    assert torch.equal(target[0].weight, source[0].weight.double())


@pytest.mark.parametrize("corrupt", ["nan", "inf", "fingerprint", "shape", "missing", "extra"])
def test_failures_leave_the_model_bitwise_unchanged(corrupt):
    source, target = tiny_model(1), tiny_model(2)
    before = snapshot(target)
    adapter = get_adapter("generic")
    if corrupt in ("nan", "inf"):
        blocks = encoded(source)
        blocks.blocks[-1, 0] = float("nan") if corrupt == "nan" else float("inf")
        with pytest.raises(InvalidWeights, match="NaN or Inf"):
            apply_blocks(target, blocks)
    elif corrupt == "fingerprint":
        other = nn.Sequential(nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5), nn.ReLU(), nn.Conv2d(5, 2, 1))
        blocks = encoded(other)
        with pytest.raises(LayoutMismatch) as info:
            apply_blocks(target, blocks)
        assert blocks.layout.fingerprint in str(info.value)
        assert adapter.layout(target, 16).fingerprint in str(info.value)
    else:
        tensors = adapter.to_canonical(source, source.state_dict())
        if corrupt == "shape":
            tensors["3.weight"] = torch.zeros(2, 4, 1, 2)
        elif corrupt == "missing":
            del tensors["3.bias"]
        else:
            tensors["4.weight"] = torch.zeros(1)
        with pytest.raises(LayoutMismatch):
            apply_tensors(target, tensors)
    assert_bitwise_equal(snapshot(target), before)


def test_a_failure_in_the_middle_of_writing_restores_what_was_written(monkeypatch):
    source, target = tiny_model(1), tiny_model(2)
    before = snapshot(target)
    last = list(target.parameters())[-1]
    original_copy = torch.Tensor.copy_
    calls = {"n": 0}

    def failing_copy(self, src, *args, **kwargs):
        if self is last and calls["n"] == 0:
            calls["n"] += 1
            raise RuntimeError("simulated device failure")
        return original_copy(self, src, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "copy_", failing_copy)
    with pytest.raises(RuntimeError, match="simulated"):
        apply_blocks(target, encoded(source))
    monkeypatch.undo()
    assert_bitwise_equal(snapshot(target), before)


def test_wrapped_models_are_written_through_their_wrapper():
    source = tiny_model(1)

    class DistributedDataParallel(nn.Module):  # the name is what unwrapping looks at
        def __init__(self, module):
            super().__init__()
            self.module = module

    wrapped = DistributedDataParallel(tiny_model(2))
    apply_blocks(wrapped, encoded(source))
    assert torch.equal(wrapped.module[0].weight, source[0].weight)
