"""``sample`` and ``init``: a generated starting point written as a checkpoint.

``sample`` builds a fresh generator (the weight generator's own arch, or ``--arch``) and writes
it initialised for a concept; ``init`` does the same starting from a user's checkpoint. Both
write the full state dict (parameters and buffers) with the model's native keys, so plain
``netG.load_state_dict(load_file(OUT))`` loads it in the reference pix2pix code (or, for an
``OUT`` ending in ``.pth``, the reference ``torch.load`` + ``load_state_dict``). Writes are
atomic: when a command fails, no output file exists, nor a temporary one. Every cheap check (the
output path, the concept, the arch against the generator's, the pairs folder) runs before a
network is built or any weights are loaded. Heavy imports happen inside the commands.
"""

from __future__ import annotations

import enum
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from weightinit.cli.blocks import _build

ConceptArgument = Annotated[
    str, typer.Argument(help='The edit to learn, in words, e.g. "sketch to photo".', show_default=False)
]
OutOption = Annotated[
    Path,
    typer.Option(
        "--out",
        "--output",
        "-o",
        show_default=False,
        help="Checkpoint to write: .safetensors, or .pth/.pt (a plain tensor state dict, as the reference code saves).",
    ),
]
GeneratorOption = Annotated[
    str | None,
    typer.Option(
        "--generator",
        "-g",
        show_default=False,
        help="Weight generator: a name `weightinit generators` lists, a folder or a hub id "
        "(default: the installed one that serves the network best).",
    ),
]
StepsOption = Annotated[
    int, typer.Option("--steps", min=1, help="Denoising steps (1: one-step generation; more: DDIM).")
]
SeedOption = Annotated[int, typer.Option("--seed", help="Sampling seed: the same seed gives the same weights.")]
GuidanceOption = Annotated[
    float | None,
    typer.Option(
        "--guidance", help="Classifier-free guidance scale (default: the generator's own).", show_default=False
    ),
]
ModeOption = Annotated[
    str, typer.Option("--mode", help="Only 'merge' for checkpoints (base + generated delta in the same keys).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
PairsOption = Annotated[
    Path | None,
    typer.Option(
        "--pairs",
        exists=True,
        file_okay=False,
        show_default=False,
        help="A folder of your aligned pairs (pix2pix format, A|B side by side): make the start from the text "
        "and --pairs-count of its train pairs (see --pairs-start).",
    ),
]
PairsCountOption = Annotated[int, typer.Option("--pairs-count", min=1, help="Train pairs taken from --pairs.")]


class PairsStart(enum.StrEnum):
    """How ``--pairs`` makes the start (``initialize(pairs_start=...)``)."""

    auto = "auto"
    generate = "generate"
    choose = "choose"


PairsStartOption = Annotated[
    PairsStart,
    typer.Option(
        "--pairs-start",
        help="With --pairs: 'generate' the start from the text and the pairs (the generator's pair start, a "
        "fraction of a second), 'choose' the candidate that fits them best (about a second), or 'auto': "
        "generate where the generator has a pair start, else choose.",
    ),
]
FitStepsOption = Annotated[
    int | None,
    typer.Option(
        "--fit-steps",
        min=0,
        show_default=False,
        help="With --pairs: then move the start this many steps inside the generator's prior to fit the pairs "
        "(default: the pair start's own when generating, 0 when choosing).",
    ),
]
PairsSizeOption = Annotated[
    int | None,
    typer.Option(
        "--pairs-size",
        min=8,
        show_default=False,
        help="Side the pairs are resized to (default: the size in the arch name, unet_64 -> 64, else 256).",
    ),
]


def _check_mode(mode: str) -> None:
    from weightinit.errors import WeightinitError

    if mode == "lora":
        raise WeightinitError(
            "--mode lora adds LoRA modules to the model, so its state dict no longer loads into your "
            "network; checkpoints are written with --mode merge (or call initialize(netG, concept, mode='lora') "
            "in your training script)"
        )
    if mode != "merge":
        raise WeightinitError(f"--mode must be merge for a checkpoint, got {mode!r}")


def _load_checkpoint_strictly(model, state: dict, checkpoint: Path, arch: str) -> None:
    """``model.load_state_dict(state)`` with one clear line for missing, unexpected or misshapen keys."""
    from weightinit.errors import CheckpointError

    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshapen = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (first {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (first {unexpected[0]})")
    if misshapen:
        k = misshapen[0]
        parts.append(f"{len(misshapen)} of another shape (first {k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)})")
    if parts:
        raise CheckpointError(f"{checkpoint} does not fit {arch}: " + "; ".join(parts) + " (pass the right --arch)")
    model.load_state_dict(state, strict=True)


def _pairs_size(arch: str) -> int:
    """The input side the arch is made for (``unet_64`` -> 64); pix2pix's 256 where any fits."""
    from weightinit import plugins

    return plugins.image_size_of(arch) or 256


def _pairs_folder(folder: Path | None, count: int, size: int | None, arch: str):
    """The pairs folder, checked (listing only, no image decoded): None without one."""
    if folder is None:
        return None
    from weightinit.errors import WeightinitError
    from weightinit.pairs import FolderPairs

    source = FolderPairs(folder, size=size or _pairs_size(arch))
    available = len(source.files["train"])
    if count > available:  # sampling would repeat pairs, and score candidates on duplicates
        raise WeightinitError(
            f"--pairs-count {count} is more than the {available} train pairs in {folder}; pass --pairs-count "
            f"{available} or fewer"
        )
    return source


def _load_pairs(source, count: int):
    return None if source is None else source.sample(count, split="train", seed=0)


def _pairs_progress():
    """``(progress callback, context)``: a bar on stderr while candidates are scored (a terminal only)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from weightinit.cli.console import stderr_console

    console = stderr_console()
    bar = Progress(
        TextColumn("scoring starts on your pairs"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    task = bar.add_task("score", total=None)
    return (lambda done, total: bar.update(task, completed=done, total=total)), bar


def _generator_arch(generator: str | None) -> str | None:
    """The arch a local generator folder serves, from its config alone (None for a hub id)."""
    from weightinit.generators import bundled_generator_path

    config = (Path(generator) if generator else bundled_generator_path()) / "generator_config.json"
    try:
        return json.loads(config.read_text()).get("arch")
    except (OSError, ValueError, AttributeError):
        return None  # a hub id, or no folder: checked when the generator loads


def _check_arch_cheaply(arch: str, generator: str | None) -> None:
    """Whether a generator serves ``arch``, on the meta device (milliseconds, no memory): a foreign
    arch, or one no generator carries to, is refused before it is built or a generator is loaded."""
    from weightinit import plugins
    from weightinit.errors import LayoutMismatch, WeightinitError
    from weightinit.generators import arch_layout_fingerprint, pick_for_arch

    model, adapter = _build(arch, meta=True)  # the arch string itself, with its own errors
    values = sum(t.numel() for t in [*model.parameters(), *model.buffers()])
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if values * 4 * 3 > memory:  # the network, the generated start and the checkpoint written: float32 each
        raise WeightinitError(
            f"{arch} has {values:,} values ({values * 4 / 2**30:,.1f} GiB in float32), too many for this machine's "
            f"{memory / 2**30:.0f} GiB of memory; nothing was built"
        )
    if generator is None:
        pick_for_arch(arch)
        return
    served = _generator_arch(generator)
    if served is None or arch_layout_fingerprint(served) == arch_layout_fingerprint(arch):
        return
    try:
        plugins.adapter_for_arch(arch).transfer(served, arch)
    except LayoutMismatch as exc:
        raise LayoutMismatch(
            f"generator {generator} was trained for {served}, and does not serve {arch}: {exc}"
        ) from None


def _arch_of_checkpoint(state: dict, checkpoint: Path) -> str:
    """The arch string of a checkpoint, from its keys and shapes (each adapter that can tell is asked)."""
    from weightinit import plugins
    from weightinit.errors import CheckpointError, WeightinitError

    reasons = []
    for name in plugins.adapter_names():
        try:
            arch = plugins.get_adapter(name).arch_of_state_dict(state)
        except WeightinitError as exc:
            reasons.append(f"{name}: {exc}")
            continue
        if arch is not None:
            return arch
    raise CheckpointError(
        f"cannot tell the architecture of {checkpoint} from its keys ({'; '.join(reasons) or 'no adapter can'}); "
        "pass --arch ADAPTER:NAME[,key=value...]"
    )


def import_sampler_without_dynamo() -> None:
    """Import the weight generator's modules with ``torch._dynamo`` kept out, in this command's
    process only: diffusers imports it for one decorator that matters only under ``torch.compile``
    (it falls back to a no-op when the import fails), and importing it is about a third of a
    ``weightinit sample`` (experiments/startup.py). A later import of ``torch._dynamo`` (the text
    encoder's, on a text not cached) works as usual."""
    import importlib

    if "torch._dynamo" in sys.modules or "weightinit.generator.model" in sys.modules:
        return
    sys.modules["torch._dynamo"] = None  # `from torch._dynamo import ...` raises ImportError
    try:
        importlib.import_module("weightinit.generator.model")
    finally:
        del sys.modules["torch._dynamo"]


def _cheap_checks(mode: str, out: Path, concept: str, checkpoint: Path | None = None) -> None:
    from weightinit.errors import WeightinitError
    from weightinit.fileio import check_checkpoint_name
    from weightinit.initialization import _check_concept

    _check_mode(mode)
    check_checkpoint_name(out)
    if checkpoint is not None and out.resolve() == checkpoint.resolve():
        raise WeightinitError(f"--out {out} is CHECKPOINT itself: init never changes your checkpoint; write elsewhere")
    _check_concept(concept)


def _initialize_and_write(
    model,
    arch: str,
    concept: str,
    out: Path,
    *,
    gen,
    steps,
    seed,
    guidance,
    as_json,
    source=None,
    pairs=None,
    fit_steps: int | None = None,
    pairs_start: str = "auto",
):
    import contextlib
    import warnings

    from weightinit.errors import FarConceptWarning
    from weightinit.fileio import save_state_dict_file
    from weightinit.initialization import initialize

    progress, bar = _pairs_progress() if pairs is not None else (None, None)
    with warnings.catch_warnings(record=True) as caught, bar or contextlib.nullcontext():
        warnings.simplefilter("always", FarConceptWarning)
        report = initialize(
            model,
            concept,
            generator=gen,
            steps=steps,
            seed=seed,
            guidance=guidance,
            pairs=pairs,
            progress=progress,
            fit_steps=fit_steps,
            pairs_start=PairsStart(pairs_start).value,
        )
    for w in caught:  # the warning as one line on stderr, not Python's file:line form
        if issubclass(w.category, FarConceptWarning):
            typer.echo(f"warning: {w.message}", err=True)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    metadata = {  # sorted in the file: the same inputs give the same bytes
        "weightinit.arch": arch,
        "weightinit.concept": concept,
        "weightinit.generator": gen.name,
        "weightinit.seed": str(seed),
        "weightinit.steps": str(steps),
    }
    if source is not None:
        metadata["weightinit.source"] = Path(source).name
    if report.choice is not None:
        metadata["weightinit.chosen"] = report.chosen
    if report.fell_back:
        metadata["weightinit.fallback"] = ",".join(
            sorted({p["fallback"] for p in report.based_on.values() if p.get("fallback")})
        )
    missing = next((p for p in reversed(out.parents) if not p.exists()), None)  # the first folder -o creates
    save_state_dict_file(out, model.state_dict(), metadata)
    if missing is not None:
        typer.echo(f"note: created the folder {missing} for {out}", err=True)
    if as_json:
        typer.echo(json.dumps({**report.to_dict(), "arch": arch, "out": str(out)}, indent=2))
    else:
        typer.echo(f"{report}\n  wrote {arch} -> {out}")


def sample(
    concept: ConceptArgument,
    out: OutOption,
    generator: GeneratorOption = None,
    arch: Annotated[
        str | None,
        typer.Option(
            "--arch",
            "-a",
            show_default=False,
            help="Architecture to build (default: the generator's own); a generator of its family serves it, "
            "widened or deepened.",
        ),
    ] = None,
    steps: StepsOption = 1,
    seed: SeedOption = 0,
    guidance: GuidanceOption = None,
    mode: ModeOption = "merge",
    pairs: PairsOption = None,
    pairs_count: PairsCountOption = 8,
    pairs_size: PairsSizeOption = None,
    pairs_start: PairsStartOption = PairsStart.auto,
    fit_steps: FitStepsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write a fresh generator initialised for CONCEPT as a checkpoint.

    The checkpoint holds every parameter and buffer under the network's own keys, so the
    reference pix2pix code loads it with plain load_state_dict. An --arch the generator does
    not cover is an error, and nothing is written.

    Examples:

      weightinit sample "sketch to photo" --out netG_init.safetensors

      weightinit sample "photo to sepia" -o sepia.safetensors -g ./my-generator --seed 3 --json

      weightinit sample "sketch to photo" -o netG_init.safetensors --pairs ./my_pairs
    """
    import torch

    from weightinit.generators import resolve_name
    from weightinit.initialization import load_generator

    _cheap_checks(mode, out, concept)
    import_sampler_without_dynamo()
    folder = resolve_name(generator)  # an installed generator's name: its folder
    named = arch is not None
    arch = arch or _generator_arch(folder)
    if arch is not None:
        if named:  # the generator's own network needs no check
            _check_arch_cheaply(arch, folder)
        source = _pairs_folder(pairs, pairs_count, pairs_size, arch)
    gen = load_generator(generator) if generator is not None or not named else None
    if arch is None:  # a hub id: its arch is known once it is loaded
        arch = gen.arch
        source = _pairs_folder(pairs, pairs_count, pairs_size, arch)
    chosen_on = _load_pairs(source, pairs_count)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the values initialize does not write are seeded too
        model, _ = _build(arch)
    if gen is None:
        gen = load_generator(None, model=model)
    _initialize_and_write(
        model,
        arch,
        concept,
        out,
        gen=gen,
        steps=steps,
        seed=seed,
        guidance=guidance,
        as_json=as_json,
        pairs=chosen_on,
        fit_steps=fit_steps,
        pairs_start=pairs_start,
    )


def init(
    checkpoint: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            show_default=False,
            help="Your generator's state dict: .safetensors, or .pt/.pth/.bin read with weights_only=True.",
        ),
    ],
    concept: ConceptArgument,
    out: OutOption,
    generator: GeneratorOption = None,
    arch: Annotated[
        str | None,
        typer.Option(
            "--arch",
            "-a",
            help="CHECKPOINT's architecture (default: read from its keys and shapes).",
            show_default=False,
        ),
    ] = None,
    steps: StepsOption = 1,
    seed: SeedOption = 0,
    guidance: GuidanceOption = None,
    mode: ModeOption = "merge",
    pairs: PairsOption = None,
    pairs_count: PairsCountOption = 8,
    pairs_size: PairsSizeOption = None,
    pairs_start: PairsStartOption = PairsStart.auto,
    fit_steps: FitStepsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Initialise your checkpoint for CONCEPT and write it to OUT (CHECKPOINT is not changed).

    The architecture is read from the checkpoint's keys and shapes (or given with --arch), and
    the checkpoint must fit it exactly (wrapper prefixes such as module. are stripped). The
    generated weights replace its generated parameters and running statistics, and the result
    keeps its keys, so your code loads it with plain load_state_dict. CHECKPOINT itself is never
    changed: OUT must be another file.

    Examples:

      weightinit init latest_net_G.pth "sketch to photo" -o init_net_G.pth

      weightinit init netG.safetensors "photo to sepia" -o out.safetensors -a pix2pix:unet_64 -g ./my-gen
    """
    from weightinit.adapters.base import strip_wrapper_prefixes
    from weightinit.errors import CheckpointError
    from weightinit.fileio import load_state_dict_file
    from weightinit.generators import resolve_name
    from weightinit.initialization import load_generator

    _cheap_checks(mode, out, concept, checkpoint)
    import_sampler_without_dynamo()
    folder = resolve_name(generator)  # an installed generator's name: its folder
    if arch is not None:  # checked before the checkpoint is read
        _check_arch_cheaply(arch, folder)
    state = {}
    for key, value in load_state_dict_file(checkpoint).items():
        clean = strip_wrapper_prefixes(key)
        if clean in state:
            raise CheckpointError(f"{checkpoint} holds {clean!r} twice (with and without a wrapper prefix)")
        state[clean] = value
    if arch is None:
        arch = _arch_of_checkpoint(state, checkpoint)
        _check_arch_cheaply(arch, folder)
    source = _pairs_folder(pairs, pairs_count, pairs_size, arch)
    chosen_on = _load_pairs(source, pairs_count)
    model, _ = _build(arch)
    dtypes = {v.dtype for v in state.values() if v.is_floating_point()}
    if len(dtypes) == 1:  # fp16 in, fp16 out: the network takes the checkpoint's dtype
        model.to(dtypes.pop())
    _load_checkpoint_strictly(model, state, checkpoint, arch)
    gen = load_generator(generator, model=model)
    _initialize_and_write(
        model,
        arch,
        concept,
        out,
        gen=gen,
        steps=steps,
        seed=seed,
        guidance=guidance,
        as_json=as_json,
        source=checkpoint,
        pairs=chosen_on,
        fit_steps=fit_steps,
        pairs_start=pairs_start,
    )
