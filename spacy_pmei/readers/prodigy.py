"""Prodigy rel.manual JSONL (db-out) to gold Docs."""

from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from spacy.tokens import Doc
from spacy.vocab import Vocab

from ..errors import Errors
from .gold import UNTYPED, Offsets, Placement
from .loading import (
    LabelMap,
    Record,
    RelLabels,
    check_entity_label,
    check_label,
    fail,
    fail_field,
    get_field,
    make_label_map,
    read_jsonl_records,
)
from .report import ConversionReport, Reason, Result, where

Place = Tuple[str, int, Optional[int]]


def prodigy_to_docs(
    records: Iterable[Record],
    vocab: Vocab,
    report: ConversionReport,
    labels: Optional[LabelMap] = None,
) -> List[Doc]:
    """Convert accepted Prodigy rel.manual records to gold Docs.

    The Doc is built from "tokens" (their "ws" flags, so doc.text == "text").
    Spans are {"token_start", "token_end" (inclusive), "label"?}. A relation's
    arguments are its "head_span"/"child_span" when given, else the span whose
    last token is "head"/"child" (Prodigy's convention), else the span holding
    that token. Records whose "answer" is not "accept" are skipped and counted.

    records (Iterable[Record]): (index, line, record) items.
    vocab (Vocab): The vocab of the Docs.
    report (ConversionReport): Updated with counts and problems.
    labels (Optional[LabelMap]): If given, an unknown relation label is fatal.
    RETURNS (List[Doc]): One Doc per accepted record.
    """
    docs = []
    for index, line, record in records:
        if record.get("answer") != "accept":
            report.skipped_records += 1
            continue
        place = (report.file, index, line)
        doc = _make_doc(vocab, record, place)
        placement = Placement()
        for i, span in enumerate(
            get_field(record, "spans", list, place, "a list of spans", default=[])
        ):
            offsets, label = _parse_span(span, f"spans[{i}]", len(doc), place)
            reason = placement.add_entity(offsets, label)
            if reason is not None:
                message = f"span {i} {doc[offsets[0]:offsets[1]].text!r}: {_MESSAGES[reason]}"
                report.add_problem(index, line, None, reason, message)
        relations = get_field(record, "relations", list, place, "a list of relations", default=[])
        for k, relation in enumerate(relations):
            name = f"relations[{k}]"
            if not isinstance(relation, dict):
                fail_field(place, name, "an object {head, child, label}", relation)
            label = get_field(relation, "label", str, place, f"a string ({name})")
            check_label(label, labels, place)
            head = _argument(relation, "head", name, doc, placement, place)
            tail = _argument(relation, "child", name, doc, placement, place)
            triple = (_text(doc, head[0]), label, _text(doc, tail[0]))
            reason = _add_relation(placement, head, label, tail)
            if reason is not None:
                report.add_problem(index, line, triple, reason, _MESSAGES[reason])
        report.sentences += 1
        report.triples += len(relations)
        report.placed += len(placement.relations)
        docs.append(placement.apply(doc))
    return docs


def _make_doc(vocab: Vocab, record: Dict[str, Any], place: Place) -> Doc:
    tokens = get_field(record, "tokens", list, place, "a list of {text, ws} tokens")
    words, spaces = [], []
    for i, token in enumerate(tokens):
        if not isinstance(token, dict):
            fail_field(place, f"tokens[{i}]", "an object {text, ws}", token)
        words.append(get_field(token, "text", str, place, f"a string (tokens[{i}])"))
        spaces.append(
            bool(get_field(token, "ws", bool, place, f"a bool (tokens[{i}])", default=False))
        )
    doc = Doc(vocab, words=words, spaces=spaces)
    text = record.get("text")
    if isinstance(text, str) and doc.text != text:
        fail(Errors.E108.format(where=where(*place), tokens=doc.text, text=text), place)
    return doc


def _parse_span(span: Any, name: str, n_tokens: int, place: Place) -> Tuple[Offsets, str]:
    if not isinstance(span, dict):
        fail_field(place, name, "an object {token_start, token_end, label}", span)
    start = get_field(span, "token_start", int, place, f"a token index ({name})")
    end = get_field(span, "token_end", int, place, f"a token index ({name})")
    if not 0 <= start <= end < n_tokens:
        msg = Errors.E107.format(
            where=where(*place), field=name, value=[start, end], size=n_tokens, what="tokens"
        )
        fail(msg, place)
    label = get_field(span, "label", str, place, f"a string ({name})", default=None) or UNTYPED
    check_entity_label(label, f"{name}.label", place)
    return (start, end + 1), label


def _argument(
    relation: Dict[str, Any], role: str, name: str, doc: Doc, placement: Placement, place: Place
) -> Tuple[Offsets, str]:
    span = relation.get(f"{role}_span")
    if isinstance(span, dict) and "token_start" in span and "token_end" in span:
        offsets, label = _parse_span(span, f"{name}.{role}_span", len(doc), place)
        return offsets, placement.entities.get(offsets, label)
    token = get_field(relation, role, int, place, f"a token index ({name})")
    if not 0 <= token < len(doc):
        msg = Errors.E107.format(
            where=where(*place), field=f"{name}.{role}", value=token, size=len(doc), what="tokens"
        )
        fail(msg, place)
    spans = sorted(placement.entities, key=lambda s: (s[1] - 1 != token, s))
    for offsets in spans:
        if offsets[0] <= token < offsets[1]:
            return offsets, placement.entities[offsets]
    return (token, token + 1), ""


def _text(doc: Doc, offsets: Offsets) -> str:
    return doc[offsets[0] : offsets[1]].text


def _add_relation(
    placement: Placement, head: Tuple[Offsets, str], label: str, tail: Tuple[Offsets, str]
) -> Optional[str]:
    if not head[1] or not tail[1]:
        return Reason.NO_ENTITY
    return placement.add_relation(head[0], head[1], label, tail[0], tail[1])


_MESSAGES = {
    Reason.OVERLAP: "an argument overlaps an entity placed before, or each other",
    Reason.LABEL_CONFLICT: "an argument span is placed already with another label",
    Reason.DUPLICATE: "the relation is repeated in this record",
    Reason.NO_ENTITY: "an argument token is in no span (relation arguments must be entities)",
}


def read_prodigy(
    path: Union[str, Path], vocab: Vocab, rel2id: RelLabels = None, limit: int = 0
) -> Result:
    """Read a Prodigy rel.manual JSONL export (accepted answers only).

    path (Union[str, Path]): The prodigy db-out file.
    vocab (Vocab): The vocab of the Docs.
    rel2id (RelLabels): A rel2id.json path or labels; an unknown relation is then fatal.
    limit (int): Read at most this many records (of any answer); 0 for all.
    RETURNS (Tuple[List[Doc], ConversionReport]): The gold Docs and what happened.
    """
    report = ConversionReport(str(path), "prodigy")
    docs = prodigy_to_docs(read_jsonl_records(path, limit), vocab, report, make_label_map(rel2id))
    return docs, report
