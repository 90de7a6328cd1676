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
from weightinit.zoo.manifest import ZooConfig, ZooManifest
from weightinit.zoo.weights import ZooWeights

CLI_TINY = ["--arch", TINY["arch"], "--base-steps", "4", "--concept-steps", "3", "--pool-size", "8", "--test-pairs", "4", "--rank", "2"]


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
    cmd = [sys.executable, "-m", "weightinit", "zoo", "build", "--out", str(folder), *CLI_TINY,
           "--concepts", ",".join(c.id for c in concepts(3, 1)), "--concept-steps", "40"]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
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
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "weightinit", "zoo", "build",
           "--out", str(folder), *CLI_TINY, "--concepts", ",".join(ids)]
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
    ZooBuilder(tmp_path, ZooConfig(**TINY, lora_train_a=False), concepts(2, 0), photos=PhotoSet.load(None), log=lambda s: None).run()
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
    from weightinit.adapters.pix2pix_networks import init_normal_

    if arch.split(":")[0] not in plugins.adapter_names():
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
    assert targets and all(isinstance(model.get_submodule(t), (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)) for t in targets)
