"""experiments.text_policy's choices from scored rows, and experiments.text_report's block."""

import json

from experiments import text_report
from experiments.bench.methods import BenchContext
from experiments.text_policy import choose, far_policy, measure, sibling_policy, weight_blend_choice
from experiments.text_policy_ttq import faster, without_fallback
from weightinit.generator.far_policy import FarPolicy


def _row(cid, sim, prior, mean, t01, siblings=None, nearest=0.0):
    self_ = {"similarity": sim, "nearest": nearest, "prior": prior, "siblings": 0}
    if siblings is not None:
        self_.update(siblings=2, **{f"siblings_t{t}": v for t, v in siblings.items()})
    return {
        "concept": cid,
        "similarity": sim,
        "prior": prior,
        "mean": mean,
        "prior_t0.03": prior,
        "prior_t0.1": t01,
        "prior_t0.3": t01,
        "self": self_,
    }


#: Below similarity 0.5 the sharp blend loses to the mean and the broad blend matches it; above, the blend wins.
ROWS = [
    _row("a", 0.2, 10.0, 15.0, 15.5),
    _row("b", 0.3, 11.0, 15.0, 15.5),
    _row("c", 0.4, 25.0, 15.0, 16.0),
    _row("d", 0.7, 20.0, 15.0, 16.0),
    _row("e", 0.8, 21.0, 15.0, 16.0),
]


def test_the_far_policy_falls_back_where_the_blend_loses():
    median = far_policy(ROWS, "median")
    assert median["objective"] == "median" and median["fallback"] in ("prior_t0.1", "prior_t0.3")
    assert 0.3 < median["similarity"] <= 0.55  # a and b fall back; c's large gain stays
    balance = far_policy(ROWS, "balance")
    assert balance["above_mean_less_below"] == 5 and balance["without_policy"]["above_mean_less_below"] == 1
    assert median["without_policy"]["median_psnr"] == 20.0


def test_no_sibling_policy_unless_a_temperature_beats_the_plain_blend():
    rows = [
        _row("x", 0.9, 20.0, 15.0, 16.0, {0.03: 18.0, 100.0: 19.0}, nearest=19.5),
        _row("y", 0.9, 21.0, 15.0, 16.0, {0.03: 22.0, 100.0: 17.0}, nearest=20.5),
        _row("z", 0.9, 20.0, 15.0, 16.0),  # no siblings: not counted
    ]
    got = sibling_policy(rows)
    assert got["concepts"] == 2 and got["table"]["prior"]["wins"] == 2 and got["temperature"] is None
    rows[0]["self"]["siblings_t0.03"] = 21.0
    assert sibling_policy(rows)["temperature"] == 0.03  # same wins, higher median
    chosen = choose(rows)
    assert chosen["policy"]["siblings"]["temperature"] == 0.03
    assert chosen["policy"]["far_policy"]["fallback"] in ("mean", "prior")


def test_the_weight_blend_ships_where_it_beats_the_factor_blend():
    rows = [_row(c, 0.9, p, 15.0, 16.0, nearest=18.0) for c, p in (("x", 19.0), ("y", 17.0), ("z", 20.0))]
    assert weight_blend_choice(rows) is None and choose(rows)["policy"]["weight_blend"] is None  # factor rows
    for r, factors in zip(rows, (18.5, 18.5, 18.9)):
        r["self"]["prior_factors"] = factors
    got = weight_blend_choice(rows)
    assert got["table"]["weights"]["wins"] == 2 and got["table"]["factors"]["wins"] == 3 and got["space"] == "factors"
    rows[2]["self"]["prior_factors"] = 17.0
    chosen = choose(rows)
    assert chosen["space"]["space"] == "weights" and chosen["policy"]["weight_blend"]["min_weight"] > 0
    assert "2 (median" in chosen["policy"]["weight_blend"]["measured_on"]


def test_rows_in_weight_space_score_both_blends(tiny_zoo_dir, tiny_generator_dir):
    ctx = BenchContext(str(tiny_zoo_dir), str(tiny_generator_dir))
    factors = measure(ctx, limit=1, log=lambda *a, **k: None)
    weights = measure(ctx, limit=1, space="weights", log=lambda *a, **k: None)
    f, w = factors[0], weights[0]
    assert w["concept"] == f["concept"] and w["mean_factors"] == f["mean"]
    assert w["self"]["prior_factors"] == f["self"]["prior"] and w["self"]["nearest"] == f["self"]["nearest"]
    assert "prior_factors" not in f["self"] and "mean_factors" not in f


def test_a_far_fallback_that_trains_slower_is_dropped_and_its_warning_kept():
    summary = {"concepts": 6, "with_faster": 3, "with_slower": 3}
    assert not faster(summary) and faster({**summary, "with_faster": 4})
    stored = {"similarity": 0.72, "fallback": "prior", "temperature": 0.3, "measured_on": "52 training concepts"}
    out = without_fallback(stored, summary)
    assert out["similarity"] == 0.72 and out["fallback"] == "blend" and "temperature" not in out
    assert "later on 3 of 6" in out["measured_on"] and out["measured_on"].startswith("52 training concepts")
    assert FarPolicy.from_dict(out).fallback == "blend"


def test_the_text_block_reads_the_measurements(tmp_path):
    rows = {
        "sepia-heldout-strength": {"generated_1": 20.0, "mean": 15.0, "nearest": 19.0},
        "charcoal-drawing": {"generated_1": 12.0, "mean": 15.0, "nearest": 11.0},
        "negative": {"generated_1": 8.0, "mean": 9.0, "nearest": 7.0},
    }
    (tmp_path / "heldout_start_pairs.json").write_text(json.dumps({"per_concept": rows}))
    block = text_report.readme_block(tmp_path)
    line = next(x for x in block.splitlines() if x.startswith("| bundled |"))
    assert "**1 of 2** (50%, missed)" in line and "1 of 1 | 0 of 1 | 0 of 0" in line
    assert "8.00 / 9.00 (missed, 1 concepts)" in line
    assert block.startswith(text_report.README_START) and block.endswith(text_report.README_END)
    assert "[docs/starts.md](docs/starts.md)" in block and "Policies, chosen" not in block


def test_the_text_page_adds_the_ablations_policies_and_ceilings_the_readme_links(tmp_path):
    novel = {"negative": {"generated_1": 8.0, "mean": 9.0, "nearest": 7.0}}
    rows = {"sepia-heldout-strength": {"generated_1": 20.0, "mean": 15.0, "nearest": 19.0}, **novel}
    (tmp_path / "heldout_start_pairs.json").write_text(json.dumps({"per_concept": rows}))
    less = {"sepia-heldout-strength": {"generated_1": 14.0, "mean": 15.0, "nearest": 19.0}, **novel}
    (tmp_path / "heldout_start_text_factor_blend.json").write_text(json.dumps({"per_concept": less}))
    short, page = text_report.readme_block(tmp_path), text_report.readme_block(tmp_path, full=True)
    assert "| bundled, factor blend" not in short and "**0 of 1** (0%, missed)" in page
    assert "| bundled | **1 of 1** (100%, met)" in short and "| bundled | **1 of 1** (100%, met)" in page
    assert "](docs/starts.md)" not in page and "The table's `mean` averages" in page
