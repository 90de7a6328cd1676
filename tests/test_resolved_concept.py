"""A concept is resolved once: counted calls, the bundled generator's samples unchanged, and a
concept plugin that cannot change what a saved generator produces."""

import hashlib
import platform
import shutil
import warnings

import pytest
import torch

from weightinit import generators, initialize, plugins
from weightinit.concepts.catalog import default_catalog
from weightinit.concepts.concept import Concept, forward
from weightinit.errors import WeightinitError
from weightinit.generator.composition import CompositionPolicy
from weightinit.generator.config import GeneratorConfig
from weightinit.generator.model import WeightGenerator
from weightinit.generator.phrasings import LIVE, PHRASINGS_NAME, KnownPhrasings
from weightinit.generator.prior import RetrievalPrior
from weightinit.generator.resolved import ResolvedConcept
from weightinit.generator.text import TextEncoder
from weightinit.hookspecs import hookimpl
from weightinit.initialization import load_generator

ARCH = "pix2pix:unet_64,ngf=4"


def fresh(arch=ARCH, seed=0):
    torch.manual_seed(seed)
    return plugins.build_model(arch)


class Calls:
    """Counts top-level ``TextEncoder.encode`` calls (the directional conditioning calls itself for
    a text's source and target: those are the same call), ``RetrievalPrior.similarity`` calls, and
    the cosine products they make."""

    def __init__(self, monkeypatch):
        self.encode = self.similarity = self.products = 0
        depth = [0]
        encode, similarity, cosines = TextEncoder.encode, RetrievalPrior.similarity, RetrievalPrior._cosines

        def counted_encode(encoder, *args, **kwargs):
            self.encode += depth[0] == 0
            depth[0] += 1
            try:
                return encode(encoder, *args, **kwargs)
            finally:
                depth[0] -= 1

        def counted_similarity(prior, *queries):
            self.similarity += 1
            return similarity(prior, *queries)

        def counted_cosines(prior, query):
            self.products += 1
            return cosines(prior, query)

        monkeypatch.setattr(TextEncoder, "encode", counted_encode)
        monkeypatch.setattr(RetrievalPrior, "similarity", counted_similarity)
        monkeypatch.setattr(RetrievalPrior, "_cosines", counted_cosines)


@pytest.fixture
def policies(tiny_generator_dir, monkeypatch):
    """The tiny generator as ``initialize`` caches it, with a composition policy that splits
    every composite text and a far policy under which every text is far (restored after)."""
    gen = load_generator(tiny_generator_dir)
    monkeypatch.setattr(gen, "config", gen.config)  # the setters below replace it; this puts it back
    gen.composition = CompositionPolicy(margin=float("inf"))
    gen.far_policy = {"similarity": 1.5, "fallback": "prior", "temperature": 0.3}
    return gen


def test_initialize_encodes_and_compares_the_concept_once(policies, tiny_generator_dir, monkeypatch):
    text = "sketch to photo with film grain"  # composite: its parts are encoded and compared in the same calls
    assert policies.resolve(text).parts == ("sketch to photo", "film grain")
    inputs = torch.rand(2, 3, 64, 64) * 2 - 1
    calls = Calls(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = initialize(fresh(), text, generator=tiny_generator_dir, pairs=(inputs, inputs.flip(-1)))
    assert report.choice is not None and report.fell_back  # candidates were scored; the far start was written
    assert (calls.encode, calls.similarity, calls.products) == (1, 1, 2)  # 2 products: the text, its parts


def test_each_cyclegan_direction_is_resolved_once(policies, tiny_generator_dir, monkeypatch):
    from weightinit.adapters.cyclegan import CycleGANPair

    calls = Calls(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = initialize(CycleGANPair(fresh(seed=1), fresh(seed=2)), "photo to sepia", generator=tiny_generator_dir)
    assert set(report.based_on) == {"netG_A", "netG_B"}
    assert (calls.encode, calls.similarity, calls.products) == (2, 2, 2)


def test_the_methods_take_a_resolved_concept_or_its_text(tiny_generator_dir):
    gen = WeightGenerator.from_pretrained(tiny_generator_dir)
    resolved = gen.resolve("sketch to photo")
    assert isinstance(resolved, ResolvedConcept) and gen.resolve(resolved) is resolved
    with pytest.raises(AttributeError):  # frozen
        resolved.far = True
    assert torch.equal(gen.sample_blocks(resolved, seed=2), gen.sample_blocks("sketch to photo", seed=2))
    assert torch.equal(gen.prior_blocks(resolved), gen.prior_blocks("sketch to photo"))
    assert gen.provenance(resolved) == gen.provenance("sketch to photo") == resolved.provenance
    assert [n for n, _ in gen.candidate_blocks(resolved)] == [n for n, _ in gen.candidate_blocks("sketch to photo")]
    assert torch.equal(resolved.weights, gen.prior.concept_weights(resolved.embedding.pooled)[0])
    # the one blend: the centre is the prior's blend of the resolved weights
    assert torch.equal(gen.centre(resolved), gen.center + gen.prior.blend(resolved.weights[None]))


def test_a_generator_is_built_from_a_config_or_from_its_fields(tiny_generator_dir):
    gen = WeightGenerator.from_pretrained(tiny_generator_dir)
    parts = (gen.denoiser, gen.scheduler_config, gen.layout, gen.normalizer)
    c = gen.config
    again = WeightGenerator(
        *parts,
        text_encoder=c.text_encoder.reference,
        text_max_length=c.text_encoder.max_length,
        text_conditioning=c.text_encoder.conditioning,
        arch=c.arch,
        zoo=c.zoo,
        zoo_summary=c.zoo_summary,
        training=c.training,
        far_policy=c.far_policy,
        composition=c.composition,
    )
    assert again.config_dict() == gen.config_dict() and again.adapter == gen.adapter  # what the folder gets
    with pytest.raises(WeightinitError, match="not both"):
        WeightGenerator(*parts, c, arch=c.arch)


def test_the_config_reads_and_writes_the_bundled_folders_unchanged():
    import json

    for folder in [
        generators.bundled_generator_path(),
        *generators.bundled_generator_path().parent.glob("generators/*"),
    ]:
        data = json.loads((folder / "generator_config.json").read_text())
        assert GeneratorConfig.from_dict(data).to_dict() == data, folder


# --- the bundled generator's samples, before and after the concept was resolved once ------------
#: sha256 (first 16 hex digits) of ``generate(text, seed=0, fallback=True)`` (every tensor in
#: float32, hashed in canonical order) and of ``sample_blocks(text, seed=3)``, made with the code of
#: commit 994b92f (before ``ResolvedConcept``) on the bundled generator, torch 2.x on x86-64 CPU.
#: The far text starts from the prior's broader blend; the composite ones from their parts.
BUNDLED = {
    "sketch to photo": ("d75f6e91abb42f60", "b1d9e59424da07ab", False),
    "sepia toning with chromatic aberration": ("39d06909c3eafa74", "34d5ab7d347d08c8", False),
    "a purple elephant dancing on the moon": ("2e32754dc0b1ea1a", "41133d656959e84a", True),
    "remove rain and fog": ("518dca0e68ecc115", "7010f3c55a89f8e6", False),
}
#: The same of every candidate's name and de-normalised blocks (``candidate_blocks``), in order.
BUNDLED_CANDIDATES = ("photo to sepia", "18b17b9747e27f46")


#: Bitwise hashes hold where they were made: this torch on this kind of CPU (others round differently).
_HASHED_ON = ("2.13.0", "x86_64")
same_platform = pytest.mark.skipif(
    (torch.__version__.split("+")[0], platform.machine()) != _HASHED_ON,
    reason=f"the hashes were made with torch {_HASHED_ON[0]} on {_HASHED_ON[1]}",
)


def _h(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()[:16]


@pytest.fixture(scope="module")
def bundled():
    return WeightGenerator.from_pretrained(generators.bundled_generator_path())


#: The same with the policies the bundled generator ships now (``experiments.text_policy`` and
#: ``text_policy_ttq``: every start a blend of weight changes; a far text is warned about and keeps
#: its blend): the denoiser's samples stay, every start differs.
BUNDLED_NOW = {
    "sketch to photo": ("338522eb5389de02", "b1d9e59424da07ab", False),
    "sepia toning with chromatic aberration": ("6c23cdf5d3a17dde", "34d5ab7d347d08c8", False),
    "a purple elephant dancing on the moon": ("2f49ba20df3e70f5", "41133d656959e84a", True),
    "remove rain and fog": ("1ef67963924f9e1b", "7010f3c55a89f8e6", False),
}
#: The bundled generator's policies before ``experiments.text_policy`` (with them, the code above
#: must reproduce ``BUNDLED`` bit for bit).
POLICIES_BEFORE = {
    "weight_blend": None,
    "siblings": None,
    "far_policy": {"similarity": 0.7439, "fallback": "prior", "temperature": 0.1},
}


def _hashes(gen, text):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = gen.generate(text, seed=0, fallback=True, dtype=torch.float32)
    weights = hashlib.sha256(b"".join(_h(v).encode() for v in out.values())).hexdigest()[:16]
    return weights, _h(gen.sample_blocks(text, seed=3)), gen.resolve(text).far


@same_platform
@pytest.mark.parametrize("text", sorted(BUNDLED))
def test_the_bundled_generator_samples_as_before(bundled, text):
    assert _hashes(bundled, text) == BUNDLED_NOW[text]
    shipped = {name: getattr(bundled, name) for name in POLICIES_BEFORE}
    try:
        for name, value in POLICIES_BEFORE.items():
            setattr(bundled, name, value)
        assert _hashes(bundled, text) == BUNDLED[text]
    finally:
        for name, value in shipped.items():
            setattr(bundled, name, value)


@same_platform
def test_the_bundled_generator_offers_the_same_candidates(bundled):
    text, expected = BUNDLED_CANDIDATES
    got = hashlib.sha256("".join(n + _h(b) for n, b in bundled.candidate_blocks(text)).encode()).hexdigest()[:16]
    assert got == expected


# --- known phrasings frozen in the folder ---------------------------------------------------------
@pytest.fixture
def plugin_concept():
    """Registers, through a plugin, a concept whose phrasing is a text the bundled generator calls far."""
    text = "a purple elephant dancing on the moon"

    class Plugin:
        @hookimpl
        def register_concepts(self, register):
            concept = Concept("purple-elephant", (text,), "test", "train", "the moon", forward(lambda img: 1 - img))
            register(concept)

    plugins.register_plugin(Plugin(), name="test-purple-elephant")
    try:
        yield text
    finally:
        plugins.unregister_plugin("test-purple-elephant")
        default_catalog(reload=True)


def test_a_concept_plugin_does_not_change_a_saved_generator(bundled, plugin_concept):
    before = bundled.generate(plugin_concept, seed=0, fallback=True)  # already loaded
    assert default_catalog().find_by_text(plugin_concept) is not None  # the plugin's concept is in the catalog
    again = WeightGenerator.from_pretrained(generators.bundled_generator_path())
    assert again.phrasings.frozen and again.phrasings.find(plugin_concept) is None
    resolved = again.resolve(plugin_concept)
    assert resolved.far and resolved.known is None
    after = again.generate(resolved, seed=0, fallback=True)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert _h(torch.cat([v.flatten().float() for v in after.values()])) == _h(
        torch.cat([v.flatten().float() for v in before.values()])
    )
    assert again.reverse_text("photo to sepia") == bundled.reverse_text("photo to sepia")


def test_a_folder_without_the_table_reads_the_live_catalog_and_saving_freezes_it(tiny_generator_dir, tmp_path):
    assert (tiny_generator_dir / PHRASINGS_NAME).is_file()  # written when training saved it
    old = tmp_path / "old"
    shutil.copytree(tiny_generator_dir, old)
    (old / PHRASINGS_NAME).unlink()  # as a folder written before the table
    gen = WeightGenerator.from_pretrained(old)
    assert gen.phrasings.source == LIVE and not gen.phrasings.frozen
    assert gen.phrasings.find("sketch to photo").id == default_catalog().find_by_text("sketch to photo").id
    gen.save_pretrained(old)
    table = KnownPhrasings.load(old / PHRASINGS_NAME)
    assert table.frozen and table.to_dict()["concepts"] == KnownPhrasings.from_catalog().to_dict()["concepts"]
    assert WeightGenerator.from_pretrained(old).phrasings.frozen
