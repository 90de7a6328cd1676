"""The one resolver of generator references: a local folder, or a hub repo ``org/name``.

A hub repo is fetched with ``huggingface_hub`` into its cache (only the files asked for, when a
listing needs only the JSON configs); under ``HF_HUB_OFFLINE`` only the local cache is read. Every
failure (a malformed id, a repo missing from the cache, the network, authentication) is one
:class:`~weightinit.errors.CheckpointError` line. Installed generators are found by name in
:mod:`weightinit.generators`, which uses this module for the hub ids among them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from weightinit.errors import CheckpointError

#: ``org/name``: what the hub accepts as a model repo id.
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` is set: then only the local hub cache is read."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def is_hub_id(text: str) -> bool:
    return bool(HUB_ID.fullmatch(str(text))) and not Path(str(text)).expanduser().exists()


def resolve(
    path_or_hub_id: str | os.PathLike,
    *,
    revision: str | None = None,
    files: Sequence[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | None = None,
    local_only: bool | None = None,
) -> Path:
    """The folder a generator reference names: a local folder as it is, else the snapshot of the
    hub repo (``files``: only those; ``local_only``: default ``HF_HUB_OFFLINE``)."""
    path = Path(path_or_hub_id).expanduser()
    if path.is_dir():
        return path
    text = str(path_or_hub_id)
    if not is_hub_id(text):
        raise CheckpointError(f"no generator folder at {text} (and it is not a hub id of the form org/name)")
    from huggingface_hub import snapshot_download

    offline = hub_offline() if local_only is None else local_only
    try:
        folder = snapshot_download(
            text,
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            local_files_only=offline,
            allow_patterns=list(files) if files else None,
        )
    except Exception as exc:  # a missing cache entry, the network, authentication: one line each
        where = "in the local hub cache (HF_HUB_OFFLINE is set)" if offline else "on the hub"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        at = f" at revision {revision}" if revision else ""
        raise CheckpointError(f"cannot find generator {text!r}{at} {where}: {first}") from None
    folder = Path(folder)
    missing = [f for f in files or () if not (folder / f).is_file()]
    if missing:
        raise CheckpointError(f"hub repo {text!r} is not a weightinit generator: it has no {missing[0]}")
    return folder


def download(repo_id: str, *, revision: str | None = None, token: str | None = None) -> Path:
    """Fetch a whole generator repo into the hub cache (so that offline use finds it); its folder."""
    if hub_offline():
        raise CheckpointError(f"cannot download {repo_id!r}: HF_HUB_OFFLINE is set (unset it to fetch)")
    return resolve(repo_id, revision=revision, token=token, local_only=False)
