"""The built-in concept catalog, registered through the ``register_concepts`` hook.

Eight families: ``inverse`` (sketch / line art / B&W / sepia / halftone ... -> photo),
``restoration`` (blurred, noisy, pixelated, low-res, JPEG, under/over-exposed, hazy, faded,
colour-cast -> clean), ``style`` (photo -> sepia, pencil, ink, watercolour, oil, cartoon,
halftone, emboss, pop art, posterize, duotone), ``color_grading``, ``tone``, ``effects``,
``atmosphere`` and ``composition`` (two edits applied in turn, at two strengths).

Held-out concepts (split ``heldout``) and why:

- ``composition``: new pairs of edits that training sees only separately.
- ``strength``: a training edit at a strength no training concept uses.
- ``phrasing``: a training edit under wordings no training concept uses.
- ``novel`` — edits with no close twin in training: ``thermal-camera`` (false-colour heat
  map), ``solarize``, ``negative``, ``infrared-film`` (channel remix), ``channel-rotate``
  (RGB -> GBR... a pure channel permutation), ``neon-edges`` (glowing edges on black),
  ``tilt-shift`` (position-dependent blur, i.e. blur as an *output*), ``light-leak`` (additive
  red-orange flare from one side) and ``color-splash`` (keep reds, grey out the rest).

Reverse concepts: every concept whose opposite edit is learnable by the catalog's rule (measured
in ``weightinit/data/reverse_learnability.json``) and not already in the catalog (``grayscale``
and ``gray-to-color`` are each other's reverse) gets a ``<id>-reverse`` concept with the swapped
pairs, the same family, split and held-out kind, and phrasings built from its ``reverse`` text.

Nothing here is trained on held-out text: the training split has no phrasing of any
held-out concept (the catalog rejects duplicate phrasings).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from importlib import resources

from weightinit.concepts import edits as E
from weightinit.concepts.concept import Concept, PairBuilder, forward, inverse, normalise_text, reverse_twins
from weightinit.concepts.direction import parse_direction
from weightinit.hookspecs import hookimpl

# Strength words: (adverb, adjective, level noun).
LEVELS_2 = (("slightly ", "subtle", "light"), ("strongly ", "strong", "heavy"))
LEVELS_3 = (("slightly ", "subtle", "light"), ("", "moderate", "medium"), ("strongly ", "strong", "heavy"))
HELDOUT_LEVEL = ("fairly ", "noticeable", "fairly heavy")


def _fill(templates: Iterable[str], level: tuple[str, str, str]) -> tuple[str, ...]:
    adv, adj, lvl = level
    return tuple(" ".join(t.format(adv=adv, adj=adj, lvl=lvl).split()) for t in templates)


class _Builder:
    def __init__(self) -> None:
        self.concepts: list[Concept] = []
        self._specs: dict[str, tuple] = {}

    def add(self, cid, family, phrasings, reverse, build, *, split="train", kind=None, color=True, description=""):
        self.concepts.append(
            Concept(
                id=cid,
                phrasings=tuple(phrasings),
                family=family,
                split=split,
                reverse=reverse,
                build_pair=build,
                heldout_kind=kind,
                needs_color=color,
                description=description,
            )
        )
        return self.concepts[-1]

    def variants(
        self,
        base,
        family,
        templates,
        reverse,
        make: Callable,
        strengths,
        *,
        direction="forward",
        color=True,
        heldout=None,
    ):
        """One concept per strength; ``make(s)`` returns the edit (img[, rng]) -> img.
        ``heldout``: a strength to add as a held-out ``strength`` concept."""
        levels = (
            LEVELS_2 if len(strengths) == 2 else LEVELS_3 if len(strengths) == 3 else ((("", "", ""),) * len(strengths))
        )
        wrap = forward if direction == "forward" else inverse
        for s, level in zip(strengths, levels):
            cid = base if len(strengths) == 1 else f"{base}-{level[2].replace(' ', '-')}"
            self.add(
                cid,
                family,
                _fill(templates, level),
                _fill([reverse], level)[0],
                wrap(make(s)),
                color=color,
                description=f"strength {s}",
            )
            self._specs[cid] = (family, wrap, make, s, color)
        if heldout is not None:
            self.add(
                f"{base}-heldout-strength",
                family,
                _fill(templates, HELDOUT_LEVEL),
                _fill([reverse], HELDOUT_LEVEL)[0],
                wrap(make(heldout)),
                split="heldout",
                kind="strength",
                color=color,
                description=f"unseen strength {heldout} (training uses {', '.join(map(str, strengths))})",
            )

    def rephrase(self, cid, train_id, phrasings, reverse):
        family, wrap, make, s, color = self._specs[train_id]
        self.add(
            cid,
            family,
            phrasings,
            reverse,
            wrap(make(s)),
            split="heldout",
            kind="phrasing",
            color=color,
            description=f"the edit of {train_id!r} under unseen phrasings",
        )


# --- composable edits: name -> (edit(img, s, rng), three noun phrases) -------------------------
def _veiled(degrade: Callable) -> Callable:
    """A detail-destroying degradation plus the veiling glare (lowered contrast) that soft,
    compressed or upscaled photos have in practice. Pure blur / JPEG / resampling inputs sit
    so close to the photo (identity PSNR 25-30 dB) that a model trained from scratch cannot
    beat "output = input" by the 3 dB the learnability rule asks for."""

    def veiled(im):
        return E.contrast(degrade(im), 0.65)

    return veiled


COMPOSABLE: dict[str, tuple[Callable, tuple[str, str, str]]] = {
    "warm": (lambda im, s, r: E.temperature(im, 0.8 * s), ("warm tones", "a warm grade", "warmer colours")),
    "cool": (lambda im, s, r: E.temperature(im, -0.8 * s), ("cool tones", "a cool grade", "colder colours")),
    "vignette": (lambda im, s, r: E.vignette(im, 0.9 * s), ("a vignette", "dark corners", "vignetting")),
    "sepia": (lambda im, s, r: E.sepia(im, s), ("sepia toning", "a sepia tint", "brown old-photo toning")),
    "contrast": (lambda im, s, r: E.contrast(im, 1 + 0.8 * s), ("more contrast", "punchy contrast", "higher contrast")),
    "grain": (lambda im, s, r: E.film_grain(im, s, r), ("film grain", "a grainy film look", "analog grain")),
    "desaturate": (
        lambda im, s, r: E.saturation(im, 1 - 0.8 * s),
        ("muted colours", "desaturation", "washed-out colour"),
    ),
    "saturate": (
        lambda im, s, r: E.saturation(im, 1 + 1.0 * s),
        ("vivid colours", "boosted saturation", "richer colour"),
    ),
    "fog": (lambda im, s, r: E.fog(im, 0.8 * s), ("fog", "a misty haze", "foggy air")),
    "teal_orange": (
        lambda im, s, r: E.teal_orange(im, s),
        ("a teal and orange grade", "a blockbuster colour look", "teal shadows and orange highlights"),
    ),
    "local_contrast": (
        lambda im, s, r: E.local_contrast(im, 1.5 * s),
        ("local contrast", "clarity", "crisper mid-tones"),
    ),
    "night": (lambda im, s, r: E.night(im, s), ("a night look", "day-for-night grading", "a moonlit mood")),
    "cartoon": (lambda im, s, r: E.mix(im, E.cartoon(im), s), ("a cartoon style", "a toon look", "comic shading")),
    "chroma": (
        lambda im, s, r: E.chromatic_aberration(im, 3.0 * s),
        ("chromatic aberration", "colour fringing", "lens fringes"),
    ),
    "bloom": (lambda im, s, r: E.bloom(im, s), ("a soft bloom", "glowing highlights", "a dreamy glow")),
    "pop": (
        lambda im, s, r: E.mix(im, E.pop_art(im, "warhol"), s),
        ("a pop-art palette", "Warhol colours", "screen-print colours"),
    ),
    "hue60": (lambda im, s, r: E.hue_shift(im, 60 * s), ("a hue shift", "rotated hues", "shifted colours")),
    "pencil": (
        lambda im, s, r: E.mix(im, E.pencil_sketch(im), s),
        ("a pencil-sketch look", "graphite shading", "sketchy lines"),
    ),
    "sharpen": (lambda im, s, r: E.sharpen(im, 1.5 * s), ("sharpening", "crisper detail", "an unsharp mask")),
}


def _compose(a: str, b: str, s: float):
    fa, fb = COMPOSABLE[a][0], COMPOSABLE[b][0]

    def edit(img, rng):
        return fb(fa(img, s, rng), s, rng)

    edit.__name__ = f"{a}_then_{b}"
    return forward(edit)


def _composition(bld: _Builder, a: str, b: str, strengths, *, split="train"):
    na, nb = COMPOSABLE[a][1], COMPOSABLE[b][1]
    levels = LEVELS_2 if len(strengths) == 2 else (("", "", "full"),)
    for s, (_adv, adj, lvl) in zip(strengths, levels):
        prefix = f"{adj} " if len(strengths) == 2 else ""
        phrasings = (
            f"{prefix}{na[0]} with {nb[0]}",
            f"add {prefix}{na[1]} and {nb[1]}",
            f"{nb[2]} plus {prefix}{na[2]}",
        )
        cid = f"{a}+{b}".replace("_", "-") + (f"-{lvl}" if len(strengths) == 2 else "")
        bld.add(
            cid,
            "composition",
            phrasings,
            f"remove {prefix}{na[0]} and {nb[0]}",
            _compose(a, b, s),
            split=split,
            kind="composition" if split == "heldout" else None,
            description=f"{a} then {b} at strength {s}",
        )


TRAIN_COMPOSITIONS = [
    ("warm", "vignette"),
    ("sepia", "grain"),
    ("cool", "contrast"),
    ("desaturate", "vignette"),
    ("teal_orange", "local_contrast"),
    ("fog", "warm"),
    ("cartoon", "saturate"),
    ("night", "bloom"),
    ("sepia", "contrast"),
    ("saturate", "sharpen"),
    ("cool", "fog"),
    ("pencil", "sepia"),
]
HELDOUT_COMPOSITIONS = [
    ("sepia", "chroma"),
    ("pop", "vignette"),
    ("saturate", "bloom"),
    ("teal_orange", "vignette"),
    ("night", "vignette"),
    ("contrast", "hue60"),
    ("warm", "local_contrast"),
    ("desaturate", "grain"),
]


def build_catalog() -> list[Concept]:
    b = _Builder()
    v = b.variants

    # --- inverse: renderings back to photos ---------------------------------------------------
    inv = "inverse"
    b.add(
        "sketch-to-photo",
        inv,
        ("sketch to photo", "turn pencil sketches into photographs", "render a shaded drawing as a real photo"),
        "photo to sketch",
        inverse(lambda im: E.pencil_sketch(im, 2.0, 0.5)),
        description="shaded pencil sketch (colour dodge x tone) -> photo",
    )
    b.add(
        "lineart-to-photo",
        inv,
        ("line art to photo", "turn ink line drawings into photographs", "make a photo from an inked drawing"),
        "photo to line art",
        inverse(lambda im: E.xdog(im)),
        description="XDoG ink rendering with tone -> photo",
    )
    b.add(
        "color-pencil-to-photo",
        inv,
        (
            "colour pencil drawing to photo",
            "turn coloured pencil art into a photograph",
            "photorealistic version of a crayon sketch",
        ),
        "photo to colour pencil drawing",
        inverse(lambda im: E.color_pencil(im)),
    )
    b.add(
        "bw-to-color",
        inv,
        ("black and white to colour", "colourize a black-and-white photo", "add colour to a monochrome picture"),
        "colour to black and white",
        inverse(E.bw_film),
    )
    b.add(
        "gray-to-color",
        inv,
        ("grayscale to colour", "colorize grayscale images", "restore colour to a greyscale photo"),
        "colour to grayscale",
        inverse(E.grayscale),
    )
    b.add(
        "sepia-to-color",
        inv,
        ("sepia to colour", "recolour an old sepia photograph", "turn a brown-toned print into full colour"),
        "colour to sepia",
        inverse(E.sepia),
    )
    b.add(
        "halftone-to-photo",
        inv,
        ("halftone to photo", "remove the dot screen from a printed picture", "descreen a halftone print"),
        "photo to halftone",
        inverse(lambda im: E.halftone(im, 4, color=True)),
    )
    b.add(
        "posterized-to-photo",
        inv,
        ("posterized to photo", "smooth out a posterized image", "restore gradients to a banded picture"),
        "photo to posterized",
        inverse(lambda im: E.posterize_soft(im, 4, 0.05)),
    )
    b.add(
        "cartoon-to-photo",
        inv,
        ("cartoon to photo", "make a cartoon frame look real", "turn toon shading into a photograph"),
        "photo to cartoon",
        inverse(lambda im: E.cartoon(im)),
    )
    b.add(
        "watercolor-to-photo",
        inv,
        ("watercolour to photo", "turn a watercolour painting into a photo", "photorealistic version of a watercolour"),
        "photo to watercolour",
        inverse(lambda im: E.watercolor(im)),
    )
    b.add(
        "duotone-to-photo",
        inv,
        (
            "duotone to photo",
            "recover full colour from a two-tone print",
            "turn a duotone poster back into a photograph",
        ),
        "photo to duotone",
        inverse(lambda im: E.duotone(im)),
    )

    # --- restoration ------------------------------------------------------------------------
    res = "restoration"
    v(
        "deblur",
        res,
        ("{adv}blurred to sharp", "deblur a {adv}blurred, washed-out photo", "remove {lvl} blur and haze"),
        "sharp to {adv}blurred",
        lambda s: _veiled(lambda im: E.gaussian_blur(im, s)),
        (1.0, 1.5, 2.5),
        direction="inverse",
        color=False,
        heldout=2.0,
    )
    v(
        "denoise",
        res,
        ("{adv}noisy to clean", "denoise a photo with {adj} noise", "remove {lvl} sensor noise"),
        "clean to {adv}noisy",
        lambda s: lambda im, r: E.add_noise(im, s, r),
        (0.1, 0.15, 0.25),
        direction="inverse",
        color=False,
        heldout=0.2,
    )
    v(
        "depixelate",
        res,
        ("{adv}pixelated to sharp", "undo {adj} pixelation", "recover detail from {lvl} pixel blocks"),
        "sharp to {adv}pixelated",
        lambda s: _veiled(lambda im: E.pixelate(im, s)),
        (2, 3, 4),
        direction="inverse",
        color=False,
    )
    v(
        "super-resolution",
        res,
        ("{adv}low resolution to high resolution", "upscale a {adv}low-res image", "{lvl} super-resolution"),
        "high resolution to {adv}low resolution",
        lambda s: _veiled(lambda im: E.lowres(im, s)),
        (2, 3, 4),
        direction="inverse",
        color=False,
    )
    v(
        "dejpeg",
        res,
        ("{adv}jpeg compressed to clean", "remove {adj} JPEG artefacts", "fix {lvl} compression blocking"),
        "clean to {adv}jpeg compressed",
        lambda q: _veiled(lambda im: E.jpeg(im, q)),
        (30, 15, 8),
        direction="inverse",
    )
    v(
        "fix-underexposure",
        res,
        ("{adv}underexposed to well exposed", "brighten a {adv}underexposed shot", "correct {lvl} underexposure"),
        "well exposed to {adv}underexposed",
        lambda ev: lambda im: E.exposure(im, ev),
        (-1.0, -2.0, -3.0),
        direction="inverse",
        color=False,
    )
    v(
        "fix-overexposure",
        res,
        ("{adv}overexposed to well exposed", "recover a {adv}overexposed shot", "correct {lvl} overexposure"),
        "well exposed to {adv}overexposed",
        lambda ev: lambda im: E.exposure(im, ev),
        (0.7, 1.2),
        direction="inverse",
        color=False,
    )
    v(
        "dehaze",
        res,
        ("{adv}hazy to clear", "remove {adj} haze", "clear up {lvl} fog"),
        "clear to {adv}hazy",
        lambda s: lambda im: E.fog(im, s),
        (0.4, 0.6, 0.8),
        direction="inverse",
    )
    v(
        "unfade",
        res,
        ("{adv}faded to vivid", "restore a {adv}faded print", "undo {lvl} fading"),
        "vivid to {adv}faded",
        lambda s: lambda im: E.fade(im, s),
        (0.5, 1.0),
        direction="inverse",
    )
    for name, rgb, words in (
        ("warm", (1.3, 1.05, 0.7), "orange"),
        ("cool", (0.75, 0.95, 1.3), "blue"),
        ("green", (0.85, 1.25, 0.85), "green"),
    ):
        b.add(
            f"remove-{name}-cast",
            res,
            (f"{words} cast to neutral", f"remove the {words} colour cast", f"white-balance a {words}-tinted photo"),
            f"neutral to {words} cast",
            inverse(lambda im, rgb=rgb: E.color_cast(im, rgb, 1.0)),
        )

    # --- style ------------------------------------------------------------------------------
    sty = "style"
    v(
        "sepia",
        sty,
        ("photo to {adj} sepia", "give the photo a {lvl} sepia tone", "make it {adv}sepia"),
        "{adj} sepia to photo",
        lambda s: lambda im: E.sepia(im, s),
        (0.7, 0.85, 1.0),
        color=False,
        heldout=0.6,
    )
    b.add(
        "bw-film",
        sty,
        ("photo to black and white film", "make a black-and-white film print", "monochrome film look"),
        "black and white film to photo",
        forward(E.bw_film),
        color=False,
    )
    b.add(
        "grayscale",
        sty,
        ("photo to grayscale", "convert to greyscale", "remove all colour"),
        "grayscale to photo",
        forward(E.grayscale),
        color=False,
    )
    v(
        "pencil",
        sty,
        ("photo to {adj} pencil sketch", "draw it as a {lvl} pencil sketch", "{adv}sketchy graphite drawing"),
        "{adj} pencil sketch to photo",
        lambda s: lambda im: E.pencil_sketch(im, s, 0.5),
        (1.0, 2.0, 3.0),
        color=False,
    )
    b.add(
        "color-pencil",
        sty,
        ("photo to colour pencil drawing", "draw it with coloured pencils", "crayon sketch style"),
        "colour pencil drawing to photo",
        forward(E.color_pencil),
    )
    v(
        "ink",
        sty,
        ("photo to {adj} ink drawing", "render as {lvl} ink line art", "{adv}inked comic line work"),
        "{adj} ink drawing to photo",
        lambda s: lambda im: E.xdog(im, s),
        (0.8, 1.4),
        color=False,
    )
    v(
        "watercolor",
        sty,
        ("photo to {adj} watercolour", "paint it as a {lvl} watercolour", "{adv}watercolour painting style"),
        "{adj} watercolour to photo",
        lambda s: lambda im: E.watercolor(im, s),
        (0.8, 1.2),
    )
    v(
        "oil",
        sty,
        ("photo to {adj} oil painting", "paint it in {lvl} oils", "{adv}oil-painted look"),
        "{adj} oil painting to photo",
        lambda s: lambda im: E.oil_paint(im, s),
        (3, 4),
    )
    v(
        "cartoon",
        sty,
        ("photo to {adj} cartoon", "make it a {lvl} cartoon", "{adv}cartoonish rendering"),
        "{adj} cartoon to photo",
        lambda s: lambda im: E.cartoon(im, s),
        (7, 5, 3),
    )
    b.add(
        "halftone",
        sty,
        ("photo to halftone", "print it as a halftone dot screen", "newspaper dot print"),
        "halftone to photo",
        forward(lambda im: E.halftone(im, 4)),
        color=False,
    )
    b.add(
        "color-halftone",
        sty,
        ("photo to colour halftone", "colour dot-screen print", "comic-book colour dots"),
        "colour halftone to photo",
        forward(lambda im: E.halftone(im, 4, color=True)),
    )
    b.add(
        "emboss",
        sty,
        ("photo to emboss", "emboss the image", "grey relief carving"),
        "emboss to photo",
        forward(lambda im: E.emboss(im, 1.0)),
        color=False,
    )
    b.add(
        "color-emboss",
        sty,
        ("photo to colour emboss", "add an embossed relief to the colours", "raised relief with colour"),
        "colour emboss to photo",
        forward(lambda im: E.emboss(im, 1.0, color=True)),
    )
    for pal, words in (("warhol", "Warhol"), ("lichtenstein", "Lichtenstein"), ("neon", "neon"), ("retro", "retro")):
        b.add(
            f"pop-art-{pal}",
            sty,
            (f"photo to {words} pop art", f"{words}-style pop-art palette", f"make a {words} pop-art print"),
            f"{words} pop art to photo",
            forward(lambda im, pal=pal: E.pop_art(im, pal)),
            color=False,
        )
    v(
        "posterize",
        sty,
        ("photo to {adj} posterize", "posterize with {lvl} banding", "{adv}reduce the number of colours"),
        "{adj} posterize to photo",
        lambda n: lambda im: E.posterize_soft(im, n),
        (4, 3, 2),
    )
    b.add(
        "duotone-blue",
        sty,
        ("photo to blue duotone", "two-tone navy and cream print", "duotone poster in blue"),
        "blue duotone to photo",
        forward(lambda im: E.duotone(im)),
        color=False,
    )
    b.add(
        "duotone-red",
        sty,
        ("photo to red duotone", "two-tone crimson and pink print", "duotone poster in red"),
        "red duotone to photo",
        forward(lambda im: E.duotone(im, (0.3, 0.02, 0.08), (1.0, 0.75, 0.75))),
        color=False,
    )

    # --- colour grading ---------------------------------------------------------------------
    col = "color_grading"
    v(
        "warm",
        col,
        ("make the photo {adv}warmer", "{adj} warm colour grade", "add {lvl} warm tones"),
        "make the photo {adv}cooler again",
        lambda s: lambda im: E.temperature(im, s),
        (0.6, 0.9, 1.2),
        heldout=1.05,
    )
    v(
        "cool",
        col,
        ("make the photo {adv}cooler", "{adj} cool colour grade", "add {lvl} cold blue tones"),
        "make the photo {adv}warmer again",
        lambda s: lambda im: E.temperature(im, -s),
        (0.6, 0.9, 1.2),
    )
    v(
        "teal-orange",
        col,
        ("{adj} teal and orange grade", "{adv}cinematic teal-orange look", "{lvl} blockbuster colour grading"),
        "remove the {adj} teal and orange grade",
        lambda s: lambda im: E.teal_orange(im, s),
        (1.0, 1.3, 1.6),
    )
    v(
        "night",
        col,
        ("day to {adj} night", "make it look {adv}like night", "{lvl} day-for-night grade"),
        "{adj} night to day",
        lambda s: lambda im: E.night(im, s),
        (0.6, 1.0),
    )
    v(
        "sunset",
        col,
        ("day to {adj} sunset", "give it a {lvl} sunset glow", "make the light {adv}like golden hour"),
        "{adj} sunset to daylight",
        lambda s: lambda im: E.sunset(im, s),
        (0.5, 1.0),
    )
    v(
        "desaturate",
        col,
        ("{adv}desaturate the photo", "{adj} muted colours", "{lvl} desaturation"),
        "{adv}resaturate the photo",
        lambda f: lambda im: E.saturation(im, f),
        (0.5, 0.25, 0.0),
    )
    v(
        "saturate",
        col,
        ("{adv}saturate the photo", "{adj} vivid colours", "{lvl} saturation boost"),
        "{adv}tone down the saturation",
        lambda f: lambda im: E.saturation(im, f),
        (1.6, 2.0, 2.6),
    )
    for deg in (30, 60, 90, 120, -30, -60):
        sign = "forward" if deg > 0 else "backward"
        b.add(
            f"hue{deg:+d}",
            col,
            (
                f"shift hue {sign} by {abs(deg)} degrees",
                f"rotate colours {abs(deg)} degrees {sign}",
                f"hue rotation of {deg:+d} degrees",
            ),
            f"shift hue by {-deg:+d} degrees",
            forward(lambda im, deg=deg: E.hue_shift(im, deg)),
        )
    b.add(
        "hue+45-heldout-strength",
        col,
        ("shift hue forward by 45 degrees", "rotate colours 45 degrees forward", "hue rotation of +45 degrees"),
        "shift hue by -45 degrees",
        forward(lambda im: E.hue_shift(im, 45)),
        split="heldout",
        kind="strength",
    )
    v(
        "vintage",
        col,
        ("{adj} vintage look", "make it look {adv}retro and faded", "{lvl} seventies film colours"),
        "remove the {adj} vintage look",
        lambda s: lambda im: E.vintage(im, s),
        (0.8, 1.2),
    )
    v(
        "cross-process",
        col,
        ("{adj} cross-processed look", "{adv}cross-process the film", "{lvl} cross processing"),
        "undo {adj} cross processing",
        lambda s: lambda im: E.cross_process(im, s),
        (1.0, 1.5),
    )
    v(
        "split-tone",
        col,
        ("{adj} split toning", "{adv}blue shadows and gold highlights", "{lvl} split-tone grade"),
        "remove the {adj} split toning",
        lambda s: lambda im: E.split_tone(im, amount=s),
        (1.4, 2.0),
    )
    v(
        "bleach-bypass",
        col,
        ("{adj} bleach bypass", "{adv}silvery bleach-bypass look", "{lvl} skip-bleach process"),
        "remove the {adj} bleach bypass",
        lambda s: lambda im: E.bleach_bypass(im, s),
        (0.8, 1.2),
    )
    b.add(
        "tint-green",
        col,
        ("green tint", "push the colours towards green", "add a green colour tint"),
        "remove the green tint",
        forward(lambda im: E.tint(im, -1.0)),
    )
    b.add(
        "tint-magenta",
        col,
        ("magenta tint", "push the colours towards magenta", "add a magenta colour tint"),
        "remove the magenta tint",
        forward(lambda im: E.tint(im, 1.0)),
    )

    # --- tone -------------------------------------------------------------------------------
    ton = "tone"
    v(
        "contrast-up",
        ton,
        ("{adv}increase contrast", "{adj} contrast boost", "add {lvl} contrast"),
        "{adv}reduce contrast",
        lambda f: lambda im: E.contrast(im, f),
        (1.7, 2.0, 2.4),
        color=False,
        heldout=2.2,
    )
    v(
        "contrast-down",
        ton,
        ("{adv}decrease contrast", "{adj} flat low-contrast look", "remove {lvl} contrast"),
        "{adv}restore contrast",
        lambda f: lambda im: E.contrast(im, f),
        (0.6, 0.45, 0.3),
        color=False,
    )
    v(
        "gamma-brighten",
        ton,
        ("{adv}brighten the mid-tones", "{adj} gamma lift", "{lvl} mid-tone brightening"),
        "{adv}darken the mid-tones back",
        lambda g: lambda im: E.gamma(im, g),
        (0.65, 0.5, 0.38),
        color=False,
        heldout=0.57,
    )
    v(
        "gamma-darken",
        ton,
        ("{adv}darken the mid-tones", "{adj} gamma drop", "{lvl} mid-tone darkening"),
        "{adv}brighten the mid-tones back",
        lambda g: lambda im: E.gamma(im, g),
        (1.3, 1.7, 2.2),
        color=False,
    )
    v(
        "local-contrast",
        ton,
        ("{adv}increase local contrast", "{adj} clarity boost", "{lvl} local contrast enhancement"),
        "{adv}soften local contrast",
        lambda a: lambda im: E.local_contrast(im, a),
        (1.0, 1.8, 3.0),
        color=False,
    )
    v(
        "brighten",
        ton,
        ("{adv}brighter photo", "{adj} brightness increase", "raise brightness by a {lvl} amount"),
        "{adv}darker photo",
        lambda d: lambda im: E.brightness(im, d),
        (0.08, 0.16),
        color=False,
    )
    v(
        "darken",
        ton,
        ("{adv}darker image", "{adj} brightness decrease", "lower brightness by a {lvl} amount"),
        "{adv}brighter image",
        lambda d: lambda im: E.brightness(im, -d),
        (0.08, 0.16),
        color=False,
    )
    v(
        "s-curve",
        ton,
        ("{adj} s-curve", "{adv}apply a tone curve", "{lvl} filmic s-curve"),
        "remove the {adj} s-curve",
        lambda a: lambda im: E.s_curve(im, a),
        (1.5, 2.5),
        color=False,
    )
    v(
        "hdr",
        ton,
        ("{adj} hdr look", "{adv}tone-mapped high dynamic range", "{lvl} hdr tone mapping"),
        "remove the {adj} hdr look",
        lambda a: lambda im: E.tone_map(im, a),
        (0.5, 1.0),
        color=False,
    )
    v(
        "lift-shadows",
        ton,
        ("{adv}lift the shadows", "{adj} shadow recovery", "{lvl} shadow lift"),
        "{adv}deepen the shadows",
        lambda a: lambda im: E.shadows_lift(im, a),
        (0.5, 1.0),
        color=False,
    )
    v(
        "recover-highlights",
        ton,
        ("{adv}recover the highlights", "{adj} highlight compression", "{lvl} highlight recovery"),
        "{adv}brighten the highlights",
        lambda a: lambda im: E.highlights_compress(im, a),
        (1.0, 1.6),
        color=False,
    )
    b.add(
        "auto-levels",
        ton,
        ("auto levels", "stretch the histogram", "auto tone correction"),
        "undo auto levels",
        forward(lambda im: E.auto_levels(im, 8.0, 92.0)),
        color=False,
    )

    # --- effects ------------------------------------------------------------------------------
    eff = "effects"
    v(
        "vignette",
        eff,
        ("add a {adj} vignette", "{adv}darken the corners", "{lvl} vignetting"),
        "remove the {adj} vignette",
        lambda a: lambda im: E.vignette(im, a),
        (0.5, 0.8, 1.1),
        color=False,
        heldout=0.65,
    )
    v(
        "film-grain",
        eff,
        ("add {adj} film grain", "{adv}grainy analog film look", "{lvl} film emulation with grain"),
        "remove the {adj} film grain",
        lambda a: lambda im, r: E.film_grain(im, a, r),
        (0.8, 1.0, 1.3),
        color=False,
    )
    v(
        "chromatic-aberration",
        eff,
        ("add {adj} chromatic aberration", "{adv}fringed colour edges", "{lvl} lateral colour fringing"),
        "remove the {adj} chromatic aberration",
        lambda p: lambda im: E.chromatic_aberration(im, p),
        (2.0, 3.0, 4.0),
    )
    v(
        "bloom",
        eff,
        ("add {adj} bloom", "{adv}glowing highlights", "{lvl} soft glow"),
        "remove the {adj} bloom",
        lambda a: lambda im: E.bloom(im, a),
        (0.5, 1.0),
        color=False,
    )
    v(
        "sharpen",
        eff,
        ("{adv}sharpen the photo", "{adj} unsharp mask", "{lvl} sharpening"),
        "{adv}soften the photo",
        lambda a: lambda im: E.sharpen(im, a),
        (2.5, 3.5, 5.0),
        color=False,
    )
    v(
        "scanlines",
        eff,
        ("add {adj} scanlines", "{adv}old CRT screen lines", "{lvl} interlaced scanline effect"),
        "remove the {adj} scanlines",
        lambda a: lambda im: E.scanlines(im, a),
        (0.5, 1.0),
        color=False,
    )

    # --- atmosphere ---------------------------------------------------------------------------
    atm = "atmosphere"
    v(
        "fog",
        atm,
        ("add {adj} fog", "make it {adv}foggy", "{lvl} atmospheric haze"),
        "remove the {adj} fog",
        lambda a: lambda im: E.fog(im, a),
        (0.4, 0.6, 0.8),
        heldout=0.5,
    )
    v(
        "ground-mist",
        atm,
        ("add {adj} ground mist", "{adv}misty ground", "{lvl} low-lying mist"),
        "remove the {adj} ground mist",
        lambda a: lambda im: E.ground_mist(im, a),
        (0.5, 1.0),
    )
    v(
        "graduated-filter",
        atm,
        ("add a {adj} graduated filter", "{adv}darken and tint the sky", "{lvl} graduated neutral-density look"),
        "remove the {adj} graduated filter",
        lambda a: lambda im: E.graduated_filter(im, a),
        (1.2, 1.6, 2.0),
    )
    v(
        "sun-glare",
        atm,
        ("add {adj} sun glare", "{adv}sunlit corner glow", "{lvl} sunlight flare"),
        "remove the {adj} sun glare",
        lambda a: lambda im: E.sun_glare(im, a),
        (0.5, 1.0),
    )
    v(
        "smog",
        atm,
        ("add {adj} smog", "{adv}polluted brown haze", "{lvl} smoggy air"),
        "remove the {adj} smog",
        lambda a: lambda im: E.smog(im, a),
        (0.7, 1.0),
    )

    # --- compositions -------------------------------------------------------------------------
    for a, c in TRAIN_COMPOSITIONS:
        _composition(b, a, c, (0.5, 1.0))
    for a, c in HELDOUT_COMPOSITIONS:
        _composition(b, a, c, (1.0,), split="heldout")

    # --- held out: unseen phrasings of training edits ------------------------------------------
    b.rephrase(
        "old-photograph",
        "sepia-heavy",
        ("make it look like an old photograph", "antique brown print", "age this picture like a 1900s print"),
        "make an antique print look modern",
    )
    b.rephrase(
        "summer-evening",
        "warm-medium",
        ("give it a summer evening feeling", "sunny afternoon warmth", "bathe the scene in warm light"),
        "take the warm light away",
    )
    b.rephrase(
        "comic-book",
        "cartoon-medium",
        ("turn this into a comic book panel", "graphic novel illustration", "animated-movie frame style"),
        "turn a comic panel into a photo",
    )
    b.rephrase(
        "clean-grainy",
        "denoise-medium",
        ("clean up this grainy picture", "smooth away speckles", "make a speckled shot clean"),
        "add speckles to a clean picture",
    )
    b.rephrase(
        "make-it-pop",
        "saturate-medium",
        ("make the colours pop", "juicy punchy colours", "more colourful please"),
        "make the colours duller",
    )
    b.rephrase(
        "charcoal-drawing",
        "pencil-heavy",
        ("charcoal drawing of the scene", "smudgy charcoal artwork", "draw it in charcoal"),
        "charcoal drawing to photo",
    )

    # --- held out: novel edits (no close twin in training) --------------------------------------
    nov = dict(split="heldout", kind="novel")
    b.add(
        "thermal-camera",
        "style",
        ("thermal camera view", "false-colour heat map", "infrared thermography look"),
        "thermal view to photo",
        forward(E.thermal),
        color=False,
        description="novel: luminance through a heat palette",
        **nov,
    )
    b.add(
        "solarize",
        "tone",
        ("solarize the photo", "Sabattier darkroom effect", "invert the bright tones only"),
        "undo the solarization",
        forward(E.solarize),
        color=False,
        description="novel: non-monotonic tone curve",
        **nov,
    )
    b.add(
        "negative",
        "tone",
        ("photo to negative", "invert all colours", "film negative look"),
        "negative to photo",
        forward(E.negative),
        color=False,
        description="novel: full inversion",
        **nov,
    )
    b.add(
        "infrared-film",
        "color_grading",
        ("infrared film look", "Aerochrome false colour", "red foliage infrared photo"),
        "infrared film to normal colour",
        forward(E.infrared),
        description="novel: channel remix (green -> red)",
        **nov,
    )
    b.add(
        "channel-rotate",
        "color_grading",
        ("rotate the colour channels", "swap red, green and blue", "channel permutation glitch"),
        "rotate the colour channels back",
        forward(E.channel_swap),
        description="novel: RGB permutation",
        **nov,
    )
    b.add(
        "neon-edges",
        "style",
        ("glowing neon edges", "neon outline on black", "electric glowing contours"),
        "neon edges to photo",
        forward(E.neon_edges),
        description="novel: coloured edge magnitude on black",
        **nov,
    )
    b.add(
        "tilt-shift",
        "effects",
        ("tilt-shift miniature", "make it look like a toy model", "fake miniature with blurred top and bottom"),
        "remove the miniature effect",
        forward(E.tilt_shift),
        description="novel: position-dependent blur as output",
        **nov,
    )
    b.add(
        "light-leak",
        "effects",
        ("add a light leak", "red-orange film light leak", "leaky camera flare from the side"),
        "remove the light leak",
        forward(E.light_leak),
        description="novel: additive red-orange flare from the left",
        **nov,
    )
    b.add(
        "color-splash",
        "color_grading",
        ("colour splash on reds", "keep only the red colours", "selective colour: red on grey"),
        "restore colour everywhere",
        forward(E.color_splash),
        description="novel: hue-selective desaturation",
        **nov,
    )
    return b.concepts


# --- reverse concepts ---------------------------------------------------------------------------
#: Which reverses are learnable, measured by the catalog's rule (``python -m
#: weightinit.concepts.learnability --reverses --out FILE``); only those become concepts.
REVERSE_MEASUREMENTS = "reverse_learnability.json"
REVERSE_SUFFIX = "-reverse"


def swapped(build_pair: PairBuilder) -> PairBuilder:
    """The pair builder of the opposite edit: ``(target, input)``."""

    def build_reverse(photo, rng):
        a, b = build_pair(photo, rng)
        return b, a

    build_reverse.__name__ = f"reverse_{getattr(build_pair, '__name__', 'pair')}"
    return build_reverse


def reverse_phrasings(concept: Concept) -> tuple[str, ...]:
    """The reverse's wordings: the concept's own ``reverse`` text, then two more built from it."""
    d = parse_direction(concept.reverse)
    if d.form == "arrow":
        more = (f"turn {d.source} into {d.target}", f"convert {d.source} to {d.target}")
    elif d.form == "removal":
        more = (f"undo the {d.source}", f"take away the {d.source}")
    else:
        more = tuple(f"undo {p[0].lower() + p[1:]}" for p in concept.phrasings[1:3])
    return tuple(dict.fromkeys((concept.reverse, *more)))


def reverse_concept(concept: Concept) -> Concept:
    """The opposite edit of ``concept`` as a concept of its own (same family, split and kind)."""
    return Concept(
        id=concept.id + REVERSE_SUFFIX,
        phrasings=reverse_phrasings(concept),
        family=concept.family,
        split=concept.split,
        reverse=concept.text,
        build_pair=swapped(concept.build_pair),
        heldout_kind=concept.heldout_kind,
        needs_color=concept.needs_color,
        description=f"the reverse of {concept.id!r}",
        reverse_of=concept.id,
    )


def reverse_measurements() -> dict[str, dict]:
    """The committed learnability measurements of each concept's reverse, by concept id."""
    path = resources.files("weightinit") / "data" / REVERSE_MEASUREMENTS
    if not path.is_file():
        return {}
    return {row["forward"]: row for row in json.loads(path.read_text())["reverses"]}


def catalog_with_reverses() -> list[Concept]:
    """The built-in concepts, then the reverse of each whose reverse is learnable and has no
    twin among them (a reverse that is not learnable is no concept: CycleGAN's ``netG_B`` then
    gets the generator's start for the reverse text, which the directional text conditioning
    keeps apart from the forward concept's)."""
    concepts = build_catalog()
    twins = reverse_twins(concepts)
    measured = reverse_measurements()
    taken = {normalise_text(p) for c in concepts for p in c.phrasings}
    out = list(concepts)
    for c in concepts:
        if c.id in twins or not measured.get(c.id, {}).get("passed", False):
            continue
        rev = reverse_concept(c)
        free = tuple(p for p in rev.phrasings if normalise_text(p) not in taken)
        if not free:
            continue
        taken.update(normalise_text(p) for p in free)
        out.append(dataclasses.replace(rev, phrasings=free))
    return out


@hookimpl
def register_concepts(register):
    for concept in catalog_with_reverses():
        register(concept)
