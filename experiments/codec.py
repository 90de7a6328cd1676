"""BlockCodec speed and memory on a real generator, and the CLI's cold start.

    python -m experiments.codec [--arch pix2pix:unet_256] [--repeats 7] [--json OUT]

Measures, for the generator's generated tensors (pix2pix:unet_256: 54,413,955 parameters):

* encode + decode round trip, median of ``--repeats`` runs, with 1 thread and with all cores;
  the round trip is checked to be bitwise exact;
* extra peak memory of one round trip over the state dict's size, in a fresh process per
  measurement (torch allocations are invisible to tracemalloc, so this reads the kernel's RSS
  high-water mark ``VmHWM``, reset through ``/proc/self/clear_refs`` where the kernel allows);
* wall time of ``weightinit --help`` and ``weightinit layout ARCH`` in new processes (cold start).

Targets: round trip under 0.5 s, extra peak memory under 2x the state dict, layout under 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from weightinit import plugins
from weightinit.codec import BlockCodec
from weightinit.fileio import atomic_write_json

DEFAULT_ARCH = "pix2pix:unet_256"
TARGETS = {"round_trip_s": 0.5, "extra_peak_ratio": 2.0, "layout_cold_start_s": 2.0}


def _generated_tensors(arch: str):
    adapter = plugins.adapter_for_arch(arch)
    model = plugins.build_model(arch)
    tensors = adapter.to_canonical(model, model.state_dict())
    return adapter.layout(model), {k: v.detach() for k, v in tensors.items()}


def _bitwise_equal(a, b) -> bool:
    import torch

    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8))
    )


def time_round_trip(arch: str, repeats: int) -> dict:
    import torch

    layout, tensors = _generated_tensors(arch)
    codec = BlockCodec(layout)
    decoded = codec.decode(codec.encode(tensors))  # warm-up, and the exactness check
    exact = list(decoded) == list(tensors) and all(_bitwise_equal(decoded[k], tensors[k]) for k in tensors)
    del decoded
    saved_threads = torch.get_num_threads()
    by_threads = {}
    try:
        for threads in sorted({1, os.cpu_count() or 1}):
            torch.set_num_threads(threads)
            encode_s, decode_s, copy_s, total_s = [], [], [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                blocks = codec.encode(tensors)
                t1 = time.perf_counter()
                out = codec.decode(blocks)
                t2 = time.perf_counter()
                encode_s.append(t1 - t0)
                decode_s.append(t2 - t1)
                total_s.append(t2 - t0)
                del out
                t3 = time.perf_counter()
                copied = codec.decode(blocks, copy=True)
                copy_s.append(time.perf_counter() - t3)
                del blocks, copied
            by_threads[threads] = {
                "round_trip_s": statistics.median(total_s),
                "encode_s": statistics.median(encode_s),
                "decode_s": statistics.median(decode_s),
                "decode_copy_s": statistics.median(copy_s),
            }
    finally:
        torch.set_num_threads(saved_threads)
    state_bytes = sum(t.numel() * t.element_size() for t in tensors.values())
    return {
        "arch": arch,
        "num_params": layout.num_params,
        "num_blocks": layout.num_blocks,
        "state_dict_bytes": state_bytes,
        "bitwise_exact": exact,
        "threads": by_threads,
    }


# --- memory, measured in a fresh process ------------------------------------------------------
def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def memory_child(arch: str) -> dict:
    """Run in a fresh process: extra peak RSS of one encode + decode round trip."""
    import gc

    layout, tensors = _generated_tensors(arch)
    codec = BlockCodec(layout)
    gc.collect()
    reset = _reset_peak()
    before = _proc_status_kib("VmHWM") if reset else _proc_status_kib("VmRSS")
    blocks = codec.encode(tensors)
    decoded = codec.decode(blocks)
    peak = _proc_status_kib("VmHWM")
    del blocks, decoded
    state_bytes = sum(t.numel() * t.element_size() for t in tensors.values())
    extra = max(0, peak - before) * 1024
    return {
        "state_dict_bytes": state_bytes,
        "extra_peak_bytes": extra,
        "extra_peak_ratio": extra / state_bytes,
        "peak_reset": reset,
    }


def measure_memory(arch: str) -> dict:
    if not Path("/proc/self/status").exists():
        return {"skipped": "needs Linux /proc"}
    out = subprocess.run(
        [sys.executable, "-m", "experiments.codec", "--memory-child", "--arch", arch],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


# --- cold start --------------------------------------------------------------------------------
def _cli() -> list[str]:
    script = Path(sys.executable).with_name("weightinit")
    if script.exists():
        return [str(script)]
    found = shutil.which("weightinit")
    return [found] if found else [sys.executable, "-m", "weightinit.cli.app"]


def cold_start(args: list[str], runs: int = 3, *, command: list[str] | None = None) -> dict:
    argv = [*(command or _cli()), *args]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    label = " ".join(["weightinit", *args]) if command is None else " ".join(["python", *args])
    return {"command": label, "median_s": statistics.median(times), "min_s": min(times)}


# --- report ------------------------------------------------------------------------------------
def run(arch: str = DEFAULT_ARCH, repeats: int = 7) -> dict:
    results = {"round_trip": time_round_trip(arch, repeats), "memory": measure_memory(arch)}
    results["cold_start"] = {
        # The floor every command pays: the interpreter plus `import torch`.
        "import_torch": cold_start(["-c", "import torch"], command=[sys.executable]),
        "help": cold_start(["--help"]),
        "layout": cold_start(["layout", arch]),
    }
    results["targets"] = TARGETS
    results["machine"] = {"cpu_count": os.cpu_count(), "python": sys.version.split()[0]}
    import torch

    results["machine"]["torch"] = torch.__version__
    return results


def print_report(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    rt = results["round_trip"]
    table = Table(
        title=f"BlockCodec on {rt['arch']} ({rt['num_params']:,} params, {rt['state_dict_bytes'] / 2**20:.0f} MiB)"
    )
    for column in ("measurement", "value", "target"):
        table.add_column(column)
    for threads, row in rt["threads"].items():
        ok = "ok" if row["round_trip_s"] < TARGETS["round_trip_s"] else "MISSED"
        table.add_row(
            f"encode + decode, {threads} thread(s)",
            f"{row['round_trip_s']:.3f} s "
            f"(encode {row['encode_s']:.3f}, decode {row['decode_s']:.4f}, decode copy {row['decode_copy_s']:.3f})",
            f"< {TARGETS['round_trip_s']} s {ok}",
        )
    table.add_row("bitwise exact", str(rt["bitwise_exact"]), "True")
    mem = results["memory"]
    if "extra_peak_ratio" in mem:
        ok = "ok" if mem["extra_peak_ratio"] < TARGETS["extra_peak_ratio"] else "MISSED"
        table.add_row(
            "extra peak memory",
            f"{mem['extra_peak_bytes'] / 2**20:.0f} MiB = {mem['extra_peak_ratio']:.2f}x state dict"
            + ("" if mem["peak_reset"] else " (peak not resettable: upper bound)"),
            f"< {TARGETS['extra_peak_ratio']}x {ok}",
        )
    for key, row in results["cold_start"].items():
        target = f"< {TARGETS['layout_cold_start_s']} s" if key == "layout" else ""
        if key == "layout":
            target += " ok" if row["median_s"] < TARGETS["layout_cold_start_s"] else " MISSED"
        table.add_row(row["command"], f"{row['median_s']:.2f} s (min {row['min_s']:.2f})", target)
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.codec", description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default=DEFAULT_ARCH, help="architecture to measure (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per thread count (median reported)")
    parser.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(args.arch)))
        return 0
    results = run(args.arch, args.repeats)
    print_report(results)
    if args.json:
        atomic_write_json(args.json, results)
    return 0 if results["round_trip"]["bitwise_exact"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
