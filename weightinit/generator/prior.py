"""The retrieval prior: a text-dependent centre for the denoiser, blended from the zoo by text similarity.

Measured on the default zoo (the source repository's ``experiments/generator.py``), a denoiser that
learns each concept's difference to the zoo's *mean* block fits its training concepts but, on
held-out text, falls back to that mean: with ~190 training concepts a learned text -> weights map
does not generalise beyond the mean, while a similarity-weighted average of the training
concepts does (it interpolates strengths and blends the parts of a composition). So the
generator's centre is that average, and the denoiser learns what remains::

    weights(text) = mean + sum_c w_c(text) * delta_c + denoiser residual
    w(text)       = softmax over training phrasings of cos(text, phrasing) / temperature,
                    summed per concept

``delta_c`` are the training concepts' normalised blocks minus their mean, stored as a
principal-component basis (``basis [R, num_blocks * block_size]``, float16) and per-concept
coefficients (``coef [C, R]``). By default every component is kept (R = C - 1 at most): a blend at
the prior's low temperature is nearly one concept, and truncating its delta maps images worse even
where it is closer in weight space. Measured by step-0 test PSNR with each training concept left
out of its own prior (``experiments/prior_rank.py``, 60 of them): median 19.43 dB at R = 32,
19.55 at 64, 20.82 at 128, 21.00 with every component. ``temperature`` is chosen by
leave-one-concept-out error on the training concepts unless given. Keys are the L2-normalised
pooled text embeddings of every training phrasing; held-out concepts are never read.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F

from weightinit.errors import CheckpointError, WeightinitError
from weightinit.fileio import read_safetensors, save_safetensors

PRIOR_NAME = "prior.safetensors"
#: ``None``: keep every principal component (see the module docstring for the measurement).
DEFAULT_RANK: int | None = None
TEMPERATURE_GRID = (0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3)
#: The blends offered as candidate starts when a user's pairs choose among them
#: (``RetrievalPrior.candidates``): how sharply the blend follows text similarity, and how far it
#: goes from the zoo mean (1 is the blend itself, above 1 extrapolates).
CANDIDATE_TEMPERATURES = (0.003, 0.01, 0.03, 0.1)
CANDIDATE_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5)


@dataclass
class RetrievalPrior:
    keys: torch.Tensor  # [P, D] unit-norm pooled text embeddings of the training phrasings
    owner: torch.Tensor  # [P] concept of each phrasing
    coef: torch.Tensor  # [C, R] each concept's delta in the basis
    basis: torch.Tensor  # [R, num_blocks * block_size] orthonormal rows
    temperature: float
    block_size: int
    concept_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.keys.ndim != 2 or self.owner.shape != (self.keys.shape[0],):
            raise WeightinitError(
                f"prior keys [P, D] and owner [P] disagree: {list(self.keys.shape)}, {list(self.owner.shape)}"
            )
        if self.coef.ndim != 2 or self.basis.ndim != 2 or self.coef.shape[1] != self.basis.shape[0]:
            raise WeightinitError(
                f"prior coef [C, R] and basis [R, D] disagree: {list(self.coef.shape)}, {list(self.basis.shape)}"
            )
        if self.basis.shape[1] % self.block_size:
            raise WeightinitError(
                f"prior basis width {self.basis.shape[1]} is not a multiple of the block size {self.block_size}"
            )
        if self.owner.numel() and (int(self.owner.min()) < 0 or int(self.owner.max()) >= self.coef.shape[0]):
            raise WeightinitError("prior owner index out of range of its concepts")
        if not self.temperature > 0:
            raise WeightinitError(f"prior temperature must be positive, got {self.temperature}")

    @cached_property
    def basis32(self) -> torch.Tensor:
        """``basis`` in float32, cast once: a cast of the stored half-precision basis costs tens of
        milliseconds, a tenth of a pair start's budget (a prior's tensors are never changed in place)."""
        return self.basis.to(torch.float32)

    @property
    def num_blocks(self) -> int:
        return self.basis.shape[1] // self.block_size

    @property
    def rank(self) -> int:
        return self.basis.shape[0]

    # --- building -----------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        deltas: torch.Tensor,
        keys: torch.Tensor,
        owner: torch.Tensor,
        *,
        rank: int | None = DEFAULT_RANK,
        temperature: float | None = None,
        concept_ids: tuple[str, ...] = (),
    ) -> RetrievalPrior:
        """From the training concepts' centred normalised blocks ``deltas [C, N, block_size]``;
        ``rank``: principal components kept at most (``None``: all of them)."""
        if deltas.ndim != 3:
            raise WeightinitError(f"prior deltas must be [concepts, blocks, block_size], got {list(deltas.shape)}")
        if rank is not None and rank < 1:
            raise WeightinitError(f"prior rank must be positive or None (every component), got {rank}")
        c, n, bs = deltas.shape
        flat = deltas.reshape(c, n * bs).to(torch.float64)
        # Principal components through the small C x C Gram matrix (C << N * block_size).
        evals, evecs = torch.linalg.eigh(flat @ flat.T)
        order = evals.flip(0)
        nonzero = int((order > order[0] * 1e-10).sum()) if c else 0
        keep = nonzero if rank is None else min(rank, nonzero)
        if keep == 0:
            raise WeightinitError("prior needs at least two training concepts that differ")
        u = evecs.flip(1)[:, :keep]
        s = order[:keep].sqrt()
        basis = (u.T @ flat) / s[:, None]
        coef = u * s
        # rounded to float16 here as on disk, so a saved and reloaded prior blends exactly alike
        keys = F.normalize(keys.to(torch.float32), dim=-1).to(torch.float16).to(torch.float32)
        owner = owner.to(torch.long)
        if temperature is None:
            temperature = choose_temperature(keys, owner, coef.to(torch.float32))
        return cls(
            keys, owner, coef.to(torch.float32), basis.to(torch.float16), float(temperature), bs, tuple(concept_ids)
        )

    def truncated(self, rank: int) -> RetrievalPrior:
        """The same prior keeping its first ``rank`` principal components (the basis rows are
        ordered by singular value, so this is the rank-``rank`` fit)."""
        if not 1 <= rank <= self.rank:
            raise WeightinitError(f"prior rank must be between 1 and {self.rank}, got {rank}")
        return dataclasses.replace(self, coef=self.coef[:, :rank].clone(), basis=self.basis[:rank].clone())

    # --- using --------------------------------------------------------------------------------
    @property
    def concept_names(self) -> tuple[str, ...]:
        """The training concepts' ids (``#i`` where the prior does not know them)."""
        return self.concept_ids or tuple(f"#{i}" for i in range(self.coef.shape[0]))

    def similarity(self, *queries: torch.Tensor) -> list[torch.Tensor]:
        """``[Q, P]`` cosines of each group of pooled text embeddings ``[Q, D]`` to every training
        phrasing: the one place a text is compared with the zoo (everything else takes these).

        One product per group: a row's rounding depends on the size of its product, so a text
        alone is compared alone, as the blend always compared it."""
        return [self._cosines(q) for q in queries]

    def _cosines(self, query: torch.Tensor) -> torch.Tensor:
        return F.normalize(query.to(torch.float32), dim=-1) @ self.keys.T

    def weights_from(
        self, cosines: torch.Tensor, temperature: float | None = None, exclude: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``[Q, C]`` blending weights from phrasing ``cosines [Q, P]`` (:meth:`similarity`): a
        softmax of cosine / temperature over the phrasings, summed per concept (rows sum to 1)."""
        return _weights(cosines, self.owner, self.coef.shape[0], temperature or self.temperature, exclude)

    def best_similarity(self, cosines: torch.Tensor) -> torch.Tensor:
        """``[Q, C]``: the best of phrasing ``cosines [Q, P]`` per concept."""
        out = torch.full((cosines.shape[0], self.coef.shape[0]), -1.0)
        return out.scatter_reduce(1, self.owner.expand(cosines.shape[0], -1), cosines, reduce="amax")

    def concept_weights(
        self, query: torch.Tensor, exclude: torch.Tensor | None = None, *, temperature: float | None = None
    ) -> torch.Tensor:
        """``[Q, C]`` blending weights for pooled text embeddings ``query [Q, D]`` (rows sum to 1).

        ``exclude [Q]`` masks one concept per query (leave-one-out), a boolean ``exclude [Q, C]``
        the concepts where it is True (leave-group-out).
        """
        return self.weights_from(self._cosines(query), temperature, exclude)

    def concept_similarity(self, query: torch.Tensor) -> torch.Tensor:
        """``[Q, C]``: the best cosine of each query to any phrasing of each concept."""
        return self.best_similarity(self._cosines(query))

    def coefficients_of(self, weights: torch.Tensor) -> torch.Tensor:
        """Basis coefficients ``[Q, R]`` (or ``[R]``) of blend ``weights`` ``[Q, C]`` (or ``[C]``)."""
        return weights @ self.coef

    def coefficients(self, query: torch.Tensor, exclude: torch.Tensor | None = None) -> torch.Tensor:
        """``[Q, R]`` basis coefficients of the blended delta (``exclude [Q]``: leave-one-out)."""
        return self.coefficients_of(self.concept_weights(query, exclude))

    def delta(self, coefficients: torch.Tensor) -> torch.Tensor:
        """The normalised delta ``[num_blocks, block_size]`` of basis ``coefficients`` (``[R]`` or ``[1, R]``)."""
        return (coefficients @ self.basis32).view(self.num_blocks, self.block_size)

    def blend(self, weights: torch.Tensor) -> torch.Tensor:
        """The normalised delta of a blend of the training concepts, ``weights`` ``[C]`` or ``[1, C]``:
        the one place the blend math is written."""
        return self.delta(self.coefficients_of(weights))

    def blocks(self, query: torch.Tensor) -> torch.Tensor:
        """The blended delta ``[num_blocks, block_size]`` (normalised) for one pooled embedding ``[1, D]``."""
        if query.ndim != 2 or query.shape[0] != 1:
            raise WeightinitError(f"prior blocks need one pooled text embedding [1, D], got {list(query.shape)}")
        return self.blend(self.concept_weights(query))

    def blocks_at(self, coefficients: torch.Tensor, block_index: torch.Tensor) -> torch.Tensor:
        """Rows of the blended delta: ``coefficients [B, R]`` at ``block_index [B]`` -> ``[B, block_size]``."""
        basis = self.basis.to(coefficients.dtype).view(self.rank, self.num_blocks, self.block_size)
        return torch.einsum("br,rbd->bd", coefficients, basis[:, block_index])

    def candidate_blends(self, cosines: torch.Tensor) -> list[tuple[str, float, torch.Tensor]]:
        """``(name, scale, weights [1, C])`` of the blends on the candidate grid of temperatures
        and scales for one text's phrasing ``cosines [1, P]``."""
        if cosines.ndim != 2 or cosines.shape[0] != 1:
            raise WeightinitError(f"prior candidates need the cosines of one text [1, P], got {list(cosines.shape)}")
        out = []
        for t in CANDIDATE_TEMPERATURES:
            weights = self.weights_from(cosines, t)
            out += [(f"blend t={t} x{a}", a, weights) for a in CANDIDATE_SCALES]
        return out

    def candidates(self, query: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """Other normalised deltas ``[num_blocks, block_size]`` the prior can offer for one pooled
        embedding ``[1, D]``, named: its blend on the candidate grid of temperatures and scales,
        then every training concept's own delta (as the basis keeps it)."""
        if query.ndim != 2 or query.shape[0] != 1:
            raise WeightinitError(f"prior candidates need one pooled text embedding [1, D], got {list(query.shape)}")
        return self.candidates_from(self._cosines(query))

    def candidates_from(self, cosines: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """:meth:`candidates` from one text's phrasing ``cosines [1, P]``."""
        out = [(name, a * self.blend(w)) for name, a, w in self.candidate_blends(cosines)]
        out += [(f"concept {name}", self.delta(self.coef[i])) for i, name in enumerate(self.concept_names)]
        return out

    # --- disk ---------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, fingerprint: str) -> None:
        tensors = {
            "keys": self.keys.to(torch.float16),
            "owner": self.owner.to(torch.int32),
            "coef": self.coef,
            "basis": self.basis,
        }
        meta = {
            "weightinit.fingerprint": fingerprint,
            "temperature": repr(self.temperature),
            "block_size": str(self.block_size),
            "concepts": json.dumps(list(self.concept_ids)),
        }
        save_safetensors(path, tensors, meta)

    @classmethod
    def load(cls, path: str | os.PathLike, fingerprint: str) -> RetrievalPrior:
        tensors, meta = read_safetensors(path)
        if meta.get("weightinit.fingerprint") != fingerprint:
            raise CheckpointError(f"{path}: made for layout {meta.get('weightinit.fingerprint')}, not {fingerprint}")
        try:
            return cls(
                tensors["keys"].to(torch.float32),
                tensors["owner"].to(torch.long),
                tensors["coef"].to(torch.float32),
                tensors["basis"],
                float(meta["temperature"]),
                int(meta["block_size"]),
                tuple(json.loads(meta.get("concepts", "[]"))),
            )
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"{path}: not a weightinit prior ({exc})") from None


def blend_weights(keys, owner, num_concepts, query, temperature, exclude=None) -> torch.Tensor:
    """``[Q, C]``: softmax over the phrasing keys of cos(query, key) / temperature, summed per concept."""
    return _weights(F.normalize(query.to(torch.float32), dim=-1) @ keys.T, owner, num_concepts, temperature, exclude)


def _weights(cosines, owner, num_concepts, temperature, exclude=None) -> torch.Tensor:
    logits = cosines / temperature
    if exclude is not None and exclude.dtype == torch.bool:  # [Q, C]: concepts left out of each row
        logits = logits.masked_fill(exclude[:, owner], float("-inf"))
    elif exclude is not None:
        logits = logits.masked_fill(owner[None, :] == exclude[:, None], float("-inf"))
    w = torch.softmax(logits, dim=-1)
    return torch.zeros(cosines.shape[0], num_concepts).index_add_(1, owner, w)


def choose_temperature(keys: torch.Tensor, owner: torch.Tensor, coef: torch.Tensor, grid=TEMPERATURE_GRID) -> float:
    """The temperature whose blend of the *other* concepts best predicts each training phrasing's concept.

    Error is measured in the basis (relative squared error of the coefficients), averaged over
    phrasings; leaving the whole concept out is what a held-out concept looks like.
    """
    c = coef.shape[0]
    target = coef[owner]
    norm = target.pow(2).sum(1).clamp(min=1e-12)
    best, best_err = grid[0], float("inf")
    for t in grid:
        pred = blend_weights(keys, owner, c, keys, t, exclude=owner) @ coef
        err = float(((pred - target).pow(2).sum(1) / norm).mean())
        if err < best_err:
            best, best_err = t, err
    return float(best)
