"""experiments.text_policy's choices from scored rows, and experiments.text_report's block."""

import json

from experiments import text_report
from experiments.text_policy import choose, far_policy, sibling_policy


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
