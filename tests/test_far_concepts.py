"""What a start is based on, and far concepts: warning, fallback, the measured policy."""

import json
import warnings

import pytest
import torch
from typer.testing import CliRunner

from experiments.far_concepts import choose_policy, concept_group, extend_to_support, far_policy
from weightinit import plugins
from weightinit.codec import BlockCodec
from weightinit.errors import CheckpointError, FarConceptWarning
from weightinit.generator.model import WeightGenerator
from weightinit.initialization import initialize

ARCH = "pix2pix:unet_64,ngf=4"


def generator_with_policy(tiny_generator_dir, tmp_path, policy):
    gen = WeightGenerator.from_pretrained(tiny_generator_dir)
    gen.far_policy = policy
    out = tmp_path / "gen"
    gen.save_pretrained(out)
    return out


def fresh(seed=0):
    torch.manual_seed(seed)
    return plugins.build_model(ARCH)


def test_report_names_the_training_concepts_the_start_draws_on(tiny_generator_dir):
    gen = WeightGenerator.from_pretrained(tiny_generator_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FarConceptWarning)  # no policy: never far
        report = initialize(fresh(), "sketch to photo", generator=tiny_generator_dir)
    prov = report.based_on["netG"]
    assert prov["text"] == "sketch to photo" and not prov["far"] and prov["fallback"] is None
    names = [c["concept"] for c in prov["concepts"]]
    assert names and set(names) <= set(gen.prior.concept_ids)
    assert sum(c["weight"] for c in prov["concepts"]) <= 1.0 + 1e-6
    assert prov["similarity"] == max(c["similarity"] for c in prov["concepts"])
    assert "based on:" in str(report) and names[0] in str(report)


def test_far_concept_warns_and_starts_from_the_fallback(tiny_generator_dir, tmp_path):
    folder = generator_with_policy(tiny_generator_dir, tmp_path, {"similarity": 1.5, "fallback": "mean"})
    model = fresh(1)
    with pytest.warns(FarConceptWarning, match="far from every concept"):
        report = initialize(model, "zxqv wibble", generator=folder)
    assert report.fell_back and report.based_on["netG"]["fallback"] == "mean"
    assert "fell back to the zoo mean" in str(report)
    nearest = report.based_on["netG"]["concepts"]  # the nearest by text are named, not an arbitrary few
    sims = [c["similarity"] for c in nearest]
    assert (
        nearest
        and sims == sorted(sims, reverse=True)
        and "the zoo mean; nearest: " + nearest[0]["concept"] in str(report)
    )
    # the fallback start is exactly the zoo mean written into the base
    gen = WeightGenerator.from_pretrained(folder)
    expected = fresh(2)
    factors = BlockCodec(gen.layout).decode(gen.normalizer.denormalize(gen.center, torch.float32), copy=True)
    from weightinit.initialization import load_generator

    view = load_generator(gen)
    from weightinit.apply import apply_tensors

    apply_tensors(
        expected, view.full_weights({k: v.float() for k, v in factors.items()}), plugins.adapter_for_model(expected)
    )
    for k, v in expected.state_dict().items():
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.allclose(model.state_dict()[k], v, atol=1e-6), k


def test_a_far_concept_without_a_fallback_is_warned_about_and_keeps_its_blend(tiny_generator_dir, tmp_path):
    folder = generator_with_policy(tiny_generator_dir, tmp_path, {"similarity": 1.5, "fallback": "blend"})
    model, plain = fresh(1), fresh(1)
    with pytest.warns(FarConceptWarning, match="starts from the blend of those concepts.*pairs give a better start"):
        report = initialize(model, "zxqv wibble", generator=folder)
    prov = report.based_on["netG"]
    assert prov["far"] and prov["fallback"] is None and not report.fell_back
    assert "far from the zoo (its own blend: no fallback)" in str(report)
    gen = WeightGenerator.from_pretrained(folder)
    resolved = gen.resolve("zxqv wibble")
    assert resolved.far and torch.equal(resolved.start_weights, resolved.weights)
    gen.far_policy = None  # the same start as a generator without a far policy
    with warnings.catch_warnings():
        warnings.simplefilter("error", FarConceptWarning)
        initialize(plain, "zxqv wibble", generator=gen)
    for k, v in plain.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_near_concept_does_not_warn(tiny_generator_dir, tmp_path):
    folder = generator_with_policy(
        tiny_generator_dir, tmp_path, {"similarity": -0.5, "fallback": "prior", "temperature": 0.3}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", FarConceptWarning)
        report = initialize(fresh(), "sketch to photo", generator=folder)
    assert not report.fell_back


def test_cli_prints_the_warning_as_one_line(tiny_generator_dir, tmp_path):
    from weightinit.cli import app as app_module

    folder = generator_with_policy(tiny_generator_dir, tmp_path, {"similarity": 1.5, "fallback": "mean"})
    out = tmp_path / "x.safetensors"
    result = CliRunner().invoke(app_module.app, ["sample", "zxqv wibble", "-o", str(out), "-g", str(folder), "--json"])
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: 'zxqv wibble'"), result.stderr
    assert json.loads(result.stdout)["based_on"]["netG"]["fallback"] == "mean"


def test_bad_far_policy_is_refused_and_a_good_one_round_trips():
    from weightinit.generator.far_policy import FarPolicy

    with pytest.raises(CheckpointError, match="fallback must be one of"):
        FarPolicy.from_dict({"similarity": 0.5, "fallback": "random"})
    with pytest.raises(CheckpointError, match="needs a numeric 'temperature'"):
        FarPolicy.from_dict({"similarity": 0.5, "fallback": "prior"})
    with pytest.raises(CheckpointError, match="numeric 'similarity'"):
        FarPolicy.from_dict({"similarity": "high", "fallback": "mean"})
    stored = {"similarity": 0.9, "fallback": "prior", "temperature": 0.1, "measured_on": "60 training concepts"}
    policy = FarPolicy.from_dict(stored)
    assert policy.temperature == 0.1 and policy.measured == {"measured_on": "60 training concepts"}
    assert policy.to_dict() == stored and policy.fallback_name() == "broader prior blend (temperature 0.1)"
    warned_only = FarPolicy.from_dict({"similarity": 0.5, "fallback": "blend"})
    assert warned_only.fallback_name() == "blend of its nearest concepts"


def test_policy_choice_falls_back_below_the_similarity_where_the_prior_stops_gaining():
    rows = [
        {"similarity": s, "prior": p, "mean": m}
        for s, p, m in [(0.2, 10.0, 12.0), (0.3, 11.0, 12.0), (0.5, 14.0, 12.0), (0.8, 18.0, 12.0)]
    ]
    best = choose_policy(rows, ["mean"])
    assert best["fallback"] == "mean" and best["similarity"] == pytest.approx(0.4)
    assert best["mean_psnr"] == pytest.approx((12 + 12 + 14 + 18) / 4)
    never = choose_policy([dict(r, mean=0.0) for r in rows], ["mean"])
    assert never["similarity"] == -1.0  # the prior wins everywhere over the measured range
    # ... but below the lowest similarity measured, nothing was measured: the closest evidence decides
    rows2 = [r | {"mean": 0.0, "prior_t0.3": r["prior"] + (1.0 if r["similarity"] < 0.25 else -1.0)} for r in rows]
    extended = extend_to_support(choose_policy(rows2, ["mean"]), rows2, ["mean", "prior_t0.3"], fraction=0.25)
    assert extended["similarity"] == 0.2 and extended["fallback"] == "prior_t0.3"


def test_far_is_where_the_prior_stops_gaining_over_the_mean_and_the_best_start_below_is_the_fallback():
    rows = [
        {"similarity": s, "prior": p, "mean": m, "prior_t0.03": p, "prior_t0.1": t1, "prior_t0.3": m - 1}
        for s, p, m, t1 in [
            (0.2, 10.0, 12.0, 13.0),
            (0.3, 11.0, 12.0, 12.5),
            (0.5, 14.0, 12.0, 13.0),
            (0.8, 18.0, 12.0, 15.0),
        ]
    ]
    policy = far_policy(rows)
    assert policy["similarity"] == pytest.approx(0.4) and policy["fallback"] == "prior_t0.1"
    assert policy["concepts_below"] == 2 and policy["mean_psnr"] == pytest.approx((13 + 12.5 + 14 + 18) / 4)


def test_strength_variants_share_a_group():
    assert concept_group("sepia-light") == concept_group("sepia-heavy") == "sepia"
    assert concept_group("sepia-light-reverse") == "sepia-reverse"
    assert concept_group("warm+vignette-heavy") == "warm+vignette"
