"""Copy a trained generator (without its checkpoints and logs) to where it ships.

    python -m weightinit.generator.export runs/generator --out weightinit/data/generator

The bundled default generator is made this way from a ``weightinit train`` run folder. The new
folder is written beside the old one and swapped in, so a failed export leaves the old one.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def export_generator(run_dir: str | Path, out: str | Path, quality: dict | None = None) -> Path:
    from weightinit.generator.model import WeightGenerator

    out = Path(out)
    generator = WeightGenerator.from_pretrained(str(run_dir))
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
    args = parser.parse_args()
    quality = json.loads(Path(args.quality).read_text()) if args.quality else None
    out = export_generator(args.run_dir, args.out, quality)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"exported {args.run_dir} -> {out} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
