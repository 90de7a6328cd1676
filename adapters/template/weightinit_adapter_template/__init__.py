"""A weightinit adapter plugin: copy it for your own architecture.

weightinit imports this module through the entry point in ``pyproject.toml`` for every command,
``weightinit --help`` included, so it imports nothing heavy: the adapter (and torch with it) is
imported inside the two ``@hookimpl`` functions, when weightinit calls them. One registers the
adapter class (so arch strings ``template:...`` build models), the other recognises models (so
``initialize(model, ...)`` finds the adapter). The adapter itself is in ``adapter.py``.
"""

from __future__ import annotations

from weightinit.hookspecs import hookimpl  # marks the functions weightinit calls


def __getattr__(name: str):
    # ``weightinit_adapter_template.TemplateAdapter`` still works, imported when first asked for
    if name == "TemplateAdapter":
        from weightinit_adapter_template.adapter import TemplateAdapter

        return TemplateAdapter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def register_adapters(register):
    # Register the class (not an instance); weightinit instantiates it when needed.
    from weightinit_adapter_template.adapter import TemplateAdapter

    register(TemplateAdapter)


@hookimpl
def adapter_for_model(model):
    # Answer only for models you recognise; return None otherwise so other adapters get a turn
    # (the built-in generic adapter answers last, for anything nobody recognised).
    from weightinit_adapter_template.adapter import TemplateAdapter

    adapter = TemplateAdapter()
    return adapter if adapter.matches(model) else None
