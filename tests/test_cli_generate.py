"""``weightinit sample`` and ``weightinit init``: checkpoints the reference code loads as they are."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from weightinit import plugins
from weightinit.cli import app as app_module
from weightinit.initialization import initialize

ARCH = "pix2pix:unet_64,ngf=4"
CONCEPT = "sketch to photo"
runner = CliRunner()


@pytest.fixture(autouse=True)
def generate_commands(monkeypatch):
    """The two commands, registered in COMMANDS the way app.py lists built-ins."""
    commands = list(app_module.COMMANDS)
    for name in ("sample", "init"):
        if name not in dict(commands):
            commands.append((name, f"weightinit.cli.generate:{name}"))
    monkeypatch.setattr(app_module, "COMMANDS", commands)


def run(args, code=0):
    result = runner.invoke(app_module.app, [str(a) for a in args])
    shown = f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        shown += f"\nexception: {result.exception!r}"
    assert result.exit_code == code, shown
    return result


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.stderr
    return lines[0]


def reference_generator(seed: int = 0):
    """A freshly built generator with the reference key layout, randomly initialised."""
    torch.manual_seed(seed)
    return plugins.build_model(ARCH)


def initialized(seed: int, generator, start=None):
    model = start if start is not None else reference_generator(seed=123)
    initialize(model, CONCEPT, generator=generator, seed=seed)
    return model.state_dict()


def assert_same(state: dict, expected: dict) -> None:
    assert state.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(state[key], value), key


def test_sample_writes_a_checkpoint_plain_load_state_dict_accepts(tiny_generator_dir, tmp_path):
    out = tmp_path / "init.safetensors"
    result = run(["sample", CONCEPT, "--out", out, "--generator", tiny_generator_dir, "--seed", 4, "--json"])
    report = json.loads(result.stdout)
    assert report["concept"] == CONCEPT and report["seed"] == 4 and report["out"] == str(out) and report["arch"] == ARCH
    state = load_file(out)
    net = reference_generator(seed=99)
    net.load_state_dict(state, strict=True)  # the reference code's own call
    assert_same(state, initialized(4, tiny_generator_dir))
    # The human-readable report names the concept and the output.
    out2 = tmp_path / "again.safetensors"
    text = run(["sample", CONCEPT, "-o", out2, "-g", tiny_generator_dir, "--seed", 4]).stdout
    assert CONCEPT in text and str(out2.name) in text.replace("\n", "")
    assert_same(load_file(out2), state)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_init_starts_from_a_users_checkpoint(tiny_generator_dir, tmp_path, suffix):
    user = reference_generator(seed=7)
    checkpoint = tmp_path / f"latest_net_G{suffix}"
    if suffix == ".pt":
        torch.save(user.state_dict(), checkpoint)
    else:
        save_file(user.state_dict(), str(checkpoint))
    out = tmp_path / "out.safetensors"
    run(["init", checkpoint, CONCEPT, "-o", out, "--generator", tiny_generator_dir, "--seed", 2, "--arch", ARCH])
    state = load_file(out)
    reference_generator().load_state_dict(state, strict=True)
    assert_same(state, initialized(2, tiny_generator_dir, start=reference_generator(seed=7)))


def test_init_strips_ddp_module_prefixes(tiny_generator_dir, tmp_path):
    user = reference_generator(seed=8)
    checkpoint = tmp_path / "ddp.pth"
    torch.save({f"module.{k}": v for k, v in user.state_dict().items()}, checkpoint)
    out = tmp_path / "out.safetensors"
    run(["init", checkpoint, CONCEPT, "-o", out, "--generator", tiny_generator_dir])  # arch: the generator's own
    state = load_file(out)
    assert not any(k.startswith("module.") for k in state)
    assert_same(state, initialized(0, tiny_generator_dir, start=reference_generator(seed=8)))


def test_an_arch_the_generator_does_not_cover_is_one_line_and_no_file(tiny_generator_dir, tmp_path):
    out = tmp_path / "init.safetensors"
    result = run(
        [
            "sample",
            CONCEPT,
            "--out",
            out,
            "--generator",
            tiny_generator_dir,
            "--arch",
            "pix2pix:unet_64,ngf=8,input_nc=1",
        ],
        code=1,
    )
    line = one_error_line(result)
    assert "was trained for" in line and ARCH in line and "input_nc 1 is not 3" in line
    assert list(tmp_path.iterdir()) == []


def test_bad_checkpoints_are_one_line_and_no_file(tiny_generator_dir, tmp_path):
    out = tmp_path / "out.safetensors"
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    line = one_error_line(run(["init", garbage, CONCEPT, "-o", out, "-g", tiny_generator_dir], code=1))
    assert "garbage.safetensors" in line
    other = tmp_path / "other.safetensors"
    torch.manual_seed(0)
    save_file(plugins.build_model("pix2pix:unet_64,ngf=8").state_dict(), str(other))
    line = one_error_line(run(["init", other, CONCEPT, "-o", out, "-g", tiny_generator_dir, "-a", ARCH], code=1))
    assert "does not fit" in line and "shape" in line
    assert not out.exists() and not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_lora_mode_and_non_safetensors_outputs_are_refused(tiny_generator_dir, tmp_path):
    line = one_error_line(
        run(["sample", CONCEPT, "-o", tmp_path / "x.safetensors", "-g", tiny_generator_dir, "--mode", "lora"], code=1)
    )
    assert "merge" in line
    line = one_error_line(run(["sample", CONCEPT, "-o", tmp_path / "x.npz", "-g", tiny_generator_dir], code=1))
    assert ".safetensors" in line and ".pth" in line
    run(["sample", CONCEPT, "-o", tmp_path / "x.safetensors", "-g", tiny_generator_dir, "--steps", 0], code=2)
    assert list(tmp_path.iterdir()) == []


def test_help_shows_examples():
    for command in ("sample", "init"):
        text = run([command, "--help"]).stdout
        assert f"weightinit {command}" in text and "--generator" in text


def write_pairs(folder, n: int, width: int = 128, height: int = 64) -> None:
    """``n`` random A|B images in the pix2pix folder format."""
    import numpy as np
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def test_sample_and_init_choose_the_start_on_a_pairs_folder(tiny_generator_dir, tmp_path):
    from safetensors import safe_open

    from weightinit.pairs import FolderPairs

    pairs = tmp_path / "pairs"
    write_pairs(pairs, 4)
    out = tmp_path / "chosen.safetensors"
    report = json.loads(
        run(
            ["sample", CONCEPT, "-o", out, "-g", tiny_generator_dir, "--pairs", pairs, "--pairs-count", 3, "--json"]
        ).stdout
    )
    assert report["choice"]["pairs"] == 3 and report["chosen"] == report["choice"]["chosen"]
    with safe_open(str(out), "pt") as f:
        assert f.metadata()["weightinit.chosen"] == report["chosen"]
    # the same choice as the library call on the same pairs (64 px from the arch name)
    torch.manual_seed(0)
    expected = plugins.build_model(ARCH)
    initialize(
        expected,
        CONCEPT,
        generator=tiny_generator_dir,
        pairs=FolderPairs(pairs, size=64).sample(3, split="train", seed=0),
    )
    assert_same(load_file(out), expected.state_dict())

    checkpoint = tmp_path / "mine.safetensors"
    save_file(reference_generator(seed=5).state_dict(), str(checkpoint))
    again = tmp_path / "again.safetensors"
    report = json.loads(
        run(
            [
                "init",
                checkpoint,
                CONCEPT,
                "-o",
                again,
                "-g",
                tiny_generator_dir,
                "--pairs",
                pairs,
                "--pairs-count",
                3,
                "--json",
            ]
        ).stdout
    )
    assert report["chosen"] == report["choice"]["chosen"]


def test_a_bad_pairs_folder_is_one_line_and_no_file(tiny_generator_dir, tmp_path):
    pairs = tmp_path / "odd"
    write_pairs(pairs, 3, width=65)
    out = tmp_path / "out.safetensors"
    line = one_error_line(run(["sample", CONCEPT, "-o", out, "-g", tiny_generator_dir, "--pairs", pairs], code=1))
    assert "even width" in line and not out.exists()


# --- issue 14: one clear line, nothing written, before anything heavy -----------------------
@pytest.fixture
def no_generator_load(monkeypatch):
    """Loading a generator fails loudly: an error that comes back instead was checked first."""
    import weightinit.initialization as init_module

    def refuse(*args, **kwargs):
        raise AssertionError("the generator was loaded before a cheap check")

    monkeypatch.setattr(init_module, "load_generator", refuse)


def no_files_left(folder) -> bool:
    return not any(p.name.endswith(".tmp") for p in folder.rglob("*"))


@pytest.mark.parametrize(
    "case", ["folder", "under_a_file", "read_only", "surrogate", "huge_ngf", "dup_option", "bad_suffix"]
)
def test_cheap_errors_are_one_line_before_the_generator_loads(tiny_generator_dir, tmp_path, no_generator_load, case):
    out = tmp_path / "out.safetensors"
    concept, extra = CONCEPT, []
    if case == "folder":
        out = tmp_path / "a_folder"
        out.mkdir()
    elif case == "under_a_file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "out.safetensors"
    elif case == "read_only":
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        if os.access(ro, os.W_OK):  # root ignores permissions: a read-only file system does not
            ro = Path("/proc/self")
        out = ro / "out.safetensors"
    elif case == "surrogate":
        concept = "sketch \udcff photo"  # what a non-UTF-8 argument becomes
    elif case == "huge_ngf":
        extra = ["--arch", "pix2pix:unet_64,ngf=100000"]  # 40 TB if it were built
    elif case == "dup_option":
        extra = ["--arch", "pix2pix:unet_64,ngf=4,ngf=8"]
    elif case == "bad_suffix":
        out = tmp_path / "out.npz"
    line = one_error_line(run(["sample", concept, "-o", out, "-g", tiny_generator_dir, *extra], code=1))
    expected = {
        "folder": "is a folder",
        "under_a_file": "is a file",
        "read_only": "not writable",
        "surrogate": "UTF-8",
        "huge_ngf": "too many for this machine's",
        "dup_option": "twice",
        "bad_suffix": ".pth",
    }[case]
    assert expected in line
    assert not (out.exists() and out.is_file()) and no_files_left(tmp_path)


def test_pairs_count_above_the_folder_is_one_line(tiny_generator_dir, tmp_path, no_generator_load):
    pairs = tmp_path / "pairs"
    write_pairs(pairs, 3)
    out = tmp_path / "out.safetensors"
    line = one_error_line(
        run(["sample", CONCEPT, "-o", out, "-g", tiny_generator_dir, "--pairs", pairs, "--pairs-count", 9], code=1)
    )
    assert "--pairs-count 9" in line and "train pairs" in line and not out.exists()


def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(tiny_generator_dir, tmp_path, monkeypatch):
    import errno

    import safetensors.torch

    def full(*args, **kwargs):
        path = args[1]
        Path(path).write_bytes(b"\0" * 1024)  # partly written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    out = tmp_path / "out.safetensors"
    line = one_error_line(run(["sample", CONCEPT, "-o", out, "-g", tiny_generator_dir], code=1))
    assert "No space left" in line and not out.exists() and list(tmp_path.iterdir()) == []


def test_init_writes_a_pth_the_reference_loads_and_keeps_fp16(tiny_generator_dir, tmp_path):
    user = reference_generator(seed=7).half()
    checkpoint = tmp_path / "latest_net_G.pth"
    torch.save(user.state_dict(), checkpoint)
    out = tmp_path / "init_net_G.pth"
    run(["init", checkpoint, CONCEPT, "-o", out, "-g", tiny_generator_dir, "--seed", 2])
    state = torch.load(out, weights_only=True)  # what the reference load_networks does
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    net = reference_generator(seed=1).half()
    net.load_state_dict(state, strict=True)
    expected = reference_generator(seed=7).half()
    initialize(expected, CONCEPT, generator=tiny_generator_dir, seed=2)
    assert_same(state, expected.state_dict())
    assert no_files_left(tmp_path)


def test_same_seed_outputs_are_byte_identical(tiny_generator_dir, tmp_path):
    import hashlib

    digests = set()
    for i in range(3):
        out = tmp_path / f"{i}.safetensors"
        run(["sample", CONCEPT, "-o", out, "-g", tiny_generator_dir, "--seed", 1])
        digests.add(hashlib.sha256(out.read_bytes()).hexdigest())
    assert len(digests) == 1


def test_init_reads_a_reference_checkpoints_arch_and_picks_the_installed_generator(tmp_path):
    """A reference ``unet_128 --ngf 16`` checkpoint, written by code apart from weightinit: no --arch,
    no generator named; then by the name `weightinit generators` prints. The output loads strictly."""
    from experiments.reference_networks import define_G

    torch.manual_seed(0)
    reference = define_G("unet_128", ngf=16, norm="batch")
    checkpoint = tmp_path / "latest_net_G.pth"
    torch.save(reference.state_dict(), checkpoint)
    for extra, out in (([], tmp_path / "init.pth"), (["-g", "unet128"], tmp_path / "named.pth")):
        result = run(["init", checkpoint, "photo to sepia", "-o", out, *extra])
        assert "with generator unet128" in result.stdout
        assert "wrote pix2pix:unet_128,ngf=16,norm=batch ->" in result.stdout
        loaded = define_G("unet_128", ngf=16, norm="batch")
        loaded.load_state_dict(torch.load(out, weights_only=True), strict=True)
        assert not torch.equal(
            loaded.state_dict()["model.model.0.weight"], reference.state_dict()["model.model.0.weight"]
        )
    assert torch.equal(
        torch.load(checkpoint, weights_only=True)["model.model.0.weight"],
        reference.state_dict()["model.model.0.weight"],
    )


def test_init_refuses_to_write_over_its_checkpoint(tiny_generator_dir, tmp_path, no_generator_load):
    checkpoint = tmp_path / "net.safetensors"
    torch.manual_seed(0)
    save_file(plugins.build_model(ARCH).state_dict(), str(checkpoint))
    before = checkpoint.read_bytes()
    line = one_error_line(run(["init", checkpoint, CONCEPT, "-o", checkpoint, "-g", tiny_generator_dir], code=1))
    assert "is CHECKPOINT itself" in line and checkpoint.read_bytes() == before


def test_sample_says_which_network_it_wrote_and_serves_a_wider_arch(tiny_generator_dir, tmp_path):
    out = tmp_path / "wide.safetensors"
    result = run(["sample", CONCEPT, "-o", out, "-g", tiny_generator_dir, "--arch", "pix2pix:unet_64,ngf=6"])
    assert "network: widened from ngf 4 to 6" in result.stdout and "wrote pix2pix:unet_64,ngf=6 ->" in result.stdout
    plugins.build_model("pix2pix:unet_64,ngf=6").load_state_dict(load_file(out), strict=True)
    own = run(["sample", CONCEPT, "-o", tmp_path / "own.safetensors", "-g", tiny_generator_dir])
    assert f"wrote {ARCH} ->" in own.stdout


def test_an_output_in_a_missing_folder_says_it_created_it(tiny_generator_dir, tmp_path):
    out = tmp_path / "new" / "deeper" / "init.safetensors"
    result = run(["sample", CONCEPT, "-o", out, "-g", tiny_generator_dir])
    assert out.is_file() and f"created the folder {tmp_path / 'new'} for {out}" in result.stderr


def test_fit_steps_fits_the_chosen_start_to_the_pairs_folder(tiny_generator_dir, tmp_path):
    pairs = tmp_path / "pairs"
    write_pairs(pairs, 4)
    out = tmp_path / "fitted.safetensors"
    args = ["sample", CONCEPT, "-o", out, "-g", tiny_generator_dir, "--pairs", pairs, "--pairs-count", 3]
    report = json.loads(run([*args, "--fit-steps", 4, "--json"]).stdout)
    assert report["pair_fit"]["steps"] == 4 and report["pair_fit"]["pairs"] == 3
    assert report["pair_fit"]["l1_before"] == pytest.approx(report["choice"]["pairs_l1"], abs=1e-5)
    line = one_error_line(
        run(["sample", CONCEPT, "-o", tmp_path / "x.safetensors", "-g", tiny_generator_dir, "--fit-steps", 4], code=1)
    )
    assert "pass pairs=" in line


def test_the_sampler_is_imported_without_torch_dynamo_and_dynamo_still_imports_later():
    # a fresh process: this one has imported both long ago
    code = (
        "import sys\n"
        "from weightinit.cli.generate import import_sampler_without_dynamo\n"
        "import_sampler_without_dynamo()\n"
        "assert 'weightinit.generator.model' in sys.modules\n"
        "assert 'torch._dynamo' not in sys.modules\n"
        "import torch\n"
        "from weightinit.generator.model import WeightGenerator\n"
        "from weightinit.generators import bundled_generator_path\n"
        "gen = WeightGenerator.from_pretrained(bundled_generator_path())\n"
        "gen.denoiser.to(torch.float64).to('cpu', torch.float32)  # torch's move, not ModelMixin's hooks\n"
        "assert gen.denoiser.dtype == torch.float32\n"
        "assert 'torch._dynamo' not in sys.modules, 'loading the generator imported torch._dynamo'\n"
        "import torch._dynamo\n"
        "assert sys.modules['torch._dynamo'] is not None\n"
        "print('ok')\n"
    )
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_the_command_line_generates_from_a_pairs_folder(tiny_pair_generator_dir, tmp_path):
    pairs = tmp_path / "pairs"
    write_pairs(pairs, 4)
    out = tmp_path / "g.pth"
    args = ["sample", CONCEPT, "-o", out, "-g", tiny_pair_generator_dir, "--pairs", pairs, "--pairs-count", 3, "--json"]
    report = json.loads(run(args).stdout)
    assert report["pair_start"]["pairs"] == 3 and report["choice"] is None and out.is_file()
    chose = json.loads(run([*args[:-1], "--pairs-start", "choose", "--json"]).stdout)
    assert chose["pair_start"] is None and chose["choice"]["pairs"] == 3
