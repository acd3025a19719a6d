"""Building blocks of dual residual networks (pure PyTorch)."""
from .block import CONNECTIONS, DualResidualBlock, DualResidualChain, durb_p, durb_s, durb_u, durb_us
from .conv import styled_conv, zero_padded_conv
from .network import DuRN, pad_bottom_right
from .norms import DuRNInstanceNorm, make_norm
from .squeeze_excitation import SEBasicBlock, SqueezeExcitation

__all__ = [
    "CONNECTIONS",
    "DuRN",
    "DuRNInstanceNorm",
    "DualResidualBlock",
    "DualResidualChain",
    "SEBasicBlock",
    "SqueezeExcitation",
    "durb_p",
    "durb_s",
    "durb_u",
    "durb_us",
    "make_norm",
    "pad_bottom_right",
    "styled_conv",
    "zero_padded_conv",
]
