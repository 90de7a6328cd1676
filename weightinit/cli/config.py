"""Config dataclasses on the command line: options built from the dataclass's fields, ``--config FILE``.

Each knob is written once, as a dataclass field whose metadata carries its help
(``field(default=..., metadata={"help": ...})``, as peft's configs do). A command declares an
option per config field it exposes, named as the field, its type, help and default read from the
field by :class:`ConfigOptions`::

    ZOO = ConfigOptions(ZooConfig, lora_rank={"decls": ("--lora-rank", "--rank")})

    def build(ctx, concept_steps: ZOO.concept_steps = ZOO.default.concept_steps, ...): ...

:func:`build_config` then builds the dataclass from, in order: the dataclass defaults, the fields
of ``--config FILE`` (a JSON object), and the options given explicitly on the command line.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import typing
from pathlib import Path
from types import SimpleNamespace
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


def field_help(cls: type, name: str) -> str:
    """The help of dataclass ``cls``'s field ``name`` (its ``metadata["help"]``)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if "help" not in f.metadata:
                raise TypeError(f"{cls.__name__}.{name} has no metadata help")
            return f.metadata["help"]
    raise TypeError(f"{cls.__name__} has no field {name!r}")


class ConfigOptions:
    """Typer options built from a config dataclass's fields: ``options.NAME`` is the annotation
    ``Annotated[type, typer.Option(help=...)]`` of field ``NAME`` (its type and its metadata help),
    ``options.default.NAME`` its default. ``overrides`` add ``typer.Option`` arguments per field:
    ``decls`` (the option's names, e.g. ``("--lora-rank", "--rank")``), ``metavar``, ``parser``..."""

    def __init__(self, cls: type, **overrides: dict[str, Any]):
        self._cls = cls
        self._types = typing.get_type_hints(cls)
        self._overrides = overrides
        unknown = sorted(set(overrides) - set(self._types))
        if unknown:
            raise TypeError(f"{cls.__name__} has no field(s) {', '.join(unknown)}")
        self.default = SimpleNamespace(**{f.name: default(cls, f.name) for f in dataclasses.fields(cls)})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        extra = dict(self._overrides.get(name, {}))
        decls = extra.pop("decls", ())
        return Annotated[self._types[name], typer.Option(*decls, help=field_help(self._cls, name), **extra)]


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
