"""The plugin manager: entry points in, adapters and concepts out.

Plugins come from the ``weightinit`` entry-point group (built-ins included). A plugin that
fails to import or to register is reported with a warning naming it and skipped: it never
breaks ``weightinit plugins`` or ``initialize``. ``WEIGHTINIT_DISABLE_PLUGINS=name,...``
turns plugins off by entry-point name.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import threading
import warnings
from dataclasses import dataclass, field

import pluggy

from weightinit import hookspecs
from weightinit.errors import AdapterError, PluginError

ENTRY_POINT_GROUP = hookspecs.PROJECT
DISABLE_ENV = "WEIGHTINIT_DISABLE_PLUGINS"


@dataclass
class PluginInfo:
    name: str
    version: str | None
    module: str
    hooks: list[str] = field(default_factory=list)
    adapters: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "module": self.module, "hooks": self.hooks, "adapters": self.adapters}


class Registry:
    """What the loaded plugins provide."""

    def __init__(self, pm: pluggy.PluginManager):
        self.pm = pm
        self.adapters: dict[str, type] = {}
        self.adapter_owner: dict[str, str] = {}
        self.plugins: list[PluginInfo] = []
        self.failures: list[str] = []


_lock = threading.Lock()
_registry: Registry | None = None


def disabled_plugins() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def _register_adapters_of(registry: Registry, plugin: object, plugin_name: str) -> list[str]:
    from weightinit.adapters.base import Adapter

    names: list[str] = []

    def register(cls) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Adapter)):
            raise PluginError(f"plugin {plugin_name!r} registered {cls!r}, which is not an Adapter subclass")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name or ":" in name or "," in name:
            raise PluginError(f"plugin {plugin_name!r} registered {cls.__name__} without a valid `name`")
        if name in registry.adapters and registry.adapters[name] is not cls:
            raise PluginError(
                f"plugin {plugin_name!r} registered adapter {name!r}, already registered by {registry.adapter_owner[name]!r}"
            )
        registry.adapters[name] = cls
        registry.adapter_owner[name] = plugin_name
        names.append(name)

    impl = getattr(plugin, "register_adapters", None)
    if impl is not None and hasattr(impl, "weightinit_impl"):
        impl(register=register)
    return names


def _build_registry() -> Registry:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    registry = Registry(pm)
    disabled = disabled_plugins()
    entry_points = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
    seen: set[str] = set()
    for ep in entry_points:
        if ep.name in disabled or ep.name in seen:
            continue
        seen.add(ep.name)
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # a broken plugin must not break weightinit
            registry.failures.append(f"{ep.name}: {exc}")
            warnings.warn(f"weightinit plugin {ep.name!r} ({ep.value}) failed to load and was skipped: {exc}", stacklevel=2)
            continue
        try:
            adapter_names = _register_adapters_of(registry, plugin, ep.name)
        except Exception as exc:
            pm.unregister(plugin)
            registry.failures.append(f"{ep.name}: {exc}")
            warnings.warn(f"weightinit plugin {ep.name!r} failed to register and was skipped: {exc}", stacklevel=2)
            continue
        dist = ep.dist
        registry.plugins.append(
            PluginInfo(
                name=ep.name,
                version=dist.version if dist is not None else None,
                module=ep.value,
                hooks=sorted(c.name for c in pm.get_hookcallers(plugin) or []),
                adapters=adapter_names,
            )
        )
    # A misspelled hook implementation (``@hookimpl def register_adapter``) fails here.
    pm.check_pending()
    return registry


def get_registry(*, reload: bool = False) -> Registry:
    global _registry
    with _lock:
        if _registry is None or reload:
            _registry = _build_registry()
        return _registry


def get_plugin_manager() -> pluggy.PluginManager:
    return get_registry().pm


def register_plugin(plugin: object, name: str | None = None) -> None:
    """Register a plugin object in-process (tests, notebooks) as if it came from an entry point."""
    registry = get_registry()
    name = name or getattr(plugin, "__name__", repr(plugin))
    registry.pm.register(plugin, name=name)
    try:
        adapters = _register_adapters_of(registry, plugin, name)
        registry.pm.check_pending()
    except Exception:
        registry.pm.unregister(plugin)
        raise
    registry.plugins.append(
        PluginInfo(name, None, name, sorted(c.name for c in registry.pm.get_hookcallers(plugin) or []), adapters)
    )


def unregister_plugin(name: str) -> None:
    registry = get_registry()
    plugin = registry.pm.unregister(name=name)
    if plugin is None:
        return
    info = next((p for p in registry.plugins if p.name == name), None)
    if info is not None:
        registry.plugins.remove(info)
        for adapter in info.adapters:
            registry.adapters.pop(adapter, None)
            registry.adapter_owner.pop(adapter, None)


def list_plugins() -> list[PluginInfo]:
    return list(get_registry().plugins)


def adapter_names() -> list[str]:
    return sorted(get_registry().adapters)


def get_adapter(name: str):
    """An adapter instance by name."""
    registry = get_registry()
    if name not in registry.adapters:
        raise AdapterError(f"no adapter named {name!r}; registered: {', '.join(sorted(registry.adapters)) or 'none'}")
    return registry.adapters[name]()


def adapter_for_model(model):
    """The adapter that understands ``model`` (wrappers stripped first)."""
    from weightinit.adapters.base import unwrap_model

    adapter = get_plugin_manager().hook.adapter_for_model(model=unwrap_model(model))
    if adapter is None:
        raise AdapterError(f"no adapter recognises {type(model).__name__}; is the generic plugin disabled?")
    return adapter


def build_model(arch: str):
    """Build the architecture an arch string ``ADAPTER:NAME[,key=value...]`` names."""
    from weightinit.adapters.base import ArchSpec

    spec = ArchSpec.parse(arch)
    return get_adapter(spec.adapter).build(spec)
