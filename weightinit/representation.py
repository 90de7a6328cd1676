"""What a zoo stores and a generator generates for one concept, and the full weights it stands for.

Two representations (``ZooConfig.representation``), told apart by their tensor names:

* ``"lora"``: per LoRA target, ``<canonical weight>.lora_A`` (``[rank, fan]``) and ``.lora_B``
  (``[out, rank]``) with ``fan = prod(weight.shape[1:])``. The weight's delta is
  ``(B @ A).view(weight.shape)``, unscaled: the zoo trains the factors at scale 1, so no scale
  has to travel with them.
* ``"delta"``: the full difference to the base of each generated parameter, under its canonical name.

:func:`delta` turns either into full canonical differences, :func:`full_weights` adds the base,
and :func:`fill_lora` copies factors into the wrappers :func:`weightinit.lora.inject_lora` made.
Which modules get LoRA is the adapter's :meth:`~weightinit.adapters.base.Adapter.lora_targets`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch

REPRESENTATIONS = ("lora", "delta")
LORA_A, LORA_B = ".lora_A", ".lora_B"


def kind_of(names: Iterable[str]) -> str:
    """``"lora"`` if the tensor names are LoRA factors, else ``"delta"``."""
    return "lora" if any(n.endswith(LORA_A) for n in names) else "delta"


def lora_update(lora_A: torch.Tensor, lora_B: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """The weight update of one LoRA target: ``(B @ A).view(shape)``, in the factors' dtype."""
    return (lora_B @ lora_A).view(tuple(shape))


def delta(factors: Mapping[str, torch.Tensor], base: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Float32 differences to ``base`` (canonical name -> base weight; only its shape and device
    are read) for every name in ``base``, in its order: zeros where ``factors`` store nothing."""
    out = {}
    for name, weight in base.items():
        if name + LORA_A in factors:
            out[name] = lora_update(factors[name + LORA_A].float(), factors[name + LORA_B].float(), weight.shape)
        elif name in factors:
            out[name] = factors[name].float().view(weight.shape)
        else:
            out[name] = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
    return out


def full_weights(factors: Mapping[str, torch.Tensor], base: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``base`` plus :func:`delta`, in float32, for every name in ``base``."""
    return {name: base[name].float() + d for name, d in delta(factors, base).items()}


@torch.no_grad()
def fill_lora(
    wrappers: Mapping[str, torch.nn.Module], names: Mapping[str, str], factors: Mapping[str, torch.Tensor]
) -> None:
    """Copy each wrapper's factors in (cast to its dtype and device): ``wrappers`` as
    ``inject_lora`` returns them, ``names`` the adapter's native -> canonical mapping."""
    for target, w in wrappers.items():
        canonical = names[f"{target}.weight"]
        w.lora_A.copy_(factors[canonical + LORA_A].to(w.lora_A))
        w.lora_B.copy_(factors[canonical + LORA_B].to(w.lora_B))
