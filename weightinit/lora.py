"""Low-rank adapters for Conv2d, ConvTranspose2d and Linear, with a seeded, shared init.

peft does not wrap ConvTranspose2d, which the pix2pix U-Net's whole decoder is made of, so
weightinit carries its own small LoRA: ``weight + (B @ A).view(weight.shape)``, unscaled
(``weightinit.representation.lora_update``, the one place the update is written).
Every concept of a zoo starts from the same base and the same LoRA initialisation (A from one
seed, B zero): otherwise the factors of different concepts are not comparable and no
generator can learn them.

Saving: the reference pix2pix code saves ``netG.state_dict()`` every epoch and loads it into
the plain network. :func:`set_plain_state_dict` (which ``initialize(mode="lora")`` turns on)
makes each wrapper save its merged weight under the plain keys (``model.1.weight``, not
``model.1.base.weight`` plus ``lora_A``/``lora_B``) and load such a checkpoint back (into the
base, with ``lora_B`` zeroed, so the function is the same); :func:`merged_state_dict` gives the
plain state dict on demand and :func:`merge_lora` folds the factors in for good.

Factor shapes (``r`` = rank), with ``fan = prod(weight.shape[1:])``:
``lora_A``: ``[r, fan]``, ``lora_B``: ``[weight.shape[0], r]``, for every module kind (for
ConvTranspose2d the first weight dimension is the input channels; the factorisation is over the
same flattening).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from weightinit.representation import lora_update

LORA_KINDS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


class LoRAWrapper(nn.Module):
    """A frozen base module plus a trainable low-rank update of its weight."""

    def __init__(self, base: nn.Module, rank: int):
        super().__init__()
        if not isinstance(base, LORA_KINDS):
            raise TypeError(f"LoRA wraps Conv2d, ConvTranspose2d or Linear, not {type(base).__name__}")
        self.base = base
        self.rank = rank
        out_dim = base.weight.shape[0]
        fan = math.prod(base.weight.shape[1:])
        self.lora_A = nn.Parameter(torch.zeros(rank, fan, dtype=base.weight.dtype, device=base.weight.device))
        self.lora_B = nn.Parameter(torch.zeros(out_dim, rank, dtype=base.weight.dtype, device=base.weight.device))
        for p in self.base.parameters():
            p.requires_grad_(False)
        #: save and load under the plain module's keys, with the merged weight (see module docstring)
        self.plain_state_dict = False
        self.register_state_dict_post_hook(_save_plain)
        self.register_load_state_dict_pre_hook(_load_plain)

    def delta(self) -> torch.Tensor:
        return lora_update(self.lora_A, self.lora_B, self.base.weight.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.base.weight + self.delta()
        b = self.base
        if isinstance(b, nn.Conv2d):
            return b._conv_forward(x, weight, b.bias)
        if isinstance(b, nn.ConvTranspose2d):
            return F.conv_transpose2d(x, weight, b.bias, b.stride, b.padding, b.output_padding, b.groups, b.dilation)
        return F.linear(x, weight, b.bias)


def _save_plain(module: LoRAWrapper, state: dict, prefix: str, local_metadata) -> None:
    """State-dict post hook: ``base.*`` + factors -> the plain module's keys, weight merged."""
    if not module.plain_state_dict:
        return
    own = [k for k in list(state) if k.startswith(prefix) and "." not in k[len(prefix) :].removeprefix("base.")]
    values = {k[len(prefix) :]: state.pop(k) for k in own}
    with torch.no_grad():
        values["base.weight"] = (module.base.weight + module.delta()).detach()
    for key, value in values.items():  # the wrapper's keys were the last ones: order is kept
        if not key.startswith("lora_"):
            state[prefix + key.removeprefix("base.")] = value


def _load_plain(
    module: LoRAWrapper, state: dict, prefix: str, local_metadata, strict, missing, unexpected, errors
) -> None:
    """Load-state-dict pre hook: a plain checkpoint goes into the base; ``lora_B`` is zeroed, so the
    wrapped module computes exactly the checkpoint's function."""
    if not module.plain_state_dict or prefix + "weight" not in state:
        return
    for name, _ in module.base.named_parameters(recurse=False):
        if prefix + name in state:
            state[prefix + "base." + name] = state.pop(prefix + name)
    for name, _ in module.base.named_buffers(recurse=False):
        if prefix + name in state:
            state[prefix + "base." + name] = state.pop(prefix + name)
    state.setdefault(prefix + "lora_A", module.lora_A.detach().clone())
    state.setdefault(prefix + "lora_B", torch.zeros_like(module.lora_B))


def set_plain_state_dict(model: nn.Module, enabled: bool = True) -> int:
    """Make every LoRA wrapper in ``model`` save and load under the plain network's keys (merged
    weights), so code that saves ``netG.state_dict()`` and loads it into the plain network keeps
    working. Returns the number of wrappers."""
    wrappers = [m for m in model.modules() if isinstance(m, LoRAWrapper)]
    for w in wrappers:
        w.plain_state_dict = enabled
    return len(wrappers)


def merged_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of ``model`` with every LoRA update merged, under the plain keys; the
    model is not changed (``torch.save(merged_state_dict(netG), "latest_net_G.pth")``)."""
    wrappers = [m for m in model.modules() if isinstance(m, LoRAWrapper)]
    saved = [w.plain_state_dict for w in wrappers]
    try:
        set_plain_state_dict(model, True)
        return {k: v.detach().clone() for k, v in model.state_dict().items()}
    finally:
        for w, flag in zip(wrappers, saved):
            w.plain_state_dict = flag


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def inject_lora(model: nn.Module, targets: list[str], rank: int, *, seed: int = 0) -> dict[str, LoRAWrapper]:
    """Wrap each target module in place; A is initialised from ``seed`` (same for every concept), B zero.

    Returns ``{target_name: wrapper}``. Only the LoRA factors are trainable afterwards.
    """
    gen = torch.Generator().manual_seed(seed)
    wrappers = {}
    for name in targets:
        base = model.get_submodule(name)
        wrapper = LoRAWrapper(base, rank)
        with torch.no_grad():
            # kaiming-uniform bound as for a linear layer of this fan-in, from the shared seed.
            bound = 1 / math.sqrt(wrapper.lora_A.shape[1])
            wrapper.lora_A.copy_(torch.rand(wrapper.lora_A.shape, generator=gen) * 2 * bound - bound)
        _set_submodule(model, name, wrapper)
        wrappers[name] = wrapper
    for p in model.parameters():
        p.requires_grad_(False)
    for w in wrappers.values():
        w.lora_A.requires_grad_(True)
        w.lora_B.requires_grad_(True)
    return wrappers


@torch.no_grad()
def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRA update into its base weight and unwrap, in place; returns ``model``."""
    for name, module in list(model.named_modules()):
        if isinstance(module, LoRAWrapper):
            module.base.weight.add_(module.delta())
            for p in module.base.parameters():
                p.requires_grad_(True)
            _set_submodule(model, name, module.base)
    return model
