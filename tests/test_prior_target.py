"""What the denoiser is trained to correct: the prior's blend with or without the concept itself."""

import pytest
import torch

from weightinit.errors import WeightinitError
from weightinit.generator.text import shared_text_encoder
from weightinit.generator.training import GeneratorTrainingConfig, load_training_data
from weightinit.zoo.weights import ZooWeights


def test_leave_one_out_target_blends_only_the_other_concepts(tiny_zoo_dir):
    zoo, encoder = ZooWeights(tiny_zoo_dir), shared_text_encoder()
    own = load_training_data(zoo, encoder, GeneratorTrainingConfig(prior_temperature=0.05))
    loo = load_training_data(
        zoo, encoder, GeneratorTrainingConfig(prior_temperature=0.05, prior_target="leave_one_out")
    )
    owner = torch.repeat_interleave(torch.arange(len(own.concept_ids)), own.phrasing_count)
    weights = loo.prior.concept_weights(loo.text.pooled, owner)
    # no phrasing's target blend takes anything of its own concept, and the rest sums to one
    assert float(weights[torch.arange(len(owner)), owner].abs().max()) == 0.0
    assert torch.allclose(weights.sum(1), torch.ones(len(owner)))
    assert torch.allclose(loo.prior_coef, weights @ loo.prior.coef)
    assert torch.allclose(own.prior_coef, own.prior.coefficients(own.text.pooled))
    assert not torch.allclose(own.prior_coef, loo.prior_coef)
    # the prior itself (what generation blends) is the same either way
    assert torch.equal(own.prior.coef, loo.prior.coef) and torch.equal(own.prior.keys, loo.prior.keys)


def test_unknown_prior_target_is_refused():
    with pytest.raises(WeightinitError, match="prior_target must be one of"):
        GeneratorTrainingConfig(prior_target="others")
