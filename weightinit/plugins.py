"""The plugin manager: built-in plugins and entry points in, adapters and concepts out.

weightinit's own plugins (:data:`BUILTIN_PLUGINS`) are registered from code, as simonw/llm
registers its default plugins, so a source tree that was never installed has them too; third
parties publish theirs in the ``weightinit`` entry-point group. A plugin that fails to import or
to register is reported with a warning naming it and skipped: it never breaks ``weightinit
plugins`` or ``initialize``. ``WEIGHTINIT_DISABLE_PLUGINS=name,...`` turns plugins off by name,
except the essential ``generic`` adapter (pytest's essential plugins), which answers for any
model that no other adapter recognises.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pluggy

from weightinit import hookspecs
from weightinit._version import __version__
from weightinit.errors import AdapterError, PluginError

ENTRY_POINT_GROUP = hookspecs.PROJECT
DISABLE_ENV = "WEIGHTINIT_DISABLE_PLUGINS"
#: ``(name, module)`` of the plugins weightinit ships, registered first and in this order.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("builtin_concepts", "weightinit.concepts.builtin"),
    ("cyclegan", "weightinit.adapters.cyclegan"),
    ("generic", "weightinit.adapters.generic"),
    ("pix2pix", "weightinit.adapters.pix2pix"),
)
#: Built-in plugins the environment variable cannot turn off.
ESSENTIAL_PLUGINS = frozenset({"generic"})


@dataclass
class PluginInfo:
    name: str
    version: str | None
    module: str
    hooks: list[str] = field(default_factory=list)
    adapters: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "module": self.module,
            "hooks": self.hooks,
            "adapters": self.adapters,
        }


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
    """The plugin names ``WEIGHTINIT_DISABLE_PLUGINS`` turns off (essential ones never are)."""
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()} - ESSENTIAL_PLUGINS


def call_each_plugin(
    pm: pluggy.PluginManager,
    hook: str,
    *,
    only: object | None = None,
    on_error: Callable[[str, Exception], None] | None = None,
    **kwargs,
) -> list[str]:
    """Call ``hook`` one plugin at a time, in pluggy's call order (``only``: that plugin alone),
    passing each implementation the arguments it declares. A plugin's exception goes to
    ``on_error(plugin name, exception)`` and the others still run; without ``on_error`` it
    propagates. Returns the names of the plugins called."""
    called = []
    for impl in reversed(getattr(pm.hook, hook).get_hookimpls()):
        if only is not None and impl.plugin is not only:
            continue
        try:
            impl.function(**{name: kwargs[name] for name in impl.argnames if name in kwargs})
        except Exception as exc:
            if on_error is None:
                raise
            on_error(impl.plugin_name, exc)
            continue
        called.append(impl.plugin_name)
    return called


def _register_adapters_of(registry: Registry, plugin: object, plugin_name: str) -> list[str]:
    names: list[str] = []

    from weightinit.adapters.base import Adapter  # torch: not for `weightinit --help`

    def register(cls) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Adapter)):
            raise PluginError(f"plugin {plugin_name!r} registered {cls!r}, which is not an Adapter subclass")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name or ":" in name or "," in name:
            raise PluginError(f"plugin {plugin_name!r} registered {cls.__name__} without a valid `name`")
        if name in registry.adapters and registry.adapters[name] is not cls:
            raise PluginError(
                f"plugin {plugin_name!r} registered adapter {name!r}, already registered by "
                f"{registry.adapter_owner[name]!r}"
            )
        registry.adapters[name] = cls
        registry.adapter_owner[name] = plugin_name
        names.append(name)

    call_each_plugin(registry.pm, "register_adapters", only=plugin, register=register)
    return names


def _add(registry: Registry, name: str, module: str, version: str | None, load: Callable[[], object]) -> None:
    """Import one plugin, register it and its adapters; a failure is a warning and a skip."""
    pm = registry.pm
    try:
        plugin = load()
        pm.register(plugin, name=name)
    except Exception as exc:  # a broken plugin must not break weightinit
        registry.failures.append(f"{name}: {exc}")
        warnings.warn(f"weightinit plugin {name!r} ({module}) failed to load and was skipped: {exc}", stacklevel=3)
        return
    try:
        adapter_names = _register_adapters_of(registry, plugin, name)
    except Exception as exc:
        pm.unregister(plugin)
        registry.failures.append(f"{name}: {exc}")
        warnings.warn(f"weightinit plugin {name!r} failed to register and was skipped: {exc}", stacklevel=3)
        return
    hooks = sorted(c.name for c in pm.get_hookcallers(plugin) or [])
    registry.plugins.append(PluginInfo(name=name, version=version, module=module, hooks=hooks, adapters=adapter_names))


def _build_registry() -> Registry:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    registry = Registry(pm)
    disabled = disabled_plugins()
    builtin = dict(BUILTIN_PLUGINS)
    for name, module in BUILTIN_PLUGINS:
        if name not in disabled:
            _add(registry, name, module, __version__, lambda module=module: importlib.import_module(module))
    seen = set(builtin)
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        if ep.name in disabled or ep.name in seen:
            if ep.name in builtin and ep.value != builtin[ep.name]:
                warnings.warn(
                    f"weightinit plugin {ep.name!r} ({ep.value}) has a built-in plugin's name and was skipped",
                    stacklevel=2,
                )
            continue  # an older install's metadata still lists the built-ins as entry points
        seen.add(ep.name)
        _add(registry, ep.name, ep.value, ep.dist.version if ep.dist is not None else None, ep.load)
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


_GENERATOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def registered_generators() -> list[tuple[str, Path, str]]:
    """``(name, folder, plugin)`` of every generator the plugins register (``register_generators``),
    in the order the plugins were registered. A bad name, a folder that is not a generator, or a
    name taken by an earlier plugin is a warning naming the plugin, and is skipped."""
    pm = get_plugin_manager()
    out: list[tuple[str, Path, str]] = []
    for impl in pm.hook.register_generators.get_hookimpls():

        def register(name, folder, plugin=impl.plugin_name) -> None:
            path = Path(folder)
            if not isinstance(name, str) or not _GENERATOR_NAME.fullmatch(name) or name == "bundled":
                problem = f"a generator named {name!r} (a name is letters, digits, '.', '-' or '_', not 'bundled')"
            elif not (path / "generator_config.json").is_file():
                problem = f"generator {name!r} at {path}, which holds no generator_config.json"
            elif any(n == name for n, _, _ in out):
                owner = next(p for n, _, p in out if n == name)
                problem = f"generator {name!r}, already registered by {owner!r}"
            else:
                out.append((name, path, plugin))
                return
            warnings.warn(f"weightinit plugin {plugin!r} registered {problem}; skipped", stacklevel=2)

        def on_error(plugin: str, exc: Exception) -> None:
            warnings.warn(
                f"weightinit plugin {plugin!r} failed in register_generators and was skipped: {exc}", stacklevel=2
            )

        call_each_plugin(pm, "register_generators", only=impl.plugin, on_error=on_error, register=register)
    return out


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
        raise AdapterError(
            f"no adapter recognises {type(model).__name__}; the generic adapter, which takes any module, did not load"
        )
    return adapter


def adapter_for_arch(arch):
    """The adapter an arch string ``ADAPTER:NAME[,key=value...]`` names (an instance)."""
    from weightinit.adapters.base import ArchSpec

    spec = arch if isinstance(arch, ArchSpec) else ArchSpec.parse(arch)
    return get_adapter(spec.adapter)


def build_model(arch: str):
    """Build the architecture an arch string ``ADAPTER:NAME[,key=value...]`` names."""
    from weightinit.adapters.base import ArchSpec

    spec = ArchSpec.parse(arch)
    return adapter_for_arch(spec).build(spec)


def image_size_of(arch: str) -> int | None:
    """The input side ``arch`` is made for (``pix2pix:unet_64``: 64), None where any fits (a ResNet)."""
    from weightinit.adapters.base import ArchSpec

    spec = ArchSpec.parse(arch)
    return adapter_for_arch(spec).image_size(spec)
