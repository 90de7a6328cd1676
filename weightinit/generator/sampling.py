"""Sampling every block of a layout: one step by default, DDIM with k steps as an option.

One step = the clean sample predicted from pure noise at the last training timestep (natural
with the default ``prediction_type="sample"``). ``steps=k > 1`` runs diffusers'
``DDIMScheduler`` (built from the training scheduler's config, trailing timestep spacing, eta 0).
Classifier-free guidance: ``guidance=s`` mixes ``uncond + s * (cond - uncond)``, where the
unconditional model sees an all-zero text mask.

Blocks are processed in chunks of ``chunk_size``, so memory stays bounded for big layouts (the
output itself is the only full-size tensor). The result for a seed is bitwise the same whatever
the chunk size, and in every process (every DDP rank initialises alike): the starting noise is
drawn in fixed pages of :data:`NOISE_PAGE` blocks, each from its own ``torch.Generator`` seeded
from the seed and the page number; and the denoiser always runs on the same fixed batches of
:data:`FORWARD_BATCH` blocks (the last one zero-padded), because a matrix product's rounding
depends on the batch shape (a chunk of 1 block would otherwise differ in the last bits from a
chunk of 4096). Chunks are whole numbers of forward batches.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from weightinit.codec import BlockCodec, SlotNormalizer
from weightinit.errors import WeightinitError
from weightinit.generator.text import TextEmbedding
from weightinit.layout import BlockLayout

NOISE_PAGE = 1024
FORWARD_BATCH = 512
DEFAULT_CHUNK_SIZE = 4096
PREDICTION_TYPES = ("sample", "epsilon", "v_prediction")


def make_scheduler(
    num_train_timesteps: int = 1000, prediction_type: str = "sample", beta_schedule: str = "squaredcos_cap_v2"
):
    """The training noise schedule: diffusers' ``DDPMScheduler`` (no sample clipping: weights are unbounded)."""
    from diffusers import DDPMScheduler

    if prediction_type not in PREDICTION_TYPES:
        raise WeightinitError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}")
    return DDPMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_schedule=beta_schedule,
        prediction_type=prediction_type,
        clip_sample=False,
    )


def scheduler_from_config(scheduler_class, config, **overrides):
    """``scheduler_class.from_config(config, **overrides)`` without its look-up of compatible classes,
    which imports every diffusers scheduler (about a second of each ``weightinit sample``). Keys the
    class does not take are dropped, as ``from_config`` drops them."""
    import inspect

    accepted = inspect.signature(scheduler_class.__init__).parameters
    return scheduler_class(**{k: v for k, v in {**config, **overrides}.items() if k in accepted})


def predict_x0(scheduler, model_output: torch.Tensor, sample: torch.Tensor, timestep: int) -> torch.Tensor:
    """The clean sample implied by the model output at ``timestep`` for the scheduler's prediction type."""
    kind = scheduler.config.prediction_type
    if kind == "sample":
        return model_output
    a = scheduler.alphas_cumprod[timestep].to(model_output.device, torch.float32)
    if kind == "epsilon":
        return (sample - (1 - a).sqrt() * model_output) / a.sqrt()
    if kind == "v_prediction":
        return a.sqrt() * sample - (1 - a).sqrt() * model_output
    raise WeightinitError(f"unknown prediction type {kind!r}")


def base_seed(generator: torch.Generator | None = None, seed: int | None = None) -> int:
    """One integer from a seed or a generator (one draw from it); 0 when neither is given."""
    if generator is not None and seed is not None:
        raise WeightinitError("pass a seed or a generator, not both")
    if generator is not None:
        return int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    return int(seed or 0)


def _page_seed(seed: int, page: int) -> int:
    return (seed * 6364136223846793005 + (page + 1) * 1442695040888963407) % (2**63 - 1)


def block_noise(seed: int, start: int, stop: int, block_size: int) -> torch.Tensor:
    """Standard normal noise for blocks ``[start, stop)`` (float32, CPU), independent of chunking."""
    out = torch.empty(stop - start, block_size)
    first, last = start // NOISE_PAGE, (stop - 1) // NOISE_PAGE
    for page in range(first, last + 1):
        g = torch.Generator().manual_seed(_page_seed(seed, page))
        noise = torch.randn(NOISE_PAGE, block_size, generator=g)
        lo, hi = max(start, page * NOISE_PAGE), min(stop, (page + 1) * NOISE_PAGE)
        out[lo - start : hi - start] = noise[lo - page * NOISE_PAGE : hi - page * NOISE_PAGE]
    return out


class _Denormalizer:
    """Per-chunk inverse of :class:`SlotNormalizer` (same float64 arithmetic, so bitwise equal)."""

    def __init__(self, normalizer: SlotNormalizer):
        codec = BlockCodec(normalizer.layout)
        self.slot = codec.index.slot
        self.valid = codec.index.valid_length
        self.mean = normalizer.mean.to(torch.float64)
        self.scale = normalizer.scale.to(torch.float64)
        self.block_size = normalizer.layout.block_size

    def __call__(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        slot = self.slot[start:stop]
        out = x.to(torch.float64) * self.scale[slot].unsqueeze(1) + self.mean[slot].unsqueeze(1)
        pad = torch.arange(self.block_size).unsqueeze(0) >= self.valid[start:stop].unsqueeze(1)
        return out.masked_fill(pad, 0).to(torch.float32)


@torch.no_grad()
def sample_blocks(
    denoiser,
    scheduler,
    layout: BlockLayout,
    normalizer: SlotNormalizer,
    text_embedding: TextEmbedding,
    *,
    steps: int = 1,
    guidance: float | None = None,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    forward_batch: int = FORWARD_BATCH,
    center: torch.Tensor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """De-normalised blocks ``[num_blocks, block_size]`` (float32) for one text, ready for the codec.

    ``center`` (``[num_blocks, block_size]``, normalised) is added to the denoiser's clean sample
    before de-normalisation (the generator predicts differences to the zoo's mean block).
    Results are bitwise reproducible for a seed across chunk sizes at a fixed ``forward_batch``.

    ``text_embedding`` holds one text (``TextEncoder.encode(text)``). ``progress(done, total)``
    is called after each chunk.
    """
    if normalizer.layout != layout:
        layout.check_same(normalizer.layout, what="normalisation statistics", expected_name="generator's")
    cfg = denoiser.config
    if cfg.block_size != layout.block_size or cfg.num_blocks != layout.num_blocks:
        raise WeightinitError(
            f"denoiser was built for {cfg.num_blocks} blocks of {cfg.block_size}, layout {layout.fingerprint} "
            f"has {layout.num_blocks} blocks of {layout.block_size}"
        )
    if not isinstance(steps, int) or steps < 1:
        raise WeightinitError(f"steps must be a positive integer, got {steps!r}")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise WeightinitError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if len(text_embedding) != 1:
        raise WeightinitError(f"sample_blocks needs the embedding of one text, got {len(text_embedding)}")
    if guidance is not None and guidance == 1.0:
        guidance = None

    device = next(denoiser.parameters()).device
    dtype = next(denoiser.parameters()).dtype
    denoiser.eval()
    s = base_seed(generator, seed)
    denorm = _Denormalizer(normalizer)
    slots = BlockCodec(layout).index.slot
    text = text_embedding.to(device, dtype)
    null_mask = torch.zeros_like(text.mask)
    use_slots = bool(getattr(cfg, "slot_embedding", False))
    t_last = scheduler.config.num_train_timesteps - 1
    ddim = None
    if steps > 1:
        from diffusers import DDIMScheduler

        ddim = scheduler_from_config(
            DDIMScheduler, scheduler.config, timestep_spacing="trailing", clip_sample=False, set_alpha_to_one=True
        )
        ddim.set_timesteps(steps)

    def model(x, t, index, slot):
        n = x.shape[0]
        tt = torch.full((n,), int(t), device=device, dtype=torch.long)
        tokens = text.tokens.expand(n, -1, -1)
        out = denoiser(x, tt, index, tokens, text.mask.expand(n, -1), slot)
        if guidance is not None:
            uncond = denoiser(x, tt, index, tokens, null_mask.expand(n, -1), slot)
            out = uncond + guidance * (out - uncond)
        return out

    def denoise(start: int, stop: int) -> torch.Tensor:
        """Blocks ``[start, stop)``, run as one padded forward batch of FORWARD_BATCH."""
        n, fb = stop - start, forward_batch
        x = torch.zeros(fb, layout.block_size, device=device, dtype=dtype)
        x[:n] = block_noise(s, start, stop, layout.block_size).to(device, dtype)
        index = torch.zeros(fb, dtype=torch.long, device=device)
        index[:n] = torch.arange(start, stop, device=device)
        slot = torch.zeros_like(index) if use_slots else None
        if slot is not None:
            slot[:n] = slots[start:stop].to(device)
        if ddim is None:
            x = predict_x0(scheduler, model(x, t_last, index, slot).float(), x.float(), t_last)
        else:
            for t in ddim.timesteps:
                x = ddim.step(model(x, t, index, slot).float(), t, x.float(), eta=0.0).prev_sample.to(dtype)
        x = x[:n].float().cpu()
        return x + center[start:stop] if center is not None else x

    total = layout.num_blocks
    if center is not None and tuple(center.shape) != (total, layout.block_size):
        raise WeightinitError(f"center must be [{total}, {layout.block_size}], got {list(center.shape)}")
    chunk = max(1, round(chunk_size / forward_batch)) * forward_batch
    result = torch.empty(total, layout.block_size, dtype=torch.float32)
    for start in range(0, total, chunk):
        stop = min(start + chunk, total)
        for lo in range(start, stop, forward_batch):
            hi = min(lo + forward_batch, stop)
            result[lo:hi] = denorm(denoise(lo, hi), lo, hi)
        if progress is not None:
            progress(stop, total)
    return result
