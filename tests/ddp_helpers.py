"""What the torchrun workers share (imported from the workers' own folder)."""

import hashlib
import sys


def checksum(model) -> str:
    """sha256 of every parameter's bytes: equal on two ranks only if the weights are bitwise equal."""
    digest = hashlib.sha256()
    for p in model.parameters():
        digest.update(p.detach().numpy().tobytes())
    return digest.hexdigest()


def say(line: str) -> None:
    """One write per line: the two ranks share torchrun's stdout, and print's two writes interleave."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run_torchrun(worker: str, *args: str, processes: int = 2):
    """Run ``tests/<worker>`` under ``torchrun`` on the CPU, offline, one thread per process."""
    import os
    import subprocess
    from pathlib import Path

    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(processes),
        str(Path(__file__).parent / worker),
        *args,
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
