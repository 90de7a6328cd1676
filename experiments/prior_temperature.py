"""Choose the retrieval prior's temperature by what the weights do, on training concepts only.

    python -m experiments.prior_temperature --zoo zoo --json docs/measurements/prior_temperature.json

For every training concept (or ``--limit`` of them, spread over the list) and every temperature:
blend the *other* training concepts' weights by text similarity (the concept's phrasings as
queries, its own concept left out, as a held-out concept would be), write base + blend into the
base model and measure PSNR at step 0 on the concept's test pairs; beside it the zoo mean and the
nearest other concept by text. Prints the median PSNR per temperature; the generator's default
temperature is the best one here. Held-out concepts are never read.

Why not the leave-one-out error in weight space (what ``RetrievalPrior.fit`` does without this)?
Averaging weights is not averaging functions: a broad blend is closer to the true weights in L2
but maps images worse than a sharper one, so the function is measured.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from experiments.bench.methods import BenchContext
from weightinit.codec import BlockCodec
from weightinit.fileio import atomic_write_json
from weightinit.generator.prior import blend_weights
from weightinit.recipe import evaluate

GRID = (0.01, 0.02, 0.03, 0.05, 0.07, 0.1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", required=True)
    parser.add_argument("--limit", type=int, default=None, help="At most this many training concepts, evenly spaced.")
    parser.add_argument("--grid", default=",".join(map(str, GRID)))
    parser.add_argument("--json")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    report = measure(args.zoo, [float(v) for v in args.grid.split(",")], limit=args.limit)
    if args.json:
        atomic_write_json(args.json, report)


def measure(zoo_dir: str, grid=GRID, *, limit: int | None = None) -> dict:
    """Step-0 PSNR of the leave-one-concept-out blend at each temperature of ``grid`` on the
    training concepts of ``zoo_dir`` (at most ``limit``, evenly spaced), printed as it goes;
    returns the report ``--json`` writes (``median_psnr``, ``best``, ``per_concept``, ...)."""
    grid = [float(t) for t in grid]
    ctx = BenchContext(zoo_dir)
    zoo = ctx.zoo
    ids = zoo.ids("train")
    chosen = (
        ids if not limit or limit >= len(ids) else [ids[round(i * (len(ids) - 1) / (limit - 1))] for i in range(limit)]
    )
    codec = BlockCodec(zoo.layout)
    layout = zoo.layout
    flat = torch.stack(
        [
            codec.encode(
                {k: v.to(layout[k].torch_dtype) for k, v in zoo.concept(c).items()}, dtype=torch.float32
            ).reshape(-1)
            for c in ids
        ]
    )
    enc = ctx.text_encoder()
    phrasings, owner = [], []
    for i, c in enumerate(ids):
        record = zoo.record(c)
        texts = list(dict.fromkeys([record.text, *record.phrasings]))
        phrasings += texts
        owner += [i] * len(texts)
    keys = F.normalize(enc.encode(phrasings).pooled.float(), dim=-1)
    owner = torch.tensor(owner)
    main_text = F.normalize(enc.encode([zoo.record(c).text for c in ids]).pooled.float(), dim=-1)

    def psnr(vec, test):
        factors = codec.decode(vec.view(layout.num_blocks, layout.block_size), copy=True)
        return evaluate(ctx.merged(ctx.delta({k: v.float() for k, v in factors.items()})), *test)["psnr"]

    rows, t0 = {}, time.perf_counter()
    for c in chosen:
        i = ids.index(c)
        test = zoo.test_pairs(c)
        others = torch.arange(len(ids)) != i
        query = main_text[i : i + 1]
        row = {"mean_others": psnr(flat[others].mean(0), test)}
        sim = (query @ main_text.T).squeeze(0).masked_fill(~others, -2)
        row["nearest_other"] = psnr(flat[int(sim.argmax())], test)
        for t in grid:
            w = blend_weights(keys, owner, len(ids), query, t, exclude=torch.tensor([i]))
            row[f"t={t}"] = psnr((w @ flat).squeeze(0), test)
        rows[c] = {k: round(v, 3) for k, v in row.items()}
        print(f"{c:34s} " + " ".join(f"{k}={v:.2f}" for k, v in rows[c].items()), flush=True)
    cols = list(next(iter(rows.values())))
    medians = {k: statistics.median(r[k] for r in rows.values()) for k in cols}
    best = max(grid, key=lambda t: medians[f"t={t}"])
    print("median PSNR at step 0: " + " ".join(f"{k}={v:.2f}" for k, v in medians.items()))
    print(
        f"best temperature: {best} ({len(rows)} training concepts, leave-one-concept-out, "
        f"{time.perf_counter() - t0:.0f} s)"
    )
    return {
        "zoo": str(zoo_dir),
        "concepts": len(rows),
        "grid": grid,
        "median_psnr": medians,
        "best": best,
        "per_concept": rows,
    }


if __name__ == "__main__":
    main()
