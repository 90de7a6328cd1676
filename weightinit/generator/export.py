"""Copy a trained generator (without its checkpoints and logs) to where it ships.

    python -m weightinit.generator.export runs/generator --out weightinit/data/generator [--quality q.json]

The bundled default generator is made this way from a ``weightinit train`` run folder. The new
folder is written beside the old one and swapped in, so a failed export leaves the old one.
The known phrasings are frozen into it (``phrasings.json``, :mod:`weightinit.generator.phrasings`):
the run folder's table, or the concept catalog's as it is now where the run folder has none.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from weightinit.generator.model import WeightGenerator
from weightinit.generator.phrasings import KnownPhrasings


def export_generator(
    run_dir: str | Path,
    out: str | Path,
    quality: dict | None = None,
    denoiser_dtype: str | None = None,
    prior_rank: int | None = None,
) -> Path:
    """``denoiser_dtype="float16"`` stores the denoiser's weights in half precision (half the
    bytes; they are cast back to float32 when loaded, so sampling runs in float32).
    ``prior_rank`` keeps the retrieval prior's first principal components only (its basis is
    most of a generator's bytes; the source repository's ``experiments/prior_rank.py`` measures what it costs)."""
    import torch

    out = Path(out)
    generator = WeightGenerator.from_pretrained(str(run_dir))
    if prior_rank is not None and generator.prior is not None and prior_rank < generator.prior.rank:
        generator.prior = generator.prior.truncated(prior_rank)
        if generator.pair_start is not None:
            generator.pair_start = generator.pair_start.truncated(prior_rank)
    if not generator.phrasings.frozen:  # a run folder from before the table: the catalog as it is now
        generator.phrasings = KnownPhrasings.from_catalog()
    if denoiser_dtype is not None:
        # nn.Module.to, not diffusers' override, which warns about fp32-only modules this model lacks
        torch.nn.Module.to(generator.denoiser, getattr(torch, denoiser_dtype))
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


#: How a model card names what measured it: a script of weightinit's source repository, not a command
#: the installed package has.
MEASURED_BY = "weightinit's source repository, experiments/"


def quality_summary(report: dict) -> dict:
    """The model card's numbers from a ``experiments/generator.py --json`` report (the source repository's)
    (any other JSON object is taken as it is)."""
    if "median_psnr_step0" in report:  # experiments/heldout_start.py --json
        b, n = report["generated_beats"], report["concepts"]
        return {
            "held-out PSNR at step 0, median dB": {k: round(v, 2) for k, v in report["median_psnr_step0"].items()},
            "held-out concepts where generated starts above zoo mean and nearest "
            "(PSNR)": f"{b['mean_and_nearest']} of {n} "
            f"(above the mean on {b['mean']}, above the nearest on {b['nearest']})",
            "step-0 PSNR measured with": f"{MEASURED_BY}heldout_start.py --zoo {report.get('zoo', 'zoo')}",
            **{
                f"held-out {d} concepts ({part['concepts']}): median step-0 PSNR, dB": {
                    k: round(v, 2) for k, v in part["median_psnr_step0"].items()
                }
                for d, part in (report.get("by_direction") or {}).items()
            },
        }
    if "quality" not in report and "sampling" not in report:
        return report
    out: dict = {}
    q = report.get("quality") or {}
    if q.get("reconstruction"):
        r = q["reconstruction"]
        out["train reconstruction rel L2 (zoo mean)"] = (
            f"{r['mean_rel_l2']:.3f} ({r['mean_rel_l2_zoo_mean']:.3f}) over {r['concepts']} concepts"
        )
    if q.get("heldout"):
        h = q["heldout"]
        out["held-out rel L2, mean"] = {k: round(v, 3) for k, v in h.get("overall", {}).items()}
        out["held-out concepts where generated beats zoo mean and nearest (rel L2)"] = (
            f"{h['generated_beats_both']} of {h['concepts']}"
        )
        out["held-out rel L2 per family"] = {
            f: {k: round(v, 3) for k, v in row.items()} for f, row in h["per_family"].items()
        }
    if report.get("sampling"):
        out["one-step sampling of every block, seconds (1 CPU thread)"] = round(
            report["sampling"]["seconds_new_text"], 3
        )
    if report.get("sample_process"):
        out["peak RSS of a sampling process, MB"] = round(report["sample_process"]["peak_rss_mb"])
    out["measured with"] = f"{MEASURED_BY}generator.py --generator DIR --zoo {report.get('zoo', 'zoo')}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a `weightinit train --out` folder")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "data" / "generator"))
    parser.add_argument(
        "--quality",
        nargs="+",
        help="JSON files of measured quality for the model card (benchmark reports are summarised)",
    )
    parser.add_argument(
        "--denoiser-dtype",
        choices=["float16", "bfloat16", "float32"],
        default="float16",
        help="storage dtype of the denoiser's weights (default float16: half the size, loaded as float32)",
    )
    parser.add_argument(
        "--prior-rank", type=int, help="keep the retrieval prior's first N principal components (default: all)"
    )
    args = parser.parse_args()
    quality = {
        k: v for path in args.quality or [] for k, v in quality_summary(json.loads(Path(path).read_text())).items()
    } or None
    out = export_generator(args.run_dir, args.out, quality, args.denoiser_dtype, args.prior_rank)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"exported {args.run_dir} -> {out} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
