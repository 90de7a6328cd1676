"""Paired metrics: SSIM in chunks equals torchmetrics on the whole batch, without its memory."""

import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from weightinit.metrics import SSIM_CHUNK, paired_metrics


def test_chunked_ssim_equals_the_whole_batch_value():
    gen = torch.Generator().manual_seed(0)
    n = 2 * SSIM_CHUNK + 7  # two full chunks and a ragged one
    pred = torch.rand(n, 3, 16, 16, generator=gen) * 2 - 1
    target = (pred + 0.4 * torch.randn(n, 3, 16, 16, generator=gen)).clamp(-1, 1)
    whole = float(structural_similarity_index_measure((pred + 1) / 2, (target + 1) / 2, data_range=1.0))
    assert abs(paired_metrics(pred, target)["ssim"] - whole) < 1e-6
    assert paired_metrics(target, target)["ssim"] > 0.999
