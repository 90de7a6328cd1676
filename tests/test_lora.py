"""LoRA wrappers: exact merge, shared seeded init, ConvTranspose2d covered."""

from __future__ import annotations

import torch
from torch import nn

from weightinit.lora import LoRAWrapper, inject_lora, merge_lora


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(4, 2, 4, 2, 1),
        nn.Flatten(),
        nn.Linear(2 * 16 * 16, 3),
    )


def test_fresh_lora_changes_nothing_and_init_is_shared_by_seed():
    x = torch.randn(2, 3, 8, 8)
    m1, m2 = model(), model()
    ref = m1(x)
    w1 = inject_lora(m1, ["0", "2", "4"], rank=2, seed=7)
    w2 = inject_lora(m2, ["0", "2", "4"], rank=2, seed=7)
    assert torch.allclose(m1(x), ref)
    for name in w1:
        assert torch.equal(w1[name].lora_A, w2[name].lora_A)
        assert not w1[name].lora_B.any()
    trainable = [n for n, p in m1.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_merge_equals_the_wrapped_forward_for_every_module_kind():
    x = torch.randn(2, 3, 8, 8)
    m = model()
    wrappers = inject_lora(m, ["0", "2", "4"], rank=3, seed=1)
    with torch.no_grad():
        for w in wrappers.values():
            w.lora_B.normal_()
    out = m(x)
    merge_lora(m)
    assert not any(isinstance(mod, LoRAWrapper) for mod in m.modules())
    assert torch.allclose(m(x), out, atol=1e-5)
    assert sorted(k for k in m.state_dict()) == sorted(model().state_dict())
