"""torch.hub entry points for durn: Dual Residual Networks (Liu et al., CVPR 2019).

    model = torch.hub.load("path/to/durn", "durn_p", source="local")

Only pure-PyTorch code is imported here; fast kernels load lazily elsewhere.
"""
dependencies = ["torch"]

from durn.models import durn_p as _durn_p  # noqa: E402
from durn.models import durn_p_real as _durn_p_real  # noqa: E402
from durn.models import durn_s as _durn_s  # noqa: E402
from durn.models import durn_s_p as _durn_s_p  # noqa: E402
from durn.models import durn_u as _durn_u  # noqa: E402
from durn.models import durn_us as _durn_us  # noqa: E402


def _hub(name, builder, pretrained, progress, weights, kwargs):
    if pretrained and weights is None:
        weights = "default"  # the network's default entry in durn.weights; raises if none
    return builder(weights=weights, progress=progress, **kwargs)


def durn_p(pretrained=False, progress=True, weights=None, **kwargs):
    """DuRN-P: removes additive Gaussian noise from grayscale images.

    Input: float tensor (N, 1, H, W) or (1, H, W), values in [0, 1], any H, W >= 2
    (reflection padding needs 16 pixels; smaller images are mirror-padded and cropped
    back). Output: the same shape, ``input + tanh(residual)``, not clamped.
    Six DuRB-P blocks pairing 5x5..11x11 (dilated) convs with 3x3..7x7 convs, BN,
    reflection padding; 816,225 parameters. Purely local: tiles reproduce the whole image.

    Args:
        pretrained: load the network's default released weights (durn.weights.DEFAULTS);
            where none are released, raises saying how to use the authors' weights.
        progress: show a download progress bar.
        weights: None, a released entry name (``durn.weights.list_weights()``), ``"authors"``
            (after ``durn import-authors``), a path to the authors' ``DuRN_P_model.pt`` or a durn
            weights file, or a state dict.
        **kwargs: ``connection="dual" | "paired" | "separate"`` (paper Fig. 1 d/b/c).

    Paper (BSD200 gray, authors' protocol): PSNR/SSIM 28.49/0.8158 (sigma 30),
    26.36/0.7355 (sigma 50), 25.06/0.6761 (sigma 70).
    """
    return _hub("durn_p", _durn_p, pretrained, progress, weights, kwargs)


def durn_p_real(pretrained=False, progress=True, weights=None, **kwargs):
    """DuRN-P for real-world camera noise on RGB images.

    Input: float tensor (N, 3, H, W) or (3, H, W), RGB in [0, 1], any H, W >= 2 (padded
    to 16 internally when smaller). Output: same shape. DuRN-P without normalisation
    layers; 815,651 parameters; purely local, so tiling is exact.

    Args:
        pretrained: load the network's default released weights (durn.weights.DEFAULTS);
            where none are released, raises saying how to use the authors' weights.
        progress: show a download progress bar.
        weights: None, a released entry name (``durn.weights.list_weights()``), ``"authors"``
            (after ``durn import-authors``), a path to the authors' ``DuRN_P_no_norm_model.pt`` or a durn
            weights file, or a state dict.
        **kwargs: ``connection`` (paper Fig. 1 wiring).

    Paper (PolyU real noise, 40 crops, RGB): PSNR/SSIM 36.83/0.9636.
    """
    return _hub("durn_p_real", _durn_p_real, pretrained, progress, weights, kwargs)


def durn_u(pretrained=False, progress=True, weights=None, **kwargs):
    """DuRN-U: removes motion blur from RGB images.

    Input: float tensor (N, 3, H, W) or (3, H, W), RGB in [0, 1], any H, W >= 2. The
    network works on multiples of 4; other sizes are mirror-padded at the bottom/right
    and cropped back (instance-norm statistics then include the padding). Output: same
    shape. Encoder to 1/4 resolution, six DuRB-U blocks pairing up-sampling
    (pixel shuffle + dilated conv) with stride-2 down-sampling, the authors' instance
    norm; 12,856,579 parameters.

    Args:
        pretrained: load the network's default released weights (durn.weights.DEFAULTS);
            where none are released, raises saying how to use the authors' weights.
        progress: show a download progress bar.
        weights: None, a released entry name (``durn.weights.list_weights()``), ``"authors"``
            (after ``durn import-authors``), a path to the authors' ``DuRN_U_model.pt`` or a durn
            weights file, or a state dict.
        **kwargs: ``connection`` (paper Fig. 1 wiring).

    Paper (authors' protocol, RGB): GoPro test 29.90/0.9101, Car dataset 29.23/0.8805.
    """
    return _hub("durn_u", _durn_u, pretrained, progress, weights, kwargs)


def durn_us(pretrained=False, progress=True, weights=None, **kwargs):
    """DuRN-US: removes haze from RGB images.

    Input: float tensor (N, 3, H, W) or (3, H, W), RGB in [0, 1], any H, W >= 2 (padded
    to a multiple of 4, at least 12, and cropped back). Output: same shape. Twelve
    DuRB-US blocks pairing up-sampling convs (5x5 to 11x11) with squeeze-excitation and
    stride-2 down-sampling; no normalisation; 9,070,915 parameters.

    Args:
        pretrained: load the network's default released weights (durn.weights.DEFAULTS);
            where none are released, raises saying how to use the authors' weights.
        progress: show a download progress bar.
        weights: None, a released entry name (``durn.weights.list_weights()``), ``"authors"``
            (after ``durn import-authors``), a path to the authors' ``DuRN-US_model.pt`` or a durn
            weights file, or a state dict.
        **kwargs: ``connection`` (paper Fig. 1 wiring).

    Paper (authors' protocol, RGB): RESIDE SOTS indoor 32.12/0.9803, DCPDN TestA 32.60/0.9828.
    """
    return _hub("durn_us", _durn_us, pretrained, progress, weights, kwargs)


def durn_s(pretrained=False, progress=True, weights=None, **kwargs):
    """DuRN-S: removes rain streaks from RGB images.

    Input: float tensor (N, 3, H, W) or (3, H, W), RGB in [0, 1], any H, W >= 2 (padded
    to 16 internally when smaller). Output: same shape. Six DuRB-S blocks pairing large
    dilated convs with squeeze-excitation blocks, BN, reflection padding;
    3,729,923 parameters.

    Args:
        pretrained: load the network's default released weights (durn.weights.DEFAULTS);
            where none are released, raises saying how to use the authors' weights.
        progress: show a download progress bar.
        weights: None, a released entry name (``durn.weights.list_weights()``), ``"authors"``
            (after ``durn import-authors``), a path to the authors' ``DuRN_S_model.pt`` or a durn
            weights file, or a state dict.
        **kwargs: ``connection`` (paper Fig. 1 wiring).

    Paper (authors' protocol, Y of YCrCb): DID-MDN 33.21/0.9251, DDN 31.30/0.9194.
    """
    return _hub("durn_s", _durn_s, pretrained, progress, weights, kwargs)


def durn_s_p(pretrained=False, progress=True, weights=None, **kwargs):
    """DuRN-S-P: removes raindrops (adherent droplets on glass or lens) from images.

    Input: float tensor (N, 3, H, W) or (3, H, W) in [0, 1], any H, W >= 2 (padded to a
    multiple of 4, at least 16, and cropped back). The authors' released weights expect
    **BGR** channel order (``model.channel_order == "BGR"``); the network itself does not
    reorder channels. Output: ``input - tanh(residual)``, same shape. Three attentive
    DuRB-S blocks (dilations 12, 8, 6) then six DuRB-P blocks, BN; 10,176,964 parameters
    (one an unused PReLU weight the checkpoints carry).

    Args:
        pretrained: load the network's default released weights (durn.weights.DEFAULTS);
            where none are released, raises saying how to use the authors' weights.
        progress: show a download progress bar.
        weights: None, a released entry name (``durn.weights.list_weights()``), ``"authors"``
            (after ``durn import-authors``), a path to the authors' ``DuRN_S_P_model.pt`` or a durn
            weights file, or a state dict.
        **kwargs: ``connection`` (paper Fig. 1 wiring).

    Paper (authors' protocol, Y of YCrCb): RainDrop test A 31.24/0.9259, test B 25.32/0.8174.
    """
    return _hub("durn_s_p", _durn_s_p, pretrained, progress, weights, kwargs)
