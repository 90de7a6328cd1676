"""The fine-tune recipe's warm-ups (the generator's learning rate, discriminator-only steps) and its moving average."""

import json

import pytest
import torch

from experiments.bench.methods import METHODS
from experiments.bench.runner import BenchConfig, BenchRunner
from weightinit import plugins
from weightinit.errors import WeightinitError
from weightinit.recipe import Pix2PixTrainer, RecipeConfig, fine_tune
from weightinit.zoo.weights import ZooWeights

ARCH = "pix2pix:unet_64,ngf=4"


def _model(seed: int = 0):
    torch.manual_seed(seed)
    return plugins.build_model(ARCH)


def _pairs(n: int = 8):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, 64, 64, generator=g) * 2 - 1
    return x, x.flip(1)


def _moved(before: dict, model) -> torch.Tensor:
    return torch.cat([(p.detach() - before[k]).abs().flatten() for k, p in model.named_parameters()])


def test_keys_of_runs_recorded_before_the_warmups_stay_valid():
    assert "lr_warmup_steps" not in RecipeConfig().to_dict() and "d_warmup_steps" not in RecipeConfig().to_dict()
    assert RecipeConfig(lr_warmup_steps=5).to_dict()["lr_warmup_steps"] == 5
    with pytest.raises(ValueError, match="warm-up steps must be >= 0"):
        RecipeConfig(d_warmup_steps=-1)


def test_the_learning_rate_warmup_scales_the_first_update():
    # Adam's first update is lr * g / |g| per weight: with a warm-up over 10 steps it is a tenth of it
    moves = {}
    for warmup in (0, 10):
        model = _model()
        before = {k: p.detach().clone() for k, p in model.named_parameters()}
        fine_tune(model, _pairs(), 1, config=RecipeConfig(batch_size=4, lr_warmup_steps=warmup))
        moves[warmup] = _moved(before, model)
    changed = moves[0] > 1e-7
    assert changed.any()
    ratio = moves[10][changed] / moves[0][changed]
    assert torch.allclose(ratio.median(), torch.tensor(0.1), atol=1e-3)


def test_discriminator_steps_leave_the_generator_alone_and_then_change_its_updates():
    model = _model()
    trainer = Pix2PixTrainer(model, RecipeConfig(batch_size=4))
    g_before = {k: v.clone() for k, v in model.state_dict().items()}
    d_before = {k: v.clone() for k, v in trainer.net_d.state_dict().items()}
    x, y = _pairs(4)
    trainer.step_d(x, y)
    assert all(
        torch.equal(g_before[k], v) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")
    )
    assert any(not torch.equal(d_before[k], v) for k, v in trainer.net_d.state_dict().items())

    results = []
    for warmup in (0, 3):
        m = _model()
        fine_tune(m, _pairs(), 2, config=RecipeConfig(batch_size=4, d_warmup_steps=warmup))
        results.append(torch.cat([p.detach().flatten() for p in m.parameters()]))
    assert not torch.equal(results[0], results[1])
    untouched = _model()
    fine_tune(untouched, _pairs(), 0, config=RecipeConfig(d_warmup_steps=3))  # no steps: no warm-up either
    assert all(torch.equal(a, b) for a, b in zip(untouched.parameters(), _model().parameters()))


def test_the_benchmark_gives_the_start_recipe_to_every_method_but_scratch(tiny_zoo_dir, tmp_path):
    with pytest.raises(WeightinitError, match="not batch_size, seed"):
        BenchConfig(start_recipe={"seed": 1, "batch_size": 2})
    with pytest.raises(WeightinitError, match="not lr"):
        BenchConfig(start_recipe={"lr": 1e-4})
    runner = BenchRunner(
        tiny_zoo_dir,
        tmp_path / "b",
        BenchConfig(start_recipe={"lr_warmup_steps": 7}),
        progress=False,
        log=lambda s: None,
    )
    cid = runner.concepts[0]
    assert runner.recipe(cid, METHODS["scratch"]).lr_warmup_steps == 0
    assert (
        runner.recipe(cid, METHODS["lora"]).lr_warmup_steps == 7
        and runner.recipe(cid, METHODS["base"]).lr_warmup_steps == 7
    )
    assert runner.recipe(cid, METHODS["lora"]).lr == runner.zoo.config.concept_lr  # LoRA-only keeps its own rate


def test_the_start_recipe_experiment_compares_variants_on_training_concepts(tiny_zoo_dir, tiny_generator_dir):
    from experiments.start_recipe import measure, parse_variants

    variants = parse_variants('none={}; d_warmup={"d_warmup_steps": 2}')
    assert variants == {"none": {}, "d_warmup": {"d_warmup_steps": 2}}
    with pytest.raises(TypeError):
        parse_variants('bad={"no_such_field": 1}')
    result = measure(
        tiny_zoo_dir, str(tiny_generator_dir), concepts=2, steps=2, every=1, variants=variants, log=lambda s: None
    )
    train = set(ZooWeights(tiny_zoo_dir).ids("train"))
    assert result["concepts"] and set(result["concepts"]) <= train
    row = result["per_concept"][result["concepts"][0]]
    assert row["none"]["steps"] == [0, 1, 2] and row["none"]["psnr"][0] == row["d_warmup"]["psnr"][0]  # same start
    assert (
        row["none"]["end_minus_best"] <= 0
        and result["summary"]["none"]["median_end_minus_reference"] == 0
        and result["reference"] == "none"
    )
    # extending the result: its variants are kept, not run again; the reference stays first
    log = []
    more = measure(
        tiny_zoo_dir,
        str(tiny_generator_dir),
        concepts=2,
        steps=2,
        every=1,
        variants=parse_variants('ema={"ema_decay": 0.5}'),
        log=log.append,
        earlier=[json.loads(json.dumps(result, sort_keys=True))],
    )  # as read back from its file
    assert (
        list(more["variants"]) == ["none", "d_warmup", "ema"] and len(log) == 2 and all(" ema " in line for line in log)
    )
    assert more["per_concept"][result["concepts"][0]]["none"] == row["none"]
    with pytest.raises(ValueError, match="variant 'ema' is .* in an earlier result"):
        measure(
            tiny_zoo_dir,
            str(tiny_generator_dir),
            concepts=2,
            steps=2,
            every=1,
            variants={"ema": {"ema_decay": 0.7}},
            log=log.append,
            earlier=[more],
        )
    with pytest.raises(ValueError, match="write to another file"):
        measure(tiny_zoo_dir, str(tiny_generator_dir), concepts=2, steps=3, every=1, variants={}, earlier=[result])


def test_the_moving_average_is_what_the_caller_gets_and_training_follows_the_plain_run():
    x, y = _pairs()
    plain = _model()
    trajectory = [{k: p.detach().clone() for k, p in plain.named_parameters()}]
    fine_tune(
        plain,
        (x, y),
        5,
        config=RecipeConfig(batch_size=4),
        on_step=lambda _: trajectory.append({k: p.detach().clone() for k, p in plain.named_parameters()}),
    )
    expected = dict(trajectory[0])
    for n, weights in enumerate(trajectory[1:]):  # the ramped decay of RecipeConfig.ema_decay
        decay = min(0.9, (1 + n) / (10 + n))
        expected = {k: decay * expected[k] + (1 - decay) * w for k, w in weights.items()}
    averaged = _model()
    fine_tune(averaged, (x, y), 5, config=RecipeConfig(batch_size=4, ema_decay=0.9))
    for k, p in averaged.named_parameters():
        assert torch.allclose(p, expected[k], atol=1e-6), k
    assert not torch.allclose(_moved(trajectory[-1], averaged), torch.zeros(1))  # not the last trained weights
    assert RecipeConfig(ema_decay=0.9).to_dict()["ema_decay"] == 0.9 and "ema_decay" not in RecipeConfig().to_dict()
    with pytest.raises(ValueError, match="ema_decay must be in"):
        RecipeConfig(ema_decay=1.0)


def test_the_moving_average_of_lora_only_training_moves_only_the_lora_factors():
    from torch import nn

    from weightinit.lora import inject_lora

    model = _model()
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)][:2]
    wrappers = inject_lora(model, convs, rank=2)
    params = [p for w in wrappers.values() for n, p in w.named_parameters() if "lora" in n]
    trained = {id(p) for p in params}
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    fine_tune(model, _pairs(), 3, config=RecipeConfig(batch_size=4, ema_decay=0.5), params=params)
    moved = {k for k, p in model.named_parameters() if not torch.equal(p, before[k])}
    assert moved and moved <= {k for k, p in model.named_parameters() if id(p) in trained}
