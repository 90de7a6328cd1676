"""Start-up of the command line, whole processes side by side with ``import torch``.

Each command runs ``--runs`` times as a fresh process, the commands interleaved round by round so
a busy machine slows them alike; the median wall time and its ratio to ``python -c "import torch"``
are reported. Two floors show what the fixed dependencies cost before weightinit does anything:
the sampler is a diffusers ``ModelMixin`` and the text encoder a transformers BERT (DESIGN.md), so
``weightinit sample`` cannot start faster than importing both.

    python -m experiments.startup --json docs/measurements/startup.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from weightinit.fileio import atomic_write_json

PY = sys.executable
WEIGHTINIT = [PY, "-m", "weightinit.cli.app"]


def commands(out: Path) -> dict[str, list[str]]:
    return {
        "import torch": [PY, "-c", "import torch"],
        "weightinit --help": [*WEIGHTINIT, "--help"],
        "floor: import torch, diffusers ModelMixin": [PY, "-c", "import torch, diffusers.models.modeling_utils"],
        "floor: + transformers BERT": [
            PY,
            "-c",
            "import torch, diffusers.models.modeling_utils, transformers.models.bert.modeling_bert",
        ],
        'weightinit sample "photo to sepia"': [*WEIGHTINIT, "sample", "photo to sepia", "-o", str(out)],
    }


def measure(runs: int) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        todo = commands(Path(tmp) / "netG.safetensors")
        seconds: dict[str, list[float]] = {name: [] for name in todo}
        for _ in range(runs):
            for name, argv in todo.items():
                start = time.perf_counter()
                subprocess.run(argv, env=env, check=True, capture_output=True, cwd=tmp)
                seconds[name].append(round(time.perf_counter() - start, 3))
    torch_median = statistics.median(seconds["import torch"])
    rows = {
        name: {"seconds": s, "median": statistics.median(s), "ratio": round(statistics.median(s) / torch_median, 2)}
        for name, s in seconds.items()
    }
    return {"runs": runs, "cpus": os.cpu_count(), "load_1min": os.getloadavg()[0], "commands": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = measure(args.runs)
    for name, row in result["commands"].items():
        print(f"{name:45s} {row['median']:6.2f} s  {row['ratio']:5.2f}x")
    if args.json:
        atomic_write_json(args.json, result)


if __name__ == "__main__":
    main()
