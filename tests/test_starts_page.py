"""The README's text and pairs blocks, and docs/starts.md's, are what the measurement files say."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments import pairs_report, text_report

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("report", [text_report, pairs_report], ids=["text", "pairs"])
def test_the_readme_and_the_starts_page_are_regenerated_from_the_measurements(report):
    regenerate = f"python -m {report.__name__} --readme README.md --page docs/starts.md"
    assert report.readme_block() in (ROOT / "README.md").read_text(), f"stale: run `{regenerate}`"
    assert report.readme_block(full=True) in (ROOT / report.PAGE).read_text(), f"stale: run `{regenerate}`"
