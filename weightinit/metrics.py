"""Paired image metrics that work offline: L1, PSNR, SSIM (torchmetrics).

Images arrive in the pix2pix convention, NCHW in [-1, 1]; metrics are computed on [0, 1].
FID needs an Inception network's weights, which weightinit never downloads: see
:func:`fid` for the version that takes a user-supplied feature network.
"""

from __future__ import annotations

import torch


def to_unit(images: torch.Tensor) -> torch.Tensor:
    return ((images.detach().float() + 1) / 2).clamp(0, 1)


#: Images per SSIM call: torchmetrics holds about 13x the batch while it filters, so 1,248 test
#: images at 128 px took 16 GB at once; the per-image values are averaged as the full call would.
SSIM_CHUNK = 64


@torch.no_grad()
def mean_psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR (dB, data range 1) per image of ``[-1, 1]`` images, then averaged: one badly predicted
    image should not dominate the log."""
    mse = ((to_unit(pred) - to_unit(target)) ** 2).flatten(1).mean(1).clamp(min=1e-10)
    return float((10 * torch.log10(1.0 / mse)).mean())


def paired_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Mean L1, PSNR (dB, data range 1) and SSIM of predictions against targets."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    p, t = to_unit(pred), to_unit(target)
    return {
        "l1": float((p - t).abs().mean()),
        "psnr": mean_psnr(pred, target),
        "psnr_pooled": float(peak_signal_noise_ratio(p, t, data_range=1.0)),
        "ssim": float(
            torch.cat(
                [
                    structural_similarity_index_measure(
                        p[i : i + SSIM_CHUNK], t[i : i + SSIM_CHUNK], data_range=1.0, reduction="none"
                    )
                    for i in range(0, len(p), SSIM_CHUNK)
                ]
            ).mean()
        ),
    }


def fid(real: torch.Tensor, fake: torch.Tensor, feature_extractor: torch.nn.Module, num_features: int) -> float:
    """FID with a feature network the user supplies (e.g. Inception weights loaded from disk).

    Only with real Inception-v3 pool features is this comparable to published FID.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=feature_extractor, normalize=True)
    metric.update(to_unit(real), real=True)
    metric.update(to_unit(fake), real=False)
    return float(metric.compute())
