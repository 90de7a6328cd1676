"""The initialisations the benchmark compares, each a named function that builds a starting model.

Every method starts from the same zoo (its base checkpoint, its LoRA targets and seed) and
returns a :class:`StartingPoint`: the model, the parameters to train (``None``: all of them)
and the seconds its initialisation cost, counted into the method's time to quality (the
generated methods' generation time, text encoding included, and the ``chosen_*`` methods'
scoring of their candidates on the pairs; the others' fetch-and-write time).

``merge`` methods write base + delta into the parameters and fine-tune every weight with the
recipe. ``*_lora`` methods (and ``lora``, E2GAN-style) keep the base frozen and train only the
LoRA factors, initialised from the method's factors (fresh: A from the zoo's LoRA seed, B zero).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from weightinit import plugins, representation
from weightinit.apply import apply_tensors
from weightinit.codec import BlockCodec
from weightinit.errors import WeightinitError
from weightinit.generator.text import shared_text_encoder
from weightinit.initialization import initialize, load_generator
from weightinit.lora import inject_lora, merge_lora
from weightinit.zoo.weights import ZooWeights

#: Train pairs the ``chosen_*`` methods score their candidates on (``weightinit.selection``).
SELECTION_PAIRS = 8


@dataclass
class StartingPoint:
    model: nn.Module
    params: list[nn.Parameter] | None  # None: fine-tune every parameter
    seconds: float  # initialisation cost counted into the method's time
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    name: str
    label: str
    build: Callable[[BenchContext, str], StartingPoint]
    trains: str = "all"  # "all" or "lora"
    needs_generator: bool = False
    upper_bound: bool = False
    sees_pairs: bool = False  # scores its candidates on SELECTION_PAIRS of the concept's train pairs
    #: run in both ``--mode``s (merge and lora): the starts every other one is compared with
    baseline: bool = False
    #: run only when asked for by name (``--methods``), in no ``--mode``'s list
    ablation: bool = False
    #: samples with the benchmark's DDIM steps (``--ddim-steps``), not one step
    ddim: bool = False
    #: its start's distance to the concept's own weights is measured (``rel_l2_to_oracle``);
    #: never for an upper bound, which is those weights
    distance: bool = True

    def in_mode(self, mode: str) -> bool:
        """Whether ``--mode merge`` / ``--mode lora`` runs it."""
        return not self.ablation and (self.baseline or self.trains == {"merge": "all", "lora": "lora"}[mode])

    @property
    def measures_distance(self) -> bool:
        return self.distance and not self.upper_bound


class BenchContext:
    """What every method needs, loaded once: the zoo, its base, the generator, the zoo mean."""

    def __init__(self, zoo, generator=None, *, ddim_steps: int = 5, seed: int = 0, photos=None):
        self.zoo = zoo if isinstance(zoo, ZooWeights) else ZooWeights(zoo)
        self.config = self.zoo.config
        self.arch = self.config.arch
        self.adapter = self.zoo.adapter
        self.base_state = self.zoo.base_state()
        probe = self.base_model()
        self.targets = self.adapter.lora_targets(probe)
        self.names = self.adapter.native_to_canonical(probe)
        self.base_canonical = self.zoo.base_canonical
        self.generator_ref = generator
        self._gen = None
        self.ddim_steps = int(ddim_steps)
        self.seed = int(seed)
        self.photos = photos
        self._mean_factors: dict[str, torch.Tensor] | None = None
        self._mean_delta: dict[str, torch.Tensor] | None = None
        self._train_text = None
        self._oracle_delta: dict[str, dict[str, torch.Tensor]] = {}

    # --- shared pieces -------------------------------------------------------------------------
    @property
    def generator(self):
        if self._gen is None:
            if self.generator_ref is None:
                raise WeightinitError(
                    "this method needs a generator; pass --generator PATH (no bundled generator is installed)"
                )
            gen = load_generator(self.generator_ref)
            if gen.arch != self.arch:
                raise WeightinitError(f"generator {gen.name} is for {gen.arch}, the zoo is {self.arch}")
            gen.text_encoder  # noqa: B018 - load it now, not inside the first timed generation
            self._gen = gen
        return self._gen

    def text_encoder(self):
        if self.generator_ref is not None:
            return self.generator.text_encoder
        return shared_text_encoder()

    def base_model(self) -> nn.Module:
        model = plugins.build_model(self.arch)
        model.load_state_dict(self.base_state)
        return model

    def delta(self, factors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.zoo.delta(factors)

    def mean_factors(self) -> dict[str, torch.Tensor]:
        if self._mean_factors is None:
            self._mean_factors, self._mean_delta = _means(self, self.zoo.ids("train"))
        return self._mean_factors

    def mean_delta(self) -> dict[str, torch.Tensor]:
        self.mean_factors()
        return self._mean_delta

    def nearest(self, concept_id: str) -> tuple[str, float, float]:
        """The training concept whose text is closest (cosine of pooled embeddings) to this one's,
        the cosine, and the seconds the lookup took (encoder loading and the zoo's texts excluded)."""
        train = self.zoo.ids("train")
        if not train:
            raise WeightinitError(f"zoo {self.zoo.folder} has no training concepts")
        enc = self.text_encoder()
        if self._train_text is None:
            self._train_text = enc.encode([self.zoo.record(c).text for c in train]).pooled
        start = time.perf_counter()
        text = self.zoo.record(concept_id).text
        enc.forget(text)  # time the query's encoding too
        query = enc.encode(text).pooled
        sim = (query @ self._train_text.T).squeeze(0)
        i = int(sim.argmax())
        return train[i], float(sim[i]), time.perf_counter() - start

    def oracle_delta(self, concept_id: str) -> dict[str, torch.Tensor]:
        if concept_id not in self._oracle_delta:
            self._oracle_delta[concept_id] = self.delta(self.zoo.concept(concept_id))
        return self._oracle_delta[concept_id]

    def selection_pairs(self, concept_id: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``SELECTION_PAIRS`` of the concept's train pool (pair i depends only on i)."""
        return self.zoo.train_pairs(concept_id, SELECTION_PAIRS, self.photos)

    # --- writing a start -----------------------------------------------------------------------
    def merged(self, delta: dict[str, torch.Tensor]) -> nn.Module:
        model = self.base_model()
        apply_tensors(model, {k: v + delta[k] for k, v in self.base_canonical.items()}, self.adapter)
        return model

    def merged_blocks(self, blocks: torch.Tensor) -> nn.Module:
        """The base plus the delta of de-normalised generator blocks (LoRA factors) in the generator's layout."""
        return self.merged(self.delta(BlockCodec(self.generator.layout).decode(blocks, copy=True)))

    def with_lora(self, factors: dict[str, torch.Tensor] | None) -> tuple[nn.Module, list[nn.Parameter]]:
        """The base with the zoo's LoRA wrappers (its seed and rank), factors copied in when given."""
        model = self.base_model()
        wrappers = inject_lora(model, self.targets, self.config.lora_rank, seed=self.config.lora_seed)
        if factors is not None:
            representation.fill_lora(wrappers, self.names, factors)
        return model, [p for w in wrappers.values() for p in (w.lora_A, w.lora_B)]

    def effective_delta(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The model's generated weights minus the base's (LoRA folded in), canonical names."""
        flat = merge_lora(copy.deepcopy(model))
        state = self.adapter.to_canonical(flat, flat.state_dict())
        return {k: state[k].float() - v for k, v in self.base_canonical.items()}

    def rel_l2_to_oracle(self, model: nn.Module, concept_id: str) -> float:
        """||delta - oracle delta|| / ||oracle delta|| over every generated weight."""
        mine, oracle = self.effective_delta(model), self.oracle_delta(concept_id)
        num = sum(float((mine[k] - oracle[k]).pow(2).sum()) for k in oracle)
        den = sum(float(oracle[k].pow(2).sum()) for k in oracle)
        return (num / max(den, 1e-24)) ** 0.5


def _means(ctx: BenchContext, ids: list[str]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    if not ids:
        raise WeightinitError(f"zoo {ctx.zoo.folder} has no training concepts to average")
    factors: dict[str, torch.Tensor] = {}
    delta: dict[str, torch.Tensor] = {}
    for cid in ids:
        f = ctx.zoo.concept(cid)
        for k, v in f.items():
            factors[k] = factors.get(k, 0) + v / len(ids)
        for k, v in ctx.delta(f).items():
            delta[k] = delta.get(k, 0) + v / len(ids)
    return factors, delta


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


# --- the methods ---------------------------------------------------------------------------------
def scratch(ctx: BenchContext, concept_id: str) -> StartingPoint:
    """The architecture's own init from scratch (``Adapter.reset_parameters``; pix2pix: conv
    weights N(0, 0.02), biases 0, norm weights N(1, 0.02))."""

    def build():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed)
            return ctx.adapter.reset_parameters(plugins.build_model(ctx.arch))

    model, seconds = _timed(build)
    return StartingPoint(model, None, seconds)


def base(ctx: BenchContext, concept_id: str) -> StartingPoint:
    model, seconds = _timed(ctx.base_model)
    return StartingPoint(model, None, seconds)


def fresh_lora(ctx: BenchContext, concept_id: str) -> StartingPoint:
    (model, params), seconds = _timed(lambda: ctx.with_lora(None))
    return StartingPoint(model, params, seconds)


def mean(ctx: BenchContext, concept_id: str) -> StartingPoint:
    delta = ctx.mean_delta()  # computed once per zoo, not counted
    model, seconds = _timed(lambda: ctx.merged(delta))
    return StartingPoint(model, None, seconds, {"averaged": "full deltas of the training concepts"})


def mean_lora(ctx: BenchContext, concept_id: str) -> StartingPoint:
    factors = ctx.mean_factors()
    (model, params), seconds = _timed(lambda: ctx.with_lora(factors))
    return StartingPoint(model, params, seconds, {"averaged": "LoRA factors of the training concepts"})


def nearest(ctx: BenchContext, concept_id: str) -> StartingPoint:
    near, sim, t_text = ctx.nearest(concept_id)
    model, seconds = _timed(lambda: ctx.merged(ctx.delta(ctx.zoo.concept(near))))
    return StartingPoint(model, None, seconds + t_text, {"nearest": near, "cosine": round(sim, 4)})


def nearest_lora(ctx: BenchContext, concept_id: str) -> StartingPoint:
    near, sim, t_text = ctx.nearest(concept_id)
    (model, params), seconds = _timed(lambda: ctx.with_lora(ctx.zoo.concept(near)))
    return StartingPoint(model, params, seconds + t_text, {"nearest": near, "cosine": round(sim, 4)})


def _generated(
    ctx: BenchContext, concept_id: str, steps: int, mode: str, pairs_start: str | None = None, fit_steps: int = 0
) -> StartingPoint:
    """``pairs_start``: None for text alone, else how ``initialize(pairs=)`` makes the start from
    the concept's ``SELECTION_PAIRS`` ("choose" or "generate"; ``fit_steps`` then as given)."""
    gen = ctx.generator  # loaded once per process, not counted (like importing a library)
    text = ctx.zoo.record(concept_id).text
    model = ctx.base_model()
    # the user's data: already in hand, not counted
    pairs = ctx.selection_pairs(concept_id) if pairs_start is not None else None
    gen.text_encoder.forget(text)  # text encoding counts as generation
    start = time.perf_counter()
    report = initialize(
        model,
        text,
        generator=gen,
        steps=steps,
        seed=ctx.seed,
        mode=mode,
        pairs=pairs,
        pairs_start=pairs_start or "auto",
        fit_steps=fit_steps if pairs_start == "choose" else None,
    )
    seconds = time.perf_counter() - start
    params = [p for p in model.parameters() if p.requires_grad] if mode == "lora" else None
    info = {"sampling_steps": steps, "generation_seconds": round(report.generation_seconds, 4)}
    if report.choice is not None:
        info["choice"] = report.choice
    if report.pair_fit is not None:
        info["pair_fit"] = report.pair_fit
    if report.pair_start is not None:
        info["pair_start"] = report.pair_start
    return StartingPoint(model, params, seconds, info)


def generated_1(ctx: BenchContext, concept_id: str) -> StartingPoint:
    return _generated(ctx, concept_id, 1, "merge")


def generated_k(ctx: BenchContext, concept_id: str) -> StartingPoint:
    return _generated(ctx, concept_id, ctx.ddim_steps, "merge")


def generated_1_lora(ctx: BenchContext, concept_id: str) -> StartingPoint:
    return _generated(ctx, concept_id, 1, "lora")


def generated_k_lora(ctx: BenchContext, concept_id: str) -> StartingPoint:
    return _generated(ctx, concept_id, ctx.ddim_steps, "lora")


def chosen_1(ctx: BenchContext, concept_id: str) -> StartingPoint:
    return _generated(ctx, concept_id, 1, "merge", pairs_start="choose")


def chosen_1_lora(ctx: BenchContext, concept_id: str) -> StartingPoint:
    return _generated(ctx, concept_id, 1, "lora", pairs_start="choose")


def pair_generated_1(ctx: BenchContext, concept_id: str) -> StartingPoint:
    return _generated(ctx, concept_id, 1, "merge", pairs_start="generate")


def pair_generated_1_lora(ctx: BenchContext, concept_id: str) -> StartingPoint:
    return _generated(ctx, concept_id, 1, "lora", pairs_start="generate")


#: Steps ``fitted_1*`` moves the chosen start by to fit the pairs (``initialize(fit_steps=...)``).
FIT_STEPS = 30


def fitted_1(ctx: BenchContext, concept_id: str) -> StartingPoint:
    return _generated(ctx, concept_id, 1, "merge", pairs_start="choose", fit_steps=FIT_STEPS)


def fitted_1_lora(ctx: BenchContext, concept_id: str) -> StartingPoint:
    return _generated(ctx, concept_id, 1, "lora", pairs_start="choose", fit_steps=FIT_STEPS)


def prior(ctx: BenchContext, concept_id: str) -> StartingPoint:
    """The generator's retrieval prior without its denoiser (ablation)."""
    gen = ctx.generator
    if gen.prior is None:
        raise WeightinitError(
            f"generator {ctx.generator.name} has no retrieval prior (it was trained with --prior mean)"
        )
    text = ctx.zoo.record(concept_id).text
    gen.text_encoder.forget(text)

    model, seconds = _timed(lambda: ctx.merged_blocks(gen.prior_blocks(text)))
    return StartingPoint(model, None, seconds)


def oracle(ctx: BenchContext, concept_id: str) -> StartingPoint:
    model, seconds = _timed(lambda: ctx.merged(ctx.oracle_delta(concept_id)))
    return StartingPoint(model, None, seconds)


def oracle_lora(ctx: BenchContext, concept_id: str) -> StartingPoint:
    (model, params), seconds = _timed(lambda: ctx.with_lora(ctx.zoo.concept(concept_id)))
    return StartingPoint(model, params, seconds)


METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method("scratch", "scratch (reference init, N(0, 0.02))", scratch, baseline=True, distance=False),
        Method("base", "base only", base, baseline=True, distance=False),
        Method("lora", "base + fresh LoRA, LoRA-only (E2GAN-style)", fresh_lora, trains="lora", baseline=True),
        Method("mean", "base + zoo mean", mean),
        Method("nearest", "base + nearest concept by text", nearest),
        Method("generated_1", "generated, 1 step", generated_1, needs_generator=True),
        Method("generated_k", "generated, DDIM k steps", generated_k, needs_generator=True, ddim=True),
        Method(
            "chosen_1",
            f"generated 1 step or another candidate, chosen on {SELECTION_PAIRS} train pairs",
            chosen_1,
            needs_generator=True,
            sees_pairs=True,
        ),
        Method(
            "prior",
            "generator's retrieval prior alone, no denoiser (ablation)",
            prior,
            needs_generator=True,
            ablation=True,
        ),
        Method("oracle", "own zoo weights (upper bound)", oracle, upper_bound=True),
        Method("mean_lora", "zoo mean factors, LoRA-only", mean_lora, trains="lora"),
        Method("nearest_lora", "nearest concept's factors, LoRA-only", nearest_lora, trains="lora"),
        Method(
            "generated_1_lora", "generated 1 step, LoRA-only", generated_1_lora, trains="lora", needs_generator=True
        ),
        Method(
            "generated_k_lora",
            "generated DDIM k steps, LoRA-only",
            generated_k_lora,
            trains="lora",
            needs_generator=True,
            ddim=True,
        ),
        Method(
            "chosen_1_lora",
            f"chosen on {SELECTION_PAIRS} train pairs, LoRA-only",
            chosen_1_lora,
            trains="lora",
            needs_generator=True,
            sees_pairs=True,
        ),
        Method("oracle_lora", "own zoo factors, LoRA-only (upper bound)", oracle_lora, trains="lora", upper_bound=True),
        # run when asked by name (--methods) until their time to quality is measured
        Method(
            "fitted_1",
            f"chosen on {SELECTION_PAIRS} train pairs, then fitted to them ({FIT_STEPS} steps)",
            fitted_1,
            needs_generator=True,
            sees_pairs=True,
            ablation=True,
        ),
        Method(
            "pair_generated_1",
            f"generated from the text and {SELECTION_PAIRS} train pairs (the generator's pair start)",
            pair_generated_1,
            needs_generator=True,
            sees_pairs=True,
            ablation=True,
        ),
        Method(
            "pair_generated_1_lora",
            f"generated from the text and {SELECTION_PAIRS} train pairs, LoRA-only",
            pair_generated_1_lora,
            trains="lora",
            needs_generator=True,
            sees_pairs=True,
            ablation=True,
        ),
        Method(
            "fitted_1_lora",
            f"chosen, then fitted to the {SELECTION_PAIRS} pairs, LoRA-only",
            fitted_1_lora,
            trains="lora",
            needs_generator=True,
            sees_pairs=True,
            ablation=True,
        ),
    ]
}
MERGE_METHODS = tuple(m.name for m in METHODS.values() if m.in_mode("merge"))
LORA_METHODS = tuple(m.name for m in METHODS.values() if m.in_mode("lora"))
#: Methods compared with the oracle at step 0 (how close each starts to the concept's own weights).
DISTANCE_METHODS = {m.name for m in METHODS.values() if m.measures_distance}


def methods_for(mode: str, names: list[str] | None = None) -> list[Method]:
    """The methods of a ``--mode`` (merge, lora or both), optionally only ``names`` among them."""
    if mode not in ("merge", "lora", "both"):
        raise WeightinitError(f"mode must be merge, lora or both, got {mode!r}")
    chosen = list(
        MERGE_METHODS
        if mode == "merge"
        else LORA_METHODS
        if mode == "lora"
        else dict.fromkeys(MERGE_METHODS + LORA_METHODS)
    )
    if names:
        unknown = [n for n in names if n not in METHODS]
        if unknown:
            raise WeightinitError(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
        # the mode's methods among those asked for, then the asked ones no mode runs (ablations)
        chosen = [n for n in chosen if n in names] + [n for n in names if n not in chosen]
        if "scratch" not in chosen:
            chosen.insert(0, "scratch")  # every other method is timed against scratch
    return [METHODS[n] for n in chosen]
