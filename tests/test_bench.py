"""The benchmark: every method builds a model, a tiny run resumes, the arithmetic, the report."""

import json

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


def test_every_method_builds_a_model(tiny_zoo_dir, tiny_generator_dir):
    from experiments.bench.methods import METHODS, BenchContext

    ctx = BenchContext(tiny_zoo_dir, str(tiny_generator_dir), ddim_steps=2)
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


def test_tiny_bench_runs_resumes_and_reports(tiny_zoo_dir, tiny_generator_dir, tmp_path):
    from typer.testing import CliRunner

    from experiments.bench.cli import app
    from experiments.bench.report import write_report
    from experiments.bench.runner import BenchRunner

    out = tmp_path / "bench"
    cfg = BenchConfig(
        scratch_steps=4, cap_fraction=0.5, min_fraction=0.0, eval_every=2, trivial_margin_db=-100.0, ddim_steps=2
    )
    runner = BenchRunner(tiny_zoo_dir, out, cfg, generator=str(tiny_generator_dir), progress=False, log=lambda s: None)
    results = runner.run()
    methods = ["scratch", "base", "lora", "mean", "nearest", "generated_1", "generated_k", "chosen_1", "oracle"]
    assert list(results["summary"]["median_speedup"]) == methods
    cid = next(iter(results["runs"]))
    choice = results["runs"][cid]["chosen_1"]["info"]["choice"]
    assert choice["pairs"] == 8 and choice["pairs_l1"] <= choice["generated_l1"]
    assert set(results["summary"]["targets"]) == {"generated_1", "chosen_1"}
    files = sorted((out / "runs").rglob("*.json"))
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    BenchRunner(tiny_zoo_dir, out, cfg, generator=str(tiny_generator_dir), progress=False, log=lambda s: None).run()
    assert {p: p.stat().st_mtime_ns for p in files if p.name != "concept.json"} == {
        p: t for p, t in mtimes.items() if p.name != "concept.json"
    }

    md = tmp_path / "docs" / "BENCHMARKS.md"
    write_report(out, md)
    text = md.read_text()
    assert (
        "**Machine:**" in text
        and "all weights on 1 concept(s), LoRA factors only on 0" in text
        and "threads" in text
        and "torch" in text
        and "**Seeds:**" in text
    )
    assert (md.parent / "bench" / "psnr_vs_seconds.png").is_file() and (md.parent / "bench" / "speedups.png").is_file()
    assert json.loads((out / "results.json").read_text())["summary"]["median_speedup"]["scratch"] == pytest.approx(1.0)

    # the CLI resumes from the same runs (nothing recomputed) and writes --json
    res = CliRunner().invoke(
        app,
        [
            "run",
            "--zoo",
            str(tiny_zoo_dir),
            "--generator",
            str(tiny_generator_dir),
            "--out",
            str(out),
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
            "--json",
            str(tmp_path / "b.json"),
            "--methods",
            "base,generated_1",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "b.json").read_text())
    assert "generated_1" in data["summary"]["median_speedup"]
    assert (out / "runs" / files[0].parent.name / "generated_1.json").stat().st_mtime_ns == mtimes[
        out / "runs" / files[0].parent.name / "generated_1.json"
    ]

    # A zoo that gains or changes training concepts redoes every run but scratch's.
    from experiments.bench.methods import METHODS

    concept = files[0].parent.name
    before = {m: runner.run_key(concept, METHODS[m], 20.0) for m in ("scratch", "mean", "nearest", "generated_1")}
    runner.__dict__["zoo_train_digest"] = "0" * 16
    after = {m: runner.run_key(concept, METHODS[m], 20.0) for m in before}
    assert before["scratch"] == after["scratch"] and all(
        before[m] != after[m] for m in ("mean", "nearest", "generated_1")
    )

    # Ablations beside the runs go into the report; a planned concept without runs makes it say "partial".
    from weightinit.errors import WeightinitError
    from weightinit.fileio import atomic_write_json

    scores = {concept: {"psnr_step0": 20.0, "rel_l2_to_oracle": 0.5}}
    atomic_write_json(out / "ablations" / "ablations.json", {
        "block128": {"concepts": scores, "median_psnr_step0": 19.5, "median_rel_l2_to_oracle": 0.5},
        "steps1": {"concepts": scores, "median_psnr_step0": 20.0, "median_rel_l2_to_oracle": 0.25}})  # fmt: skip
    meta = json.loads((out / "meta.json").read_text())
    atomic_write_json(out / "meta.json", meta | {"concepts": meta["concepts"] + ["not-yet-run"]})
    write_report(out, md)
    text = md.read_text()
    assert "**Partial:**" in text and "`not-yet-run`" in text and "## Median speedup by held-out kind" in text
    assert "| block128 | block size 128 (main: 256) | 1 | 19.50 | -0.50 | 0.500 |" in text
    assert text.index("| steps1 |") < text.index("| block128 |")  # the main generator first, whatever the file's order
    before = md.read_text()
    with pytest.raises(WeightinitError, match="no ablation results"):
        write_report(out, md, ablations=tmp_path / "missing.json")
    assert md.read_text() == before

    # Step-0 files are tabulated per direction; a missing one is one error and nothing written.
    med = {m: 15.0 for m in ("base", "mean", "nearest", "prior", "generated_1", "oracle")}
    part = {
        "concepts": 2,
        "median_psnr_step0": med | {"generated_1": 17.25},
        "generated_beats": {"mean_and_nearest": 1},
    }
    atomic_write_json(tmp_path / "step0.json", {"generator": "gen", "concepts": 3, "text_conditioning": "directional",
                                                "median_psnr_step0": med, "generated_beats": {"mean_and_nearest": 2}, "prior_rank": 7,
                                                "by_direction": {"forward": part, "reverse": part | {"concepts": 1}}})  # fmt: skip
    with pytest.raises(WeightinitError, match="no measurement files"):
        write_report(out, md, step0=[tmp_path / "absent.json"])
    assert md.read_text() == before
    write_report(out, md, step0=[tmp_path / "step0.json"])
    text = md.read_text()
    assert "## Step 0 on every held-out concept, by direction" in text
    assert (
        "| ? concepts | directional | whole | own blend | 7 | forward | 2 | 15.00 | 15.00 | 15.00 | 15.00 | 17.25 | 15.00 | 1/2 |"
        in text
    )
    assert "| own blend | 7 | reverse | 1 |" in text and "| own blend | 7 | all | 3 |" in text

    # CycleGAN direction results are tabulated per generator.
    row = {
        "text": "photo to sepia",
        "netG_B_text": "sepia to photo",
        "forward_l1": {"netG_A": 0.1, "netG_B": 0.3},
        "reverse_l1": {"netG_A": 0.35, "netG_B": 0.25},
        "both_directions_right": True,
        "netG_B_draws_on": ["sepia-light-reverse"],
    }
    atomic_write_json(tmp_path / "dirs.json", {"generators": {"gen": [row, row | {"both_directions_right": False}]}})
    write_report(out, md, directions=tmp_path / "dirs.json")
    text = md.read_text()
    assert (
        "| `gen` | photo to sepia | sepia to photo | 0.100 / 0.300 | 0.250 / 0.350 | yes | sepia-light-reverse |"
        in text
    )
    assert "| **no** |" in text

    # The README's results table is rewritten between its markers, and only there.
    from experiments.bench.report import README_END, README_START

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\nold\n{README_END}\noutro\n")
    results = write_report(out, md, readme=readme)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("\noutro\n") and "old" not in text
    generated = results["summary"]["methods"]["generated_1"]
    assert f"| generated from text (1 step) | {generated['median_speedup']:.1f}x |" in text, text
    readme.write_text("no markers\n")
    with pytest.raises(WeightinitError, match="has no <!-- results:start -->"):
        write_report(out, md, readme=readme)
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
    assert report["generated_beats"]["mean_and_nearest"] in (0, 1)
    assert report["prior_rank"] == WeightGenerator.from_pretrained(tiny_generator_dir).prior.rank


def test_prior_temperature_scores_each_temperature_leaving_the_concept_out(tiny_zoo_dir):
    from experiments import prior_temperature

    report = prior_temperature.measure(str(tiny_zoo_dir), (0.01, 1))
    assert report["concepts"] == 3 and report["best"] in (0.01, 1.0)
    for row in report["per_concept"].values():
        assert set(row) == {"mean_others", "nearest_other", "t=0.01", "t=1.0"} and all(5 < v < 60 for v in row.values())


def test_prior_rank_scores_each_rank_leaving_the_concept_out_then_on_heldout(tiny_zoo_dir, tiny_generator_dir):
    from experiments import prior_rank

    report = prior_rank.measure(str(tiny_zoo_dir), str(tiny_generator_dir), ["1", "full"], limit=60)
    assert report["train"]["concepts"] == report["training_concepts"] and report["train"]["best"] in ("1", "full")
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
    assert set(row) == grid | {"mean", "nearest", "max_similarity"} and all(5 < row[k] < 60 for k in grid)

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
    assert LORA_METHODS == ("scratch", "base", "lora", "mean_lora", "nearest_lora", "generated_1_lora", "generated_k_lora",
                            "chosen_1_lora", "oracle_lora")  # fmt: skip
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
