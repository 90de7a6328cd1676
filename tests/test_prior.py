"""The retrieval prior: a text-similarity blend of the training concepts that the denoiser refines."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from weightinit.errors import CheckpointError, WeightinitError
from weightinit.generator.prior import PRIOR_NAME, RetrievalPrior, choose_temperature


def twins(seed: int = 0, related: bool = True):
    """Four concepts in two pairs of twins: near-identical keys, and (if related) near-identical deltas."""
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(2, 16, generator=g), dim=-1)
    keys = F.normalize(centres.repeat_interleave(2, 0) + 0.05 * torch.randn(4, 16, generator=g), dim=-1)
    directions = torch.randn(2, 6, 8, generator=g)
    deltas = directions.repeat_interleave(2, 0) + 0.05 * torch.randn(4, 6, 8, generator=g)
    if not related:
        deltas = torch.randn(4, 6, 8, generator=g)
    return deltas - deltas.mean(0), keys, torch.arange(4)


def test_fit_reconstructs_each_concept_and_weights_are_a_blend():
    deltas, keys, owner = twins()
    prior = RetrievalPrior.fit(deltas, keys, owner, rank=8, temperature=1e-3)
    assert prior.rank == 3  # four centred concepts span three directions
    basis = prior.basis.float()
    assert torch.allclose(basis @ basis.T, torch.eye(3), atol=1e-2)
    for i in range(4):  # a training text at a sharp temperature returns that concept
        assert torch.allclose(prior.blocks(keys[i : i + 1]), deltas[i], atol=2e-2)
    w = prior.concept_weights(torch.randn(5, 16))
    assert w.shape == (5, 4) and torch.allclose(w.sum(1), torch.ones(5)) and (w >= 0).all()
    loo = prior.concept_weights(keys, exclude=owner)
    assert torch.all(loo.diagonal() == 0)
    index = torch.tensor([5, 0, 3])
    assert torch.allclose(
        prior.blocks_at(prior.coefficients(keys[:3]), index),
        torch.stack([prior.blocks(keys[i : i + 1])[j] for i, j in zip(range(3), index)]),
    )


def test_truncated_rank_keeps_the_largest_components():
    deltas, keys, owner = twins()
    full = RetrievalPrior.fit(deltas, keys, owner, rank=3, temperature=1e-3)
    one = RetrievalPrior.fit(deltas, keys, owner, rank=1, temperature=1e-3)
    err = lambda p: sum(float((p.blocks(keys[i : i + 1]) - deltas[i]).norm()) for i in range(4))  # noqa: E731
    assert one.rank == 1 and err(full) < err(one) < sum(float(d.norm()) for d in deltas)


def test_rank_none_keeps_every_component_and_bad_ranks_are_refused():
    deltas, keys, owner = twins()
    every = RetrievalPrior.fit(deltas, keys, owner, rank=None, temperature=1e-3)
    assert every.rank == 3 and torch.equal(
        every.basis, RetrievalPrior.fit(deltas, keys, owner, rank=3, temperature=1e-3).basis
    )
    with pytest.raises(WeightinitError, match="prior rank must be positive or None"):
        RetrievalPrior.fit(deltas, keys, owner, rank=0)
    from weightinit.generator.training import GeneratorTrainingConfig

    assert GeneratorTrainingConfig().prior_rank is None
    with pytest.raises(WeightinitError, match="prior_rank must be a positive integer or None"):
        GeneratorTrainingConfig(prior_rank=0)


def test_temperature_is_chosen_by_leave_one_concept_out_error():
    deltas, keys, owner = twins(related=True)
    sharp = RetrievalPrior.fit(deltas, keys, owner).temperature
    deltas, keys, owner = twins(related=False)
    broad = RetrievalPrior.fit(deltas, keys, owner).temperature
    # twins predict each other, so a sharp blend wins; unrelated concepts are best predicted by the mean
    assert sharp <= 0.1 and broad >= 0.2
    assert choose_temperature(keys, owner, torch.randn(4, 3), grid=(0.5,)) == 0.5


def test_save_load_round_trip_and_errors(tmp_path):
    deltas, keys, owner = twins()
    prior = RetrievalPrior.fit(deltas, keys, owner, temperature=0.07, concept_ids=("a", "b", "c", "d"))
    prior.save(tmp_path / PRIOR_NAME, "f" * 16)
    back = RetrievalPrior.load(tmp_path / PRIOR_NAME, "f" * 16)
    assert back.temperature == 0.07 and back.concept_ids == ("a", "b", "c", "d") and back.block_size == 8
    assert (
        torch.equal(back.basis, prior.basis)
        and torch.equal(back.coef, prior.coef)
        and torch.equal(back.owner, prior.owner)
    )
    assert torch.equal(back.keys, prior.keys) and torch.equal(back.blocks(keys[:1]), prior.blocks(keys[:1]))
    with pytest.raises(CheckpointError, match="made for layout"):
        RetrievalPrior.load(tmp_path / PRIOR_NAME, "0" * 16)
    with pytest.raises(WeightinitError, match="at least two training concepts"):
        RetrievalPrior.fit(torch.zeros(2, 3, 8), keys[:2], owner[:2])
    with pytest.raises(WeightinitError, match="temperature must be positive"):
        RetrievalPrior.fit(deltas, keys, owner, temperature=0.0)
    with pytest.raises(WeightinitError, match="one pooled text embedding"):
        prior.blocks(keys[:2])


def test_generator_saves_and_loads_its_prior_and_the_mean_setting_has_none(tiny_generator_dir, tiny_zoo_dir, tmp_path):
    from conftest import TINY_MLP

    from weightinit.generator import WeightGenerator
    from weightinit.generator.training import GeneratorTrainingConfig, train_generator
    from weightinit.zoo.weights import ZooWeights

    gen = WeightGenerator.from_pretrained(tiny_generator_dir)
    zoo = ZooWeights(tiny_zoo_dir)
    assert (tiny_generator_dir / PRIOR_NAME).is_file() and gen.prior is not None
    assert gen.prior.concept_ids == tuple(zoo.ids("train")) and gen.training["prior"] == "retrieval"
    text = zoo.record(zoo.ids("heldout")[0]).text
    center = gen.center_for(gen.text_encoder.encode(text))
    assert not torch.equal(center, gen.center)  # the text moves the centre
    assert gen.prior_blocks(text).shape == (gen.layout.num_blocks, gen.layout.block_size)

    config = GeneratorTrainingConfig(denoiser_kwargs=TINY_MLP, steps=2, batch_size=4, warmup_steps=1, prior="mean")
    mean_gen = train_generator(tiny_zoo_dir, tmp_path / "mean", config, progress=False)
    assert mean_gen.prior is None and not (tmp_path / "mean" / PRIOR_NAME).exists()
    assert WeightGenerator.from_pretrained(tmp_path / "mean").prior is None
    with pytest.raises(WeightinitError, match="prior must be one of"):
        GeneratorTrainingConfig(prior="nearest")
