"""Edit primitives: photo in, edited photo out.

Every function takes a float32 image ``HxWx3`` in ``[0, 1]`` (channel-last) and returns one of
the same shape and range. Strength arguments are plain numbers; the few edits with randomness
(noise, grain, JPEG) take a :class:`numpy.random.Generator` and are deterministic given it.
Only numpy and PIL are used (no scipy, scikit-image or torchvision at run time), so every edit
runs anywhere the library runs. Position-dependent edits (vignette, fog, tilt-shift) are
computed on the image they are given, i.e. on the crop.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

Array = np.ndarray

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


# --- helpers ---------------------------------------------------------------------------------
def clip(img: Array) -> Array:
    return np.clip(img, 0.0, 1.0).astype(np.float32, copy=False)


def luminance(img: Array) -> Array:
    """``HxW`` Rec. 601 luma."""
    return (img @ _LUMA).astype(np.float32)


def gray3(lum: Array) -> Array:
    return np.repeat(lum[..., None], 3, axis=2).astype(np.float32)


def mix(a: Array, b: Array, t) -> Array:
    return (a * (1.0 - t) + b * t).astype(np.float32)


def _gauss_kernel(sigma: float) -> Array:
    radius = max(1, int(round(3.0 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def _conv1d(img: Array, k: Array, axis: int) -> Array:
    r = len(k) // 2
    pad = [(0, 0)] * img.ndim
    pad[axis] = (r, r)
    p = np.pad(img, pad, mode="reflect" if img.shape[axis] > r else "edge")
    out = np.zeros_like(img, dtype=np.float32)
    n = img.shape[axis]
    for i, w in enumerate(k):
        out += w * np.take(p, np.arange(i, i + n), axis=axis)
    return out


def gaussian_blur(img: Array, sigma: float) -> Array:
    """Separable Gaussian blur (reflect padding); works on ``HxW`` or ``HxWxC``."""
    if sigma <= 0:
        return img.astype(np.float32)
    k = _gauss_kernel(sigma)
    return _conv1d(_conv1d(img.astype(np.float32), k, 0), k, 1)


def box_mean(img: Array, radius: int) -> Array:
    """Mean over a ``(2r+1)^2`` window (edge padding), via cumulative sums."""
    r = int(radius)
    pad = [(r + 1, r), (r + 1, r)] + [(0, 0)] * (img.ndim - 2)
    p = np.pad(img.astype(np.float64), pad, mode="edge")
    c = p.cumsum(0).cumsum(1)
    h, w = img.shape[:2]
    s = c[2 * r + 1 : 2 * r + 1 + h, 2 * r + 1 : 2 * r + 1 + w] - c[:h, 2 * r + 1 : 2 * r + 1 + w]
    s = s - c[2 * r + 1 : 2 * r + 1 + h, :w] + c[:h, :w]
    return (s / (2 * r + 1) ** 2).astype(np.float32)


def grid(h: int, w: int) -> tuple[Array, Array]:
    """Normalised coordinates ``y, x`` in ``[-1, 1]``."""
    y = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None]
    x = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :]
    return np.broadcast_to(y, (h, w)), np.broadcast_to(x, (h, w))


def _pil(img: Array) -> Image.Image:
    return Image.fromarray((clip(img) * 255.0 + 0.5).astype(np.uint8))


def _np(im: Image.Image) -> Array:
    return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def resize(img: Array, h: int, w: int, resample=Image.BICUBIC) -> Array:
    return _np(_pil(img).resize((w, h), resample))


def bilinear_sample(img: Array, ys: Array, xs: Array) -> Array:
    """Sample ``img`` (HxW) at float pixel coordinates, clamped to the border."""
    h, w = img.shape[:2]
    ys = np.clip(ys, 0, h - 1)
    xs = np.clip(xs, 0, w - 1)
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    fy = (ys - y0).astype(np.float32)
    fx = (xs - x0).astype(np.float32)
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bot = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return (top * (1 - fy) + bot * fy).astype(np.float32)


def _rgb_to_hsv(img: Array) -> tuple[Array, Array, Array]:
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    mx = img.max(-1)
    mn = img.min(-1)
    d = mx - mn
    s = np.where(mx > 1e-6, d / np.maximum(mx, 1e-6), 0.0)
    dd = np.maximum(d, 1e-6)
    h = np.where(mx == r, ((g - b) / dd) % 6.0, np.where(mx == g, (b - r) / dd + 2.0, (r - g) / dd + 4.0))
    h = np.where(d > 1e-6, h / 6.0, 0.0)
    return h.astype(np.float32), s.astype(np.float32), mx.astype(np.float32)


# --- restoration degradations (used as *inputs* of inverse concepts) --------------------------
def add_noise(img: Array, sigma: float, rng: np.random.Generator) -> Array:
    return clip(img + rng.normal(0.0, sigma, img.shape).astype(np.float32))


def pixelate(img: Array, factor: int) -> Array:
    h, w = img.shape[:2]
    small = _pil(img).resize((max(1, w // factor), max(1, h // factor)), Image.BOX)
    return _np(small.resize((w, h), Image.NEAREST))


def lowres(img: Array, factor: int) -> Array:
    h, w = img.shape[:2]
    small = _pil(img).resize((max(1, w // factor), max(1, h // factor)), Image.BOX)
    return _np(small.resize((w, h), Image.BICUBIC))


def jpeg(img: Array, quality: int) -> Array:
    buf = io.BytesIO()
    _pil(img).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return _np(Image.open(buf))


def exposure(img: Array, ev: float) -> Array:
    """Scale linear light by ``2**ev`` (gamma 2.2 approximation)."""
    lin = np.power(np.clip(img, 0, 1), 2.2) * (2.0**ev)
    return clip(np.power(np.clip(lin, 0, 1), 1 / 2.2))


def fade(img: Array, amount: float) -> Array:
    """Old-print fading: lifted blacks, lowered contrast and saturation."""
    lum = gray3(luminance(img))
    out = mix(img, lum, 0.5 * amount)
    return clip(0.5 * amount * 0.55 + out * (1.0 - 0.5 * amount))


def color_cast(img: Array, rgb: tuple[float, float, float], amount: float) -> Array:
    gains = 1.0 + amount * (np.asarray(rgb, dtype=np.float32) - 1.0)
    return clip(img * gains)


# --- photo -> style --------------------------------------------------------------------------
def sepia(img: Array, amount: float = 1.0) -> Array:
    m = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], dtype=np.float32)
    return clip(mix(img, clip(img @ m.T), amount))


def grayscale(img: Array, amount: float = 1.0) -> Array:
    return clip(mix(img, gray3(luminance(img)), amount))


def bw_film(img: Array) -> Array:
    """A black-and-white print: luma with a film S-curve (keeps all tone, loses colour)."""
    lum = luminance(img)
    return gray3(s_curve_1d(np.power(lum, 1.15), 0.6))


def pencil_sketch(img: Array, sigma: float = 2.0, shade: float = 0.5) -> Array:
    """Grey pencil sketch that keeps shading: colour-dodge lines multiplied by soft tone.

    Pure edge maps (Sobel magnitude) lose the photo's tone and are not learnable back to a
    photo; ``shade`` keeps a fraction of the luminance so that the inverse task is.
    """
    lum = luminance(img)
    blur_inv = gaussian_blur(1.0 - lum, sigma)
    dodge = np.clip(lum / np.maximum(1.0 - blur_inv, 1e-3), 0.0, 1.0)
    lines = np.power(dodge, 2.0)
    tone = 1.0 - shade * (1.0 - gaussian_blur(lum, 1.0))
    return gray3(clip(lines * tone))


def color_pencil(img: Array, sigma: float = 2.0) -> Array:
    sk = pencil_sketch(img, sigma, shade=0.3)
    return clip(sk * mix(np.ones_like(img), img, 0.6) + 0.1 * (img - gray3(luminance(img))))


def xdog(
    img: Array,
    sigma: float = 1.0,
    k: float = 1.6,
    p: float = 20.0,
    eps: float = 0.02,
    phi: float = 10.0,
    shade: float = 0.35,
) -> Array:
    """XDoG ink rendering (Winnemoeller 2012) with a soft threshold that keeps some tone."""
    lum = luminance(img)
    g1 = gaussian_blur(lum, sigma)
    g2 = gaussian_blur(lum, sigma * k)
    d = (1 + p) * g1 - p * g2
    ink = np.where(d >= eps, 1.0, 1.0 + np.tanh(phi * (d - eps)))
    ink = np.clip(ink, 0, 1)
    return gray3(clip(ink * (1.0 - shade + shade * g1)))


def kuwahara(img: Array, radius: int = 2) -> Array:
    """Kuwahara filter: per pixel, the mean of the quadrant with the lowest variance."""
    r = int(radius)
    lum = luminance(img)
    mean = box_mean(img, r // 2 if r > 1 else 1)
    lmean = box_mean(lum, r // 2 if r > 1 else 1)
    lsq = box_mean(lum * lum, r // 2 if r > 1 else 1)
    var = lsq - lmean**2
    h, w = lum.shape
    o = max(1, r // 2 + (r % 2))
    best_var = np.full((h, w), np.inf, dtype=np.float32)
    out = np.zeros_like(img)
    for dy in (-o, o):
        for dx in (-o, o):
            v = np.roll(np.roll(np.pad(var, o, mode="edge"), dy, 0), dx, 1)[o:-o, o:-o]
            m = np.roll(np.roll(np.pad(mean, ((o, o), (o, o), (0, 0)), mode="edge"), dy, 0), dx, 1)[o:-o, o:-o]
            better = v < best_var
            best_var = np.where(better, v, best_var)
            out = np.where(better[..., None], m, out)
    return clip(out)


def oil_paint(img: Array, radius: int = 2) -> Array:
    out = kuwahara(img, radius)
    return saturation(out, 1.15)


def watercolor(img: Array, amount: float = 1.0) -> Array:
    """Soft washes, lightened paper, darkened pigment at edges."""
    soft = gaussian_blur(img, 1.2 * amount)
    soft = posterize_soft(soft, 6)
    lum = luminance(soft)
    edge = np.abs(lum - gaussian_blur(lum, 1.5))
    out = soft * (1.0 - 2.5 * edge[..., None]) * 0.85 + 0.15
    return clip(mix(img, saturation(clip(out), 0.85), amount))


def posterize_soft(img: Array, levels: int, softness: float = 0.15) -> Array:
    """Posterize with smooth steps (a learnable, non-aliasing quantisation)."""
    x = img * (levels - 1)
    base = np.floor(x)
    frac = x - base
    t = np.clip((frac - 0.5) / softness + 0.5, 0.0, 1.0)
    t = t * t * (3 - 2 * t)
    return clip((base + t) / (levels - 1))


def cartoon(img: Array, levels: int = 5, edge: float = 1.0) -> Array:
    smooth = kuwahara(gaussian_blur(img, 0.7), 2)
    flat = posterize_soft(saturation(smooth, 1.3), levels)
    lum = luminance(img)
    d = gaussian_blur(lum, 0.8) - gaussian_blur(lum, 1.6)
    lines = np.clip(1.0 + np.tanh(25.0 * (d + 0.01)), 0.0, 1.0) if edge > 0 else 1.0
    lines = 1.0 - edge * (1.0 - lines)
    return clip(flat * np.asarray(lines, dtype=np.float32)[..., None] if edge > 0 else flat)


def halftone(img: Array, period: int = 4, softness: float = 0.25, color: bool = False) -> Array:
    """Ordered dot screen aligned to the image grid (period in pixels)."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    pattern = 0.5 + 0.25 * (np.cos(2 * np.pi * yy / period) + np.cos(2 * np.pi * xx / period))
    chans = img if color else luminance(img)[..., None]
    t = np.clip((chans - pattern[..., None]) / softness + 0.5, 0.0, 1.0)
    out = t if color else np.repeat(t, 3, axis=2)
    return clip(mix(out, chans * np.ones_like(img), 0.35))


def emboss(img: Array, amount: float = 1.0, color: bool = False) -> Array:
    lum = gaussian_blur(luminance(img), 0.5)
    dy = np.roll(lum, -1, 0) - np.roll(lum, 1, 0)
    dx = np.roll(lum, -1, 1) - np.roll(lum, 1, 1)
    dy[0], dy[-1] = 0, 0
    dx[:, 0], dx[:, -1] = 0, 0
    relief = 0.5 + 2.0 * amount * (dx + dy) * 0.5
    if color:
        return clip(img + (relief - 0.5)[..., None] * 1.5)
    return gray3(clip(relief))


POP_PALETTES = {
    "warhol": ((0.10, 0.05, 0.35), (0.95, 0.15, 0.55), (1.00, 0.85, 0.10), (0.55, 0.95, 0.95)),
    "lichtenstein": ((0.05, 0.05, 0.10), (0.85, 0.10, 0.10), (0.95, 0.85, 0.10), (0.95, 0.95, 0.90)),
    "neon": ((0.05, 0.00, 0.20), (0.00, 0.70, 0.90), (0.95, 0.20, 0.80), (1.00, 1.00, 0.40)),
    "retro": ((0.20, 0.10, 0.05), (0.75, 0.35, 0.15), (0.90, 0.75, 0.45), (0.95, 0.95, 0.85)),
    "gameboy": ((0.06, 0.22, 0.06), (0.19, 0.38, 0.19), (0.55, 0.67, 0.06), (0.61, 0.74, 0.06)),
}


def gradient_map(lum: Array, palette, smooth: bool = False) -> Array:
    """Map luma through a palette: piecewise-linear, or smooth steps (pop-art)."""
    pal = np.asarray(palette, dtype=np.float32)
    n = len(pal)
    if smooth:
        x = np.clip(lum, 0, 1) * n
        idx = np.clip(np.floor(x), 0, n - 1)
        frac = x - idx
        t = np.clip((frac - 0.85) / 0.3 + 0.5, 0, 1) if n > 1 else np.zeros_like(frac)
        lo = pal[idx.astype(int)]
        hi = pal[np.minimum(idx.astype(int) + 1, n - 1)]
        return clip(lo * (1 - t[..., None]) + hi * t[..., None])
    x = np.clip(lum, 0, 1) * (n - 1)
    i0 = np.clip(np.floor(x).astype(int), 0, n - 2)
    t = (x - i0)[..., None]
    return clip(pal[i0] * (1 - t) + pal[i0 + 1] * t)


def pop_art(img: Array, palette: str = "warhol") -> Array:
    lum = luminance(gaussian_blur(img, 0.6))
    return gradient_map(contrast_1d(lum, 1.3), POP_PALETTES[palette], smooth=True)


def duotone(img: Array, dark=(0.1, 0.1, 0.35), light=(1.0, 0.85, 0.6)) -> Array:
    return gradient_map(luminance(img), (dark, light))


# --- colour grading ---------------------------------------------------------------------------
def temperature(img: Array, amount: float) -> Array:
    """Positive = warmer (more red/yellow), negative = cooler (more blue)."""
    gains = np.array([1 + 0.35 * amount, 1 + 0.08 * amount, 1 - 0.35 * amount], dtype=np.float32)
    return clip(img * gains)


def tint(img: Array, amount: float) -> Array:
    """Positive = magenta, negative = green."""
    gains = np.array([1 + 0.15 * amount, 1 - 0.25 * amount, 1 + 0.15 * amount], dtype=np.float32)
    return clip(img * gains)


def saturation(img: Array, factor: float) -> Array:
    lum = gray3(luminance(img))
    return clip(lum + (img - lum) * factor)


def hue_shift(img: Array, degrees: float) -> Array:
    """Rotate hue in YIQ space (luma preserved)."""
    to_yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=np.float32)
    th = np.deg2rad(degrees)
    rot = np.array([[1, 0, 0], [0, np.cos(th), -np.sin(th)], [0, np.sin(th), np.cos(th)]], dtype=np.float32)
    m = np.linalg.inv(to_yiq) @ rot @ to_yiq
    return clip(img @ m.T.astype(np.float32))


def teal_orange(img: Array, amount: float) -> Array:
    lum = luminance(img)[..., None]
    teal = np.array([0.0, 0.5, 0.55], dtype=np.float32)
    orange = np.array([1.0, 0.6, 0.25], dtype=np.float32)
    w = np.clip((lum - 0.2) / 0.6, 0, 1)
    graded = img * (1 - 0.45 * amount) + 0.45 * amount * (teal * (1 - w) + orange * w) * (0.4 + lum)
    return clip(contrast(graded, 1 + 0.15 * amount))


def split_tone(img: Array, shadows=(0.2, 0.3, 0.6), highlights=(1.0, 0.8, 0.5), amount: float = 1.0) -> Array:
    lum = luminance(img)[..., None]
    sh = np.asarray(shadows, dtype=np.float32)
    hi = np.asarray(highlights, dtype=np.float32)
    w = lum
    toned = img + amount * 0.7 * ((sh - 0.5) * (1 - w) + (hi - 0.5) * w)
    return clip(toned)


def night(img: Array, amount: float = 1.0) -> Array:
    """Day-for-night: darker, bluer, less saturated, crushed shadows."""
    out = saturation(img, 1 - 0.6 * amount)
    out = out * np.array([0.55, 0.7, 1.0], dtype=np.float32)
    out = np.power(clip(out), 1 + 0.9 * amount) * (1 - 0.35 * amount)
    return clip(mix(img, out, 1.0))


def sunset(img: Array, amount: float = 1.0) -> Array:
    out = temperature(img, 0.9 * amount)
    out = out * np.array([1.0, 0.9, 0.8 + 0.05 * amount], dtype=np.float32) + np.array([0.08, 0.0, 0.04]) * amount
    return clip(contrast(clip(out), 1 + 0.2 * amount))


def cross_process(img: Array, amount: float = 1.0) -> Array:
    r = s_curve_1d(img[..., 0], 0.8 * amount)
    g = s_curve_1d(img[..., 1], 0.5 * amount)
    b = img[..., 2] * (1 - 0.35 * amount) + 0.18 * amount
    return clip(mix(img, np.stack([r, g, b], -1), 1.0))


def vintage(img: Array, amount: float = 1.0) -> Array:
    out = fade(img, 0.8 * amount)
    return temperature(out, 0.4 * amount)


def bleach_bypass(img: Array, amount: float = 1.0) -> Array:
    lum = gray3(luminance(img))
    overlay = np.where(lum < 0.5, 2 * img * lum, 1 - 2 * (1 - img) * (1 - lum))
    return clip(mix(img, saturation(overlay, 0.5), amount))


def channel_mix(img: Array, matrix) -> Array:
    return clip(img @ np.asarray(matrix, dtype=np.float32).T)


# --- tone --------------------------------------------------------------------------------------
def contrast_1d(x: Array, factor: float) -> Array:
    return np.clip(0.5 + (x - 0.5) * factor, 0, 1).astype(np.float32)


def contrast(img: Array, factor: float) -> Array:
    return clip(0.5 + (img - 0.5) * factor)


def gamma(img: Array, g: float) -> Array:
    return clip(np.power(np.clip(img, 0, 1), g))


def brightness(img: Array, delta: float) -> Array:
    return clip(img + delta)


def s_curve_1d(x: Array, amount: float) -> Array:
    x = np.clip(x, 0, 1)
    s = x * x * (3 - 2 * x)
    return (x + amount * (s - x)).astype(np.float32)


def s_curve(img: Array, amount: float) -> Array:
    return clip(s_curve_1d(img, amount))


def local_contrast(img: Array, amount: float, sigma: float = 4.0) -> Array:
    """Large-radius unsharp mask (clarity)."""
    return clip(img + amount * (img - gaussian_blur(img, sigma)))


def sharpen(img: Array, amount: float) -> Array:
    return clip(img + amount * (img - gaussian_blur(img, 1.0)))


def shadows_lift(img: Array, amount: float) -> Array:
    lum = luminance(img)[..., None]
    return clip(img + amount * 0.5 * (1 - lum) ** 3)


def highlights_compress(img: Array, amount: float) -> Array:
    lum = luminance(img)[..., None]
    return clip(img - amount * 0.45 * lum**3)


def tone_map(img: Array, amount: float) -> Array:
    """Reinhard-style tone mapping with boosted detail (an 'HDR look')."""
    lin = np.power(np.clip(img, 0, 1), 2.2) * (1 + 3 * amount)
    mapped = np.power(lin / (1 + lin), 1 / 2.2)
    return clip(local_contrast(clip(mapped / max(mapped.max(), 1e-3)), 0.6 * amount))


def auto_levels(img: Array, low: float = 2.0, high: float = 98.0) -> Array:
    lo = np.percentile(img, low)
    hi = np.percentile(img, high)
    return clip((img - lo) / max(hi - lo, 1e-3))


# --- effects -----------------------------------------------------------------------------------
def vignette(img: Array, amount: float) -> Array:
    h, w = img.shape[:2]
    y, x = grid(h, w)
    r2 = (x * x + y * y) / 2.0
    return clip(img * (1 - amount * r2**1.2)[..., None])


def film_grain(img: Array, amount: float, rng: np.random.Generator) -> Array:
    """Film emulation: faded, slightly warm tone plus luminance grain (the grain itself is
    random, the tone is what a model can learn)."""
    toned = temperature(fade(img, 0.6 * amount), 0.2 * amount)
    lum = luminance(toned)
    noise = gaussian_blur(rng.normal(0.0, 1.0, lum.shape).astype(np.float32), 0.6)
    grain = 0.05 * amount * noise * (0.3 + 4 * lum * (1 - lum))
    return clip(toned + grain[..., None])


def chromatic_aberration(img: Array, pixels: float) -> Array:
    """Lateral colour fringing: red shifted ``pixels`` right/down, blue the other way.

    A uniform shift (rather than a radial one about the centre of a random crop) keeps the edit
    translation-equivariant, which a small U-Net learns; the radial version was not learnt
    in 500 steps (margin +0.3 dB)."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = pixels / np.sqrt(2.0)
    out = img.copy()
    out[..., 0] = bilinear_sample(img[..., 0], yy - d, xx - d)
    out[..., 2] = bilinear_sample(img[..., 2], yy + d, xx + d)
    return clip(out)


def bloom(img: Array, amount: float) -> Array:
    lum = luminance(img)
    bright = np.clip(lum - 0.45, 0, 1)[..., None] * img / np.maximum(lum[..., None], 1e-3)
    return clip(img + amount * 2.5 * gaussian_blur(bright, 3.0))


def scanlines(img: Array, amount: float) -> Array:
    h = img.shape[0]
    rows = (np.arange(h) % 2 == 1).astype(np.float32)[:, None, None]
    return clip(img * (1 - amount * 0.5 * rows))


# --- atmosphere --------------------------------------------------------------------------------
def fog(img: Array, amount: float, color=(0.85, 0.87, 0.9)) -> Array:
    h, w = img.shape[:2]
    y, _ = grid(h, w)
    t = amount * (0.45 + 0.25 * (-y))  # denser at the top (further away)
    return clip(mix(img, np.asarray(color, dtype=np.float32) * np.ones_like(img), t[..., None]))


def ground_mist(img: Array, amount: float) -> Array:
    h, w = img.shape[:2]
    y, _ = grid(h, w)
    t = amount * np.clip(0.7 * (y + 0.3), 0, 1)
    return clip(mix(img, np.full_like(img, 0.92), t[..., None]))


def graduated_filter(img: Array, amount: float, color=(0.55, 0.6, 0.8)) -> Array:
    """Graduated ND / colour filter darkening and tinting the top of the frame."""
    h, w = img.shape[:2]
    y, _ = grid(h, w)
    t = amount * np.clip(0.6 * (-y + 0.2), 0, 1)
    return clip(img * (1 - t[..., None] * (1 - np.asarray(color, dtype=np.float32))))


def sun_glare(img: Array, amount: float, color=(1.0, 0.85, 0.55)) -> Array:
    h, w = img.shape[:2]
    y, x = grid(h, w)
    d2 = (x + 0.9) ** 2 + (y + 0.9) ** 2
    glow = amount * 0.8 * np.exp(-d2 / 1.2)
    return clip(img + glow[..., None] * np.asarray(color, dtype=np.float32))


def smog(img: Array, amount: float) -> Array:
    return fog(saturation(img, 1 - 0.3 * amount), amount * 0.8, color=(0.72, 0.62, 0.45))


# --- edits used only by novel held-out concepts ------------------------------------------------
THERMAL = ((0.0, 0.0, 0.1), (0.3, 0.0, 0.6), (0.85, 0.1, 0.35), (1.0, 0.6, 0.0), (1.0, 1.0, 0.7))


def thermal(img: Array) -> Array:
    return gradient_map(gaussian_blur(luminance(img), 0.8), THERMAL)


def solarize(img: Array, threshold: float = 0.5) -> Array:
    return clip(np.where(img > threshold, 1.0 - img, img) / max(threshold, 1.0 - threshold))


def negative(img: Array) -> Array:
    return clip(1.0 - img)


def infrared(img: Array) -> Array:
    """False-colour infrared (Aerochrome-like): green foliage turns red, blue sky darkens."""
    return channel_mix(img, [[0.1, 1.2, -0.2], [0.9, 0.1, 0.0], [0.0, 0.1, 0.85]])


def channel_swap(img: Array) -> Array:
    return clip(img[..., [2, 0, 1]])


def neon_edges(img: Array) -> Array:
    lum = gaussian_blur(luminance(img), 0.8)
    gy = np.roll(lum, -1, 0) - np.roll(lum, 1, 0)
    gx = np.roll(lum, -1, 1) - np.roll(lum, 1, 1)
    gy[0], gy[-1], gx[:, 0], gx[:, -1] = 0, 0, 0, 0
    mag = np.clip(np.hypot(gx, gy) * 4.0, 0, 1)
    hue_col = saturation(img, 2.5)
    return clip(gaussian_blur(mag, 0.7)[..., None] * (0.4 + hue_col))


def tilt_shift(img: Array, amount: float = 1.0) -> Array:
    h, w = img.shape[:2]
    y, _ = grid(h, w)
    blurred = gaussian_blur(img, 2.0 * amount)
    t = np.clip((np.abs(y) - 0.2) / 0.5, 0, 1)[..., None]
    return saturation(mix(img, blurred, t), 1 + 0.4 * amount)


def light_leak(img: Array, amount: float = 1.0) -> Array:
    h, w = img.shape[:2]
    _, x = grid(h, w)
    t = amount * np.clip(0.9 * (-x - 0.1), 0, 1) ** 1.5
    leak = np.array([1.0, 0.35, 0.1], dtype=np.float32)
    return clip(img + t[..., None] * leak * 0.9)


def color_splash(img: Array, hue_center: float = 0.0, width: float = 0.03) -> Array:
    """Keep one hue (red by default), turn everything else grey."""
    h, s, _ = _rgb_to_hsv(img)
    d = np.minimum(np.abs(h - hue_center), 1 - np.abs(h - hue_center))
    keep = np.clip(1 - (d - width) / 0.03, 0, 1) * np.clip((s - 0.2) / 0.3, 0, 1)
    return clip(mix(gray3(luminance(img)), img, keep[..., None]))
