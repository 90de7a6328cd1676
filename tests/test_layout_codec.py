"""Layouts and the block codec: exact round trips, fingerprints, clear mismatches."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from weightinit.blocksfile import load_blocks, save_blocks
from weightinit.codec import BlockCodec, SlotNormalizer
from weightinit.errors import CheckpointError, InvalidWeights, LayoutMismatch, WeightinitError
from weightinit.layout import BlockLayout, Slot

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

shapes = st.lists(st.integers(0, 7), min_size=0, max_size=3).map(tuple) | st.sampled_from([(1,), (1000,), (3, 257)])


@st.composite
def tensor_sets(draw):
    n = draw(st.integers(1, 5))
    out = {}
    for i in range(n):
        shape = draw(shapes)
        dtype = draw(st.sampled_from(sorted(DTYPES)))
        seed = draw(st.integers(0, 2**31 - 1))
        g = torch.Generator().manual_seed(seed)
        out[f"layer{i}.weight"] = (torch.randn(shape, generator=g) * 3).to(DTYPES[dtype])
    return out


@settings(max_examples=60, deadline=None)
@given(tensors=tensor_sets(), block_size=st.sampled_from([1, 3, 16, 128, 256, 512]))
def test_round_trip_is_bitwise_exact(tensors, block_size):
    layout = BlockLayout.from_tensors(tensors, block_size)
    codec = BlockCodec(layout)
    blocks = codec.encode(tensors)
    assert blocks.shape == (layout.num_blocks, block_size)
    decoded = codec.decode(blocks)
    assert list(decoded) == list(tensors)
    for name, t in tensors.items():
        assert decoded[name].dtype == t.dtype and decoded[name].shape == t.shape
        assert torch.equal(decoded[name].reshape(-1).view(torch.uint8), t.reshape(-1).view(torch.uint8))


@settings(max_examples=40, deadline=None)
@given(tensors=tensor_sets(), block_size=st.sampled_from([1, 7, 64, 256]))
def test_no_block_straddles_two_slots_and_padding_is_zero(tensors, block_size):
    layout = BlockLayout.from_tensors(tensors, block_size)
    codec = BlockCodec(layout)
    blocks = codec.encode(tensors)
    index = codec.index
    assert index.slot.shape == (layout.num_blocks,)
    for b in range(layout.num_blocks):
        slot = layout.slots[int(index.slot[b])]
        offset, valid = int(index.offset[b]), int(index.valid_length[b])
        assert 0 < valid <= block_size and offset % block_size == 0
        flat = tensors[slot.name].reshape(-1).to(blocks.dtype)
        assert torch.equal(blocks[b, :valid], flat[offset : offset + valid])
        assert not blocks[b, valid:].any()


def test_sizes_and_indices_on_a_known_layout():
    layout = BlockLayout([Slot("a", (3, 100)), Slot("b", ()), Slot("c", (0,)), Slot("d", (256,))], 256)
    assert layout.blocks_per_slot == (2, 1, 0, 1)
    assert layout.slot_block_start == (0, 2, 3, 3)
    assert layout.num_blocks == 4 and layout.num_params == 300 + 1 + 0 + 256
    idx = BlockCodec(layout).index
    assert idx.slot.tolist() == [0, 0, 1, 3]
    assert idx.offset.tolist() == [0, 256, 0, 0]
    assert idx.valid_length.tolist() == [256, 44, 1, 256]


def test_fingerprint_changes_with_every_field():
    base = BlockLayout([Slot("a", (4, 4)), Slot("b", (4,))], 256)
    variants = [
        BlockLayout([Slot("x", (4, 4)), Slot("b", (4,))], 256),
        BlockLayout([Slot("a", (4, 5)), Slot("b", (4,))], 256),
        BlockLayout([Slot("a", (4, 4), "float16"), Slot("b", (4,))], 256),
        BlockLayout([Slot("b", (4,)), Slot("a", (4, 4))], 256),
        BlockLayout([Slot("a", (4, 4)), Slot("b", (4,))], 128),
    ]
    assert len({base.fingerprint, *(v.fingerprint for v in variants)}) == 6
    assert BlockLayout.from_json(base.to_json()) == base
    assert BlockLayout.from_json(base.to_json()).fingerprint == base.fingerprint


def test_fingerprint_is_stable_across_processes():
    layout = BlockLayout([Slot("a", (4, 4)), Slot("b", (4,), "bfloat16")], 128)
    code = (
        "from weightinit.layout import BlockLayout, Slot;"
        "print(BlockLayout([Slot('a', (4, 4)), Slot('b', (4,), 'bfloat16')], 128).fingerprint)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "123"}
    )
    assert out.stdout.strip() == layout.fingerprint


def test_layout_rejects_bad_definitions():
    with pytest.raises(WeightinitError, match="duplicate"):
        BlockLayout([Slot("a", (1,)), Slot("a", (2,))])
    with pytest.raises(WeightinitError, match="block size"):
        BlockLayout([Slot("a", (1,))], 0)
    with pytest.raises(WeightinitError, match="dtype"):
        Slot("a", (1,), "int8")
    with pytest.raises(WeightinitError, match="newer"):
        BlockLayout.from_dict({"format": 99, "block_size": 4, "slots": []})


def test_mismatch_names_both_fingerprints_and_the_first_differing_slot():
    a = BlockLayout([Slot("x", (4,)), Slot("y", (8,)), Slot("z", (2,))], 4)
    b = BlockLayout([Slot("x", (4,)), Slot("y", (9,)), Slot("z", (2,))], 4)
    with pytest.raises(LayoutMismatch) as info:
        a.check_same(b)
    msg = str(info.value)
    assert a.fingerprint in msg and b.fingerprint in msg and "slot 1: y [8]" in msg and "y [9]" in msg
    with pytest.raises(LayoutMismatch, match="expects"):
        BlockCodec(a).decode(torch.zeros(3, 4))


def test_encode_rejects_missing_extra_or_misshapen_tensors():
    layout = BlockLayout([Slot("a", (2, 2)), Slot("b", (3,))], 4)
    codec = BlockCodec(layout)
    with pytest.raises(LayoutMismatch, match="missing"):
        codec.encode({"a": torch.zeros(2, 2)})
    with pytest.raises(LayoutMismatch, match="unexpected"):
        codec.encode({"a": torch.zeros(2, 2), "b": torch.zeros(3), "c": torch.zeros(1)})
    with pytest.raises(LayoutMismatch, match=r"b is \[4\]"):
        codec.encode({"a": torch.zeros(2, 2), "b": torch.zeros(4)})


def test_check_finite_names_the_slot():
    layout = BlockLayout([Slot("a", (4,)), Slot("b", (4,))], 4)
    blocks = torch.zeros(2, 4)
    blocks[1, 2] = float("nan")
    with pytest.raises(InvalidWeights, match="in b"):
        BlockCodec(layout).check_finite(blocks)


@settings(max_examples=40, deadline=None)
@given(
    tensors=tensor_sets(), block_size=st.sampled_from([1, 5, 64]), shift=st.floats(-4, 4), spread=st.floats(1e-3, 1e3)
)
def test_normalizer_inverse_is_exact(tensors, block_size, shift, spread):
    tensors = {k: (v.float() * spread + shift).to(v.dtype) for k, v in tensors.items()}
    layout = BlockLayout.from_tensors(tensors, block_size)
    codec = BlockCodec(layout)
    blocks = codec.encode(tensors)
    norm = SlotNormalizer.fit(layout, [tensors])
    normalized = norm.normalize(blocks, dtype=torch.float64)
    assert torch.equal(norm.denormalize(normalized), blocks)
    mask = codec.index.valid_mask(block_size)
    assert not normalized[~mask].any()


def test_normalizer_standardises_each_slot():
    g = torch.Generator().manual_seed(0)
    samples = [
        {"w": torch.randn(64, 64, generator=g) * 0.1 + 2.0, "b": torch.randn(500, generator=g) * 8} for _ in range(4)
    ]
    layout = BlockLayout.from_tensors(samples[0], 256)
    norm = SlotNormalizer.fit(layout, samples)
    assert norm.mean[0].item() == pytest.approx(2.0, abs=0.01)
    assert norm.scale.tolist() == [0.125, 8.0]  # powers of two nearest the std
    normalized = norm.normalize(BlockCodec(layout).encode(samples[0]))
    w_blocks = normalized[: layout.blocks_per_slot[0]]
    assert 0.5 < w_blocks.std().item() < 2.0


def test_blocks_file_round_trip_and_mismatch(tmp_path):
    tensors = {"a": torch.randn(3, 5), "b": torch.randn(7).half()}
    layout = BlockLayout.from_tensors(tensors, 4)
    codec = BlockCodec(layout)
    norm = SlotNormalizer.fit(layout, [tensors])
    path = tmp_path / "x.safetensors"
    save_blocks(path, layout, codec.encode(tensors), norm, {"concept": "sepia"})
    loaded = load_blocks(path, expected=layout)
    assert loaded.layout == layout and loaded.extra_metadata == {"concept": "sepia"}
    assert torch.equal(loaded.normalizer.mean, norm.mean)
    for k, v in loaded.decode().items():
        assert torch.equal(v, tensors[k])
    other = BlockLayout.from_tensors({"a": torch.randn(3, 5), "b": torch.randn(8).half()}, 4)
    with pytest.raises(LayoutMismatch) as info:
        load_blocks(path, expected=other)
    assert layout.fingerprint in str(info.value) and other.fingerprint in str(info.value)
    assert not list(tmp_path.glob("*.tmp"))


def test_blocks_file_errors(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_blocks(bad)
    with pytest.raises(CheckpointError, match="no such file"):
        load_blocks(tmp_path / "missing.safetensors")
