"""Images in, images out: ``durn.restore(model, image)`` and ``durn.Restore``.

* ``api.py``: :func:`restore`, :class:`Restore`, :func:`load_network`;
* ``convert.py``: numpy arrays and PIL images to and from tensors, BT.601 luma;
* ``image_io.py``: image files (8/16 bits, EXIF orientation, atomic writes);
* ``tiles.py``: blended tiles; ``exact.py``: exact tiles (convolutions tiled on the device,
  activations on the host);
* ``precision.py``: bfloat16 / float16 autocast with a float32 fallback;
* ``memory.py``: free memory and the tile sizes it allows.

Minimum size, receptive field and memory per pixel come from the architecture's one
shape-only dry run (:mod:`durn.nn.geometry`).
"""
from ..weights import UntrainedWeightsWarning
from .api import Restore, load_network, restore
from .convert import LUMA, array_to_chw, chw_to_array
from .precision import EmulatedPrecisionWarning, NonFiniteFallback

__all__ = [
    "EmulatedPrecisionWarning", "LUMA", "NonFiniteFallback", "Restore", "UntrainedWeightsWarning", "array_to_chw", "chw_to_array",
    "load_network", "restore",
]
