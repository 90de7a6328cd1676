"""The bundled generator on CycleGAN's two directions and on far concepts (real weights, 64 px)."""

import warnings

import pytest
import torch

from weightinit import plugins
from weightinit.adapters.cyclegan import CycleGANPair
from weightinit.concepts.catalog import default_catalog
from weightinit.errors import FarConceptWarning
from weightinit.generators import bundled_generator_path
from weightinit.images import PhotoSet
from weightinit.initialization import initialize, load_generator
from weightinit.pairs import ProceduralPairs
from weightinit.recipe import batch_statistics


@pytest.fixture(scope="module")
def bundled():
    return load_generator(str(bundled_generator_path()))


def pair_model(bundled, seed=0):
    torch.manual_seed(seed)
    return CycleGANPair(plugins.build_model(bundled.arch), plugins.build_model(bundled.arch))


def l1(model, inputs, targets) -> float:
    with torch.no_grad(), batch_statistics(model):
        return float((model(inputs) - targets).abs().mean())


@pytest.mark.parametrize(
    "concept, pairs_of",
    [("photo to sepia", "sepia-heavy"), ("make the photo strongly warmer", "warm-heavy")],
)
def test_each_cyclegan_direction_maps_its_own_way(bundled, concept, pairs_of):
    """netG_A does the concept better than netG_B does, and netG_B undoes it better than netG_A."""
    catalog = default_catalog()
    fwd = catalog.get(pairs_of)
    photo, edited = ProceduralPairs(fwd, PhotoSet.bundled(), size=64).sample(16, split="test", seed=0)
    pair = pair_model(bundled)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FarConceptWarning)
        report = initialize(pair, concept, generator=bundled)
    a, b = pair.netG_A, pair.netG_B
    assert l1(a, photo, edited) < l1(b, photo, edited), report
    assert l1(b, edited, photo) < l1(a, edited, photo), report
    drawn_b = [c["concept"] for c in report.based_on["netG_B"]["concepts"]]
    assert pairs_of not in drawn_b[:1], report  # the reverse is not started from the forward weights


def test_photo_to_sepia_names_the_sepia_concepts_it_draws_on(bundled):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FarConceptWarning)
        report = initialize(plugins.build_model(bundled.arch), "photo to sepia", generator=bundled)
    drawn = [c["concept"] for c in report.based_on["netG"]["concepts"]]
    assert drawn and "sepia" in drawn[0] and not drawn[0].endswith("-reverse"), drawn


@pytest.mark.parametrize("concept", ["labels to facade", "素描转照片", "zxqv wibble"])
def test_concepts_far_from_the_zoo_warn_with_the_shipped_policy(bundled, concept):
    with pytest.warns(FarConceptWarning, match="far from every concept"):
        report = initialize(plugins.build_model(bundled.arch), concept, generator=bundled)
    prov = report.based_on["netG"]
    assert prov["far"]
    # the shipped fallback: its own blend (the measured fallbacks trained slower), or the one it names
    assert report.fell_back == (bundled.far_policy.fallback != "blend")
    assert (prov["fallback"] is None) == (bundled.far_policy.fallback == "blend")


@pytest.mark.parametrize("concept", ["photo to sepia", "sketch to photo"])
def test_known_concepts_do_not_warn(bundled, concept):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FarConceptWarning)
        report = initialize(plugins.build_model(bundled.arch), concept, generator=bundled)
    assert not report.fell_back
