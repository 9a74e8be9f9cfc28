"""BIOES tags <-> spans, windows over long documents, and table cells -> triples."""
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc

# (start, end, label) in token offsets, end exclusive.
SpanTuple = Tuple[int, int, str]
# (doc index, first token, end token) of one window of a document.
Segment = Tuple[int, int, int]

# A Doc's predictions: entity spans, and triples as stored records
# (head start, head end, head label, relation, tail start, tail end, tail label, score).
DocPrediction = Tuple[List[SpanTuple], List[tuple]]

MISSING = -1


def make_tag_names(entity_labels: Sequence[str]) -> List[str]:
    """The tag inventory: O, then B/I/E/S for each entity label in order.

    entity_labels (Sequence[str]): The entity labels.
    RETURNS (List[str]): Tag names; index 0 is "O".
    """
    return ["O"] + [f"{p}-{label}" for label in entity_labels for p in "BIES"]


def tags_from_biluo(biluo: Sequence[Optional[str]], tag_index: Dict[str, int]) -> numpy.ndarray:
    """Turn spaCy's aligned BILUO tags into tag ids; missing or unaligned tokens get -1.

    biluo (Sequence[Optional[str]]): From Example.get_aligned_ner().
    tag_index (Dict[str, int]): Tag name -> id (see make_tag_names).
    RETURNS (numpy.ndarray): int32 tag ids, one per predicted token.
    """
    out = numpy.full((len(biluo),), MISSING, dtype="int32")
    for i, tag in enumerate(biluo):
        if tag is None or tag == "-" or tag == "":
            continue
        if tag == "O":
            out[i] = 0
            continue
        prefix, label = tag.split("-", 1)
        prefix = {"L": "E", "U": "S"}.get(prefix, prefix)
        out[i] = tag_index.get(f"{prefix}-{label}", MISSING)
    return out


def spans_from_tags(tag_ids: Iterable[int], tag_names: Sequence[str]) -> List[SpanTuple]:
    """Decode BIOES tag ids into spans, repairing invalid sequences.

    Repair rule: a span starts at B or S, and also at an I or E that has no open
    span of its label (so no tagged word is lost); it ends at E or S, or just
    before an O, B, S or a change of label. Every non-O word ends up in exactly
    one span.

    tag_ids (Iterable[int]): Tag ids for consecutive words.
    tag_names (Sequence[str]): Id -> name, as from make_tag_names.
    RETURNS (List[SpanTuple]): (start, end, label), end exclusive.
    """
    spans: List[SpanTuple] = []
    start: Optional[int] = None
    label = ""
    for i, tag_id in enumerate(tag_ids):
        name = tag_names[int(tag_id)]
        if name == "O":
            if start is not None:
                spans.append((start, i, label))
                start = None
            continue
        prefix, tag_label = name.split("-", 1)
        if start is not None and (prefix in ("B", "S") or tag_label != label):
            spans.append((start, i, label))
            start = None
        if start is None:
            start, label = i, tag_label
        if prefix in ("E", "S"):
            spans.append((start, i + 1, label))
            start = None
    if start is not None:
        spans.append((start, i + 1, label))
    return spans


def get_segments(docs: Sequence[Doc], max_length: int) -> List[Segment]:
    """Cut documents into the windows that the pair tables are built over.

    A document with sentence boundaries is cut by sentence; a sentence (or a
    document without boundaries) longer than max_length is cut into windows of
    max_length words. Empty documents have no segment. Pairs of words in
    different segments are never scored, so memory is linear in the length of
    a document.

    docs (Sequence[Doc]): The batch.
    max_length (int): The most words in a segment.
    RETURNS (List[Segment]): (doc index, start, end) in document order.
    """
    segments: List[Segment] = []
    for d, doc in enumerate(docs):
        if len(doc) == 0:
            continue
        if doc.has_annotation("SENT_START"):
            bounds = [(sent.start, sent.end) for sent in doc.sents]
        else:
            bounds = [(0, len(doc))]
        for start, end in bounds:
            for s in range(start, end, max_length):
                segments.append((d, s, min(end, s + max_length)))
    return segments


# What one more forward block costs (a tok2vec call, the torch call, Python
# around them), in pair cells. Tried on 2 CPU cores with the bilstm_glove
# config, batches of 50 sentences: 512 to 16,384 all beat one block a batch by
# 2x to 4x on WebNLG; 4,096 was the best of them on WebNLG and the NYT sample.
BLOCK_OVERHEAD_CELLS = 4096
MAX_BLOCK_SEGMENTS = 256


def length_runs(lengths: Sequence[int]) -> List[Tuple[int, int, int]]:
    """(start, end, length) of each run of consecutive segments of a block with one length.

    make_blocks sorts a block's segments by length, so a block has few runs; the
    n x n x L tables are then read over their real cells a run at a time, without a
    mask over the whole table.
    """
    runs: List[Tuple[int, int, int]] = []
    for k, length in enumerate(int(x) for x in lengths):
        if runs and runs[-1][2] == length:
            runs[-1] = (runs[-1][0], k + 1, length)
        else:
            runs.append((k, k + 1, length))
    return runs


def make_blocks(segments: Sequence[Segment], max_cells: int) -> List[List[int]]:
    """Group segments into padded blocks, longest first, with at most max_cells pair cells.

    The segments are sorted by length and cut into runs that minimise the
    padded cells computed (block size x n_max x n_max, summed over blocks)
    plus BLOCK_OVERHEAD_CELLS per block, by dynamic programming. One block for a
    whole batch pads every sentence to the longest: on WebNLG only 25% of the
    cells were real words, and a training step took 3x longer. The cell budget
    bounds the size of the n x n tables of one forward pass, however many words
    the batch has; a segment longer than the budget allows is a block alone.

    segments (Sequence[Segment]): From get_segments.
    max_cells (int): Budget of (block size) x n_max x n_max.
    RETURNS (List[List[int]]): Indices into segments, one list per block.
    """
    order = sorted(range(len(segments)), key=lambda k: segments[k][1] - segments[k][2])
    N = len(order)
    if N == 0:
        return []
    sq = numpy.asarray([(segments[k][2] - segments[k][1]) ** 2 for k in order], dtype="float64")
    # best[j]: least cost of the first j segments; start[j]: where its last block starts.
    best = numpy.zeros(N + 1)
    start = numpy.zeros(N + 1, dtype="int64")
    for j in range(1, N + 1):
        # A block order[i:j] is padded to sq[i], the longest of its segments.
        lo = max(0, j - MAX_BLOCK_SEGMENTS)
        i = numpy.arange(lo, j)
        size = j - i
        cost = best[lo:j] + BLOCK_OVERHEAD_CELLS + size * sq[lo:j]
        cost[(size > 1) & (size * sq[lo:j] > max_cells)] = numpy.inf
        k = int(numpy.argmin(cost))
        best[j] = cost[k]
        start[j] = lo + k
    blocks: List[List[int]] = []
    j = N
    while j > 0:
        blocks.append(order[start[j] : j])
        j = start[j]
    blocks.reverse()
    return blocks


def link_triples(
    ents: Sequence[SpanTuple],
    cells: Iterable[Tuple[int, int, int, float]],
    rel_labels: Sequence[str],
    fallback_labels: Optional[Sequence[str]],
) -> Tuple[List[Tuple[SpanTuple, str, SpanTuple, float]], List[SpanTuple]]:
    """Turn scored table cells into triples over entity spans.

    head = the entity span ending at word i, tail = the one ending at word j.
    Where no entity ends at an anchor word and fallback_labels is given, the
    one-word span is used, labelled with fallback_labels[word]; such spans are
    returned too, so the caller can add them to doc.ents. Without fallback,
    the cell is dropped.

    ents (Sequence[SpanTuple]): Predicted entity spans of the document.
    cells (Iterable[Tuple[int, int, int, float]]): (i, j, relation id, score), doc offsets.
    rel_labels (Sequence[str]): Relation id -> label.
    fallback_labels (Optional[Sequence[str]]): Entity label per word, or None for no fallback.
    RETURNS (Tuple[list, list]): The triples and the fallback spans made.
    """
    by_end = {end - 1: (start, end, label) for start, end, label in ents}
    made: Dict[int, SpanTuple] = {}
    triples = []
    for i, j, r, score in cells:
        args = []
        for anchor in (i, j):
            span = by_end.get(anchor) or made.get(anchor)
            if span is None and fallback_labels is not None:
                span = made[anchor] = (anchor, anchor + 1, fallback_labels[anchor])
            args.append(span)
        if args[0] is None or args[1] is None:
            continue
        triples.append((args[0], rel_labels[r], args[1], score))
    return triples, list(made.values())


class BlockCells(NamedTuple):
    """What decoding keeps of one predicted block: no n x n x L table, only its hits."""

    segments: List[Segment]
    ent_logits: Any  # B x n x T, on the model's device
    # The cells at or above the threshold, on the host: (segment, i, j, relation, probability).
    hits: Tuple[numpy.ndarray, ...]


def threshold_cells(ops: Any, block: Any, min_logit: float) -> BlockCells:
    """Keep a block's tag logits and its table cells whose logit is at least min_logit.

    ops (Ops): The model's ops (numpy or cupy arrays alike).
    block (PMEIBlock): A block of the model's output (segments, lengths, logits).
    min_logit (float): The threshold as a logit, log(t / (1 - t)).
    RETURNS (BlockCells): The block's segments, tag logits and hits.
    """
    xp = ops.xp
    rel = block.rel_logits
    n = rel.shape[1]
    lengths = ops.asarray(block.lengths)
    valid = xp.arange(n)[None, :] < lengths[:, None]
    hit = (rel >= min_logit) & (valid[:, :, None, None] & valid[:, None, :, None])
    k, i, j, r = xp.nonzero(hit)
    probs = ops.sigmoid(rel[k, i, j, r])
    return BlockCells(block.segments, block.ent_logits, tuple(ops.to_numpy(a) for a in (k, i, j, r, probs)))


def decode_blocks(
    ops: Any,
    docs: Sequence[Doc],
    blocks: Sequence[BlockCells],
    entity_labels: Sequence[str],
    relation_labels: Sequence[str],
    anchor_fallback: bool,
) -> List[DocPrediction]:
    """Entity spans per window from the tags, then triples linked from the hits, per doc.

    ops (Ops): The model's ops.
    docs (Sequence[Doc]): The documents the blocks were made from.
    blocks (Sequence[BlockCells]): threshold_cells of every block.
    entity_labels (Sequence[str]): The entity labels, in the model's order.
    relation_labels (Sequence[str]): The relation labels, in the model's order.
    anchor_fallback (bool): Link a hit with no entity ending at its anchor word to
        that word alone, labelled with its most likely entity label (else drop it).
    RETURNS (List[DocPrediction]): Per doc, entity spans and relation records.
    """
    tag_names = make_tag_names(entity_labels)
    doc_tags = [numpy.zeros((len(doc),), dtype="int32") for doc in docs]
    doc_fallback = [numpy.zeros((len(doc),), dtype="int32") for doc in docs]
    doc_cells: List[List[Tuple[int, int, int, float]]] = [[] for _ in docs]
    segments_of: List[List[Tuple[int, int]]] = [[] for _ in docs]
    for block in blocks:
        tags = ops.to_numpy(block.ent_logits.argmax(axis=-1))
        # Most likely entity label per word, for one-word fallback spans.
        begin = block.ent_logits[..., 1:].reshape(*block.ent_logits.shape[:2], -1, 4)
        fallback = ops.to_numpy(begin.max(axis=-1).argmax(axis=-1))
        k, i, j, r, scores = block.hits
        for idx, (d, s, e) in enumerate(block.segments):
            doc_tags[d][s:e] = tags[idx, : e - s]
            doc_fallback[d][s:e] = fallback[idx, : e - s]
            segments_of[d].append((s, e))
        for kk, ii, jj, rr, sc in zip(k.tolist(), i.tolist(), j.tolist(), r.tolist(), scores.tolist()):
            d, s, _ = block.segments[kk]
            doc_cells[d].append((ii + s, jj + s, rr, sc))
    predictions: List[DocPrediction] = []
    for d in range(len(docs)):
        ents: List[SpanTuple] = []
        for s, e in sorted(segments_of[d]):
            ents.extend((a + s, b + s, lab) for a, b, lab in spans_from_tags(doc_tags[d][s:e], tag_names))
        labels_per_word = None
        if anchor_fallback:
            labels_per_word = [entity_labels[x] for x in doc_fallback[d].tolist()]
        triples, made = link_triples(ents, sorted(doc_cells[d]), relation_labels, labels_per_word)
        records = [
            (h[0], h[1], h[2], label, tl[0], tl[1], tl[2], float(score)) for h, label, tl, score in triples
        ]
        predictions.append((ents + made, records))
    return predictions
