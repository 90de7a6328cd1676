"""initialize(..., pairs=) with a generator that generates the start from the text and the pairs
(weightinit.pair_start): its parts, its folder file, and what initialize does with it."""

from __future__ import annotations

import shutil

import pytest
import torch

from weightinit import plugins
from weightinit.concepts.concept import concept_group
from weightinit.errors import CheckpointError, WeightinitError
from weightinit.fileio import read_safetensors, save_safetensors
from weightinit.generator.model import WeightGenerator
from weightinit.initialization import initialize, load_generator
from weightinit.pair_fit import PriorSpan
from weightinit.pair_start import (
    PAIR_START_NAME,
    PairProposer,
    start_from_pairs,
    text_coefficients,
    text_origins,
    written_origin,
)
from weightinit.recipe import batch_statistics

ARCH = "pix2pix:unet_64,ngf=4"
TEXT = "sketch to photo"


def fresh(seed: int = 0):
    torch.manual_seed(seed)
    return plugins.build_model(ARCH)


def pairs_of_concept(gen, i: int, n: int = 4):
    """Inputs and what the base with training concept ``i``'s prior row written makes of them."""
    model = fresh()
    model.load_state_dict(gen.base_state)
    span = PriorSpan(model, plugins.get_adapter("pix2pix"), gen)
    inputs = torch.rand(n, 3, 64, 64, generator=torch.Generator().manual_seed(5)) * 2 - 1
    with torch.no_grad(), batch_statistics(model):
        out = span.forward(span.blocks(span.origin_at(gen.prior.coef[i])), inputs)
    return inputs, out


@pytest.mark.parametrize(
    "concept_id, group",
    [
        ("sepia-light", "sepia"),
        ("sepia-heavy-reverse", "sepia"),
        ("warm+vignette-full", "warm+vignette"),
        ("deblur-heldout-strength", "deblur"),
        ("charcoal-drawing", "charcoal-drawing"),
    ],
)
def test_a_concepts_group_gathers_its_strengths_and_its_reverse(concept_id, group):
    assert concept_group(concept_id) == group


def _proposer(n=6, f=5, r=3, seed=0, **settings):
    g = torch.Generator().manual_seed(seed)
    features, texts = torch.randn(n, f, generator=g), torch.randn(n, r, generator=g)
    mix = torch.randn(f, r, generator=g)
    coef = texts + ((features - features.mean(0)) / features.std(0)) @ mix + 0.5
    return features, texts, coef, PairProposer.fit(features, texts, coef, 0.0, [f"c{i}" for i in range(n)], **settings)


def test_the_regression_recovers_a_linear_edit_and_the_neighbours_come_nearest_first():
    features, texts, coef, proposer = _proposer()
    rows, names = proposer.propose(features[2], texts[2], 5)
    assert torch.allclose(rows[0], texts[2]) and torch.allclose(rows[1], coef[2], atol=1e-4)
    assert names[:3] == ["text blend", "regressed from the pairs", "concept c2"]  # its own features are nearest
    assert torch.equal(rows[2], coef[2]) and rows.shape == (5, 3) and len(names) == 5
    rows, names = proposer.propose(features[0], texts[0], 1)
    assert names == ["text blend"] and rows.shape == (1, 3)


def test_a_pair_start_saves_and_loads_exactly_and_refuses_another_layout(tmp_path):
    *_, proposer = _proposer(checked=3, fit_steps=2, fit_lr=0.25)
    path = tmp_path / PAIR_START_NAME
    proposer.save(path, "abc")
    back = PairProposer.load(path, "abc")
    for k in ("mean", "std", "ridge", "keys", "coef"):
        assert torch.equal(getattr(back, k), getattr(proposer, k))
    assert (back.names, back.checked, back.fit_steps, back.fit_lr) == (proposer.names, 3, 2, 0.25)
    with pytest.raises(CheckpointError, match="made for layout abc, not xyz"):
        PairProposer.load(path, "xyz")
    with pytest.raises(CheckpointError, match="pair start parts disagree"):
        proposer.with_settings(checked=0)
    with pytest.raises(CheckpointError, match="prior has rank 7"):
        proposer.check(7)
    with pytest.raises(CheckpointError, match="text_origin 'nearest' \\(one of span, written"):
        proposer.with_settings(text_origin="nearest")


def test_a_pair_start_keeps_its_text_origin_and_an_older_file_reads_as_the_spans(tmp_path):
    *_, proposer = _proposer(text_origin="written")
    path = tmp_path / PAIR_START_NAME
    proposer.save(path, "abc")
    assert PairProposer.load(path, "abc").text_origin == "written"
    tensors, meta = read_safetensors(path)
    del meta["weightinit.text_origin"]  # written before the text origin was a setting
    save_safetensors(path, tensors, meta)
    assert PairProposer.load(path, "abc").text_origin == "span"


def test_the_written_text_origin_replaces_the_texts_point_and_moves_the_regressed_one_or_not():
    text, regressed, concept = torch.zeros(2, 3), torch.ones(2, 3), torch.full((2, 3), 5.0)
    written = torch.full((2, 3), 2.0)
    points = [text, regressed, concept]
    assert text_origins(points, written, "span") is points and text_origins(points, None, "written") is points
    moved = text_origins(points, written, "written")
    assert [float(p[0, 0]) for p in moved] == [2.0, 3.0, 5.0]  # the regressed point is a residual to the text's
    kept = text_origins(points, written, "written-text-only")
    assert [float(p[0, 0]) for p in kept] == [2.0, 1.0, 5.0]


def test_a_weight_blending_generator_checks_the_start_text_alone_writes(tiny_pair_generator_dir):
    gen = WeightGenerator.from_pretrained(tiny_pair_generator_dir)  # its own copy: load_generator's is shared
    pairs = pairs_of_concept(gen, 2)
    model = fresh()
    model.load_state_dict(gen.base_state)
    adapter = plugins.get_adapter("pix2pix")
    span = PriorSpan(model, adapter, gen)
    concept = gen.resolve(TEXT)
    assert written_origin(span, gen, concept.start_weights) is None  # it blends factors
    gen.weight_blend = {"min_weight": 0.001}
    gen.pair_start = gen.pair_start.with_settings(checked=1, text_origin="written")
    factors, made = start_from_pairs(model, adapter, gen, concept, pairs, fit_steps=0)
    text_alone = gen.generate(concept, fallback=True)  # in the layout's dtypes, as the span decodes
    assert made.chosen == "text blend" and factors.keys() == text_alone.keys()
    for name, value in text_alone.items():  # through the span's normalised blocks and back
        assert factors[name].dtype == value.dtype and torch.allclose(factors[name], value, atol=1e-3), name
    gen.pair_start = gen.pair_start.with_settings(text_origin="span")
    span_factors, _ = start_from_pairs(model, adapter, gen, concept, pairs, fit_steps=0)
    assert not all(torch.allclose(span_factors[k], v, atol=1e-3) for k, v in text_alone.items())


def test_training_learns_the_pair_start_and_the_folder_keeps_it(tiny_pair_generator_dir, tiny_generator_dir):
    gen = load_generator(tiny_pair_generator_dir)
    assert (tiny_pair_generator_dir / PAIR_START_NAME).is_file() and gen.pair_start is not None
    assert gen.pair_start.names == gen.prior.concept_ids and gen.pair_start.coef.shape == gen.prior.coef.shape
    assert load_generator(tiny_generator_dir).pair_start is None  # trained with pair_start=False


def test_a_pair_start_without_the_prior_is_refused(tiny_pair_generator_dir, tmp_path):
    folder = tmp_path / "gen"
    shutil.copytree(tiny_pair_generator_dir, folder)
    (folder / "prior.safetensors").unlink()
    with pytest.raises(CheckpointError, match="needs the retrieval prior"):
        load_generator(folder)


def test_the_functional_span_writes_what_the_network_computes(tiny_pair_generator_dir):
    gen = load_generator(tiny_pair_generator_dir)
    x, _ = pairs_of_concept(gen, 0)
    model = fresh()
    model.load_state_dict(gen.base_state)
    span = PriorSpan(model, plugins.get_adapter("pix2pix"), gen)
    blocks = span.blocks(span.origin_at(gen.prior.coef[1]))
    written = fresh(3)
    written.load_state_dict(gen.base_state)
    with torch.no_grad():
        for name, value in span.weights(blocks).items():
            written.get_parameter(name).copy_(value)
        with batch_statistics(model), batch_statistics(written):
            a = span.forward(blocks, x)
            assert torch.equal(a, written(x))


@pytest.mark.parametrize("mode", ["merge", "lora"])
def test_pairs_a_training_concept_made_are_generated_close_to_it(tiny_pair_generator_dir, mode):
    gen = load_generator(tiny_pair_generator_dir)
    pairs = pairs_of_concept(gen, 1)
    model = fresh()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = initialize(model, TEXT, generator=tiny_pair_generator_dir, pairs=pairs, mode=mode)
    made = report.pair_start
    assert report.choice is None and made["pairs"] == 4 and made["checked"] == gen.pair_start.checked
    assert made["l1"][report.chosen] == min(made["l1"].values()) <= made["text_l1"]
    assert "generated from 4 pairs" in str(report) and not all(
        torch.equal(before[k], v) for k, v in model.state_dict().items()
    )
    with torch.no_grad(), batch_statistics(model):
        l1 = float((model(pairs[0]) - pairs[1]).abs().mean())
    assert l1 == pytest.approx(report.pair_fit["l1_after"] if report.pair_fit else made["pairs_l1"], abs=1e-4)


def test_start_from_pairs_leaves_the_network_unchanged_and_fit_steps_override(tiny_pair_generator_dir):
    gen = load_generator(tiny_pair_generator_dir)
    pairs = pairs_of_concept(gen, 2)
    model = fresh()
    model.load_state_dict(gen.base_state)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    concept = gen.resolve(TEXT)
    _, plain = start_from_pairs(model, plugins.get_adapter("pix2pix"), gen, concept, pairs, fit_steps=0)
    _, fitted = start_from_pairs(model, plugins.get_adapter("pix2pix"), gen, concept, pairs, fit_steps=3)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert plain.fit is None and fitted.fit.steps == 3 and fitted.chosen == plain.chosen
    assert fitted.fit.l1_before == pytest.approx(plain.pairs_l1, abs=1e-6)
    assert fitted.pairs_l1 <= plain.pairs_l1
    assert torch.equal(
        text_coefficients(gen, concept), gen.prior.coefficients_of(concept.weights[None].float())[0].float()
    )


def test_pairs_start_choose_keeps_the_screen_and_generate_needs_a_pair_start(
    tiny_pair_generator_dir, tiny_generator_dir
):
    gen = load_generator(tiny_pair_generator_dir)
    pairs = pairs_of_concept(gen, 0)
    report = initialize(fresh(), TEXT, generator=tiny_pair_generator_dir, pairs=pairs, pairs_start="choose")
    assert report.pair_start is None and report.choice is not None
    auto = initialize(fresh(), TEXT, generator=tiny_generator_dir, pairs=pairs)  # no pair start: chooses
    assert auto.pair_start is None and auto.choice is not None
    model = fresh()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightinitError, match="has no pair start .* pairs_start='choose'"):
        initialize(model, TEXT, generator=tiny_generator_dir, pairs=pairs, pairs_start="generate")
    with pytest.raises(WeightinitError, match="pairs_start must be one of"):
        initialize(model, TEXT, generator=tiny_generator_dir, pairs=pairs, pairs_start="best")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_adding_a_pair_start_to_a_generator_folder_changes_no_other_weight_file(
    tiny_generator_dir, tiny_zoo_dir, tmp_path
):
    from weightinit.generator.add_pair_start import main

    folder = tmp_path / "gen"
    shutil.copytree(tiny_generator_dir, folder)
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    args = ["--generator", str(folder), "--zoo", str(tiny_zoo_dir), "--checked", "3", "--fit-steps", "2"]
    assert main([*args, "--text-origin", "written"]) == 0
    gen = load_generator(folder)
    assert (gen.pair_start.checked, gen.pair_start.fit_steps, gen.pair_start.text_origin) == (3, 2, "written")
    after = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert set(after) - set(before) == {folder.joinpath(PAIR_START_NAME).relative_to(folder)}
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {folder.joinpath("README.md").relative_to(folder)}
    assert "with a user's pairs: the pair start" in (folder / "README.md").read_text()


def test_write_base_writes_the_generators_base_and_fitted_statistics(tiny_generator_dir):
    from weightinit.initialization import write_base

    gen = load_generator(tiny_generator_dir)
    model = fresh(7)
    assert write_base(model, tiny_generator_dir) == "its own network"
    params = dict(model.named_parameters())
    assert all(torch.equal(params[k], v) for k, v in gen.base_state.items() if k in params)
    plain = fresh(7)
    write_base(plain, tiny_generator_dir, fit_statistics=False)
    assert all(torch.equal(plain.get_buffer(k), v) for k, v in gen.base_buffers.items())


def test_a_truncated_pair_start_is_the_fit_at_that_rank():
    features, texts, coef, proposer = _proposer(r=4)
    short = PairProposer.fit(features, texts[:, :2], coef[:, :2], 0.0, proposer.names)
    cut = proposer.truncated(2)
    assert torch.allclose(cut.ridge, short.ridge, atol=1e-4) and torch.equal(cut.coef, coef[:, :2].float())
    cut.check(2)


def test_exporting_at_a_lower_prior_rank_keeps_a_pair_start_that_loads(tiny_pair_generator_dir, tmp_path):
    from weightinit.generator.export import export_generator

    gen = load_generator(tiny_pair_generator_dir)
    rank = gen.prior.rank - 1
    out = export_generator(tiny_pair_generator_dir, tmp_path / "cut", prior_rank=rank)
    cut = load_generator(out)
    assert cut.prior.rank == rank and cut.pair_start.coef.shape[1] == rank
    assert torch.equal(cut.pair_start.keys, gen.pair_start.keys)


def test_a_wider_network_gets_the_start_generated_on_the_generators_own(tiny_pair_generator_dir):
    gen = load_generator(tiny_pair_generator_dir)
    pairs = pairs_of_concept(gen, 1)
    own, wide = fresh(), plugins.build_model("pix2pix:unet_64,ngf=8")
    mine = initialize(own, TEXT, generator=tiny_pair_generator_dir, pairs=pairs)
    theirs = initialize(wide, TEXT, generator=tiny_pair_generator_dir, pairs=pairs, widen_noise=0.0)
    assert theirs.transfer == "widened from ngf 4 to 8" and theirs.chosen == mine.chosen
    with torch.no_grad(), batch_statistics(own), batch_statistics(wide):
        assert float((own(pairs[0]) - wide(pairs[0])).abs().max()) < 1e-4


def test_the_settings_grid_scores_each_text_origin_from_its_own_point(tiny_pair_generator_dir):
    from experiments.pair_generator import cost, measure_settings, psnr

    gen = WeightGenerator.from_pretrained(tiny_pair_generator_dir)
    gen.weight_blend = {"min_weight": 0.001}
    model = fresh()
    model.load_state_dict(gen.base_state)
    span = PriorSpan(model, plugins.get_adapter("pix2pix"), gen)
    pairs, test = pairs_of_concept(gen, 1), pairs_of_concept(gen, 1, n=2)
    concept = gen.resolve(TEXT)
    text, weights = text_coefficients(gen, concept), concept.weights
    torch.manual_seed(0)
    both, seconds = measure_settings(
        span, gen.pair_start, text, weights, pairs, test, ((1, 2), (0, 2), (0.2,), ("span", "written"))
    )
    torch.manual_seed(0)
    alone, _ = measure_settings(span, gen.pair_start, text, weights, pairs, test, ((1, 2), (0, 2), (0.2,), ("span",)))
    assert {k: v for k, v in both.items() if k[3] == "span"} == alone
    written = span.stored(gen.generate(concept, fallback=True))
    assert both[(1, 0, 0.2, "written")] == pytest.approx(psnr(span, written, test), abs=1e-4)
    assert both[(1, 0, 0.2, "span")] == pytest.approx(psnr(span, span.blocks(span.origin_at(text)), test), abs=1e-4)
    assert cost(seconds, 2, 2, 0.2, "written") == pytest.approx(cost(seconds, 2, 2) + seconds["written"])
