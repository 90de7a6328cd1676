"""Zoo builds: aligned weights, atomic files, resume after kill -9, locks, many processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import TINY_ZOO as TINY

from weightinit.concepts.catalog import default_catalog
from weightinit.errors import WeightinitError
from weightinit.images import PhotoSet
from weightinit.zoo.build import ZooBuilder, build_lock, interleave_splits, verify_zoo
from weightinit.zoo.manifest import PAIR_SOURCE_FIELDS, ZooConfig, ZooManifest
from weightinit.zoo.weights import ZooWeights

CLI_TINY = [
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
]


def concepts(n_train: int = 2, n_heldout: int = 1):
    cat = default_catalog()
    return cat.by_split("train")[:n_train] + cat.by_split("heldout")[:n_heldout]


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    ZooBuilder(folder, ZooConfig(**TINY), concepts(), photos=PhotoSet.load(None), log=lambda s: None).run()
    return folder


def test_tiny_zoo_is_complete_verified_and_aligned(tiny_zoo):
    manifest = ZooManifest.load(tiny_zoo)
    assert len(manifest.concepts) == 3 and verify_zoo(tiny_zoo) == []
    weights = ZooWeights(tiny_zoo)
    assert weights.ids("heldout") == [concepts()[2].id]
    # Same base, same LoRA init: every concept's A factors started from one tensor and moved little.
    a = [weights.concept(cid) for cid in weights.ids()]
    first_a = next(k for k in a[0] if k.endswith("lora_A"))
    assert weights.layout.slots[0].name == first_a
    assert all((t[first_a] - a[0][first_a]).abs().max() < 0.05 for t in a)
    for record in manifest.concepts.values():
        assert record.steps == 3 and record.seconds > 0
        assert {"psnr", "l1", "ssim"} <= record.metrics_base.keys() and {"psnr"} <= record.metrics_trained.keys()
    assert all(not p.name.endswith(".tmp") for p in tiny_zoo.rglob("*"))


def test_resume_skips_done_concepts_and_rebuilds_corrupt_ones(tiny_zoo, tmp_path):
    import shutil

    folder = tmp_path / "zoo"
    shutil.copytree(tiny_zoo, folder)
    victim = ZooManifest.load(folder).concepts[concepts()[0].id]
    (folder / victim.file).write_bytes(b"corrupt")
    problems = verify_zoo(folder)
    assert len(problems) == 1 and concepts()[0].id in problems[0]
    untouched = folder / ZooManifest.load(folder).concepts[concepts()[1].id].file
    mtime = untouched.stat().st_mtime_ns
    logs = []
    ZooBuilder(folder, ZooConfig(**TINY), concepts(), photos=PhotoSet.load(None), log=logs.append).run()
    assert verify_zoo(folder) == []
    assert untouched.stat().st_mtime_ns == mtime
    assert any("2 of 3 concepts already built" in line for line in logs)


def test_resume_with_another_config_is_refused(tiny_zoo):
    other = ZooConfig(**{**TINY, "concept_steps": 99})
    with pytest.raises(WeightinitError, match="another zoo config"):
        ZooBuilder(tiny_zoo, other, concepts(), log=lambda s: None).run()


def test_second_build_on_the_same_folder_is_locked_out(tmp_path):
    with build_lock(tmp_path, 0):
        with pytest.raises(WeightinitError, match="another build is writing"):
            with build_lock(tmp_path, 0):
                pass
    with build_lock(tmp_path, 0):  # released again
        pass


def test_verify_cli_exits_1_on_mismatch(tiny_zoo, tmp_path):
    import shutil

    from typer.testing import CliRunner

    from weightinit.cli.app import app

    runner = CliRunner()
    ok = runner.invoke(app, ["zoo", "verify", str(tiny_zoo)])
    assert ok.exit_code == 0, ok.output
    folder = tmp_path / "zoo"
    shutil.copytree(tiny_zoo, folder)
    (folder / "base.safetensors").write_bytes(b"x")
    bad = runner.invoke(app, ["zoo", "verify", str(folder)])
    assert bad.exit_code == 1, bad.output


def test_interleave_spreads_heldout_concepts():
    out = interleave_splits(list(range(10)), ["a", "b"])
    assert len(out) == 12 and out.index("a") < out.index(9) and out[-1] == "b"


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return env


def test_kill_9_in_the_middle_then_resume_completes(tmp_path):
    folder = tmp_path / "zoo"
    cmd = [
        sys.executable,
        "-m",
        "weightinit",
        "zoo",
        "build",
        "--out",
        str(folder),
        *CLI_TINY,
        "--concepts",
        ",".join(c.id for c in concepts(3, 1)),
        "--concept-steps",
        "40",
    ]
    proc = subprocess.Popen(
        cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(list((folder / "records").glob("*.json"))) < 2:  # base + one concept
        time.sleep(0.05)
    time.sleep(0.3)  # now inside the next concept
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list((folder / "records").glob("*.json"))) - 1
    assert 1 <= done_before < 4
    stale = folder / "concepts" / ".half-written.safetensors.abc123.tmp"  # as a kill during a write leaves
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"partial")
    subprocess.run(cmd, env=_env(), check=True, capture_output=True)
    assert verify_zoo(folder) == []
    assert not list(folder.rglob("*.tmp"))
    assert len(ZooManifest.load(folder).concepts) == 4


def test_two_processes_build_each_concept_exactly_once(tmp_path):
    folder = tmp_path / "zoo"
    ids = [c.id for c in concepts(3, 1)]
    # On CPUs accelerate's own launcher needs MPI for several processes; torchrun sets the same
    # environment that accelerate's PartialState reads (on GPUs: `accelerate launch --multi_gpu`).
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "weightinit",
        "zoo",
        "build",
        "--out",
        str(folder),
        *CLI_TINY,
        "--concepts",
        ",".join(ids),
    ]
    out = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    manifest = ZooManifest.load(folder)
    assert sorted(manifest.concepts) == sorted(ids)
    trained_by = [line for line in out.stdout.splitlines() if " PSNR base " in line]
    assert sorted(line.split("]")[1].split(":")[0].strip() for line in trained_by) == sorted(ids)
    ranks = {line.split("]")[0] for line in trained_by}
    assert ranks == {"[rank 0", "[rank 1"}
    assert verify_zoo(folder) == []


def test_shared_data_gives_every_concept_the_same_seed_and_frozen_a_stays_at_its_init(tmp_path):
    assert ZooConfig().data_seed("sepia") == ZooConfig().data_seed("sketch-to-photo") == 0
    own = ZooConfig(shared_data=False)
    assert own.data_seed("sepia") != own.data_seed("sketch-to-photo")
    ZooBuilder(
        tmp_path, ZooConfig(**TINY, lora_train_a=False), concepts(2, 0), photos=PhotoSet.load(None), log=lambda s: None
    ).run()
    weights = ZooWeights(tmp_path)
    a, b = (weights.concept(cid) for cid in weights.ids())
    factors_a = [k for k in a if k.endswith("lora_A")]
    assert factors_a and all(torch.equal(a[k], b[k]) for k in factors_a)  # both still the shared init
    assert any(not torch.equal(a[k], b[k]) for k in a if k.endswith("lora_B"))


@pytest.mark.parametrize("arch", [TINY["arch"], "cyclegan:unet_64,ngf=4", "template:tiny,width=4"])
def test_the_untrained_network_is_the_adapter_s_init_and_bit_for_bit_what_builds_made_before(arch, tmp_path):
    """``new_model`` asks the adapter (``reset_parameters``); for pix2pix, CycleGAN and the
    template that is the reference N(0, 0.02) init the builder used to call itself, so a zoo
    started before keeps its base and concepts bit for bit under the same seed."""
    from weightinit import plugins
    from weightinit.adapters.base import ArchSpec
    from weightinit.adapters.pix2pix_networks import init_normal_

    if ArchSpec.parse(arch).adapter not in plugins.adapter_names():
        pytest.skip("the template plugin is not installed")
    builder = ZooBuilder(tmp_path, ZooConfig(**{**TINY, "arch": arch, "seed": 3}), concepts(), log=lambda s: None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        before = init_normal_(plugins.build_model(arch))  # what ZooBuilder.new_model did itself
    rng = torch.get_rng_state()
    model = builder.new_model()
    assert torch.equal(torch.get_rng_state(), rng)  # the caller's random stream is untouched
    assert model.state_dict().keys() == before.state_dict().keys()
    assert all(torch.equal(v, before.state_dict()[k]) for k, v in model.state_dict().items())
    targets = builder.adapter.lora_targets(model)
    assert targets and all(
        isinstance(model.get_submodule(t), (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear))
        for t in targets
    )


def test_existing_zoo_folders_read_as_procedural_and_resume(tmp_path):
    """Zoos built before the pair-source setting (the repository's zoo/ among them) have none in
    build.json or the manifest: they read as procedural, and a resumed build accepts them."""
    import json
    import shutil
    from pathlib import Path

    from weightinit.zoo.build import BUILD_CONFIG_NAME

    repo_zoo = Path(__file__).resolve().parent.parent / "zoo"
    if not (repo_zoo / "manifest.json").is_file():
        pytest.skip("no zoo/ in this checkout")
    stored = json.loads((repo_zoo / BUILD_CONFIG_NAME).read_text())
    assert "pairs" not in stored and "pairs" not in json.loads((repo_zoo / "manifest.json").read_text())["config"]
    weights = ZooWeights(repo_zoo)
    assert weights.config.pairs == "procedural" and weights.config.editor is None
    cid = weights.ids("heldout")[0]
    assert weights.test_pairs(cid)[0].shape == (weights.config.test_pairs, 3, 64, 64)
    shutil.copy(repo_zoo / BUILD_CONFIG_NAME, tmp_path / BUILD_CONFIG_NAME)
    ZooBuilder(tmp_path, ZooConfig.from_dict(stored), concepts()).check_config()  # no error: the CLI's defaults


def test_a_pair_source_setting_that_cannot_work_is_refused_at_once():
    with pytest.raises(WeightinitError, match="pairs must be one of procedural, editor"):
        ZooConfig(pairs="folder")
    with pytest.raises(WeightinitError, match="needs an editor"):
        ZooConfig(pairs="editor")
    with pytest.raises(
        WeightinitError, match=r"editor \('timbrooks/instruct-pix2pix'\) set the editor, which makes pairs only"
    ):
        ZooConfig(editor="timbrooks/instruct-pix2pix")
    with pytest.raises(WeightinitError, match=r"editor_size \(128\) set the editor"):
        ZooConfig(editor_size=128)
    with pytest.raises(WeightinitError, match="editor_steps must be positive"):
        ZooConfig(pairs="editor", editor="x", editor_steps=0)
    # a procedural zoo writes none of the pair-source fields; an editor zoo all of them
    assert not set(PAIR_SOURCE_FIELDS) & ZooConfig().to_dict().keys()
    assert set(PAIR_SOURCE_FIELDS) <= ZooConfig(pairs="editor", editor="x").to_dict().keys()
    assert ZooConfig.from_dict(ZooConfig(pairs="editor", editor="x").to_dict()) == ZooConfig(pairs="editor", editor="x")


def test_a_zoo_of_editor_pairs_builds_resumes_and_reads_back_the_pairs_it_trained_on(tmp_path, monkeypatch):
    """``pairs="editor"``: an InstructPix2Pix pipeline (here the tiny random one, offline) makes
    every pair of the build, and the zoo reads back the same ones (``ZooWeights``, benchmarks)."""
    import json

    from test_images_pairs import _tiny_instruct_pix2pix

    from weightinit.pairs import DiffusionEditorPairs, ProceduralPairs, zoo_pair_source
    from weightinit.recipe import evaluate
    from weightinit.zoo.build import BUILD_CONFIG_NAME

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pipe = _tiny_instruct_pix2pix(tmp_path)
    config = ZooConfig(**TINY, pairs="editor", editor="tiny-random-instruct-pix2pix", editor_size=32, editor_steps=2)
    folder, photos, chosen = tmp_path / "zoo", PhotoSet.load(None), concepts(1, 1)
    manifest = ZooBuilder(folder, config, chosen, photos=photos, log=lambda s: None, editor=pipe).run()
    assert len(manifest.concepts) == 2 and verify_zoo(folder) == []
    stored = json.loads((folder / BUILD_CONFIG_NAME).read_text())
    assert (stored["pairs"], stored["editor"], stored["editor_size"], stored["editor_steps"]) == (
        "editor",
        config.editor,
        32,
        2,
    )
    assert ZooManifest.load(folder).config == config
    concept = chosen[1]
    source = zoo_pair_source(config, concept, photos, editor=pipe)
    assert isinstance(source, DiffusionEditorPairs) and (
        source.size,
        source.editor_size,
        source.num_inference_steps,
    ) == (64, 32, 2)
    test = DiffusionEditorPairs(concept, photos, pipe, size=64, editor_size=32, num_inference_steps=2).sample(
        config.test_pairs, "test", config.data_seed(concept.id)
    )
    read = ZooWeights(folder, editor=pipe).test_pairs(concept.id, photos)
    assert all(torch.equal(a, b) for a, b in zip(read, test))
    procedural = ProceduralPairs(concept, photos, size=64).sample(
        config.test_pairs, "test", config.data_seed(concept.id)
    )
    assert not torch.equal(read[1], procedural[1])  # the editor's edits, not the concept's own builder
    # the build scored the base on exactly these pairs
    assert manifest.concepts[concept.id].metrics_base == pytest.approx(evaluate(ZooWeights(folder).base_model(), *test))
    files = {cid: r.sha256 for cid, r in manifest.concepts.items()}
    again = ZooBuilder(folder, config, chosen, photos=photos, log=lambda s: None, editor=pipe).run()
    assert {cid: r.sha256 for cid, r in again.concepts.items()} == files  # resumed: nothing rebuilt
    with pytest.raises(
        WeightinitError, match=r"another zoo config \(differs in \['editor', 'editor_size', 'editor_steps', 'pairs'\]\)"
    ):
        ZooBuilder(folder, ZooConfig(**TINY), chosen, photos=photos, log=lambda s: None).check_config()


def test_zoo_build_cli_with_an_editor_that_does_not_load_is_one_error_and_writes_nothing(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from weightinit.cli.app import app

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "zoo"
    cid = concepts(1, 0)[0].id
    for extra, message in (
        (
            ["--pairs", "editor", "--editor", "nobody-here/no-such-editor"],
            "could not load the diffusion editor 'nobody-here/no-such-editor': it is not a folder, nor in the local "
            "hub cache",
        ),
        (["--pairs", "editor"], "pairs='editor' needs an editor"),
        (["--editor", "nobody-here/no-such-editor"], "makes pairs only with pairs='editor'"),
    ):
        result = CliRunner().invoke(app, ["zoo", "build", "--out", str(folder), *CLI_TINY, "--concepts", cid, *extra])
        assert result.exit_code == 1, result.output
        assert message in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert not folder.exists()


def test_zoo_build_cli_with_a_local_editor_folder_builds_a_zoo_of_its_pairs(tmp_path, monkeypatch):
    """``--pairs editor --editor DIR --images DIR``: the pipeline saved in DIR (the tiny random
    one) loads once, makes the pairs, and the zoo records which editor made them."""
    import json

    from PIL import Image
    from test_images_pairs import _tiny_instruct_pix2pix
    from typer.testing import CliRunner

    from weightinit.cli.app import app
    from weightinit.zoo.build import BUILD_CONFIG_NAME

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    editor = tmp_path / "tiny-instruct-pix2pix"
    _tiny_instruct_pix2pix(tmp_path).save_pretrained(editor)
    images = tmp_path / "photos"
    images.mkdir()
    for photo in PhotoSet.bundled().photos[:4]:  # your photos: the editor edits their crops
        Image.fromarray((photo.pixels * 255 + 0.5).astype("uint8")).save(images / f"{photo.name}.png")
    folder = tmp_path / "zoo"
    cid = concepts(1, 0)[0].id
    args = [
        "zoo",
        "build",
        "--out",
        str(folder),
        *CLI_TINY,
        "--concepts",
        cid,
        "--pairs",
        "editor",
        "--editor",
        str(editor),
        "--editor-size",
        "32",
        "--editor-steps",
        "2",
        "--images",
        str(images),
        "--device",
        "cpu",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    stored = json.loads((folder / BUILD_CONFIG_NAME).read_text())
    assert (stored["pairs"], stored["editor"], stored["editor_size"], stored["editor_steps"]) == (
        "editor",
        str(editor),
        32,
        2,
    )
    assert list(ZooManifest.load(folder).concepts) == [cid] and verify_zoo(folder) == []
