"""``initialize(model, concept)``: the one line a training script adds.

The generator denoises the concept's weights (LoRA factors or a full delta over its base
generator); they are checked against the model's layout, then written into the model's
existing parameters in place, all or nothing. Call it after the training script's default
init (``model.setup(opt)`` in the reference pix2pix code), on every rank with the same seed,
and not when resuming from a checkpoint.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from weightinit.adapters.base import unwrap_model
from weightinit.apply import prepare_update, write_in_place
from weightinit.errors import AdapterError, FarConceptWarning, LayoutMismatch, WeightinitError

MODES = ("merge", "lora")
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

    def __str__(self) -> str:
        what = f"{self.parameters_set} parameters ({self.values_set:,} values)"
        if self.mode == "lora":
            what += f", {self.lora_modules} LoRA modules"
        if self.choice is not None:
            c = self.choice
            what += f", chose {self.chosen} of {c['candidates']} on {c['pairs']} pairs (L1 {c['pairs_l1']:.4f} vs generated {c['generated_l1']:.4f})"
        line = (
            f"weightinit: initialised {what} for {self.concept!r} with {self.generator} "
            f"({self.adapter}, {self.mode}, seed {self.seed}, {self.steps} step(s)) in {self.seconds:.2f} s"
        )
        for direction, prov in self.based_on.items():
            names = ", ".join(f"{c['concept']} ({c['weight']:.2f})" for c in prov["concepts"][:3]) or "no training concepts"
            label = f"{direction} {prov['text']!r}" if len(self.based_on) > 1 else "based on"
            line += f"\n  {label}: {names}; best similarity {prov['similarity']:.2f}"
            if prov.get("fallback"):
                line += f"; far from the zoo, fell back to the {prov['fallback']} start"
        return line

    @property
    def fell_back(self) -> bool:
        """Whether any direction's concept was far from the zoo and got the fallback start."""
        return any(p.get("fallback") for p in self.based_on.values())

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def bundled_generator_path() -> Path:
    """The generator shipped inside the package (trained on the default zoo)."""
    return Path(__file__).parent / "data" / "generator"


class GeneratorView:
    """A loaded generator plus what ``initialize`` derives from it once: the base model's
    canonical weights, its buffers and layout, and the delta of generated factors."""

    def __init__(self, generator, name: str):
        from weightinit import plugins

        self.generator = generator
        self.name = name
        if not generator.arch or not generator.base_state:
            raise WeightinitError(f"generator {name} has no base checkpoint or arch; it cannot initialise a model")
        self.arch = generator.arch
        self.adapter = plugins.get_adapter(generator.adapter or self.arch.split(":", 1)[0])
        base_model = plugins.build_model(self.arch)
        base_model.load_state_dict(generator.base_state)
        self.base_layout = self.adapter.layout(base_model)
        self.base_canonical = self.adapter.to_canonical(base_model, generator.base_state)
        buffer_names = {k for k, _ in base_model.named_buffers()}
        self.base_buffers = {k: v for k, v in generator.base_state.items() if k in buffer_names}
        zoo = generator.zoo or {}
        self.representation = zoo.get("representation", "lora")
        self.lora_rank = int(zoo.get("lora_rank", 0) or 0)
        self.lora_seed = int(zoo.get("lora_seed", 0) or 0)
        self.lora_scale = float(zoo.get("lora_scale", 1.0) or 1.0)

    def generate(self, concept: str, *, steps: int, seed: int, guidance: float | None) -> dict[str, torch.Tensor]:
        """Generated factors; a concept far from the zoo gets the generator's far-concept start."""
        return self.generator.generate(concept, steps=steps, seed=seed, guidance=guidance, dtype=torch.float32, fallback=True)

    def based_on(self, concept: str, direction: str) -> dict:
        """``Provenance.to_dict()`` of ``concept``; warns (:class:`FarConceptWarning`) when it is far."""
        prov = self.generator.provenance(concept)
        if prov.far:
            warnings.warn(
                f"{concept!r} ({direction}) is far from every concept generator {self.name} was trained on "
                f"(best similarity {prov.similarity:.2f} < {self.generator.far_policy['similarity']:.2f}; nearest: "
                f"{prov.describe()}); it starts from the {prov.fallback} start instead",
                FarConceptWarning,
                stacklevel=4,
            )
        return prov.to_dict()

    def full_weights(self, factors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Base plus the generated delta, for every generated parameter (canonical names)."""
        from weightinit.lora import lora_delta

        out = {}
        for name, base in self.base_canonical.items():
            if self.representation == "delta" and name in factors:
                out[name] = base.float() + factors[name]
            elif f"{name}.lora_A" in factors:
                out[name] = base.float() + lora_delta(base.shape, factors[f"{name}.lora_A"], factors[f"{name}.lora_B"], self.lora_scale)
            else:
                out[name] = base.float()
        return out


def load_generator(generator=None, revision: str | None = None) -> GeneratorView:
    """The generator to use: given (loaded), by path or hub id, or the bundled one; cached per process."""
    from weightinit.generator.model import WeightGenerator

    if isinstance(generator, GeneratorView):
        return generator
    if isinstance(generator, WeightGenerator):
        return GeneratorView(generator, repr(generator))
    if generator is None:
        path = bundled_generator_path()
        if not (path / "generator_config.json").is_file():
            raise WeightinitError(
                "this installation has no bundled generator; pass generator=PATH_OR_HUB_ID, or build one with "
                "`weightinit zoo build` and `weightinit train`"
            )
        generator, name = str(path), "the bundled generator"
    else:
        name = str(generator)
    key = (str(generator), revision)
    if key not in _GENERATORS:
        _GENERATORS[key] = GeneratorView(WeightGenerator.from_pretrained(str(generator), revision=revision), name)
    return _GENERATORS[key]


def reverse_text(concept: str) -> str:
    """The text of ``concept``'s opposite edit, for CycleGAN's B->A generator.

    A catalog concept's reverse is the catalog's reverse concept (a ``-reverse`` concept, or a
    concept whose edit is exactly the reverse, as "gray-to-color" is of "grayscale"); without one
    its ``reverse`` phrasing; any other text is turned round by ``concepts.direction``
    ("X to Y" -> "Y to X", "add X" -> "remove X").
    """
    from weightinit.concepts.catalog import default_catalog
    from weightinit.concepts.direction import reverse_text as turn_round

    catalog = default_catalog()
    known = catalog.find_by_text(concept)
    if known is not None:
        twin = catalog.reverse_of(known)
        return twin.text if twin is not None else known.reverse
    return turn_round(concept)


def _check_coverage(gen: GeneratorView, model: nn.Module, adapter) -> None:
    """The generator covers the model if the model's generated parameters have the base's layout."""
    model_layout = adapter.layout(model)
    if model_layout.fingerprint != gen.base_layout.fingerprint:
        diff = gen.base_layout.first_difference(model_layout)
        raise LayoutMismatch(
            f"generator {gen.name} was trained for {gen.arch} (layout {gen.base_layout.fingerprint}), "
            f"but this model's layout is {model_layout.fingerprint} ({adapter.name}; first difference: {diff}). "
            "Build a zoo and a generator for your architecture: `weightinit zoo build --arch ADAPTER:NAME --out zoo` "
            "then `weightinit train --zoo zoo --out my-generator`, and use that generator "
            "(generator='my-generator', or --generator my-generator on the command line)",
            expected=gen.base_layout.fingerprint,
            actual=model_layout.fingerprint,
        )


@torch.no_grad()
def _write_buffers(model: nn.Module, buffers: dict[str, torch.Tensor]) -> int:
    """Copy the base's running statistics into matching buffers (shape-checked first)."""
    own = dict(model.named_buffers())
    pairs = [(own[k], v) for k, v in buffers.items() if k in own and own[k].shape == v.shape]
    for buf, value in pairs:
        buf.copy_(value.to(buf.device, buf.dtype))
    return len(pairs)


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
) -> InitReport:
    """Write weights generated for ``concept`` into ``model``, in place.

    ``generator``: None for the bundled default, a path or hub id, or a loaded ``WeightGenerator``.
    ``adapter``: None to find one through the plugins, an adapter name, or an instance.
    ``mode="merge"`` writes base + generated delta into the existing parameters (optimizers keep
    their references). ``mode="lora"`` writes the base, freezes it and wraps the LoRA targets in
    trainable low-rank modules initialised from the generated factors: call it *before* building
    the optimizer. ``pairs=(inputs, targets)``, a few of your training pairs as tensors
    ``[N, C, H, W]`` the model takes and returns (the benchmark uses 8), chooses among the generated
    weights and the generator's other candidates the one with the lowest L1 on them
    (``weightinit.selection``; the report names it). On any failure the model is left bitwise
    unchanged.
    """
    from weightinit import plugins

    start = time.perf_counter()
    if mode not in MODES:
        raise WeightinitError(f"mode must be one of {MODES}, got {mode!r}")
    if not isinstance(steps, int) or steps < 1:
        raise WeightinitError(f"steps must be a positive integer, got {steps!r}")
    inner = unwrap_model(model)
    gen = load_generator(generator, revision)
    if adapter is None:
        adapter = plugins.adapter_for_model(inner)
    elif isinstance(adapter, str):
        adapter = plugins.get_adapter(adapter)

    directions = getattr(adapter, "directions", None)
    if adapter.name == "cyclegan" and directions is not None:
        if pairs is not None:
            raise WeightinitError("pairs= chooses a start for one paired generator; a CycleGAN model has two and no pairs")
        return _initialize_pair(inner, concept, gen, adapter, mode=mode, steps=steps, seed=seed, guidance=guidance, reverse=reverse, start=start)

    _check_coverage(gen, inner, adapter)
    if pairs is not None:
        from weightinit.selection import check_pairs

        pairs = check_pairs(pairs)  # before the generator runs: bad input fails fast
    gen_start = time.perf_counter()
    based_on = {"netG": gen.based_on(concept, "netG")}
    factors = gen.generate(concept, steps=steps, seed=seed, guidance=guidance)
    choice = None
    if pairs is not None:
        from weightinit.selection import choose_on_pairs

        factors, choice = choose_on_pairs(inner, adapter, gen, factors, concept, pairs)
    full = gen.full_weights(factors)
    generation_seconds = time.perf_counter() - gen_start
    report = InitReport(concept, gen.name, adapter.name, mode, seed, steps, generation_seconds=generation_seconds, based_on=based_on)
    if choice is not None:
        report.chosen, report.choice = choice.chosen, dict(choice.__dict__)
    if mode == "merge":
        triples, _ = prepare_update(inner, full, adapter)
        write_in_place(triples)
        report.parameters_set = len(triples)
        report.values_set = sum(v.numel() for _, _, v in triples)
        report.buffers_set = _write_buffers(inner, gen.base_buffers)
    else:
        report.lora_modules = _inject_generated_lora(inner, adapter, gen, factors)
        report.parameters_set = report.lora_modules * 2
        report.values_set = sum(t.numel() for t in factors.values())
    report.seconds = time.perf_counter() - start
    return report


def _inject_generated_lora(model: nn.Module, adapter, gen, factors: dict[str, torch.Tensor]) -> int:
    """Base into the parameters, then LoRA wrappers holding the generated factors (validated first)."""
    from weightinit.lora import inject_lora

    triples, _ = prepare_update(model, gen.base_canonical, adapter)
    names = adapter.native_to_canonical(model)
    targets = [t for t in adapter.lora_targets(model) if f"{names.get(t + '.weight', '')}.lora_A" in factors]
    if not targets:
        raise AdapterError(f"generator {gen.name} stores no LoRA factors for this model's modules; use mode='merge'")
    for t in targets:
        canonical = names[f"{t}.weight"]
        a, b = factors[f"{canonical}.lora_A"], factors[f"{canonical}.lora_B"]
        if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
            raise WeightinitError(f"generated LoRA factors for {canonical} contain NaN or Inf; nothing was written")
    write_in_place(triples)
    _write_buffers(model, gen.base_buffers)
    wrappers = inject_lora(model, targets, gen.lora_rank, seed=gen.lora_seed)
    with torch.no_grad():
        for t, w in wrappers.items():
            canonical = names[f"{t}.weight"]
            w.lora_A.copy_(factors[f"{canonical}.lora_A"].to(w.lora_A))
            w.lora_B.copy_(factors[f"{canonical}.lora_B"].to(w.lora_B))
    return len(wrappers)


def _initialize_pair(model, concept, gen, adapter, *, mode, steps, seed, guidance, reverse, start) -> InitReport:
    """CycleGAN: G_A gets the concept, G_B its reverse; both validated before either is written."""
    from weightinit import plugins

    if mode != "merge":
        raise WeightinitError("CycleGAN pairs support mode='merge' only")
    texts = {"netG_A": concept, "netG_B": reverse or reverse_text(concept)}
    updates, based_on = [], {}
    for _, attribute in adapter.directions(model):
        sub = getattr(model, attribute)
        sub_adapter = plugins.adapter_for_model(sub)
        _check_coverage(gen, sub, sub_adapter)
        based_on[attribute] = gen.based_on(texts[attribute], attribute)
        full = gen.full_weights(gen.generate(texts[attribute], steps=steps, seed=seed, guidance=guidance))
        updates.append(prepare_update(sub, full, sub_adapter)[0])
    write_in_place([t for triples in updates for t in triples])
    report = InitReport(concept, gen.name, adapter.name, mode, seed, steps, directions=texts, based_on=based_on)
    report.parameters_set = sum(len(t) for t in updates)
    report.values_set = sum(v.numel() for t in updates for _, _, v in t)
    for _, attribute in adapter.directions(model):
        report.buffers_set += _write_buffers(getattr(model, attribute), gen.base_buffers)
    report.seconds = time.perf_counter() - start
    return report

