"""What training a zoo on small crops costs at a larger size (the measurement, on a tiny zoo)."""

from experiments.crop_size import measure, pick_concepts
from weightinit.zoo.weights import ZooWeights


def test_pick_concepts_takes_one_per_family_first(tiny_zoo_dir):
    zoo = ZooWeights(tiny_zoo_dir)
    picked = pick_concepts(zoo, 2)
    train = zoo.ids("train")
    assert len(picked) == 2 and set(picked) <= set(train) and picked[0] == train[0]
    families = [zoo.record(c).family for c in picked]
    assert len(set(families)) == len(families) or len({zoo.record(c).family for c in train}) < 2


def test_measure_scores_zoo_weights_and_a_full_size_fine_tune_at_the_larger_size(tiny_zoo_dir):
    lines = []
    result = measure(tiny_zoo_dir, size=192, concepts=1, test_pairs=2, log=lines.append)
    ((cid, row),) = result["per_concept"].items()
    assert (
        result["summary"]["size"] == 192
        and result["summary"]["zoo_crop_size"] == ZooWeights(tiny_zoo_dir).config.image_size
    )
    assert row["cost_db"] == row["full_size"] - row["zoo_crops"] and row["full_size_seconds"] > 0
    assert all(isinstance(row[k], float) for k in ("base", "zoo_crops", "full_size"))
    assert len(lines) == 1 and cid in lines[0] and "at 192 px" in lines[0]


def test_a_rerun_keeps_the_concepts_measured_and_refuses_other_settings(tiny_zoo_dir, tmp_path, capsys):
    import json

    import pytest

    from experiments.crop_size import main

    out = tmp_path / "crop.json"
    common = ["--zoo", str(tiny_zoo_dir), "--size", "128", "--test-pairs", "2", "--json", str(out)]
    main([*common, "--concepts", "1"])
    first = json.loads(out.read_text())
    assert first["summary"]["concepts"] == first["summary"]["requested"] == 1 and "--concepts 1" in first["command"]

    main([*common, "--concepts", "2"])
    second = json.loads(out.read_text())
    ((kept, row),) = first["per_concept"].items()
    assert second["per_concept"][kept] == row and len(second["per_concept"]) == 2
    assert "kept from the earlier run" in capsys.readouterr().out and "--concepts 2" in second["command"]

    with pytest.raises(SystemExit, match="other settings \\(--size\\)"):
        main([*common[:2], "--size", "192", *common[4:], "--concepts", "3"])
    assert json.loads(out.read_text()) == second


def test_every_save_of_a_rerun_holds_the_rows_it_keeps(tiny_zoo_dir):
    zoo = ZooWeights(tiny_zoo_dir)
    first, second = pick_concepts(zoo, 2)
    kept = {"base": 1.0, "zoo_crops": 2.0, "full_size": 3.0, "cost_db": 1.0}
    saves = []
    measure(
        tiny_zoo_dir,
        size=128,
        concepts=2,
        test_pairs=2,
        log=lambda _: None,
        done={second: kept},
        on_progress=saves.append,
    )
    # the one concept measured here comes first in pick order; the save after it must not drop the kept one
    assert len(saves) == 1 and list(saves[0]["per_concept"]) == [first, second]
    assert saves[0]["per_concept"][second] == kept and saves[0]["summary"]["concepts"] == 2
