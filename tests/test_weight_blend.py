"""Blending training concepts in weight space (weightinit.generator.weight_blend)."""

import dataclasses
import json

import pytest
import torch

from weightinit.errors import CheckpointError, InvalidWeights
from weightinit.generator.config import CONFIG_NAME
from weightinit.generator.model import WeightGenerator
from weightinit.generator.weight_blend import WeightBlendPolicy, best_factors, blend_tensors, concept_tensors
from weightinit.representation import LORA_A, LORA_B


def lora_targets(tensors):
    return [n.removesuffix(LORA_A) for n in tensors if n.endswith(LORA_A)]


def truncated(m: torch.Tensor, rank: int) -> torch.Tensor:
    u, s, vh = torch.linalg.svd(m.to(torch.float64), full_matrices=False)
    return (u[:, :rank] * s[:rank] @ vh[:rank]).to(torch.float32)


@pytest.mark.parametrize("inner", [3, 40])  # fewer than both sides (the QR core), more (the product)
def test_best_factors_are_the_truncated_svd_of_the_product(inner):
    g = torch.Generator().manual_seed(0)
    b, a = torch.randn(12, inner, generator=g), torch.randn(inner, 20, generator=g)
    out_b, out_a = best_factors(b, a, rank=2)
    assert out_b.shape == (12, 2) and out_a.shape == (2, 20)
    assert torch.allclose(out_b @ out_a, truncated(b @ a, 2), atol=1e-4)
    assert torch.allclose(out_b.norm(dim=0), out_a.norm(dim=1), atol=1e-4)  # the singular values split evenly
    wide_b, wide_a = best_factors(b[:, :1], a[:1], rank=3)  # a rank-1 product: the other columns are zero
    assert torch.allclose(wide_b @ wide_a, b[:, :1] @ a[:1], atol=1e-5)
    assert torch.count_nonzero(wide_b[:, 1:]) == 0 and torch.count_nonzero(wide_a[1:]) == 0


def test_both_routes_to_the_best_factors_give_the_same_factors_signs_included():
    g = torch.Generator().manual_seed(1)
    b, a = torch.randn(12, 3, generator=g), torch.randn(3, 20, generator=g)
    core_b, core_a = best_factors(b, a, rank=2)  # 3 < 12: the QR core
    for product, identity in ((b @ a, torch.eye(20)), (torch.eye(12), b @ a)):  # 20, 12 >= both sides: the Gram
        gram_b, gram_a = best_factors(product, identity, rank=2)
        assert torch.allclose(gram_b, core_b, atol=1e-5) and torch.allclose(gram_a, core_a, atol=1e-5)
    tall_b, tall_a = best_factors(torch.eye(20), (b @ a).T, rank=2)  # [20, 12]: the Gram on its narrow side
    assert torch.allclose(tall_b @ tall_a, truncated((b @ a).T, 2), atol=1e-4)
    assert all(float(col[col.abs().argmax()]) > 0 for col in core_b.T)  # each vector's largest entry positive


@pytest.fixture
def tiny_gen(tiny_generator_dir):
    return WeightGenerator.from_pretrained(tiny_generator_dir)


def test_one_concept_blends_to_its_own_weight_change(tiny_gen):
    for c in range(tiny_gen.prior.coef.shape[0]):
        weights = torch.zeros(tiny_gen.prior.coef.shape[0])
        weights[c] = 1.0
        out = blend_tensors(tiny_gen, weights)
        own = {k: v[0] for k, v in concept_tensors(tiny_gen, torch.tensor([c])).items()}
        assert list(out) == tiny_gen.layout.names
        for t in lora_targets(out):
            assert out[t + LORA_A].shape == own[t + LORA_A].shape
            expected = own[t + LORA_B] @ own[t + LORA_A]
            assert torch.allclose(out[t + LORA_B] @ out[t + LORA_A], expected, atol=1e-5 * float(expected.abs().max()))
        for name in out:
            if not name.endswith((LORA_A, LORA_B)):
                assert torch.allclose(out[name], own[name])


def test_a_blend_is_the_blend_of_weight_changes_not_of_factors(tiny_gen):
    count = tiny_gen.prior.coef.shape[0]
    weights = torch.zeros(count)
    weights[:2] = torch.tensor([0.25, 0.75])
    weights[2:] = 1e-4  # under min_weight: skipped
    out = blend_tensors(tiny_gen, weights)
    own = concept_tensors(tiny_gen, torch.arange(2))
    factor_blend = {k: 0.25 * v[0] + 0.75 * v[1] for k, v in own.items()}
    differs = []
    for t in lora_targets(out):
        rank = own[t + LORA_A].shape[1]
        changes = [own[t + LORA_B][i] @ own[t + LORA_A][i] for i in range(2)]
        expected = truncated(0.25 * changes[0] + 0.75 * changes[1], rank)
        got = out[t + LORA_B] @ out[t + LORA_A]
        assert torch.allclose(got, expected, atol=1e-5 * float(expected.abs().max()))
        factors = factor_blend[t + LORA_B] @ factor_blend[t + LORA_A]
        differs.append(float((factors - expected).norm() / expected.norm()))
    assert max(differs) > 1e-2  # the factor blend has the cross terms


def test_signed_weights_push_the_blend_past_a_concept(tiny_gen):
    weights = torch.zeros(tiny_gen.prior.coef.shape[0])
    weights[:2] = torch.tensor([1.5, -0.5])
    out = blend_tensors(tiny_gen, weights)
    own = concept_tensors(tiny_gen, torch.arange(2))
    for t in lora_targets(out):
        changes = [own[t + LORA_B][i] @ own[t + LORA_A][i] for i in range(2)]
        expected = truncated(1.5 * changes[0] - 0.5 * changes[1], own[t + LORA_A].shape[1])
        got = out[t + LORA_B] @ out[t + LORA_A]
        assert torch.allclose(got, expected, atol=1e-5 * float(expected.abs().max()))


def test_a_generator_with_the_policy_writes_the_weight_blend(tiny_gen, tmp_path):
    text = tiny_gen.prior.concept_names[0]
    before = tiny_gen.generate(text, fallback=True)
    tiny_gen.weight_blend = {"min_weight": 0.001, "measured_on": "a test"}
    resolved = tiny_gen.resolve(text)
    out = tiny_gen.generate(text, fallback=True)
    expected = blend_tensors(tiny_gen, resolved.weights, 0.001)
    assert list(out) == list(before)
    for s in tiny_gen.layout.slots:
        assert out[s.name].dtype == before[s.name].dtype
        assert torch.equal(out[s.name], expected[s.name].to(s.torch_dtype))
    # a far text starts from the mean of every concept's weight change
    tiny_gen.far_policy = {"similarity": 2.0, "fallback": "mean"}
    with pytest.warns(Warning):
        far = tiny_gen.resolve(text)
        far.warn_if_far("tiny", "forward", tiny_gen.far_policy)
    mean = blend_tensors(tiny_gen, torch.full_like(resolved.weights, 1 / resolved.weights.numel()), 0.001)
    fallback = tiny_gen.generate(far, fallback=True)
    assert all(torch.equal(fallback[s.name], mean[s.name].to(s.torch_dtype)) for s in tiny_gen.layout.slots)
    tiny_gen.save_pretrained(tmp_path / "g")
    stored = json.loads((tmp_path / "g" / CONFIG_NAME).read_text())["weight_blend"]
    assert stored == {"min_weight": 0.001, "measured_on": "a test"}
    again = WeightGenerator.from_pretrained(tmp_path / "g")
    assert again.weight_blend == tiny_gen.weight_blend
    tiny_gen.weight_blend = None
    assert "weight_blend" not in tiny_gen.config_dict()


def test_a_non_finite_blend_writes_nothing(tiny_gen):
    tiny_gen.weight_blend = {}
    tiny_gen.prior = dataclasses.replace(tiny_gen.prior, coef=tiny_gen.prior.coef.clone().fill_(float("nan")))
    with pytest.raises(InvalidWeights, match="NaN or Inf"):
        tiny_gen.generate(tiny_gen.prior.concept_names[0])


@pytest.mark.parametrize("bad", [{"min_weight": "some"}, {"min_weight": 1.0}, {"min_weight": -0.1}, [0.1]])
def test_a_bad_weight_blend_policy_is_one_clear_error(bad):
    with pytest.raises(CheckpointError, match="weight_blend"):
        WeightBlendPolicy.from_dict(bad)


def test_re_gauged_lora_factors_keep_every_product_and_balance_the_factors():
    from experiments.lora_gauge import balanced

    g = torch.Generator().manual_seed(2)
    factors = {
        "conv.weight" + LORA_A: torch.randn(3, 18, generator=g) * 10,  # a trained A: large
        "conv.weight" + LORA_B: torch.randn(8, 3, generator=g) * 0.01,  # its B: small
        "norm.weight": torch.randn(8, generator=g),
    }
    out = balanced(factors)
    b, a = out["conv.weight" + LORA_B], out["conv.weight" + LORA_A]
    product = factors["conv.weight" + LORA_B] @ factors["conv.weight" + LORA_A]
    assert torch.allclose(b @ a, product, atol=1e-5) and b.shape == (8, 3) and a.shape == (3, 18)
    assert torch.allclose(b.norm(dim=0), a.norm(dim=1), rtol=1e-4)
    assert torch.equal(out["norm.weight"], factors["norm.weight"])


def test_a_generator_without_the_policy_refuses_to_write_a_weight_blend(tiny_gen):
    from weightinit.errors import WeightinitError

    tiny_gen.weight_blend = None
    with pytest.raises(WeightinitError, match="has no weight-blend policy: it blends factors"):
        tiny_gen.blend_start(torch.ones(tiny_gen.prior.coef.shape[0]))
