"""docs/NETWORKS.md and the README's networks block are what the measurement files say."""

from __future__ import annotations

from pathlib import Path

from experiments import networks_report

ROOT = Path(__file__).resolve().parents[1]


def test_networks_doc_and_readme_block_are_regenerated_from_the_measurements(monkeypatch):
    monkeypatch.chdir(ROOT)
    regenerate = "python -m experiments.networks_report --out docs/NETWORKS.md --readme README.md"
    assert (ROOT / "docs/NETWORKS.md").read_text() == networks_report.networks_md() + "\n", f"stale: run `{regenerate}`"
    assert networks_report.readme_block() in (ROOT / "README.md").read_text(), f"stale: run `{regenerate}`"
