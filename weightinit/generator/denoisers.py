"""Block denoisers: predict one weight block from its noisy version, the timestep, the block
index and the concept's text tokens.

Every denoiser is a diffusers ``ModelMixin`` + ``ConfigMixin`` (its config is its constructor's
arguments, saved as JSON beside safetensors weights) with one forward signature::

    denoiser(sample [B, block_size], timestep [B], block_index [B], text_tokens [B, L, D],
             text_mask [B, L], slot_index [B] | None) -> [B, block_size]

Conditioning, as in the paper: the block-index embedding is *added* to the timestep embedding
and that sum conditions every residual block; the text tokens enter through cross-attention.
A learned null token is always attendable, so a text mask of zeros is the unconditional model
(classifier-free guidance drops the condition by zeroing the mask). ``slot_embedding=True``
adds a per-slot (per-tensor) embedding for ablations; ``use_text=False`` /
``use_block_index=False`` remove a condition altogether (the ``--no-text`` /
``--no-block-index`` ablations).

Two denoisers, registered by name in :data:`DENOISERS`:

- ``unet1d`` (:class:`BlockUNet1D`): the paper's 1-D UNet over one block (ResBlocks conditioned on
  timestep + block index, Transformer blocks with self- and cross-attention).
- ``mlp`` (:class:`BlockMLP`, the default): a residual MLP with FiLM conditioning and a cheap
  cross-attention read of the text in every block. Measured on this machine's CPU (one thread,
  batch 256, forward + backward; ``experiments/generator.py --denoiser-speed``)
  the default MLP is about an order of magnitude faster per step than the default UNet at a
  similar parameter count, which is what lets a ~190-concept zoo train in 20-40 CPU minutes and
  every block of a layout sample in one step well under 0.5 s. See ``DEFAULT_DENOISER``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from weightinit.errors import WeightinitError

DEFAULT_DENOISER = "mlp"


class _Condition(nn.Module):
    """timestep (+ block index) (+ slot) -> one embedding ``[B, emb_dim]``."""

    def __init__(self, emb_dim: int, num_blocks: int, num_slots: int, use_block_index: bool, slot_embedding: bool):
        super().__init__()
        self.num_blocks, self.num_slots = num_blocks, num_slots
        self.time_proj = Timesteps(128, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embed = TimestepEmbedding(128, emb_dim)
        self.block_embed = nn.Embedding(num_blocks, emb_dim) if use_block_index else None
        if slot_embedding and num_slots < 1:
            raise WeightinitError("slot_embedding needs num_slots >= 1 (the layout's number of slots)")
        self.slot_embed = nn.Embedding(num_slots, emb_dim) if slot_embedding else None
        if self.block_embed is not None:
            nn.init.normal_(self.block_embed.weight, std=0.02)
        if self.slot_embed is not None:
            nn.init.normal_(self.slot_embed.weight, std=0.02)

    def forward(self, timestep, block_index, slot_index, dtype) -> torch.Tensor:
        emb = self.time_embed(self.time_proj(timestep).to(dtype))
        if self.block_embed is not None:
            if block_index.numel() and (int(block_index.min()) < 0 or int(block_index.max()) >= self.num_blocks):
                raise WeightinitError(
                    f"block index out of range: this denoiser was built for {self.num_blocks} blocks, "
                    f"got indices {int(block_index.min())}..{int(block_index.max())}"
                )
            emb = emb + self.block_embed(block_index)
        if self.slot_embed is not None:
            if slot_index is None:
                raise WeightinitError("this denoiser uses a slot embedding: pass slot_index")
            emb = emb + self.slot_embed(slot_index)
        return emb


class _TextContext(nn.Module):
    """Text tokens -> attention keys/values ``[B, 1 + L, dim]`` and mask, with a learned null token.

    When the tokens are one text expanded over the batch (stride 0, as in sampling) the projection
    runs once and is expanded back, so sampling many blocks costs one projection.
    """

    def __init__(self, text_dim: int, dim: int, use_text: bool):
        super().__init__()
        self.use_text = use_text
        self.proj = nn.Linear(text_dim, dim) if use_text else None
        self.null = nn.Parameter(torch.randn(1, 1, dim) * 0.02)

    def forward(self, text_tokens, text_mask, batch: int, dtype):
        null = self.null.to(dtype).expand(batch, -1, -1)
        ones = torch.ones(batch, 1, dtype=torch.bool, device=null.device)
        if self.proj is None or text_tokens is None:
            return null, ones
        if text_tokens.shape[0] > 1 and text_tokens.stride(0) == 0 and text_mask.stride(0) == 0:
            ctx = self.proj(text_tokens[:1].to(dtype)).expand(batch, -1, -1)
        else:
            ctx = self.proj(text_tokens.to(dtype))
        return torch.cat([null, ctx], 1), torch.cat([ones, text_mask.to(torch.bool)], 1)


def _attend(q, k, v, mask, heads: int) -> torch.Tensor:
    """Multi-head attention: q ``[B, Q, C]``, k/v ``[B, K, C]``, mask ``[B, K]`` bool -> ``[B, Q, C]``."""
    b, nq, c = q.shape
    d = c // heads
    q = q.view(b, nq, heads, d).transpose(1, 2)
    k = k.reshape(b, -1, heads, d).transpose(1, 2)
    v = v.reshape(b, -1, heads, d).transpose(1, 2)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else mask[:, None, None, :])
    return out.transpose(1, 2).reshape(b, nq, c)


class BlockDenoiser(ModelMixin, ConfigMixin):
    """Shared checks of the forward inputs; subclasses implement :meth:`denoise`."""

    def to(self, *args, **kwargs):
        # ModelMixin.to imports diffusers.hooks (and torch._dynamo with it, seconds of every CLI
        # start) to refuse moving group-offloaded models and to keep fp32 modules; a block
        # denoiser has neither, so torch's own move is the same
        if self._keep_in_fp32_modules:
            return super().to(*args, **kwargs)
        return nn.Module.to(self, *args, **kwargs)

    def forward(self, sample, timestep, block_index, text_tokens=None, text_mask=None, slot_index=None):
        cfg = self.config
        if sample.ndim != 2 or sample.shape[1] != cfg.block_size:
            raise WeightinitError(f"denoiser expects samples [B, {cfg.block_size}], got {list(sample.shape)}")
        b = sample.shape[0]
        if timestep.ndim == 0:
            timestep = timestep.expand(b)
        if text_tokens is not None and (text_tokens.shape[0] != b or text_tokens.shape[-1] != cfg.text_dim):
            raise WeightinitError(f"text tokens must be [{b}, L, {cfg.text_dim}], got {list(text_tokens.shape)}")
        if text_tokens is not None and text_mask is None:
            text_mask = torch.ones(text_tokens.shape[:2], device=sample.device)
        return self.denoise(sample, timestep, block_index, text_tokens, text_mask, slot_index)


# --- the fast CPU default: residual MLP with FiLM ---------------------------------------------
class _MLPBlock(nn.Module):
    def __init__(self, dim: int, emb_dim: int, attn_dim: int, heads: int, mult: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.film = nn.Linear(emb_dim, 2 * dim)
        self.fc1 = nn.Linear(dim, mult * dim)
        self.fc2 = nn.Linear(mult * dim, dim)
        self.heads = heads
        if attn_dim:
            self.attn_norm = nn.LayerNorm(dim)
            self.q = nn.Linear(dim, attn_dim)
            self.out = nn.Linear(attn_dim, dim)
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, h, emb, ctx, ctx_mask):
        if ctx is not None:
            k, v = ctx.chunk(2, dim=-1)
            h = h + self.out(_attend(self.q(self.attn_norm(h)).unsqueeze(1), k, v, ctx_mask, self.heads).squeeze(1))
        scale, shift = self.film(emb).chunk(2, dim=-1)
        x = self.norm(h) * (1 + scale) + shift
        return h + self.fc2(F.silu(self.fc1(x)))


class BlockMLP(BlockDenoiser):
    """Residual MLP over one block; FiLM from (timestep + block index) and pooled text; cross-attention.

    Defaults (hidden 384, 3 blocks, attention width 64, one text projection shared by all blocks).
    Hidden 384 rather than 512 keeps the bundled generator under 25 MB: with the retrieval prior
    as its centre, the default zoo's generator measured the same with either width (the
    denoiser's residual moves held-out step-0 PSNR by under 0.05 dB; see the model card).
    Measured on this CPU (1 thread, batch 256, forward + backward + AdamW, two other jobs
    running): hidden 512/3 blocks ~200 ms a step, the same with hidden 384 ~185 ms, 4 blocks
    ~195 ms, without text ~95 ms (the text path is half the cost);
    one-step sampling of 415 blocks ~70 ms. The default UNet (2.0M parameters) takes ~4.3 s a step
    and ~2 s to sample 415 blocks.
    """

    @register_to_config
    def __init__(
        self,
        block_size: int = 256,
        num_blocks: int = 1,
        text_dim: int = 384,
        hidden_dim: int = 384,
        num_layers: int = 3,
        mlp_mult: int = 2,
        emb_dim: int = 256,
        attn_dim: int = 64,
        attn_heads: int = 4,
        num_slots: int = 0,
        slot_embedding: bool = False,
        use_text: bool = True,
        use_block_index: bool = True,
    ):
        super().__init__()
        self.cond = _Condition(emb_dim, num_blocks, num_slots, use_block_index, slot_embedding)
        # One projection of the text to keys and values, shared by every block's cross-attention.
        self.text = _TextContext(text_dim, 2 * attn_dim, use_text)
        self.text_pool = nn.Linear(2 * attn_dim, emb_dim) if use_text else None
        self.emb_act = nn.SiLU()
        self.inp = nn.Linear(block_size, hidden_dim)
        self.blocks = nn.ModuleList(
            _MLPBlock(hidden_dim, emb_dim, attn_dim if use_text else 0, attn_heads, mlp_mult) for _ in range(num_layers)
        )
        self.out_norm = nn.LayerNorm(hidden_dim)
        self.out = nn.Linear(hidden_dim, block_size)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def denoise(self, sample, timestep, block_index, text_tokens, text_mask, slot_index):
        dtype = self.inp.weight.dtype
        emb = self.cond(timestep, block_index, slot_index, dtype)
        ctx, ctx_mask = self.text(text_tokens, text_mask, sample.shape[0], dtype)
        if self.text_pool is not None:
            m = ctx_mask.to(dtype).unsqueeze(-1)
            emb = emb + self.text_pool((ctx * m).sum(1) / m.sum(1))
        emb = self.emb_act(emb)
        h = self.inp(sample.to(dtype))
        use_ctx = ctx if self.text_pool is not None else None
        for block in self.blocks:
            h = block(h, emb, use_ctx, ctx_mask)
        return self.out(self.out_norm(h))


# --- the paper's 1-D UNet ---------------------------------------------------------------------
class _ResBlock1D(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int, groups: int = 8):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, cin), cin)
        self.conv1 = nn.Conv1d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = nn.GroupNorm(min(groups, cout), cout)
        self.conv2 = nn.Conv1d(cout, cout, 3, padding=1)
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb).unsqueeze(-1).chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class _Transformer1D(nn.Module):
    """Self-attention over positions, cross-attention to the text, feed-forward."""

    def __init__(self, ch: int, ctx_dim: int, heads: int, use_text: bool):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(ch)
        self.qkv = nn.Linear(ch, 3 * ch)
        self.proj1 = nn.Linear(ch, ch)
        self.use_text = use_text
        if use_text:
            self.norm2 = nn.LayerNorm(ch)
            self.q = nn.Linear(ch, ch)
            self.kv = nn.Linear(ctx_dim, 2 * ch)
            self.proj2 = nn.Linear(ch, ch)
        self.norm3 = nn.LayerNorm(ch)
        self.ff = nn.Sequential(nn.Linear(ch, 4 * ch), nn.GELU(), nn.Linear(4 * ch, ch))

    def forward(self, x, ctx, ctx_mask):
        h = x.transpose(1, 2)  # [B, L, C]
        q, k, v = self.qkv(self.norm1(h)).chunk(3, dim=-1)
        h = h + self.proj1(_attend(q, k, v, None, self.heads))
        if self.use_text:
            k, v = self.kv(ctx).chunk(2, dim=-1)
            h = h + self.proj2(_attend(self.q(self.norm2(h)), k, v, ctx_mask, self.heads))
        h = h + self.ff(self.norm3(h))
        return h.transpose(1, 2)


class BlockUNet1D(BlockDenoiser):
    """The paper's denoiser: a 1-D UNet over one block (length ``block_size``, one channel).

    Each level has ``layers_per_block`` ResBlocks (conditioned on timestep + block index) and,
    where ``attention_levels`` says so, a Transformer block (self-attention + cross-attention to
    the text tokens); the middle has ResBlock, Transformer, ResBlock.
    """

    @register_to_config
    def __init__(
        self,
        block_size: int = 256,
        num_blocks: int = 1,
        text_dim: int = 384,
        block_out_channels: tuple[int, ...] = (32, 64, 128),
        attention_levels: tuple[bool, ...] = (False, False, True),
        layers_per_block: int = 1,
        emb_dim: int = 256,
        ctx_dim: int = 128,
        attn_heads: int = 4,
        num_slots: int = 0,
        slot_embedding: bool = False,
        use_text: bool = True,
        use_block_index: bool = True,
    ):
        super().__init__()
        levels = len(block_out_channels)
        if len(attention_levels) != levels:
            raise WeightinitError("attention_levels needs one flag per entry of block_out_channels")
        if block_size % (2 ** (levels - 1)):
            raise WeightinitError(
                f"block size {block_size} must be divisible by {2 ** (levels - 1)} for {levels} UNet levels"
            )
        self.cond = _Condition(emb_dim, num_blocks, num_slots, use_block_index, slot_embedding)
        self.text = _TextContext(text_dim, ctx_dim, use_text)
        self.emb_act = nn.SiLU()
        self.conv_in = nn.Conv1d(1, block_out_channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        skips, ch = [], block_out_channels[0]
        for i, cout in enumerate(block_out_channels):
            level = nn.ModuleList()
            for _ in range(layers_per_block):
                level.append(_ResBlock1D(ch, cout, emb_dim))
                ch = cout
                if attention_levels[i]:
                    level.append(_Transformer1D(ch, ctx_dim, attn_heads, use_text))
            skips.append(ch)
            level.append(nn.Conv1d(ch, ch, 3, stride=2, padding=1) if i < levels - 1 else nn.Identity())
            self.down.append(level)
        self.mid = nn.ModuleList(
            [
                _ResBlock1D(ch, ch, emb_dim),
                _Transformer1D(ch, ctx_dim, attn_heads, use_text),
                _ResBlock1D(ch, ch, emb_dim),
            ]
        )
        self.up = nn.ModuleList()
        for i, cout in reversed(list(enumerate(block_out_channels))):
            level = nn.ModuleList([_ResBlock1D(ch + skips[i], cout, emb_dim)])
            ch = cout
            if attention_levels[i]:
                level.append(_Transformer1D(ch, ctx_dim, attn_heads, use_text))
            level.append(nn.Upsample(scale_factor=2, mode="nearest") if i > 0 else nn.Identity())
            self.up.append(level)
        self.norm_out = nn.GroupNorm(min(8, ch), ch)
        self.conv_out = nn.Conv1d(ch, 1, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    @staticmethod
    def _run(layer, h, emb, ctx, mask):
        if isinstance(layer, _ResBlock1D):
            return layer(h, emb)
        if isinstance(layer, _Transformer1D):
            return layer(h, ctx, mask)
        return layer(h)

    def denoise(self, sample, timestep, block_index, text_tokens, text_mask, slot_index):
        dtype = self.conv_in.weight.dtype
        emb = self.emb_act(self.cond(timestep, block_index, slot_index, dtype))
        ctx, mask = self.text(text_tokens, text_mask, sample.shape[0], dtype)
        h = self.conv_in(sample.to(dtype).unsqueeze(1))
        skips = []
        for level in self.down:
            for layer in level[:-1]:
                h = self._run(layer, h, emb, ctx, mask)
            skips.append(h)
            h = level[-1](h)
        for layer in self.mid:
            h = self._run(layer, h, emb, ctx, mask)
        for level in self.up:
            h = torch.cat([h, skips.pop()], dim=1)
            for layer in level:
                h = self._run(layer, h, emb, ctx, mask)
        return self.conv_out(F.silu(self.norm_out(h))).squeeze(1)


#: Denoisers by name; ``GeneratorTrainingConfig.denoiser`` picks one.
DENOISERS: dict[str, type[BlockDenoiser]] = {"mlp": BlockMLP, "unet1d": BlockUNet1D}


def denoiser_class(name: str) -> type[BlockDenoiser]:
    """The class registered as ``name`` (or with that class name, as in a saved config)."""
    for key, cls in DENOISERS.items():
        if name in (key, cls.__name__):
            return cls
    raise WeightinitError(f"unknown denoiser {name!r}; known: {', '.join(DENOISERS)}")


def denoiser_name(model: BlockDenoiser) -> str:
    for key, cls in DENOISERS.items():
        if type(model) is cls:
            return key
    return type(model).__name__


def build_denoiser(name: str, **kwargs) -> BlockDenoiser:
    cls = denoiser_class(name)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise WeightinitError(f"bad options for denoiser {name!r}: {exc}") from None


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "DENOISERS",
    "DEFAULT_DENOISER",
    "BlockDenoiser",
    "BlockMLP",
    "BlockUNet1D",
    "build_denoiser",
    "denoiser_class",
]
