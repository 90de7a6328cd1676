"""Pair sources: where (input, target) image pairs come from.

Every source has one method, ``sample(n, split, seed) -> (inputs, targets)``, returning torch
float32 ``NCHW`` tensors in ``[-1, 1]``; ``split`` is ``"train"`` or ``"test"`` and the two
never share a photo (or, for folders, an image file).

- :class:`ProceduralPairs`: a concept's pair builder applied to crops of real photos (the
  offline default).
- :class:`FolderPairs`: a folder of aligned pairs in the reference pix2pix format (A and B side
  by side in one image), with ``train``/``test`` subfolders or a deterministic split.
- :class:`DiffusionEditorPairs`: an InstructPix2Pix-style diffusers pipeline edits crops of
  real photos with the concept's text as the prompt (GPU and hub access recommended).

A zoo names its source in its config (``ZooConfig.pairs``: ``procedural`` or ``editor``, with
``editor``, ``editor_size`` and ``editor_steps``); :func:`zoo_pair_source` is the one place that
turns that setting into a source, for the build and for everything that reads the zoo's pairs.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

from weightinit.errors import WeightinitError
from weightinit.hub import hub_offline
from weightinit.images import SPLITS, PhotoSet, from_tensor, list_image_files, load_image, to_tensor

__all__ = [
    "PAIR_SOURCES",
    "PairSource",
    "PairSourceConfig",
    "ProceduralPairs",
    "FolderPairs",
    "DiffusionEditorPairs",
    "load_editor",
    "zoo_pair_source",
    "to_tensor",
    "from_tensor",
]

#: What can make a zoo's pairs (``ZooConfig.pairs``, ``weightinit zoo build --pairs``).
PAIR_SOURCES = ("procedural", "editor")


class PairSource(Protocol):
    def sample(self, n: int, split: str = "train", seed: int = 0): ...


class PairSourceConfig(Protocol):
    """What :func:`zoo_pair_source` reads of a zoo's config (a ``weightinit.zoo.manifest.ZooConfig``)."""

    pairs: str
    editor: str | None
    editor_size: int
    editor_steps: int
    image_size: int


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise WeightinitError(f"unknown split {split!r}; expected train or test")


class _Cached:
    """Keeps the last few samples in memory, keyed by (split, n, seed)."""

    max_cached = 8

    def __init__(self) -> None:
        self._cache: dict[tuple, tuple] = {}

    def sample(self, n: int, split: str = "train", seed: int = 0):
        _check_split(split)
        if n < 1:
            raise WeightinitError(f"need at least one pair, got n={n}")
        key = (split, int(n), int(seed))
        if key not in self._cache:
            if len(self._cache) >= self.max_cached:
                self._cache.pop(next(iter(self._cache)))
            inputs, targets = self._make(int(n), split, int(seed))
            self._cache[key] = (to_tensor(inputs), to_tensor(targets))
        a, b = self._cache[key]
        return a.clone(), b.clone()

    def sample_numpy(self, n: int, split: str = "train", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.sample(n, split, seed)
        return from_tensor(a), from_tensor(b)

    def _make(self, n: int, split: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class ProceduralPairs(_Cached):
    """A concept's own pair builder on random crops of real photos.

    ``photos`` defaults to the bundled set; a grey-only set is refused for a concept that
    ``needs_color``. Pair ``i`` depends only on ``(seed, split, i)``.
    """

    def __init__(self, concept, photos: PhotoSet | None = None, size: int = 64):
        super().__init__()
        self.concept = concept
        self.size = int(size)
        self.photos = photos if photos is not None else PhotoSet.bundled(min_size=self.size)
        if concept.needs_color and not self.photos.has_color:
            raise WeightinitError(
                f"every photo in {self.photos.source} is grayscale, but concept {concept.id!r} needs colour photos"
            )

    def _make(self, n: int, split: str, seed: int):
        crops = self.photos.random_crops(n, self.size, seed=seed, split=split)
        inputs = np.empty_like(crops)
        targets = np.empty_like(crops)
        for i, crop in enumerate(crops):
            rng = np.random.default_rng([seed, SPLITS.index(split), i, 1])
            a, b = self.concept.build_pair(crop, rng)
            inputs[i] = np.clip(a, 0, 1)
            targets[i] = np.clip(b, 0, 1)
        return inputs, targets


class FolderPairs(_Cached):
    """Aligned pairs in the reference pix2pix format: each file is ``A | B`` side by side.

    With ``train/`` and ``test/`` (or ``val/``) subfolders those are the splits; otherwise the
    files of ``root`` are split by a fixed hash of their names (a quarter, at least one, to test).
    ``direction="BtoA"`` swaps the halves. Each half is resized to ``size x size``; train pairs
    are flipped left-right (both halves together) half the time.
    """

    def __init__(self, root: str | Path, size: int = 64, direction: str = "AtoB"):
        super().__init__()
        if direction not in ("AtoB", "BtoA"):
            raise WeightinitError(f"direction must be AtoB or BtoA, got {direction!r}")
        self.root = Path(root)
        self.size = int(size)
        self.direction = direction
        if not self.root.is_dir():
            raise WeightinitError(f"pairs folder {self.root} does not exist or is not a folder")
        sub = {s: self.root / s for s in ("train", "test", "val") if (self.root / s).is_dir()}
        if "train" in sub and ("test" in sub or "val" in sub):
            self.files = {
                "train": list_image_files(sub["train"], what="pairs"),
                "test": list_image_files(sub.get("test", sub.get("val")), what="pairs"),
            }
        else:
            files = list_image_files(self.root, what="pairs")
            if len(files) < 2:
                raise WeightinitError(f"pairs folder {self.root} needs at least 2 images (one for train, one for test)")
            order = sorted(files, key=lambda p: hashlib.sha256(p.name.encode()).hexdigest())
            n_test = max(1, int(round(len(files) * 0.25)))
            self.files = {"train": sorted(order[n_test:]), "test": sorted(order[:n_test])}
        self._check_files()

    def _check_files(self) -> None:
        from PIL import Image

        for files in self.files.values():
            for p in files:
                with Image.open(p) as im:
                    w, h = im.size
                if w < 2 or w % 2 or w // 2 < 1:
                    raise WeightinitError(f"{p} is {w}x{h}: an aligned pair needs an even width (A and B side by side)")
                if min(w // 2, h) < self.size // 2:
                    raise WeightinitError(
                        f"{p} is {w}x{h}: each half is much smaller than the {self.size}x{self.size} model input"
                    )

    def __len__(self) -> int:
        return sum(len(v) for v in self.files.values())

    def _halves(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        from PIL import Image

        img = load_image(path)
        w = img.shape[1] // 2
        out = []
        for half in (img[:, :w], img[:, w : 2 * w]):
            pil = Image.fromarray((half * 255.0 + 0.5).astype(np.uint8)).resize((self.size, self.size), Image.BICUBIC)
            out.append(np.asarray(pil, dtype=np.float32) / 255.0)
        a, b = out
        return (a, b) if self.direction == "AtoB" else (b, a)

    def _make(self, n: int, split: str, seed: int):
        files = self.files[split]
        inputs = np.empty((n, self.size, self.size, 3), dtype=np.float32)
        targets = np.empty_like(inputs)
        rng = np.random.default_rng([seed, SPLITS.index(split), 2])
        order: list[int] = []
        loaded: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for i in range(n):
            if not order:
                order = list(rng.permutation(len(files))) if split == "train" else list(range(len(files)))
            k = int(order.pop(0))
            if k not in loaded:
                loaded[k] = self._halves(files[k])
            a, b = loaded[k]
            if split == "train" and rng.random() < 0.5:
                a, b = a[:, ::-1], b[:, ::-1]
            inputs[i], targets[i] = a, b
        return inputs, targets


class DiffusionEditorPairs(_Cached):
    """Pairs made by an instruction-following diffusion editor.

    ``editor`` is a hub id or local path of a ``StableDiffusionInstructPix2PixPipeline`` (for
    example ``timbrooks/instruct-pix2pix``) or an already built pipeline. The prompt is the
    concept's text. Crops are upscaled to ``editor_size`` for the editor and the edit is
    resized back to ``size``. Loading honours ``HF_HUB_OFFLINE``.
    """

    def __init__(
        self,
        concept,
        photos: PhotoSet | None = None,
        editor=None,
        *,
        size: int = 64,
        editor_size: int = 256,
        num_inference_steps: int = 20,
        guidance_scale: float = 7.5,
        image_guidance_scale: float = 1.5,
        device: str | None = None,
        batch_size: int = 4,
    ):
        super().__init__()
        if editor is None:
            raise WeightinitError(
                "DiffusionEditorPairs needs an editor: a diffusers model id, a local path, or a pipeline"
            )
        self.concept = concept
        self.size = int(size)
        self.editor_size = int(editor_size)
        self.num_inference_steps = int(num_inference_steps)
        self.guidance_scale = float(guidance_scale)
        self.image_guidance_scale = float(image_guidance_scale)
        self.batch_size = int(batch_size)
        self.photos = photos if photos is not None else PhotoSet.bundled(min_size=self.size)
        self.pipeline = load_editor(editor, device) if isinstance(editor, (str, Path)) else editor
        self.editor_id = str(editor) if isinstance(editor, (str, Path)) else type(editor).__name__

    def _make(self, n: int, split: str, seed: int):
        import torch
        from PIL import Image

        crops = self.photos.random_crops(n, self.size, seed=seed, split=split)
        targets = np.empty_like(crops)
        for start in range(0, n, self.batch_size):
            chunk = crops[start : start + self.batch_size]
            images = [
                Image.fromarray((c * 255.0 + 0.5).astype(np.uint8)).resize(
                    (self.editor_size, self.editor_size), Image.BICUBIC
                )
                for c in chunk
            ]
            generators = [
                torch.Generator(device="cpu").manual_seed(
                    int(np.random.SeedSequence([seed, SPLITS.index(split), start + j]).generate_state(1)[0])
                )
                for j in range(len(chunk))
            ]
            out = self.pipeline(
                prompt=[self.concept.text] * len(chunk),
                image=images,
                num_inference_steps=self.num_inference_steps,
                guidance_scale=self.guidance_scale,
                image_guidance_scale=self.image_guidance_scale,
                generator=generators,
                output_type="np",
            ).images
            for j, edited in enumerate(np.asarray(out, dtype=np.float32)):
                pil = Image.fromarray((np.clip(edited, 0, 1) * 255.0 + 0.5).astype(np.uint8)).resize(
                    (self.size, self.size), Image.BICUBIC
                )
                targets[start + j] = np.asarray(pil, dtype=np.float32) / 255.0
        return crops, targets


_EDITORS: dict[tuple[str, str | None], object] = {}


def load_editor(model_id: str | Path, device: str | None = None):
    """The ``StableDiffusionInstructPix2PixPipeline`` at a hub id or local path, on ``device``
    (default: CUDA when visible; float16 there, float32 on the CPU), loaded once per process: a
    zoo build asks for every concept's pairs. Honours ``HF_HUB_OFFLINE``; a model that cannot
    be loaded is one :class:`WeightinitError` line."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    key = (str(model_id), device)
    if key in _EDITORS:
        return _EDITORS[key]
    local = Path(model_id).expanduser()
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    try:
        with _quiet_loaders():
            from diffusers import StableDiffusionInstructPix2PixPipeline

            pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(
                str(model_id), torch_dtype=dtype, safety_checker=None
            )
    except Exception as exc:  # missing folder, not in the offline cache, no such repo, auth: one line each
        if not local.is_dir() and hub_offline():
            why = (
                "it is not a folder, nor in the local hub cache, and HF_HUB_OFFLINE is set "
                "(fetch it once with hub access)"
            )
        else:
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WeightinitError(
            f"could not load the diffusion editor {str(model_id)!r}: {why}; --editor takes an InstructPix2Pix "
            "pipeline's hub id (e.g. timbrooks/instruct-pix2pix) or its local folder"
        ) from None
    pipe.set_progress_bar_config(disable=True)
    _EDITORS[key] = pipe.to(device)
    return _EDITORS[key]


@contextlib.contextmanager
def _quiet_loaders() -> Iterator[None]:
    """diffusers' and transformers' own warnings and loading bars off while a pipeline loads (its
    deprecations, the hub retries, optional backends): a load that fails is then one line, the error's."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    libraries = (diffusers_logging, transformers_logging)
    saved = [(lib, lib.get_verbosity(), lib.is_progress_bar_enabled()) for lib in libraries]
    for lib, _, _ in saved:
        lib.set_verbosity_error()
        lib.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        for lib, level, bars in saved:
            lib.set_verbosity(level)
            if bars:
                lib.enable_progress_bar()


def zoo_pair_source(
    config: PairSourceConfig, concept, photos: PhotoSet | None = None, *, editor=None, device: str | None = None
) -> PairSource:
    """The source of ``concept``'s pairs in a zoo of ``config``, at the zoo's image size: the one
    place that reads the zoo's pair-source setting (the build, ``ZooWeights`` and through it every
    benchmark ask it).

    ``photos``: what is cropped (default: the bundled photos). ``editor``: a loaded pipeline to use
    instead of loading ``config.editor`` (a caller that loaded it once, a test's tiny one);
    ``device``: where an editor loaded here runs (default: CUDA when visible).
    """
    if config.pairs == "procedural":
        return ProceduralPairs(concept, photos, size=config.image_size)
    if config.pairs == "editor":
        pipeline = editor if editor is not None else load_editor(config.editor, device)
        return DiffusionEditorPairs(
            concept,
            photos,
            pipeline,
            size=config.image_size,
            editor_size=config.editor_size,
            num_inference_steps=config.editor_steps,
        )
    raise WeightinitError(f"unknown pair source {config.pairs!r}; expected one of {', '.join(PAIR_SOURCES)}")
