"""The six networks of the paper, layer for layer as ../shared/spec/architectures.md states.

Each builder returns a freshly initialised :class:`durn.nn.DuRN`; ``connection`` selects
the Fig. 1 wiring of every block (``"dual"`` is the paper's network).
"""
from __future__ import annotations

from torch import nn

from ..nn import DuRN, DualResidualChain, durb_p, durb_s, durb_u, durb_us, make_norm, styled_conv, zero_padded_conv

# (k1, k2, dilation) of the six DuRB-P / DuRB-S blocks of DuRN-P and DuRN-S.
P_SCHEDULE = ((5, 3, 1), (7, 5, 1), (7, 5, 2), (11, 7, 2), (11, 5, 1), (11, 7, 3))
# (kernel, dilation) of T1's conv in the six DuRB-U blocks of DuRN-U.
U_SCHEDULE = ((3, 3), (7, 1), (3, 3), (7, 1), (3, 2), (5, 1))
# T1 kernel of the twelve DuRB-US blocks of DuRN-US.
US_SCHEDULE = (5, 5, 7, 7) + (11,) * 8
# (k1, dilation) of DuRN-S-P: three DuRB-S (k2 = 3), then six DuRB-P (k2 = 5).
SP_ATTENTIVE = (12, 8, 6)
SP_PLAIN = ((3, 2), (5, 1), (3, 3), (7, 1), (3, 4), (7, 1))


def _conv_norm_relu(conv: nn.Module, norm: str | None, channels: int) -> list[nn.Module]:
    return [conv, make_norm(norm, channels), nn.ReLU(inplace=True)]


def _durn_p_family(in_channels: int, channels: int, norm: str | None, block, connection: str) -> DuRN:
    style = "reflect"
    stem = nn.Sequential(
        *_conv_norm_relu(styled_conv(in_channels, channels, 3, style=style), norm, channels),
        *_conv_norm_relu(styled_conv(channels, channels, 3, style=style), norm, channels),
    )
    blocks = DualResidualChain(block(k1, k2, d) for k1, k2, d in P_SCHEDULE)
    tail = nn.Sequential(
        *_conv_norm_relu(styled_conv(channels, channels, 3, style=style), norm, channels),
        styled_conv(channels, in_channels, 3, style=style),
    )
    return DuRN(stem, [blocks], tail, in_channels=in_channels)


def build_durn_p(*, connection: str = "dual") -> DuRN:
    """DuRN-P for Gaussian noise on grayscale images (816,225 parameters)."""
    return _durn_p_family(
        1, 32, "batch",
        lambda k1, k2, d: durb_p(32, k1, k2, d, padding="reflect", norm="batch", connection=connection),
        connection,
    )


def build_durn_p_real(*, connection: str = "dual") -> DuRN:
    """DuRN-P without norms for real-world RGB noise (815,651 parameters)."""
    return _durn_p_family(
        3, 32, None,
        lambda k1, k2, d: durb_p(32, k1, k2, d, padding="reflect", norm=None, connection=connection),
        connection,
    )


def build_durn_s(*, connection: str = "dual") -> DuRN:
    """DuRN-S for rain streaks (3,729,923 parameters)."""
    return _durn_p_family(
        3, 64, "batch",
        lambda k1, k2, d: durb_s(64, k1, k2, d, se_hidden=32, padding="reflect", norm="batch", connection=connection),
        connection,
    )


def build_durn_u(*, connection: str = "dual") -> DuRN:
    """DuRN-U for motion blur (12,856,579 parameters)."""
    style, norm = "mixed", "instance"
    stem = nn.Sequential(
        *_conv_norm_relu(zero_padded_conv(3, 64, 7, padding=3), norm, 64),
        *_conv_norm_relu(zero_padded_conv(64, 128, 3, padding=1, stride=2), norm, 128),
    )
    entry = nn.Sequential(*_conv_norm_relu(zero_padded_conv(128, 256, 3, padding=1, stride=2), norm, 256))
    blocks = DualResidualChain(
        durb_u(256, k, d, padding=style, norm=norm, connection=connection) for k, d in U_SCHEDULE
    )
    tail = nn.Sequential(
        styled_conv(256, 512, 1, style=style), make_norm(norm, 512), nn.PixelShuffle(2),
        *_conv_norm_relu(styled_conv(128, 128, 3, style=style), norm, 128),
        styled_conv(128, 256, 1, style=style), make_norm(norm, 256), nn.PixelShuffle(2),
        *_conv_norm_relu(styled_conv(64, 64, 3, style=style), norm, 64),
        zero_padded_conv(64, 3, 7, padding=3),
    )
    return DuRN(stem, [blocks], tail, entry=entry, in_channels=3, size_multiple=4)


def build_durn_us(*, connection: str = "dual") -> DuRN:
    """DuRN-US for haze (9,070,915 parameters)."""
    style = "mixed"
    relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
    stem = nn.Sequential(
        zero_padded_conv(3, 64, 7, padding=3), relu(),
        zero_padded_conv(64, 64, 3, padding=1, stride=2), relu(),
    )
    entry = nn.Sequential(zero_padded_conv(64, 64, 3, padding=1, stride=2), relu())
    blocks = DualResidualChain(durb_us(64, k, se_hidden=32, padding=style, connection=connection) for k in US_SCHEDULE)
    tail = nn.Sequential(
        styled_conv(64, 256, 3, style=style), nn.PixelShuffle(2), styled_conv(64, 64, 3, style=style), relu(),
        styled_conv(64, 256, 3, style=style), nn.PixelShuffle(2), styled_conv(64, 64, 3, style=style), relu(),
        zero_padded_conv(64, 3, 7, padding=3),
    )
    return DuRN(stem, [blocks], tail, entry=entry, in_channels=3, size_multiple=4)


def _upsample_x2(in_channels: int, out_channels: int) -> nn.Sequential:
    """DuRN-S-P's up-sampler: transposed conv, then a one-pixel shift-and-blur."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1),
        nn.ReflectionPad2d((1, 0, 1, 0)),
        nn.AvgPool2d(2, stride=1),
        nn.ReLU(inplace=True),
    )


class _DuRNSP(DuRN):
    """DuRN-S-P carries a PReLU weight in every checkpoint that its forward never uses;
    it is kept (frozen) so that parameter counts and checkpoints match the authors'."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.unused_prelu = nn.PReLU()
        self.unused_prelu.weight.requires_grad_(False)


def build_durn_s_p(*, connection: str = "dual") -> DuRN:
    """DuRN-S-P for raindrops (10,176,964 parameters, one an unused PReLU weight)."""
    style, norm = "mixed", "batch"
    stem = nn.Sequential(
        *_conv_norm_relu(zero_padded_conv(3, 64, 5, padding=1), norm, 64),
        *_conv_norm_relu(zero_padded_conv(64, 128, 3, padding=1, stride=2), norm, 128),
        *_conv_norm_relu(zero_padded_conv(128, 128, 3, padding=1, stride=2), norm, 128),
    )
    attentive = DualResidualChain(
        durb_s(128, 3, 3, d, se_hidden=64, padding=style, norm=norm, connection=connection) for d in SP_ATTENTIVE
    )
    plain = DualResidualChain(
        durb_p(128, k1, 5, d, padding=style, norm=norm, connection=connection) for k1, d in SP_PLAIN
    )
    tail = nn.Sequential(
        _upsample_x2(128, 128),
        *_conv_norm_relu(styled_conv(128, 128, 3, style=style), norm, 128),
        _upsample_x2(128, 64),
        styled_conv(64, 3, 5, style=style),
    )
    return _DuRNSP(stem, [attentive, plain], tail, in_channels=3, subtract_residual=True, size_multiple=4)
