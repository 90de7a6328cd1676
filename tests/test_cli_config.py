"""The config commands' options default to their dataclass's, and ``--config FILE`` plus explicit options."""

from __future__ import annotations

import dataclasses
import inspect
import json

import pytest
from typer.testing import CliRunner

from experiments.bench.runner import QUICK, BenchConfig
from weightinit.cli.app import app
from weightinit.errors import WeightinitError
from weightinit.generator.training import GeneratorTrainingConfig
from weightinit.zoo.manifest import ZooConfig


def _commands():
    from experiments.bench.cli import bench
    from weightinit.cli.train import train
    from weightinit.cli.zoo import build

    #: command, its config dataclass, fields it must expose as options
    return [
        (build, ZooConfig, {"arch", "lora_rank", "concept_steps", "image_size", "batch_size", "pairs", "editor"}),
        (
            train,
            GeneratorTrainingConfig,
            {"denoiser", "denoiser_kwargs", "steps", "prior_temperature", "mixed_precision"},
        ),
        (bench, BenchConfig, {"scratch_steps", "tolerance_db", "trivial_margin_db", "lora_lr", "seed"}),
    ]


@pytest.mark.parametrize("command, cls, expected", _commands(), ids=["zoo build", "train", "bench"])
def test_cli_defaults_are_the_config_defaults(command, cls, expected):
    parameters = inspect.signature(command).parameters
    reference = dataclasses.asdict(cls())  # every field, those a to_dict leaves out at their defaults too
    shared = {name: p.default for name, p in parameters.items() if name in reference}
    assert expected <= shared.keys()
    assert {k: v for k, v in shared.items() if v != reference[k]} == {}
    assert "config_file" in parameters and "ctx" in parameters
    if "device" in parameters:
        assert parameters["device"].default == "auto"


class _Captured(Exception):
    def __init__(self, config):
        self.config = config


def _capture(*args, **kwargs):
    raise _Captured(next(a for a in (*args, *kwargs.values()) if dataclasses.is_dataclass(a)))


def _invoke(args) -> object:
    if args[0] == "bench":  # the benchmark's command line is outside the package
        from experiments.bench.cli import app as bench_app

        result = CliRunner().invoke(bench_app, ["run", *args[1:]])
    else:
        result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, _Captured), result.output
    return result.exception.config


def test_zoo_build_config_file_then_explicit_options(tmp_path, monkeypatch):
    monkeypatch.setattr("weightinit.zoo.build.ZooBuilder", _capture)
    monkeypatch.setattr("weightinit.cli.zoo.load_photos", lambda images, size: None)
    path = tmp_path / "zoo.json"
    path.write_text(json.dumps({"concept_steps": 5, "lora_rank": 3, "storage_dtype": "float32", "shared_data": False}))
    args = ["zoo", "build", "--out", str(tmp_path / "zoo"), "--config", str(path), "--rank", "2", "--limit", "1"]
    config = _invoke([*args, "--device", "cpu", "--mixed-precision", "no"])
    assert config == ZooConfig(concept_steps=5, lora_rank=2, storage_dtype="float32", shared_data=False)
    config = _invoke([*args, "--device", "cpu", "--shared-data", "--lora-rank", "4"])
    assert config == ZooConfig(concept_steps=5, lora_rank=4, storage_dtype="float32", shared_data=True)


def test_train_config_file_then_explicit_options(tmp_path, monkeypatch):
    monkeypatch.setattr("weightinit.generator.training.train_generator", _capture)
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"steps": 9, "warmup_steps": 3, "prior_temperature": 0.05, "denoiser_kwargs": {"a": 1}}))
    base = ["train", "--zoo", str(tmp_path), "--out", str(tmp_path / "gen"), "--config", str(path)]
    config = _invoke([*base, "--prior-temperature", "none", "--batch-size", "4"])
    assert config == GeneratorTrainingConfig(
        steps=9, warmup_steps=3, prior_temperature=None, denoiser_kwargs={"a": 1}, batch_size=4
    )
    config = _invoke([*base, "--denoiser-options", '{"hidden_dim": 32}', "--steps", "2"])
    assert config == GeneratorTrainingConfig(
        steps=2, warmup_steps=3, prior_temperature=0.05, denoiser_kwargs={"hidden_dim": 32}
    )
    # without a file, every field at the dataclass default (not from_dict's "pooled" for old runs)
    config = _invoke(["train", "--zoo", str(tmp_path), "--out", str(tmp_path / "gen")])
    assert config == GeneratorTrainingConfig()


def test_bench_config_file_quick_and_explicit_options(tmp_path, monkeypatch):
    monkeypatch.setattr("experiments.bench.runner.BenchRunner", _capture)
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"scratch_steps": 40, "fractions": [0.5, 1.0]}))
    base = ["bench", "--zoo", str(tmp_path), "--out", str(tmp_path / "out"), "--config", str(path)]
    config = _invoke([*base, "--tolerance", "1.5", "--trivial-margin-db", "2"])
    assert config == BenchConfig(scratch_steps=40, fractions=(0.5, 1.0), tolerance_db=1.5, trivial_margin_db=2.0)
    config = _invoke([*base, "--quick", "--eval-every", "10"])
    assert config == BenchConfig(**{**QUICK, "scratch_steps": 40, "fractions": (0.5, 1.0), "eval_every": 10})


@pytest.mark.parametrize("command", [["zoo", "build"], ["train", "--zoo", "z", "--out", "o"], ["bench"]])
def test_config_file_with_unknown_fields_is_one_clear_error(tmp_path, command):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"nope": 1, "steps_typo": 2}))
    if command == ["bench"]:
        from experiments.bench.cli import app as bench_app

        result = CliRunner().invoke(bench_app, ["run", "--config", str(path)])
    else:
        result = CliRunner().invoke(app, [*command, "--config", str(path)])
    assert result.exit_code == 1, result.output  # the app prints a WeightinitError's message, no traceback
    message = " ".join(result.output.split())
    assert "unknown" in message and "nope, steps_typo" in message, result.output


def test_config_file_errors_name_the_file(tmp_path):
    from weightinit.cli.config import read_config_file

    path = tmp_path / "c.json"
    for text in ('{"nope": 1}', "[1]", "{not json"):
        path.write_text(text)
        with pytest.raises(WeightinitError, match="--config"):
            read_config_file(BenchConfig, path)


@pytest.mark.parametrize("cls_name", ["ZooConfig", "GeneratorTrainingConfig", "RecipeConfig"])
def test_every_knob_carries_its_help_in_its_field(cls_name):
    from weightinit.recipe import RecipeConfig

    cls = {"ZooConfig": ZooConfig, "GeneratorTrainingConfig": GeneratorTrainingConfig, "RecipeConfig": RecipeConfig}[
        cls_name
    ]
    missing = [f.name for f in dataclasses.fields(cls) if not str(f.metadata.get("help", "")).strip()]
    assert not missing, f"{cls_name} fields without metadata help: {missing}"


@pytest.mark.parametrize("command_name", ["zoo build", "train"])
def test_the_options_of_config_fields_take_their_help_from_the_field(command_name):
    """The help of a config field's option is the field's metadata help, written once."""
    from typer.utils import get_params_from_function

    from weightinit.cli.config import field_help
    from weightinit.cli.train import train
    from weightinit.cli.zoo import build

    command, cls = {"zoo build": (build, ZooConfig), "train": (train, GeneratorTrainingConfig)}[command_name]

    params = get_params_from_function(command)
    fields = {f.name for f in dataclasses.fields(cls)}
    checked = 0
    for name, meta in params.items():
        if name in fields and name != "mixed_precision":  # the runtime option shared with zoo build
            assert meta.default.help == field_help(cls, name), name
            checked += 1
    assert checked >= 10


def test_config_options_refuse_an_unknown_field():
    from weightinit.cli.config import ConfigOptions

    with pytest.raises(TypeError, match="no field"):
        ConfigOptions(ZooConfig, lora_rnak={"decls": ("--rank",)})
