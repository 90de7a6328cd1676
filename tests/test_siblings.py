"""Strength siblings (weightinit.generator.siblings) and who vouches against the far policy."""

import json
import shutil
import warnings

import pytest
import torch

from weightinit import generators
from weightinit.concepts.catalog import default_catalog
from weightinit.errors import CheckpointError
from weightinit.generator.config import CONFIG_NAME
from weightinit.generator.folder import CARD_NAME, write_policies
from weightinit.generator.model import WeightGenerator
from weightinit.generator.siblings import SiblingPolicy, sibling_keys, sibling_weights

IDS = ("warm-light", "warm-medium", "warm-heavy", "warm-heavy-reverse", "sepia-light", "auto-levels")


def test_siblings_are_one_edit_in_one_direction():
    keys = sibling_keys(IDS)
    assert keys[0] == keys[1] == keys[2] == ("warm", False)
    assert keys[3] == ("warm", True) and keys[4] == ("sepia", False) and keys[5] == ("auto-levels", False)


def test_a_blend_is_re_blended_among_its_heaviest_concepts_siblings():
    weights = torch.tensor([[0.9, 0.0, 0.0, 0.05, 0.05, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]])
    sims = torch.tensor([[0.9, 0.8, 0.7, 0.9, 0.5, 0.1], [0.1, 0.1, 0.1, 0.1, 0.1, 0.9]])
    out = sibling_weights(weights, sims, IDS, temperature=0.1)
    expected = torch.softmax(torch.tensor([0.9, 0.8, 0.7]) / 0.1, 0)
    assert torch.allclose(out[0, :3], expected) and out[0, 3:].sum() == 0  # the reverse and sepia are dropped
    assert torch.equal(out[1], weights[1])  # auto-levels has no sibling: its blend stays
    uniform = sibling_weights(weights, sims, IDS, temperature=100.0)
    assert torch.allclose(uniform[0, :3], torch.full((3,), 1 / 3), atol=1e-3)
    assert torch.allclose(out.sum(1), torch.ones(2))


def test_excluded_concepts_are_no_siblings():
    weights = torch.tensor([[0.9, 0.1, 0.0, 0.0, 0.0, 0.0]])
    sims = torch.tensor([[0.9, 0.8, 0.7, 0.0, 0.0, 0.0]])
    exclude = torch.tensor([[False, False, True, False, False, False]])
    out = sibling_weights(weights, sims, IDS, 0.1, exclude)
    assert out[0, 2] == 0 and torch.allclose(out[0, :2], torch.softmax(torch.tensor([9.0, 8.0]), 0))
    only_one = torch.tensor([[False, True, True, False, False, False]])
    assert torch.equal(sibling_weights(weights, sims, IDS, 0.1, only_one), weights)  # one left: no re-blend


@pytest.mark.parametrize("bad", [{"temperature": "warm"}, {"temperature": 0}, {"temperature": True}, [0.1]])
def test_a_bad_sibling_policy_is_one_clear_error(bad):
    with pytest.raises(CheckpointError, match="siblings"):
        SiblingPolicy.from_dict(bad)


def test_a_generator_keeps_its_sibling_policy_and_uses_it(tmp_path):
    gen = WeightGenerator.from_pretrained(generators.bundled_generator_path())
    assert gen.siblings is None or gen.siblings.temperature != 100.0
    names = gen.prior.concept_names
    members = [names.index(c) for c in ("warm-light", "warm-medium", "warm-heavy")]
    text = "make the photo somewhat warmer"
    gen.siblings = {"temperature": 100.0, "measured_on": "a test"}
    after = gen.resolve(text).weights
    assert int(after.argmax()) in members
    assert torch.allclose(after[members], torch.full((3,), 1 / 3), atol=1e-3)
    gen.save_pretrained(tmp_path / "g")
    stored = json.loads((tmp_path / "g" / CONFIG_NAME).read_text())["siblings"]
    assert stored == {"temperature": 100.0, "measured_on": "a test"}
    again = WeightGenerator.from_pretrained(tmp_path / "g")
    assert torch.equal(again.resolve(text).weights, after)
    gen.siblings = None
    assert not torch.allclose(gen.resolve(text).weights, after)


def test_a_catalog_concept_the_generator_never_saw_is_not_vouched_for():
    gen = WeightGenerator.from_pretrained(generators.bundled_generator_path())
    catalog = default_catalog()
    unseen = [c for c in catalog if c.id not in gen.prior.concept_ids and gen.phrasings.find(c.text) is not None]
    assert unseen  # the held-out concepts are in the frozen table
    resolved = {c.id: gen.resolve(c.text) for c in unseen}
    below = [cid for cid, r in resolved.items() if r.similarity < gen.far_policy.similarity]
    assert below and all(resolved[cid].far and resolved[cid].known == cid for cid in below)
    trained = catalog.get(gen.prior.concept_ids[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not gen.resolve(trained.text).far


def test_writing_the_policies_changes_only_the_config_and_the_card(tiny_generator_dir, tmp_path):
    folder = tmp_path / "g"
    shutil.copytree(tiny_generator_dir, folder)
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    gen = WeightGenerator.from_pretrained(folder)
    gen.siblings = {"temperature": 0.03}
    gen.far_policy = {"similarity": 0.5, "fallback": "mean"}
    write_policies(gen, folder)
    after = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    changed = {str(p) for p in before if before[p] != after[p]}
    assert changed == {CONFIG_NAME, CARD_NAME} and set(after) == set(before)
    again = WeightGenerator.from_pretrained(folder)
    assert again.siblings.temperature == 0.03 and again.far_policy.fallback == "mean"
    assert "strength siblings" in (folder / CARD_NAME).read_text()
    with pytest.raises(CheckpointError, match="not a generator folder"):
        write_policies(gen, tmp_path / "elsewhere")
