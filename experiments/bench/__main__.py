"""``python -m experiments.bench``: the benchmark's commands (:mod:`experiments.bench.cli`)."""

import typer.main

from experiments.bench.cli import app
from weightinit.cli.app import _tidy  # help as weightinit's own commands show it

if __name__ == "__main__":
    _tidy(typer.main.get_command(app))(prog_name="python -m experiments.bench")
