"""BIOES tags <-> spans, windows over long documents, and table cells -> triples."""
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc

# (start, end, label) in token offsets, end exclusive.
SpanTuple = Tuple[int, int, str]
# (doc index, first token, end token) of one window of a document.
Segment = Tuple[int, int, int]

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
