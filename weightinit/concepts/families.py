"""The built-in catalog's training families, one function each, adding its concepts to the catalog
builder (:func:`weightinit.concepts.builtin.build_catalog` calls them in this order).

``inverse`` (renderings back to photos), ``restoration`` (degraded -> clean), ``style``,
``color_grading``, ``tone``, ``effects`` and ``atmosphere``; each may also add held-out
``strength`` concepts of its edits (``heldout=`` of ``variants``).
"""

from __future__ import annotations

from collections.abc import Callable

from weightinit.concepts import edits as E
from weightinit.concepts.concept import forward, inverse


def _veiled(degrade: Callable) -> Callable:
    """A detail-destroying degradation plus the veiling glare (lowered contrast) that soft,
    compressed or upscaled photos have in practice. Pure blur / JPEG / resampling inputs sit
    so close to the photo (identity PSNR 25-30 dB) that a model trained from scratch cannot
    beat "output = input" by the 3 dB the learnability rule asks for."""

    def veiled(im):
        return E.contrast(degrade(im), 0.65)

    return veiled


def add_inverse(b) -> None:
    """Inverse: renderings back to photos."""
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


def add_restoration(b) -> None:
    """Restoration."""
    v = b.variants
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


def add_style(b) -> None:
    """Style."""
    v = b.variants
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


def add_color_grading(b) -> None:
    """Colour grading."""
    v = b.variants
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


def add_tone(b) -> None:
    """Tone."""
    v = b.variants
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


def add_effects(b) -> None:
    """Effects."""
    v = b.variants
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


def add_atmosphere(b) -> None:
    """Atmosphere."""
    v = b.variants
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
