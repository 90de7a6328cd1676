"""initialize(..., pairs=...): the start chosen on the user's pairs among the generator's candidates."""

from __future__ import annotations

import copy

import pytest
import torch

from weightinit import plugins
from weightinit.codec import BlockCodec
from weightinit.errors import WeightinitError
from weightinit.generator.prior import CANDIDATE_SCALES, CANDIDATE_TEMPERATURES
from weightinit.initialization import initialize, load_generator
from weightinit.recipe import batch_statistics

ARCH = "pix2pix:unet_64,ngf=4"
TEXT = "sketch to photo"


def fresh(seed: int = 0):
    torch.manual_seed(seed)
    return plugins.build_model(ARCH)


def candidate_weights(gen, name: str) -> dict[str, torch.Tensor]:
    blocks = dict(gen.candidate_blocks(TEXT))[name]
    return gen.full_weights({k: v.float() for k, v in BlockCodec(gen.layout).decode(blocks, copy=True).items()})


def pairs_made_by(gen, weights: dict[str, torch.Tensor], n: int = 4):
    """Inputs and the outputs of the base model carrying ``weights``: pairs only that start fits exactly."""
    from weightinit.apply import prepare_update, write_in_place

    model = fresh()
    model.load_state_dict(gen.base_state)
    write_in_place(prepare_update(model, weights, plugins.get_adapter("pix2pix"))[0])
    inputs = torch.rand(n, 3, 64, 64, generator=torch.Generator().manual_seed(5)) * 2 - 1
    with torch.no_grad(), batch_statistics(model):
        return inputs, model(inputs)


def canonical(model):
    return plugins.get_adapter("pix2pix").to_canonical(model, model.state_dict())


def test_the_prior_offers_its_grid_of_blends_then_every_training_concept(tiny_generator_dir):
    gen = load_generator(tiny_generator_dir)
    prior = gen.prior
    named = gen.candidate_blocks(TEXT)
    blends = len(CANDIDATE_TEMPERATURES) * len(CANDIDATE_SCALES)
    assert len(named) == blends + len(prior.concept_ids)
    assert [n for n, _ in named[blends:]] == [f"concept {c}" for c in prior.concept_ids]
    assert all(b.shape == (gen.layout.num_blocks, gen.layout.block_size) for _, b in named)
    delta = prior.candidates(gen.text_encoder.encode(TEXT).pooled)[blends][1]
    assert torch.equal(delta.flatten(), prior.coef[0] @ prior.basis.float())


@pytest.mark.parametrize("mode", ["merge", "lora"])
def test_pairs_made_by_a_training_concept_choose_exactly_that_concept(tiny_generator_dir, mode):
    gen = load_generator(tiny_generator_dir)
    name = f"concept {gen.prior.concept_ids[1]}"
    weights = candidate_weights(gen, name)
    model = fresh()
    report = initialize(model, TEXT, generator=tiny_generator_dir, pairs=pairs_made_by(gen, weights), mode=mode)
    assert report.chosen == name and report.choice["pairs_l1"] < 1e-5 < report.choice["generated_l1"]
    assert report.choice["candidates"] == 1 + len(gen.candidate_blocks(TEXT)) and report.choice["pairs"] == 4
    assert f"chose {name}" in str(report)
    if mode == "lora":
        from weightinit.lora import merge_lora

        model = merge_lora(model)
    got = canonical(model)
    for k, v in weights.items():
        assert torch.allclose(got[k], v, atol=1e-6), k


def test_pairs_the_generated_weights_fit_best_keep_them_bitwise(tiny_generator_dir):
    gen = load_generator(tiny_generator_dir)
    generated = gen.full_weights(gen.generate(TEXT, steps=1, seed=0, guidance=None))
    plain, chosen = fresh(), fresh()
    initialize(plain, TEXT, generator=tiny_generator_dir)
    report = initialize(chosen, TEXT, generator=tiny_generator_dir, pairs=pairs_made_by(gen, generated))
    assert report.chosen == "generated" and report.choice["pairs_l1"] == report.choice["generated_l1"]
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), chosen.parameters()))
    assert "fitted on 4 pair inputs" in report.statistics  # the running statistics: of the pairs' inputs


@pytest.mark.parametrize(
    "pairs, message",
    [
        (torch.zeros(2, 3, 64, 64), "pairs must be (inputs, targets)"),
        ((torch.zeros(2, 3, 64, 64), torch.zeros(3, 3, 64, 64)), "same N, H, W"),
        ((torch.zeros(0, 3, 64, 64), torch.zeros(0, 3, 64, 64)), "hold no pair"),
        ((torch.full((2, 3, 64, 64), float("nan")), torch.zeros(2, 3, 64, 64)), "NaN or Inf"),
        ((torch.full((2, 3, 64, 64), -0.5), torch.full((2, 1, 64, 64), -0.5)), "but the targets are"),
        (
            (torch.full((2, 3, 64, 64), 200.0), torch.full((2, 3, 64, 64), 10.0)),
            r"span \[10, 200\]: pass x / 127.5 - 1",
        ),
        ((torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)), r"look like images in \[0, 1\].*pass x \* 2 - 1"),
    ],
)
def test_bad_pairs_get_one_clear_error_and_leave_the_model_unchanged(tiny_generator_dir, pairs, message):
    model = fresh()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightinitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        initialize(model, TEXT, generator=tiny_generator_dir, pairs=pairs)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_cyclegan_model_refuses_pairs(tiny_generator_dir):
    from weightinit.adapters.cyclegan import CycleGANPair

    pair = CycleGANPair(fresh(1), fresh(2))
    with pytest.raises(WeightinitError, match="has two and no pairs"):
        initialize(pair, TEXT, generator=tiny_generator_dir, pairs=(torch.zeros(1, 3, 64, 64),) * 2)


# --- cheap selection: candidates built in batches, written in place, screened -----------------
INSTANCE_ARCH = "pix2pix:unet_64,ngf=4,norm=instance"


def _pairs(n: int = 4, seed: int = 5):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 64, 64, generator=g) * 2 - 1, torch.rand(n, 3, 64, 64, generator=g) * 2 - 1


def _all_factors(gen, generated):
    """[generated] + every candidate of candidate_blocks, decoded as the codec does."""
    codec = BlockCodec(gen.layout)
    return [generated] + [
        {k: v.float() for k, v in codec.decode(b, copy=True).items()} for _, b in gen.candidate_blocks(TEXT)
    ]


def _one_at_a_time(model, gen, factors_list, pairs):
    """The reference: a fresh copy of the model per candidate, full weights copied in, L1 on all pairs."""
    from weightinit.apply import write_buffers

    adapter = plugins.get_adapter("pix2pix")
    scores = []
    for factors in factors_list:
        probe = copy.deepcopy(model)
        write_buffers(probe, gen.base_buffers)
        full, params = gen.full_weights(factors), dict(probe.named_parameters())
        with torch.no_grad():
            for native, canonical in adapter.canonical_names(probe):
                params[native].copy_(full[canonical])
            with batch_statistics(probe):
                scores.append(float((probe(pairs[0]) - pairs[1]).abs().mean(dtype=torch.float64)))
    return torch.tensor(scores, dtype=torch.float64)


def _instance_norm_generator(gen):
    """The tiny generator's factors over a seeded instance-norm base (same LoRA layout, conv biases)."""
    other = copy.copy(gen)
    for cached in ("base_model", "base_canonical", "base_buffers", "base_layout"):
        other.__dict__.pop(cached, None)
    torch.manual_seed(3)
    other.arch, other.base_state = INSTANCE_ARCH, plugins.build_model(INSTANCE_ARCH).state_dict()
    return other


def test_candidates_in_one_matmul_are_the_candidate_blocks(tiny_generator_dir):
    from weightinit.selection import _PriorCandidates

    gen = load_generator(tiny_generator_dir)
    named = gen.candidate_blocks(TEXT)
    cands = _PriorCandidates(gen, TEXT, torch.device("cpu"))
    assert cands.names == [n for n, _ in named]
    codec = BlockCodec(gen.layout)
    for i, (name, built) in enumerate(zip(cands.names, cands.factors(list(range(len(cands)))))):
        assert torch.equal(cands.exact_blocks(i), named[i][1]), name  # what the chosen one is returned as
        want = codec.decode(named[i][1], copy=True)
        for k, v in want.items():  # float32 instead of float64 before the layout's float16: one ulp at most
            assert torch.allclose(built[k], v.float(), rtol=2**-10, atol=1e-6), (name, k)


@pytest.mark.parametrize("arch", [ARCH, INSTANCE_ARCH])
def test_scores_written_in_place_equal_one_model_per_candidate(tiny_generator_dir, arch):
    from weightinit.selection import _Selection

    gen = load_generator(tiny_generator_dir)
    if arch == INSTANCE_ARCH:
        gen = _instance_norm_generator(gen)
    generated = load_generator(tiny_generator_dir).generate(TEXT, steps=1, seed=0, guidance=None, dtype=torch.float32)
    torch.manual_seed(1)
    model = plugins.build_model(arch)
    norms = {type(m) for m in model.modules() if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.InstanceNorm2d))}
    assert norms == {torch.nn.InstanceNorm2d if arch == INSTANCE_ARCH else torch.nn.BatchNorm2d}
    pairs = _pairs(4)
    sel = _Selection(model, plugins.get_adapter("pix2pix"), gen, generated, TEXT, *pairs)
    with torch.no_grad(), sel.mode():
        order = list(range(len(sel.names)))[::-1]  # any order: no state carries over between candidates
        got = torch.empty(len(order), dtype=torch.float64)
        got[order] = sel.score(order)
    want = _one_at_a_time(model, gen, _all_factors(gen, generated), pairs)
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-7), (got - want).abs().max()
    assert int(got.argmin()) == int(want.argmin())


def test_the_model_is_untouched_and_every_candidate_has_its_own_batch_statistics(tiny_generator_dir):
    from weightinit.selection import choose_on_pairs

    gen = load_generator(tiny_generator_dir)
    generated = gen.generate(TEXT, steps=1, seed=0, guidance=None, dtype=torch.float32)
    model = fresh(4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _, choice = choose_on_pairs(model, plugins.get_adapter("pix2pix"), gen, generated, TEXT, _pairs(3), screen=None)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # running statistics too
    want = _one_at_a_time(model, gen, _all_factors(gen, generated), _pairs(3))
    assert choice.chosen == (["generated"] + [n for n, _ in gen.candidate_blocks(TEXT)])[int(want.argmin())]
    assert choice.pairs_l1 == pytest.approx(float(want.min()), rel=1e-5) and choice.generated_l1 == pytest.approx(
        float(want[0]), rel=1e-5
    )
    assert (choice.scored, choice.rescored, choice.screened) == (len(want), 0, False)


def test_a_screen_that_visits_every_candidate_chooses_as_scoring_them_all(tiny_generator_dir):
    from weightinit.selection import Screen, choose_on_pairs

    gen = load_generator(tiny_generator_dir)
    generated = gen.generate(TEXT, steps=1, seed=0, guidance=None, dtype=torch.float32)
    args = (fresh(), plugins.get_adapter("pix2pix"), gen, generated, TEXT, _pairs(4))
    exact_factors, exact = choose_on_pairs(*args, screen=None)
    for fast in ("auto", None):
        factors, screened = choose_on_pairs(
            *args, screen=Screen(above=0, start=3, neighbours=4, budget=1000, rescore=3, fast=fast)
        )
        assert screened.screened and screened.scored == exact.candidates
        # Candidates' factors come from one matmul per chunk of candidates, and BLAS rounds float32
        # differently for different chunk sizes: the same candidate's score agrees to float32, not bitwise.
        assert screened.chosen == exact.chosen and screened.pairs_l1 == pytest.approx(exact.pairs_l1, rel=1e-6)
        assert all(torch.equal(factors[k], exact_factors[k]) for k in exact_factors)


def test_a_small_screen_is_exact_among_what_it_rescored(tiny_generator_dir):
    from weightinit.selection import Screen, _Selection, choose_on_pairs

    gen = load_generator(tiny_generator_dir)
    generated = gen.generate(TEXT, steps=1, seed=0, guidance=None, dtype=torch.float32)
    adapter, pairs = plugins.get_adapter("pix2pix"), _pairs(4)
    calls = []
    screen = Screen(above=0, start=3, neighbours=3, budget=8, rescore=2, fast=None)
    _, choice = choose_on_pairs(
        fresh(), adapter, gen, generated, TEXT, pairs, screen=screen, progress=lambda d, t: calls.append((d, t))
    )
    assert (
        choice.screened and choice.scored == 8 and choice.rescored == 0
    )  # a float32 screen is exact: nothing to rescore
    assert [d for d, _ in calls] == list(range(1, 9)) and calls[-1][1] == 8
    sel = _Selection(fresh(), adapter, gen, generated, TEXT, *pairs)
    with torch.no_grad(), sel.mode():
        scores = sel.score(list(range(len(sel.names))))
    assert choice.generated_l1 == pytest.approx(float(scores[0]), rel=1e-9)
    assert choice.pairs_l1 == pytest.approx(float(scores[sel.names.index(choice.chosen)]), rel=1e-9)
    assert choice.pairs_l1 >= float(scores.min()) - 1e-12  # may miss the best of all: only 8 of 24 were looked at


def test_the_bfloat16_screen_is_close_and_its_choice_is_rescored_in_float32(tiny_generator_dir):
    from weightinit.selection import Screen, _Selection, choose_on_pairs

    gen = load_generator(tiny_generator_dir)
    generated = gen.generate(TEXT, steps=1, seed=0, guidance=None, dtype=torch.float32)
    adapter, pairs = plugins.get_adapter("pix2pix"), _pairs(4)
    sel = _Selection(fresh(), adapter, gen, generated, TEXT, *pairs, fast=True)
    idx = list(range(len(sel.names)))
    with torch.no_grad(), sel.mode():
        exact, rough = sel.score(idx), sel.score(idx, kind="fast")
    assert torch.allclose(rough, exact, rtol=2e-2)
    screen = Screen(above=0, start=3, neighbours=4, budget=1000, rescore=3, fast="auto")
    _, choice = choose_on_pairs(fresh(), adapter, gen, generated, TEXT, pairs, screen=screen)
    assert choice.pairs_l1 == pytest.approx(float(exact[sel.names.index(choice.chosen)]), rel=1e-9)  # the float32 score
    from weightinit.selection import _fast_screen_supported

    # the 3 best of the screen and the generated weights, unless it is one of them
    assert choice.rescored in ((3, 4) if _fast_screen_supported(torch.device("cpu")) else (0,))


def test_the_clusters_cover_every_candidate_once_deterministically():
    from weightinit.selection import _clusters

    points = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    groups = _clusters(points, 7)
    assert len(groups) == 7 and sorted(i for g in groups for i in g) == list(range(50))
    assert groups == _clusters(points, 7)
    reps = torch.tensor([g[0] for g in groups])
    for g in groups:  # each member is in the group of its nearest representative
        assert all(int(torch.cdist(points[i : i + 1], points[reps]).argmin()) == groups.index(g) for i in g)
    assert _clusters(points[:5], 7) == [[i] for i in range(5)]


def test_non_finite_weights_or_scores_are_refused_naming_the_candidate(tiny_generator_dir):
    from weightinit.errors import InvalidWeights
    from weightinit.selection import Screen, choose_on_pairs

    gen = load_generator(tiny_generator_dir)
    generated = gen.generate(TEXT, steps=1, seed=0, guidance=None, dtype=torch.float32)
    adapter = plugins.get_adapter("pix2pix")
    inf = {k: v.clone() for k, v in generated.items()}
    next(iter(inf.values()))[0] = float("inf")
    huge = {k: v * 1e30 for k, v in generated.items()}  # finite, but B @ A overflows: the outputs are NaN
    for screen in (None, Screen(above=0, fast=None), Screen(above=0)):
        with pytest.raises(InvalidWeights, match="generated weights contain NaN or Inf"):
            choose_on_pairs(fresh(), adapter, gen, inf, TEXT, _pairs(2), screen=screen)
        with pytest.raises(InvalidWeights, match="scoring candidate 'generated' on the pairs gave NaN or Inf"):
            choose_on_pairs(fresh(), adapter, gen, huge, TEXT, _pairs(2), screen=screen)
    with pytest.raises(WeightinitError, match="Screen.fast"):
        choose_on_pairs(fresh(), adapter, gen, generated, TEXT, _pairs(2), screen=Screen(above=0, fast="float16"))


def test_fitting_the_chosen_start_to_the_pairs_lowers_their_l1_and_stays_in_the_prior_span(tiny_generator_dir):
    gen = load_generator(tiny_generator_dir)
    # pairs made by a point of the prior's span that is no candidate: half the first concept's delta
    prior = gen.prior
    target_blocks = gen.normalizer.denormalize(
        (gen.center if gen.center is not None else 0) + prior.delta(0.5 * prior.coef[0]), torch.float32
    )
    from weightinit.codec import BlockCodec

    target = gen.full_weights(BlockCodec(gen.layout).decode(target_blocks, copy=True))
    pairs = pairs_made_by(gen, target)
    chosen, fitted = fresh(), fresh()
    plain = initialize(chosen, TEXT, generator=tiny_generator_dir, pairs=pairs)
    report = initialize(fitted, TEXT, generator=tiny_generator_dir, pairs=pairs, fit_steps=10)
    fit = report.pair_fit
    assert fit["steps"] == 10 and fit["pairs"] == len(pairs[0])
    assert fit["l1_before"] == pytest.approx(plain.choice["pairs_l1"], abs=1e-5)  # it starts at the chosen start
    assert fit["l1_after"] < fit["l1_before"] and "fitted to 4 pairs in 10 steps" in str(report)
    with torch.no_grad(), batch_statistics(fitted):
        assert float((fitted(pairs[0]) - pairs[1]).abs().mean()) == pytest.approx(fit["l1_after"], abs=1e-4)


@pytest.mark.parametrize(
    "steps, said", [(-1, "fit_steps must be an integer >= 0"), (True, "fit_steps must be"), (5, "pass pairs=")]
)
def test_bad_fit_steps_are_one_line(tiny_generator_dir, steps, said):
    model = fresh()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightinitError, match=said):
        initialize(model, TEXT, generator=tiny_generator_dir, fit_steps=steps)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_start_the_pairs_already_fit_is_kept_by_the_fit(tiny_generator_dir):
    gen = load_generator(tiny_generator_dir)
    generated = gen.full_weights(gen.generate(TEXT, steps=1, seed=0, guidance=None))
    pairs = pairs_made_by(gen, generated)  # the generated start fits them exactly
    plain, fitted = fresh(), fresh()
    initialize(plain, TEXT, generator=tiny_generator_dir, pairs=pairs)
    report = initialize(fitted, TEXT, generator=tiny_generator_dir, pairs=pairs, fit_steps=5)
    assert report.pair_fit["kept"] and report.pair_fit["l1_after"] == report.pair_fit["l1_before"]
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), fitted.parameters()))
