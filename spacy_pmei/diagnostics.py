"""Looking inside a PMEI network without changing it: what the accuracy tools measure.

- early_as_final: decode the early heads (y'_e, y'_r) as if they were the final ones;
- blank_early: the final heads with the early predictions blanked;
- MapStats / map_stats: how each stochastic map's posterior sits against its prior;
- gradient_stats: the gradient's norm over a model's PyTorch parameters (for the
  component's update observers, PMEIRelations.add_update_observer).
The per-term losses of eq. 15 are the component's get_loss_terms. Everything here
goes through the network's own switch (PMEINetwork.set_diagnostic) or torch's
forward hooks, and is undone on leaving.
"""
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Tuple

from thinc.api import Model


@contextmanager
def _diagnostic(network: Any, name: str) -> Iterator[None]:
    network.set_diagnostic(name)
    try:
        yield
    finally:
        network.set_diagnostic(None)


def early_as_final(network: Any) -> Any:
    """Within: the network returns its early logits (y'_e, y'_r) in place of the final ones.

    network (PMEINetwork): The network (architectures.get_network of the component's model).
    """
    return _diagnostic(network, "early_as_final")


def blank_early(network: Any) -> Any:
    """Within: the stochastic maps see blank early predictions (all O with certainty, no relation).

    network (PMEINetwork): The network.
    """
    return _diagnostic(network, "blank_early")


class MapStats:
    """Gathers, per stochastic map, how its posterior sits against its prior, until removed.

    Per map ("e", "r"), read() gives "kl_per_word" (KL summed over dimensions, averaged
    over real words), "prior_var_min", "prior_var_tiny" (the share of the prior's
    variances below 1e-6, where a small move of the posterior's mean costs
    (mu - prior_mu)^2 / var in the KL) and "quad_max" (the largest such
    (mu - prior_mu)^2 / prior_var over real words and dimensions). Measured from the
    inputs the maps get, whether the network predicts with the mean or with a sample;
    deterministic maps (PMEI w/o SM) are left out.

    network (PMEINetwork): The network.
    training_only (bool): Count only forward passes in training mode (not the dev
        evaluations between updates).
    """

    def __init__(self, network: Any, training_only: bool = False) -> None:
        self.training_only = training_only
        self.totals: Dict[str, Dict[str, float]] = {}
        self.hooks = [
            sm.register_forward_hook(self._gather(name))
            for name, sm in (("e", network.map_e), ("r", network.map_r))
            if sm is not None and sm.stochastic
        ]

    def _gather(self, name: str) -> Any:
        import torch

        from .pytorch_pmei import gaussian_kl

        def hook(module: Any, args: tuple, result: Any) -> None:
            if self.training_only and not module.training:
                return
            h, y, mask = args
            with torch.no_grad():
                mu, var, prior_mu, prior_var = module.gaussians(h, y)
                kl = gaussian_kl(mu, var, prior_mu, prior_var).sum(-1)[mask]
                quad = ((mu - prior_mu) ** 2 / prior_var)[mask]
                prior_var = prior_var[mask]
            t = self.totals.setdefault(
                name, {"kl": 0.0, "words": 0, "min": float("inf"), "tiny": 0, "n": 0, "quad": 0.0}
            )
            t["quad"] = max(t["quad"], float(quad.max())) if quad.numel() else t["quad"]
            t["kl"] += float(kl.sum())
            t["words"] += int(kl.numel())
            t["min"] = min(t["min"], float(prior_var.min())) if prior_var.numel() else t["min"]
            t["tiny"] += int((prior_var < 1e-6).sum())
            t["n"] += int(prior_var.numel())

        return hook

    def read(self, reset: bool = True) -> Dict[str, Dict[str, float]]:
        """RETURNS (Dict[str, Dict[str, float]]): The figures per map since the last reset."""
        found = {
            name: {
                "kl_per_word": round(t["kl"] / max(t["words"], 1), 2),
                "prior_var_min": float(f"{t['min']:.3g}"),
                "prior_var_tiny": round(t["tiny"] / max(t["n"], 1), 6),
                "quad_max": float(f"{t['quad']:.3g}"),
            }
            for name, t in self.totals.items()
        }
        if reset:
            self.totals = {}
        return found

    def remove(self) -> None:
        """Stop gathering."""
        for hook in self.hooks:
            hook.remove()
        self.hooks = []


@contextmanager
def map_stats(network: Any) -> Iterator[Dict[str, Dict[str, float]]]:
    """Within: gather MapStats; yields a dict that is filled on exit.

    network (PMEINetwork): The network.
    """
    stats = MapStats(network)
    found: Dict[str, Dict[str, float]] = {}
    try:
        yield found
    finally:
        stats.remove()
        found.update(stats.read())


def gradient_stats(model: Model) -> Tuple[float, List[Any]]:
    """The norm of the gradient over every PyTorch parameter inside a Thinc model.

    model (Model): E.g. the component's model (its network and, with its own
        encoder, the BiLSTM).
    RETURNS (Tuple[float, List[Any]]): The global norm, and [name, norm] of the
        parameter whose gradient is largest ([None, 0.0] when none has one).
    """
    import torch

    squares, largest = 0.0, (None, 0.0)
    for node in model.walk():
        for shim in node.shims:
            module: Optional[Any] = getattr(shim, "_model", None)
            if isinstance(module, torch.nn.Module):
                for name, param in module.named_parameters():
                    if param.grad is not None:
                        norm = float(param.grad.norm())
                        squares += norm * norm
                        largest = max(largest, (name, norm), key=lambda kv: kv[1])
    return squares**0.5, list(largest)


def update_record(model: Model, examples: List[Any], loss: float, terms: Dict[str, float]) -> Dict[str, Any]:
    """What an update observer of the component gets (PMEIRelations.add_update_observer).

    model (Model): The component's model, after the backward pass.
    examples (List[Example]): The update's batch.
    loss (float): The loss of eq. 15.
    terms (Dict[str, float]): Its terms, as get_loss_terms gives them.
    RETURNS (Dict[str, Any]): docs, max_len, loss, the terms, grad_norm and grad_max.
    """
    grad_norm, grad_max = gradient_stats(model)
    return {
        "docs": len(examples),
        "max_len": max((len(eg.reference) for eg in examples), default=0),
        "loss": float(loss),
        **terms,
        "grad_norm": grad_norm,
        "grad_max": grad_max,
    }
