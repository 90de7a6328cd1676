"""The README's text and pairs blocks, and docs/starts.md's text block, are what the measurement files say."""

from __future__ import annotations

from pathlib import Path

from experiments import pairs_report, text_report

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_and_the_starts_page_hold_the_text_blocks_of_the_measurements():
    regenerate = "python -m experiments.text_report --readme README.md --page docs/starts.md"
    assert text_report.readme_block() in (ROOT / "README.md").read_text(), f"stale: run `{regenerate}`"
    assert text_report.readme_block(full=True) in (ROOT / text_report.PAGE).read_text(), f"stale: run `{regenerate}`"


def test_the_readme_holds_the_pairs_block_of_the_measurements():
    stale = "stale: run `python -m experiments.pairs_report --readme README.md`"
    assert pairs_report.readme_block() in (ROOT / "README.md").read_text(), stale
