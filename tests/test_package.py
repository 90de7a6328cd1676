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


def _installed_sources():
    """The Python files the wheel ships: the packages pyproject's ``packages.find`` selects."""
    import tomllib
    from pathlib import Path

    import setuptools

    root = Path(__file__).resolve().parent.parent
    find = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = setuptools.find_namespace_packages(where=str(root), include=find["include"], exclude=find["exclude"])
    return packages, [p for pkg in packages for p in sorted((root / pkg.replace(".", "/")).glob("*.py"))]


def test_the_wheel_holds_the_library_not_the_benchmark_harness():
    """The benchmark and the experiments live beside the package (experiments/), not in it: no installed
    module is under weightinit.bench, imports or names ``experiments.`` (a pip user has no such
    module), and none is over 800 lines."""
    packages, sources = _installed_sources()
    assert "weightinit" in packages and all(p.split(".")[0] == "weightinit" for p in packages), packages
    assert not any(p == "weightinit.bench" or p.startswith("weightinit.bench.") for p in packages)
    assert any(p.name == "finetune.py" for p in sources)  # what the demo needs from the benchmark's ways
    naming = [
        f"{p.relative_to(p.parents[2])}:{i}"
        for p in sources
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if "experiments." in line
    ]
    assert naming == [], f"installed modules name experiments.: {naming}"
    long = {p.name: n for p in sources if (n := len(p.read_text().splitlines())) > 800}
    assert long == {}, f"modules over 800 lines: {long}"


def test_shipped_model_cards_name_commands_a_user_has():
    """The generator folders' cards and configs (in the wheel or a generator package) say what
    measured them as a script of the source repository, not as a module a pip user lacks."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "weightinit" / "data"
    files = [p for pattern in ("**/README.md", "**/generator_config.json") for p in sorted(root.glob(pattern))]
    assert len(files) >= 6  # the bundled generator and the two packaged ones
    naming = [str(p.relative_to(root)) for p in files if "python -m experiments" in p.read_text()]
    assert naming == [], f"these name python -m experiments...: {naming}"
