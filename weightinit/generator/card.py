"""The model card (``README.md``) of a generator folder: what it generates, its training data, measured quality."""

from __future__ import annotations

import json
from typing import Any

from weightinit.generator.denoisers import denoiser_name

#: The card reads a loaded generator (``weightinit.generator.model``) by its attributes only; it
#: does not import it, because the folder writer that calls the card sits below the model.
WeightGenerator = Any


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def model_card(gen: WeightGenerator) -> str:
    """The README of a generator folder: what it generates, its training data, measured quality."""
    zoo = {**(gen.zoo.to_dict() if gen.zoo is not None else {}), **gen.zoo_summary}
    training, quality = gen.training, gen.quality
    lines = [
        "---",
        "library_name: weightinit",
        "tags: [weightinit, weight-generation, diffusion, pix2pix]",
        "---",
        "",
        f"# weightinit generator for `{gen.arch}`",
        "",
        "A text- and block-index-conditioned block denoiser that generates the initial weights of an "
        "image-to-image generator for a concept described in text (Gong et al., ECCV 2024).",
        "",
        "```python",
        "from weightinit.generator import WeightGenerator",
        "",
        'gen = WeightGenerator.from_pretrained("<this folder or hub id>")',
        'weights = gen.generate("sketch to photo", seed=0)',
        "```",
        "",
        "## What it generates",
        "",
        f"- architecture `{gen.arch}` (adapter `{gen.adapter}`), representation `{gen.representation}`"
        + (
            f", LoRA rank {gen.zoo.lora_rank}, LoRA seed {gen.zoo.lora_seed}"
            if gen.zoo is not None and gen.representation == "lora"
            else ""
        ),
        f"- layout `{gen.layout.fingerprint}`: {len(gen.layout)} tensors, {gen.layout.num_params:,} values, "
        f"{gen.layout.num_blocks:,} blocks of {gen.layout.block_size}",
        f"- denoiser `{denoiser_name(gen.denoiser)}` "
        f"({sum(p.numel() for p in gen.denoiser.parameters()):,} parameters), "
        f"prediction type `{gen.scheduler_config.get('prediction_type')}`, one-step sampling by default",
        f"- text encoder `{gen.text_encoder_ref}` (max {gen.text_max_length} tokens), "
        f"`{gen.text_conditioning}` conditioning"
        + (
            ' (source and target of the phrasing embedded apart, so "X to Y" and "Y to X" differ)'
            if gen.text_conditioning == "directional"
            else ""
        ),
        (
            f"- centre: retrieval prior, a text-similarity blend (temperature {gen.prior.temperature}) of the "
            f"{gen.prior.coef.shape[0]} training concepts in {gen.prior.rank} principal components; "
            "the denoiser adds its residual"
            + (" (its samples, `sample_blocks`; the start is the weight blend below)" if gen.weight_blend else "")
            if gen.prior is not None
            else "- centre: the zoo's mean block; the denoiser adds its residual"
        ),
        (
            "- weight blend: a text's start is the blend of the training concepts' weight changes (not of "
            "their LoRA factors) as its best LoRA factors of the zoo's rank, without the denoiser's residual; "
            "a far text's zoo mean is the mean of every weight change "
            f"(measured on {gen.weight_blend.measured.get('measured_on', 'the training concepts')})"
            if gen.weight_blend is not None
            else "- weight blend: none (the blend is of LoRA factors)"
        ),
        (
            "- far concepts: a text whose best similarity to the training phrasings is below "
            f"{gen.far_policy.similarity} "
            + (
                "keeps the blend of its nearest concepts, with a `FarConceptWarning` "
                if gen.far_policy.fallback == "blend"
                else f"starts from the {gen.far_policy.fallback_name()}, with a `FarConceptWarning` "
            )
            + f"(measured on {gen.far_policy.measured.get('measured_on', 'the training concepts')})"
            if gen.far_policy
            else "- far concepts: no policy measured; every text gets the generated start"
        ),
        (
            '- composite texts ("A with B", "add A and B"): the centre is the mean of the parts\' blends '
            "when the weakest part is at least as similar to a training phrasing as the whole text minus "
            f"{gen.composition.margin:.4f} "
            "(measured on the training compositions by experiments/composed_prior.py of weightinit's source "
            "repository)"
            if gen.composition is not None
            else "- composite texts: blended as one text (no composition policy measured)"
        ),
        (
            "- strength siblings: the blend is re-blended among the strengths of the edit it leans on most "
            f"(temperature {gen.siblings.temperature}; measured on "
            f"{gen.siblings.measured.get('measured_on', 'the training concepts')})"
            if gen.siblings is not None
            else "- strength siblings: none (the blend is used as it is)"
        ),
        (
            f"- with a user's pairs: the pair start (weightinit.pair_start), learned on {len(gen.pair_start.names)} "
            f"training concepts' pairs, checks {gen.pair_start.checked} proposed points of the prior's span on the "
            "pairs"
            + (
                " (the text's being the start text alone writes)"
                if gen.pair_start.text_origin != "span" and gen.weight_blend is not None
                else ""
            )
            + f" and fits the best in {gen.pair_start.fit_steps} steps (settings chosen by "
            "experiments/pair_generator.py of weightinit's source repository)"
            if gen.pair_start is not None
            else "- with a user's pairs: the best of the generator's candidates on them (no pair start)"
        ),
        "",
        "## Training data",
        "",
    ]
    if zoo:
        for key in (
            "train_concepts",
            "heldout_concepts",
            "families",
            "arch",
            "base_steps",
            "concept_steps",
            "image_size",
            "lora_rank",
            "lora_seed",
        ):
            if key in zoo:
                lines.append(
                    f"- {key.replace('_', ' ')}: "
                    f"{_fmt(zoo[key]) if not isinstance(zoo[key], list) else ', '.join(map(str, zoo[key]))}"
                )
    else:
        lines.append("- (not recorded)")
    if training:
        lines += ["", "## Training", ""]
        for key, value in sorted(training.items()):
            if not isinstance(value, dict | list):
                lines.append(f"- {key}: {_fmt(value)}")
    lines += ["", "## Measured quality", ""]
    if quality:
        for key, value in sorted(quality.items()):
            lines.append(f"- {key}: {json.dumps(value) if isinstance(value, dict | list) else _fmt(value)}")
    else:
        lines.append("Not measured yet: `weightinit demo --generator DIR` compares its start with scratch.")
    return "\n".join(lines) + "\n"
