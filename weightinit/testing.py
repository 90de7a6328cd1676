"""The adapter conformance suite, shipped for plugin authors.

An adapter is only useful if the same architecture always maps onto the same layout, whatever
wraps the model, and if weights go from native keys to canonical names and back unchanged.
:func:`check_adapter` asserts all of that for one adapter and one model factory; run it in your
plugin's tests::

    from weightinit.testing import check_adapter

    def test_my_adapter_conforms():
        check_adapter(MyAdapter(), lambda: MyNet(width=8), arch="mine:tiny,width=8")

or parametrize over arch strings of registered adapters with
:func:`adapter_conformance_cases`. Failures are ``AssertionError``s that say what broke.
The suite never runs a forward pass: ``torch.compile`` is lazy, so wrapping is cheap.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from weightinit.adapters.base import Adapter, ArchSpec, unwrap_model
from weightinit.layout import BlockLayout
from weightinit.plugins import get_adapter


class DistributedDataParallel(nn.Module):
    """Stands in for ``torch.nn.parallel.DistributedDataParallel`` without a process group:
    same class name, the model at ``.module``, state-dict keys prefixed ``module.``."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


def _compiled(model: nn.Module) -> nn.Module:
    """``torch.compile(model)`` (lazy: nothing compiles until a forward pass)."""
    compiled = torch.compile(model)
    assert getattr(compiled, "_orig_mod", None) is model, "torch.compile did not wrap the model in `_orig_mod`"
    return compiled


def _same_layout(adapter: Adapter, expected: BlockLayout, model: nn.Module, what: str) -> None:
    actual = adapter.layout(model)
    diff = expected.first_difference(actual)
    assert diff is None, (
        f"adapter {adapter.name!r}: layout of {what} differs from the plain model's "
        f"({actual.fingerprint} vs {expected.fingerprint}); first difference: {diff}"
    )


def check_layout_is_deterministic(adapter: Adapter, model_factory: Callable[[], nn.Module]) -> BlockLayout:
    """Two constructions of the same architecture give the same layout (same fingerprint)."""
    first, second = model_factory(), model_factory()
    assert adapter.matches(first), f"adapter {adapter.name!r} does not match {type(first).__name__}"
    layout = adapter.layout(first)
    assert len(layout) > 0, f"adapter {adapter.name!r} generates no tensors for {type(first).__name__}"
    _same_layout(adapter, layout, second, "a second construction")
    assert adapter.canonical_names(first) == adapter.canonical_names(first), (
        f"adapter {adapter.name!r}: canonical_names gives a different answer on a second call"
    )
    return layout


def check_wrappers(adapter: Adapter, model: nn.Module) -> None:
    """The layout and the canonical tensors are the same under DDP and ``torch.compile``."""
    layout = adapter.layout(model)
    expected = adapter.to_canonical(model, model.state_dict())
    for what, wrapped in (
        ("a DistributedDataParallel wrapper", DistributedDataParallel(model)),
        ("torch.compile", _compiled(model)),
        ("torch.compile inside DistributedDataParallel", DistributedDataParallel(_compiled(model))),
    ):
        assert unwrap_model(wrapped) is model, f"unwrap_model does not see through {what}"
        assert adapter.matches(unwrap_model(wrapped)), f"adapter {adapter.name!r} does not match the model under {what}"
        _same_layout(adapter, layout, wrapped, what)
        via_wrapper = adapter.to_canonical(wrapped, wrapped.state_dict())
        assert list(via_wrapper) == list(expected), (
            f"adapter {adapter.name!r}: to_canonical of the state dict under {what} gives other names"
        )
        for name, tensor in via_wrapper.items():
            assert tensor is expected[name] or torch.equal(tensor, expected[name]), (
                f"adapter {adapter.name!r}: {name} differs under {what}"
            )


def check_names(adapter: Adapter, model: nn.Module) -> None:
    """Every generated name is a real, floating-point parameter, once; no buffer is generated;
    canonical names are unique."""
    pairs = adapter.canonical_names(model)
    natives = [n for n, _ in pairs]
    canonicals = [c for _, c in pairs]
    params = dict(model.named_parameters())
    buffers = {name for name, _ in model.named_buffers()}
    not_params = [n for n in natives if n not in params]
    assert not [n for n in natives if n in buffers], (
        f"adapter {adapter.name!r} generates buffers: {[n for n in natives if n in buffers][:5]}"
    )
    assert not not_params, f"adapter {adapter.name!r} names tensors that are not parameters: {not_params[:5]}"
    repeated = sorted({n for n in natives if natives.count(n) > 1})
    assert not repeated, f"adapter {adapter.name!r} generates a parameter twice: {repeated[:5]}"
    repeated = sorted({c for c in canonicals if canonicals.count(c) > 1})
    assert not repeated, f"adapter {adapter.name!r} gives two parameters the same canonical name: {repeated[:5]}"
    not_float = [n for n in natives if not params[n].is_floating_point()]
    assert not not_float, f"adapter {adapter.name!r} generates non-floating-point parameters: {not_float[:5]}"


def check_round_trip(adapter: Adapter, model: nn.Module) -> None:
    """native -> canonical -> native -> canonical is exact: same keys, same order, same bits."""
    state = model.state_dict()
    canonical = adapter.to_canonical(model, state)
    expected_names = [c for _, c in adapter.canonical_names(model)]
    assert list(canonical) == expected_names, f"adapter {adapter.name!r}: to_canonical is not in canonical order"
    native = adapter.from_canonical(model, canonical)
    expected_natives = [n for n, _ in adapter.canonical_names(model)]
    assert list(native) == expected_natives, f"adapter {adapter.name!r}: from_canonical gives other native keys"
    for key, tensor in native.items():
        assert torch.equal(tensor, state[key]), f"adapter {adapter.name!r}: {key} changed in the round trip"
    again = adapter.to_canonical(model, native)
    assert list(again) == list(canonical), f"adapter {adapter.name!r}: the second to_canonical gives other names"
    for name, tensor in again.items():
        assert torch.equal(tensor, canonical[name]), f"adapter {adapter.name!r}: {name} changed in the round trip"
    layout = adapter.layout(model)
    assert layout.names == expected_names, f"adapter {adapter.name!r}: layout order differs from canonical_names"


def check_build(adapter: Adapter, arch: str) -> nn.Module:
    """``build(arch)`` gives a model the adapter matches, whose layout counts its generated parameters."""
    spec = ArchSpec.parse(arch)
    assert spec.adapter == adapter.name, f"arch {arch!r} names adapter {spec.adapter!r}, not {adapter.name!r}"
    assert spec.name in adapter.arch_names(), (
        f"adapter {adapter.name!r}: {spec.name!r} is not among arch_names() {adapter.arch_names()}"
    )
    model = adapter.build(spec)
    assert isinstance(model, nn.Module), f"adapter {adapter.name!r}: build({arch!r}) returned {type(model).__name__}"
    assert adapter.matches(model), f"adapter {adapter.name!r} does not match what build({arch!r}) returns"
    params = dict(model.named_parameters())
    generated = sum(params[n].numel() for n, _ in adapter.canonical_names(model))
    layout = adapter.layout(model)
    assert layout.num_params == generated, (
        f"adapter {adapter.name!r}: layout of {arch!r} has {layout.num_params} values, "
        f"its generated parameters {generated}"
    )
    return model


def check_capabilities(adapter: Adapter, model: nn.Module) -> None:
    """``reset_parameters`` re-initialises in place (layout kept, values finite); ``lora_targets``
    are LoRA-able modules with generated weights, in canonical order; ``directions``, when given,
    name sub-networks whose canonical names carry their prefix."""
    layout = adapter.layout(model)
    params = [id(p) for p in model.parameters()]
    assert adapter.reset_parameters(model) is model, (
        f"adapter {adapter.name!r}: reset_parameters returns another object"
    )
    assert [id(p) for p in model.parameters()] == params, (
        f"adapter {adapter.name!r}: reset_parameters replaced parameters"
    )
    _same_layout(adapter, layout, model, "reset_parameters")
    values = adapter.to_canonical(model, model.state_dict())
    bad = [k for k, v in values.items() if not bool(torch.isfinite(v).all())]
    assert not bad, f"adapter {adapter.name!r}: reset_parameters leaves NaN or Inf in {bad[:3]}"
    order = [n for n, _ in adapter.canonical_names(model)]
    weights = [f"{t}.weight" for t in adapter.lora_targets(model)]
    assert all(w in order for w in weights), f"adapter {adapter.name!r}: a LoRA target's weight is not generated"
    assert weights == sorted(weights, key=order.index), (
        f"adapter {adapter.name!r}: LoRA targets are not in canonical order"
    )
    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    assert all(isinstance(model.get_submodule(w[: -len(".weight")]), kinds) for w in weights), (
        f"adapter {adapter.name!r}: a LoRA target is not a Conv2d, ConvTranspose2d or Linear"
    )
    directions = adapter.directions(model) if adapter.directions is not None else None
    if directions is not None:
        canonical = [c for _, c in adapter.canonical_names(model)]
        for prefix, attribute in directions:
            assert isinstance(getattr(model, attribute, None), nn.Module), (
                f"adapter {adapter.name!r}: direction {attribute!r} is not a sub-network of the model"
            )
            assert any(c.startswith(f"{prefix}.") for c in canonical), (
                f"adapter {adapter.name!r}: no canonical name starts with direction prefix {prefix!r}"
            )


def check_reference_flags(adapter: Adapter, arch: str) -> None:
    """``reference_flags(spec)`` is ``(flags, note)``: flags None with a note that says why, or flags
    whose ``args()`` are command-line strings, whose ``str`` joins them and whose ``to_dict()`` is a
    JSON record with those args."""
    import json

    spec = ArchSpec.parse(arch)
    answer = adapter.reference_flags(spec)
    assert isinstance(answer, tuple) and len(answer) == 2, (
        f"adapter {adapter.name!r}: reference_flags({arch!r}) must return (flags or None, note), got {answer!r}"
    )
    flags, note = answer
    assert isinstance(note, str), f"adapter {adapter.name!r}: reference_flags({arch!r})'s note is not a string"
    if flags is None:
        assert note.strip(), f"adapter {adapter.name!r}: reference_flags({arch!r}) gives no flags and no reason"
        return
    args = flags.args()
    assert args and all(isinstance(a, str) for a in args) and args[0].startswith("-"), (
        f"adapter {adapter.name!r}: reference_flags({arch!r}).args() is not a list of flags: {args!r}"
    )
    assert str(flags) == " ".join(args), f"adapter {adapter.name!r}: str(flags) is not its args joined"
    record = flags.to_dict()
    assert json.loads(json.dumps(record)) == record and record.get("args") == args, (
        f"adapter {adapter.name!r}: reference_flags({arch!r}).to_dict() is not a JSON record with its args"
    )


def check_discriminator(adapter: Adapter, model: nn.Module, *, image_size: int | None = None) -> nn.Module:
    """``discriminator(model, ndf=, n_layers=)`` gives a fresh module with parameters of its own and
    leaves ``model`` unchanged. With ``image_size`` (a network built from an arch string, one image
    in and one out) it scores the condition and ``model``'s output stacked, with finite values."""
    before = {k: v.clone() for k, v in model.state_dict().items()}
    net_d = adapter.discriminator(model, ndf=4, n_layers=1)
    assert isinstance(net_d, nn.Module), (
        f"adapter {adapter.name!r}: discriminator() returned {type(net_d).__name__}, not an nn.Module"
    )
    own = {id(p) for p in model.parameters()}
    assert any(True for _ in net_d.parameters()), f"adapter {adapter.name!r}: the discriminator has no parameters"
    assert not [p for p in net_d.parameters() if id(p) in own], (
        f"adapter {adapter.name!r}: the discriminator shares parameters with the generator"
    )
    assert adapter.discriminator(model, ndf=4, n_layers=1) is not net_d, (
        f"adapter {adapter.name!r}: discriminator() hands back the same module twice"
    )
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items()), (
        f"adapter {adapter.name!r}: discriminator() changed the generator"
    )
    if image_size is not None and adapter.directions is None:
        first = next(p for _, p in _generated(adapter, model) if p.dim() == 4)
        x = torch.rand(2, first.shape[1], image_size, image_size) * 2 - 1
        with torch.no_grad():
            y = copy.deepcopy(model)(x)  # a copy: the forward pass moves running statistics
            score = net_d(torch.cat([x, y], 1))
        assert bool(torch.isfinite(score).all()), (
            f"adapter {adapter.name!r}: the discriminator's score of (condition, output) is not finite"
        )
    return net_d


def _generated(adapter: Adapter, model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    params = dict(model.named_parameters())
    return [(name, params[name]) for name, _ in adapter.canonical_names(model)]


def check_adapter(adapter: Adapter, model_factory: Callable[[], nn.Module], *, arch: str | None = None) -> BlockLayout:
    """Run the whole conformance suite; return the layout of ``model_factory()``.

    ``model_factory`` builds a fresh model each call (two are compared). With ``arch`` the
    adapter's :meth:`~weightinit.adapters.base.Adapter.build` is checked too, and so are the
    reference flags and the discriminator of the network it names.
    """
    model = model_factory()
    assert adapter.matches(model), f"adapter {adapter.name!r} does not match {type(model).__name__}"
    check_names(adapter, model)
    layout = check_layout_is_deterministic(adapter, model_factory)
    check_round_trip(adapter, model)
    check_wrappers(adapter, model)
    check_capabilities(adapter, model)
    check_discriminator(adapter, model)
    if arch is not None:
        built = check_build(adapter, arch)
        check_reference_flags(adapter, arch)
        check_discriminator(adapter, built, image_size=adapter.image_size(ArchSpec.parse(arch)) or 64)
    return layout


# --- pytest helpers ------------------------------------------------------------------------


@dataclass(frozen=True)
class ConformanceCase:
    """One adapter, one way to build a model, and the arch string that names it."""

    adapter: Adapter
    model_factory: Callable[[], nn.Module]
    arch: str | None = None

    def check(self) -> BlockLayout:
        return check_adapter(self.adapter, self.model_factory, arch=self.arch)


def _adapter_for(name: str, adapters: Mapping[str, Adapter] | None) -> Adapter:
    if adapters is not None:
        if name not in adapters:
            raise KeyError(f"no adapter {name!r} among {sorted(adapters)}")
        return adapters[name]

    return get_adapter(name)


def adapter_conformance_cases(
    archs: Iterable[str], adapters: Mapping[str, Adapter] | Iterable[Adapter] | None = None
) -> list:
    """``pytest.param`` cases (id = the arch string) for ``@pytest.mark.parametrize("case", ...)``.

    Each case builds its model from the arch string with the named adapter, taken from
    ``adapters`` (a name -> adapter mapping or a list of adapters) or from the plugin registry.
    Run a case with ``case.check()``. Keep arch strings small (``ngf=8``): every case builds
    its model several times.
    """
    import pytest

    if adapters is not None and not isinstance(adapters, Mapping):
        adapters = {a.name: a for a in adapters}
    cases = []
    for arch in archs:
        spec = ArchSpec.parse(arch)
        adapter = _adapter_for(spec.adapter, adapters)
        case = ConformanceCase(adapter, lambda a=adapter, s=spec: a.build(s), arch)
        cases.append(pytest.param(case, id=arch))
    return cases
