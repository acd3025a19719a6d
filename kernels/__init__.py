"""durn's Triton kernels, installed as ``durn.kernels`` (see pyproject.toml).

Each launcher takes the arguments of its contract in ``durn/ops/reference.py`` and returns
what the reference returns (float32 accumulation; float32, float16 and bfloat16 tensors,
NCHW or channels_last, output in x's memory format). Use them through ``durn.ops`` with
``backend="triton"``: that path adds the custom-op registration, fake kernels for
``torch.compile`` and autograd.

The kernels are compiled for the GPU, or run on CPU tensors under Triton's interpreter
when ``TRITON_INTERPRET=1`` was set before this package was first imported.
"""
from ._launch import interpreted, output_format
from .conv import conv2d, conv_blocks, fused_conv2d, pixel_shuffle_conv2d
from .squeeze_excitation import se_config, squeeze_excitation

__all__ = [
    "conv2d", "conv_blocks", "fused_conv2d", "interpreted", "output_format", "pixel_shuffle_conv2d",
    "se_config", "squeeze_excitation",
]
