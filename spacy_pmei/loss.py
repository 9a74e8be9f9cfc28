"""The supervised loss terms of eq. 15 and their gradients, computed with Thinc ops."""
import warnings
from typing import Any, Dict, List, Sequence, Tuple

import numpy
from spacy.attrs import ORTH
from spacy.training import Example
from thinc.api import Ops, torch2xp, xp2torch

from .architectures import PMEIBlock, PMEIBlockGrad, PMEIOutput
from .decoding import MISSING, length_runs, tags_from_biluo
from .errors import Warnings
from .relations import get_records

Targets = Tuple[numpy.ndarray, List[Tuple[int, int, int]]]
# The terms of eq. 15, each weighted and averaged over segments as the loss sums them.
LOSS_TERMS = ("final", "early", "kl_e", "kl_r")


def gold_targets(eg: Example, tag_index: Dict[str, int], rel_index: Dict[str, int]) -> Targets:
    """Tag ids per predicted token (-1: unknown) and the (i, j, relation id) anchor cells.

    eg (Example): A predicted doc with its gold reference.
    tag_index (Dict[str, int]): Tag name -> id.
    rel_index (Dict[str, int]): Relation label -> id.
    RETURNS (Targets): The tag ids and the gold cells, in predicted-token offsets.
    """
    tags = tags_from_biluo(eg.get_aligned_ner(), tag_index)
    same_tokens = len(eg.predicted) == len(eg.reference) and bool(
        (eg.predicted.to_array(ORTH) == eg.reference.to_array(ORTH)).all()
    )
    cells = []
    for _, he, _, label, _, te, _, _ in get_records(eg.reference):
        anchors = []
        for ref_last in (he - 1, te - 1):
            if same_tokens:
                anchors.append(ref_last)
            else:
                aligned = eg.alignment.y2x[ref_last]
                anchors.append(int(max(aligned)) if len(aligned) else None)
        if None in anchors:
            warnings.warn(Warnings.W001.format(label=label, head=he - 1, tail=te - 1))
            continue
        cells.append((anchors[0], anchors[1], rel_index[label]))
    return tags, cells


def block_targets(block: PMEIBlock, targets: Sequence[Targets]) -> Tuple[numpy.ndarray, Tuple[numpy.ndarray, ...]]:
    """Gold tags (B x n, -1 where missing or padded) and gold cell indices of a block.

    A gold cell whose two anchors fall in different segments is left out: the
    model never scores that pair.
    """
    n = int(block.lengths.max())
    tags = numpy.full((len(block.segments), n), MISSING, dtype="int32")
    ks, iis, js, rs = [], [], [], []
    for k, (d, s, e) in enumerate(block.segments):
        doc_tags, doc_cells = targets[d]
        tags[k, : e - s] = doc_tags[s:e]
        for i, j, r in doc_cells:
            if s <= i < e and s <= j < e:
                ks.append(k)
                iis.append(i - s)
                js.append(j - s)
                rs.append(r)
    cells = tuple(numpy.asarray(x, dtype="int64") for x in (ks, iis, js, rs))
    return tags, cells


def warn_cross_window(blocks: Sequence[PMEIBlock], targets: Sequence[Targets], max_length: int) -> int:
    """Warn (W002) about gold cells whose head and tail fall in no common window.

    block_targets leaves such cells out, since the model never scores that pair;
    this says so instead of dropping them silently.

    blocks (Sequence[PMEIBlock]): The blocks of one batch.
    targets (Sequence[Targets]): gold_targets() per doc of the batch.
    max_length (int): The component's window, for the message.
    RETURNS (int): How many gold cells no window holds.
    """
    windows: Dict[int, List[Tuple[int, int]]] = {}
    for block in blocks:
        for d, s, e in block.segments:
            windows.setdefault(d, []).append((s, e))
    lost = 0
    for d, (_, cells) in enumerate(targets):
        n = sum(1 for i, j, _ in cells if not any(s <= i < e and s <= j < e for s, e in windows.get(d, [])))
        if n:
            warnings.warn(Warnings.W002.format(n=n, max_length=max_length))
        lost += n
    return lost


def supervised_loss(
    ops: Ops,
    ent_logits: Any,
    rel_logits: Any,
    block: PMEIBlock,
    tags: numpy.ndarray,
    cells: Tuple[numpy.ndarray, ...],
    scale: float = 1.0,
) -> Tuple[float, Any, Any]:
    """Summed softmax cross-entropy over words and sigmoid BCE over every table cell.

    ops (Ops): The model's ops (numpy or cupy arrays alike).
    ent_logits (Floats3d): B x n x T tag logits.
    rel_logits (Floats4d): B x n x n x L relation logits.
    block (PMEIBlock): Gives the segment lengths.
    tags (numpy.ndarray): B x n gold tag ids, -1 to ignore.
    cells (Tuple[numpy.ndarray, ...]): (segment, i, j, relation) of the positive cells.
    scale (float): Factor for both gradients (not the loss), applied in place.
    RETURNS (Tuple[float, Any, Any]): The loss and its gradients for both logits.
    """
    xp = ops.xp
    # Entities: softmax - one-hot at words with a gold tag, zero elsewhere.
    tags_d = ops.asarray(tags, dtype="int32")
    known = tags_d != MISSING
    safe = xp.where(known, tags_d, 0)
    probs = ops.softmax(ent_logits, axis=-1)
    gold_p = xp.take_along_axis(probs, safe[..., None], axis=-1)[..., 0]
    ent_loss = float(-(xp.log(xp.maximum(gold_p, 1e-30)) * known).sum())
    d_ent = probs
    B, n = tags.shape
    flat = d_ent.reshape(B * n, -1)
    flat[xp.arange(B * n), safe.reshape(-1)] -= 1.0
    d_ent *= known[..., None] * scale
    rel_loss, d_rel = _table_bce(ops, rel_logits, block.lengths, cells, scale)
    return ent_loss + rel_loss, d_ent, d_rel


def _table_bce(
    ops: Ops, rel_logits: Any, lengths: numpy.ndarray, cells: Tuple[numpy.ndarray, ...], scale: float
) -> Tuple[float, Any]:
    """BCE summed over the cells of real word pairs (gold cells positive), and its gradient.

    The n x n x L table is the largest array of a training step, so this runs
    in torch (threaded, fused, no copies: the arrays share memory with the
    tensors) rather than in a chain of single-threaded numpy passes: this was
    60% of a training step on WebNLG (216 labels).
    """
    import torch

    x = xp2torch(rel_logits)
    runs = length_runs(lengths)
    gold = tuple(torch.as_tensor(c, device=x.device) for c in cells)
    with torch.no_grad():
        # BCE with target 0 is softplus(x); a gold cell subtracts x once. Only the real
        # word pairs are read, a run of equal lengths at a time (no mask over the table).
        negative = sum(torch.nn.functional.softplus(x[a:b, :n, :n]).sum() for a, b, n in runs)
        loss = float(negative - x[gold].sum())
        grad = torch.sigmoid(x)
        for a, b, n in runs:
            grad[a:b, n:] = 0.0
            grad[a:b, :n, n:] = 0.0
        grad[gold] -= 1.0
        if scale != 1.0:
            grad.mul_(scale)
    return loss, torch2xp(grad, ops=ops)


def eq15_loss(
    ops: Ops,
    outputs: PMEIOutput,
    targets: Sequence[Targets],
    alpha: float,
    beta_e: float,
    beta_r: float,
) -> Tuple[float, Dict[str, float], List[PMEIBlockGrad]]:
    """The loss of eq. 15, its terms and its gradients, averaged over the batch's segments.

    L = L(C_e, C_r) + alpha L(C'_e, C'_r) + beta_e KL_e + beta_r KL_r, where the
    entity term is cross-entropy summed over words and the relation term is
    binary cross-entropy summed over every cell of the n x n x L table.

    ops (Ops): The model's ops.
    outputs (PMEIOutput): The model's output for the batch.
    targets (Sequence[Targets]): gold_targets() per doc of the batch.
    alpha, beta_e, beta_r (float): The weights of eq. 15.
    RETURNS (Tuple[float, Dict[str, float], List[PMEIBlockGrad]]): The loss, its terms
        (LOSS_TERMS, weighted and averaged as the loss sums them) and the gradients per block.
    """
    scale = 1.0 / max(outputs.n_segments, 1)
    total = 0.0
    terms = dict.fromkeys(LOSS_TERMS, 0.0)
    grads = []
    for block in outputs.blocks:
        tags, cells = block_targets(block, targets)
        loss, d_ent, d_rel = supervised_loss(ops, block.ent_logits, block.rel_logits, block, tags, cells, scale=scale)
        total += loss
        terms["final"] += loss
        grad = PMEIBlockGrad(d_ent, d_rel)
        if block.early_ent_logits is not None:
            loss, d_ent, d_rel = supervised_loss(
                ops, block.early_ent_logits, block.early_rel_logits, block, tags, cells, scale=alpha * scale
            )
            total += alpha * loss
            terms["early"] += alpha * loss
            grad.d_early_ent = d_ent
            grad.d_early_rel = d_rel
        if block.kl_e is not None:
            kl_e, kl_r = beta_e * float(block.kl_e), beta_r * float(block.kl_r)
            total += kl_e + kl_r
            terms["kl_e"] += kl_e
            terms["kl_r"] += kl_r
            grad.d_kl_e = beta_e * scale
            grad.d_kl_r = beta_r * scale
        grads.append(grad)
    return total * scale, {k: v * scale for k, v in terms.items()}, grads
