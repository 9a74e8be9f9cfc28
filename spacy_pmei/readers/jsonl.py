"""JSONL with character offsets to gold Docs, tokenized by a spaCy pipeline."""

from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc

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


def jsonl_to_docs(
    records: Iterable[Record],
    nlp: Language,
    report: ConversionReport,
    labels: Optional[LabelMap] = None,
) -> List[Doc]:
    """Convert {"text", "entities", "relations"} records to gold Docs.

    Entities are {"start", "end", "label"?, "text"?} (characters, end exclusive;
    label defaults to "ENTITY"; text, if given, must match). Relations are
    {"head", "tail", "label"} with head/tail indices into "entities"; the
    "relations" key may be left out. An entity whose offsets are not token
    boundaries of nlp's tokenizer, or that overlaps an earlier one, is reported
    and left out with its relations.

    records (Iterable[Record]): (index, line, record) items.
    nlp (Language): Its tokenizer (nlp.make_doc) splits the text.
    report (ConversionReport): Updated with counts and problems.
    labels (Optional[LabelMap]): If given, an unknown relation label is fatal.
    RETURNS (List[Doc]): One Doc per record.
    """
    docs = []
    for index, line, record in records:
        place = (report.file, index, line)
        text = get_field(record, "text", str, place, "a string")
        entities = get_field(record, "entities", list, place, "a list of {start, end, label}")
        relations = get_field(
            record, "relations", list, place, "a list of {head, tail, label}", default=[]
        )
        doc = nlp.make_doc(text)
        placement = Placement()
        placed: List[Optional[Offsets]] = []
        failed: Dict[int, str] = {}
        for i, entity in enumerate(entities):
            start, end, label = _parse_entity(entity, i, text, place)
            span = doc.char_span(start, end, alignment_mode="strict")
            reason = (
                Reason.MISALIGNED
                if span is None
                else placement.add_entity((span.start, span.end), label)
            )
            if reason is not None:
                failed[i] = reason
                message = (
                    f"entity {i} {text[start:end]!r} ({start}-{end}): {_ENTITY_MESSAGES[reason]}"
                )
                report.add_problem(index, line, None, reason, message)
            placed.append(None if reason is not None else (span.start, span.end))
        for k, relation in enumerate(relations):
            head, tail, label = _parse_relation(relation, k, len(entities), place)
            check_label(label, labels, place)
            triple = (_entity_text(text, entities[head]), label, _entity_text(text, entities[tail]))
            h, t = placed[head], placed[tail]
            if h is None or t is None:
                lost = head if h is None else tail
                reason = failed[lost]
                message = f"its entity {lost} was left out ({_ENTITY_MESSAGES[reason]})"
            else:
                reason = placement.add_relation(
                    h, placement.entities[h], label, t, placement.entities[t]
                )
                message = "the relation is repeated in this record" if reason else ""
            if reason is not None:
                report.add_problem(index, line, triple, reason, message)
        report.sentences += 1
        report.triples += len(relations)
        report.placed += len(placement.relations)
        docs.append(placement.apply(doc))
    return docs


_ENTITY_MESSAGES = {
    Reason.MISALIGNED: "its offsets are not token boundaries of the tokenizer",
    Reason.OVERLAP: "it overlaps an entity placed before",
    Reason.LABEL_CONFLICT: "the same span has another label already",
}


def _parse_entity(entity: Any, i: int, text: str, place: Place) -> Tuple[int, int, str]:
    name = f"entities[{i}]"
    if not isinstance(entity, dict):
        fail_field(place, name, "an object {start, end, label}", entity)
    start = get_field(entity, "start", int, place, f"an int ({name})")
    end = get_field(entity, "end", int, place, f"an int ({name})")
    label = get_field(entity, "label", str, place, f"a string ({name})", default=UNTYPED)
    check_entity_label(label, f"{name}.label", place)
    if not 0 <= start < end <= len(text):
        fail(
            Errors.E105.format(
                where=where(*place), index=i, start=start, end=end, length=len(text)
            ),
            place,
        )
    given = entity.get("text")
    if given is not None and given != text[start:end]:
        msg = Errors.E106.format(
            where=where(*place), index=i, given=given, start=start, end=end, found=text[start:end]
        )
        fail(msg, place)
    return start, end, label


def _parse_relation(relation: Any, k: int, n_entities: int, place: Place) -> Tuple[int, int, str]:
    name = f"relations[{k}]"
    if not isinstance(relation, dict):
        fail_field(place, name, "an object {head, tail, label}", relation)
    label = get_field(relation, "label", str, place, f"a string ({name})")
    indices = []
    for role in ("head", "tail"):
        value = get_field(relation, role, int, place, f"an entity index ({name})")
        if not 0 <= value < n_entities:
            msg = Errors.E107.format(
                where=where(*place),
                field=f"{name}.{role}",
                value=value,
                size=n_entities,
                what="entities",
            )
            fail(msg, place)
        indices.append(value)
    return indices[0], indices[1], label


def _entity_text(text: str, entity: Dict[str, Any]) -> str:
    return text[entity["start"] : entity["end"]]


def read_jsonl(
    path: Union[str, Path], nlp: Language, rel2id: RelLabels = None, limit: int = 0
) -> Result:
    """Read JSONL with character offsets, tokenized by nlp.

    path (Union[str, Path]): One {"text", "entities", "relations"} object per line.
    nlp (Language): The pipeline whose tokenizer splits the text.
    rel2id (RelLabels): A rel2id.json path or labels; an unknown relation is then fatal.
    limit (int): Read at most this many records; 0 for all.
    RETURNS (Tuple[List[Doc], ConversionReport]): The gold Docs and what happened.
    """
    report = ConversionReport(str(path), "jsonl")
    docs = jsonl_to_docs(read_jsonl_records(path, limit), nlp, report, make_label_map(rel2id))
    return docs, report
