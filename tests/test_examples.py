"""Every example runs at tiny size, as a user would run it (a subprocess), with the tiny generator."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ENV = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")


def run(args, cwd) -> str:
    out = subprocess.run(
        [sys.executable, *map(str, args)], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def psnr_line(stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if line.startswith("PSNR")]
    assert len(lines) == 1 and re.search(r"before \d+\.\d+ dB", lines[0]), stdout
    return lines[0]


def test_pix2pix_example_initialises_then_resumes_without_initialising(tiny_generator_dir, tmp_path):
    script = EXAMPLES / "pix2pix_train.py"
    common = ["--tiny", "--generator", tiny_generator_dir, "--checkpoints_dir", tmp_path / "checkpoints"]
    first = run([script, *common], tmp_path)
    assert "weightinit: initialised" in first and "sketch to photo" in first
    assert "world size 1" in psnr_line(first)
    assert (tmp_path / "checkpoints" / "pix2pix_weightinit" / "latest_net_G.safetensors").is_file()
    resumed = run([script, *common, "--continue_train"], tmp_path)
    assert "weightinit: skipped" in resumed and "initialised" not in resumed
    psnr_line(resumed)


def test_pix2pix_example_in_lora_mode_trains_saves_plain_keys_and_resumes(tiny_generator_dir, tmp_path):
    from safetensors.torch import load_file

    from weightinit import plugins

    script = EXAMPLES / "pix2pix_train.py"
    common = ["--tiny", "--generator", tiny_generator_dir, "--checkpoints_dir", tmp_path / "checkpoints"]
    first = run([script, *common, "--init_mode", "lora"], tmp_path)
    assert "(pix2pix, lora" in first and "LoRA modules" in first
    state = load_file(tmp_path / "checkpoints" / "pix2pix_weightinit" / "latest_net_G.safetensors")
    assert not any("lora_" in k or ".base." in k for k in state)
    plugins.build_model("pix2pix:unet_64,ngf=4,dropout=true").load_state_dict(state, strict=True)
    resumed = run([script, *common, "--continue_train"], tmp_path)  # the plain network loads it
    assert "weightinit: skipped" in resumed


def test_pix2pix_example_tiny_without_a_generator_says_what_to_pass(tmp_path):
    out = subprocess.run(
        [sys.executable, EXAMPLES / "pix2pix_train.py", "--tiny"],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "--generator GEN" in out.stderr and "Traceback" not in out.stderr


def test_pix2pix_example_under_torchrun(tiny_generator_dir, tmp_path):
    script = EXAMPLES / "pix2pix_train.py"
    stdout = run(
        [
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            script,
            "--tiny",
            "--init_pairs",
            "4",
            "--generator",
            tiny_generator_dir,
            "--checkpoints_dir",
            tmp_path,
        ],
        tmp_path,
    )
    assert stdout.count("weightinit: initialised") == 1  # printed by rank 0 only
    assert "on 4 pairs" in stdout  # the start chosen on pairs, scores averaged over the ranks
    assert "world size 2" in psnr_line(stdout)


def test_cyclegan_example_initialises_both_generators(tiny_generator_dir, tmp_path):
    stdout = run([EXAMPLES / "cyclegan_train.py", "--tiny", "--generator", tiny_generator_dir], tmp_path)
    assert "(cyclegan, merge" in stdout
    # netG_B gets the catalog's exact reverse of sketch-to-photo (pencil-medium), not the forward weights
    assert "netG_A: 'sketch to photo', netG_B: 'photo to moderate pencil sketch'" in stdout
    assert "PSNR A->B before" in stdout


def test_custom_architecture_walkthrough(tmp_path):
    pytest.importorskip("weightinit_adapter_template", reason="pip install -e adapters/template")
    stdout = run(
        [EXAMPLES / "custom_architecture" / "walkthrough.py", "--tiny", "--workdir", tmp_path / "run"], tmp_path
    )
    for step in (
        "1. adapter 'template'",
        "2. zoo",
        "3. generator",
        "4. weightinit: initialised",
        "5.   weightinit: PSNR",
    ):
        assert step in stdout, stdout
    assert (tmp_path / "run" / "generator" / "generator_config.json").is_file()
