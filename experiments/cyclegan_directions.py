"""Does each CycleGAN direction start the right way? L1 of netG_A and netG_B on both directions.

    python -m experiments.cyclegan_directions --generator weightinit/data/generator \\
        [--generator runs/generator-before ...] --json docs/measurements/cyclegan_directions.json

For each concept text, a CycleGAN pair of the generator's network is initialised with
``initialize(CycleGANPair(netG_A, netG_B), text)``; on test pairs of the catalog concept that
makes the edit (bundled photos, 64 px) it reports the L1 of each generator on the forward task
(photo -> edited) and on the reverse one (edited -> photo). A start that knows its direction has
netG_A better forward and netG_B better in reverse; a generator that cannot tell "X to Y" from
"Y to X" gives both the same weights (equal numbers).
"""

from __future__ import annotations

import argparse
import warnings

import torch

from weightinit import plugins
from weightinit.adapters.cyclegan import CycleGANPair
from weightinit.concepts.catalog import default_catalog
from weightinit.fileio import atomic_write_json
from weightinit.images import PhotoSet
from weightinit.initialization import initialize, load_generator
from weightinit.pairs import ProceduralPairs
from weightinit.recipe import batch_statistics

#: (text as a user would write it, the catalog concept whose pairs make that edit)
CASES = (
    ("photo to sepia", "sepia-heavy"),
    ("make the photo strongly warmer", "warm-heavy"),
    ("add strong film grain", "film-grain-heavy"),
    ("day to strong night", "night-heavy"),
)


def _l1(model, x, y) -> float:
    with torch.no_grad(), batch_statistics(model):
        return round(float((model(x) - y).abs().mean()), 4)


def measure(generator: str, cases=CASES, pairs: int = 16) -> list[dict]:
    gen = load_generator(generator)
    catalog = default_catalog()
    rows = []
    for text, concept_id in cases:
        photo, edited = ProceduralPairs(catalog.get(concept_id), PhotoSet.bundled(), size=64).sample(pairs, "test", 0)
        torch.manual_seed(0)
        pair = CycleGANPair(plugins.build_model(gen.arch), plugins.build_model(gen.arch))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = initialize(pair, text, generator=gen)
        a, b = pair.netG_A, pair.netG_B
        rows.append(
            {
                "text": text,
                "pairs_of": concept_id,
                "netG_B_text": report.directions["netG_B"],
                "forward_l1": {"netG_A": _l1(a, photo, edited), "netG_B": _l1(b, photo, edited)},
                "reverse_l1": {"netG_A": _l1(a, edited, photo), "netG_B": _l1(b, edited, photo)},
                "netG_B_draws_on": [c["concept"] for c in report.based_on["netG_B"]["concepts"][:3]],
            }
        )
        r = rows[-1]
        ok = (
            r["forward_l1"]["netG_A"] < r["forward_l1"]["netG_B"]
            and r["reverse_l1"]["netG_B"] < r["reverse_l1"]["netG_A"]
        )
        r["both_directions_right"] = ok
        print(
            f"{generator:40s} {text:32s} forward A {r['forward_l1']['netG_A']:.3f} B {r['forward_l1']['netG_B']:.3f} | "
            f"reverse B {r['reverse_l1']['netG_B']:.3f} A {r['reverse_l1']['netG_A']:.3f} | {'ok' if ok else 'WRONG'} "
            f"(netG_B: {r['netG_B_text']!r} from {', '.join(r['netG_B_draws_on'])})",
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", action="append", required=True, help="a generator folder (repeatable)")
    parser.add_argument("--json")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {
        "command": "python -m experiments.cyclegan_directions",
        "generators": {g: measure(g) for g in args.generator},
    }
    if args.json:
        atomic_write_json(args.json, result)


# --- its section of docs/BENCHMARKS.md -----------------------------------------------------------
def directions_section(source: str, data: dict) -> list[str]:
    """CycleGAN pairs initialised from text: each direction's L1 on both tasks, per generator
    (``experiments.cyclegan_directions``)."""
    lines = [
        "## CycleGAN: does each direction start the right way?",
        "",
        (
            f"From `{source}` (`{data.get('command', 'python -m experiments.cyclegan_directions')}`): L1 on "
            "bundled-photo test pairs of a CycleGAN pair initialised from the text; forward = photo → edited, "
            "reverse = edited → photo. Right when netG_A is better forward and netG_B better in reverse; equal "
            "numbers mean both got the same weights."
        ),
        "",
        "| generator | text | netG_B's text | forward A / B | reverse B / A | right | netG_B draws on |",
        "|---|---|---|---|---|---|---|",
    ]
    for gen, rows in data["generators"].items():
        for r in rows:
            f, b = r["forward_l1"], r["reverse_l1"]
            lines.append(
                f"| `{gen}` | {r['text']} | {r['netG_B_text']} | {f['netG_A']:.3f} / {f['netG_B']:.3f} | "
                f"{b['netG_B']:.3f} / {b['netG_A']:.3f} | {'yes' if r['both_directions_right'] else '**no**'} | "
                f"{', '.join(r['netG_B_draws_on'])} |"
            )
    return lines + [""]


def section(files: list[tuple[str, dict]]) -> list[str]:
    """Its section of docs/BENCHMARKS.md, one per file
    (``python -m experiments.bench report --section directions=FILE``)."""
    return [line for source, data in files for line in directions_section(source, data)]


if __name__ == "__main__":
    main()
