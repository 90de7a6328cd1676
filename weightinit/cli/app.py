"""The root ``weightinit`` command: built-in commands, plugin commands, and error handling.

Built-in commands are listed in :data:`COMMANDS` as ``(name, "module:attr")`` and imported only
when that command runs (or when help lists it), so ``weightinit --help`` never pays for torch
models and one command never pays for another's imports. The attribute is either a function
(a command) or a :class:`typer.Typer` (a group of commands). Adding a command module is one
line here.

Errors: a :class:`~weightinit.errors.WeightinitError` becomes one red line on stderr and exit
code 1 (with the traceback first when ``WEIGHTINIT_DEBUG=1``); usage errors exit 2.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from weightinit.cli.console import plugin_registry, stderr_console, warn

DEBUG_ENV = "WEIGHTINIT_DEBUG"

#: Built-in commands, in help order: ``(name, "module:attr")``, imported on first use.
COMMANDS: list[tuple[str, str]] = [
    # what users run
    ("sample", "weightinit.cli.generate:sample"),
    ("init", "weightinit.cli.generate:init"),
    ("demo", "weightinit.cli.demo:demo"),
    ("concepts", "weightinit.cli.concepts:app"),
    ("generators", "weightinit.cli.generators:generators"),
    # making a zoo and a generator of your own
    ("zoo", "weightinit.cli.zoo:app"),
    ("train", "weightinit.cli.train:train"),
    # the block format underneath
    ("layout", "weightinit.cli.blocks:layout"),
    ("encode", "weightinit.cli.blocks:encode"),
    ("decode", "weightinit.cli.blocks:decode"),
    ("apply", "weightinit.cli.blocks:apply"),
    ("plugins", "weightinit.cli.app:plugins"),
]


# --- output --------------------------------------------------------------------------------
def report_error(exc: BaseException) -> None:
    """The one place a known error becomes one red line (traceback first under WEIGHTINIT_DEBUG=1)."""
    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        traceback.print_exception(exc, file=sys.stderr)
    import re

    from rich.markup import escape

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # some libraries colour their messages
    lines = text.strip().splitlines() or [type(exc).__name__]

    stderr_console().print(f"[bold red]Error:[/] {escape(lines[0])}")


def _known_errors() -> tuple[type[BaseException], ...]:
    import pluggy

    from weightinit.errors import WeightinitError

    # A misspelled or invalid hook implementation is the plugin author's known error, not ours.
    return (WeightinitError, pluggy.PluginValidationError)


# --- the root group: lazy built-ins, plugin commands, one error handler -----------------------
def _resolve(name: str, target: str):
    import typer.main

    module_name, attr = target.split(":")
    obj = getattr(importlib.import_module(module_name), attr)
    if isinstance(obj, typer.Typer):
        command = typer.main.get_group(obj)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name=name)(obj)
        command = typer.main.get_command(single)
    command.name = name
    return _tidy(command)


def _tidy(command):
    """Help as a reader expects it, whatever typer's version: a docstring's prose paragraphs are
    reflowed (typer 0.29 keeps their line breaks; indented examples keep theirs), and a flag shows
    no ``<bool>`` value it does not take. Group members are tidied too."""
    import inspect

    if getattr(command, "_weightinit_tidied", False):
        return command
    command._weightinit_tidied = True
    if command.help:
        paragraphs = inspect.cleandoc(command.help).split("\n\n")
        command.help = "\n\n".join(
            p if p.startswith("\b") or any(line[:1].isspace() for line in p.splitlines()) else " ".join(p.split("\n"))
            for p in paragraphs
        )
    for param in command.params:
        _no_flag_type(param)
    own_help_option = command.get_help_option
    command.get_help_option = lambda ctx: _no_flag_type(own_help_option(ctx))
    for member in getattr(command, "commands", {}).values():
        _tidy(member)
    return command


def _no_flag_type(param):
    if getattr(param, "is_flag", False) and param.metavar is None:
        param.metavar = ""  # typer renders a flag's type as <bool>, a value it does not take
    return param


def _available(target: str) -> bool:
    """False only while a built-in command module does not exist yet (it must import if it does)."""
    return importlib.util.find_spec(target.split(":")[0]) is not None


def _summary(name: str, target: str):
    """A stand-in command carrying only the help of a built-in, read from its module's source (its
    function's docstring or its Typer's ``help=``) without importing it: the root help lists every
    command without paying for torch."""
    import ast

    import click

    module_name, attr = target.split(":")
    spec = importlib.util.find_spec(module_name)
    tree = ast.parse(open(spec.origin, encoding="utf-8").read())
    text = ""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == attr:
            text = ast.get_docstring(node) or ""
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) == attr for t in node.targets):
            call = node.value
            for kw in getattr(call, "keywords", []):
                if kw.arg == "help" and isinstance(kw.value, ast.Constant):
                    text = kw.value.value
    first = text.strip().split("\n\n")[0].replace("\n", " ")
    return click.Command(name, help=first, short_help=first)


class WeightinitGroup(TyperGroup):
    """Lists built-ins from :data:`COMMANDS` lazily and turns known errors into exit 1."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _tidy(self)
        self._lazy: dict[str, Any] = {}
        self._listing = False

    def get_params(self, ctx):
        return [_no_flag_type(param) for param in super().get_params(ctx)]  # typer adds some late

    def format_help(self, ctx, formatter) -> None:
        self._listing = True  # the root help lists the built-ins from their source, unimported
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def list_commands(self, ctx) -> list[str]:
        builtins = [name for name, target in COMMANDS if _available(target)]
        return builtins + [name for name in super().list_commands(ctx) if name not in builtins]

    def get_command(self, ctx, cmd_name: str):
        target = dict(COMMANDS).get(cmd_name)
        if target is None or not _available(target):
            command = super().get_command(ctx, cmd_name)
            return command if command is None else _tidy(command)
        if self._listing and cmd_name not in self._lazy:
            return _summary(cmd_name, target)
        if cmd_name not in self._lazy:
            self._lazy[cmd_name] = _resolve(cmd_name, target)
        return self._lazy[cmd_name]

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _known_errors() as exc:
            report_error(exc)
            raise typer.Exit(1) from None


def _version(value: bool) -> None:
    if value:
        from weightinit._version import __version__

        typer.echo(f"weightinit {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="weightinit",
    cls=WeightinitGroup,
    help=(
        "Learned weight initialisation for image-to-image GAN generators.\n\n"
        '`weightinit sample "photo to sepia" -o netG.pth` writes a generator initialised for a concept; '
        "`weightinit init CHECKPOINT CONCEPT -o OUT` initialises yours; `weightinit demo` shows the speedup. "
        "Known errors exit 1 with one line (set WEIGHTINIT_DEBUG=1 for the traceback); usage errors exit 2."
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Learned weight initialisation for image-to-image GAN generators."""


# --- plugins -------------------------------------------------------------------------------
def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
) -> None:
    """List the loaded plugins, their versions, hooks and adapters.

    A plugin that fails to import or register is reported as a warning and skipped.
    Turn plugins off with WEIGHTINIT_DISABLE_PLUGINS=name,... (all but generic, the adapter
    of any model no other adapter recognises).

    Example: weightinit plugins --json
    """
    registry = plugin_registry()
    infos = [p.to_dict() for p in registry.plugins]
    if as_json:
        import json

        typer.echo(json.dumps(infos, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="weightinit plugins")
    for column in ("name", "version", "adapters", "hooks"):
        table.add_column(column)
    for p in infos:
        table.add_row(p["name"], p["version"] or "-", ", ".join(p["adapters"]) or "-", ", ".join(p["hooks"]))
    Console().print(table)


def register_plugin_commands(target: typer.Typer) -> None:
    """Call every plugin's ``register_commands(app)``; a plugin that fails is a warning, not a crash."""
    from weightinit.plugins import call_each_plugin

    def failed(name: str, exc: Exception) -> None:  # a plugin must not break the command line
        warn(f"plugin {name!r} failed to register its commands and was skipped: {exc}")

    call_each_plugin(plugin_registry().pm, "register_commands", app=target, on_error=failed)


def register_entry_point_commands(target: typer.Typer) -> None:
    """``register_commands(app)`` of every plugin published in the entry-point group, importing
    only those plugin modules (the built-ins add no commands): the command line starts without
    loading every adapter. A plugin that fails is a warning, not a crash."""
    import importlib.metadata

    from weightinit.plugins import BUILTIN_PLUGINS, ENTRY_POINT_GROUP, disabled_plugins

    skip = disabled_plugins() | {name for name, _ in BUILTIN_PLUGINS}
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        if ep.name in skip:
            continue
        try:
            hook = getattr(ep.load(), "register_commands", None)
            if callable(hook):
                hook(app=target)
        except Exception as exc:  # a plugin must not break the command line
            warn(f"plugin {ep.name!r} failed to register its commands and was skipped: {exc}")


_plugin_commands_loaded = False


def main(argv: list[str] | None = None) -> None:
    """The ``weightinit`` console script."""
    global _plugin_commands_loaded
    try:
        if not _plugin_commands_loaded:
            register_entry_point_commands(app)
            _plugin_commands_loaded = True
    except _known_errors() as exc:
        report_error(exc)
        sys.exit(1)
    app(args=argv, prog_name="weightinit")


if __name__ == "__main__":
    main()
