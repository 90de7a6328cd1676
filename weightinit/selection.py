"""Choosing the start on a few of the user's pairs, when text alone is not enough.

The generated weights are the generator's best guess from the concept's text. A user who is
about to fine-tune already has pairs, and a handful of them tells which of the generator's
candidate starts fits the data best: the generated weights, the retrieval prior's blend at other
temperatures and scales, or one training concept's own weights (retrieval by data rather than by
text; the source repository's ``experiments/pair_selection.py`` measures what this buys). A candidate
is scored by L1 on the pairs, in the mode the reference pix2pix test uses (norms on batch
statistics, no dropout), one forward pass per candidate on a probe copy of the model, so batch
statistics are never shared between candidates; the user's model is not touched here.

What makes it cheap (one CPU thread, 8 pairs at 64 px, the bundled generator's 333 candidates):

- every prior candidate is a row of coefficients in the prior's basis, so the factors of a batch
  of candidates are one matmul against the scaled basis (not a de-normalisation and a decode
  each), and a LoRA layer's merged weight is one ``addmm`` written straight into the probe;
- above :attr:`Screen.above` candidates, a :class:`Screen` visits ``budget`` of them (cluster
  representatives in the basis, then the nearest neighbours of the best so far) with a bfloat16
  copy of the probe where that is faster, and rescores the best few exactly in float32. The
  choice is then exact among the rescored candidates, not over all of them: ``--timing`` of the
  benchmark measures how often it differs from ``screen=None`` (every candidate, every pair).

Screening on 1 or 2 of the pairs instead was measured and rejected: with batch statistics over
1-2 images the ranking differs from the one on 8 (see ``Screen``).
"""

from __future__ import annotations

import copy
import math
import time
import weakref
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from weightinit.apply import write_buffers
from weightinit.codec import BlockCodec
from weightinit.errors import InvalidWeights, WeightinitError
from weightinit.ranks import mean_over_ranks
from weightinit.recipe import batch_statistics


@dataclass
class Choice:
    """Which candidate the pairs chose, and how much better it fits them than the generated weights."""

    chosen: str
    pairs_l1: float
    generated_l1: float
    candidates: int
    pairs: int
    seconds: float
    scored: int = 0  # candidates scored on the screen's pairs (every pair when not screened)
    rescored: int = 0  # of those, scored again on every pair (0 when not screened)
    screened: bool = False


def _check_range(inputs: torch.Tensor, targets: torch.Tensor) -> None:
    """pix2pix networks take and return images in [-1, 1]; pixels in [0, 255], or in [0, 1] with
    the normalisation forgotten, would score every candidate against the wrong images."""
    low = min(float(inputs.min()), float(targets.min()))
    high = max(float(inputs.max()), float(targets.max()))
    if high > 1.01 or low < -1.01:
        fix = "x / 127.5 - 1" if high > 2 else "clamp them, or normalise as the network was trained"
        raise WeightinitError(
            f"pairs must be images in [-1, 1] as pix2pix feeds its networks; these span [{low:.3g}, {high:.3g}]: "
            f"pass {fix}"
        )
    if low >= 0:
        raise WeightinitError(
            f"pairs look like images in [0, 1] (no value below 0; they span [{low:.3g}, {high:.3g}]), but pix2pix "
            "networks take [-1, 1]: pass x * 2 - 1"
        )


def check_pairs(pairs, model: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)``: two finite floating-point tensors ``[N, C, H, W]`` of the same N and
    H, W, N >= 1. With ``model``, also that it takes the inputs and returns the targets' shape,
    checked on the meta device (no values computed, no memory, milliseconds)."""
    if not (isinstance(pairs, (tuple, list)) and len(pairs) == 2 and all(isinstance(t, torch.Tensor) for t in pairs)):
        raise WeightinitError(
            "pairs must be (inputs, targets), two tensors [N, C, H, W] as the model takes and returns them"
        )
    inputs, targets = pairs
    for what, t in (("inputs", inputs), ("targets", targets)):
        if not t.is_floating_point():
            raise WeightinitError(
                f"pair {what} are {str(t.dtype).removeprefix('torch.')}; pass float images in the range the model "
                "takes (pix2pix: [-1, 1], e.g. x.float() / 127.5 - 1)"
            )
    if (
        inputs.ndim != 4
        or targets.ndim != 4
        or inputs.shape[0] != targets.shape[0]
        or inputs.shape[2:] != targets.shape[2:]
    ):
        raise WeightinitError(
            f"pairs must be inputs [N, C, H, W] and targets [N, C', H, W] with the same N, H, W; "
            f"got {list(inputs.shape)} and {list(targets.shape)}"
        )
    if inputs.shape[0] < 1:
        raise WeightinitError("pairs hold no pair; pass at least one (the benchmark uses 8)")
    if inputs.shape[-1] in (1, 3, 4) and inputs.shape[1] not in (1, 3, 4):
        raise WeightinitError(
            f"pairs look channels-last (NHWC): inputs {list(inputs.shape)}; the model takes [N, C, H, W]: "
            "pass x.permute(0, 3, 1, 2)"
        )
    for what, t in (("inputs", inputs), ("targets", targets)):
        if not bool(torch.isfinite(t).all()):
            raise WeightinitError(f"pair {what} contain NaN or Inf")
    _check_range(inputs, targets)
    if model is not None:
        _probe(model, inputs, targets)
    return inputs, targets


def _probe(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int = 16) -> None:
    """Run the model on meta tensors of the pairs' shape: a size or channel count it cannot take
    is one line now, before the generator is loaded and any candidate is scored."""
    from torch.func import functional_call

    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    meta = {k: torch.empty_like(v, device="meta") for k, v in [*model.named_parameters(), *model.named_buffers()]}
    x = torch.empty((min(len(inputs), batch_size), *inputs.shape[1:]), dtype=dtype, device="meta")
    try:
        with torch.no_grad(), batch_statistics(model):
            out = functional_call(model, meta, (x,), strict=False)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise WeightinitError(
            f"the model cannot take pair inputs of shape {list(inputs.shape[1:])}: {reason}"
        ) from None
    if isinstance(out, torch.Tensor) and tuple(out.shape[1:]) != tuple(targets.shape[1:]):
        raise WeightinitError(
            f"the model turns pair inputs {list(inputs.shape[1:])} into {list(out.shape[1:])}, but the targets are "
            f"{list(targets.shape[1:])} (a size the model cannot keep: resize the pairs)"
        )


class _Scorer:
    """L1 of the probe's outputs on the first ``n`` pairs, in the reference test mode (entered
    once by the caller with ``batch_statistics``): each forward is one candidate's own batch, so
    batch statistics are never shared between candidates."""

    def __init__(self, probe: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int):
        first = next(probe.parameters())
        device, dtype = first.device, first.dtype  # a float16/bfloat16 model takes its own dtype
        self.probe, self.batch_size, self.device = probe, batch_size, device
        self.inputs = inputs.to(device, dtype)
        self.targets = targets.to(device).float()

    def __call__(self, n: int) -> torch.Tensor:
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        for i in range(0, n, self.batch_size):
            stop = min(i + self.batch_size, n)
            out = self.probe(self.inputs[i:stop])
            target = self.targets[i:stop]
            if out.shape != target.shape:
                raise WeightinitError(
                    f"the model turns pair inputs {list(self.inputs.shape[1:])} into {list(out.shape[1:])}, "
                    f"but the targets are {list(target.shape[1:])}"
                )
            total += (out.float() - target).abs().sum(dtype=torch.float64)
        return total / (self.targets[0].numel() * n)


_SCALED_BASIS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _scaled_basis(generator, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(P, q)``: the prior's basis scaled by the normalizer ``[R, D]`` and the de-normalised
    centre ``[D]`` (flat blocks), so that a candidate's de-normalised blocks are ``q + row @ P``.
    Cached per generator and device (20 MB for the bundled one) while its prior, normalizer and
    centre stay the same objects."""
    key = (generator.prior, generator.normalizer, generator.center)
    cached = _SCALED_BASIS.get(generator, {}).get(device)
    if cached is not None and all(a is b for a, b in zip(cached[0], key)):
        return cached[1]
    layout, bs = generator.layout, generator.layout.block_size
    index = BlockCodec(layout).index
    valid = index.valid_mask(bs).reshape(-1)
    scale = generator.normalizer.scale[index.slot].unsqueeze(1).expand(-1, bs).reshape(-1) * valid
    mean = generator.normalizer.mean[index.slot].unsqueeze(1).expand(-1, bs).reshape(-1) * valid
    center = generator.center.reshape(-1) if generator.center is not None else torch.zeros_like(scale)
    P = (generator.prior.basis32 * scale).to(device)  # scale: a power of two, exact
    q = (center * scale + mean).to(device)
    if not (bool(torch.isfinite(P).all()) and bool(torch.isfinite(q).all())):
        raise InvalidWeights(
            "the generator's prior basis, centre or normalizer contain NaN or Inf; nothing was written"
        )
    try:
        _SCALED_BASIS.setdefault(generator, {})[device] = (key, (P, q))
    except TypeError:  # not weakly referenceable: no cache
        pass
    return P, q


class _PriorCandidates:
    """The prior's candidates for one resolved concept (``WeightGenerator.candidate_blocks``: the
    blends on the candidate grid, then every training concept), held as coefficient rows
    ``[K, R]`` in the prior's basis. Every candidate's de-normalised factors are ``q + row @ P``
    for one scaled basis ``P`` and offset ``q`` shared by all, so a batch of candidates is one
    matmul instead of a de-normalisation and a decode each."""

    def __init__(self, generator, concept, device: torch.device):
        prior, layout = generator.prior, generator.layout
        self.generator, self.layout = generator, layout
        #: ``(scale, weights [1, C])`` of each blend, as ``RetrievalPrior.candidate_blends`` gives them
        blends = prior.candidate_blends(generator.resolve(concept).cosines)
        self.blends = [(a, w) for _, a, w in blends]
        self.names = [name for name, _, _ in blends]
        coefficients = {id(w): prior.coefficients_of(w)[0] for _, w in self.blends}
        rows = [a * coefficients[id(w)] for a, w in self.blends]
        self.names += [f"concept {c}" for c in prior.concept_names]
        self.rows = torch.cat([torch.stack(rows), prior.coef]).to(device)
        self.P, self.q = _scaled_basis(generator, device)
        bad = ~torch.isfinite(self.rows).all(1)
        if bool(bad.any()):
            raise InvalidWeights(
                f"candidate {self.names[int(bad.nonzero()[0])]!r} contains NaN or Inf; nothing was written"
            )
        bs = layout.block_size
        self.slots = [
            (s.name, s.shape, s.torch_dtype, start * bs) for s, start in zip(layout.slots, layout.slot_block_start)
        ]

    def __len__(self) -> int:
        return len(self.names)

    def factors(self, indices: list[int], dtype: torch.dtype | None = None) -> list[dict[str, torch.Tensor]]:
        """The candidates' factors: float32, rounded through the layout's dtypes as decode does,
        or with ``dtype`` (the bfloat16 screen) only rounded to that."""
        flat = torch.addmm(self.q, self.rows[indices], self.P)
        flat = flat.to(dtype) if dtype is not None else flat
        out = [{} for _ in indices]
        for name, shape, slot_dtype, offset in self.slots:
            n = math.prod(shape)
            part = flat[:, offset : offset + n]
            if dtype is None and slot_dtype != torch.float32:
                part = part.to(slot_dtype).float()
            for d, t in zip(out, part):
                d[name] = t.view(shape)
        return out

    def exact_blocks(self, i: int) -> torch.Tensor:
        """Candidate ``i``'s de-normalised blocks bitwise as ``candidate_blocks`` gives them."""
        g, prior = self.generator, self.generator.prior
        shape = (self.layout.num_blocks, self.layout.block_size)
        if i < len(self.blends):
            a, w = self.blends[i]
            delta = a * prior.blend(w)
        else:
            delta = prior.delta(prior.coef[i - len(self.blends)])
        center = g.center if g.center is not None else torch.zeros(shape)
        return g.normalizer.denormalize(center + delta, torch.float32)


class _Writer:
    """Writes a candidate's merged weights into the probe's parameters in place: a LoRA layer is
    one ``addmm`` (base + B @ A) straight into the parameter, the weights no candidate changes
    are written once. In float32 (a parameter of another dtype goes through a float32 scratch,
    as ``full_weights`` then ``copy_`` would), or with ``in_dtype`` in the parameters' own dtype
    (the bfloat16 screen: half the bytes, rounding that only the screen sees)."""

    def __init__(self, probe: nn.Module, adapter, gen, slot_names, in_dtype: bool = False):
        params = dict(probe.named_parameters())
        self.lora, self.delta, self.in_dtype = [], [], in_dtype
        with torch.no_grad():
            for native, canonical in adapter.canonical_names(probe):
                param = params[native]
                dtype = param.dtype if in_dtype else torch.float32
                base = gen.base_canonical[canonical].to(param.device, torch.float32).to(dtype)
                direct = param.dtype == dtype and param.is_contiguous() and tuple(param.shape) == tuple(base.shape)
                if gen.representation == "delta" and canonical in slot_names:
                    self.delta.append((param, base, canonical, direct))
                elif gen.representation != "delta" and f"{canonical}.lora_A" in slot_names:
                    base2d = base.reshape(base.shape[0], -1)
                    self.lora.append(
                        (param, base2d, canonical, direct, None if direct else torch.empty_like(base2d), base.shape)
                    )
                else:
                    param.copy_(base)

    @torch.no_grad()
    def write(self, factors: dict[str, torch.Tensor]) -> None:
        for param, base2d, name, direct, scratch, shape in self.lora:
            a, b = factors[f"{name}.lora_A"].to(base2d.dtype), factors[f"{name}.lora_B"].to(base2d.dtype)
            if direct:
                torch.addmm(base2d, b, a, out=param.view(base2d.shape))
            else:
                param.copy_(torch.addmm(base2d, b, a, out=scratch).view(shape))
        for param, base, name, direct in self.delta:
            value = factors[name].to(base.dtype).view(base.shape)
            if direct:
                torch.add(base, value, out=param)
            else:
                param.copy_(base + value)


def _clusters(points: torch.Tensor, k: int, iterations: int = 10) -> list[list[int]]:
    """``k`` groups of the rows of ``points`` (Euclidean k-means from a farthest-point start, so
    deterministic), each a list of row indices whose first entry is its representative: the
    member nearest the group's centroid. Every row is in the group of its nearest representative."""
    n = len(points)
    if k >= n:
        return [[i] for i in range(n)]
    d = torch.cdist(points, points)
    chosen = [int(torch.cdist(points.mean(0, keepdim=True), points)[0].argmin())]
    nearest = d[chosen[0]].clone()
    while len(chosen) < k:
        chosen.append(int(nearest.argmax()))
        nearest = torch.minimum(nearest, d[chosen[-1]])
    centroids = points[chosen]
    for _ in range(iterations):
        assign = torch.cdist(points, centroids).argmin(1)
        centroids = torch.stack(
            [points[assign == c].mean(0) if bool((assign == c).any()) else centroids[c] for c in range(k)]
        )
    reps = sorted({int(torch.cdist(c[None], points)[0].argmin()) for c in centroids})
    assign = d[:, reps].argmin(1)
    return [[r] + [i for i in (assign == j).nonzero().flatten().tolist() if i != r] for j, r in enumerate(reps)]


@dataclass(frozen=True)
class Screen:
    """How :func:`choose_on_pairs` keeps scoring cheap when there are many candidates.

    Up to ``above`` candidates, every one is scored on every pair: the exact choice. Above it,
    ``budget`` of them are screened on every pair and the ``rescore`` best of those, with the
    generated weights always, are scored again exactly; the lowest exact score is chosen. Which
    candidates are screened: the generated weights and ``start`` representatives of the prior's
    candidates (k-means in the prior's basis), then, best first, the ``neighbours`` nearest (in
    the basis) of the best screened candidate whose neighbours are not yet screened, until
    ``budget`` are. The screen runs a bfloat16 copy of the model on channels-last inputs (``fast="auto"``:
    on a CPU with AMX, where its forward pass takes about half the time; its L1 differs from
    float32's by under 1% on the default zoo, 0.6% at most) or the model itself (``fast=None``, and
    wherever bfloat16 is not known to be faster; the screen's scores are then exact and nothing is rescored).

    The choice is exact among the rescored candidates only: a candidate outside the screened
    ones may fit the pairs better. ``experiments/pair_selection.py --timing``
    measures how often the choice differs from ``screen=None`` and what it costs, and
    ``--study CACHE --split train`` how often on training concepts scored as unseen: the budget
    was chosen there (16 concepts: 12 kept the exhaustive choice at 90, 14 at 120 and at 160).
    """

    above: int = 64
    start: int = 12
    neighbours: int = 24
    budget: int = 120
    rescore: int = 3
    fast: str | None = "auto"


DEFAULT_SCREEN = Screen()


def _fast_screen_supported(device: torch.device) -> bool:
    """bfloat16 is only measured faster on CPUs with AMX tiles (one thread, 64 px, 8 pairs)."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return device.type == "cpu" and probe is not None and bool(probe())


class _Selection:
    """Everything scoring needs for one call, built once: a probe copy of the user's model with
    the base's buffers, the generator's candidates (index 0 is the generated weights, then the
    prior's in ``candidate_blocks`` order) and the pairs on the probe's device; ``fast=True`` (or
    :meth:`add_fast`) adds the bfloat16 probe the screen uses. Used inside ``torch.no_grad()``
    and :meth:`mode`."""

    def __init__(
        self,
        model: nn.Module,
        adapter,
        gen,
        generated: dict[str, torch.Tensor],
        concept,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int = 16,
        fast: bool = False,
    ):
        self._adapter, self._inputs, self._targets, self._batch_size = adapter, inputs, targets, batch_size
        for name, value in generated.items():
            if not bool(torch.isfinite(value).all()):
                raise InvalidWeights(f"generated weights contain NaN or Inf (first in {name}); nothing was written")
        # the probe is thrown away, so candidates are written straight in; the chosen one is
        # validated when initialize writes it into the model
        probe = copy.deepcopy(model)
        write_buffers(probe, gen.base_buffers)
        device = next(probe.parameters()).device
        self.gen, self.generated = gen, generated
        self.cands = _PriorCandidates(gen, concept, device) if gen.prior is not None else None
        self.names = ["generated"] + (self.cands.names if self.cands is not None else [])
        self._full = gen.full_weights(generated)
        self.probes, self.writers, self.scorers, self._generated = {}, {}, {}, {}
        self._add("exact", probe)
        if fast:
            self.add_fast()
        self.done, self.total, self.progress = 0, 0, None

    def add_fast(self) -> None:
        """The bfloat16 probe the screen scores with: its weights stay contiguous (each written in
        one pass), its inputs go channels-last."""
        self._add("fast", copy.deepcopy(self.probes["exact"]).to(torch.bfloat16))

    def _add(self, kind: str, probe: nn.Module) -> None:
        self.probes[kind] = probe
        self.writers[kind] = _Writer(
            probe, self._adapter, self.gen, {s.name for s in self.gen.layout.slots}, in_dtype=kind == "fast"
        )
        params = dict(probe.named_parameters())
        self._generated[kind] = [(params[native], self._full[c]) for native, c in self._adapter.canonical_names(probe)]
        x = self._inputs.contiguous(memory_format=torch.channels_last) if kind == "fast" else self._inputs
        self.scorers[kind] = _Scorer(probe, x, self._targets, self._batch_size)

    @contextmanager
    def mode(self):
        """The reference test mode (``recipe.batch_statistics``) on every probe."""
        with ExitStack() as stack:
            for p in self.probes.values():
                stack.enter_context(batch_statistics(p))
            yield

    def score(self, indices: list[int], n_pairs: int | None = None, kind: str = "exact") -> torch.Tensor:
        """float64 L1 of each candidate in ``indices`` on the first ``n_pairs`` pairs (all by
        default) with the ``"exact"`` or the ``"fast"`` probe, averaged over the ranks under
        ``torch.distributed``; NaN or Inf is refused, naming the candidate."""
        writer, scorer, generated = self.writers[kind], self.scorers[kind], self._generated[kind]
        n_pairs = len(scorer.inputs) if n_pairs is None else n_pairs
        out = []
        for c0 in range(0, len(indices), 32):  # the factors of 32 candidates at a time: one matmul, ~10 MB
            chunk = indices[c0 : c0 + 32]
            prior_idx = [i - 1 for i in chunk if i > 0]
            built = (
                iter(self.cands.factors(prior_idx, torch.bfloat16 if kind == "fast" else None))
                if prior_idx
                else iter(())
            )
            for i in chunk:
                if i == 0:
                    for param, value in generated:
                        param.copy_(value)
                else:
                    writer.write(next(built))
                out.append(scorer(n_pairs))
                self.done += 1
                if self.progress is not None:
                    self.progress(self.done, max(self.total, self.done))
        scores = mean_over_ranks(torch.stack(out)) if out else torch.zeros(0, dtype=torch.float64)
        if not bool(torch.isfinite(scores).all()):
            bad = self.names[indices[int((~torch.isfinite(scores)).nonzero()[0])]]
            raise InvalidWeights(
                f"scoring candidate {bad!r} on the pairs gave NaN or Inf (the model's outputs are not finite); "
                "nothing was written"
            )
        return scores

    def factors_of(self, i: int) -> dict[str, torch.Tensor]:
        """Candidate ``i``'s factors exactly as ``candidate_blocks`` and the codec give them."""
        if i == 0:
            return self.generated
        codec = BlockCodec(self.gen.layout)
        blocks = self.cands.exact_blocks(i - 1)
        codec.check_finite(blocks, what=f"candidate {self.names[i]!r}")
        return {k: v.float() for k, v in codec.decode(blocks, copy=True).items()}


def _screen(rows: torch.Tensor, screen: Screen, score) -> dict[int, float]:
    """The screen's scores ``{candidate index: L1}`` of the candidates it visits (see
    :class:`Screen`); ``rows`` are the prior candidates' coefficients (candidate ``i + 1``) and
    ``score(indices)`` returns their screen scores."""
    budget = min(screen.budget, len(rows) + 1)
    neighbours = (torch.cdist(rows, rows).argsort(1)[:, 1 : screen.neighbours + 1] + 1).tolist()
    first = [0] + [g[0] + 1 for g in _clusters(rows, screen.start)][: budget - 1]
    rough = dict(zip(first, [float(v) for v in score(first)]))
    expanded = {0}  # the generated weights are not in the basis: no neighbours
    while len(rough) < budget:
        best = min((i for i in rough if i not in expanded), key=lambda i: (rough[i], i), default=None)
        if best is None:
            break
        expanded.add(best)
        new = [j for j in neighbours[best - 1] if j not in rough][: budget - len(rough)]
        if new:
            rough.update(zip(new, [float(v) for v in score(new)]))
    return rough


def _rescored(rough: dict[int, float], screen: Screen) -> list[int]:
    """The ``rescore`` best of the screen and the generated weights (index 0), in index order."""
    return sorted(set(sorted(rough, key=lambda i: (rough[i], i))[: screen.rescore]) | {0})


def choose_on_pairs(
    model: nn.Module,
    adapter,
    gen,
    generated: dict[str, torch.Tensor],
    concept,
    pairs,
    *,
    batch_size: int = 16,
    progress=None,
    screen: Screen | None = DEFAULT_SCREEN,
) -> tuple[dict[str, torch.Tensor], Choice]:
    """The factors (or delta) among ``generated`` and the generator's candidates for ``concept``
    whose merged weights give the lowest L1 on ``pairs``, and the :class:`Choice`.

    ``gen`` is the loaded ``WeightGenerator`` and ``concept`` its ``ResolvedConcept`` (``initialize``
    resolves it once; a text is resolved here). With more candidates than ``screen.above``
    (the bundled generator offers 333), they are screened (:class:`Screen`): the choice is then
    the best of the candidates rescored on every pair, not necessarily of all of them;
    ``screen=None`` scores every candidate on every pair. ``progress(done, total)`` is called
    after each forward pass. Non-finite generated weights, candidates or scores are refused,
    never silently replaced by another candidate. Under ``torch.distributed`` the scores are
    averaged over the ranks at every stage, so every rank scores the same candidates and picks
    the same start even with its own pairs.
    """
    start = time.perf_counter()
    if screen is not None and screen.fast not in ("auto", None):
        raise WeightinitError(f"Screen.fast is 'auto' or None, got {screen.fast!r}")
    inputs, targets = check_pairs(pairs)
    sel = _Selection(model, adapter, gen, generated, concept, inputs, targets, batch_size)
    sel.progress = progress
    names, n = sel.names, len(inputs)
    screened = screen is not None and len(names) > screen.above
    fast = screened and screen.fast == "auto" and _fast_screen_supported(next(sel.probes["exact"].parameters()).device)
    if fast:
        sel.add_fast()
    with torch.no_grad(), sel.mode():
        if not screened:
            sel.total = len(names)
            exact = dict(enumerate(sel.score(list(range(len(names)))).tolist()))
            scored, rescored = len(names), 0
        else:
            sel.total = min(screen.budget, len(names)) + (screen.rescore + 1 if fast else 0)
            kind = "fast" if fast else "exact"
            rough = _screen(sel.cands.rows.cpu(), screen, lambda idx: sel.score(idx, kind=kind).tolist())
            again = _rescored(rough, screen)
            scored, rescored = len(rough), (len(again) if fast else 0)
            sel.total = scored + rescored
            exact = dict(zip(again, sel.score(again).tolist())) if fast else rough
    best = min(exact, key=lambda i: (exact[i], i))  # the first of equals: the generated weights win ties
    choice = Choice(names[best], float(exact[best]), float(exact[0]), len(names), n, 0.0, scored, rescored, screened)
    chosen = sel.factors_of(best)
    choice.seconds = time.perf_counter() - start
    return chosen, choice
