"""Modulated attention of OLTR (Liu et al., CVPR 2019, Sec. 3.1 "Modulated attention").

A non-local self-attention block (embedded Gaussian) whose output is weighted by a
learned spatial softmax and added back to the input:

    g, theta, phi : 1x1 convs Cf -> Cf/2
    A    = softmax_j( theta(X)_i . phi(X)_j )        (HW x HW, row i sums to 1)
    mask = conv_mask( sum_j A_ij g(X)_j )            (Cf/2 -> Cf, no bias)
    att  = softmax over positions of fc_spatial(flatten(X))   (Cf*H*W -> H*W)
    out  = att * mask + X                             (att broadcast over channels)

Orientation follows the OLTR code exactly: the affinity is ``theta^T @ phi`` with
queries (theta) on the rows, the softmax runs over the last dimension (the key
positions j), and the value map is ``A @ g``. ``flatten(X)`` is in (C, H, W) order,
as ``x.view(B, -1)`` on an NCHW tensor.

Initialisation: Kaiming-normal g/theta/phi over their fan-in (std sqrt(2 / Cf)) with
zero bias, and a zero ``conv_mask``, so the block is the identity at initialisation.
(In the OLTR code the ResNet's own init loop ran after the block was built and
overwrote the conv weights with normal(0, sqrt(2 / (k*k*out_channels))): std
sqrt(2 / (Cf/2)) for g/theta/phi, twice the variance here, and a random
``conv_mask``; the zero mask here lets stage 2 start exactly from the stage-1 features.)

The original hard-codes a 7x7 map; here H and W are constructor arguments, so
224-pixel inputs keep the original parameter shapes (fc_spatial: 512*49 -> 49 for
ResNet-10) and small images work.
"""

from __future__ import annotations

import torch
from torch import nn

from ..common.errors import ConfigError


class ModulatedAttention(nn.Module):
    """OLTR's modulated attention on a (B, Cf, H, W) feature map of a fixed size.

    forward(x) -> (out, [x, spatial_attention (B, 1, H, W), mask (B, Cf, H, W)]).
    """

    def __init__(self, in_channels: int, height: int, width: int, reduction: int = 2):
        super().__init__()
        if in_channels < reduction or in_channels % reduction:
            raise ConfigError(
                f"ModulatedAttention in_channels={in_channels} must be a positive multiple of reduction={reduction}."
            )
        if height < 1 or width < 1:
            raise ConfigError(f"ModulatedAttention needs a feature map of at least 1x1, got {height}x{width}.")
        self.in_channels = in_channels
        self.inter_channels = in_channels // reduction
        self.height = height
        self.width = width

        self.g = nn.Conv2d(in_channels, self.inter_channels, kernel_size=1)
        self.theta = nn.Conv2d(in_channels, self.inter_channels, kernel_size=1)
        self.phi = nn.Conv2d(in_channels, self.inter_channels, kernel_size=1)
        self.conv_mask = nn.Conv2d(self.inter_channels, in_channels, kernel_size=1, bias=False)
        self.fc_spatial = nn.Linear(in_channels * height * width, height * width)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for conv in (self.g, self.theta, self.phi):
            nn.init.kaiming_normal_(conv.weight)
            nn.init.zeros_(conv.bias)
        # Zero mask: out == x at init, so adding the block does not disturb stage-1 features.
        nn.init.zeros_(self.conv_mask.weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        batch_size, channels, height, width = x.shape
        if (height, width) != (self.height, self.width):
            raise ConfigError(
                f"ModulatedAttention was built for a {self.height}x{self.width} feature map but got "
                f"{height}x{width}; set the feature model's input_size to the image size the data transforms produce."
            )
        # flatten() rather than view(): inputs may be channels_last.
        g_x = self.g(x).flatten(2).transpose(1, 2)  # (B, HW, inter)
        theta_x = self.theta(x).flatten(2).transpose(1, 2)  # (B, HW, inter), queries
        phi_x = self.phi(x).flatten(2)  # (B, inter, HW), keys
        affinity = torch.softmax(theta_x @ phi_x, dim=-1)  # (B, HW_query, HW_key)
        attended = (affinity @ g_x).transpose(1, 2).reshape(batch_size, self.inter_channels, height, width)
        mask = self.conv_mask(attended)

        spatial = torch.softmax(self.fc_spatial(x.flatten(1)), dim=1)
        spatial = spatial.view(batch_size, 1, height, width)
        out = spatial * mask + x
        return out, [x, spatial, mask]
