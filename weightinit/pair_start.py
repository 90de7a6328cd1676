"""A start generated from the concept text and a few of the user's (input, target) pairs.

1. **Propose**: the edit's features (:func:`weightinit.pair_features.pair_features`) give points
   of the retrieval prior's span: the text's blend, the coefficients a ridge regression predicts
   from the features (a residual to the blend), and the training concepts whose own pairs look
   most alike (nearest in standardised feature space). With ``text_origin`` other than ``span``,
   the text's point is the start text alone writes (a generator's weight blend), see
   :func:`text_origins`.
2. **Check**: the network's L1 on the pairs picks the best of those ``checked`` points.
3. **Fit**: ``fit_steps`` Adam steps in the span move it to fit the pairs
   (:func:`weightinit.pair_fit.fit_to_pairs`).

What is learned, on the training concepts (each with its own first pairs as the condition and
its own coefficients as the target, its group left out of the text's blend as a new concept's
would be): the features' statistics, the regression and the table of the training concepts'
features, saved in the generator folder as ``pair_start.safetensors`` with the settings
(``checked``, ``fit_steps``, ``fit_lr``, ``text_origin``), which were chosen on training concepts leave-group-out
(the source repository's ``experiments/pair_generator.py``).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from weightinit.concepts.concept import concept_group
from weightinit.errors import CheckpointError, InvalidWeights, WeightinitError
from weightinit.fileio import read_safetensors, save_safetensors
from weightinit.pair_features import pair_features
from weightinit.pair_fit import PairFit, PriorSpan, fit_to_pairs
from weightinit.ranks import mean_over_ranks
from weightinit.recipe import batch_statistics

PAIR_START_NAME = "pair_start.safetensors"
_TENSORS = ("mean", "std", "ridge", "keys", "coef")

#: Where the pair start's text point comes from: the span's point of the text's factor blend, or the
#: start text alone writes (a weight blend), with the regressed point moved with it or left at the span's.
TEXT_ORIGINS = ("span", "written", "written-text-only")
#: The settings a generator's pair start is saved with: chosen on training concepts, leave-group-out,
#: as the best median step-0 PSNR within 0.25 s at 64 px on one thread (docs/measurements/pair_generator.json).
DEFAULT_SETTINGS = {"checked": 4, "fit_steps": 3, "fit_lr": 0.2, "text_origin": "span"}
#: The ridge penalty of the regression (on standardised features; the intercept is not shrunk):
#: the best on training concepts, leave-group-out (docs/measurements/pair_start.json).
DEFAULT_RIDGE = 100.0
#: Pairs per training concept the features are taken from: what the benchmark gives a user.
DEFAULT_PAIRS = 8


@dataclass(frozen=True)
class PairProposer:
    """Pair features (and the text's coefficients) -> proposed coefficient rows."""

    mean: torch.Tensor  # [F] of the training concepts' features
    std: torch.Tensor  # [F]
    ridge: torch.Tensor  # [F + 1, R]: standardised features and 1 -> coefficients - text's
    keys: torch.Tensor  # [N, F] the training concepts' standardised features
    coef: torch.Tensor  # [N, R] their coefficients (the prior's rows)
    names: tuple[str, ...] = ()  # the training concepts of ``keys``
    #: points checked on the pairs (1: the text's blend alone, 2: and the regressed one, more:
    #: and the nearest concepts), Adam steps then, and their learning rate (pair_fit's units)
    checked: int = 2
    fit_steps: int = 0
    fit_lr: float = 0.1
    #: one of :data:`TEXT_ORIGINS` (files from before it was a setting: ``span``)
    text_origin: str = "span"

    @classmethod
    def fit(
        cls, features: torch.Tensor, texts: torch.Tensor, coef: torch.Tensor, ridge: float, names=(), **settings
    ) -> PairProposer:
        """From ``features [N, F]`` of N training concepts' pairs, the text's coefficients
        ``texts [N, R]`` for each (its own group left out of the blend, as a new concept's would
        be) and their own coefficients ``coef [N, R]``; ``ridge`` shrinks every weight but the intercept."""
        if not (len(features) == len(texts) == len(coef)) or len(features) < 2:
            raise WeightinitError("a pair proposer needs the same number (at least 2) of features, texts and rows")
        mean, std = features.mean(0), features.std(0).clamp_min(1e-6)
        z = (features - mean) / std
        design = torch.cat([z, torch.ones(len(z), 1)], dim=1).double()
        shrink = torch.eye(design.shape[1], dtype=torch.float64) * ridge
        shrink[-1, -1] = 0
        w = torch.linalg.solve(design.T @ design + shrink, design.T @ (coef - texts).double())
        return cls(mean.float(), std.float(), w.float(), z.float(), coef.float(), tuple(names), **settings)

    def propose(self, features: torch.Tensor, text: torch.Tensor, count: int) -> tuple[torch.Tensor, list[str]]:
        """The first ``count`` (at least 1) of: the text's coefficients, the regressed ones, then the
        rows of the training concepts nearest in feature space, nearest first; as ``[count, R]``
        and their names."""
        z = (features.float() - self.mean) / self.std
        regressed = text + torch.cat([z, z.new_ones(1)]) @ self.ridge
        order = torch.cdist(z[None], self.keys)[0].argsort()[: max(count - 2, 0)].tolist()
        rows = torch.cat([text[None], regressed[None], self.coef[order]])[:count]
        names = ["text blend", "regressed from the pairs"] + [
            f"concept {self.names[i]}" if self.names else f"concept {i}" for i in order
        ]
        return rows, names[:count]

    def truncated(self, rank: int) -> PairProposer:
        """The same pair start for the prior truncated to its first ``rank`` components
        (``RetrievalPrior.truncated``): each coefficient's regression is its own column, so
        keeping the first columns is exactly the fit at that rank."""
        return replace(self, ridge=self.ridge[:, :rank].clone(), coef=self.coef[:, :rank].clone())

    def with_settings(self, **settings) -> PairProposer:
        proposer = replace(self, **settings)
        proposer.check()
        return proposer

    def save(self, path: str | os.PathLike, fingerprint: str) -> None:
        meta = {
            "weightinit.fingerprint": fingerprint,
            "weightinit.names": "\n".join(self.names),
            "weightinit.checked": str(self.checked),
            "weightinit.fit_steps": str(self.fit_steps),
            "weightinit.fit_lr": repr(self.fit_lr),
            "weightinit.text_origin": self.text_origin,
        }
        save_safetensors(path, {k: getattr(self, k) for k in _TENSORS}, meta)

    @classmethod
    def load(cls, path: str | os.PathLike, fingerprint: str) -> PairProposer:
        tensors, meta = read_safetensors(path)
        missing = set(_TENSORS) - tensors.keys()
        if missing:
            raise CheckpointError(f"{path} is not a pair start: it lacks {', '.join(sorted(missing))}")
        if meta.get("weightinit.fingerprint") != fingerprint:
            raise CheckpointError(f"{path}: made for layout {meta.get('weightinit.fingerprint')}, not {fingerprint}")
        try:
            names = tuple(n for n in meta.get("weightinit.names", "").split("\n") if n)
            settings = dict(
                checked=int(meta["weightinit.checked"]),
                fit_steps=int(meta["weightinit.fit_steps"]),
                fit_lr=float(meta["weightinit.fit_lr"]),
                text_origin=meta.get("weightinit.text_origin", "span"),
            )
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"{path}: its settings are missing or unreadable ({exc})") from None
        proposer = cls(**{k: tensors[k].float() for k in _TENSORS}, names=names, **settings)
        proposer.check()
        return proposer

    def check(self, rank: int | None = None) -> None:
        """The parts agree with each other (and with a prior of ``rank``)."""
        n, f = self.keys.shape
        r = self.coef.shape[1]
        ok = (
            self.mean.shape == self.std.shape == (f,)
            and self.ridge.shape == (f + 1, r)
            and self.coef.shape[0] == n
            and (not self.names or len(self.names) == n)
            and self.checked >= 1
            and self.fit_steps >= 0
            and self.fit_lr > 0
            and self.text_origin in TEXT_ORIGINS
        )
        if not ok:
            raise CheckpointError(
                f"pair start parts disagree: keys {list(self.keys.shape)}, ridge {list(self.ridge.shape)}, "
                f"coef {list(self.coef.shape)}, {len(self.names)} names, checked {self.checked}, "
                f"fit_steps {self.fit_steps}, fit_lr {self.fit_lr}, text_origin {self.text_origin!r} "
                f"(one of {', '.join(TEXT_ORIGINS)})"
            )
        if rank is not None and r != rank:
            raise CheckpointError(f"the pair start predicts {r} coefficients; the generator's prior has rank {rank}")


@dataclass
class PairStart:
    """What :func:`start_from_pairs` did, for the report."""

    chosen: str
    pairs_l1: float
    text_l1: float
    checked: int
    pairs: int
    seconds: float
    fit: PairFit | None = None
    l1: dict[str, float] = field(default_factory=dict)


def text_coefficients(gen, concept) -> torch.Tensor:
    """``[R]``: the prior coefficients of the start text alone gives ``concept`` (a
    ``ResolvedConcept``): its blend, a far text's fallback blend, or the zoo mean (zeros)."""
    if concept.far and concept.fallback is not None:
        weights = concept.fallback_weights
        if weights is None:
            return torch.zeros(gen.prior.rank)
    else:
        weights = concept.weights
    return gen.prior.coefficients_of(weights.reshape(1, -1).to(gen.prior.coef.dtype))[0].float()


def written_origin(span: PriorSpan, gen, weights: torch.Tensor | None) -> torch.Tensor | None:
    """The normalised blocks of the weight-space blend ``weights [C]`` when ``gen`` blends in
    weight space (what ``WeightGenerator.generate`` writes for a text of that blend); ``None``
    otherwise. A weight blend is not a point of the span (the span blends factors)."""
    if gen.weight_blend is None or weights is None:
        return None
    return span.origin_of(gen.blend_start(weights))


def text_origins(origins: list[torch.Tensor], written: torch.Tensor | None, text_origin: str) -> list[torch.Tensor]:
    """``origins`` (the proposed points: the text's blend, the regressed one, concepts) as
    ``text_origin`` (:data:`TEXT_ORIGINS`) has them: the text's point replaced by ``written`` (the
    start text alone writes, where there is one), the regressed point, a residual to the text's,
    moved with it or not."""
    if written is None or text_origin == "span":
        return origins
    moved = [o + (written - origins[0]) for o in origins[1:2]] if text_origin == "written" else origins[1:2]
    return [written] + moved + origins[2:]


@torch.no_grad()
def _check(span: PriorSpan, origins: list[torch.Tensor], inputs, targets) -> list[float]:
    with batch_statistics(span.model):
        return [float(span.l1(span.blocks(o), inputs, targets)) for o in origins]


def start_from_pairs(
    model: nn.Module, adapter, gen, concept, pairs, *, fit_steps: int | None = None
) -> tuple[dict[str, torch.Tensor], PairStart]:
    """The factors of the start generated from ``concept`` (a ``ResolvedConcept``) and ``pairs``
    (as :func:`weightinit.selection.check_pairs` returns them) by ``gen.pair_start`` (module
    docstring), on ``model``, a network of the generator's own layout (left unchanged);
    ``fit_steps`` replaces the pair start's own number of steps."""
    start = time.perf_counter()
    proposer = gen.pair_start
    span = PriorSpan(model, adapter, gen)
    inputs, targets = (t.to(device=span.device, dtype=torch.float32) for t in pairs)
    text = text_coefficients(gen, concept)
    # under torch.distributed each rank has its own pairs: what decides the start is averaged first
    features = mean_over_ranks(pair_features(inputs.cpu(), targets.cpu()), span.device)
    rows, names = proposer.propose(features, text, proposer.checked)
    origins = [span.origin_at(r) for r in rows]
    if proposer.text_origin != "span":
        origins = text_origins(origins, written_origin(span, gen, concept.start_weights), proposer.text_origin)
    scores = mean_over_ranks(torch.tensor(_check(span, origins, inputs, targets), dtype=torch.float64), span.device)
    scores = scores.tolist()
    bad = [n for n, v in zip(names, scores) if not math.isfinite(v)]
    if bad:
        raise InvalidWeights(f"the pair start's {bad[0]!r} gave NaN or Inf on the pairs; nothing was written")
    best = min(range(len(scores)), key=lambda i: (scores[i], i))
    factors = span.factors(span.blocks(origins[best]))
    fitted = None
    steps = proposer.fit_steps if fit_steps is None else fit_steps
    if steps:
        factors, fitted = fit_to_pairs(
            model,
            adapter,
            gen,
            factors,
            pairs,
            steps=steps,
            lr=proposer.fit_lr,
            origin=origins[best],
            l1_before=scores[best],
            span=span,
        )
    report = PairStart(
        chosen=names[best],
        pairs_l1=fitted.l1_after if fitted is not None else scores[best],
        text_l1=scores[0],
        checked=len(rows),
        pairs=len(inputs),
        seconds=time.perf_counter() - start,
        fit=fitted,
        l1={n: round(v, 6) for n, v in zip(names, scores)},
    )
    return factors, report


@dataclass
class PairStartData:
    """What a pair start learns from: per training concept of the prior, its group, the features
    of its first pairs, and its text's blend with its whole group left out (``[N, R]``, and its weights)."""

    ids: list[str]
    groups: list[str]
    features: torch.Tensor
    texts: torch.Tensor
    #: ``[N, C]``: the blend weights behind ``texts`` (what a weight-space blend of them needs)
    weights: torch.Tensor | None = None

    def proposer(self, coef: torch.Tensor, keep: torch.Tensor | None = None, **settings) -> PairProposer:
        """The proposer fitted on the concepts where ``keep`` (all by default)."""
        keep = torch.ones(len(self.ids), dtype=torch.bool) if keep is None else keep
        names = [c for c, k in zip(self.ids, keep.tolist()) if k]
        ridge = settings.pop("ridge", DEFAULT_RIDGE)
        return PairProposer.fit(self.features[keep], self.texts[keep], coef[keep], ridge, names, **settings)


def pair_start_data(gen, zoo, *, pairs: int = DEFAULT_PAIRS, photos=None) -> PairStartData:
    """:class:`PairStartData` of ``gen``'s training concepts from ``zoo`` (a ``ZooWeights``, the
    one ``gen`` was trained on; ``photos`` as its pair sources take them)."""
    if gen.prior is None:
        raise WeightinitError(f"generator {gen.name} has no retrieval prior: a pair start proposes points of its span")
    prior = gen.prior
    ids = list(prior.concept_ids)
    groups = [concept_group(c) for c in ids]
    features = torch.stack([pair_features(*zoo.train_pairs(c, pairs, photos)) for c in ids])
    queries = gen.encode_text([zoo.record(c).text for c in ids]).pooled
    same = torch.tensor([[g == h for h in groups] for g in groups])
    if bool(same.all(1).any()):
        raise WeightinitError("a pair start needs training concepts of at least two groups (strengths, reverse)")
    weights = prior.concept_weights(queries, exclude=same)
    texts = prior.coefficients_of(weights.to(prior.coef.dtype)).float()
    return PairStartData(ids, groups, features, texts, weights.float())


def fit_pair_start(gen, zoo, *, photos=None, **settings) -> PairProposer:
    """The pair start ``gen`` learns from ``zoo`` (the one it was trained on): every training
    concept of its prior, with :data:`DEFAULT_SETTINGS` unless ``settings`` say otherwise."""
    data = pair_start_data(gen, zoo, photos=photos)
    return data.proposer(gen.prior.coef.float(), **{**DEFAULT_SETTINGS, **settings})
