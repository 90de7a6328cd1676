"""Text embeddings kept on disk between processes, so a concept encoded once is not encoded again.

Loading the text encoder (transformers' BERT classes and the model's weights) is the largest part
of a ``weightinit sample`` after the fixed imports; with the text's embedding on disk the encoder
is not loaded at all. One small safetensors file per (encoder files, max_length, text), under
``$WEIGHTINIT_CACHE/text`` (default ``$XDG_CACHE_HOME/weightinit`` or ``~/.cache/weightinit``).
``WEIGHTINIT_TEXT_CACHE=0`` turns it off.

Only an encoder in a local folder is cached (the bundled default is one): its key holds each model
file's name, size and modification time, so a changed or reinstalled encoder never reads stale
embeddings. A file that cannot be read is ignored (and written anew), one that cannot be written
is skipped: the cache never makes an encoding fail.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from weightinit.errors import CheckpointError
from weightinit.fileio import atomic_path

FORMAT = 1
CACHE_ENV = "WEIGHTINIT_CACHE"
SWITCH_ENV = "WEIGHTINIT_TEXT_CACHE"


def cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "weightinit"


class TextCache:
    """The on-disk embeddings of one encoder at one ``max_length``; ``None`` from :meth:`for_encoder`
    where the encoder cannot be cached (not a local folder) or the cache is off."""

    def __init__(self, folder: Path, identity: dict) -> None:
        self.folder = folder
        self.identity = identity

    @classmethod
    def for_encoder(cls, source: str | os.PathLike, max_length: int) -> TextCache | None:
        if os.environ.get(SWITCH_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
            return None
        source = Path(source)
        if not source.is_dir():
            return None
        files = sorted(p for p in source.iterdir() if p.is_file())
        stamp = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        identity = {"format": FORMAT, "encoder": str(source.resolve()), "files": stamp, "max_length": max_length}
        return cls(cache_root() / "text", identity)

    def _path(self, text: str) -> Path:
        key = json.dumps({**self.identity, "text": text}, sort_keys=True)
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()}.safetensors"

    def get(self, text: str) -> tuple[dict[str, torch.Tensor], int] | None:
        """``(tensors, token count before truncation)`` of ``text``, or None if not cached."""
        from safetensors import safe_open

        path = self._path(text)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("text") != text:
                    return None
                return {name: f.get_tensor(name) for name in ("tokens", "mask", "pooled")}, int(meta["token_count"])
        except Exception:  # a torn or foreign file is a miss; the encoder writes it anew
            return None

    def remove(self, text: str) -> None:
        self._path(text).unlink(missing_ok=True)

    def put(self, text: str, tensors: dict[str, torch.Tensor], token_count: int) -> None:
        from safetensors.torch import save_file

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(self._path(text)) as tmp:
                meta = {"text": text, "token_count": str(token_count)}
                save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)
        except (OSError, CheckpointError):  # a read-only or full disk: encode again next time
            pass
