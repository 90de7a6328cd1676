"""The installed weight generators, the layout each one serves, and the reference flags it fits.

A generator serves exactly one layout: the generated parameters of the network its zoo was built
on (architecture, width, norm). This module lists the generators a user has:

* the bundled one, ``weightinit/data/generator`` (the CPU demo size, ``pix2pix:unet_64,ngf=16``);
* every generator a plugin registers (``register_generators``): weightinit's own larger ones are
  packages of their own (``pip install ./generators/unet128``), as spaCy ships its models;
* any extra folders or hub ids the caller names (a hub id is ``org/name``).

For each it reports the name, the arch string, the layout fingerprint of the model parameters it
covers (what ``initialize`` compares with the model's), and the flags of the reference
pytorch-CycleGAN-and-pix2pix ``train.py`` that build such a network (``--netG``, ``--ngf``,
``--norm``, ``--no_dropout``, ``--load_size``/``--crop_size``), or why no flags do (the
reference ``define_G`` has no 64-px U-Net). :func:`generator_for_layout` picks the one whose layout
matches and otherwise raises a :class:`~weightinit.errors.LayoutMismatch` that lists what is
installed and which flags each serves.

Everything is lazy and cheap: a listing reads only ``generator_config.json`` (and ``layout.json``
when asked), never the weights; the covered layout is computed from the arch string on the
``meta`` device, without allocating a single weight. A hub id fetches only those two JSON files
(from the local cache when ``HF_HUB_OFFLINE`` is set).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property, lru_cache
from pathlib import Path

import torch

from weightinit import plugins
from weightinit.adapters.base import ArchSpec, ReferenceFlagsLike
from weightinit.adapters.pix2pix import REFERENCE_NETG
from weightinit.errors import CheckpointError, LayoutMismatch
from weightinit.fileio import read_json_object, replace_marked_block
from weightinit.layout import BlockLayout

CONFIG_NAME = "generator_config.json"
LAYOUT_NAME = "layout.json"


def bundled_generator_path() -> Path:
    """The generator shipped inside the package (trained on the default zoo)."""
    return Path(__file__).parent / "data" / "generator"


def reference_flags(arch: str, image_size: int | None = None) -> tuple[ReferenceFlagsLike | None, str]:
    """``(flags, note)`` for an arch string: the reference flags that build it, or None and why not.

    The arch's adapter says (:meth:`~weightinit.adapters.base.Adapter.reference_flags`): pix2pix's
    and CycleGAN's give the reference pytorch-CycleGAN-and-pix2pix ``train.py`` flags."""
    spec = ArchSpec.parse(arch)
    return plugins.adapter_for_arch(spec).reference_flags(spec, image_size)


@lru_cache(maxsize=64)
def arch_layout_fingerprint(arch: str, adapter_name: str | None = None) -> str:
    """The fingerprint of the generated-parameter layout of ``arch``, built on the meta device (no weights)."""
    with torch.device("meta"):
        model = plugins.build_model(arch)
    adapter = plugins.get_adapter(adapter_name) if adapter_name else plugins.adapter_for_arch(arch)
    return adapter.layout(model).with_dtype().fingerprint


def model_layout_fingerprint(model) -> str:
    """The layout fingerprint ``initialize`` checks a generator against: the model's own, or, for an
    adapter with ``directions`` (CycleGAN), that of its first direction's generator. As in
    ``initialize``, the dtype does not count: this is the fingerprint of the layout in float32."""
    adapter = plugins.adapter_for_model(model)
    directions = getattr(adapter, "directions", None)
    if directions is not None:
        _, attribute = directions(model)[0]
        sub = getattr(model, attribute)
        return plugins.adapter_for_model(sub).layout(sub).with_dtype().fingerprint
    return adapter.layout(model).with_dtype().fingerprint


class GeneratorInfo:
    """One installed generator, read lazily: nothing is opened until a property asks."""

    def __init__(self, source: str | Path, *, kind: str, name: str | None = None, revision: str | None = None):
        #: ``bundled``, ``installed`` (registered by a plugin) or ``extra`` (named by the caller).
        self.kind = kind
        #: What ``initialize(..., generator=...)`` takes to load it: a folder path or a hub id.
        self.reference = str(source)
        self.revision = revision
        self.name = name or (Path(source).name if Path(source).is_dir() else str(source))

    def __repr__(self) -> str:
        return f"GeneratorInfo({self.name!r}, kind={self.kind!r}, reference={self.reference!r})"

    @cached_property
    def folder(self) -> Path:
        path = Path(self.reference).expanduser()
        if path.is_dir():
            return path
        return _hub_folder(self.reference, self.revision)

    @cached_property
    def config(self) -> dict:
        path = self.folder / CONFIG_NAME
        if not path.is_file():
            raise CheckpointError(f"{self.folder} is not a weightinit generator: no {CONFIG_NAME}")
        data = read_json_object(path)
        if not data.get("arch"):
            raise CheckpointError(f"{path}: no arch; this generator cannot initialise a model")
        return data

    @property
    def arch(self) -> str:
        return self.config["arch"]

    @property
    def adapter(self) -> str:
        return self.config.get("adapter") or ArchSpec.parse(self.arch).adapter

    @property
    def image_size(self) -> int | None:
        size = (self.config.get("zoo") or {}).get("image_size")
        return int(size) if size else None

    @cached_property
    def layout_fingerprint(self) -> str:
        """The layout of the model parameters it covers (its base's), which ``initialize`` matches."""
        return arch_layout_fingerprint(self.arch, self.adapter)

    @property
    def weights_layout_fingerprint(self) -> str:
        """The layout of the tensors it generates (LoRA factors or deltas): ``layout.json``'s."""
        return self.config.get("layout_fingerprint") or self.weights_layout.fingerprint

    @cached_property
    def weights_layout(self) -> BlockLayout:
        try:
            return BlockLayout.from_json((self.folder / LAYOUT_NAME).read_text())
        except FileNotFoundError:
            raise CheckpointError(f"{self.folder} is not a complete weightinit generator: no {LAYOUT_NAME}") from None

    @cached_property
    def _flags(self) -> tuple[ReferenceFlagsLike | None, str]:
        return reference_flags(self.arch, self.image_size)

    @property
    def flags(self) -> ReferenceFlagsLike | None:
        return self._flags[0]

    @property
    def flags_note(self) -> str:
        return self._flags[1]

    def serves(self) -> str:
        """One phrase: the reference flags it serves, or that it serves none and why."""
        flags, note = self._flags
        return f"serves `{flags}`" if flags is not None else f"serves no reference train.py flags: {note}"

    def to_dict(self, *, with_layout_file: bool = False) -> dict:
        out = {
            "name": self.name,
            "kind": self.kind,
            "reference": self.reference,
            "arch": self.arch,
            "adapter": self.adapter,
            "layout_fingerprint": self.layout_fingerprint,
            "weights_layout_fingerprint": self.weights_layout_fingerprint,
            "image_size": self.image_size,
            "reference_flags": self.flags.to_dict() if self.flags else None,
            "note": self.flags_note,
            "quality": self.config.get("quality") or {},
        }
        if with_layout_file:
            layout = self.weights_layout
            out["weights_layout"] = {
                "fingerprint": layout.fingerprint,
                "tensors": len(layout),
                "blocks": layout.num_blocks,
                "block_size": layout.block_size,
            }
        return out


def _hub_folder(repo_id: str, revision: str | None) -> Path:
    """The snapshot folder holding a hub generator's two JSON files (only those are fetched)."""
    from weightinit import hub

    return hub.resolve(repo_id, revision=revision, files=[CONFIG_NAME, LAYOUT_NAME])


def installed_generators(extra: Iterable[str | Path] = ()) -> list[GeneratorInfo]:
    """The bundled generator (if the installation has it), every generator the plugins register,
    then ``extra`` (folders or hub ids), in that order. Reads nothing yet."""
    out: list[GeneratorInfo] = []
    bundled = bundled_generator_path()
    if (bundled / CONFIG_NAME).is_file():
        out.append(GeneratorInfo(bundled, kind="bundled", name="bundled"))
    for name, folder, _ in plugins.registered_generators():
        out.append(GeneratorInfo(folder, kind="installed", name=name))
    for item in extra:
        out.append(GeneratorInfo(item, kind="extra"))
    return out


def resolve_name(generator: str | None) -> str | None:
    """What ``generator=`` names: an installed generator's name (as ``weightinit generators`` lists
    it) becomes its folder; a folder or hub id stays as it is; None stays None."""
    if generator is None or Path(str(generator)).expanduser().is_dir():
        return generator
    for info in installed_generators():
        if info.name == generator:
            return info.reference
    return generator


def describe(generators: Sequence[GeneratorInfo]) -> str:
    """One line: each generator, its arch and layout, and the reference flags it serves."""
    if not generators:
        return "none (this installation has no bundled generator)"
    return "; ".join(f"{g.name} = {g.arch} (layout {g.layout_fingerprint}) {g.serves()}" for g in generators)


def by_preference(extra: Iterable[str | Path] = ()) -> list[GeneratorInfo]:
    """The installed generators in the order they are preferred: named ``extra`` ones, then the
    installed packages', then the bundled one."""
    rank = {"extra": 0, "installed": 1, "bundled": 2}
    return sorted(installed_generators(extra), key=lambda g: rank.get(g.kind, 3))


def generator_for_layout(fingerprint: str, extra: Iterable[str | Path] = ()) -> GeneratorInfo:
    """The installed generator that covers ``fingerprint`` (a model's layout, see
    :func:`model_layout_fingerprint`). Named ``extra`` ones win over the installed, these over the
    bundled. :class:`LayoutMismatch` when none does, listing what is installed and the flags each serves."""
    generators = by_preference(extra)
    for info in generators:
        if info.layout_fingerprint == fingerprint:
            return info
    raise LayoutMismatch(
        f"no installed generator covers this model's layout {fingerprint}; installed: {describe(generators)}. "
        "Build one for your network (`weightinit zoo build --arch pix2pix:NAME,ngf=N,norm=NORM --out zoo`, then "
        "`weightinit train --zoo zoo --out my-generator`; on GPUs see docs/gpu.md) and pass generator='my-generator'",
        expected=None,
        actual=fingerprint,
    )


def generator_for_model(model, extra: Iterable[str | Path] = ()) -> GeneratorInfo:
    """:func:`generator_for_layout` of a model's own layout."""
    return generator_for_layout(model_layout_fingerprint(model), extra)


def _served_network(model):
    """The network a generator is picked for: ``model``, or a CycleGAN pair's first generator."""
    adapter = plugins.adapter_for_model(model)
    directions = getattr(adapter, "directions", None)
    if directions is not None:
        sub = getattr(model, directions(model)[0][1])
        return sub, plugins.adapter_for_model(sub)
    return model, adapter


def pick_for_arch(arch: str, extra: Iterable[str | Path] = ()):
    """``(generator, plan)`` for the network ``arch`` builds: a generator made for its own layout
    first (plan None), else the one whose transfer changes least (exact before not, then fewest
    steps; named ``extra`` ones before the installed, these before the bundled).
    :class:`LayoutMismatch` names the network and says why each generator does not serve it."""
    spec = ArchSpec.parse(arch)
    adapter = plugins.adapter_for_arch(spec)
    if getattr(adapter, "directions", None) is not None:  # a CycleGAN pair: served as its generators are
        with torch.device("meta"):
            network, network_adapter = _served_network(adapter.build(spec))
        network_arch = network_adapter.arch_of(network)
        if network_arch is not None:
            return pick_for_arch(network_arch, extra)
    fingerprint = arch_layout_fingerprint(arch)
    options, reasons = [], []
    for order, info in enumerate(by_preference(extra)):
        if info.layout_fingerprint == fingerprint:
            return info, None
        if info.adapter != adapter.name:
            reasons.append(f"{info.name} ({info.arch}) is for adapter {info.adapter!r}")
            continue
        try:
            plan = adapter.transfer(info.arch, arch)
        except LayoutMismatch as exc:
            reasons.append(f"{info.name} ({info.arch}): {exc}")
            continue
        options.append(((not plan.exact, len(plan.steps), order), info, plan))
    if options:
        _, info, plan = min(options, key=lambda o: o[0])
        return info, plan
    raise LayoutMismatch(
        f"no installed generator serves {arch}: "
        + ("; ".join(reasons) or "this installation has no bundled generator and none installed")
        + ". "
        "Build one for your network (`weightinit zoo build --arch pix2pix:NAME,ngf=N,norm=NORM --out zoo`, then "
        "`weightinit train --zoo zoo --out my-generator`; on GPUs see docs/gpu.md) and pass generator='my-generator'",
        expected=None,
        actual=fingerprint,
    )


def pick_generator(model, extra: Iterable[str | Path] = ()):
    """:func:`pick_for_arch` for a model (its first generator for a CycleGAN pair); a network no
    adapter can name as an arch string is served only by a generator of its own layout."""
    network, adapter = _served_network(model)
    arch = adapter.arch_of(network)
    if arch is None:
        return generator_for_layout(model_layout_fingerprint(model), extra), None
    return pick_for_arch(arch, extra)


#: The reference flag sets weightinit is checked on: ``--netG x --norm {batch, instance} x --ngf``.
REFERENCE_NORMS = ("batch", "instance")
REFERENCE_NGFS = (8, 16, 32, 64)


def served_flag_sets(extra: Iterable[str | Path] = ()) -> dict[str | None, list[tuple[str, str, int]]]:
    """Generator name -> the reference flag sets ``(netG, norm, ngf)`` it is picked for (None: those
    no installed generator serves). Planned on the meta device: milliseconds, no weights."""
    out: dict[str | None, list[tuple[str, str, int]]] = {}
    for netg in REFERENCE_NETG:
        for norm in REFERENCE_NORMS:
            for ngf in REFERENCE_NGFS:
                try:
                    info, _ = pick_for_arch(f"pix2pix:{netg},ngf={ngf},norm={norm}", extra)
                    name = info.name
                except LayoutMismatch:
                    name = None
                out.setdefault(name, []).append((netg, norm, ngf))
    return out


def describe_flag_sets(sets: list[tuple[str, str, int]]) -> str:
    """``unet_256 batch (ngf 16, 32, 64); ...``: flag sets grouped by ``--netG`` and ``--norm``."""
    groups: dict[tuple[str, str], list[int]] = {}
    for netg, norm, ngf in sets:
        groups.setdefault((netg, norm), []).append(ngf)
    return "; ".join(f"`{netg}` {norm} (ngf {', '.join(map(str, ngfs))})" for (netg, norm), ngfs in groups.items())


README_START = "<!-- generators:start -->"
README_END = "<!-- generators:end -->"
#: The quality line a generator's model card measures (``weightinit.generator.export``).
_STEP0_KEY = "held-out PSNR at step 0, median dB"


def readme_table(rows: list[dict], served: dict | None = None) -> str:
    """The README's table of installed generators: arch, the reference flags of its own network
    (or why there are none), the reference flag sets it serves carried (``served``, from
    :func:`served_flag_sets`), and its measured held-out start, from ``to_dict`` rows."""
    served = served or {}
    grid = len(REFERENCE_NETG) * len(REFERENCE_NORMS) * len(REFERENCE_NGFS)
    lines = [
        README_START,
        "<!-- generated by `weightinit generators --readme README.md` from the installed generators; do not edit by "
        "hand -->",
        f"| generator | arch | reference `train.py` flags of its own network | of the {grid} reference flag sets "
        "(`--netG` x `--norm` batch, instance x `--ngf` 8-64), those it serves (picked for them) | "
        "held-out start, median test PSNR at step 0 (generated / base) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        flags = f"`{' '.join(r['reference_flags']['args'])}`" if r["reference_flags"] else f"none: {r['note']}"
        step0 = (r.get("quality") or {}).get(_STEP0_KEY) or {}
        measured = (
            f"{step0['generated_1']:.2f} / {step0['base']:.2f} dB"
            if "generated_1" in step0 and "base" in step0
            else "not measured"
        )
        carried = describe_flag_sets(served.get(r["name"], [])) or "none"
        lines.append(f"| {r['name']} | `{r['arch']}` | {flags} | {carried} | {measured} |")
    if served.get(None):
        lines.append(f"\nServed by none: {describe_flag_sets(served[None])}.")
    lines.append(README_END)
    return "\n".join(lines)


def write_readme_table(path: Path, rows: list[dict], served: dict | None = None) -> None:
    """Replace the table between the markers in ``path`` (which must have them), atomically."""
    replace_marked_block(path, README_START, README_END, readme_table(rows, served))
