"""Photo sources, their train/test split, and the three pair sources."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from weightinit.concepts import Concept, forward
from weightinit.concepts import edits as E
from weightinit.errors import WeightinitError
from weightinit.images import PhotoSet, from_tensor, to_tensor
from weightinit.pairs import DiffusionEditorPairs, FolderPairs, ProceduralPairs

SEPIA = Concept("t-sepia", ("tiny sepia", "a", "b"), "style", "train", "undo", forward(E.sepia), needs_color=False)
WARM = Concept(
    "t-warm", ("tiny warm", "c", "d"), "color_grading", "train", "undo", forward(lambda im: E.temperature(im, 1.0))
)


def _save(path, arr):
    Image.fromarray((np.clip(arr, 0, 1) * 255).astype(np.uint8)).save(path)


def _photo(h, w, seed=0, gray=False):
    rng = np.random.default_rng(seed)
    img = E.gaussian_blur(rng.random((h, w, 3), dtype=np.float32), 1.5)
    return np.repeat(img.mean(2, keepdims=True), 3, 2) if gray else img


def test_tensor_round_trip():
    batch = np.random.default_rng(0).random((2, 8, 8, 3), dtype=np.float32)
    t = to_tensor(batch)
    assert t.shape == (2, 3, 8, 8) and t.dtype == torch.float32 and t.min() >= -1 and t.max() <= 1
    assert np.allclose(from_tensor(t), batch, atol=1e-6)
    assert to_tensor(batch[0]).shape == (1, 3, 8, 8)


def test_bundled_photos_split_and_crops():
    ps = PhotoSet.bundled()
    train, test = ps.names("train"), ps.names("test")
    assert len(train) >= 4 and test and not set(train) & set(test)
    assert ps.has_color
    crops = ps.random_crops(6, 64, seed=1, split="test")
    assert crops.shape == (6, 64, 64, 3) and crops.dtype == np.float32
    assert np.array_equal(crops, ps.random_crops(6, 64, seed=1, split="test"))
    assert np.array_equal(crops[:3], ps.random_crops(3, 64, seed=1, split="test"))
    assert not np.array_equal(crops, ps.random_crops(6, 64, seed=2, split="test"))


def test_single_photo_uses_disjoint_regions(tmp_path):
    img = _photo(80, 300)
    _save(tmp_path / "only.png", img)
    ps = PhotoSet.from_folder(tmp_path)
    train, test = ps.region("train", 0), ps.region("test", 0)
    assert train.shape[1] + test.shape[1] == 300 and train.shape[0] == test.shape[0] == 80
    # a test crop matches a window of the test region only
    crop = ps.random_crops(1, 64, seed=0, split="test", max_scale=1.0)[0]
    loaded = np.asarray(Image.open(tmp_path / "only.png"), dtype=np.float32) / 255
    found = [
        x
        for x in range(300 - 63)
        for y in range(80 - 63)
        if np.allclose(loaded[y : y + 64, x : x + 64], crop)
        or np.allclose(loaded[y : y + 64, x : x + 64][:, ::-1], crop)
    ]
    assert found and min(found) >= 225


@pytest.mark.parametrize(
    "setup, kwargs, match",
    [
        (lambda d: None, {}, "is empty"),
        (lambda d: (d / "notes.txt").write_text("hello"), {}, "not images: notes.txt"),
        (
            lambda d: (_save(d / "a.png", _photo(70, 70)), (d / "b.jpg").write_bytes(b"\xff\xd8broken")),
            {},
            "not images: b.jpg",
        ),
        (lambda d: _save(d / "small.png", _photo(40, 90)), {}, "smaller than the 64x64 crop"),
        (
            lambda d: [_save(d / f"{i}.png", _photo(70, 70, i, gray=True)) for i in range(2)],
            {"require_color": True},
            "grayscale",
        ),
        (lambda d: _save(d / "one.png", _photo(70, 100)), {}, "disjoint train and test"),
    ],
)
def test_bad_photo_folders_give_one_clear_error(tmp_path, setup, kwargs, match):
    folder = tmp_path / "photos"
    folder.mkdir()
    setup(folder)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(WeightinitError, match=match):
        PhotoSet.from_folder(folder, **kwargs)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written


def test_missing_folder_and_grey_set_for_colour_concept(tmp_path):
    with pytest.raises(WeightinitError, match="does not exist"):
        PhotoSet.from_folder(tmp_path / "nope")
    for i in range(2):
        _save(tmp_path / f"{i}.png", _photo(70, 70, i, gray=True))
    grey = PhotoSet.from_folder(tmp_path)
    ProceduralPairs(SEPIA, grey)  # a sepia print can be made from grey photos
    with pytest.raises(WeightinitError, match="needs colour"):
        ProceduralPairs(WARM, grey)


def test_procedural_pairs():
    src = ProceduralPairs(SEPIA, size=32)
    a, b = src.sample(4, "train", seed=0)
    assert a.shape == b.shape == (4, 3, 32, 32) and a.dtype == torch.float32
    assert a.min() >= -1 and b.max() <= 1
    a2, b2 = src.sample(4, "train", seed=0)
    assert torch.equal(a, a2) and torch.equal(b, b2)
    assert torch.allclose(b, to_tensor(E.sepia(from_tensor(a))), atol=1e-5)
    t, _ = src.sample(4, "test", seed=0)
    assert not torch.equal(a, t)
    with pytest.raises(WeightinitError, match="split"):
        src.sample(2, "val")


def test_folder_pairs_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    for split, count in (("train", 3), ("test", 2)):
        (tmp_path / split).mkdir()
        for i in range(count):
            a = np.full((32, 32, 3), rng.random(), dtype=np.float32)
            _save(tmp_path / split / f"{i}.png", np.concatenate([a, 1 - a], axis=1))
    src = FolderPairs(tmp_path, size=32)
    assert len(src) == 5
    a, b = src.sample(5, "train", seed=0)
    assert a.shape == (5, 3, 32, 32)
    assert torch.allclose((a + 1) / 2, 1 - (b + 1) / 2, atol=2 / 255)  # B = 1 - A survived
    ta, _ = src.sample(2, "test", seed=0)
    assert {round(float(x), 2) for x in ta.mean((1, 2, 3))}.isdisjoint({round(float(x), 2) for x in a.mean((1, 2, 3))})
    ba, bb = FolderPairs(tmp_path, size=32, direction="BtoA").sample(2, "test", seed=0)
    assert torch.allclose(ba, src.sample(2, "test", seed=0)[1])


def test_folder_pairs_flat_folder_is_split_and_validated(tmp_path):
    for i in range(4):
        _save(tmp_path / f"{i}.png", np.concatenate([_photo(32, 32, i)] * 2, axis=1))
    src = FolderPairs(tmp_path, size=32)
    assert len(src.files["test"]) == 1 and len(src.files["train"]) == 3
    assert not set(src.files["test"]) & set(src.files["train"])
    _save(tmp_path / "odd.png", _photo(32, 63))
    with pytest.raises(WeightinitError, match="even width"):
        FolderPairs(tmp_path, size=32)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightinitError, match="is empty"):
        FolderPairs(empty)


def _tiny_instruct_pix2pix(tmp_path):
    from diffusers import (
        AutoencoderKL,
        EulerAncestralDiscreteScheduler,
        StableDiffusionInstructPix2PixPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    # GPT-2 / CLIP byte-level alphabet: printable bytes map to themselves, the rest to 256+.
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    extra = [b for b in range(256) if b not in printable]
    chars = [chr(b) for b in printable] + [chr(256 + i) for i in range(len(extra))]
    vocab = {tok: i for i, tok in enumerate(["<|startoftext|>", "<|endoftext|>"] + chars + [c + "</w>" for c in chars])}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"), model_max_length=16)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=8,
        in_channels=8,
        out_channels=4,
        norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=4,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        norm_num_groups=8,
        layers_per_block=1,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            hidden_size=16,
            intermediate_size=32,
            num_attention_heads=2,
            num_hidden_layers=1,
            vocab_size=len(vocab),
            max_position_embeddings=16,
        )
    )
    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=EulerAncestralDiscreteScheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_diffusion_editor_pairs_with_a_tiny_random_pipeline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pipe = _tiny_instruct_pix2pix(tmp_path)
    src = DiffusionEditorPairs(SEPIA, editor=pipe, size=16, editor_size=16, num_inference_steps=2, batch_size=2)
    a, b = src.sample(3, "train", seed=0)
    assert a.shape == b.shape == (3, 3, 16, 16)
    assert torch.isfinite(b).all() and b.min() >= -1 and b.max() <= 1
    src2 = DiffusionEditorPairs(SEPIA, editor=pipe, size=16, editor_size=16, num_inference_steps=2, batch_size=2)
    assert torch.equal(b, src2.sample(3, "train", seed=0)[1])  # seeded per pair
    with pytest.raises(WeightinitError, match="could not load the diffusion editor"):
        DiffusionEditorPairs(SEPIA, editor=str(tmp_path / "no-such-model"))
    with pytest.raises(WeightinitError, match="needs an editor"):
        DiffusionEditorPairs(SEPIA)
