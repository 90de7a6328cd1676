"""The benchmark report's sections drawn from measurement files."""

from experiments.pair_selection import SELECTION_TARGET_SECONDS, selection_section


def _timing(screened_seconds):
    return {
        "command": "python -m experiments.pair_selection --timing",
        "concepts": 3,
        "pairs": 8,
        "image_size": 64,
        "threads": 1,
        "cpus": 2,
        "load_average_1min_before_after": [1.0, 2.0],
        "candidates": 10,
        "screen": {"budget": 6, "rescore": 2},
        "median_selection_seconds": {"exhaustive": 2.0, "screened": screened_seconds},
        "median_selection_cpu_seconds": {"exhaustive": 1.5, "screened": 0.3},
        "median_forward_passes": {"screened": 6, "rescored": 3},
        "median_test_psnr": {"exhaustive": 20.0, "screened": 19.5},
        "same_choice_as_exhaustive": 2,
        "test_psnr_exhaustive_minus_screened": {"mean": 0.25, "max": 0.5},
    }


def test_selection_section_states_the_target_and_the_screen_study():
    study = {
        "concepts": 3,
        "strategies": {
            "all candidates": {
                "same_choice_as_exhaustive": 3,
                "median_forward_passes": 10,
                "test_psnr_exhaustive_minus_chosen": {"mean": 0.0},
            }
        },
    }
    text = "\n".join(selection_section("m.json", {"selection_timing": _timing(0.8), "screen_study": study}))
    assert (
        "| every candidate scored | 2.00 | 1.50 | 10 | 20.00 |" in text
        and "| screened | 0.80 | 0.30 | 9 | 19.50 |" in text
    )
    assert (
        f"under {SELECTION_TARGET_SECONDS} s: **missed** (0.80 s)" in text
        and "on 2 of 3" in text
        and "in-sample" in text
    )
    assert "| all candidates | 3 of 3 | 10 | 0.00 |" in text
    met = "\n".join(selection_section("m.json", {"selection_timing": _timing(0.4)}))
    assert f"under {SELECTION_TARGET_SECONDS} s: met (0.40 s)" in met and "screen strategy" not in met


def test_selection_section_adds_the_study_on_training_concepts():
    row = {"same_choice_as_exhaustive": 4, "median_forward_passes": 12, "test_psnr_exhaustive_minus_chosen": None}
    data = {
        "selection_timing": _timing(0.4),
        "screen_study_train": {"concepts": 5, "screen": {"budget": 6}, "strategies": {"default screen": row}},
    }
    text = "\n".join(selection_section("m.json", data))
    assert "5 training concepts scored as unseen" in text and "| default screen | 4 of 5 | 12 | – |" in text
    # the timed screen's budget is the one chosen on the training concepts: its agreement is out of sample
    assert "out of sample" in text and "in-sample." not in text
    data["screen_study_train"]["screen"]["budget"] = 7
    assert "in-sample." in "\n".join(selection_section("m.json", data))


def test_step0_table_lists_every_held_out_concept_and_marks_wins():
    from experiments.heldout_start import step0_table_section

    rows = {
        "a": {"base": 10.0, "mean": 11.0, "nearest": 12.0, "prior": 12.5, "generated_1": 12.5, "oracle": 20.0},
        "b": {"base": 10.0, "mean": 13.0, "nearest": 12.0, "prior": 12.0, "generated_1": 12.0, "oracle": 19.0},
    }
    data = {
        "zoo": "zoo-x",
        "generator": "gen-x",
        "per_concept": rows,
        "generated_beats": {"mean_and_nearest": 1},
        "median_psnr_step0": {
            "base": 10.0,
            "mean": 12.0,
            "nearest": 12.0,
            "prior": 12.25,
            "generated_1": 12.25,
            "oracle": 19.5,
        },
    }
    text = "\n".join(step0_table_section("s.json", data))
    assert "generator `gen-x` on zoo `zoo-x`" in text and "on 1 of 2" in text
    assert "| a | 10.00 | 11.00 | 12.00 | 12.50 | 12.50 | 20.00 | ✓ |" in text
    assert "| b | 10.00 | 13.00 | 12.00 | 12.00 | 12.00 | 19.00 |  |" in text and "**19.50**" in text


def test_crop_size_section_states_the_cost_per_concept():
    from experiments.crop_size import crop_size_section

    row = {
        "base": 15.0,
        "zoo_crops": 17.0,
        "full_size": 17.5,
        "cost_db": 0.5,
        "full_size_seconds": 900.0,
        "trivial": {"trivial_psnr": 16.0},
    }
    summary = {
        "zoo_crop_size": 64,
        "size": 256,
        "concepts": 1,
        "median_base": 15.0,
        "median_zoo_crops": 17.0,
        "median_full_size": 17.5,
        "median_cost_db": 0.5,
    }
    text = "\n".join(
        crop_size_section("c.json", {"arch": "a", "command": "cmd", "summary": summary, "per_concept": {"x": row}})
    )
    assert (
        "What 64-px training crops cost at 256 px" in text
        and "| x | 15.00 | 17.00 | 17.50 | 16.00 | 0.50 | 900 |" in text
        and "1 concept(s)." in text
    )
    summary["requested"] = 4
    text = "\n".join(
        crop_size_section("c.json", {"arch": "a", "command": "cmd", "summary": summary, "per_concept": {"x": row}})
    )
    assert "1 of 4 concept(s) so far (the command resumes)." in text


def test_start_recipe_section_lists_each_variant_and_its_change():
    from experiments.start_recipe import start_recipe_section

    row = {"median_end": 24.0, "median_end_minus_best": -0.9, "median_end_minus_reference": 0.1}
    data = {
        "steps": 400,
        "concepts": ["a", "b"],
        "variants": {"none": {}, "d": {"d_warmup_steps": 100}},
        "summary": {"d": row, "none": dict(row, median_end_minus_reference=0.0)},
    }
    text = "\n".join(start_recipe_section("s.json", data))
    assert "2 training concepts (a, b)" in text and "| d | d_warmup_steps = 100 | 24.00 | -0.90 | 0.10 |" in text
    assert "| none | none (the benchmark's recipe) |" in text
    assert text.index("| none |") < text.index("| d |")  # the reference first, whatever the file's key order


def _concept(lora_seconds: float, chosen_seconds: float, apart: bool = False) -> dict:
    def run(seconds):
        return {
            "reached": True,
            "speedup": 300.0 / seconds,
            "speedup_steps": 600.0 / seconds,
            "seconds": seconds,
            "seconds_run": seconds,
            "psnr_step0": 15.0,
            "psnr_at_stop": 24.0,
            "psnr_at_fraction": {"0.1": 24.0},
        }

    methods = {"scratch": run(300.0), "lora": run(lora_seconds), "chosen_1_lora": run(chosen_seconds)}
    return {"apart": apart, "scratch_final_psnr": 24.5, "methods": methods}


def _seed_run(seed: int, concepts: dict) -> dict:
    return {"config": {"seed": seed}, "meta": {"mode": "lora"}, "concepts": concepts}


def test_seed_spread_compares_seeds_on_the_concepts_all_of_them_completed():
    from experiments.bench.report import seed_spread_section

    seed0 = _seed_run(0, {"a": _concept(20.0, 5.0), "b": _concept(30.0, 10.0), "c": _concept(10.0, 10.0)})
    seed1 = _seed_run(1, {"a": _concept(40.0, 5.0), "b": _concept(30.0, 5.0, apart=True), "d": _concept(1.0, 1.0)})
    text = "\n".join(seed_spread_section([("s1.json", seed1), ("s0.json", seed0)]))
    # only "a" is shared and not apart anywhere: seed 0 4x over LoRA, seed 1 8x
    assert "the 1 concept(s) that every seed completed (1 apart: `b`)" in text
    assert "| chosen_1_lora: speedup over base + fresh LoRA (seconds) | 4.00x | 8.00x | 4.00x – 8.00x |" in text
    assert text.index("seed 0 `s0.json`") < text.index("seed 1 `s1.json`")
    assert "reuses scratch" not in text
    seed0["rerun"] = {"reused": ["scratch"], "methods": ["lora", "chosen_1_lora"]}
    text = "\n".join(seed_spread_section([("s1.json", seed1), ("s0.json", seed0)]))
    assert "Seed 0 reuses scratch's runs from an earlier run of the same seed" in text


def test_seed_spread_refuses_two_files_of_one_seed():
    import pytest

    from experiments.bench.report import seed_spread_section
    from weightinit.errors import WeightinitError

    with pytest.raises(WeightinitError, match="two seed-spread files have benchmark seed 0"):
        seed_spread_section([("x.json", _seed_run(0, {})), ("y.json", _seed_run(0, {}))])


def test_prior_rank_section_names_the_rank_chosen_on_training_concepts():
    from experiments.prior_rank import prior_rank_section

    data = {
        "zoo": "zoo-x",
        "temperature": 0.01,
        "training_concepts": 9,
        "ranks": ["2", "full"],
        "train": {"concepts": 4, "best": "full", "median_psnr_step0": {"2": 19.5, "full": 21.0}},
        "heldout": {
            "concepts": 3,
            "by_rank": {
                "2": {"median_psnr_step0": 17.2, "beats_mean_and_nearest": 1},
                "full": {"median_psnr_step0": 17.8, "beats_mean_and_nearest": 2},
            },
        },
    }
    text = "\n".join(prior_rank_section("r.json", data))
    assert "the rank with the best median (**full**) is the one chosen" in text
    assert "| 2 | 19.50 | 17.20 | 1 of 3 |" in text and "| full | 21.00 | 17.80 | 2 of 3 |" in text
    assert text.startswith("## Retrieval prior: principal components kept (`zoo-x`)")  # one section per zoo


def test_step0_wins_are_counted_per_held_out_kind_with_the_near_ties():
    from experiments.heldout_start import step0_kind_lines

    rows = {
        "sepia-heldout-strength": {"mean": 20.0, "nearest": 27.2, "generated_1": 27.3, "oracle": 27.5},
        "warm-heldout-strength": {"mean": 15.0, "nearest": 22.3, "generated_1": 22.2, "oracle": 25.0},
        "negative": {"mean": 6.0, "nearest": 7.3, "generated_1": 5.4, "oracle": 23.5},
        "my-own-edit": {"mean": 10.0, "nearest": 11.0, "generated_1": 12.0, "oracle": 20.0},
    }
    text = "\n".join(step0_kind_lines([("s.json", {"per_concept": rows})]))
    kinds = ("strength", "novel", "other")
    header = "| file | " + " | ".join(f"{kind}: wins (nearest ≈ own)" for kind in kinds) + " |"
    assert header in text
    # 2 of 4 wins, 3 needed for 70%; no prior column: no gain over it
    assert "| `s.json` | 1/2 (1) | 0/1 (0) | 1/1 (0) | 2/4 (3 needed) | – |" in text
    assert (
        "No generator here meets either. The one with the fewest losses, `s.json`, loses 2: 1 strength, 1 novel."
        in text
    )
    for r in rows.values():
        r["prior"] = r["generated_1"] - 0.5
    assert "Met, at least one of them, by `s.json`." in "\n".join(step0_kind_lines([("s.json", {"per_concept": rows})]))
    assert step0_kind_lines([("s.json", {"concepts": 0})]) == []  # files without rows: no table


def test_every_section_name_is_an_experiments_section_function():
    import importlib
    import inspect

    from experiments.bench.report import SECTIONS

    for name, target in SECTIONS.items():
        module, function = target.split(":")
        assert list(inspect.signature(getattr(importlib.import_module(module), function)).parameters) == ["files"], name


def test_sections_come_in_the_order_their_names_first_appear_with_one_names_files_together(tmp_path, monkeypatch):
    import json
    import sys
    import types

    import pytest

    from experiments.bench import report
    from weightinit.errors import WeightinitError

    calls = []

    def fake(name):
        def section(files):
            calls.append((name, [data["n"] for _, data in files]))
            return [f"{name}: " + " ".join(source for source, _ in files)]

        return section

    module = types.ModuleType("fake_sections")
    module.a, module.b = fake("a"), fake("b")
    monkeypatch.setitem(sys.modules, "fake_sections", module)
    monkeypatch.setitem(report.SECTIONS, "a", "fake_sections:a")
    monkeypatch.setitem(report.SECTIONS, "b", "fake_sections:b")
    for n in (1, 2, 3):
        (tmp_path / f"{n}.json").write_text(json.dumps({"n": n}))
    specs = [f"a={tmp_path / '1.json'}", f"b={tmp_path / '2.json'}", f"a={tmp_path / '3.json'}"]
    lines = report.render_sections(report.parse_sections(specs), tmp_path)
    assert lines == ["a: 1.json 3.json", "b: 2.json"] and calls == [("a", [1, 3]), ("b", [2])]
    with pytest.raises(WeightinitError, match="no section 'nope'; known: step0, "):
        report.parse_sections(["nope=x.json"])
    with pytest.raises(WeightinitError, match="expected NAME=FILE"):
        report.parse_sections(["step0"])
    with pytest.raises(WeightinitError, match="no measurement files at .*absent.json"):
        report.render_sections([("a", tmp_path / "absent.json")], tmp_path)


def test_the_pairs_block_is_written_from_the_measurement_files(tmp_path):
    import json

    from experiments.pairs_report import readme_block

    assert "No measurement yet" in readme_block(tmp_path)
    grid = {f"checked={c} steps={s} lr=0.2": 10.0 + c + s for c in (1, 2, 4) for s in (0, 4)}
    (tmp_path / "pair_generator.json").write_text(
        json.dumps(
            {"training": {"concepts": ["a", "b"], "median_psnr": grid, "best": {"checked": 4, "steps": 4, "lr": 0.2}}}
        )
    )
    step0 = {"generated_1": 17.0, "chosen": 19.5, "pair_generated": 20.25}
    (tmp_path / "heldout_start_pairs.json").write_text(
        json.dumps(
            {
                "median_psnr_step0": step0,
                "seconds": {"chosen": 1.5, "pair_generated": 0.25},
                "concepts": 5,
                "pairs": 8,
                "pair_generated_at_least_chosen": 3,
            }
        )
    )
    block = readme_block(tmp_path)
    assert (
        "| bundled | 5 | 17.00 dB | 19.50 dB, 1.50 s | 20.25 dB, 0.25 s | 3 of 5 | 4 checked, 4 steps of 0.2 |" in block
    )
    assert "text alone 11.00 dB" in block and "all of it 18.00" in block and "unet128" not in block
    assert "span's text point" not in block  # chosen before the text's point was a setting

    grid = {
        f"checked={c} steps={s} lr=0.2 text_origin={o}": 10.0 + c + s + (o == "written")
        for c in (1, 2, 4)
        for s in (0, 4)
        for o in ("span", "written")
    }
    best = {"checked": 4, "steps": 4, "lr": 0.2, "text_origin": "written"}
    (tmp_path / "pair_generator.json").write_text(
        json.dumps({"training": {"concepts": ["a"], "median_psnr": grid, "best": best}})
    )
    block = readme_block(tmp_path)
    assert "4 checked, 4 steps of 0.2; the text's point is the start text alone writes |" in block
    assert (
        "text alone 12.00 dB" in block
        and "all of it 19.00; the same from the span's text point (the factor blend) 18.00." in block
    )
    best = {"checked": 4, "steps": 4, "lr": 0.2, "text_origin": "span"}
    (tmp_path / "pair_generator.json").write_text(
        json.dumps({"training": {"concepts": ["a"], "median_psnr": grid, "best": best}})
    )
    block = readme_block(tmp_path)
    assert "| 3 of 5 | 4 checked, 4 steps of 0.2 |" in block  # the span's point: nothing to add
    assert "all of it 18.00; the same from the start text alone writes 19.00." in block
