"""The Relation type and its storage on the Doc.

What is stored in ``doc.user_data`` is plain data: one tuple per relation,
``(head_start, head_end, head_label, label, tail_start, tail_end, tail_label,
score)`` in token offsets. It survives ``Doc.to_bytes``, ``DocBin(
store_user_data=True)`` and ``nlp.pipe(n_process=...)``, and the Span objects
are made from it each time ``doc._.relations`` is read.
"""
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Tuple

from spacy.tokens import Doc, Span

from .errors import Errors

EXTENSION = "relations"
# Same key shape as a spaCy extension attribute, so tools that copy "._."
# data along with a Doc (Doc.copy, DocBin) carry it too.
STORAGE_KEY = ("._.", "pmei_relations", None, None)

RelationRecord = Tuple[int, int, str, str, int, int, str, float]


class Relation(NamedTuple):
    """One relational triple: ``(head, label, tail, score)``.

    head (Span): The head (subject) entity.
    label (str): The relation type.
    tail (Span): The tail (object) entity.
    score (float): The model's probability for the triple, 1.0 for gold data.
    """

    head: Span
    label: str
    tail: Span
    score: float = 1.0

    def to_dict(self) -> Dict[str, Any]:
        """Plain, JSON-ready view with character offsets.

        RETURNS (Dict[str, Any]): head/tail text, offsets and labels, the label and score.
        """
        return {
            "head": _span_dict(self.head),
            "label": self.label,
            "tail": _span_dict(self.tail),
            "score": float(self.score),
        }


def _span_dict(span: Span) -> Dict[str, Any]:
    return {
        "text": span.text,
        "start_char": span.start_char,
        "end_char": span.end_char,
        "start": span.start,
        "end": span.end,
        "label": span.label_,
    }


def get_records(doc: Doc) -> List[RelationRecord]:
    """The stored relation tuples of a Doc, as lists (msgpack gives tuples back).

    doc (Doc): The document.
    RETURNS (List[RelationRecord]): One tuple per relation, possibly empty.
    """
    records = doc.user_data.get(STORAGE_KEY)
    if not records:
        return []
    return [
        (int(r[0]), int(r[1]), str(r[2]), str(r[3]), int(r[4]), int(r[5]), str(r[6]), float(r[7]))
        for r in records
    ]


def doc_labels(docs: Iterable[Doc]) -> Dict[str, List[str]]:
    """The entity and relation labels that gold Docs use, sorted.

    docs (Iterable[Doc]): Docs with doc.ents and stored relations.
    RETURNS (Dict[str, List[str]]): {"entities": [...], "relations": [...]}.
    """
    entities = set()
    relations = set()
    for doc in docs:
        entities.update(span.label_ for span in doc.ents)
        relations.update(record[3] for record in get_records(doc))
    return {"entities": sorted(entities), "relations": sorted(relations)}


def set_records(doc: Doc, records: Iterable[RelationRecord]) -> None:
    """Store relation tuples on a Doc, replacing what was there.

    doc (Doc): The document.
    records (Iterable[RelationRecord]): Token-offset tuples, see module docstring.
    """
    doc.user_data[STORAGE_KEY] = [tuple(r) for r in records]


def _get_relations(doc: Doc) -> List[Relation]:
    relations = []
    for hs, he, hl, label, ts, te, tl, score in get_records(doc):
        head = Span(doc, hs, he, label=hl)
        tail = Span(doc, ts, te, label=tl)
        relations.append(Relation(head, label, tail, score))
    return relations


def _set_relations(doc: Doc, value: Optional[Iterable[Any]]) -> None:
    records = []
    for item in value or []:
        if isinstance(item, Relation):
            head, label, tail, score = item
        elif isinstance(item, (tuple, list)) and len(item) in (3, 4):
            head, label, tail = item[:3]
            score = item[3] if len(item) == 4 else 1.0
        else:
            raise ValueError(Errors.E002.format(value=item))
        if not isinstance(label, str) or not label.strip():
            raise ValueError(Errors.E012.format(label=label, kind="relation"))
        for role, span in (("head", head), ("tail", tail)):
            if not isinstance(span, Span) or len(span) == 0:
                raise ValueError(Errors.E013.format(role=role, label=label, span=span))
            if span.doc is not doc:
                raise ValueError(Errors.E003.format(role=role, span=span, label=label))
        records.append(
            (head.start, head.end, head.label_, label, tail.start, tail.end, tail.label_, float(score))
        )
    set_records(doc, records)


def install_extensions() -> None:
    """Install ``Doc._.relations`` once; refuse to replace someone else's."""
    if Doc.has_extension(EXTENSION):
        _default, _method, getter, setter = Doc.get_extension(EXTENSION)
        if getattr(getter, "__qualname__", None) == _get_relations.__qualname__ and getattr(
            getter, "__module__", None
        ) == _get_relations.__module__:
            return
        raise ValueError(Errors.E001)
    Doc.set_extension(EXTENSION, getter=_get_relations, setter=_set_relations)
