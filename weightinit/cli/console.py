"""The command line's stderr console, its warnings, and the plugin registry it reports on.

Below every command module (they import it, it imports none of them), so a command reaches these
without importing :mod:`weightinit.cli.app`, which names every command.
"""

from __future__ import annotations


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    stderr_console().print(f"[yellow]warning:[/] {message}", markup=True)


# --- plugins -------------------------------------------------------------------------------
_reported: set[int] = set()


def plugin_registry():
    """The plugin registry; plugins that failed to load are reported once as warnings."""
    import warnings

    from weightinit import plugins

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        registry = plugins.get_registry()
    if id(registry) not in _reported:
        _reported.add(id(registry))
        for failure in registry.failures:
            name, _, why = failure.partition(": ")
            warn(f"plugin {name!r} failed to load and was skipped: {why}")
    return registry
