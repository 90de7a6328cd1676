"""The weight generator: text conditioning, denoisers, training, sampling, the folder on disk."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from conftest import TINY_MLP, TINY_ZOO

from weightinit.errors import CheckpointError, WeightinitError
from weightinit.zoo.weights import ZooWeights

TINY_UNET = {
    "block_out_channels": [8, 16],
    "attention_levels": [False, True],
    "emb_dim": 16,
    "ctx_dim": 16,
    "attn_heads": 2,
}


@pytest.fixture(scope="module")
def zoo_dir(tiny_zoo_dir):
    return tiny_zoo_dir


@pytest.fixture(scope="module")
def encoder():
    from weightinit.generator.text import shared_text_encoder

    return shared_text_encoder()


def tiny_config(**kw):
    from weightinit.generator.training import GeneratorTrainingConfig

    base = dict(denoiser_kwargs=TINY_MLP, steps=6, batch_size=8, warmup_steps=2, save_every=3, log_every=2)
    return GeneratorTrainingConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def trained(tiny_generator_dir):
    return tiny_generator_dir  # trained with tiny_config()'s settings (see conftest)


# --- text ------------------------------------------------------------------------------------
def test_concept_text_is_normalised_and_bad_concepts_are_errors():
    from weightinit.generator.text import normalise_concept_text

    assert normalise_concept_text("  sketch\n to\tphoto ") == "sketch to photo"
    for bad in ("", "   \n", None, 3, ["a"]):
        with pytest.raises(WeightinitError, match="concept"):
            normalise_concept_text(bad)


def test_text_encoder_loads_offline_from_the_package_and_caches(encoder):
    from weightinit.generator.text import ConceptTextTruncated

    emb = encoder.encode(["sketch  to photo", "zombie"])
    assert emb.tokens.shape == (2, encoder.max_length, 384) and emb.mask.shape == (2, encoder.max_length)
    assert emb.pooled.shape == (2, 384) and torch.allclose(emb.pooled.norm(dim=1), torch.ones(2))
    again = encoder.encode("sketch to photo")  # normalised text hits the cache
    assert torch.equal(again.tokens, emb.tokens[:1])
    with pytest.warns(ConceptTextTruncated, match="truncated to the text encoder's max_length of 32"):
        long = encoder.encode("a photo " * 40)
    assert long.mask.sum() == encoder.max_length


# --- denoisers -------------------------------------------------------------------------------
@pytest.mark.parametrize("name,kwargs", [("mlp", TINY_MLP), ("unet1d", TINY_UNET)])
def test_denoisers_share_the_interface_and_train(name, kwargs):
    from weightinit.generator.denoisers import DENOISERS, build_denoiser

    assert name in DENOISERS
    torch.manual_seed(0)
    model = build_denoiser(name, block_size=32, num_blocks=5, text_dim=12, num_slots=2, slot_embedding=True, **kwargs)
    x, t = torch.randn(3, 32), torch.tensor([0, 10, 999])
    tokens, mask = torch.randn(3, 4, 12), torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    out = model(x, t, torch.tensor([0, 4, 2]), tokens, mask, torch.tensor([0, 1, 1]))
    assert out.shape == (3, 32) and torch.isfinite(out).all()
    (out - x).pow(2).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    with pytest.raises(WeightinitError, match="block index out of range"):
        model(x, t, torch.tensor([0, 5, 1]), tokens, mask, torch.tensor([0, 1, 1]))
    assert model.config.num_blocks == 5 and type(model).from_config(model.config).config.block_size == 32


# --- training --------------------------------------------------------------------------------
def test_training_reads_only_training_concepts(zoo_dir, encoder, monkeypatch):
    from weightinit.generator.training import load_training_data

    zoo = ZooWeights(zoo_dir)
    heldout = set(zoo.ids("heldout"))
    assert heldout
    read = []
    original = ZooWeights.concept
    monkeypatch.setattr(
        ZooWeights, "concept", lambda self, cid, *a, **k: read.append(cid) or original(self, cid, *a, **k)
    )
    encoder.clear_cache()  # other tests share this encoder and may have embedded held-out texts
    data = load_training_data(zoo, encoder)
    assert sorted(read) == zoo.ids("train") == data.concept_ids and not heldout & set(read)
    heldout_texts = {t for cid in heldout for t in [zoo.record(cid).text, *zoo.record(cid).phrasings]}
    assert not heldout_texts & set(encoder._cache) - {
        t for cid in read for t in [zoo.record(cid).text, *zoo.record(cid).phrasings]
    }
    assert data.blocks.shape == (len(read), zoo.layout.num_blocks, zoo.layout.block_size)


def test_train_save_load_generate_is_seeded_and_reproducible(trained, zoo_dir):
    from weightinit.generator import WeightGenerator

    files = {p.relative_to(trained).as_posix() for p in trained.rglob("*") if p.is_file()}
    assert {
        "generator_config.json",
        "denoiser/config.json",
        "denoiser/diffusion_pytorch_model.safetensors",
        "scheduler/scheduler_config.json",
        "layout.json",
        "normalizer.safetensors",
        "base.safetensors",
        "README.md",
        "train_log.jsonl",
    } <= files
    assert not any(name.endswith((".bin", ".pkl", ".pt")) for name in files)
    log = [json.loads(line) for line in (trained / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 6 and all("loss" in r for r in log)
    gen = WeightGenerator.from_pretrained(trained)
    zoo = ZooWeights(zoo_dir)
    assert (
        gen.layout == zoo.layout
        and gen.arch == TINY_ZOO["arch"]
        and gen.zoo.lora_rank == 2
        and gen.zoo_summary["train_concepts"] > 0
    )
    text = zoo.record(zoo.ids("heldout")[0]).text
    a, b, c = gen.generate(text, seed=0), gen.generate(text, seed=0), gen.generate(text, seed=1)
    assert list(a) == zoo.layout.names
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    assert all(a[k].dtype == torch.float16 and a[k].shape == zoo.layout[k].shape for k in a)
    ddim = gen.generate(text, seed=0, steps=3, guidance=2.0)
    assert all(torch.isfinite(v).all() for v in ddim.values())
    assert "Training data" in (trained / "README.md").read_text()


def test_chunked_sampling_is_bitwise_the_unchunked_result(trained):
    from weightinit.generator import WeightGenerator
    from weightinit.generator.sampling import block_noise, sample_blocks

    gen = WeightGenerator.from_pretrained(trained)
    full = gen.sample_blocks("sketch to photo", seed=7)
    emb = gen.encode_text("sketch to photo")
    args = (gen.denoiser, gen.scheduler, gen.layout, gen.normalizer, emb)
    assert gen.layout.num_blocks > 8
    center = gen.center_for(emb)  # the zoo mean plus the retrieval prior for this text
    small = sample_blocks(*args, seed=7, forward_batch=4, chunk_size=4, center=center)
    for chunk in (1, 8, 12, 4096):  # chunks are whole forward batches; results never depend on them
        assert torch.equal(sample_blocks(*args, seed=7, forward_batch=4, chunk_size=chunk, center=center), small)
    assert torch.allclose(small, full, atol=1e-5)
    assert torch.equal(
        block_noise(5, 0, 2500, 8), torch.cat([block_noise(5, 0, 1000, 8), block_noise(5, 1000, 2500, 8)])
    )
    for chunk in (1, 7, 64):
        assert torch.equal(gen.sample_blocks("sketch to photo", seed=7, chunk_size=chunk), full)
    g = torch.Generator().manual_seed(3)
    assert torch.equal(
        gen.sample_blocks("sketch to photo", generator=g, chunk_size=5),
        gen.sample_blocks("sketch to photo", generator=torch.Generator().manual_seed(3)),
    )
    # De-normalised: padding is zero, values are on the zoo's scale.
    from weightinit.codec import BlockCodec

    mask = BlockCodec(gen.layout).index.valid_mask(gen.layout.block_size)
    assert (full[~mask] == 0).all()


def test_resume_continues_the_step_count(zoo_dir, encoder, tmp_path):
    from weightinit.generator.training import checkpoints, train_generator

    out = tmp_path / "gen"
    train_generator(zoo_dir, out, tiny_config(), progress=False, stop_after=4)  # "killed" after step 4
    assert [p.name for p in checkpoints(out)] == ["step-0000003"]
    assert not (out / "generator_config.json").exists()
    with pytest.raises(WeightinitError, match="--resume"):
        train_generator(zoo_dir, out, tiny_config(), progress=False)
    with pytest.raises(WeightinitError, match="another config: lr"):
        train_generator(zoo_dir, out, tiny_config(lr=5e-4), resume=True, progress=False)
    logs = []
    gen = train_generator(zoo_dir, out, tiny_config(), resume=True, progress=False, log=logs.append)
    assert any("resumed from step-0000003 at step 3" in line for line in logs)
    assert gen.training["steps_done"] == 6
    assert [p.name for p in checkpoints(out)] == ["step-0000003", "step-0000006"]
    assert not any(p.suffix in (".bin", ".pkl") for p in out.rglob("*"))
    # resuming a finished run trains nothing and keeps its summary (it once wrote a NaN loss, 0 steps/s)
    again = train_generator(zoo_dir, out, tiny_config(), resume=True, progress=False)
    assert again.training["steps_done"] == 6 and again.training["final_loss"] == gen.training["final_loss"]
    assert math.isfinite(again.training["final_loss"]) and again.training["steps_per_s"] > 0


# --- the folder on disk: refusals ------------------------------------------------------------
def _copy(trained, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(trained, folder)
    return folder


@pytest.mark.parametrize("name", ["denoiser/diffusion_pytorch_model.bin", "extra/model.pkl", "weights.ckpt"])
def test_pickle_files_are_refused(trained, tmp_path, name):
    from weightinit.generator import WeightGenerator

    folder = _copy(trained, tmp_path)
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"\x80\x04not really")
    with pytest.raises(CheckpointError, match="pickle"):
        WeightGenerator.from_pretrained(folder)


def test_missing_file_newer_format_and_wrong_fingerprint_are_clear_errors(trained, tmp_path):
    from weightinit.generator import WeightGenerator

    folder = _copy(trained, tmp_path)
    (folder / "normalizer.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing normalizer.safetensors"):
        WeightGenerator.from_pretrained(folder)
    shutil.copy(trained / "normalizer.safetensors", folder / "normalizer.safetensors")
    config = json.loads((folder / "generator_config.json").read_text())
    (folder / "generator_config.json").write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(CheckpointError, match="format version 99 is newer"):
        WeightGenerator.from_pretrained(folder)
    (folder / "generator_config.json").write_text(json.dumps({**config, "layout_fingerprint": "0" * 16}))
    with pytest.raises(CheckpointError, match="fingerprint"):
        WeightGenerator.from_pretrained(folder)
    with pytest.raises(CheckpointError, match="no generator folder"):
        WeightGenerator.from_pretrained(tmp_path / "nothing")


def test_a_format_2_folder_loads_its_zoo_config_typed_and_generates_the_same(trained, tmp_path):
    """Folders written before format 3 (the bundled one among them) kept the zoo's config and
    counts in one dict, with a lora_scale of 1.0; they load, and an export writes format 3."""
    from weightinit.generator import WeightGenerator
    from weightinit.generator.export import export_generator
    from weightinit.generator.model import FORMAT_VERSION
    from weightinit.generators import bundled_generator_path

    folder = _copy(trained, tmp_path)
    config = json.loads((folder / "generator_config.json").read_text())
    zoo = config.pop("zoo")
    old = {
        k: zoo[k]
        for k in ("arch", "representation", "lora_rank", "lora_seed", "base_steps", "concept_steps", "image_size")
    }
    old.update(config.pop("zoo_summary"), lora_scale=1.0)
    (folder / "generator_config.json").write_text(json.dumps({**config, "format_version": 2, "zoo": old}))
    gen, ref = WeightGenerator.from_pretrained(folder), WeightGenerator.from_pretrained(trained)
    assert gen.zoo.lora_rank == ref.zoo.lora_rank == TINY_ZOO["lora_rank"] and gen.zoo.arch == TINY_ZOO["arch"]
    assert gen.zoo.base_steps == TINY_ZOO["base_steps"] and gen.zoo_summary == ref.zoo_summary
    a, b = gen.generate("sketch to photo", seed=1), ref.generate("sketch to photo", seed=1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    exported = json.loads((export_generator(folder, tmp_path / "exported") / "generator_config.json").read_text())
    assert exported["format_version"] == FORMAT_VERSION and exported["zoo"]["lora_rank"] == TINY_ZOO["lora_rank"]
    (folder / "generator_config.json").write_text(
        json.dumps({**config, "format_version": 2, "zoo": {**old, "lora_scale": 2.0}})
    )
    with pytest.raises(CheckpointError, match="lora_scale"):
        WeightGenerator.from_pretrained(folder)
    bundled = json.loads((bundled_generator_path() / "generator_config.json").read_text())
    if bundled["format_version"] < 3:  # until the bundled generator is exported again
        assert WeightGenerator.from_pretrained(bundled_generator_path()).zoo.arch == bundled["zoo"]["arch"]


def test_loads_offline_from_a_prepopulated_hub_cache(trained, tmp_path, monkeypatch):
    from conftest import HUB_REVISION as rev
    from conftest import prefill_hub_cache

    from weightinit.generator import WeightGenerator

    prefill_hub_cache(trained, tmp_path / "hub", monkeypatch)
    gen = WeightGenerator.from_pretrained("someorg/tiny-generator")
    ref = WeightGenerator.from_pretrained(trained)
    assert torch.equal(gen.sample_blocks("zombie", seed=1), ref.sample_blocks("zombie", seed=1))
    assert WeightGenerator.from_pretrained("someorg/tiny-generator", revision=rev).layout == ref.layout
    with pytest.raises(CheckpointError, match="local hub cache"):
        WeightGenerator.from_pretrained("someorg/not-cached")


def test_train_cli_runs_and_reports_known_errors(zoo_dir, encoder, tmp_path):
    import typer
    from typer.testing import CliRunner

    from weightinit.cli.train import train

    app = typer.Typer()
    app.command()(train)
    runner = CliRunner()
    out = tmp_path / "cli_gen"
    args = [
        "--zoo",
        str(zoo_dir),
        "--out",
        str(out),
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--denoiser-options",
        json.dumps(TINY_MLP),
        "--no-block-index",
        "--save-every",
        "2",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "denoiser" / "config.json").read_text())
    assert config["use_block_index"] is False and config["hidden_dim"] == 32
    again = runner.invoke(app, args)
    assert again.exit_code != 0 and isinstance(again.exception, WeightinitError)


def test_export_copies_only_the_generator_and_replaces_the_old_one(trained, tmp_path):
    from weightinit.generator import WeightGenerator
    from weightinit.generator.export import export_generator

    out = tmp_path / "bundled"
    out.mkdir()
    (out / "stale.txt").write_text("from an older export")
    export_generator(trained, out, quality={"note": "tiny"})
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert "stale.txt" not in files and not any(f.startswith("checkpoints/") for f in files)
    assert "train_log.jsonl" not in files and "generator_config.json" in files
    a = WeightGenerator.from_pretrained(str(trained)).generate("sketch to photo", seed=1)
    b = WeightGenerator.from_pretrained(str(out)).generate("sketch to photo", seed=1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert WeightGenerator.from_pretrained(str(out)).quality["note"] == "tiny"


def test_export_in_float16_halves_the_denoiser_and_loads_as_float32(trained, tmp_path):
    from weightinit.fileio import read_safetensors
    from weightinit.generator import WeightGenerator
    from weightinit.generator.export import export_generator
    from weightinit.generator.model import DENOISER_DIR, DENOISER_WEIGHTS

    export_generator(trained, tmp_path / "half", denoiser_dtype="float16")
    stored, _ = read_safetensors(tmp_path / "half" / DENOISER_DIR / DENOISER_WEIGHTS)
    full, _ = read_safetensors(trained / DENOISER_DIR / DENOISER_WEIGHTS)
    assert all(v.dtype == torch.float16 for v in stored.values()) and stored.keys() == full.keys()
    gen = WeightGenerator.from_pretrained(tmp_path / "half")
    params = dict(gen.denoiser.named_parameters())
    assert all(p.dtype == torch.float32 for p in params.values())
    assert all(torch.equal(params[k], full[k].half().float()) for k in params)
    assert torch.isfinite(gen.sample_blocks("sketch to photo")).all()


def test_model_card_quality_summary_of_a_benchmark_report():
    from weightinit.generator.export import quality_summary

    report = {
        "sampling": {"seconds_new_text": 0.1234},
        "sample_process": {"peak_rss_mb": 540.4},
        "quality": {
            "reconstruction": {"mean_rel_l2": 0.5, "mean_rel_l2_zoo_mean": 0.86, "concepts": 3},
            "heldout": {
                "concepts": 2,
                "generated_beats_both": 1,
                "overall": {"generated": 0.71234},
                "per_family": {"tone": {"generated": 0.6, "n": 2}},
            },
        },
    }
    s = quality_summary(report)
    assert s["train reconstruction rel L2 (zoo mean)"] == "0.500 (0.860) over 3 concepts"
    assert s["held-out rel L2, mean"] == {"generated": 0.712} and s["peak RSS of a sampling process, MB"] == 540
    assert s["held-out concepts where generated beats zoo mean and nearest (rel L2)"] == "1 of 2"
    assert quality_summary({"note": "hand-written"}) == {"note": "hand-written"}
    start = quality_summary(
        {
            "concepts": 4,
            "median_psnr_step0": {"mean": 15.734, "generated_1": 17.1},
            "generated_beats": {"mean_and_nearest": 1, "mean": 3, "nearest": 2},
        }
    )
    assert start["held-out PSNR at step 0, median dB"] == {"mean": 15.73, "generated_1": 17.1}
    assert start["held-out concepts where generated starts above zoo mean and nearest (PSNR)"].startswith(
        "1 of 4 (above the mean on 3"
    )
