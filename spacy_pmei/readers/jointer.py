"""JointER token-span JSON to gold Docs."""

from pathlib import Path
from typing import Any, Iterable, List, Optional, Tuple, Union

from spacy.tokens import Doc
from spacy.vocab import Vocab

from ..errors import Errors
from .gold import UNTYPED, Placement
from .loading import (
    LabelMap,
    Record,
    RelLabels,
    check_label,
    check_type,
    fail,
    fail_field,
    get_field,
    make_label_map,
    read_json_records,
)
from .report import ConversionError, ConversionReport, Reason, Result, where

NO_TYPE = "None-label"  # JointER's type for untyped WebNLG entities

_DETAIL = "[s_start, s_end, s_type, relation, o_start, o_end, o_type]"
_DETAIL_TYPES = (int, int, str, str, int, int, str)


def jointer_to_docs(
    records: Iterable[Record],
    vocab: Vocab,
    report: ConversionReport,
    labels: Optional[LabelMap] = None,
) -> List[Doc]:
    """Convert JointER records to gold Docs; POS tags become token.tag_.

    The spans of "spo_details" (end exclusive) are used; "spo_list" is not read.

    records (Iterable[Record]): (index, line, {"tokens", "spo_details", "pos_tags"?}) items.
    vocab (Vocab): The vocab of the Docs.
    report (ConversionReport): Updated with counts and problems.
    labels (Optional[LabelMap]): If given, an unknown relation label is fatal.
    RETURNS (List[Doc]): One Doc per record, tokens joined by single spaces.
    """
    docs = []
    for index, line, record in records:
        place = (report.file, index, line)
        tokens = get_field(record, "tokens", list, place, "a list of tokens")
        if not tokens or not all(isinstance(t, str) and t and not t.isspace() for t in tokens):
            fail_field(place, "tokens", "a non-empty list of non-empty strings", tokens)
        tags = _get_tags(record, len(tokens), place, required=False)
        details = get_field(record, "spo_details", list, place, f"a list of {_DETAIL}")
        spaces = [True] * (len(tokens) - 1) + [False]
        doc = Doc(vocab, words=tokens, spaces=spaces, tags=tags)
        placement = Placement()
        for k, item in enumerate(details):
            s_start, s_end, s_type, label, o_start, o_end, o_type = _parse_detail(
                item, k, len(tokens), place
            )
            check_label(label, labels, place)
            triple = (" ".join(tokens[s_start:s_end]), label, " ".join(tokens[o_start:o_end]))
            head, tail = (s_start, s_end), (o_start, o_end)
            reason = placement.add_relation(head, _type(s_type), label, tail, _type(o_type))
            if reason is not None:
                report.add_problem(index, line, triple, reason, _MESSAGES[reason])
        report.sentences += 1
        report.triples += len(details)
        report.placed += len(placement.relations)
        docs.append(placement.apply(doc))
    return docs


def _get_tags(
    record: Record, n_tokens: int, place: Tuple[str, int, Optional[int]], required: bool
) -> Optional[List[str]]:
    """A record's "pos_tags": one non-empty string per token (None where it may be absent)."""
    if not required and "pos_tags" not in record:
        return None
    expected = f"{n_tokens} non-empty strings, one per token"
    tags = get_field(record, "pos_tags", list, place, expected)
    if len(tags) != n_tokens or not all(isinstance(t, str) and t for t in tags):
        fail_field(place, "pos_tags", expected, tags)
    return tags


def _type(label: str) -> str:
    return UNTYPED if label in (NO_TYPE, "") else label


def _parse_detail(
    item: Any, k: int, n_tokens: int, place: Tuple[str, int, Optional[int]]
) -> Tuple[Any, ...]:
    name = f"spo_details[{k}]"
    if not (
        isinstance(item, list) and len(item) == 7 and all(map(check_type, item, _DETAIL_TYPES))
    ):
        fail_field(place, name, _DETAIL, item)
    for start, end in ((item[0], item[1]), (item[4], item[5])):
        if not 0 <= start < end <= n_tokens:
            msg = Errors.E107.format(
                where=where(*place), field=name, value=[start, end], size=n_tokens, what="tokens"
            )
            fail(msg, place)
    return tuple(item)


_MESSAGES = {
    Reason.OVERLAP: "the subject or object overlaps an entity placed before, or each other",
    Reason.LABEL_CONFLICT: "the subject or object span is placed already with another type",
    Reason.DUPLICATE: "the triple is repeated in this sentence",
}


def read_jointer(
    path: Union[str, Path], vocab: Vocab, rel2id: RelLabels = None, limit: int = 0
) -> Result:
    """Read a JointER JSON file (tokens, spo_details token spans, pos_tags).

    path (Union[str, Path]): A JSON array of records.
    vocab (Vocab): The vocab of the Docs.
    rel2id (RelLabels): A rel2id.json path or labels; an unknown relation is then fatal.
    limit (int): Read at most this many records; 0 for all.
    RETURNS (Tuple[List[Doc], ConversionReport]): The gold Docs and what happened.
    """
    report = ConversionReport(str(path), "jointer")
    docs = jointer_to_docs(read_json_records(path, limit), vocab, report, make_label_map(rel2id))
    return docs, report


def add_jointer_tags(docs: List[Doc], path: Union[str, Path], limit: int = 0) -> List[Doc]:
    """Set token.tag_ from the "pos_tags" of a JointER file of the same sentences.

    JointER's copy of WebNLG carries PTB tags; the CasRel copy, whose gold the other
    WebNLG rows use, has none. Record i must have the tokens of docs[i] exactly:
    anything else raises a coded ConversionError naming the record, and no tag is set.

    docs (List[Doc]): The gold Docs (from any reader), in the file's order.
    path (Union[str, Path]): A JointER JSON array, one record per Doc.
    limit (int): Read only its first records, as many as a reader's limit kept; 0 for all.
    RETURNS (List[Doc]): The same Docs, tagged.
    """
    path = str(path)
    records = list(read_json_records(path, limit))
    if len(records) != len(docs):
        raise ConversionError(Errors.E113.format(path=path, found=len(records), expected=len(docs)), path)
    tagged = []
    for (index, line, record), doc in zip(records, docs):
        place = (path, index, line)
        tokens = get_field(record, "tokens", list, place, "a list of tokens")
        words = [token.text for token in doc]
        if tokens != words:
            fail(Errors.E114.format(where=where(*place), index=index, tokens=tokens, words=words), place)
        tagged.append(_get_tags(record, len(words), place, required=True))
    for doc, tags in zip(docs, tagged):
        for token, tag in zip(doc, tags):
            token.tag_ = tag
    return docs
