"""Make ``generators/NAME``: an installable package for the generator exported to
``weightinit/data/generators/NAME``, which registers it through ``register_generators``.

    python -m experiments.generator_package unet128

The package's ``generator`` folder is a link to the exported one, so the weights are stored
once in the repository; a wheel built from the package holds the files themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from weightinit.fileio import atomic_write_text

EXPORTED = Path("weightinit/data/generators")
PACKAGES = Path("generators")

PYPROJECT = """\
# weightinit's {name} generator ({arch}) as a package of its own, as spaCy ships its models:
# `pip install ./generators/{name}`. It registers its folder through the `register_generators` hook.
# Made by `python -m experiments.generator_package {name}`.

[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "weightinit-generator-{name}"
version = "0.1.0"
description = "weightinit weight generator for {arch} (and the wider and deeper networks of its family)"
requires-python = ">=3.11"
license = {{ text = "Apache-2.0" }}
dependencies = ["weightinit"]

[project.entry-points.weightinit]
{name} = "{module}"

[tool.setuptools]
packages = ["{module}"]

# `generator` links to the folder the export wrote (weightinit/data/generators/{name}).
[tool.setuptools.package-data]
{module} = ["generator/*", "generator/*/*"]
"""

INIT = '''\
"""weightinit's {name} generator: ``{arch}``, found through ``register_generators``."""

from __future__ import annotations

from pathlib import Path

from weightinit.hookspecs import hookimpl

FOLDER = Path(__file__).parent / "generator"


@hookimpl
def register_generators(register):
    register("{name}", FOLDER)
'''


def make_package(name: str, root: Path = Path(".")) -> Path:
    exported = root / EXPORTED / name
    config = exported / "generator_config.json"
    if not config.is_file():
        raise SystemExit(f"{exported} holds no exported generator (no generator_config.json)")
    arch = json.loads(config.read_text())["arch"]
    module = "weightinit_generator_" + name.replace("-", "_").replace(".", "_")
    package = root / PACKAGES / name
    (package / module).mkdir(parents=True, exist_ok=True)
    atomic_write_text(package / "pyproject.toml", PYPROJECT.format(name=name, arch=arch, module=module))
    atomic_write_text(package / module / "__init__.py", INIT.format(name=name, arch=arch))
    link = package / module / "generator"
    target = os.path.relpath(exported, link.parent)
    if link.is_symlink() and os.readlink(link) != target:
        link.unlink()
    if not link.is_symlink():
        link.symlink_to(target, target_is_directory=True)
    return package


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name")
    args = p.parse_args(argv)
    print(f"wrote {make_package(args.name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
