"""Text embeddings kept on disk between processes, so a concept encoded once is not encoded again.

Loading the text encoder (transformers' BERT classes and the model's weights) is the largest part
of a ``weightinit sample`` after the fixed imports; with the text's embedding on disk the encoder
is not loaded at all. One small safetensors file per (encoder files, max_length, text), under
``$WEIGHTINIT_CACHE/text`` (default ``$XDG_CACHE_HOME/weightinit`` or ``~/.cache/weightinit``).
``WEIGHTINIT_TEXT_CACHE=0`` turns it off.

Only an encoder in a local folder is cached (the bundled default is one): its key holds each model
file's name, size and modification time, the torch, transformers and tokenizers versions and the
device, so a changed or reinstalled encoder never reads stale embeddings. A file that cannot be
read is ignored (and written anew), one that cannot be written is skipped, and no home directory
means no cache: the cache never makes an encoding fail.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

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
    where the encoder cannot be cached (not a local folder), the cache is off or has no home."""

    def __init__(self, folder: Path, identity: dict) -> None:
        self.folder = folder
        self.identity = identity

    @classmethod
    def for_encoder(cls, source: str | os.PathLike, max_length: int, device: torch.device) -> TextCache | None:
        if os.environ.get(SWITCH_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
            return None
        try:
            source = Path(source)
            if not source.is_dir():
                return None
            files = sorted(p for p in source.rglob("*") if p.is_file())
            stamp = [(str(p.relative_to(source)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
            root = cache_root()
        except (OSError, RuntimeError):  # an unreadable folder, or no home directory to cache in
            return None
        identity = {
            "format": FORMAT,
            "encoder": str(source.resolve()),
            "files": stamp,
            "max_length": max_length,
            # a new torch or transformers (a tokenizer fix) or another device may encode other bits
            "libraries": [torch.__version__, _version("transformers"), _version("tokenizers")],
            "device": device.type,
        }
        return cls(root / "text", identity)

    def _path(self, text: str) -> Path:
        key = json.dumps({**self.identity, "text": text}, sort_keys=True)
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()}.safetensors"

    def get(self, text: str) -> tuple[dict[str, torch.Tensor], int] | None:
        """``(tensors, token count before truncation)`` of ``text``, or None if not cached."""
        from safetensors import safe_open

        try:
            path = self._path(text)
            if not path.is_file():
                return None
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("text") != text:
                    return None
                return {name: f.get_tensor(name) for name in ("tokens", "mask", "pooled")}, int(meta["token_count"])
        except Exception:  # unreadable, torn or foreign: a miss, and the encoder writes it anew
            return None

    def remove(self, text: str) -> None:
        try:
            self._path(text).unlink(missing_ok=True)
        except OSError:
            pass

    def put(self, text: str, tensors: dict[str, torch.Tensor], token_count: int) -> None:
        """Written beside and renamed into place (another process may write the same text at once;
        either file is whole), without fsync: a file lost to a crash is only a miss."""
        from safetensors.torch import save_file

        from weightinit.fileio import atomic_path

        try:
            with atomic_path(self._path(text), durable=False) as tmp:
                meta = {"text": text, "token_count": str(token_count)}
                save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)
        except Exception:  # a read-only or full disk: encode again next time
            pass


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None
