"""The plugin manual: every hook weightinit calls, and what it expects back.

A plugin is a module (or object) with functions marked ``@weightinit.hookimpl`` whose names
are hooks below, published through the ``weightinit`` entry-point group::

    # pyproject.toml of your distribution
    [project.entry-points.weightinit]
    my_adapter = "my_package.weightinit_plugin"

weightinit's own adapters and concepts implement these same hooks (registered from
``weightinit.plugins.BUILTIN_PLUGINS``). Hooks are grouped by phase; a misspelled hook
implementation fails at start-up.
"""

from __future__ import annotations

import pluggy

PROJECT = "weightinit"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- architectures ---------------------------------------------------------------------------
@hookspec
def register_adapters(register):
    """Register adapter classes.

    Call ``register(AdapterClass)`` once per :class:`weightinit.adapters.base.Adapter` subclass
    (the class, not an instance). Its ``name`` is the ``ADAPTER`` part of arch strings and must
    be unique across all plugins; a duplicate name, a missing name or an object that is not an
    Adapter subclass raises :class:`weightinit.errors.PluginError` naming the plugin.
    Return value: ignored.
    """


@hookspec(firstresult=True)
def adapter_for_model(model):
    """Return an adapter *instance* that understands ``model``, or None.

    ``model`` is already unwrapped (no DDP ``module`` or ``torch.compile`` wrapper). The first
    non-None answer wins; the built-in ``generic`` adapter answers last (``trylast``) and accepts
    any ``nn.Module``, so implement this only for models you recognise, by structure and class
    names rather than ``isinstance`` checks on weightinit's classes.
    """


# --- data ------------------------------------------------------------------------------------
@hookspec
def register_concepts(register):
    """Register editing concepts.

    Call ``register(concept)`` with a :class:`weightinit.concepts.Concept` (id, phrasings,
    family, split, reverse phrasing, pair builder). The catalog validates each: unique id,
    non-empty phrasings, a valid split, and a deterministic pair builder; a bad concept raises
    :class:`weightinit.errors.WeightinitError` naming it. Return value: ignored.
    """


# --- weights ---------------------------------------------------------------------------------
@hookspec
def register_generators(register):
    """Register the weight generators a plugin ships.

    Call ``register(name, folder)`` once per generator: ``name`` is what ``weightinit generators``
    lists and ``initialize(..., generator=NAME)`` / ``-g NAME`` accept (letters, digits, ``-``, ``_``
    and ``.``; not ``bundled``), ``folder`` a generator folder (``generator_config.json`` and the
    rest, as ``weightinit train`` and ``python -m weightinit.generator.export`` write it). A plugin
    that adds an adapter ships the generators for its architectures this way; weightinit's own
    extra generators are packages of their own that do the same. A bad or duplicate registration
    is a warning naming the plugin, and is skipped. Return value: ignored.
    """


# --- command line ----------------------------------------------------------------------------
@hookspec
def register_commands(app):
    """Add commands to the ``weightinit`` command line.

    ``app`` is the root :class:`typer.Typer`; use ``@app.command()`` or
    ``app.add_typer(sub_app, name=...)``. Import heavy modules inside your commands so that
    ``weightinit --help`` stays fast. Return value: ignored.
    """
