"""``weightinit demo`` on the tiny generator: grid, plot and summary with its three runs."""

import json


def test_demo_writes_grid_plot_and_summary(tiny_generator_dir, tmp_path):
    from weightinit.demo import run_demo

    out = tmp_path / "demo"
    summary = run_demo(
        str(tiny_generator_dir), out=out, steps=4, eval_every=2, pool_size=16, test_pairs=4, progress=False
    )
    assert (out / "grid.png").is_file() and (out / "psnr_vs_seconds.png").is_file()
    data = json.loads((out / "summary.json").read_text())
    assert set(data["runs"]) == {"scratch", "generated", "generated, no average"} == set(summary["runs"])
    assert data["runs"]["generated"]["generation_seconds"] > 0
    # the recommended recipe for a good start, and the same start without it for comparison
    assert data["runs"]["generated"]["ema_decay"] == 0.99 and data["runs"]["generated, no average"]["ema_decay"] == 0.0
    assert data["runs"]["generated"]["step0"]["psnr"] == data["runs"]["generated, no average"]["step0"]["psnr"]
    assert [p["step"] for p in data["runs"]["scratch"]["curve"]] == [0, 2, 4]
