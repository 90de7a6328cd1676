"""experiments.rerun_methods: recorded scratch runs reused only where they reproduce; the report section."""

import json

import pytest

from experiments import rerun_methods
from experiments.bench.curves import summarize
from experiments.bench.report import _json_safe, other_bench_section
from experiments.bench.runner import BenchConfig, BenchRunner
from weightinit.errors import WeightinitError

CONFIG = dict(scratch_steps=4, cap_fraction=0.5, min_fraction=0.0, eval_every=2, trivial_margin_db=-100.0, ddim_steps=2)


@pytest.fixture(scope="module")
def recorded(tiny_zoo_dir, tiny_generator_dir, tmp_path_factory):
    """A recorded benchmark (scratch and base + fresh LoRA, LoRA-only) saved as
    `python -m experiments.bench run --json` does."""
    out = tmp_path_factory.mktemp("recorded")
    runner = BenchRunner(
        tiny_zoo_dir,
        out / "bench",
        BenchConfig(**CONFIG),
        generator=str(tiny_generator_dir),
        methods=["lora"],
        mode="lora",
        progress=False,
        log=lambda s: None,
    )
    path = out / "bench.json"
    path.write_text(json.dumps(_json_safe(runner.run())))
    return path


def test_a_fixed_budget_rerun_reuses_scratch_and_runs_the_methods_to_the_cap(
    recorded, tiny_zoo_dir, tiny_generator_dir, tmp_path
):
    before = json.loads(recorded.read_text())
    results = rerun_methods.measure(
        recorded,
        tiny_zoo_dir,
        tmp_path / "rerun",
        mode="lora",
        methods=["lora", "generated_1_lora"],
        generator=str(tiny_generator_dir),
        overrides={"stop_at": "cap"},
        log=lambda s: None,
    )
    cid = next(iter(before["runs"]))
    # scratch is the recorded run, not a new one; the others ran to the cap (2 of scratch's 4 steps)
    assert results["runs"][cid]["scratch"]["curve"] == before["runs"][cid]["scratch"]["curve"]
    assert json.loads((tmp_path / "rerun" / "runs" / cid / "scratch.json").read_text())["reused_from_record"]
    for m in ("lora", "generated_1_lora"):
        assert results["runs"][cid][m]["curve"][-1]["step"] == 2 and results["runs"][cid][m]["stopped"] == "cap"
    assert results["rerun"]["changed"] == ["stop_at"] and results["rerun"]["seeded_now"] == {cid: ["scratch"]}
    fixed = results["fixed_budget"]
    assert set(fixed) == {"lora", "generated_1_lora"}
    final = results["concepts"][cid]["scratch_final_psnr"]
    psnr_half = results["concepts"][cid]["methods"]["lora"]["psnr_at_fraction"]["0.5"]
    assert fixed["lora"]["0.5"] == {
        "concepts": 1,
        "at_or_above_scratch_final": int(psnr_half >= final),
        "median_minus_scratch_final": pytest.approx(psnr_half - final),
    }

    # resuming reruns nothing, and the section states the fixed-budget verdict
    again = rerun_methods.measure(
        recorded,
        tiny_zoo_dir,
        tmp_path / "rerun",
        mode="lora",
        methods=["lora", "generated_1_lora"],
        generator=str(tiny_generator_dir),
        overrides={"stop_at": "cap"},
        log=lambda s: None,
    )
    assert again["runs"] == results["runs"] and again["rerun"]["seeded_now"] == {cid: []}
    text = "\n".join(other_bench_section("fixed.json", _json_safe(results)))
    assert "## Fixed budget, LoRA-only: every method run to 50% of scratch's budget" in text
    assert "reused from" in text and "| generated_1_lora |" in text


def test_a_rerun_with_the_recorded_stop_rule_can_copy_other_methods_in(
    recorded, tiny_zoo_dir, tiny_generator_dir, tmp_path
):
    before = json.loads(recorded.read_text())
    results = rerun_methods.measure(
        recorded,
        tiny_zoo_dir,
        tmp_path / "rerun",
        mode="lora",
        methods=["generated_1_lora"],
        reuse=["lora"],
        generator=str(tiny_generator_dir),
        log=lambda s: None,
    )
    cid = next(iter(before["runs"]))
    assert results["runs"][cid]["lora"]["curve"] == before["runs"][cid]["lora"]["curve"]
    assert results["fixed_budget"] is None  # stopped at the target: later fractions are not measured
    assert "median_speedup_over_lora" in results["summary"]["targets"]["generated_1_lora"]
    assert "## Rerun with today's code: generated_1_lora" in "\n".join(
        other_bench_section("r.json", _json_safe(results))
    )


def test_recorded_runs_that_do_not_reproduce_or_differ_in_config_are_refused(
    recorded, tiny_zoo_dir, tiny_generator_dir, tmp_path
):
    data = json.loads(recorded.read_text())
    cid = next(iter(data["runs"]))
    data["runs"][cid]["scratch"]["curve"][0]["psnr"] += 0.5
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(data))
    kwargs = dict(mode="lora", methods=["generated_1_lora"], generator=str(tiny_generator_dir), log=lambda s: None)
    with pytest.raises(WeightinitError, match="step-0 test PSNR .* cannot be reused"):
        rerun_methods.measure(tampered, tiny_zoo_dir, tmp_path / "a", **kwargs)
    assert not (tmp_path / "a" / "runs").exists()  # nothing seeded before the check failed
    with pytest.raises(WeightinitError, match="only the stop rule"):
        rerun_methods.measure(recorded, tiny_zoo_dir, tmp_path / "b", overrides={"scratch_steps": 8}, **kwargs)
    with pytest.raises(WeightinitError, match="--reuse needs the recorded stop rule"):
        rerun_methods.measure(
            recorded, tiny_zoo_dir, tmp_path / "c", reuse=["lora"], overrides={"stop_at": "cap"}, **kwargs
        )


def test_collecting_without_running_reports_what_is_pending(recorded, tiny_zoo_dir, tiny_generator_dir, tmp_path):
    results = rerun_methods.measure(
        recorded,
        tiny_zoo_dir,
        tmp_path / "r",
        mode="lora",
        methods=["generated_1_lora"],
        generator=str(tiny_generator_dir),
        run=False,
        log=lambda s: None,
    )
    planned = list(json.loads(recorded.read_text())["runs"])
    assert results["concepts"] == {} and results["summary"] == {} and results["rerun"]["pending"] == planned
    text = "\n".join(other_bench_section("r.json", _json_safe(results)))
    assert "**Partial:**" in text and "No complete concept yet." in text


def test_a_benchmark_section_lists_every_concept_and_says_when_all_are_apart(recorded):
    data = json.loads(recorded.read_text())
    cid = next(iter(data["concepts"]))
    text = "\n".join(other_bench_section("bench.json", data))
    assert "## Time to quality with generator" in text and "| method | reached |" in text
    assert f"| {cid} | " in text  # its own row, after the medians

    for concept in data["concepts"].values():
        concept["apart"] = True
    data["summary"] = _json_safe(summarize(data["concepts"], list(data["summary"]["methods"])))
    text = "\n".join(other_bench_section("bench.json", data))
    assert "Every concept is reported apart" in text and "| method | reached |" not in text
    assert f"| {cid} *(apart)* | " in text and "No complete concept yet." not in text
