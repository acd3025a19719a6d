"""Training DuRNs: the authors' six recipes (:mod:`durn.train.presets`), the loop
(:func:`train`), exact resume and DistributedDataParallel under torchrun.

    from durn.train import train
    result = train(preset="durn_p_gaussian", data="photos/", degrade="gaussian:30,50,70",
                   out="runs/p", steps=2000, batch_size=16)
    model = durn.get_model("durn_p", weights=result.best or result.last)
"""
from .config import TrainConfig, make_config
from .presets import PRESETS, Preset, Schedule, Stage, get_preset, plan


def train(config=None, /, **settings):
    """Train a DuRN; see :func:`durn.train.loop.train`."""
    from .loop import train as _train

    return _train(config, **settings)


__all__ = ["PRESETS", "Preset", "Schedule", "Stage", "TrainConfig", "get_preset", "make_config", "plan", "train"]
