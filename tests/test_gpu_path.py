"""The GPU code path (device choice, bf16 autocast, throughput record), run on the CPU at tiny size.

Nothing here needs a GPU: device selection is checked with CUDA's answers patched, and bf16
autocast runs on the CPU through the very code a GPU build uses.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from conftest import TINY_ZOO as TINY

from weightinit import plugins
from weightinit.concepts.catalog import default_catalog
from weightinit.errors import WeightinitError
from weightinit.images import PhotoSet
from weightinit.recipe import RecipeConfig, fine_tune, resolve_mixed_precision, select_device
from weightinit.zoo.build import BUILD_CONFIG_NAME, THROUGHPUT_NAME, ZooBuilder, verify_zoo
from weightinit.zoo.manifest import ZooConfig, ZooManifest
from weightinit.zoo.weights import ZooWeights

#: build.json of a zoo started before device/precision options existed (the default zoo's, verbatim).
EXISTING_BUILD_JSON = {
    "arch": "pix2pix:unet_64,ngf=16",
    "base_pool_per_concept": 32,
    "base_steps": 3000,
    "batch_size": 8,
    "concept_lr": 0.003,
    "concept_steps": 400,
    "image_size": 64,
    "lora_rank": 6,
    "lora_seed": 1234,
    "lora_train_a": True,
    "pool_size": 256,
    "representation": "lora",
    "seed": 0,
    "shared_data": True,
    "storage_dtype": "float16",
    "test_pairs": 64,
}


def _no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def _fake_cuda(monkeypatch, count: int, bf16: bool = True):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)


def test_device_selection_picks_the_cpu_without_cuda(monkeypatch):
    _no_cuda(monkeypatch)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert select_device("auto") == torch.device("cpu")
    assert select_device("cpu") == torch.device("cpu")
    with pytest.raises(WeightinitError, match="no CUDA device"):
        select_device("cuda")
    with pytest.raises(WeightinitError, match="device must be one of"):
        select_device("tpu")
    assert resolve_mixed_precision("auto", "cpu") == "no"
    assert resolve_mixed_precision("bf16", "cpu") == "bf16"
    with pytest.raises(WeightinitError, match="mixed precision"):
        resolve_mixed_precision("fp8", "cpu")


def test_processes_take_local_rank_s_gpu_and_share_devices_round_robin(monkeypatch):
    _fake_cuda(monkeypatch, count=2)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert select_device("auto") == torch.device("cuda", 1)  # 4 processes on 2 GPUs: rank 3 shares cuda:1
    assert [select_device("cuda", r).index for r in range(4)] == [0, 1, 0, 1]
    assert select_device("cpu") == torch.device("cpu")  # forcing the CPU beside a GPU
    assert select_device("cuda:1") == torch.device("cuda", 1)
    _fake_cuda(monkeypatch, count=1)
    assert {select_device("auto", r) for r in range(4)} == {torch.device("cuda", 0)}  # nproc_per_node 4 on one GPU
    assert resolve_mixed_precision("auto", "cuda:0") == "bf16"
    _fake_cuda(monkeypatch, count=1, bf16=False)
    assert resolve_mixed_precision("auto", "cuda:0") == "no"  # e.g. a V100: no bf16, no autocast


def _tiny_model_and_pairs():
    torch.manual_seed(0)
    model = plugins.build_model("pix2pix:unet_64,ngf=4")
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(8, 3, 64, 64, generator=gen) * 2 - 1
    return model, (x, x.flip(-1))


def _train(mixed_precision: str):
    model, pairs = _tiny_model_and_pairs()
    dtypes = []
    hook = model.register_forward_hook(lambda m, i, out: dtypes.append(out.dtype) if m.training else None)
    fine_tune(model, pairs, 3, config=RecipeConfig(batch_size=2), mixed_precision=mixed_precision)
    hook.remove()
    return model, dtypes


def test_recipe_trains_under_bf16_autocast_on_cpu_with_finite_weights():
    start, _ = _tiny_model_and_pairs()
    model, dtypes = _train("bf16")
    assert dtypes and set(dtypes) == {torch.bfloat16}  # the generator really ran in bf16
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())  # fp32 master weights
    moved = [(p - q).abs().max().item() for p, q in zip(model.parameters(), start.parameters())]
    assert max(moved) > 0
    # no autocast: float32 throughout, and on a CPU "auto" is exactly that run, bit for bit
    plain, plain_dtypes = _train("no")
    auto, _ = _train("auto")
    assert set(plain_dtypes) == {torch.float32}
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), auto.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), model.state_dict().values()))


def _concepts(n: int = 2):
    return default_catalog().by_split("train")[:n]


def test_zoo_build_under_bf16_records_throughput_and_keeps_device_out_of_build_json(tmp_path):
    logs: list[str] = []
    builder = ZooBuilder(
        tmp_path,
        ZooConfig(**TINY),
        _concepts(),
        photos=PhotoSet.load(None),
        log=logs.append,
        device="cpu",
        mixed_precision="bf16",
    )
    assert builder.device == torch.device("cpu") and builder.mixed_precision == "bf16"
    manifest = builder.run()
    assert len(manifest.concepts) == 2 and verify_zoo(tmp_path) == []
    weights = ZooWeights(tmp_path)
    for cid in weights.ids():
        assert all(torch.isfinite(t).all() for t in weights.concept(cid).values())
    stored = json.loads((tmp_path / BUILD_CONFIG_NAME).read_text())
    assert stored == ZooConfig(**TINY).to_dict()  # runtime settings never reach build.json
    runs = json.loads((tmp_path / THROUGHPUT_NAME).read_text())["runs"]
    assert len(runs) == 1
    run = runs[0]
    assert run["concepts_built"] == 2 and run["concepts_per_minute"] > 0 and run["seconds"] > 0
    assert run["device"].startswith("cpu") and run["device_type"] == "cpu" and run["mixed_precision"] == "bf16"
    assert run["processes"] == 1 and run["arch"] == TINY["arch"]
    assert any(line.startswith("throughput: 2 concepts") and "concepts/min" in line for line in logs)
    # Resumed with other runtime settings: same zoo, nothing rebuilt, no new throughput entry.
    again = ZooBuilder(
        tmp_path, ZooConfig(**TINY), _concepts(), photos=PhotoSet.load(None), log=logs.append, mixed_precision="no"
    )
    assert again.run().concepts.keys() == manifest.concepts.keys()
    assert len(json.loads((tmp_path / THROUGHPUT_NAME).read_text())["runs"]) == 1
    # One more concept on the resumed build: a second entry, counting only what this run built.
    ZooBuilder(tmp_path, ZooConfig(**TINY), _concepts(3), photos=PhotoSet.load(None), log=logs.append).run()
    runs = json.loads((tmp_path / THROUGHPUT_NAME).read_text())["runs"]
    assert [r["concepts_built"] for r in runs] == [2, 1] and runs[1]["mixed_precision"] == "no"


def test_an_existing_zoo_s_build_json_still_resumes(tmp_path):
    (tmp_path / BUILD_CONFIG_NAME).write_text(json.dumps(EXISTING_BUILD_JSON))
    config = ZooConfig.from_dict(EXISTING_BUILD_JSON)
    ZooBuilder(tmp_path, config, _concepts(), device="auto", mixed_precision="auto").check_config()  # no error
    # the CLI's defaults are that zoo's config; fields added since (base_lr) read as their defaults
    assert (
        ZooConfig().to_dict()
        == ZooConfig.from_dict(EXISTING_BUILD_JSON).to_dict()
        == {**EXISTING_BUILD_JSON, "base_lr": 2e-4}
    )


def test_zoo_build_cli_on_cpu_in_bf16_then_resumed_in_fp32(tmp_path):
    from typer.testing import CliRunner

    from weightinit.cli.app import app

    folder = tmp_path / "zoo"
    tiny = [
        "--arch",
        TINY["arch"],
        "--base-steps",
        "4",
        "--concept-steps",
        "3",
        "--pool-size",
        "8",
        "--test-pairs",
        "4",
        "--rank",
        "2",
        "--batch-size",
        "2",
        "--image-size",
        "64",
        "--concepts",
        _concepts(1)[0].id,
    ]
    runner = CliRunner()
    first = runner.invoke(
        app, ["zoo", "build", "--out", str(folder), *tiny, "--device", "cpu", "--mixed-precision", "bf16"]
    )
    assert first.exit_code == 0, first.output
    stored = json.loads((folder / BUILD_CONFIG_NAME).read_text())
    assert "device" not in stored and "mixed_precision" not in stored and stored["batch_size"] == 2
    assert json.loads((folder / THROUGHPUT_NAME).read_text())["runs"][0]["mixed_precision"] == "bf16"
    again = runner.invoke(app, ["zoo", "build", "--out", str(folder), *tiny, "--mixed-precision", "no"])
    assert again.exit_code == 0, again.output
    assert len(ZooManifest.load(folder).concepts) == 1
    bad = runner.invoke(app, ["zoo", "build", "--out", str(tmp_path / "other"), *tiny, "--device", "cuda"])
    assert bad.exit_code == 1 and "no CUDA device" in bad.output


def test_bundled_photos_are_upscaled_for_256_px_crops():
    from weightinit.cli.zoo import load_photos
    from weightinit.pairs import ProceduralPairs

    with pytest.raises(WeightinitError, match="smaller than"):
        PhotoSet.bundled(min_size=256)  # 256 x 170 px: no 256-px crop without upscaling
    photos = load_photos(None, 256)
    assert min(min(p.pixels.shape[:2]) for p in photos.photos) >= 256
    assert sorted(p.name for p in photos.photos) == sorted(p.name for p in PhotoSet.bundled().photos)
    x, y = ProceduralPairs(_concepts(1)[0], photos, size=256).sample(2, split="test", seed=0)
    assert x.shape == y.shape == (2, 3, 256, 256)
    small = load_photos(None, 64)  # the default zoo's photos are untouched
    assert [p.pixels.shape for p in small.photos] == [p.pixels.shape for p in PhotoSet.bundled().photos]


def test_generator_training_runs_in_bf16_on_cpu(tiny_zoo_dir, tmp_path):
    from conftest import TINY_MLP

    from weightinit.generator.training import GeneratorTrainingConfig, train_generator

    config = GeneratorTrainingConfig(
        denoiser_kwargs=TINY_MLP,
        steps=4,
        batch_size=8,
        warmup_steps=2,
        save_every=2,
        log_every=2,
        mixed_precision="bf16",
    )
    logs: list[str] = []
    gen = train_generator(tiny_zoo_dir, tmp_path / "g", config, progress=False, log=logs.append, device="cpu")
    assert any("on cpu" in line and "precision bf16" in line for line in logs)
    assert all(torch.isfinite(p).all() for p in gen.denoiser.parameters())
    # A second run in the same process with another precision (accelerate keeps one state per process).
    plain = dataclasses.replace(config, mixed_precision="no")
    train_generator(tiny_zoo_dir, tmp_path / "p", plain, progress=False, log=logs.append, device="cpu")
    assert any("precision no" in line for line in logs)
    with pytest.raises(WeightinitError, match="CUDA_VISIBLE_DEVICES"):
        train_generator(tiny_zoo_dir, tmp_path / "h", config, progress=False, device="cuda:1")
