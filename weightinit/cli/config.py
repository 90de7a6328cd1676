"""Config dataclasses on the command line: option defaults read from the dataclass, ``--config FILE``.

A command declares an option per config field it exposes, named as the field, with its default
read from the dataclass (``default(ZooConfig, "concept_steps")``), never a repeated literal.
:func:`build_config` then builds the dataclass from, in order: the dataclass defaults, the fields
of ``--config FILE`` (a JSON object), and the options given explicitly on the command line.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

T = TypeVar("T")


def default(cls: type, name: str) -> Any:
    """The default of dataclass ``cls``'s field ``name`` (a fresh one for a ``default_factory``)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            raise TypeError(f"{cls.__name__}.{name} has no default")
    raise TypeError(f"{cls.__name__} has no field {name!r}")


def config_option(what: str) -> Any:
    """The ``--config FILE`` option of a command building ``what`` (a dataclass name, for the help)."""
    return Annotated[
        Path | None,
        typer.Option(
            "--config",
            help=f"A JSON object of {what} fields (every field, not only those with an option); "
            "options given on the command line override it.",
            dir_okay=False,
        ),
    ]


def optional_int(value: Any) -> int | None:
    """Parse an ``int | None`` option: an integer, or ``none`` / ``all`` for None."""
    if value is None or isinstance(value, int):
        return value
    if str(value).strip().lower() in ("none", "null", "all"):
        return None
    try:
        return int(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither an integer nor 'all'") from None


def optional_float(value: Any) -> float | None:
    """Parse a ``float | None`` option: a number, or ``none`` for None."""
    if value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return float(value)
    if str(value).strip().lower() in ("none", "null"):
        return None
    try:
        return float(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither a number nor 'none'") from None


def read_config_file(cls: type, path: Path | None) -> dict:
    """The fields in ``path`` (a JSON object of ``cls`` fields); {} without a file. Unknown fields are an error."""
    from weightinit.errors import WeightinitError

    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise WeightinitError(f"--config {path}: cannot read it: {exc}") from None
    except json.JSONDecodeError as exc:
        raise WeightinitError(f"--config {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WeightinitError(f"--config {path} must hold a JSON object of {cls.__name__} fields")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise WeightinitError(
            f"--config {path}: unknown {cls.__name__} field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    return data


def given(ctx: typer.Context, name: str) -> bool:
    """Whether parameter ``name`` was given explicitly (command line or environment), not left at its default."""
    # by name: typer ships its own copy of click, whose ParameterSource is not click's
    source = ctx.get_parameter_source(name)
    return getattr(source, "name", None) in ("COMMANDLINE", "ENVIRONMENT", "PROMPT")


def build_config(
    cls: type[T], ctx: typer.Context, path: Path | None, options: dict[str, Any], *, base: dict | None = None
) -> T:
    """``cls`` from its defaults, then ``base`` (e.g. ``--quick``'s settings), then the fields of ``--config``
    ``path``, then the ``options`` (field name -> the value of the command's parameter of that name) given
    explicitly on the command line. Options left at their default (the dataclass's) do not override the file."""
    data = {**(base or {}), **read_config_file(cls, path)}
    for name, value in options.items():
        if name not in data or given(ctx, name):
            data[name] = copy.deepcopy(value)  # a mutable default is shared between calls
    # not cls.from_dict: GeneratorTrainingConfig's fills in what runs saved before a field existed used
    return cls(**data)
