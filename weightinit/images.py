"""Source photos: the bundled set or a user's folder, split into train and test photos, cut
into random crops.

Images inside weightinit's edit code are float32 numpy arrays ``HxWx3`` in ``[0, 1]``;
:func:`to_tensor` turns a batch into torch float32 ``NCHW`` in ``[-1, 1]`` (the pix2pix
convention) and :func:`from_tensor` back.

Train and test crops never come from the same photo: with two or more photos a fixed,
name-based subset (a quarter, at least one) is the test set; a single photo is cut into a
train region (the first 75 % along its longer side) and a test region (the rest).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from weightinit.errors import WeightinitError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm")
TEST_FRACTION = 0.25
SPLITS = ("train", "test")


# --- tensors -------------------------------------------------------------------------------
def to_tensor(batch):
    """``(N,)H,W,3`` float in ``[0, 1]`` -> torch float32 ``N,3,H,W`` in ``[-1, 1]``."""
    import torch

    arr = np.asarray(batch, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected images of shape (N, H, W, 3), got {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2))) * 2.0 - 1.0


def from_tensor(tensor) -> np.ndarray:
    """torch ``N,3,H,W`` (or ``3,H,W``) in ``[-1, 1]`` -> float32 ``N,H,W,3`` in ``[0, 1]``."""
    t = tensor.detach().float().cpu()
    if t.ndim == 3:
        t = t[None]
    return np.clip((t.numpy().transpose(0, 2, 3, 1) + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)


def is_grayscale(img: np.ndarray, tol: float = 2.0 / 255.0) -> bool:
    return bool(np.abs(img - img.mean(axis=2, keepdims=True)).max() <= tol)


def load_image(path: Path) -> np.ndarray:
    """An image file as float32 ``HxWx3`` in ``[0, 1]``."""
    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise WeightinitError(f"{path} is not a readable image: {exc}") from None


def _sort_key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def list_image_files(folder: Path, *, what: str = "photos") -> list[Path]:
    """The image files in ``folder`` (not recursive); one clear error when there are none or
    when some files are not images."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WeightinitError(f"{what} folder {folder} does not exist or is not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise WeightinitError(f"{what} folder {folder} is empty")
    bad: list[str] = []
    good: list[Path] = []
    for p in files:
        try:
            with Image.open(p) as im:
                im.verify()
            good.append(p)
        except Exception:
            bad.append(p.name)
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise WeightinitError(f"{what} folder {folder} contains files that are not images: {shown}")
    return good


@dataclass(frozen=True)
class Photo:
    name: str
    pixels: np.ndarray  # HxWx3 float32 in [0, 1]


class PhotoSet:
    """A validated set of source photos with a fixed train/test split.

    Build one with :meth:`bundled` (the photos shipped with weightinit) or :meth:`from_folder`
    (``--images DIR``). ``min_size`` is the crop size the photos must cover; ``require_color``
    rejects a set in which every photo is grey (colour tasks cannot be learnt from it).
    """

    def __init__(self, photos: list[Photo], *, source: str, min_size: int = 64, require_color: bool = False):
        if not photos:
            raise WeightinitError(f"no photos in {source}")
        small = [
            f"{p.name} ({p.pixels.shape[1]}x{p.pixels.shape[0]})" for p in photos if min(p.pixels.shape[:2]) < min_size
        ]
        if small:
            raise WeightinitError(
                f"photos in {source} are smaller than the {min_size}x{min_size} crop: {', '.join(small[:5])}"
                + (f" and {len(small) - 5} more" if len(small) > 5 else "")
            )
        if require_color and all(is_grayscale(p.pixels) for p in photos):
            raise WeightinitError(f"every photo in {source} is grayscale, but this concept needs colour photos")
        self.photos = sorted(photos, key=lambda p: p.name)
        self.source = source
        self.min_size = min_size
        self._regions = self._split()

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def bundled(cls, *, min_size: int = 64, require_color: bool = False) -> PhotoSet:
        folder = resources.files("weightinit") / "data" / "photos"
        photos = []
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.lower().endswith(IMAGE_SUFFIXES):
                with resources.as_file(entry) as path:
                    photos.append(Photo(Path(entry.name).stem, load_image(path)))
        return cls(photos, source="the bundled photos", min_size=min_size, require_color=require_color)

    @classmethod
    def from_folder(cls, folder: str | Path, *, min_size: int = 64, require_color: bool = False) -> PhotoSet:
        files = list_image_files(Path(folder))
        photos = [Photo(p.name, load_image(p)) for p in files]
        return cls(photos, source=f"folder {folder}", min_size=min_size, require_color=require_color)

    @classmethod
    def load(cls, images: str | Path | None = None, **kwargs) -> PhotoSet:
        """The user's folder when given, else the bundled photos."""
        return cls.from_folder(images, **kwargs) if images is not None else cls.bundled(**kwargs)

    # -- split ----------------------------------------------------------------------------------
    def _split(self) -> dict[str, list[tuple[int, slice, slice]]]:
        """Per split: (photo index, row slice, column slice) regions."""
        n = len(self.photos)
        if n == 1:
            h, w = self.photos[0].pixels.shape[:2]
            long_axis = 0 if h >= w else 1
            length = (h, w)[long_axis]
            cut = int(round(length * (1 - TEST_FRACTION)))
            if length - cut < self.min_size or cut < self.min_size:
                raise WeightinitError(
                    f"a single photo ({self.photos[0].name}, {w}x{h}) must be at least "
                    f"{math.ceil(self.min_size / TEST_FRACTION)} px "
                    f"along its longer side to give disjoint train and test regions of {self.min_size} px; add more "
                    "photos"
                )
            full = slice(None)
            train = (slice(0, cut), full) if long_axis == 0 else (full, slice(0, cut))
            test = (slice(cut, None), full) if long_axis == 0 else (full, slice(cut, None))
            return {"train": [(0, *train)], "test": [(0, *test)]}
        order = sorted(range(n), key=lambda i: _sort_key(self.photos[i].name))
        n_test = max(1, int(round(n * TEST_FRACTION)))
        test = sorted(order[:n_test])
        full = slice(None)
        return {
            "train": [(i, full, full) for i in range(n) if i not in test],
            "test": [(i, full, full) for i in test],
        }

    def names(self, split: str) -> list[str]:
        self._check_split(split)
        return [self.photos[i].name for i, _, _ in self._regions[split]]

    def region(self, split: str, k: int) -> np.ndarray:
        i, rows, cols = self._regions[split][k]
        return self.photos[i].pixels[rows, cols]

    @staticmethod
    def _check_split(split: str) -> None:
        if split not in SPLITS:
            raise WeightinitError(f"unknown split {split!r}; expected train or test")

    @property
    def has_color(self) -> bool:
        return not all(is_grayscale(p.pixels) for p in self.photos)

    # -- crops ----------------------------------------------------------------------------------
    def random_crops(
        self, n: int, size: int = 64, seed: int = 0, split: str = "train", *, max_scale: float = 2.0
    ) -> np.ndarray:
        """``n`` crops (``n x size x size x 3`` float32) from the split's photos.

        A crop covers a random square of ``size``..``max_scale*size`` px (never past the photo),
        is resized to ``size`` and flipped left-right half the time. Crop ``i`` depends only on
        ``(seed, split, i)``, so a longer sample starts with the shorter one.
        """
        self._check_split(split)
        if size > self.min_size:
            too_small = [
                self.photos[i].name
                for i, r, c in self._regions[split]
                if min(self.photos[i].pixels[r, c].shape[:2]) < size
            ]
            if too_small:
                raise WeightinitError(f"photos smaller than the {size}x{size} crop: {', '.join(too_small[:5])}")
        regions = [self.region(split, k) for k in range(len(self._regions[split]))]
        out = np.empty((n, size, size, 3), dtype=np.float32)
        split_code = SPLITS.index(split)
        for i in range(n):
            rng = np.random.default_rng([int(seed), split_code, i])
            img = regions[int(rng.integers(len(regions)))]
            h, w = img.shape[:2]
            side = int(rng.integers(size, max(size, min(h, w, int(size * max_scale))) + 1))
            y = int(rng.integers(0, h - side + 1))
            x = int(rng.integers(0, w - side + 1))
            crop = img[y : y + side, x : x + side]
            if side != size:
                pil = Image.fromarray((crop * 255.0 + 0.5).astype(np.uint8))
                crop = np.asarray(pil.resize((size, size), Image.BICUBIC), dtype=np.float32) / 255.0
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            out[i] = crop
        return out
