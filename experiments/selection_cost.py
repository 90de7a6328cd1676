"""Where a selection pass's time goes, and whether batching candidates through one model helps.

    python -m experiments.selection_cost --zoo zoo --json docs/measurements/selection_cost.json

For one held-out concept and the bundled generator on one thread: milliseconds per candidate of
building its factors, writing them into the probe, and one forward pass on 1 and on 8 pairs, in
float32 and in the bfloat16 of the screen; then a forward pass of K candidates at once with
``torch.func.vmap`` over stacked weights (the grouped convolutions it lowers to) against K passes
one at a time. Run it with nothing else on the machine: these are wall seconds.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch import nn
from torch.func import functional_call, vmap

from experiments.bench.methods import BenchContext
from weightinit import plugins
from weightinit.fileio import atomic_write_json
from weightinit.generators import bundled_generator_path
from weightinit.selection import _Selection


def _ms(fn, repeats: int, *args) -> float:
    fn(*args)  # first-call costs are not per call
    start = time.perf_counter()
    for _ in range(repeats):
        fn(*args)
    return 1e3 * (time.perf_counter() - start) / repeats


def _write_all(writer, factors) -> None:
    for f in factors:
        writer.write(f)


def pass_costs(ctx, cid: str, repeats: int) -> dict:
    gen = ctx.generator
    text = ctx.zoo.record(cid).text
    inputs, targets = ctx.selection_pairs(cid)
    generated = gen.generate(text, steps=1, seed=0, guidance=None, dtype=torch.float32, fallback=True)
    sel = _Selection(plugins.build_model(gen.arch), ctx.adapter, gen, generated, text, inputs, targets, fast=True)
    out = {"candidates": len(sel.names), "pairs": len(inputs)}
    chunk = list(range(1, 33))
    with torch.no_grad(), sel.mode():
        for kind, dtype in (("float32", None), ("bfloat16", torch.bfloat16)):
            probe = "exact" if dtype is None else "fast"
            factors = sel.cands.factors(chunk, dtype)
            scorer = sel.scorers[probe]
            out[kind] = {
                "factors_ms": _ms(sel.cands.factors, repeats, chunk, dtype) / len(chunk),
                "write_ms": _ms(_write_all, repeats, sel.writers[probe], factors) / len(chunk),
                "forward_1_pair_ms": _ms(scorer, 10 * repeats, 1),
                "forward_all_pairs_ms": _ms(scorer, 10 * repeats, len(inputs)),
            }
    return out


def vmap_costs(arch: str, pairs: int, size: int, ks: tuple[int, ...], repeats: int) -> dict:
    """ms per candidate: K candidates through one vmapped forward pass against K plain passes."""
    torch.manual_seed(0)
    model = plugins.build_model(arch)
    for m in model.modules():  # batch statistics, nothing tracked: what vmap can batch
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats, m.running_mean, m.running_var = False, None, None
    x, y = torch.randn(pairs, 3, size, size), torch.randn(pairs, 3, size, size)
    out = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        mdl, xx = copy.deepcopy(model).to(dtype), x.to(dtype)
        params = {k: v.detach() for k, v in mdl.named_parameters()}
        buffers = dict(mdl.named_buffers())

        def l1(p, mdl=mdl, buffers=buffers, xx=xx):
            return (functional_call(mdl, (p, buffers), (xx,)).float() - y).abs().mean()

        def one_at_a_time(stacked, k, l1=l1):
            for i in range(k):
                l1({n: v[i] for n, v in stacked.items()})

        for k in ks:
            stacked = {n: v[None].expand(k, *v.shape).clone() for n, v in params.items()}
            with torch.no_grad():
                batched = _ms(vmap(l1), repeats, stacked) / k
                single = _ms(one_at_a_time, repeats, stacked, k) / k
            out[f"{name}_k{k}"] = {"vmap_ms_per_candidate": batched, "one_at_a_time_ms_per_candidate": single}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", required=True)
    parser.add_argument("--concept", default=None, help="A held-out concept (default: the zoo's fourth).")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    ctx = BenchContext(args.zoo, str(bundled_generator_path()))
    cid = args.concept or ctx.zoo.ids("heldout")[3]
    result = {"concept": cid, "arch": ctx.generator.arch, "threads": 1, "passes": pass_costs(ctx, cid, args.repeats)}
    result["vmap"] = vmap_costs(
        ctx.generator.arch, result["passes"]["pairs"], ctx.zoo.config.image_size, (8, 32), args.repeats
    )
    for kind in ("float32", "bfloat16"):
        print(kind, {k: round(v, 2) for k, v in result["passes"][kind].items()})
    for k, v in result["vmap"].items():
        print(k, {n: round(x, 2) for n, x in v.items()})
    if args.json:
        atomic_write_json(args.json, result)


if __name__ == "__main__":
    main()
