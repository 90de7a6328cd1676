"""The plugin passes weightinit's adapter conformance suite (copy this test with the plugin)."""

from __future__ import annotations

from weightinit.adapters.base import ArchSpec
from weightinit.testing import check_adapter
from weightinit_adapter_template.adapter import TemplateAdapter


def test_template_adapter_conforms():
    adapter = TemplateAdapter()
    arch = "template:tiny,width=8"
    check_adapter(adapter, lambda: adapter.build(ArchSpec.parse(arch)), arch=arch)
