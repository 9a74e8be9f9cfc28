"""Build gold Docs: exact-text whitespace tokenization, non-overlapping entities, relations."""

import re
from bisect import bisect_left, bisect_right
from typing import Dict, Iterable, List, Optional, Tuple

from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from .report import Reason

UNTYPED = "ENTITY"

Offsets = Tuple[int, int]  # [start, end), in characters or tokens

_NON_SPACE = re.compile(r"\S+")


def whitespace_doc(vocab: Vocab, text: str, cuts: Iterable[int] = ()) -> Doc:
    """Tokenize on whitespace so that doc.text == text, splitting tokens at `cuts`.

    One space after a token is its trailing whitespace; any other whitespace
    (a leading space, a second space, a tab or newline) becomes a whitespace
    token, as spaCy's own tokenizer does.

    vocab (Vocab): The vocab.
    text (str): The source text, kept as it is.
    cuts (Iterable[int]): Character offsets inside tokens to split at, so that a
        mention which is part of a token becomes whole tokens.
    RETURNS (Doc): The Doc.
    """
    words: List[str] = []
    spaces: List[bool] = []
    bounds = [match.span() for match in _NON_SPACE.finditer(text)]
    edges = {offset for span in bounds for offset in span}
    cuts = sorted(set(cuts) - edges)
    pos = 0
    for start, end in bounds:
        _add_gap(text[pos:start], words, spaces)
        inner = cuts[bisect_right(cuts, start) : bisect_left(cuts, end)] if cuts else ()
        points = [start, *inner, end]
        for a, b in zip(points, points[1:]):
            words.append(text[a:b])
            spaces.append(False)
        pos = end
    _add_gap(text[pos:], words, spaces)
    return Doc(vocab, words=words, spaces=spaces)


def _add_gap(gap: str, words: List[str], spaces: List[bool]) -> None:
    if not gap:
        return
    if words and gap.startswith(" "):
        spaces[-1] = True
        gap = gap[1:]
    if gap:
        words.append(gap)
        spaces.append(False)


def overlaps(a: Offsets, b: Offsets) -> bool:
    """Whether two [start, end) intervals share a position."""
    return a[0] < b[1] and b[0] < a[1]


class Placement:
    """Entities and relations of one sentence, as offsets, kept consistent.

    Entities never overlap (doc.ents cannot); a span placed twice must keep its
    label; a relation between the same spans with the same label is stored once.
    The offsets are characters or tokens, as the caller chooses.
    """

    def __init__(self) -> None:
        self.entities: Dict[Offsets, str] = {}
        self.relations: List[Tuple[Offsets, str, Offsets]] = []
        self._seen: set = set()

    def conflict(self, span: Offsets, label: str) -> Optional[str]:
        """Why an entity cannot be placed (a Reason code), or None if it can."""
        if span in self.entities:
            return None if self.entities[span] == label else Reason.LABEL_CONFLICT
        if any(overlaps(span, other) for other in self.entities):
            return Reason.OVERLAP
        return None

    def pair_conflict(
        self, head: Offsets, head_label: str, tail: Offsets, tail_label: str
    ) -> Optional[str]:
        """Why a head/tail pair cannot be placed, or None if it can."""
        if head != tail and overlaps(head, tail):
            return Reason.OVERLAP
        if head == tail and head_label != tail_label:
            return Reason.LABEL_CONFLICT
        return self.conflict(head, head_label) or self.conflict(tail, tail_label)

    def add_entity(self, span: Offsets, label: str) -> Optional[str]:
        """Place an entity; return a Reason code instead if it does not fit."""
        reason = self.conflict(span, label)
        if reason is None:
            self.entities[span] = label
        return reason

    def add_relation(
        self, head: Offsets, head_label: str, label: str, tail: Offsets, tail_label: str
    ) -> Optional[str]:
        """Place a relation and its arguments; return a Reason code instead if it does not fit."""
        reason = self.pair_conflict(head, head_label, tail, tail_label)
        if reason is not None:
            return reason
        if (head, label, tail) in self._seen:
            return Reason.DUPLICATE
        self.entities[head] = head_label
        self.entities[tail] = tail_label
        self._seen.add((head, label, tail))
        self.relations.append((head, label, tail))
        return None

    def apply(self, doc: Doc, chars: bool = False) -> Doc:
        """Write the entities to doc.ents and the relations to doc._.relations.

        doc (Doc): The Doc, whose tokens must have boundaries at every offset.
        chars (bool): Whether the offsets are characters (else tokens).
        RETURNS (Doc): The same Doc.
        """
        spans = {
            offsets: self._span(doc, offsets, label, chars)
            for offsets, label in self.entities.items()
        }
        doc.ents = sorted(spans.values(), key=lambda span: span.start)
        doc._.relations = [
            (spans[head], label, spans[tail]) for head, label, tail in self.relations
        ]
        return doc

    @staticmethod
    def _span(doc: Doc, offsets: Offsets, label: str, chars: bool) -> Span:
        if not chars:
            return Span(doc, offsets[0], offsets[1], label=label)
        span = doc.char_span(offsets[0], offsets[1], label=label, alignment_mode="strict")
        if span is None:  # the caller split the tokens at every offset
            raise AssertionError(f"characters {offsets} are not token boundaries in {doc.text!r}")
        return span
