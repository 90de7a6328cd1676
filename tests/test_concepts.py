"""The concept catalog: counts, validation, determinism, every built-in builder, the CLI."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from weightinit.concepts import Concept, ConceptCatalog, forward, inverse
from weightinit.concepts import edits as E
from weightinit.concepts.builtin import build_catalog
from weightinit.concepts.builtin import register_concepts as builtin_register
from weightinit.errors import WeightinitError


@pytest.fixture(scope="module")
def catalog() -> ConceptCatalog:
    cat = ConceptCatalog()
    builtin_register(cat.register)
    return cat


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    from weightinit.images import PhotoSet

    return PhotoSet.bundled().random_crops(3, 64, seed=3, split="train")


def _concept(cid="c", phrasings=("a thing",), split="train", kind=None, build=None, **kw) -> Concept:
    return Concept(
        cid,
        tuple(phrasings),
        kw.pop("family", "tone"),
        split,
        kw.pop("reverse", "undo"),
        build or forward(lambda im: E.gamma(im, 0.5)),
        heldout_kind=kind,
        **kw,
    )


# --- the built-in catalog -----------------------------------------------------------------------
def test_counts_families_and_heldout_kinds(catalog):
    train, held = catalog.by_split("train"), catalog.by_split("heldout")
    assert len(train) >= 160 and len(held) >= 30
    assert len(catalog.families()) >= 8
    kinds = Counter(c.heldout_kind for c in held)
    assert set(kinds) == {"composition", "strength", "phrasing", "novel"}
    assert kinds["novel"] >= 8
    assert all(c.heldout_kind is None for c in train)
    for fam in ("inverse", "restoration", "style", "color_grading", "tone", "effects", "composition"):
        assert any(c.family == fam for c in train), fam


def test_novel_concepts_are_named_in_the_module_docstring(catalog):
    import weightinit.concepts.builtin as builtin

    for c in catalog.by_split("heldout"):
        if c.heldout_kind == "novel" and c.direction == "forward":
            assert f"``{c.id}``" in builtin.__doc__


def test_phrasings_reverse_and_no_heldout_text_in_train(catalog):
    train_text = {" ".join(p.lower().split()) for c in catalog.by_split("train") for p in c.phrasings}
    for c in catalog.all():
        assert len(c.phrasings) >= (3 if c.direction == "forward" else 2) and len(set(c.phrasings)) == len(
            c.phrasings
        ), c.id
        assert c.text == c.phrasings[0]
        assert c.reverse.strip() and c.reverse not in c.phrasings
    for c in catalog.by_split("heldout"):
        assert not ({" ".join(p.lower().split()) for p in c.phrasings} & train_text), c.id


def test_every_builtin_builder_gives_a_real_pair(catalog, crops):
    for c in catalog.all():
        change = 0.0
        for crop in crops:
            a, b = c.pair(crop, seed=0)
            assert a.shape == b.shape == (64, 64, 3), c.id
            assert a.dtype == b.dtype == np.float32
            assert np.isfinite(a).all() and np.isfinite(b).all()
            assert a.min() >= 0 and b.max() <= 1
            change = max(change, float(np.abs(a - b).mean()))
        assert change > 5e-3, f"{c.id} is (nearly) the identity"


def test_builders_are_deterministic_and_seeded():
    c = next(c for c in build_catalog() if c.id == "denoise-medium")
    img = np.random.default_rng(0).random((32, 32, 3), dtype=np.float32)
    assert np.array_equal(c.pair(img, 5)[0], c.pair(img, 5)[0])
    assert not np.array_equal(c.pair(img, 5)[0], c.pair(img, 6)[0])
    # inverse task: the input is the degraded image, the target the photo
    assert np.array_equal(c.pair(img, 5)[1], img)


def test_sketch_keeps_shading(crops):
    crop = crops[0]
    sketch = E.pencil_sketch(crop)
    lum = E.luminance(crop)
    assert np.corrcoef(sketch[..., 0].ravel(), lum.ravel())[0, 1] > 0.5


# --- lookups ---------------------------------------------------------------------------------------
def test_get_find_by_text_and_close_matches(catalog):
    assert catalog.get("sketch-to-photo").family == "inverse"
    assert catalog.find_by_text("  Sketch   TO photo ").id == "sketch-to-photo"
    assert catalog.find_by_text("no such phrase") is None
    assert catalog.resolve("sketch to photo").id == "sketch-to-photo"
    with pytest.raises(WeightinitError, match="sketch-to-photo"):
        catalog.get("sketch-to-phot")


# --- validation ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(phrasings=()), "at least one phrasing"),
        (dict(phrasings=("ok", "  ")), "empty phrasing"),
        (dict(split="val"), "split"),
        (dict(split="heldout"), "heldout_kind"),
        (dict(kind="novel"), "must not have a heldout_kind"),
        (dict(reverse=""), "reverse"),
        (dict(build=lambda im, rng: (im, im * np.random.random())), "not deterministic"),  # global state
        (dict(build=lambda im, rng: (im, im[:4])), "shape"),
        (dict(build=lambda im, rng: (im, im * np.nan)), "non-finite"),
        (dict(build=lambda im, rng: 1 / 0), "pair builder failed"),
    ],
)
def test_register_rejects_bad_concepts(kwargs, match):
    cat = ConceptCatalog()
    with pytest.raises(WeightinitError, match=match):
        cat.register(_concept(**kwargs))
    assert len(cat) == 0


def test_register_rejects_duplicates():
    cat = ConceptCatalog()
    cat.register(_concept("a", ("one phrase",)))
    with pytest.raises(WeightinitError, match="registered twice"):
        cat.register(_concept("a", ("other",)))
    with pytest.raises(WeightinitError, match="already belongs"):
        cat.register(_concept("b", ("One  Phrase",)))
    with pytest.raises(WeightinitError, match="Concept"):
        cat.register("not a concept")


def test_forward_and_inverse_pair_builders():
    img = np.full((8, 8, 3), 0.25, dtype=np.float32)
    rng = np.random.default_rng(0)
    a, b = forward(lambda im: im * 2)(img, rng)
    assert np.array_equal(a, img) and np.allclose(b, 0.5)
    a, b = inverse(lambda im, r: im * 2)(img, rng)
    assert np.allclose(a, 0.5) and np.array_equal(b, img)


def test_plugin_concepts_reach_the_default_catalog():
    from weightinit import plugins
    from weightinit.concepts import default_catalog
    from weightinit.hookspecs import hookimpl

    class MyPlugin:
        @hookimpl
        def register_concepts(self, register):
            register(_concept("test-plugin-concept", ("a plugin concept phrase",)))

    plugins.register_plugin(MyPlugin(), name="test-concepts-plugin")
    try:
        assert default_catalog().get("test-plugin-concept").text == "a plugin concept phrase"
    finally:
        plugins.unregister_plugin("test-concepts-plugin")
    assert "test-plugin-concept" not in default_catalog()


# --- learnability harness -------------------------------------------------------------------------
def test_learnability_measure_with_injected_trainer(catalog):
    import torch

    from weightinit.concepts.learnability import measure, psnr, sample_per_family

    x = torch.zeros(1, 3, 4, 4)
    assert psnr(x, x) > 90
    c = catalog.get("negative")

    def oracle(pairs):  # a "model" that knows the edit: output = -input
        return lambda inputs: -inputs

    r = measure(c, oracle, n_train=8, n_test=8)
    assert r.passed and not r.noop and r.margin_db > 30
    r = measure(c, lambda pairs: lambda inputs: inputs, n_train=8, n_test=8)
    assert not r.passed and abs(r.psnr_model - r.psnr_identity) < 1e-6
    picked = sample_per_family(catalog.all(), 2)
    assert Counter(p.family for p in picked) == {f: 2 for f in catalog.families()}


# --- CLI ---------------------------------------------------------------------------------------------
@pytest.fixture()
def cli(catalog, monkeypatch):
    from typer.testing import CliRunner

    import weightinit.cli.concepts as mod

    monkeypatch.setattr(mod, "_catalog", lambda: catalog)
    return CliRunner(), mod.app


def test_cli_lists_concepts(cli, catalog):
    runner, app = cli
    res = runner.invoke(app, ["--split", "heldout", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert len(data) == len(catalog.by_split("heldout")) and all(d["split"] == "heldout" for d in data)
    res = runner.invoke(app, ["--family", "tone"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "contrast-up-light" in res.output
    res = runner.invoke(app, ["--split", "nope"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["--family", "nope"])
    assert isinstance(res.exception, WeightinitError)


def test_cli_preview_writes_a_grid(cli, tmp_path):
    from PIL import Image

    runner, app = cli
    out = tmp_path / "grid.png"
    res = runner.invoke(app, ["preview", "sepia-heavy", "-o", str(out), "--n", "3", "--seed", "1"])
    assert res.exit_code == 0, res.output
    im = Image.open(out)
    assert im.size == (3 * 66 + 2, 2 * 64 + 6)
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]
    res = runner.invoke(app, ["preview", "sepia-heavyy", "-o", str(tmp_path / "x.png")])
    assert isinstance(res.exception, WeightinitError) and "sepia-heavy" in str(res.exception)
    assert not (tmp_path / "x.png").exists()


def test_the_builtin_catalog_table_holds_what_the_code_held():
    """The built-in catalog became a data table (issue 30): its content and order are the ones the
    code built before, pinned by a digest computed from that code (reverses included)."""
    import hashlib
    import json

    from weightinit.concepts import builtin

    fields = ("id", "phrasings", "family", "split", "reverse", "heldout_kind", "needs_color", "description")
    rows = [{f: getattr(c, f) for f in (*fields, "reverse_of")} for c in builtin.catalog_with_reverses()]
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()
    assert digest == "09c3c3c6037bc58e3f495bfec93bd32374b4d3f58cbe61239f878ea4e21d4a4c"
    # the table and the pair builders list the same concepts in the same order
    assert [row["id"] for row in builtin.concept_table()] == list(builtin.pair_builders())
