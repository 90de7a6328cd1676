"""Start-up of the command line, whole processes side by side with ``import torch``.

Each command runs ``--runs`` times as a fresh process, the commands interleaved round by round so a
busy machine slows them alike; the median wall time and its ratio to ``python -c "import torch"``
are reported. ``sample`` runs twice: with its text's embedding on disk (the text cache, primed by
one untimed run; a concept sampled before) and with the cache off (a text never seen). Two floors
show what the fixed dependencies cost when imported plainly: the sampler is a diffusers
``ModelMixin`` and the text encoder a transformers BERT (DESIGN.md). ``weightinit sample`` imports
diffusers without ``torch._dynamo`` (weightinit/cli/generate.py says why), so with its text cached
it starts below the first floor; a text never seen loads the encoder, and transformers imports
``torch._dynamo`` itself.

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


def commands(out: Path) -> dict[str, tuple[list[str], dict]]:
    plain = {
        "import torch": [PY, "-c", "import torch"],
        "weightinit --help": [*WEIGHTINIT, "--help"],
        "floor: import torch, diffusers ModelMixin": [PY, "-c", "import torch, diffusers.models.modeling_utils"],
        "floor: + transformers BERT": [
            PY,
            "-c",
            "import torch, diffusers.models.modeling_utils, transformers.models.bert.modeling_bert",
        ],
    }
    plain = {name: (argv, {}) for name, argv in plain.items()}
    sample = [*WEIGHTINIT, "sample", "photo to sepia", "-o", str(out)]
    return {
        **plain,
        'weightinit sample "photo to sepia" (text cached)': (sample, {"WEIGHTINIT_TEXT_CACHE": "1"}),
        'weightinit sample "photo to sepia" (text cache off)': (sample, {"WEIGHTINIT_TEXT_CACHE": "0"}),
    }


def measure(runs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "WEIGHTINIT_CACHE": f"{tmp}/cache"}
        todo = commands(Path(tmp) / "netG.safetensors")
        primer, primer_env = todo['weightinit sample "photo to sepia" (text cached)']
        subprocess.run(primer, env={**env, **primer_env}, check=True, capture_output=True, cwd=tmp)
        seconds: dict[str, list[float]] = {name: [] for name in todo}
        for _ in range(runs):
            for name, (argv, extra) in todo.items():
                start = time.perf_counter()
                subprocess.run(argv, env={**env, **extra}, check=True, capture_output=True, cwd=tmp)
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
        print(f"{name:52s} {row['median']:6.2f} s  {row['ratio']:5.2f}x")
    if args.json:
        atomic_write_json(args.json, result)


if __name__ == "__main__":
    main()
