"""Direction of an edit: parsing phrasings, reverse concepts in the catalog, directional text."""

import pytest
import torch

from weightinit.concepts.builtin import build_catalog, catalog_with_reverses, reverse_measurements, reverse_phrasings
from weightinit.concepts.catalog import ConceptCatalog, default_catalog, reverse_twins
from weightinit.concepts.concept import probe_image
from weightinit.concepts.direction import PLAIN_SOURCE, parse_direction, reverse_text


@pytest.mark.parametrize(
    "text, source, target",
    [
        ("photo to sepia", "photo", "sepia"),
        ("Sepia  to photo", "sepia", "photo"),
        ("horse -> zebra", "horse", "zebra"),
        ("turn pencil sketches into photographs", "pencil sketches", "photographs"),
        ("turn a duotone poster back into a photograph", "duotone poster", "photograph"),
        ("add colour to a monochrome picture", "monochrome picture", "colour"),
        ("make a photo from an inked drawing", "inked drawing", "photo"),
        ("remove the strong film grain", "strong film grain", PLAIN_SOURCE),
        ("take away the vignette", "vignette", PLAIN_SOURCE),
        ("add film grain", PLAIN_SOURCE, "film grain"),
        ("make it foggy", PLAIN_SOURCE, "foggy"),
    ],
)
def test_parse_direction(text, source, target):
    d = parse_direction(text)
    assert (d.source, d.target) == (source, target)


@pytest.mark.parametrize(
    "text, reverse",
    [
        ("photo to sepia", "sepia to photo"),
        ("add film grain", "remove film grain"),
        ("remove the fog", "add fog"),
        ("day -> night", "night to day"),
    ],
)
def test_reverse_text_turns_the_edit_round(text, reverse):
    assert reverse_text(text) == reverse


def test_reverse_concepts_swap_the_pair_of_their_forward_concept():
    catalog = default_catalog()
    reverses = [c for c in catalog if c.direction == "reverse"]
    assert reverses, "the built-in catalog has reverse concepts"
    img = probe_image()
    for rev in reverses:
        fwd = catalog.get(rev.reverse_of)
        a, b = fwd.pair(img, seed=3)
        ra, rb = rev.pair(img, seed=3)
        assert (ra == b).all() and (rb == a).all(), rev.id
        assert (rev.split, rev.family, rev.heldout_kind) == (fwd.split, fwd.family, fwd.heldout_kind)
        assert catalog.reverse_of(fwd) is rev and catalog.reverse_of(rev) is fwd
    assert any(c.split == "heldout" for c in reverses), "held-out concepts have held-out reverses"


def test_only_reverses_measured_learnable_are_concepts():
    measured = reverse_measurements()
    base = build_catalog()
    twins = reverse_twins(base)
    assert {c.id for c in base if c.id not in twins} == set(measured), (
        "every concept without a reverse twin is measured"
    )
    added = {c.reverse_of for c in catalog_with_reverses() if c.reverse_of}
    assert added == {cid for cid, row in measured.items() if row["passed"]} - set(twins)
    assert all(measured[cid]["margin_db"] >= 3.0 for cid in added)


def test_exact_reverse_twins_are_found_both_ways():
    twins = reverse_twins(build_catalog())
    assert twins["grayscale"] == "gray-to-color" and twins["gray-to-color"] in ("grayscale", "desaturate-heavy")
    assert twins["pencil-medium"] == "sketch-to-photo"
    catalog = default_catalog()
    assert catalog.reverse_of(catalog.get("grayscale")).id == "gray-to-color"


def test_reverse_concepts_have_unique_phrasings_that_read_the_other_way():
    catalog = ConceptCatalog()
    for c in catalog_with_reverses():
        catalog.register(c)  # would raise on a duplicated phrasing
    for c in catalog:
        if c.direction == "reverse":
            fwd = catalog.get(c.reverse_of)
            assert set(c.phrasings) <= set(reverse_phrasings(fwd)) and c.reverse == fwd.text


def test_directional_embedding_tells_an_edit_from_its_reverse():
    from weightinit.generator.text import shared_text_encoder

    enc = shared_text_encoder()
    pooled = enc.encode(["photo to sepia", "sepia to photo", "make it strongly sepia"]).pooled
    directional = enc.encode(["photo to sepia", "sepia to photo", "make it strongly sepia"], conditioning="directional")
    d = directional.pooled
    assert float(pooled[0] @ pooled[1]) > 0.95
    assert float(d[0] @ d[1]) < 0.2
    assert float(d[0] @ d[2]) > float(d[0] @ d[1]) + 0.4
    # one more token, the direction, after the padded text tokens
    assert directional.tokens.shape[1] == enc.max_length + 1 and directional.mask[:, -1].eq(1).all()
    assert torch.allclose(
        directional.tokens[:, : enc.max_length],
        enc.encode(["photo to sepia", "sepia to photo", "make it strongly sepia"]).tokens,
    )


def test_unknown_conditioning_is_one_clear_error():
    from weightinit.errors import WeightinitError
    from weightinit.generator.text import shared_text_encoder

    with pytest.raises(WeightinitError, match="unknown text conditioning 'sideways'"):
        shared_text_encoder().encode("photo to sepia", conditioning="sideways")
