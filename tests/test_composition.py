"""Composite texts: parsing, the policy, and the start built from the parts' blends."""

import pytest
import torch

from experiments.composed_prior import choose_margin, group_of, masked_prior
from weightinit.errors import WeightinitError
from weightinit.generator.composition import CompositionPolicy, split_parts
from weightinit.generator.model import WeightGenerator


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("sepia toning with chromatic aberration", ["sepia toning", "chromatic aberration"]),
        ("a teal and orange grade with a vignette", ["a teal and orange grade", "a vignette"]),  # "with" before "and"
        ("add film grain and a vignette", ["add film grain", "add a vignette"]),
        ("remove  warm tones and local contrast", ["remove warm tones", "remove local contrast"]),
        ("a vignette plus vivid colours", ["a vignette", "vivid colours"]),
        ("photo to sepia", ["photo to sepia"]),
        ("with grain", ["with grain"]),  # nothing before the joiner: not a composite
    ],
)
def test_split_parts(text, parts):
    assert split_parts(text) == parts


def test_policy_accepts_and_round_trips():
    policy = CompositionPolicy(margin=0.05)
    assert policy.accepts(0.8, [0.76, 0.9]) and not policy.accepts(0.8, [0.74, 0.9]) and not policy.accepts(0.8, [0.9])
    assert CompositionPolicy.from_dict(policy.to_dict()) == policy and CompositionPolicy.from_dict(None) is None
    with pytest.raises(WeightinitError, match="composition rule"):
        CompositionPolicy(rule="sum")
    with pytest.raises(WeightinitError, match="invalid composition policy"):
        CompositionPolicy.from_dict({"rule": "mean_of_parts"})


def test_composite_start_is_the_mean_of_the_parts_blends(tiny_generator_dir, tmp_path):
    gen = WeightGenerator.from_pretrained(tiny_generator_dir)
    text, parts = "sepia tone with a vignette", ["sepia tone", "a vignette"]
    whole = gen.prior_blocks(text)
    gen.composition = CompositionPolicy(margin=float("inf"))
    assert gen.composed_parts(text) == parts
    expected = gen.prior.concept_weights(gen.encode_text(parts).pooled).mean(0)
    assert torch.allclose(gen.prior_weights(text), expected)
    basis = gen.prior.basis.to(torch.float32)
    blend = (expected[None] @ gen.prior.coef @ basis).view(gen.prior.num_blocks, gen.prior.block_size)
    assert torch.allclose(gen.prior_blocks(text), gen.normalizer.denormalize(gen.center + blend, torch.float32))
    assert not torch.allclose(gen.prior_blocks(text), whole)
    assert gen.provenance(text).parts == parts
    # a single-edit text is unaffected, and the policy survives save/load
    gen.save_pretrained(tmp_path / "gen")
    again = WeightGenerator.from_pretrained(tmp_path / "gen")
    assert again.composition == gen.composition
    assert torch.equal(
        again.prior_blocks("photo to sepia"),
        WeightGenerator.from_pretrained(tiny_generator_dir).prior_blocks("photo to sepia"),
    )


def test_never_composing_policy_keeps_the_whole_text(tiny_generator_dir):
    gen = WeightGenerator.from_pretrained(tiny_generator_dir)
    text = "sepia tone with a vignette"
    whole = gen.prior_blocks(text)
    gen.composition = CompositionPolicy(margin=-10.0)
    assert gen.composed_parts(text) is None and torch.equal(gen.prior_blocks(text), whole)


def test_group_and_masked_prior(tiny_generator_dir):
    assert group_of("warm+vignette-light-reverse") == group_of("warm+vignette-heavy") == "warm+vignette"
    assert group_of("sepia-medium") == "sepia"
    gen = WeightGenerator.from_pretrained(tiny_generator_dir)
    ids = list(gen.prior.concept_ids)
    masked = masked_prior(gen.prior, ids, group_of(ids[0]))
    left = {ids[i] for i in masked.owner.tolist()}
    assert ids[0] not in left and left == {c for c in ids if group_of(c) != group_of(ids[0])}


def test_margin_is_chosen_on_training_rows_only():
    rows = {
        "a": {"split": "train", "whole_similarity": 0.8, "part_similarity": [0.9, 0.85], "whole": 10.0, "parts": 12.0},
        "b": {"split": "train", "whole_similarity": 0.9, "part_similarity": [0.5, 0.95], "whole": 15.0, "parts": 11.0},
        # a held-out row that would pull the margin up if it were used
        "c": {"split": "heldout", "whole_similarity": 0.9, "part_similarity": [0.1, 0.9], "whole": 5.0, "parts": 30.0},
    }
    margin, mean = choose_margin(rows)
    policy = CompositionPolicy(margin=margin)
    assert policy.accepts(0.8, [0.9, 0.85]) and not policy.accepts(0.9, [0.5, 0.95])
    assert mean == pytest.approx(13.5)


def test_report_section_tabulates_the_measurement():
    from experiments.composed_prior import composition_section

    rows = {
        "a": {
            "split": "train",
            "family": "composition",
            "whole_similarity": 0.8,
            "part_similarity": [0.9, 0.85],
            "whole": 10.0,
            "parts": 12.0,
            "sum_x0.5": 12.0,
            "sum_x1.0": 9.0,
        },
        "b": {
            "split": "heldout",
            "family": "composition",
            "whole_similarity": 0.9,
            "part_similarity": [0.96, 0.97],
            "whole": 14.0,
            "parts": 15.5,
            "sum_x0.5": 15.5,
            "sum_x1.0": 13.0,
        },
    }
    from experiments.composed_prior import choose_margin, summarise

    margin, _ = choose_margin(rows)
    data = {
        "command": "python -m experiments.composed_prior --zoo z --generator g",
        **summarise(rows, margin),
    }
    text = "\n".join(composition_section("m.json", data))
    assert "| train compositions | 1 | 1 | 10.00 | 12.00 | 1 of 1 | 12.00 | 9.00 |" in text
    assert "| heldout compositions | 1 | 1 | 14.00 | 15.50 | 1 of 1 | 15.50 | 13.00 |" in text
    assert "median, parts summed x0.5 | median, parts summed x1.0" in text and f"minus {margin:.4f}" in text
