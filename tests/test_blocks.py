"""The dual residual block as a building block: connection styles and user-built DuRNs."""
import itertools

import pytest
import torch
from torch import nn

from durn.nn import DuRN, DualResidualBlock, DualResidualChain, durb_p, durb_s, durb_u, durb_us


class Scale(nn.Module):
    """A tagged scalar operation: multiplies by ``value``."""

    def __init__(self):
        super().__init__()
        self.value = 0.0

    def forward(self, x):
        return x * self.value


def _linear_chain(connection, n=3):
    """A chain of DuRBs whose T1/T2 are scalars and whose own conv pair is switched off
    (zero weights), so with positive inputs every ReLU is the identity and the chain is
    a polynomial in the scalars f_i (T1 of block i) and g_j (T2 of block j)."""
    blocks = []
    for _ in range(n):
        block = DualResidualBlock(1, Scale(), Scale(), connection=connection)
        for conv in (block.conv1, block.conv2):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        blocks.append(block)
    return DualResidualChain(blocks)


def pairings(connection, n=3):
    """{(i, j)}: f_i and g_j sit on a common path with no other f/g between them.

    With every other operation set to 0 (blocking the paths through it), the output is
    bilinear in (f_i, g_j); the mixed coefficient out(1,1)-out(1,0)-out(0,1)+out(0,0) is
    non-zero exactly when some path goes through both.
    """
    chain = _linear_chain(connection, n)
    x = torch.full((1, 1, 4, 4), 0.5, dtype=torch.float64)
    chain.double()
    found = set()
    for i, j in itertools.product(range(n), range(n)):
        def out(a, b):
            for k, block in enumerate(chain):
                block.t1.value = a if k == i else 0.0
                block.t2.value = b if k == j else 0.0
            with torch.no_grad():
                return chain(x, x)[0]
        mixed = out(1.0, 1.0) - out(1.0, 0.0) - out(0.0, 1.0) + out(0.0, 0.0)
        if mixed.abs().max().item() > 1e-12:
            found.add((i, j))
    return found


def test_connection_styles_create_the_pairings_of_fig1():
    n = 3
    assert pairings("paired", n) == {(i, i) for i in range(n)}  # Fig. 1(b): f_i with g_i only
    assert pairings("separate", n) == {(i, j) for i in range(n) for j in range(n)}  # Fig. 1(c): all
    assert pairings("dual", n) == {(i, j) for i in range(n) for j in range(n) if i <= j}  # Fig. 1(d)


def test_separate_connection_needs_shape_preserving_t1():
    block = durb_u(8, 3, connection="separate")
    with pytest.raises(ValueError, match="T1 must keep the shape"):
        block(torch.rand(1, 8, 8, 8), torch.rand(1, 4, 16, 16))


@pytest.mark.parametrize("connection", ["dual", "paired", "separate"])
def test_variants_keep_shapes(connection):
    x, res = torch.rand(2, 16, 12, 12), torch.rand(2, 16, 12, 12)
    for block in (durb_p(16, 5, 3, 2, connection=connection), durb_s(16, 3, 3, 2, se_hidden=4, connection=connection)):
        y, r = block.eval()(x, res)
        assert y.shape == x.shape and r.shape == res.shape
    if connection != "separate":
        low, high = torch.rand(2, 16, 6, 6), torch.rand(2, 8, 12, 12)
        y, r = durb_u(16, 3, 2, connection=connection)(low, high)
        assert y.shape == low.shape and r.shape == high.shape
        y, r = durb_us(16, 5, se_hidden=4, connection=connection)(low, torch.rand(2, 16, 12, 12))
        assert y.shape == low.shape


def test_dual_block_returns_t1_output_as_res():
    block = durb_p(4, 3, 3).eval()
    x, res = torch.rand(1, 4, 8, 8), torch.rand(1, 4, 8, 8)
    _, new_res = block(x, res)
    x_r = x
    h = torch.relu(block.norm1(block.conv1(x)))
    h = torch.relu(block.norm2(block.conv2(h) + x_r))
    torch.testing.assert_close(new_res, torch.relu(block.t1(h) + res))


class Gated(nn.Module):
    """A user operation: a gated 3x3 conv."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, 2 * channels, 3, padding=1)

    def forward(self, x):
        a, b = self.conv(x).chunk(2, dim=1)
        return a * torch.sigmoid(b)


def _custom_durn(channels=8):
    blocks = DualResidualChain(
        DualResidualBlock(
            channels,
            t1=nn.Sequential(nn.Conv2d(channels, channels, 5, padding=4, dilation=2), nn.GroupNorm(2, channels)),
            t2=Gated(channels),
            norm="batch",
        )
        for _ in range(2)
    )
    stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU())
    tail = nn.Conv2d(channels, 3, 3, padding=1)
    return DuRN(stem, [blocks], tail, in_channels=3)


def test_custom_durn_trains_and_its_loss_falls():
    torch.manual_seed(0)
    model = _custom_durn()
    clean = torch.rand(4, 3, 24, 24)
    noisy = (clean + 0.1 * torch.randn_like(clean)).clamp(0, 1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(noisy), clean)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    # every parameter of the user's operations received gradient
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_custom_durn_handles_any_size():
    model = _custom_durn().eval()
    assert model(torch.rand(3, 7, 5)).shape == (3, 7, 5)
