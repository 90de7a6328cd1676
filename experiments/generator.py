"""Measure a trained weight generator against the zoo it was trained on, and its speed.

    python -m experiments.generator --generator gen --zoo zoo --json runs/generator.json
    python -m experiments.generator --denoiser-speed
    python -m experiments.generator --scaling 415,7164,50000,212559

Quality (relative L2 = ||generated - true|| / ||true|| over all of a concept's stored values):
reconstruction on training concepts; on held-out concepts the generator beside two baselines,
the mean of the zoo's training concepts and the nearest training concept by text embedding,
per family, with how often the generator beats both; memorisation: the distance of each
generated set to its nearest zoo member (relative to that member's norm). Speed: one-step
sampling of every block after loading; peak RSS of a process that loads and samples; sampling
time and peak RSS against the number of blocks (fresh default denoisers, one process each, up
to the full-weight layout of ``pix2pix:unet_256``, 212,559 blocks); ``--denoiser-speed`` times
forward + backward of ``mlp`` and ``unet1d``. Training steps/s is in the trainer's
``train_log.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

# The rest of weightinit is imported inside the functions: the subprocesses this module runs of
# itself measure a process's time and peak RSS, so it imports no more than each measurement needs.
from weightinit.fileio import atomic_write_json


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp(min=1e-12))


def quality(gen, zoo) -> dict:
    from weightinit.codec import BlockCodec

    codec = BlockCodec(zoo.layout)

    def flat(tensors):
        return codec.encode(
            {k: v.to(zoo.layout[k].torch_dtype) for k, v in tensors.items()}, dtype=torch.float32
        ).reshape(-1)

    def flat_blocks(blocks):  # through the layout's dtypes, as generate() returns them
        return flat(codec.decode(blocks, copy=True))

    train_ids, held_ids = zoo.ids("train"), zoo.ids("heldout")
    train = torch.stack([flat(zoo.concept(cid)) for cid in train_ids])
    mean = train.mean(0)
    enc = gen.text_encoder
    train_text = enc.encode([zoo.record(cid).text for cid in train_ids]).pooled

    def nearest_member(x):
        d = (train - x).norm(dim=1) / train.norm(dim=1).clamp(min=1e-12)
        i = int(d.argmin())
        return float(d[i]), train_ids[i]

    out = {"reconstruction": {}, "heldout": {}, "memorisation": {}}
    recon = []
    for i, cid in enumerate(train_ids):
        g = flat(gen.generate(zoo.record(cid).text, seed=0))
        recon.append(rel_l2(g, train[i]))
    out["reconstruction"] = {
        "mean_rel_l2": statistics.fmean(recon),
        "concepts": len(recon),
        "mean_rel_l2_zoo_mean": statistics.fmean(rel_l2(mean, t) for t in train),
    }
    families: dict[str, dict[str, list[float]]] = {}
    wins, memo = 0, []
    for cid in held_ids:
        record = zoo.record(cid)
        true = flat(zoo.concept(cid))
        g = flat(gen.generate(record.text, seed=0))
        sim = enc.encode(record.text).pooled @ train_text.T
        near = train[int(sim.argmax())]
        row = {"generated": rel_l2(g, true), "zoo_mean": rel_l2(mean, true), "nearest_text": rel_l2(near, true)}
        if gen.prior is not None:
            row["prior_only"] = rel_l2(flat_blocks(gen.prior_blocks(record.text)), true)
        wins += row["generated"] < min(row["zoo_mean"], row["nearest_text"])
        for k, v in row.items():
            families.setdefault(record.family, {}).setdefault(k, []).append(v)
        dist, member = nearest_member(g)
        memo.append({"concept": cid, "nearest_member": member, "distance": dist, "distance_to_true": row["generated"]})
    out["heldout"] = {
        "concepts": len(held_ids),
        "generated_beats_both": wins,
        "per_family": {
            f: {k: statistics.fmean(v) for k, v in rows.items()} | {"n": len(rows["generated"])}
            for f, rows in sorted(families.items())
        },
        "overall": {
            k: statistics.fmean(v for rows in families.values() for v in rows[k]) for k in next(iter(families.values()))
        }
        if families
        else {},
    }
    out["memorisation"] = {
        "heldout": memo,
        "mean_nearest_member_distance": statistics.fmean(m["distance"] for m in memo) if memo else None,
    }
    return out


def sampling_speed(gen, repeats: int = 5) -> dict:
    gen.generate("warm up the kernels", seed=0)
    times_cached, times_new = [], []
    for i in range(repeats):
        text = f"a new concept number {i}"
        t = time.perf_counter()
        gen.sample_blocks(text, seed=i)
        times_new.append(time.perf_counter() - t)
        t = time.perf_counter()
        gen.sample_blocks(text, seed=i + 1)
        times_cached.append(time.perf_counter() - t)
    return {
        "blocks": gen.layout.num_blocks,
        "seconds_new_text": statistics.median(times_new),
        "seconds_cached_text": statistics.median(times_cached),
    }


def _one_scaling_point(num_blocks: int, chunk: int) -> dict:
    """Runs in its own process: a default denoiser for ``num_blocks`` blocks, timed, with peak RSS."""
    from weightinit.codec import SlotNormalizer
    from weightinit.generator.denoisers import build_denoiser
    from weightinit.generator.sampling import make_scheduler, sample_blocks
    from weightinit.generator.text import TextEmbedding
    from weightinit.layout import BlockLayout, Slot

    layout = BlockLayout([Slot("w", (num_blocks, 256), "float32")], 256)
    model = build_denoiser("mlp", num_blocks=num_blocks).eval()
    text = TextEmbedding(torch.randn(1, 32, 384), torch.ones(1, 32), torch.randn(1, 384))
    rss0 = peak_rss_mb()
    t = time.perf_counter()
    blocks = sample_blocks(
        model, make_scheduler(), layout, SlotNormalizer.identity(layout), text, seed=0, chunk_size=chunk
    )
    seconds = time.perf_counter() - t
    return {
        "blocks": num_blocks,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_sampling_mb": rss0,
        "output_mb": blocks.numel() * 4 / 2**20,
        "denoiser_mb": sum(p.numel() for p in model.parameters()) * 4 / 2**20,
    }


def _sample_process(generator: str, text: str) -> dict:
    """Runs in its own process: what a `weightinit sample` process costs (load, encode, sample, decode)."""
    t = time.perf_counter()
    from weightinit.generator import WeightGenerator

    gen = WeightGenerator.from_pretrained(generator)
    loaded = time.perf_counter()
    weights = gen.generate(text, seed=0)
    done = time.perf_counter()
    return {"load_s": loaded - t, "generate_s": done - loaded, "tensors": len(weights), "peak_rss_mb": peak_rss_mb()}


def _subprocess(args: list[str], threads: int) -> dict:
    cmd = [sys.executable, "-m", "experiments.generator", "--threads", str(threads), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def denoiser_speed(batch: int = 256, num_blocks: int = 415, repeats: int = 5) -> dict:
    from weightinit.generator.denoisers import DENOISERS, build_denoiser, count_parameters

    out = {}
    for name in DENOISERS:
        torch.manual_seed(0)
        model = build_denoiser(name, num_blocks=num_blocks)
        opt = torch.optim.AdamW(model.parameters(), 1e-4)
        x, t = torch.randn(batch, 256), torch.randint(0, 1000, (batch,))
        idx, tok, mask = torch.randint(0, num_blocks, (batch,)), torch.randn(batch, 32, 384), torch.ones(batch, 32)
        for i in range(repeats + 1):
            if i == 1:
                start = time.perf_counter()
            (model(x, t, idx, tok, mask) - x).pow(2).mean().backward()
            opt.step()
            opt.zero_grad()
        step = (time.perf_counter() - start) / repeats
        with torch.no_grad():
            s = time.perf_counter()
            model(
                torch.randn(num_blocks, 256),
                torch.full((num_blocks,), 999),
                torch.arange(num_blocks),
                tok[:1].expand(num_blocks, -1, -1),
                mask[:1].expand(num_blocks, -1),
            )
            fwd = time.perf_counter() - s
        out[name] = {
            "parameters": count_parameters(model),
            "train_step_s": step,
            "steps_per_s": 1 / step,
            "forward_all_blocks_s": fwd,
        }
        print(
            f"{name:7s} {count_parameters(model) / 1e6:5.2f}M params  {step * 1000:7.0f} ms/step (batch {batch})  "
            f"forward of {num_blocks} blocks {fwd * 1000:6.0f} ms",
            flush=True,
        )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", help="A generator folder (or hub id).")
    parser.add_argument("--zoo", help="The zoo the generator was trained on.")
    parser.add_argument("--json", help="Write every number to this JSON file.")
    parser.add_argument(
        "--scaling", default="", help="Comma-separated block counts to time sampling at (one process each)."
    )
    parser.add_argument("--chunk", type=int, default=4096, help="Sampling chunk size for --scaling.")
    parser.add_argument("--denoiser-speed", action="store_true", help="Time forward + backward of every denoiser.")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--_point", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--_sample", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args._point:
        print(json.dumps(_one_scaling_point(args._point, args.chunk)))
        return
    if args._sample:
        print(json.dumps(_sample_process(args._sample, "sketch to photo")))
        return

    report: dict = {"threads": args.threads}
    if args.denoiser_speed:
        report["denoiser_speed"] = denoiser_speed()
    if args.generator:
        from weightinit.generator import WeightGenerator

        t = time.perf_counter()
        gen = WeightGenerator.from_pretrained(args.generator)
        report["load_s"] = time.perf_counter() - t
        report["sampling"] = sampling_speed(gen)
        print(
            f"sampling all {report['sampling']['blocks']} blocks in one step: "
            f"{report['sampling']['seconds_new_text']:.3f} s "
            f"(new text), {report['sampling']['seconds_cached_text']:.3f} s (cached text)"
        )
        report["sample_process"] = _subprocess(["--_sample", args.generator], args.threads)
        print(
            f"a sampling process: load {report['sample_process']['load_s']:.1f} s, generate "
            f"{report['sample_process']['generate_s']:.2f} s, "
            f"peak RSS {report['sample_process']['peak_rss_mb']:.0f} MB"
        )
        if args.zoo:
            from weightinit.zoo.weights import ZooWeights

            q = quality(gen, ZooWeights(args.zoo))
            report["quality"], report["zoo"] = q, args.zoo
            r = q["reconstruction"]
            print(
                f"reconstruction (train, {r['concepts']} concepts): rel L2 {r['mean_rel_l2']:.3f} (zoo mean: "
                f"{r['mean_rel_l2_zoo_mean']:.3f})"
            )
            h = q["heldout"]
            print(f"held-out ({h['concepts']} concepts): generated beats both baselines in {h['generated_beats_both']}")
            cols = [c for c in ("generated", "prior_only", "zoo_mean", "nearest_text") if c in h["overall"]]
            print(f"  {'family (mean rel L2)':24s} {'n':>3s} " + " ".join(f"{c:>12s}" for c in cols))
            for fam, row in [*h["per_family"].items(), ("all", {**h["overall"], "n": h["concepts"]})]:
                print(f"  {fam:24s} {row['n']:3d} " + " ".join(f"{row[c]:12.3f}" for c in cols))
            if q["memorisation"]["mean_nearest_member_distance"] is not None:
                print(
                    "memorisation: mean distance of generated held-out sets to their nearest zoo member "
                    f"{q['memorisation']['mean_nearest_member_distance']:.3f}"
                )
    if args.scaling:
        report["scaling"] = []
        for n in (int(v) for v in args.scaling.split(",") if v.strip()):
            point = _subprocess(["--_point", str(n), "--chunk", str(args.chunk)], args.threads)
            report["scaling"].append(point)
            print(
                f"{n:8d} blocks: {point['seconds']:7.2f} s  peak RSS {point['peak_rss_mb']:6.0f} MB "
                f"(output {point['output_mb']:.0f} MB, denoiser {point['denoiser_mb']:.0f} MB)",
                flush=True,
            )
    if args.json:
        atomic_write_json(args.json, report)


if __name__ == "__main__":
    main()
