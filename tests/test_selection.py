"""initialize(..., pairs=...): the start chosen on the user's pairs among the generator's candidates."""

from __future__ import annotations

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
    blocks = dict(gen.generator.candidate_blocks(TEXT))[name]
    return gen.full_weights({k: v.float() for k, v in BlockCodec(gen.generator.layout).decode(blocks, copy=True).items()})


def pairs_made_by(gen, weights: dict[str, torch.Tensor], n: int = 4):
    """Inputs and the outputs of the base model carrying ``weights``: pairs only that start fits exactly."""
    from weightinit.apply import prepare_update, write_in_place

    model = fresh()
    model.load_state_dict(gen.generator.base_state)
    write_in_place(prepare_update(model, weights, plugins.get_adapter("pix2pix"))[0])
    inputs = torch.rand(n, 3, 64, 64, generator=torch.Generator().manual_seed(5)) * 2 - 1
    with torch.no_grad(), batch_statistics(model):
        return inputs, model(inputs)


def canonical(model):
    return plugins.get_adapter("pix2pix").to_canonical(model, model.state_dict())


def test_the_prior_offers_its_grid_of_blends_then_every_training_concept(tiny_generator_dir):
    gen = load_generator(tiny_generator_dir)
    prior = gen.generator.prior
    named = gen.generator.candidate_blocks(TEXT)
    blends = len(CANDIDATE_TEMPERATURES) * len(CANDIDATE_SCALES)
    assert len(named) == blends + len(prior.concept_ids)
    assert [n for n, _ in named[blends:]] == [f"concept {c}" for c in prior.concept_ids]
    assert all(b.shape == (gen.generator.layout.num_blocks, gen.generator.layout.block_size) for _, b in named)
    delta = prior.candidates(gen.generator.text_encoder.encode(TEXT).pooled)[blends][1]
    assert torch.equal(delta.flatten(), prior.coef[0] @ prior.basis.float())


@pytest.mark.parametrize("mode", ["merge", "lora"])
def test_pairs_made_by_a_training_concept_choose_exactly_that_concept(tiny_generator_dir, mode):
    gen = load_generator(tiny_generator_dir)
    name = f"concept {gen.generator.prior.concept_ids[1]}"
    weights = candidate_weights(gen, name)
    model = fresh()
    report = initialize(model, TEXT, generator=tiny_generator_dir, pairs=pairs_made_by(gen, weights), mode=mode)
    assert report.chosen == name and report.choice["pairs_l1"] < 1e-5 < report.choice["generated_l1"]
    assert report.choice["candidates"] == 1 + len(gen.generator.candidate_blocks(TEXT)) and report.choice["pairs"] == 4
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
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), chosen.state_dict().values()))


@pytest.mark.parametrize(
    "pairs, message",
    [
        (torch.zeros(2, 3, 64, 64), "pairs must be (inputs, targets)"),
        ((torch.zeros(2, 3, 64, 64), torch.zeros(3, 3, 64, 64)), "same N, H, W"),
        ((torch.zeros(0, 3, 64, 64), torch.zeros(0, 3, 64, 64)), "hold no pair"),
        ((torch.full((2, 3, 64, 64), float("nan")), torch.zeros(2, 3, 64, 64)), "NaN or Inf"),
        ((torch.zeros(2, 3, 64, 64), torch.zeros(2, 1, 64, 64)), "but the targets are"),
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
