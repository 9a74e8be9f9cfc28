"""An optimizer view that scales one component's learning rate (learn_rate_scale)."""
from typing import Any

from thinc.api import Optimizer


class ScaledLearnRate:
    """An optimizer's view that applies its updates at lr_scale times its own rate.

    The optimizer's state (Adam's moments, step counts, averages, schedules) stays
    its own: updates through the view are the optimizer's updates, keyed as usual.
    """

    def __init__(self, optimizer: Optimizer, lr_scale: float) -> None:
        self.optimizer = optimizer
        self.lr_scale = lr_scale

    def __call__(self, key: Any, weights: Any, gradient: Any, *, lr_scale: float = 1.0) -> Any:
        return self.optimizer(key, weights, gradient, lr_scale=lr_scale * self.lr_scale)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.optimizer, name)
