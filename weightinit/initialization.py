"""``initialize(model, concept)``: the one line a training script adds.

The generator denoises the concept's weights (LoRA factors or a full delta over its base
generator); they are checked against the model's layout, then written into the model's
existing parameters in place, all or nothing. Call it after the training script's default
init (which the reference pix2pix code runs in ``create_model``), on every rank with the same
seed, and not when resuming from a checkpoint (``--continue_train``).

Every argument is checked before the generator is loaded (seconds) or anything is written:
a bad concept, mode, model (meta device, an earlier ``mode="lora"``, a float dtype other than
float32 is fine: weights are generated in float32 and cast) or bad ``pairs`` is one
:class:`WeightinitError` line in milliseconds.
"""

from __future__ import annotations

import copy
import gc
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from weightinit import generators, plugins, representation, transfer
from weightinit.adapters.base import unwrap_model
from weightinit.apply import buffer_pairs, copy_buffers, prepare_update, write_in_place
from weightinit.concepts.catalog import default_catalog
from weightinit.concepts.direction import reverse_text as turn_round
from weightinit.errors import AdapterError, InvalidWeights, LayoutMismatch, WeightinitError
from weightinit.lora import LoRAWrapper, _set_submodule, inject_lora, set_plain_state_dict
from weightinit.pair_fit import fit_to_pairs
from weightinit.pair_start import PAIR_START_NAME, start_from_pairs
from weightinit.representation import LORA_A, LORA_B, fill_lora
from weightinit.running_stats import StatisticsFit, batch_norms, bundled_inputs, fit_running_statistics
from weightinit.selection import check_pairs, choose_on_pairs
from weightinit.transfer import Plan, canonical_buffer_names, canonical_shapes

MODES = ("merge", "lora")
#: how ``initialize(pairs=)`` makes the start (its docstring)
PAIRS_STARTS = ("auto", "generate", "choose")
#: The default of ``initialize(widen_noise=...)``: measured on training concepts (docs/NETWORKS.md).
DEFAULT_WIDEN_NOISE = 0.1
_GENERATORS: dict[tuple[str, str | None], object] = {}


@dataclass
class InitReport:
    """What ``initialize`` did."""

    concept: str
    generator: str
    adapter: str
    mode: str
    seed: int
    steps: int
    parameters_set: int = 0
    values_set: int = 0
    buffers_set: int = 0
    lora_modules: int = 0
    seconds: float = 0.0
    generation_seconds: float = 0.0
    directions: dict[str, str] = field(default_factory=dict)
    chosen: str = "generated"  # with pairs=: the candidate they chose
    choice: dict | None = None  # with pairs=: selection.Choice as a dict
    #: per direction (``"netG"``, or ``"netG_A"``/``"netG_B"``): ``Provenance.to_dict()`` of its text
    based_on: dict[str, dict] = field(default_factory=dict)
    #: how the generator's network was carried to this one ("its own network", "widened from ngf 16 to 64")
    transfer: str = "its own network"
    widen_noise: float = 0.0
    #: how the batch-norm running statistics were set, and the seconds it took (part of ``seconds``)
    statistics: str = "no batch norm: nothing to fit"
    statistics_seconds: float = 0.0
    #: with ``pairs=`` and ``fit_steps``: ``pair_fit.PairFit`` as a dict
    pair_fit: dict | None = None
    #: with ``pairs=`` and a generator that generates from them: ``pair_start.PairStart`` as a dict
    pair_start: dict | None = None

    def __str__(self) -> str:
        what = f"{self.parameters_set} parameters ({self.values_set:,} values)"
        if self.mode == "lora":
            what += f", {self.lora_modules} LoRA modules"
        if self.choice is not None:
            c = self.choice
            what += (
                f", chose {self.chosen} of {c['candidates']} on {c['pairs']} pairs "
                f"(L1 {c['pairs_l1']:.4f} vs generated {c['generated_l1']:.4f})"
            )
        line = (
            f"weightinit: initialised {what} for {self.concept!r} with {self.generator} "
            f"({self.adapter}, {self.mode}, seed {self.seed}, {self.steps} step(s)) in {self.seconds:.2f} s"
        )
        if self.transfer != "its own network":
            line += f"\n  network: {self.transfer}" + (
                f" (widen noise {self.widen_noise:g})" if self.widen_noise else ""
            )
        if self.statistics != "no batch norm: nothing to fit":
            line += f"\n  {self.statistics}"
        if self.pair_start is not None:
            p = self.pair_start
            line += (
                f"\n  generated from {p['pairs']} pairs in {p['seconds']:.2f} s: {p['checked']} proposals checked, "
                f"{p['chosen']} kept (L1 {min(p['l1'].values()):.4f}, the text's blend {p['text_l1']:.4f})"
            )
        if self.pair_fit is not None:
            f = self.pair_fit
            if f["kept"]:
                line += f"\n  fitting to {f['pairs']} pairs did not lower their L1 ({f['l1_before']:.4f}): start kept"
            else:
                line += (
                    f"\n  fitted to {f['pairs']} pairs in {f['steps']} steps: L1 {f['l1_before']:.4f} -> "
                    f"{f['l1_after']:.4f} in {f['seconds']:.2f} s"
                )
        for direction, prov in self.based_on.items():
            if prov.get("fallback") == "mean":  # every training concept alike: the nearest by text are named
                names = "the zoo mean; nearest: " + ", ".join(
                    f"{c['concept']} (sim {c['similarity']:.2f})" for c in prov["concepts"][:3]
                )
            else:
                names = ", ".join(f"{c['concept']} ({c['weight']:.2f})" for c in prov["concepts"][:3])
            names = names or "no training concepts"
            label = f"{direction} {prov['text']!r}" if len(self.based_on) > 1 else "based on"
            line += f"\n  {label}: {names}; best similarity {prov['similarity']:.2f}"
            if prov.get("fallback"):
                line += "; far from the zoo, fell back to the " + (
                    "zoo mean" if prov["fallback"] == "mean" else "broader prior blend"
                )
            elif prov.get("far"):
                line += "; far from the zoo (its own blend: no fallback)"
        return line

    @property
    def fell_back(self) -> bool:
        """Whether any direction's concept was far from the zoo and got the fallback start."""
        return any(p.get("fallback") for p in self.based_on.values())

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def load_generator(generator=None, revision: str | None = None, model: nn.Module | None = None):
    """The :class:`~weightinit.generator.model.WeightGenerator` to use: given (loaded), by path or
    hub id, else the installed one whose layout matches ``model`` (``weightinit.generators``), else
    the bundled one; cached per process."""
    from weightinit.generator.model import WeightGenerator  # here: it imports diffusers, `import weightinit` does not

    if isinstance(generator, WeightGenerator):
        return generator
    if generator is None and model is not None:
        info, _ = generators.pick_generator(model)  # LayoutMismatch names the network and why none serves it
        generator = info.reference
        name = "the bundled generator" if info.kind == "bundled" else f"generator {info.name}"
    elif generator is None:
        path = generators.bundled_generator_path()
        if not (path / "generator_config.json").is_file():
            raise WeightinitError(
                "this installation has no bundled generator; pass generator=PATH_OR_HUB_ID, or build one with "
                "`weightinit zoo build` and `weightinit train`"
            )
        generator, name = str(path), "the bundled generator"
    else:
        resolved = generators.resolve_name(str(generator))  # `weightinit generators` names too
        name = str(generator) if resolved == str(generator) else f"generator {generator}"
        generator = resolved
    key = (str(generator), revision)
    if key not in _GENERATORS:
        loaded = WeightGenerator.from_pretrained(str(generator), revision=revision)
        loaded.name = name
        # derived now, as the load is, so that no timed initialize() pays for building the base
        loaded.base_layout, loaded.base_canonical, loaded.base_buffers  # noqa: B018
        _GENERATORS[key] = loaded
    _GENERATORS[key].name = name  # as this call found it: by name, path or the model's layout
    return _GENERATORS[key]


def _generate(gen, concept, *, steps: int, seed: int, guidance: float | None) -> dict[str, torch.Tensor]:
    """Generated factors in float32 for a resolved ``concept``; one far from the zoo gets the
    generator's far-concept start."""
    factors = gen.generate(concept, steps=steps, seed=seed, guidance=guidance, dtype=torch.float32, fallback=True)
    for name, value in factors.items():  # whatever produced them: never written, never scored
        if not bool(torch.isfinite(value).all()):
            raise InvalidWeights(f"generated weights contain NaN or Inf (first in {name}); nothing was written")
    return factors


def reverse_text(concept: str) -> str:
    """The text of ``concept``'s opposite edit, for CycleGAN's B->A generator, by the live catalog
    (``initialize`` asks the generator instead, whose table of known concepts is frozen in its
    folder: ``WeightGenerator.reverse_text``).

    A catalog concept's reverse is the catalog's reverse concept (a ``-reverse`` concept, or a
    concept whose edit is exactly the reverse, as "gray-to-color" is of "grayscale"); without one
    its ``reverse`` phrasing; any other text is turned round by ``concepts.direction``
    ("X to Y" -> "Y to X", "add X" -> "remove X").
    """
    catalog = default_catalog()
    known = catalog.find_by_text(concept)
    if known is not None:
        twin = catalog.reverse_of(known)
        return twin.text if twin is not None else known.reverse
    return turn_round(concept)


def _plan(gen, model: nn.Module, adapter) -> Plan | None:
    """None where the generator was made for the model's own layout (the dtype does not count:
    weights are generated in float32 and cast); else the transfer to the model's network, or
    :class:`LayoutMismatch` naming the network and why the generator does not serve it."""
    model_layout = adapter.layout(model)
    if model_layout.with_dtype().fingerprint == gen.base_layout.with_dtype().fingerprint:
        return None
    inner = getattr(model, "module", None)
    if isinstance(inner, nn.Module):  # a wrapper of the user's own: say so instead of "build a zoo"
        raise AdapterError(
            f"{type(model).__name__} holds the network in `.module` but is not DistributedDataParallel, DataParallel "
            "or torch.compile, which weightinit unwraps: pass the network itself (model.module)"
        )
    arch = adapter.arch_of(model) if adapter.name == gen.base_adapter.name else None
    if arch is not None:
        try:
            return adapter.transfer(gen.arch, arch)
        except LayoutMismatch as exc:
            reason = str(exc)
    else:
        reason = f"first difference: {gen.base_layout.with_dtype().first_difference(model_layout.with_dtype())}"
    raise LayoutMismatch(
        f"generator {gen.name} was trained for {gen.arch}, and does not serve this network "
        f"({arch or adapter.name + ' layout ' + model_layout.fingerprint}): {reason}. "
        "Build a zoo and a generator for your architecture: `weightinit zoo build --arch ADAPTER:NAME --out zoo` "
        "then `weightinit train --zoo zoo --out my-generator`, and use that generator "
        "(generator='my-generator', or --generator my-generator on the command line)",
        expected=gen.base_layout.fingerprint,
        actual=model_layout.fingerprint,
    )


@dataclass
class _Start:
    """What is written into one network: canonical weights (full in merge mode, the base in LoRA
    mode), the LoRA factors (LoRA mode), and the buffers by native key."""

    weights: dict[str, torch.Tensor]
    factors: dict[str, torch.Tensor] | None
    buffers: dict[str, torch.Tensor]
    statistics: StatisticsFit = field(default_factory=StatisticsFit)

    @property
    def full(self) -> dict[str, torch.Tensor]:
        return self.weights if self.factors is None else representation.full_weights(self.factors, self.weights)


def _carried_start(
    gen, plan: Plan | None, model: nn.Module, adapter, factors, *, mode: str, widen_noise: float, seed: int
) -> _Start:
    """The generator's start (made for its own network) carried to ``model``'s network."""
    weights = gen.full_weights(factors) if mode == "merge" else gen.base_canonical
    if plan is None:
        own = dict(model.named_buffers())
        buffers = {k: v for k, v in gen.base_buffers.items() if k in own and own[k].shape == v.shape}
        return _Start(dict(weights), dict(factors) if mode == "lora" else None, buffers)
    source_shapes, _ = canonical_shapes(gen.base_model, gen.base_adapter)
    shapes, buffer_shapes = canonical_shapes(model, adapter)
    carried = transfer.carry(plan.parameters, weights, shapes)
    noise_rng = torch.Generator().manual_seed(seed)  # every DDP rank writes the same values
    transfer.add_widen_noise(plan.parameters, carried, source_shapes, widen_noise, noise_rng)
    lora = transfer.carry_factors(plan.parameters, factors, source_shapes, shapes) if mode == "lora" else None
    source_buffers = canonical_buffer_names(gen.base_model, gen.base_adapter)
    by_canonical = {source_buffers[k]: v for k, v in gen.base_buffers.items() if k in source_buffers}
    native = {c: n for n, c in canonical_buffer_names(model, adapter).items()}
    buffers = {native[c]: v for c, v in transfer.carry(plan.buffers, by_canonical, buffer_shapes).items()}
    return _Start(carried, lora, buffers)


def _statistics_inputs(model: nn.Module, adapter, gen, pairs) -> tuple[torch.Tensor, str]:
    """The images running statistics are fitted on: the pairs' inputs, else the bundled photos at
    the network's size (a U-Net's own side; the reference's 256-px crop for a ResNet)."""
    if pairs is not None:
        return pairs[0], "pair inputs"
    arch = adapter.arch_of(model) or gen.arch
    size = plugins.image_size_of(arch) if ":" in arch else None
    channels = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
    return bundled_inputs(size or 256, channels), "bundled photos"


def _fit_statistics(model: nn.Module, adapter, gen, start: _Start, pairs) -> None:
    """Replace ``start``'s buffers by the running statistics of its weights (batch norm only)."""
    if not batch_norms(model):
        return
    inputs, source = _statistics_inputs(model, adapter, gen, pairs)
    params = adapter.from_canonical(model, start.full)
    start.buffers, start.statistics = fit_running_statistics(model, params, start.buffers, inputs, source=source)


def _check_concept(concept, what: str = "concept") -> None:
    """Text, not None or bytes, and encodable as UTF-8 (no lone surrogates, which is what a
    non-UTF-8 command-line argument becomes): cheap, so it runs before anything is loaded."""
    if isinstance(concept, (bytes, bytearray)):
        raise WeightinitError(
            f"{what} must be text (str), got bytes {bytes(concept)[:40]!r}: decode it first, e.g. .decode('utf-8')"
        )
    if not isinstance(concept, str):
        raise WeightinitError(f"{what} must be text (str), got {type(concept).__name__} {concept!r:.60}")
    try:
        concept.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise WeightinitError(
            f"{what} is not valid UTF-8 text (an undecodable character at position {exc.start}: {concept!r:.60})"
        ) from None
    if not concept.strip():
        raise WeightinitError(f"{what} must be non-empty text (got only whitespace)")


def _check_model(model: nn.Module, inner: nn.Module) -> None:
    """What no generator can fix: a module that is not one, storage on the meta device, or
    LoRA wrappers from an earlier ``mode="lora"`` call."""
    if not isinstance(model, nn.Module):
        raise WeightinitError(f"initialize needs a torch.nn.Module (your netG), got {type(model).__name__}")
    tensors = [*inner.parameters(), *inner.buffers()]
    if any(t.is_meta for t in tensors):
        raise WeightinitError(
            "the model is on the meta device (shapes without storage), so nothing could be written: "
            "materialise it first (model.to_empty(device='cpu') and its init), then call initialize"
        )
    lora = sum(isinstance(m, LoRAWrapper) for m in inner.modules())
    if lora:
        raise WeightinitError(
            f"the model already has {lora} LoRA modules from an earlier initialize(..., mode='lora'); "
            "initialise a fresh network, or fold them in first with weightinit.lora.merge_lora(model)"
        )


def _holders(inner: nn.Module) -> tuple[list, list]:
    """The live optimizers that hold any of ``inner``'s parameters, and the DDP wrappers around it.

    Neither is reachable from the module itself, so the garbage collector's object list is asked
    (tens of milliseconds; only ``mode="lora"`` needs it)."""
    own = {id(p) for p in inner.parameters()}
    optimizers, ddp = [], []
    for obj in gc.get_objects():
        kind = type(obj)  # not isinstance: that reads __class__, which some lazy module proxies warn on
        if issubclass(kind, torch.optim.Optimizer):
            if any(id(p) in own for g in obj.param_groups for p in g["params"]):
                optimizers.append(obj)
        elif kind.__name__ == "DistributedDataParallel" and issubclass(kind, nn.Module) and unwrap_model(obj) is inner:
            ddp.append(obj)
    return optimizers, ddp


def _check_lora_placement(model: nn.Module, inner: nn.Module, optimizer) -> None:
    """LoRA adds parameters: refuse where nothing would train or synchronise them."""
    optimizers, ddp = _holders(inner)
    if type(model).__name__ == "DistributedDataParallel" and model not in ddp:
        ddp.append(model)
    if ddp:
        raise WeightinitError(
            "mode='lora' on a network already wrapped in DistributedDataParallel: DDP registered its parameters "
            "when it was built and would not synchronise the LoRA parameters added now (the ranks drift apart). "
            "Call initialize(netG, concept, mode='lora', optimizer=...) before the DDP wrap (in the reference code "
            "between create_model(opt) and model.setup(opt): the default init has already run in create_model), "
            "or use mode='merge', which DDP keeps in sync"
        )
    if optimizer is None and optimizers:
        names = ", ".join(sorted({type(o).__name__ for o in optimizers}))
        raise WeightinitError(
            f"the model's parameters are already in an optimizer ({names}): mode='lora' freezes them and adds LoRA "
            "parameters that optimizer would never train. Pass it: initialize(netG, concept, mode='lora', "
            "optimizer=model.optimizer_G), or build the optimizer after this call"
        )


def _optimizer_groups(optimizer, model: nn.Module, targets: list[str]) -> list[dict]:
    """The param group holding each LoRA target's weight: its factors join that group, so the
    group's learning rate, and any scheduler over the groups, apply to them unchanged."""
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    groups = []
    for t in targets:
        group = group_of.get(id(model.get_submodule(t).weight))
        if group is None:
            raise WeightinitError(
                f"the optimizer passed does not hold {t}.weight: pass the optimizer built over this network's "
                "parameters (e.g. model.optimizer_G)"
            )
        groups.append(group)
    return groups


def initialize(
    model: nn.Module,
    concept: str,
    *,
    generator=None,
    adapter=None,
    mode: str = "merge",
    steps: int = 1,
    seed: int = 0,
    guidance: float | None = None,
    reverse: str | None = None,
    revision: str | None = None,
    pairs=None,
    optimizer: torch.optim.Optimizer | None = None,
    progress=None,
    widen_noise: float = DEFAULT_WIDEN_NOISE,
    fit_statistics: bool = True,
    fit_steps: int | None = None,
    pairs_start: str = "auto",
) -> InitReport:
    """Write weights generated for ``concept`` into ``model``, in place.

    ``generator``: None for the bundled default, a path or hub id, or a loaded ``WeightGenerator``.
    ``adapter``: None to find one through the plugins, an adapter name, or an instance.
    ``mode="merge"`` writes base + generated delta into the existing parameters (optimizers keep
    their references; under DDP, call it on ``netG.module`` on every rank with the same seed).
    ``mode="lora"`` writes the base, freezes it and wraps the LoRA targets in trainable low-rank
    modules initialised from the generated factors. Those are new parameters: pass the optimizer
    that already holds the network (``optimizer=model.optimizer_G``) and each factor joins the
    param group of the weight it adapts (schedulers keep working); without one, an optimizer that
    already holds the network is an error, as is a network already wrapped in DDP (initialise
    before the wrap). The LoRA network saves and loads under the plain network's keys with merged
    weights (``weightinit.lora.set_plain_state_dict``), so a reference ``save_networks`` /
    ``load_networks`` keeps working.

    ``pairs=(inputs, targets)``, a few of your training pairs as float tensors ``[N, C, H, W]``
    the model takes and returns (the benchmark uses 8), make the start fit your edit.
    ``pairs_start``: ``"generate"`` generates it from the text and the pairs
    (:mod:`weightinit.pair_start`: proposed by what the pairs look like, checked on them through
    the network, moved to fit them; a fraction of a second), ``"choose"`` scores the generated
    weights and the generator's other candidates and keeps the one with the lowest L1
    (:mod:`weightinit.selection`; about a second; ``progress(done, total)`` is called per
    candidate scored), ``"auto"`` generates where the generator folder has a pair start and
    chooses elsewhere. The report names what was kept.

    A generator serves its own network and the wider or deeper ones of its family (the pix2pix
    defaults ``unet_256``/``resnet_9blocks`` at ``ngf 64`` from the installed ``ngf 16``/``8``
    generators; :mod:`weightinit.transfer`). Widening is exact; ``widen_noise`` (times each
    weight's standard deviation) is added to the copied channels' consumers, centred so that the
    network still computes the same function, because exact copies would get identical gradients
    and never diverge. The report says what was carried.

    ``fit_steps`` (with ``pairs=``): the start is then moved by that many Adam steps inside the
    span of the generator's retrieval prior to fit the pairs better (:mod:`weightinit.pair_fit`;
    the report gives the L1 before and after). None: the pair start's own (chosen with it on
    training concepts), 0 after choosing; 30 after choosing is measured in docs/measurements/pair_fit.json.

    ``fit_statistics``: batch-norm running statistics are re-estimated for the weights written
    (on the pairs' inputs when given, else on the bundled photos at the network's size), so the
    network is as good in ``eval()`` as in train mode; the report says on what and how long.

    float16, bfloat16 and float64 models get the float32 weights cast to their dtype. Arguments,
    the model and the pairs are checked before the generator is loaded; on any failure the model
    is left bitwise unchanged.
    """
    start = time.perf_counter()
    # --- cheap checks first: milliseconds, before the generator (seconds) is loaded ---------
    if mode not in MODES:
        raise WeightinitError(f"mode must be one of {MODES}, got {mode!r}")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise WeightinitError(f"steps must be a positive integer, got {steps!r}")
    _check_concept(concept)
    if reverse is not None:
        _check_concept(reverse, "reverse")
    if fit_steps is not None and (isinstance(fit_steps, bool) or not isinstance(fit_steps, int) or fit_steps < 0):
        raise WeightinitError(f"fit_steps must be an integer >= 0 or None, got {fit_steps!r}")
    if fit_steps and pairs is None:
        raise WeightinitError("fit_steps fits the start to your pairs: pass pairs=(inputs, targets) too")
    if pairs_start not in PAIRS_STARTS:
        raise WeightinitError(f"pairs_start must be one of {PAIRS_STARTS}, got {pairs_start!r}")
    if isinstance(widen_noise, bool) or not isinstance(widen_noise, (int, float)) or not widen_noise >= 0:
        raise WeightinitError(f"widen_noise must be a number >= 0, got {widen_noise!r}")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise WeightinitError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    _check_model(model, unwrap_model(model) if isinstance(model, nn.Module) else model)
    inner = unwrap_model(model)
    if mode == "lora":
        _check_lora_placement(model, inner, optimizer)
    if adapter is None:
        adapter = plugins.adapter_for_model(inner)
    elif isinstance(adapter, str):
        adapter = plugins.get_adapter(adapter)
    pair_model = adapter.directions is not None  # a capability of the adapter, not its name
    if pair_model:
        if pairs is not None:
            raise WeightinitError(
                "pairs= chooses a start for one paired generator; a CycleGAN model has two and no pairs"
            )
        if mode != "merge":
            raise WeightinitError("CycleGAN pairs support mode='merge' only")
    if pairs is not None:
        pairs = check_pairs(pairs, inner)  # dtype, NCHW, and a size the model takes (on meta)
    # --- the generator ------------------------------------------------------------------------
    gen = load_generator(generator, revision, model=inner)
    options = dict(
        mode=mode,
        steps=steps,
        seed=seed,
        guidance=guidance,
        widen_noise=float(widen_noise),
        fit_statistics=fit_statistics,
    )
    if pair_model:
        return _initialize_pair(inner, concept, gen, adapter, reverse=reverse, start=start, **options)

    generate_from_pairs = pairs is not None and _generates_from_pairs(gen, pairs_start)
    plan = _plan(gen, inner, adapter)
    gen_start = time.perf_counter()
    resolved = gen.resolve(concept)  # the concept is read once; everything below takes this
    based_on = {"netG": gen.based_on(resolved, "netG")}
    choice = generated = fitted = None
    if generate_from_pairs:
        # on a float32 copy of the generator's own network, which a widened one computes exactly
        own = _own_network(gen, inner, torch.float32)
        factors, generated = start_from_pairs(own, gen.base_adapter, gen, resolved, pairs, fit_steps=fit_steps)
        fitted = generated.fit
    else:
        factors = _generate(gen, resolved, steps=steps, seed=seed, guidance=guidance)
    if pairs is not None and not generate_from_pairs:
        # scored on the generator's own network, which a widened one computes exactly
        scorer, scorer_adapter = (inner, adapter) if plan is None else (_own_network(gen, inner), gen.base_adapter)
        factors, choice = choose_on_pairs(scorer, scorer_adapter, gen, factors, resolved, pairs, progress=progress)
        if fit_steps:
            factors, fitted = fit_to_pairs(
                _own_network(gen, inner, torch.float32), gen.base_adapter, gen, factors, pairs, steps=fit_steps
            )
    carried = _carried_start(gen, plan, inner, adapter, factors, mode=mode, widen_noise=float(widen_noise), seed=seed)
    generation_seconds = time.perf_counter() - gen_start
    if fit_statistics:
        _fit_statistics(inner, adapter, gen, carried, pairs)
    report = InitReport(
        concept, gen.name, adapter.name, mode, seed, steps, generation_seconds=generation_seconds, based_on=based_on
    )
    _describe(report, plan, carried, float(widen_noise))
    if choice is not None:
        report.chosen, report.choice = choice.chosen, dict(choice.__dict__)
    if generated is not None:
        report.chosen = generated.chosen
        report.pair_start = {k: v for k, v in generated.__dict__.items() if k != "fit"}
    if fitted is not None:
        report.pair_fit = dict(fitted.__dict__)
    if mode == "merge":
        triples, _ = prepare_update(inner, carried.weights, adapter)
        buffers = buffer_pairs(inner, carried.buffers)
        write_in_place(triples)
        report.parameters_set = len(triples)
        report.values_set = sum(v.numel() for _, _, v in triples)
        report.buffers_set = copy_buffers(buffers)
    else:
        report.lora_modules = _inject_generated_lora(inner, adapter, gen.name, carried, optimizer)
        report.parameters_set = report.lora_modules * 2
        report.values_set = sum(t.numel() for t in carried.factors.values())
    report.seconds = time.perf_counter() - start
    return report


def write_base(
    model: nn.Module,
    generator=None,
    *,
    adapter=None,
    widen_noise: float = DEFAULT_WIDEN_NOISE,
    seed: int = 0,
    fit_statistics: bool = True,
) -> str:
    """Write the generator's base network alone (no generated delta) into ``model``, carried to
    its network as ``initialize`` carries a start (widened, deepened, norm changed) and with its
    batch-norm running statistics fitted: the start of the "base + fresh LoRA" baseline. Returns
    what was carried ("its own network", "widened from ngf 16 to 64", ...)."""
    _check_model(model, unwrap_model(model))
    inner = unwrap_model(model)
    adapter = plugins.adapter_for_model(inner) if adapter is None else adapter
    gen = load_generator(generator, model=inner)
    plan = _plan(gen, inner, adapter)
    start = _carried_start(gen, plan, inner, adapter, {}, mode="merge", widen_noise=float(widen_noise), seed=seed)
    if fit_statistics:
        _fit_statistics(inner, adapter, gen, start, None)
    triples, _ = prepare_update(inner, start.weights, adapter)
    buffers = buffer_pairs(inner, start.buffers)
    write_in_place(triples)
    copy_buffers(buffers)
    return "its own network" if plan is None else plan.describe()


def _generates_from_pairs(gen, pairs_start: str) -> bool:
    if pairs_start == "generate" and gen.pair_start is None:
        raise WeightinitError(
            f"generator {gen.name} has no pair start ({PAIR_START_NAME} in its folder) to generate from your "
            "pairs; use pairs_start='choose' (or 'auto'), or a generator that has one (weightinit generators)"
        )
    return pairs_start == "generate" or (pairs_start == "auto" and gen.pair_start is not None)


def _own_network(gen, like: nn.Module, dtype: torch.dtype | None = None) -> nn.Module:
    """A copy of the generator's own network, on ``like``'s device and in its dtype (or ``dtype``)."""
    first = next(like.parameters())
    return copy.deepcopy(gen.base_model).to(device=first.device, dtype=dtype or first.dtype)


def _describe(report: InitReport, plan: Plan | None, start: _Start, widen_noise: float) -> None:
    if plan is not None and not plan.identity:
        report.transfer = plan.describe()
        report.widen_noise = widen_noise if any("widened" in s for s in plan.steps) else 0.0
    report.statistics = start.statistics.describe()
    report.statistics_seconds = start.statistics.seconds


def _inject_generated_lora(model: nn.Module, adapter, gen_name: str, start: _Start, optimizer=None) -> int:
    """Base into the parameters, then LoRA wrappers holding the generated factors (validated
    first), handed to ``optimizer``; on a failure after the first write the model is restored."""
    factors = start.factors
    triples, _ = prepare_update(model, start.weights, adapter)
    buffers = buffer_pairs(model, start.buffers)
    names = adapter.native_to_canonical(model)
    targets = [t for t in adapter.lora_targets(model) if names[f"{t}.weight"] + LORA_A in factors]
    if not targets:
        raise AdapterError(f"generator {gen_name} stores no LoRA factors for this model's modules; use mode='merge'")
    for t in targets:
        canonical = names[f"{t}.weight"]
        a, b = factors[canonical + LORA_A], factors[canonical + LORA_B]
        if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
            raise InvalidWeights(f"generated LoRA factors for {canonical} contain NaN or Inf; nothing was written")
        dtype = model.get_submodule(t).weight.dtype
        if not (torch.isfinite(a.to(dtype)).all() and torch.isfinite(b.to(dtype)).all()):
            raise InvalidWeights(
                f"generated LoRA factors for {canonical} overflow the model's {dtype}; nothing was written"
            )
    groups = _optimizer_groups(optimizer, model, targets) if optimizer is not None else None
    originals = {t: model.get_submodule(t) for t in targets}
    grad_flags = [(p, p.requires_grad) for p in model.parameters()]
    backup = {k: v.detach().clone() for k, v in [*model.named_parameters(), *model.named_buffers()]}
    try:
        write_in_place(triples)
        copy_buffers(buffers)
        rank = factors[names[f"{targets[0]}.weight"] + LORA_A].shape[0]
        wrappers = inject_lora(model, targets, rank)  # A's seeded init is overwritten by the factors
        fill_lora(wrappers, names, factors)
        set_plain_state_dict(model)  # the reference save/load code sees the plain network
    except BaseException:
        for t, module in originals.items():
            if isinstance(model.get_submodule(t), LoRAWrapper):
                _set_submodule(model, t, module)
        with torch.no_grad():
            for k, v in [*model.named_parameters(), *model.named_buffers()]:
                if k in backup:
                    v.copy_(backup[k])
        for p, flag in grad_flags:
            p.requires_grad_(flag)
        raise
    if groups is not None:  # last: nothing after it can fail
        for group, w in zip(groups, wrappers.values()):
            group["params"].extend([w.lora_A, w.lora_B])
    return len(wrappers)


def _initialize_pair(
    model, concept, gen, adapter, *, mode, steps, seed, guidance, reverse, start, widen_noise, fit_statistics
) -> InitReport:
    """CycleGAN: G_A gets the concept, G_B its reverse; both validated before either is written."""
    if mode != "merge":
        raise WeightinitError("CycleGAN pairs support mode='merge' only")
    texts = {"netG_A": concept, "netG_B": reverse or gen.reverse_text(concept)}
    updates, buffers, based_on, plan, carried = [], [], {}, None, None
    for _, attribute in adapter.directions(model):
        sub = unwrap_model(getattr(model, attribute))
        sub_adapter = plugins.adapter_for_model(sub)
        plan = _plan(gen, sub, sub_adapter)
        resolved = gen.resolve(texts[attribute])  # once per direction
        based_on[attribute] = gen.based_on(resolved, attribute)
        factors = _generate(gen, resolved, steps=steps, seed=seed, guidance=guidance)
        carried = _carried_start(gen, plan, sub, sub_adapter, factors, mode=mode, widen_noise=widen_noise, seed=seed)
        if fit_statistics:
            _fit_statistics(sub, sub_adapter, gen, carried, None)
        updates.append(prepare_update(sub, carried.weights, sub_adapter)[0])
        buffers.append(buffer_pairs(sub, carried.buffers))
    write_in_place([t for triples in updates for t in triples])
    report = InitReport(concept, gen.name, adapter.name, mode, seed, steps, directions=texts, based_on=based_on)
    _describe(report, plan, carried, widen_noise)
    report.parameters_set = sum(len(t) for t in updates)
    report.values_set = sum(v.numel() for t in updates for _, _, v in t)
    report.buffers_set = sum(copy_buffers(b) for b in buffers)
    report.seconds = time.perf_counter() - start
    return report
