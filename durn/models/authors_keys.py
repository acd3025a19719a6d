"""The authors' names for the layers of each network: which module prefix of the authors'
checkpoint (``block3.up_conv.conv2d``) becomes which module prefix of durn's network
(``stages.0.2.t1.0``). The tables follow the module structure of ``builders.py``; every
other fact about the authors' layout (the keys used to recognise a file, the inverse
mapping) is derived from them in ``durn.checkpoints``.
"""
from __future__ import annotations

Pairs = list[tuple[str, str]]


def _durb_keys(author: str, project: str, variant: str) -> Pairs:
    pairs = [
        (f"{author}.conv1.conv2d", f"{project}.conv1"),
        (f"{author}.norm1.norm", f"{project}.norm1"),
        (f"{author}.conv2.conv2d", f"{project}.conv2"),
        (f"{author}.norm2.norm", f"{project}.norm2"),
    ]
    if variant == "P":
        pairs += [
            (f"{author}.up_conv.conv2d", f"{project}.t1.0"),
            (f"{author}.up_norm.norm", f"{project}.t1.1"),
            (f"{author}.down_conv.conv2d", f"{project}.t2.0"),
            (f"{author}.down_norm.norm", f"{project}.t2.1"),
        ]
    elif variant == "S":
        pairs += [
            (f"{author}.up_conv.conv2d", f"{project}.t1.0"),
            (f"{author}.up_norm.norm", f"{project}.t1.1"),
            (f"{author}.se", f"{project}.t2.0"),
            (f"{author}.down_conv.conv2d", f"{project}.t2.1"),
            (f"{author}.down_norm.norm", f"{project}.t2.2"),
        ]
    elif variant == "U":
        pairs += [
            (f"{author}.conv_pre.conv2d", f"{project}.t1.0"),
            (f"{author}.norm_pre.norm", f"{project}.t1.1"),
            (f"{author}.up_conv.conv2d", f"{project}.t1.3"),
            (f"{author}.up_norm.norm", f"{project}.t1_post"),
            (f"{author}.down_conv.conv2d", f"{project}.t2"),
            (f"{author}.down_norm.norm", f"{project}.t2_post"),
        ]
    elif variant == "US":
        pairs += [
            (f"{author}.conv_pre.conv2d", f"{project}.t1.0"),
            (f"{author}.up_conv.conv2d", f"{project}.t1.2"),
            (f"{author}.se", f"{project}.t2.0"),
            (f"{author}.down_conv.conv2d", f"{project}.t2.1"),
        ]
    return pairs


def p_family_keys(variant: str) -> Pairs:
    pairs = [
        ("conv1.conv2d", "stem.0"), ("norm1.norm", "stem.1"),
        ("conv2.conv2d", "stem.3"), ("norm2.norm", "stem.4"),
        ("conv3.conv2d", "tail.0"), ("norm3.norm", "tail.1"),
        ("conv4.conv2d", "tail.3"),
    ]
    for i in range(6):
        pairs += _durb_keys(f"block{i + 1}", f"stages.0.{i}", variant)
    return pairs


def durn_u_keys() -> Pairs:
    pairs = [
        ("conv1", "stem.0"), ("norm1.norm", "stem.1"),
        ("conv2", "stem.3"), ("norm2.norm", "stem.4"),
        ("conv3", "entry.0"), ("norm3.norm", "entry.1"),
        ("upconv1.conv2d", "tail.0"), ("upnorm1.norm", "tail.1"),
        ("conv4.conv2d", "tail.3"), ("norm4.norm", "tail.4"),
        ("upconv2.conv2d", "tail.6"), ("upnorm2.norm", "tail.7"),
        ("conv5.conv2d", "tail.9"), ("norm5.norm", "tail.10"),
        ("end_conv", "tail.12"),
    ]
    for i in range(6):
        pairs += _durb_keys(f"rud{i + 1}", f"stages.0.{i}", "U")
    return pairs


def durn_us_keys() -> Pairs:
    pairs = [
        ("conv1", "stem.0"), ("conv2", "stem.2"), ("conv3", "entry.0"),
        ("upconv1.conv2d", "tail.0"), ("conv4.conv2d", "tail.2"),
        ("upconv2.conv2d", "tail.4"), ("conv5.conv2d", "tail.6"),
        ("end_conv", "tail.8"),
    ]
    for i in range(12):
        pairs += _durb_keys(f"rud{i + 1}", f"stages.0.{i}", "US")
    return pairs


def durn_s_p_keys() -> Pairs:
    pairs = [
        ("conv1", "stem.0"), ("norm1.norm", "stem.1"),
        ("conv2", "stem.3"), ("norm2.norm", "stem.4"),
        ("conv3", "stem.6"), ("norm3.norm", "stem.7"),
        ("deconv1.0", "tail.0.0"), ("conv4.conv2d", "tail.1"), ("norm4.norm", "tail.2"),
        ("deconv2.0", "tail.4.0"), ("end_conv.conv2d", "tail.5"),
        ("prelu", "unused_prelu"),
    ]
    for i in range(3):
        pairs += _durb_keys(f"rud{i + 1}", f"stages.0.{i}", "S")
    for i in range(6):
        pairs += _durb_keys(f"rud{i + 4}", f"stages.1.{i}", "P")
    return pairs
