"""Copy a trained generator (without its checkpoints and logs) to where it ships.

    python -m weightinit.generator.export runs/generator --out weightinit/data/generator [--quality q.json]

The bundled default generator is made this way from a ``weightinit train`` run folder. The new
folder is written beside the old one and swapped in, so a failed export leaves the old one.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def export_generator(run_dir: str | Path, out: str | Path, quality: dict | None = None, denoiser_dtype: str | None = None) -> Path:
    """``denoiser_dtype="float16"`` stores the denoiser's weights in half precision (half the
    bytes; they are cast back to float32 when loaded, so sampling runs in float32)."""
    import torch

    from weightinit.generator.model import WeightGenerator

    out = Path(out)
    generator = WeightGenerator.from_pretrained(str(run_dir))
    if denoiser_dtype is not None:
        generator.denoiser.to(getattr(torch, denoiser_dtype))
    staging = out.with_name(f".{out.name}.export")
    shutil.rmtree(staging, ignore_errors=True)
    generator.save_pretrained(staging, quality=quality)
    WeightGenerator.from_pretrained(str(staging))  # it loads before it replaces anything
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a `weightinit train --out` folder")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "data" / "generator"))
    parser.add_argument("--quality", help="a JSON file of measured quality for the model card")
    parser.add_argument("--denoiser-dtype", choices=["float16", "bfloat16", "float32"], default="float16",
                        help="storage dtype of the denoiser's weights (default float16: half the size, loaded as float32)")
    args = parser.parse_args()
    quality = json.loads(Path(args.quality).read_text()) if args.quality else None
    out = export_generator(args.run_dir, args.out, quality, args.denoiser_dtype)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"exported {args.run_dir} -> {out} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
