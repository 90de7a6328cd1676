"""Safe file I/O: atomic writes, and checkpoints that are never unpickled.

Every file weightinit writes goes to a temporary file in the same folder first and is renamed
into place, so a killed process never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import struct
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch

from weightinit.errors import CheckpointError, WeightinitError

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


#: temporary files being written now; a SIGTERM/SIGHUP removes them before the process ends
_PENDING: set[Path] = set()
_CLEANUP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


def _remove_pending_then_resend(signum, frame) -> None:
    for tmp in list(_PENDING):
        with contextlib.suppress(OSError):
            tmp.unlink()
    _PENDING.clear()
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
        return
    # the default action (terminate with this signal's status), as if we had never looked
    signal.signal(signum, signal.SIG_DFL if previous is None else previous)
    os.kill(os.getpid(), signum)


_previous_handlers: dict[int, object] = {}


@contextlib.contextmanager
def _cleanup_on_signals() -> Iterator[None]:
    """While a temporary file exists, SIGTERM/SIGHUP delete it first (a killed write leaves nothing)."""
    if threading.current_thread() is not threading.main_thread() or _previous_handlers:
        yield  # signal handlers can only be set from the main thread; nested writes share the outer one
        return
    try:
        for sig in _CLEANUP_SIGNALS:
            _previous_handlers[sig] = signal.signal(sig, _remove_pending_then_resend)
        yield
    finally:
        for sig, previous in _previous_handlers.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        _previous_handlers.clear()


def _os_error(path: Path, exc: OSError) -> CheckpointError:
    reason = exc.strerror or type(exc).__name__
    return CheckpointError(f"cannot write {path}: {reason} (errno {exc.errno}); nothing was written")


def check_output_path(path: str | os.PathLike) -> Path:
    """Fail before any work if ``path`` cannot be written: a folder, a path under a file, or a
    folder that is read-only (or on a read-only file system)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give a file name (e.g. {path / 'netG_init.safetensors'})")
    parent = path.parent
    for above in (parent, *parent.parents):
        if above.exists():
            if not above.is_dir():
                raise CheckpointError(f"cannot write {path}: {above} is a file, not a folder")
            if not os.access(above, os.W_OK | os.X_OK):
                raise CheckpointError(f"cannot write {path}: {above} is not writable (read-only folder or file system)")
            break
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.
    ``durable=False`` skips the fsync, for files whose loss in a crash costs only their remaking.

    The temporary file is removed on any failure, on Ctrl-C and on SIGTERM/SIGHUP; a full disk
    or an unwritable folder is one :class:`CheckpointError` line.
    """
    path = check_output_path(path)
    with _cleanup_on_signals():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
        except OSError as exc:
            raise _os_error(path, exc) from None
        tmp_path = Path(tmp)
        _PENDING.add(tmp_path)
        try:
            try:
                yield tmp_path
                if durable:
                    with open(tmp_path, "rb+") as f:
                        os.fsync(f.fileno())
                # mkstemp creates 0600; give the file the permissions a plain open() would have.
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp_path, 0o666 & ~umask)
                os.replace(tmp_path, path)
            except OSError as exc:  # ENOSPC, EROFS, EACCES...: the user's problem, one line
                raise _os_error(path, exc) from None
            except Exception as exc:  # safetensors reports a full disk as its own error type
                if "No space left" in str(exc) or "os error 28" in str(exc):
                    raise CheckpointError(
                        f"cannot write {path}: no space left on the device; nothing was written"
                    ) from None
                raise
        finally:
            _PENDING.discard(tmp_path)
            tmp_path.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def replace_marked_block(path: str | os.PathLike, start: str, end: str, block: str) -> None:
    """Replace ``path``'s text from marker ``start`` to marker ``end`` (both included) with ``block``
    (which carries its own markers), atomically; a file without both markers is one clear error."""
    path = Path(path)
    text = path.read_text()
    if start not in text or end not in text:
        raise WeightinitError(f"{path} has no {start} ... {end} block to rewrite")
    head, rest = text.split(start, 1)
    atomic_write_text(path, head + block + rest.split(end, 1)[1])


def read_json_object(path: str | os.PathLike) -> dict:
    """A JSON file that must hold an object; a missing, unparsable or non-object file is a
    :class:`CheckpointError` naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"missing file {path}") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} does not parse as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object")
    return data


def atomic_write_json(path: str | os.PathLike, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def save_safetensors(
    path: str | os.PathLike, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> None:
    """Atomic safetensors write (tensors made contiguous, shared storage broken)."""
    from safetensors.torch import save_file

    data = {
        k: v.detach().contiguous().clone() if _shares_any(v, tensors) else v.detach().contiguous()
        for k, v in tensors.items()
    }
    with atomic_path(path) as tmp:
        save_file(data, str(tmp), metadata=dict(metadata or {}))
        if metadata:
            _sort_metadata(tmp)


def _sort_metadata(path: Path) -> None:
    """Rewrite the header with its metadata in sorted order, in place and at the same length:
    safetensors keeps metadata in a hash map whose order varies per process, so the same
    tensors and metadata would otherwise give files with different sha256."""
    with open(path, "rb+") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        if "__metadata__" in header:
            header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        if len(text) <= size:  # same keys, values and escaping: always the same length
            f.seek(8)
            f.write(text + b" " * (size - len(text)))


def _shares_any(t: torch.Tensor, tensors: Mapping[str, torch.Tensor]) -> bool:
    ptr = t.untyped_storage().data_ptr()
    return sum(1 for v in tensors.values() if v.untyped_storage().data_ptr() == ptr) > 1


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such file: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            return {k: f.get_tensor(k) for k in f.keys()}, metadata
    except Exception as exc:  # safetensors raises several types for a bad header
        raise CheckpointError(f"{path} is not a readable safetensors file: {exc}") from None


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from safetensors, or from a torch file with ``weights_only=True`` (never unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such checkpoint: {path}")
    if path.suffix == ".safetensors":
        return read_safetensors(path)[0]
    if path.suffix in PICKLE_SUFFIXES:
        _check_torch_file(path)
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(
                f"{path} holds more than tensors and weightinit never unpickles arbitrary objects "
                f"(torch.load with weights_only=True refused it: {reason[:160]}); convert it to .safetensors"
            ) from None
        if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
            obj = obj["state_dict"]
        if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise CheckpointError(f"{path} does not hold a state dict of tensors")
        return dict(obj)
    raise CheckpointError(f"{path}: unknown checkpoint format (use .safetensors, or .pt/.pth/.bin)")


def _check_torch_file(path: Path) -> None:
    """A file ``torch.save`` wrote is a zip archive (or, before torch 1.6, a pickle): anything else
    is told what it is, not sent to the unpickler's error about arbitrary objects."""
    with path.open("rb") as f:
        head = f.read(8)
    if not head:
        raise CheckpointError(f"{path} is empty (0 bytes): not a checkpoint")
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return
    kind = "text" if all(32 <= b < 127 or b in b"\t\r\n" for b in head) else "binary data"
    raise CheckpointError(
        f"{path} is not a PyTorch checkpoint: it is {kind} (starts with {head!r}), neither the zip archive "
        "torch.save writes nor a pickle"
    )


#: what weightinit writes checkpoints as: safetensors, or a plain tensor dict via torch.save
#: (what the reference pix2pix code saves and loads; ``torch.load(weights_only=True)`` reads it)
CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt")


def check_checkpoint_name(path: str | os.PathLike) -> Path:
    """Fail before any work if ``path`` cannot be a checkpoint weightinit writes."""
    path = check_output_path(path)
    if path.suffix not in CHECKPOINT_SUFFIXES:
        raise CheckpointError(f"{path}: weightinit writes checkpoints as {', '.join(CHECKPOINT_SUFFIXES)}")
    return path


def save_state_dict_file(
    path: str | os.PathLike, state: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> None:
    """Atomic checkpoint: ``.safetensors`` with ``metadata``, or ``.pth``/``.pt`` as a plain
    ``{key: tensor}`` dict written by ``torch.save`` (no metadata: nothing a weights-only load refuses)."""
    path = check_checkpoint_name(path)
    if path.suffix == ".safetensors":
        save_safetensors(path, state, metadata)
        return
    plain = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    buffer = io.BytesIO()  # not the temporary file: torch.save names the archive after it, so bytes would differ
    torch.save(plain, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
