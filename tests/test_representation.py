"""LoRA factors and full deltas: one formula, which the wrappers, the zoo and the generator share."""

from __future__ import annotations

import torch

from weightinit import plugins, representation
from weightinit.lora import inject_lora, merge_lora
from weightinit.zoo.weights import ZooWeights

ARCH = "pix2pix:unet_64,ngf=4"


def built(seed: int = 0):
    torch.manual_seed(seed)
    return plugins.build_model(ARCH)


def test_lora_targets_are_the_generated_convolutions_in_canonical_order():
    model, adapter = built(), plugins.get_adapter("pix2pix")
    targets = adapter.lora_targets(model)
    canonical = [c for _, c in adapter.canonical_names(model)]
    names = adapter.native_to_canonical(model)
    weights = [names[f"{t}.weight"] for t in targets]
    assert weights == [c for c in canonical if c in weights]  # canonical order
    assert len(targets) == sum(isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) for m in model.modules())


def test_factors_mean_what_the_wrappers_compute_and_fill_lora_restores_them():
    model, adapter = built(), plugins.get_adapter("pix2pix")
    names = adapter.native_to_canonical(model)
    base = {k: v.detach().clone() for k, v in adapter.to_canonical(model, model.state_dict()).items()}
    wrappers = inject_lora(model, adapter.lora_targets(model), 2, seed=3)
    with torch.no_grad():
        for w in wrappers.values():
            w.lora_B.normal_(std=0.1)
    factors = {}
    for t, w in wrappers.items():
        factors[names[f"{t}.weight"] + representation.LORA_A] = w.lora_A.detach().clone()
        factors[names[f"{t}.weight"] + representation.LORA_B] = w.lora_B.detach().clone()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    model.eval()
    with torch.no_grad():
        wrapped = model(x)

    other = built()
    fill = inject_lora(other, adapter.lora_targets(other), 2, seed=99)  # another init, overwritten
    representation.fill_lora(fill, names, factors)
    other.eval()
    with torch.no_grad():
        assert torch.equal(other(x), wrapped)

    full = representation.full_weights(factors, base)
    merged = merge_lora(model)
    got = adapter.to_canonical(merged, merged.state_dict())
    assert list(full) == list(base)
    for k in base:
        assert torch.allclose(got[k], full[k], atol=1e-6), k


def test_a_full_delta_is_added_and_what_is_not_stored_is_zero():
    base = {"a.weight": torch.ones(2, 3), "a.bias": torch.ones(2)}
    delta = representation.delta({"a.weight": torch.full((2, 3), 0.5, dtype=torch.float16)}, base)
    assert delta["a.weight"].dtype == torch.float32 and torch.equal(delta["a.weight"], torch.full((2, 3), 0.5))
    assert torch.equal(delta["a.bias"], torch.zeros(2))
    assert (
        representation.kind_of(["a.weight"]) == "delta"
        and representation.kind_of(["a.weight.lora_A", "a.weight.lora_B"]) == "lora"
    )


def test_the_zoo_and_the_generator_agree_on_a_concept_s_weights(tiny_zoo_dir, tiny_generator_dir):
    from weightinit.initialization import load_generator

    zoo, gen = ZooWeights(tiny_zoo_dir), load_generator(tiny_generator_dir)
    tensors = zoo.concept(zoo.ids("train")[0])
    full = gen.full_weights(tensors)
    delta = zoo.delta(tensors)
    assert gen.representation == zoo.config.representation == "lora"
    assert any(bool(d.abs().sum() > 0) for d in delta.values())
    for k, d in delta.items():
        assert torch.equal(full[k], zoo.base_canonical[k] + d), k
