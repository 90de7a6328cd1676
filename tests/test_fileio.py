"""Atomic writes: a signal, a full disk or a bad path leaves no file and no temporary file."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from weightinit.errors import CheckpointError
from weightinit.fileio import atomic_path, check_output_path, save_safetensors, save_state_dict_file


def test_sigterm_during_a_write_removes_the_temporary_file(tmp_path):
    out = tmp_path / "netG.safetensors"
    script = textwrap.dedent(f"""
        import os, signal, sys, time
        from weightinit.fileio import atomic_path
        with atomic_path({str(out)!r}) as tmp:
            tmp.write_bytes(b"x" * (7 << 20))  # a 7 MB half-written checkpoint
            print("writing", flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGTERM, proc.stderr  # still dies of SIGTERM, as it would have
    assert "writing" in proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_handlers_are_restored_after_a_write(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    with atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("a")
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before and (tmp_path / "a.txt").read_text() == "a"


def test_bad_output_paths_are_checkpoint_errors(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="is a folder"):
        check_output_path(tmp_path)
    with pytest.raises(CheckpointError, match="is a file"):
        check_output_path(tmp_path / "file" / "x.safetensors")


def test_safetensors_metadata_is_written_in_sorted_order(tmp_path):
    tensors = {"a": torch.zeros(3), "b": torch.ones(2)}
    metadata = {f"weightinit.k{i}": str(i) * i for i in range(8)}
    digests = set()
    for i in range(4):  # safetensors' hash map orders metadata differently on each call
        save_safetensors(tmp_path / f"{i}.safetensors", tensors, metadata)
        digests.add(hashlib.sha256((tmp_path / f"{i}.safetensors").read_bytes()).hexdigest())
    assert len(digests) == 1
    from safetensors import safe_open

    with safe_open(str(tmp_path / "0.safetensors"), "pt") as f:
        assert f.metadata() == metadata and torch.equal(f.get_tensor("b"), tensors["b"])


def test_pth_checkpoints_are_plain_tensor_dicts(tmp_path):
    state = {"w": torch.randn(2, 2).half(), "n": torch.tensor(3)}
    save_state_dict_file(tmp_path / "net.pth", state, {"ignored": "metadata"})
    loaded = torch.load(tmp_path / "net.pth", weights_only=True)
    assert loaded.keys() == state.keys() and all(
        torch.equal(loaded[k], state[k]) and loaded[k].dtype == state[k].dtype for k in state
    )


def test_pth_checkpoints_of_equal_state_dicts_are_byte_identical(tmp_path):
    from weightinit.fileio import save_state_dict_file

    state = {"w": torch.arange(6.0).view(2, 3), "b": torch.zeros(3)}
    save_state_dict_file(tmp_path / "a.pth", state)
    save_state_dict_file(tmp_path / "b.pth", {k: v.clone() for k, v in state.items()})
    assert (tmp_path / "a.pth").read_bytes() == (tmp_path / "b.pth").read_bytes()
    assert torch.equal(torch.load(tmp_path / "a.pth", weights_only=True)["w"], state["w"])


@pytest.mark.parametrize(
    "content, said",
    [
        (b"", r"is empty \(0 bytes\)"),
        (b"model weights here\n", "it is text"),
        (bytes(range(200, 232)), "it is binary data"),
    ],
)
def test_a_pth_that_is_not_a_torch_file_is_told_what_it_is(tmp_path, content, said):
    from weightinit.errors import CheckpointError
    from weightinit.fileio import load_state_dict_file

    path = tmp_path / "net.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=said) as info:
        load_state_dict_file(path)
    assert "unpickle" not in str(info.value)
