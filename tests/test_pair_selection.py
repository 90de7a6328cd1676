"""experiments.pair_selection's screen study: a training concept is scored as unseen."""

import math

import torch

from experiments.bench.methods import BenchContext
from experiments.composed_prior import group_of
from experiments.pair_selection import score_matrix, summarize_study


def test_a_training_concept_cannot_choose_its_own_group(tiny_zoo_dir, tiny_generator_dir):
    ctx = BenchContext(tiny_zoo_dir, str(tiny_generator_dir))
    cid = ctx.zoo.ids("train")[0]
    prior = ctx.generator.prior
    d = score_matrix(ctx, cid, 8)
    assert ctx.generator.prior is prior  # restored
    own = [
        i
        for i, n in enumerate(d["names"])
        if n.startswith("concept ") and group_of(n[len("concept ") :]) == group_of(cid)
    ]
    others = [i for i, n in enumerate(d["names"]) if i not in own]
    assert own and all(math.isinf(float(d["scores"][-1, i])) and math.isinf(float(d["bf16"][i])) for i in own)
    assert torch.isfinite(d["scores"][:, others]).all() and int(torch.argmin(d["scores"][-1])) not in own
    study = summarize_study({cid: d})
    assert study["concepts"] == 1 and all(r["median_forward_passes"] > 0 for r in study["strategies"].values())
