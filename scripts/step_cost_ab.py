"""Before and after the #31 cuts of a PMEI training step, measured in one run.

    python scripts/step_cost_ab.py [--data corpus/webnlg/train.spacy] [--rounds 16]

The arms share one process and take their steps in turn, round by round (see
spacy_pmei.step_cost): MTL; PMEI with f_t and the table loss written as plain
autograd and masked whole-table passes, as they were before (the reference
implementations below, which give the same values and gradients); and PMEI as
shipped. Each arm is its own pipeline, same seed and batches. Printed: the median
step of each arm, and the medians of the rounds' ratios.
"""
import statistics
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

import numpy
import typer

import spacy_pmei.loss as loss_module
import spacy_pmei.pytorch_pmei as network_module
from spacy_pmei.machine import describe_machine, machine_info
from spacy_pmei.step_cost import build, interleaved_steps


def masked_subject_scores(early_rel: Any, mask: Any) -> Tuple[Any, Any]:
    """f_t before: a masked copy of the table, a max with indices, autograd's backward."""
    import torch

    padded = ~mask[:, None, :, None]
    return early_rel, torch.sigmoid(early_rel.masked_fill(padded, float("-inf")).max(dim=2).values)


def masked_table_bce(ops: Any, rel_logits: Any, lengths: numpy.ndarray, cells: Tuple, scale: float) -> Tuple[float, Any]:
    """The table BCE before: softplus of the whole table, times a pair mask; the gradient masked by a multiply."""
    import torch
    from thinc.api import torch2xp, xp2torch

    x = xp2torch(rel_logits)
    n = x.shape[1]
    valid = torch.arange(n)[None, :] < torch.as_tensor(lengths)[:, None]
    pair_mask = (valid[:, :, None] & valid[:, None, :]).to(x.dtype)
    gold = tuple(torch.as_tensor(c) for c in cells)
    with torch.no_grad():
        loss = float((torch.nn.functional.softplus(x).sum(-1) * pair_mask).sum() - x[gold].sum())
        grad = torch.sigmoid(x)
        grad.mul_(pair_mask.unsqueeze(-1))
        grad[gold] -= 1.0
        if scale != 1.0:
            grad.mul_(scale)
    return loss, torch2xp(grad, ops=ops)


def main(
    data: Path = typer.Option(Path("corpus/webnlg/train.spacy"), "--data", help="A CasRel JSON or .spacy file"),
    rounds: int = typer.Option(16, "--rounds", help="Rounds of one step per arm"),
    batch_size: int = typer.Option(50, "--batch-size"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    import torch

    torch.set_num_threads(1)
    shipped = (network_module.subject_scores, loss_module._table_bce)
    before = (masked_subject_scores, masked_table_bce)
    arms: Dict[str, Tuple[str, Tuple[Callable, Callable]]] = {
        "mtl": ("mtl", shipped),
        "pmei, before": ("pmei", before),
        "pmei, shipped": ("pmei", shipped),
    }
    pipelines = {}
    for name, (variant, _) in arms.items():
        nlp, optimizer, examples = build(variant, data, seed)
        pipelines[name] = (nlp, optimizer)
    batches = [examples[i : i + batch_size] for i in range(0, batch_size * rounds, batch_size)]

    def patch(name: str) -> None:
        network_module.subject_scores, loss_module._table_bce = arms[name][1]

    try:
        times = interleaved_steps(pipelines, batches, before_step=patch)
    finally:
        network_module.subject_scores, loss_module._table_bce = shipped

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(times[a], times[b]))

    typer.echo(f"Machine: {describe_machine(machine_info())}. Data: {data}, batches of {batch_size}, {rounds} rounds.")
    for name in arms:
        typer.echo(f"{name}: {1000 * statistics.median(times[name]):.0f} ms a step, {ratio(name, 'mtl'):.2f}x MTL")
    typer.echo(f"shipped / before (PMEI): {ratio('pmei, shipped', 'pmei, before'):.3f}")


if __name__ == "__main__":
    typer.run(main)
