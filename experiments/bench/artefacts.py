"""What a benchmark run leaves beside its numbers: image strips, the machine, run-key identities, FID features."""

from __future__ import annotations

import datetime
import hashlib
import os
import platform
from pathlib import Path

import torch

from weightinit.errors import WeightinitError
from weightinit.images import from_tensor

SHOW = 4  # test examples kept as images per run


def save_strip(path: Path, rows: list[torch.Tensor]) -> None:
    """Rows of images (NCHW in [-1, 1]) side by side into one PNG."""
    import numpy as np
    from PIL import Image

    grid = np.concatenate([np.concatenate(list(from_tensor(r)), axis=1) for r in rows], axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    Image.fromarray((grid * 255).round().astype("uint8")).save(tmp)
    os.replace(tmp, path)


def machine_info(threads: int | None = None) -> dict:
    import importlib.metadata as md

    versions = {}
    for pkg in ("weightinit", "torch", "torchmetrics", "diffusers", "transformers", "numpy"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "threads": threads or torch.get_num_threads(),
        "python": platform.python_version(),
        "versions": versions,
        "cuda": torch.cuda.is_available(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def generator_id(ref) -> str | None:
    """A short identity of a generator folder (sha256 of its denoiser weights and its prior) for run keys."""
    if ref is None:
        return None
    folder = Path(str(ref))
    path = folder / "denoiser" / "diffusion_pytorch_model.safetensors"
    if path.is_file():
        digest = hashlib.sha256(path.read_bytes())
        if (folder / "prior.safetensors").is_file():
            digest.update((folder / "prior.safetensors").read_bytes())
        return digest.hexdigest()[:16]
    return str(ref)


def load_fid_features(path: str | os.PathLike):
    """A user-supplied feature network for FID: a TorchScript file (e.g. Inception-v3 2015-12-05)."""
    from torch import nn

    try:
        net = torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as exc:  # any load failure is the user's file
        raise WeightinitError(
            f"--fid-weights {path}: not a TorchScript feature network ({type(exc).__name__}: {exc})"
        ) from None

    class Features(nn.Module):
        def forward(self, x):
            x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
            x = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            try:
                out = net(x * 255.0, return_features=True)  # clean-fid / StyleGAN TorchScript Inception
            except Exception:
                out = net(x)
            return out.flatten(1)

    return Features()
