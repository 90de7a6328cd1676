"""The architecture the template adapts: a stand-in for *your* network.

In a real plugin this module usually does not exist: your network lives in your own package,
and the adapter only has to recognise it. It is here so the template runs on its own.
"""

from __future__ import annotations

import torch
from torch import nn


class TinyEncoderDecoder(nn.Module):
    """Image to image: one stride-2 conv down, one stride-2 transposed conv up."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 8):
        super().__init__()
        # Native keys: encoder.0.weight/bias (the conv; index 1 is a ReLU, no parameters).
        self.encoder = nn.Sequential(nn.Conv2d(in_channels, width, 3, stride=2, padding=1), nn.ReLU())
        # Native keys: decoder.0.weight/bias (the transposed conv; index 1 is a Tanh).
        self.decoder = nn.Sequential(nn.ConvTranspose2d(width, out_channels, 4, stride=2, padding=1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
