"""How a component's update applies: its learning-rate scale and its global-norm clipping."""
from typing import Any, List

from thinc.api import Model, Optimizer


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


def clip_global_norm(model: Model, max_norm: float) -> float:
    """Scale every gradient of a model, in place, so that their global norm is at most max_norm.

    Both kinds of weights count: Thinc parameters (node.get_grad) and those of PyTorch
    modules inside (their .grad), as one vector; this is the paper's clipping ("gradient
    norm clipped at 5"), where Thinc's optimizer clips each tensor on its own.

    model (Model): The model whose gradients the next finish_update applies.
    max_norm (float): The largest global norm.
    RETURNS (float): The global norm before clipping.
    """
    import torch

    grads: List[Any] = []
    for node in model.walk():
        grads.extend(node.get_grad(name) for name in node.param_names if node.has_grad(name))
        for shim in node.shims:
            module = getattr(shim, "_model", None)
            if isinstance(module, torch.nn.Module):
                grads.extend(p.grad for p in module.parameters() if p.grad is not None)
    norm = sum(float((g * g).sum()) for g in grads) ** 0.5
    if norm > max_norm:
        factor = max_norm / (norm + 1e-6)
        for g in grads:
            if isinstance(g, torch.Tensor):
                g.mul_(factor)
            else:
                g *= factor
    return norm
