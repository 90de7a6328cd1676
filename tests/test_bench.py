"""The benchmark: every method builds a model, a tiny run resumes, the arithmetic, the report."""

import json
import statistics
from pathlib import Path

import pytest
import torch

from experiments.bench.curves import summarize, summarize_concept
from experiments.bench.runner import BenchConfig
from weightinit.finetune import time_to_quality
from weightinit.generator.model import WeightGenerator


def curve(points):
    return [{"step": s, "seconds": t, "psnr": p, "ssim": 0.5, "l1": 0.1} for s, t, p in points]


def test_time_to_quality_interpolates_and_reports_not_reached():
    c = curve([(0, 0.5, 10.0), (10, 1.5, 14.0), (20, 2.5, 18.0)])
    hit = time_to_quality(c, 16.0)
    assert hit["reached"] and hit["seconds"] == pytest.approx(2.0) and hit["step"] == pytest.approx(15.0)
    assert time_to_quality(c, 9.0) == {"reached": True, "seconds": 0.5, "step": 0.0}
    miss = time_to_quality(c, 19.0)
    assert not miss["reached"] and miss["best_psnr"] == 18.0 and miss["last_step"] == 20


def test_speedups_fractions_and_trivial_margin_split():
    cfg = BenchConfig(
        scratch_steps=100,
        eval_every=50,
        final_window=0.1,
        tolerance_db=0.5,
        fractions=(0.5, 1.0),
        trivial_margin_db=3.0,
    )
    scratch = curve([(0, 0.0, 10.0), (50, 10.0, 19.5), (100, 20.0, 20.5)])  # final 20.5, target 20.0 at 15 s
    fast = curve([(0, 1.0, 20.0), (5, 2.0, 20.2)])  # reached at step 0, after 1 s of generation
    slow = curve([(0, 0.0, 12.0), (50, 10.0, 15.0)])  # never reaches: capped at 50 steps
    runs = {
        "scratch": {"curve": scratch, "init_seconds": 0.0},
        "generated_1": {"curve": fast, "init_seconds": 1.0},
        "lora": {"curve": slow, "init_seconds": 0.0},
    }
    s = summarize_concept(runs, trivial_psnr=15.0, config=cfg)
    assert s["target_psnr"] == pytest.approx(20.0) and s["scratch_seconds"] == pytest.approx(15.0)
    assert s["methods"]["generated_1"]["speedup"] == pytest.approx(15.0)
    assert s["methods"]["generated_1"]["speedup_steps"] is None  # reached at step 0
    assert s["methods"]["lora"]["speedup"] is None and not s["methods"]["lora"]["reached"]
    assert s["methods"]["lora"]["psnr_at_fraction"] == {"0.5": 15.0, "1.0": None}
    assert not s["apart"]
    apart = summarize_concept(runs, trivial_psnr=18.0, config=cfg)  # scratch beats trivial by 2.5 dB < 3
    assert apart["apart"]
    total = summarize({"a": s, "b": apart}, ["scratch", "generated_1", "lora"])
    assert total["concepts"] == ["a"] and total["apart"] == ["b"]
    assert total["median_speedup"]["generated_1"] == pytest.approx(15.0)
    assert total["median_speedup"]["lora"] == 0.0  # not reached counts as 0
    t = total["targets"]["generated_1"]
    assert t["speedup_15x"] and t["median_speedup_over_lora"] == pytest.approx(10.0 / 1.0)


def test_every_method_builds_a_model(tiny_zoo_dir, tiny_pair_generator_dir):
    from experiments.bench.methods import METHODS, BenchContext

    ctx = BenchContext(tiny_zoo_dir, str(tiny_pair_generator_dir), ddim_steps=2)  # with a pair start: every method
    cid = ctx.zoo.ids("heldout")[0]
    x = torch.zeros(2, 3, 64, 64)
    for name, method in METHODS.items():
        start = method.build(ctx, cid)
        assert start.model(x).shape == (2, 3, 64, 64), name
        assert start.seconds > 0, name
        if method.trains == "lora":
            assert start.params and all(p.requires_grad for p in start.params), name
        else:
            assert start.params is None, name
    assert ctx.rel_l2_to_oracle(METHODS["oracle"].build(ctx, cid).model, cid) < 1e-3
    assert METHODS["nearest"].build(ctx, cid).info["nearest"] in ctx.zoo.ids("train")
    # the chosen methods score on the first pairs of the very pool the fine-tune draws from
    from experiments.bench.runner import zoo_pairs

    (pool_in, pool_out), _, _ = zoo_pairs(ctx.zoo, cid)
    chosen_in, chosen_out = ctx.selection_pairs(cid)
    assert torch.equal(chosen_in, pool_in[: len(chosen_in)]) and torch.equal(chosen_out, pool_out[: len(chosen_out)])


@pytest.fixture(scope="module")
def tiny_bench(tiny_zoo_dir, tiny_generator_dir, tmp_path_factory):
    """One tiny benchmark of every merge-mode method on the tiny zoo's held-out concept: (runner, its results)."""
    from experiments.bench.runner import BenchRunner

    cfg = BenchConfig(
        scratch_steps=4, cap_fraction=0.5, min_fraction=0.0, eval_every=2, trivial_margin_db=-100.0, ddim_steps=2
    )
    out = tmp_path_factory.mktemp("bench")
    runner = BenchRunner(tiny_zoo_dir, out, cfg, generator=str(tiny_generator_dir), progress=False, log=lambda s: None)
    return runner, runner.run()


def _run_files(out):
    return {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*.json") if p.name != "concept.json"}


def test_a_tiny_bench_runs_every_method_and_resumes_without_rerunning(tiny_bench):
    runner, results = tiny_bench
    methods = ["scratch", "base", "lora", "mean", "nearest", "generated_1", "generated_k", "chosen_1", "oracle"]
    assert list(results["summary"]["median_speedup"]) == methods
    assert results["summary"]["median_speedup"]["scratch"] == pytest.approx(1.0)
    assert set(results["summary"]["targets"]) == {"generated_1", "chosen_1"}
    choice = next(iter(results["runs"].values()))["chosen_1"]["info"]["choice"]
    assert choice["pairs"] == 8 and choice["pairs_l1"] <= choice["generated_l1"]
    before = _run_files(runner.out)
    runner.run()
    assert _run_files(runner.out) == before


def test_the_command_line_resumes_the_same_runs_and_writes_json(tiny_bench, tiny_zoo_dir, tiny_generator_dir, tmp_path):
    from typer.testing import CliRunner

    from experiments.bench.cli import app

    runner, _ = tiny_bench
    before = _run_files(runner.out)
    args = [
        "run",
        "--zoo",
        str(tiny_zoo_dir),
        "--generator",
        str(tiny_generator_dir),
        "--out",
        str(runner.out),
        "--scratch-steps",
        "4",
        "--cap-fraction",
        "0.5",
        "--min-fraction",
        "0",
        "--eval-every",
        "2",
        "--ddim-steps",
        "2",
        "--trivial-margin=-100",
        "--methods",
        "base,generated_1",
        "--json",
        str(tmp_path / "b.json"),
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "generated_1" in json.loads((tmp_path / "b.json").read_text())["summary"]["median_speedup"]
    assert _run_files(runner.out) == before


def test_a_zoo_with_other_training_concepts_redoes_every_run_but_scratchs(tiny_bench):
    from experiments.bench.methods import METHODS

    runner, results = tiny_bench
    concept = next(iter(results["runs"]))
    names = ("scratch", "mean", "nearest", "generated_1")
    before = {m: runner.run_key(concept, METHODS[m], 20.0) for m in names}
    runner.__dict__["zoo_train_digest"] = "0" * 16
    after = {m: runner.run_key(concept, METHODS[m], 20.0) for m in names}
    del runner.__dict__["zoo_train_digest"]
    assert [before[m] == after[m] for m in names] == [True, False, False, False]


@pytest.fixture
def bench_copy(tiny_bench, tmp_path):
    """A copy of the tiny benchmark's folder, for tests that add files to it."""
    import shutil

    return Path(shutil.copytree(tiny_bench[0].out, tmp_path / "bench"))


def test_the_report_states_the_setup_plots_and_adds_the_ablations_and_pending_concepts(bench_copy, tmp_path):
    from experiments.bench.report import write_report
    from weightinit.fileio import atomic_write_json

    md = tmp_path / "docs" / "BENCHMARKS.md"
    write_report(bench_copy, md)
    text = md.read_text()
    for part in (
        "**Machine:**",
        "all weights on 1 concept(s), LoRA factors only on 0",
        "threads",
        "torch",
        "**Seeds:**",
    ):
        assert part in text
    assert "**Partial:**" not in text and "## Generator ablations" not in text
    assert (md.parent / "bench" / "psnr_vs_seconds.png").is_file() and (md.parent / "bench" / "speedups.png").is_file()

    # ablations beside the runs are a section without being named; a planned concept without runs: "partial"
    concept = next(p.name for p in (bench_copy / "runs").iterdir())
    scores = {concept: {"psnr_step0": 20.0, "rel_l2_to_oracle": 0.5}}
    atomic_write_json(
        bench_copy / "ablations" / "ablations.json",
        {
            "block128": {"concepts": scores, "median_psnr_step0": 19.5, "median_rel_l2_to_oracle": 0.5},
            "steps1": {"concepts": scores, "median_psnr_step0": 20.0, "median_rel_l2_to_oracle": 0.25},
        },
    )
    meta = json.loads((bench_copy / "meta.json").read_text())
    atomic_write_json(bench_copy / "meta.json", meta | {"concepts": meta["concepts"] + ["not-yet-run"]})
    write_report(bench_copy, md)
    text = md.read_text()
    assert "**Partial:**" in text and "`not-yet-run`" in text and "## Median speedup by held-out kind" in text
    assert "| block128 | block size 128 (main: 256) | 1 | 19.50 | -0.50 | 0.500 |" in text
    assert text.index("| steps1 |") < text.index("| block128 |")  # the main generator first, whatever the file's order


def test_report_sections_come_from_their_files_and_a_missing_file_writes_nothing(bench_copy, tmp_path):
    from experiments.bench.report import write_report
    from weightinit.errors import WeightinitError
    from weightinit.fileio import atomic_write_json

    md = tmp_path / "BENCHMARKS.md"
    med = {m: 15.0 for m in ("base", "mean", "nearest", "prior", "generated_1", "oracle")}
    part = {
        "concepts": 2,
        "median_psnr_step0": med | {"generated_1": 17.25},
        "generated_beats": {"mean_and_nearest": 1},
    }
    atomic_write_json(
        tmp_path / "step0.json",
        {
            "generator": "gen",
            "concepts": 3,
            "text_conditioning": "directional",
            "median_psnr_step0": med,
            "generated_beats": {"mean_and_nearest": 2},
            "prior_rank": 7,
            "by_direction": {"forward": part, "reverse": part | {"concepts": 1}},
        },
    )
    row = {
        "text": "photo to sepia",
        "netG_B_text": "sepia to photo",
        "forward_l1": {"netG_A": 0.1, "netG_B": 0.3},
        "reverse_l1": {"netG_A": 0.35, "netG_B": 0.25},
        "both_directions_right": True,
        "netG_B_draws_on": ["sepia-light-reverse"],
    }
    atomic_write_json(tmp_path / "dirs.json", {"generators": {"gen": [row, row | {"both_directions_right": False}]}})
    write_report(bench_copy, md, sections=[("directions", tmp_path / "dirs.json"), ("step0", tmp_path / "step0.json")])
    text = md.read_text()
    step0_row = (
        "| ? concepts | directional | whole | own blend | 7 | forward | 2 | 15.00 | 15.00 | 15.00 | 15.00 | "
        "17.25 | 15.00 | 1/2 |"
    )
    assert step0_row in text and "| own blend | 7 | reverse | 1 |" in text and "| own blend | 7 | all | 3 |" in text
    assert (
        "| `gen` | photo to sepia | sepia to photo | 0.100 / 0.300 | 0.250 / 0.350 | yes | sepia-light-reverse |"
        in text
    )
    assert "| **no** |" in text
    assert text.index("## CycleGAN: does each direction") < text.index(
        "## Step 0 on every held-out concept"
    )  # as given
    before = md.read_text()
    with pytest.raises(WeightinitError, match="no measurement files at .*absent.json"):
        write_report(bench_copy, md, sections=[("step0", tmp_path / "absent.json")])
    assert md.read_text() == before


def test_the_report_command_takes_its_sections_as_name_equals_file(bench_copy, tmp_path):
    from typer.testing import CliRunner

    from experiments.bench.cli import app

    row = {
        "text": "t",
        "netG_B_text": "u",
        "forward_l1": {"netG_A": 0.1, "netG_B": 0.3},
        "reverse_l1": {"netG_A": 0.3, "netG_B": 0.2},
        "both_directions_right": True,
        "netG_B_draws_on": [],
    }
    (tmp_path / "dirs.json").write_text(json.dumps({"generators": {"gen": [row]}}))
    md = tmp_path / "B.md"
    base = ["report", "--results", str(bench_copy), "--out", str(md)]
    res = CliRunner().invoke(app, [*base, "--section", f"directions={tmp_path / 'dirs.json'}", "--json"])
    assert res.exit_code == 0, res.output
    assert "## CycleGAN: does each direction start the right way?" in md.read_text()
    res = CliRunner().invoke(app, [*base, "--section", f"nope={tmp_path / 'dirs.json'}"])
    assert res.exit_code == 1 and "no section 'nope'" in " ".join(res.output.split()), res.output


def test_the_readme_results_table_is_rewritten_between_its_markers_only(bench_copy, tmp_path):
    from experiments.bench.report import README_END, README_START, write_report
    from weightinit.errors import WeightinitError

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\nold\n{README_END}\noutro\n")
    results = write_report(bench_copy, tmp_path / "BENCHMARKS.md", readme=readme)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("\noutro\n") and "old" not in text
    generated = results["summary"]["methods"]["generated_1"]
    assert f"| generated from text (1 step) | {generated['median_speedup']:.1f}x |" in text, text
    readme.write_text("no markers\n")
    with pytest.raises(WeightinitError, match="has no <!-- results:start -->"):
        write_report(bench_copy, tmp_path / "BENCHMARKS.md", readme=readme)
    assert readme.read_text() == "no markers\n"


def test_ablation_trains_resumably_and_scores(tiny_zoo_dir, tiny_generator_dir, tmp_path):
    from experiments.bench.ablations import run_ablations

    results = run_ablations(
        tiny_zoo_dir, str(tiny_generator_dir), tmp_path, names=["block128"], steps=2, log=lambda s: None
    )
    assert {"zoo_mean", "oracle", "steps1", "steps5", "steps25", "block128"} <= set(results)
    assert results["oracle"]["median_rel_l2_to_oracle"] < 1e-3
    gen = json.loads((tmp_path / "ablations" / "block128" / "layout.json").read_text())
    assert gen["block_size"] == 128
    evals = sorted((tmp_path / "ablations").rglob("eval.json"))
    mtimes = [p.stat().st_mtime_ns for p in evals]
    run_ablations(tiny_zoo_dir, str(tiny_generator_dir), tmp_path, names=["block128"], steps=2, log=lambda s: None)
    assert [p.stat().st_mtime_ns for p in evals] == mtimes


def test_mean_center_and_no_text_ablations_drop_the_retrieval_prior(tiny_zoo_dir, tiny_generator_dir, tmp_path):
    from experiments.bench.ablations import train_ablation
    from weightinit.zoo.weights import ZooWeights

    assert (tiny_generator_dir / "prior.safetensors").is_file()
    for name in ("mean_center", "no_text"):
        folder = train_ablation(
            ZooWeights(tiny_zoo_dir), str(tiny_generator_dir), tmp_path, name, steps=2, log=lambda s: None
        )
        training = json.loads((folder / "generator_config.json").read_text())["training"]
        assert training["prior"] == "mean" and not (folder / "prior.safetensors").exists()
        assert training["no_text"] == (name == "no_text")


def test_heldout_start_scores_every_method_at_step_0(tiny_zoo_dir, tiny_generator_dir, tmp_path):
    import json

    from experiments import heldout_start

    out = tmp_path / "start.json"  # the file the benchmark report reads, so through the command line
    heldout_start.main(["--zoo", str(tiny_zoo_dir), "--generator", str(tiny_generator_dir), "--json", str(out)])
    report = json.loads(out.read_text())
    heldout = [p.stem for p in (tiny_zoo_dir / "concepts").glob("*.safetensors")]
    assert report["concepts"] == 1 and set(report["per_concept"]) <= set(heldout)
    row = next(iter(report["per_concept"].values()))
    assert set(row) == {"base", "mean", "nearest", "prior", "generated_1", "oracle"} and all(
        5 < v < 60 for v in row.values()
    )
    wins = sum(r["generated_1"] > max(r["mean"], r["nearest"]) for r in report["per_concept"].values())
    assert report["generated_beats"]["mean_and_nearest"] == wins  # counted from the rows it reports
    assert report["median_psnr_step0"]["generated_1"] == pytest.approx(row["generated_1"])  # one concept: its own row
    assert report["prior_rank"] == WeightGenerator.from_pretrained(tiny_generator_dir).prior.rank


def test_heldout_start_with_pairs_adds_the_starts_from_pairs_and_their_seconds(
    tiny_zoo_dir, tiny_pair_generator_dir, tiny_generator_dir, tmp_path
):
    import json

    from experiments import heldout_start
    from weightinit.errors import WeightinitError

    out = tmp_path / "start.json"
    args = ["--zoo", str(tiny_zoo_dir), "--generator", str(tiny_pair_generator_dir), "--pairs", "3"]
    heldout_start.main([*args, "--json", str(out)])
    report = json.loads(out.read_text())
    row = next(iter(report["per_concept"].values()))
    assert {"chosen", "pair_generated", "chosen_seconds", "pair_generated_seconds"} <= set(row)
    assert 5 < row["pair_generated"] < 60 and 5 < row["chosen"] < 60 and report["pairs"] == 3
    assert report["seconds"] == {"chosen": row["chosen_seconds"], "pair_generated": row["pair_generated_seconds"]}
    with pytest.raises(WeightinitError, match="has none"):
        heldout_start.measure(str(tiny_zoo_dir), str(tiny_generator_dir), pairs=3)


def test_prior_temperature_scores_each_temperature_leaving_the_concept_out(tiny_zoo_dir):
    from experiments import prior_temperature

    report = prior_temperature.measure(str(tiny_zoo_dir), (0.01, 1))
    assert report["concepts"] == 3
    for row in report["per_concept"].values():
        assert set(row) == {"mean_others", "nearest_other", "t=0.01", "t=1.0"} and all(5 < v < 60 for v in row.values())
    # the best temperature is the one whose median over the rows it reports is highest
    medians = {t: statistics.median(r[f"t={t}"] for r in report["per_concept"].values()) for t in (0.01, 1.0)}
    assert report["median_psnr"]["t=0.01"] == pytest.approx(medians[0.01])
    assert report["best"] == max(medians, key=medians.get)


def test_prior_rank_scores_each_rank_leaving_the_concept_out_then_on_heldout(tiny_zoo_dir, tiny_generator_dir):
    from experiments import prior_rank

    report = prior_rank.measure(str(tiny_zoo_dir), str(tiny_generator_dir), ["1", "full"], limit=60)
    train = report["train"]
    assert train["concepts"] == report["training_concepts"]
    assert train["best"] == max(train["median_psnr_step0"], key=train["median_psnr_step0"].get)
    for row in report["train"]["per_concept"].values():
        assert set(row) == {"1", "full"} and all(5 < v < 60 for v in row.values())
    held = report["heldout"]
    assert held["concepts"] >= 1 and set(held["by_rank"]) == {"1", "full"}
    for row in held["per_concept"].values():
        assert set(row) == {"mean", "nearest", "1", "full"}
    for r, summary in held["by_rank"].items():
        wins = sum(row[r] > max(row["mean"], row["nearest"]) for row in held["per_concept"].values())
        assert summary["beats_mean_and_nearest"] == wins
    assert (
        report["command"]
        == f"python -m experiments.prior_rank --zoo {tiny_zoo_dir} --generator {tiny_generator_dir} --ranks 1,full"
    )


def test_prior_ceiling_scores_the_grid_and_counts_wins_over_both_baselines(tiny_zoo_dir, tiny_generator_dir):
    from experiments import prior_ceiling

    report = prior_ceiling.summarize(prior_ceiling.measure(str(tiny_zoo_dir), str(tiny_generator_dir)))
    row = next(iter(report["per_concept"].values()))
    grid = {prior_ceiling.grid_key(t, a) for t in prior_ceiling.TEMPERATURES for a in prior_ceiling.SCALES}
    siblings = {f"siblings_t{t}" for t in prior_ceiling.SIBLING_TEMPERATURES}
    assert set(row) == grid | siblings | {"mean", "nearest", "max_similarity"}
    assert all(5 < row[k] < 60 for k in grid | siblings)
    assert report["any_grid_point_beats_both_by_kind"]  # the counts by held-out kind
    weights = prior_ceiling.measure(str(tiny_zoo_dir), str(tiny_generator_dir), space="weights")
    row_w = next(iter(weights.values()))
    assert set(row_w) == set(row) and row_w["mean"] == row["mean"] and all(5 < row_w[k] < 60 for k in grid)

    # the counting, on rows made by hand: a win needs to beat the better of the two baselines
    rows = {
        "a": {"mean": 10.0, "nearest": 12.0} | dict.fromkeys(grid, 11.0),
        "b": {"mean": 10.0, "nearest": 9.0} | dict.fromkeys(grid, 11.0),
    }
    rows["a"][prior_ceiling.grid_key(0.03, 1.5)] = 12.5
    s = prior_ceiling.summarize(rows)
    assert s["grid"][prior_ceiling.grid_key(0.03, 1.5)]["beats_mean_and_nearest"] == 2
    assert s["grid"][prior_ceiling.grid_key(0.01, 1.0)]["beats_mean_and_nearest"] == 1
    assert s["best_fixed"] == prior_ceiling.grid_key(0.03, 1.5) and s["any_grid_point_beats_both"] == 2


def test_the_method_lists_follow_the_method_fields():
    from experiments.bench.methods import DISTANCE_METHODS, LORA_METHODS, MERGE_METHODS, METHODS, Method

    assert MERGE_METHODS == (
        "scratch",
        "base",
        "lora",
        "mean",
        "nearest",
        "generated_1",
        "generated_k",
        "chosen_1",
        "oracle",
    )
    assert LORA_METHODS == (
        "scratch",
        "base",
        "lora",
        "mean_lora",
        "nearest_lora",
        "generated_1_lora",
        "generated_k_lora",
        "chosen_1_lora",
        "oracle_lora",
    )
    assert "prior" not in MERGE_METHODS + LORA_METHODS and "prior" in DISTANCE_METHODS  # an ablation, run by name
    assert not {"scratch", "base", "oracle", "oracle_lora"} & DISTANCE_METHODS
    assert [m.name for m in METHODS.values() if m.ddim] == ["generated_k", "generated_k_lora"]
    extra = Method("x_lora", "x", METHODS["mean_lora"].build, trains="lora")
    assert extra.in_mode("lora") and not extra.in_mode("merge") and extra.measures_distance


def test_spread_takes_every_nth_in_order():
    from experiments.bench.runner import spread

    ids = [f"c{i}" for i in range(10)]
    assert spread(ids, 3) == ["c0", "c3", "c6"] and spread(ids, 20) == ids and spread([], 4) == []


def test_an_ablation_named_beside_a_modes_methods_runs_too():
    from experiments.bench.methods import methods_for

    names = [m.name for m in methods_for("lora", ["chosen_1_lora", "fitted_1_lora"])]
    assert names == ["scratch", "chosen_1_lora", "fitted_1_lora"]
    assert "fitted_1_lora" not in [m.name for m in methods_for("lora")]  # not run unless named
