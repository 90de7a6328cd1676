"""The adapter template in adapters/template: it conforms, and once installed
(``pip install ./adapters/template``, done by ``make setup``) weightinit discovers it through
the ``weightinit`` entry-point group like any third-party plugin."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from weightinit.adapters.base import ArchSpec
from weightinit.errors import AdapterError
from weightinit.testing import check_adapter

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "adapters" / "template"
DISTRIBUTION = "weightinit-adapter-template"


def _installed() -> bool:
    try:
        importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture
def template(monkeypatch):
    """The template's module, importable from source whether or not it is installed."""
    if not _installed():
        monkeypatch.syspath_prepend(str(TEMPLATE_DIR))
    import weightinit_adapter_template

    return weightinit_adapter_template


def test_template_conforms(template):
    adapter = template.TemplateAdapter()
    arch = "template:tiny,width=8"
    layout = check_adapter(adapter, lambda: adapter.build(ArchSpec.parse(arch)), arch=arch)
    assert layout.names == ["enc.conv.weight", "enc.conv.bias", "dec.conv.weight", "dec.conv.bias"]
    with pytest.raises(AdapterError, match="valid options: width"):
        adapter.build(ArchSpec.parse("template:tiny,depth=2"))


@pytest.mark.skipif(
    not _installed(),
    reason=f"{DISTRIBUTION} is not installed (pip install ./adapters/template, or make setup)",
)
def test_template_is_discovered_through_its_entry_point():
    from weightinit import plugins

    entry_points = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="weightinit")}
    assert entry_points.get("template") == "weightinit_adapter_template"
    assert "template" in plugins.adapter_names()
    model = plugins.build_model("template:tiny,width=8")
    assert type(model).__name__ == "TinyEncoderDecoder"
    assert plugins.adapter_for_model(model).name == "template"
    info = next(p for p in plugins.list_plugins() if p.name == "template")
    assert info.adapters == ["template"] and "adapter_for_model" in info.hooks
