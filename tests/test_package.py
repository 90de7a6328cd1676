"""What `import weightinit` gives, and what it does not pay for."""

import subprocess
import sys


def test_top_level_exports_and_lazy_generator():
    code = (
        "import sys, weightinit\n"
        "assert 'diffusers' not in sys.modules, 'import weightinit pulled in diffusers'\n"
        "from weightinit import CycleGANPair, FarConceptWarning, WeightGenerator, initialize\n"
        "from weightinit.generator.model import WeightGenerator as G\n"
        "assert WeightGenerator is G and issubclass(FarConceptWarning, UserWarning)\n"
        "assert set(weightinit.__all__) >= {'initialize', 'CycleGANPair', 'WeightGenerator', 'FarConceptWarning'}\n"
        "try:\n    weightinit.not_a_thing\nexcept AttributeError as e:\n    assert 'not_a_thing' in str(e)\nelse:\n    "
        "raise SystemExit('no AttributeError')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_every_declared_dependency_is_imported_by_the_library():
    """pyproject's dependencies are what weightinit/ imports (at the top or in a function): none unused."""
    import ast
    import re
    import tomllib
    from importlib.metadata import packages_distributions
    from pathlib import Path

    def canonical(name: str) -> str:  # PEP 503
        return re.sub(r"[-_.]+", "-", name).lower()

    root = Path(__file__).resolve().parent.parent
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {canonical(re.split(r"[<>=!~\[;\s]", d, maxsplit=1)[0]) for d in declared}
    imported = set()
    for path in (root / "weightinit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    distributions = packages_distributions()
    used = {canonical(dist) for module in imported for dist in distributions.get(module, [])}
    assert "torch" in names and names - used == set(), f"declared but never imported: {sorted(names - used)}"
