"""CasRel JSON (string triples) to gold Docs and back, and the CasRel corpus reader.

Formats "casrel" (full mentions: NYT, WebNLG, NYT10, NYT11) and "casrel-star"
(last word only: NYT*, WebNLG*). Rules for CasRel's string triples:

- Text: tokens are the source's whitespace-separated words and doc.text is the
  source text exactly. One space after a word is its trailing whitespace; any
  other whitespace (NYT10/NYT11's leading and trailing spaces, a second space,
  a tab) becomes a whitespace token, as spaCy's tokenizer makes. No entity
  starts or ends on one.
- Finding a mention: exact, case-sensitive substring search. Occurrences that
  are whole words are used; only if there is none is an occurrence inside a
  word used, and that word is split into tokens (no space between them) so the
  mention is whole tokens and its text round-trips exactly. A mention found
  only when accents are ignored ("Medellín" vs "Medellin" in NYT) is reported
  as "accent_mismatch" (placing it would change the string), one not found at
  all as "not_found".
- A string that occurs more than once: for each triple, of all (subject,
  object) occurrence pairs, take the closest (fewest characters between them),
  ties to the leftmost subject, then the leftmost object. The relation is
  most likely expressed where its arguments are close together, the choice
  does not depend on which occurrence comes first, and it is the same for
  both directions of a symmetric pair (A contains B / B in A). For a self
  relation (subject == object string) two different occurrences are
  preferred to one span related to itself. Occurrences that lie inside an
  occurrence of another mention of the sentence ("York" in "New York") are
  taken last, so nested mentions can both be placed when the text allows it.
- Overlaps: doc.ents cannot overlap. Triples are placed in source order; if the
  best pair overlaps an entity placed earlier, the next pair is tried; if none
  fits, what was placed first is kept and the triple is reported ("overlap").
- Repeats: a triple that repeats one already placed in the sentence is
  reported as "duplicate" and stored once (CasRel's own scoring uses sets).
- Star mode: the same search with one-word mentions, so each entity is a
  one-token span; a mention of several words is reported ("not_one_word").
"""

import re
import unicodedata
from itertools import product
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import ensure_path
from spacy.vocab import Vocab

from ..errors import Errors
from .gold import UNTYPED, Offsets, Placement, overlaps, whitespace_doc
from .loading import (
    LabelMap,
    Record,
    RelLabels,
    check_label,
    fail_field,
    get_field,
    make_label_map,
    read_json_records,
)
from .report import ConversionError, ConversionReport, Reason, Result, Triple

_NON_SPACE = re.compile(r"\S+")


def casrel_to_docs(
    records: Iterable[Record],
    vocab: Vocab,
    report: ConversionReport,
    star: bool = False,
    labels: Optional[LabelMap] = None,
) -> List[Doc]:
    """Convert CasRel records to gold Docs, counting and reporting in `report`.

    records (Iterable[Record]): (index, line, {"text", "triple_list"}) items.
    vocab (Vocab): The vocab of the Docs.
    report (ConversionReport): Updated with counts and problems.
    star (bool): Whether mentions are only the last word of each entity.
    labels (Optional[LabelMap]): If given, an unknown relation label is fatal.
    RETURNS (List[Doc]): One Doc per record, with doc.ents and doc._.relations.
    """
    docs = []
    for index, line, record in records:
        place = (report.file, index, line)
        text = get_field(record, "text", str, place, "a string")
        items = get_field(
            record, "triple_list", list, place, "a list of [subject, relation, object]"
        )
        triples = [_parse_triple(item, k, place) for k, item in enumerate(items)]
        for triple in triples:
            check_label(triple[1], labels, place)
        docs.append(_sentence_doc(vocab, text, triples, star, report, index, line))
    return docs


def _parse_triple(item: Any, k: int, place: Tuple[str, int, Optional[int]]) -> Triple:
    if not (isinstance(item, list) and len(item) == 3 and all(isinstance(x, str) for x in item)):
        fail_field(place, f"triple_list[{k}]", "[subject, relation, object] strings", item)
    return (item[0], item[1], item[2])


def _sentence_doc(
    vocab: Vocab,
    text: str,
    triples: Sequence[Triple],
    star: bool,
    report: ConversionReport,
    index: int,
    line: Optional[int],
) -> Doc:
    sentence = _Sentence(text, {m for s, _, o in triples for m in (s, o)})
    placement = Placement()
    for triple in triples:
        reason, message = sentence.place(triple, placement, star)
        if reason is not None:
            report.add_problem(index, line, triple, reason, message)
    report.sentences += 1
    report.triples += len(triples)
    report.placed += len(placement.relations)
    report.split_mentions += sum(1 for span in placement.entities if not sentence.aligned(span))
    cuts = [offset for span in placement.entities for offset in span]
    return placement.apply(whitespace_doc(vocab, text, cuts), chars=True)


class _Sentence:
    """The occurrences of a sentence's mention strings, and the choice among them."""

    def __init__(self, text: str, mentions: Set[str]) -> None:
        self.text = text
        words = [match.span() for match in _NON_SPACE.finditer(text)]
        self.starts = {start for start, _ in words}
        self.ends = {end for _, end in words}
        self.occurrences = {m: self._find(m) for m in mentions if m}
        self.covered = self._covered()

    def aligned(self, span: Offsets) -> bool:
        """Whether a character span starts and ends at whitespace-token boundaries."""
        return span[0] in self.starts and span[1] in self.ends

    def _find(self, mention: str) -> List[Offsets]:
        found = []
        i = self.text.find(mention)
        while i != -1:
            found.append((i, i + len(mention)))
            i = self.text.find(mention, i + 1)
        whole = [span for span in found if self.aligned(span)]
        return whole or found

    def _covered(self) -> Set[Offsets]:
        spans = {span for found in self.occurrences.values() for span in found}
        return {a for a in spans for b in spans if a != b and b[0] <= a[0] and a[1] <= b[1]}

    def place(self, triple: Triple, placement: Placement, star: bool) -> Tuple[Optional[str], str]:
        """Place one triple; return (Reason code, message) if it was left out."""
        head, label, tail = triple
        for role, mention in (("subject", head), ("object", tail)):
            reason = self._check_mention(mention, star)
            if reason is not None:
                return reason, _MESSAGES[reason].format(role=role, mention=mention)
        first_reason = None
        for h, t in self._pairs(head, tail):
            reason = placement.pair_conflict(h, UNTYPED, t, UNTYPED)
            if reason is None:
                reason = placement.add_relation(h, UNTYPED, label, t, UNTYPED)
                break
            first_reason = first_reason or reason
        else:
            reason = first_reason or Reason.OVERLAP
        if reason is None:
            return None, ""
        return reason, _MESSAGES[reason].format(head=head, tail=tail)

    def _check_mention(self, mention: str, star: bool) -> Optional[str]:
        if not mention or mention != mention.strip():
            return Reason.BAD_MENTION
        if star and len(mention.split()) > 1:
            return Reason.NOT_ONE_WORD
        if not self.occurrences.get(mention):
            if _fold(mention) in _fold(self.text):
                return Reason.ACCENT_MISMATCH
            return Reason.NOT_FOUND
        return None

    def _pairs(self, head: str, tail: str) -> List[Tuple[Offsets, Offsets]]:
        """Candidate (head, tail) spans, best first (see the rules above)."""

        def key(pair: Tuple[Offsets, Offsets]) -> Tuple[int, ...]:
            h, t = pair
            nested = (h in self.covered) + (t in self.covered)
            gap = max(h[0], t[0]) - min(h[1], t[1])
            return (h == t, nested, gap, h[0], t[0])

        pairs = product(self.occurrences[head], self.occurrences[tail])
        return sorted((p for p in pairs if p[0] == p[1] or not overlaps(*p)), key=key)


_MESSAGES = {
    Reason.BAD_MENTION: "the {role} {mention!r} is empty or has whitespace at either end",
    Reason.NOT_ONE_WORD: "the {role} {mention!r} is not one word (star data give the last word)",
    Reason.NOT_FOUND: "the {role} {mention!r} is not in the text",
    Reason.ACCENT_MISMATCH: "the {role} {mention!r} is in the text only with other accents",
    Reason.OVERLAP: "each placement of {head!r} and {tail!r} overlaps each other or an entity",
    Reason.LABEL_CONFLICT: "{head!r} or {tail!r} is placed already with another label",
    Reason.DUPLICATE: "the triple is repeated in this sentence",
}


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def docs_to_casrel(docs: Iterable[Doc], star: bool = False) -> List[Dict[str, Any]]:
    """Write gold Docs as CasRel records, the reverse of casrel_to_docs.

    docs (Iterable[Doc]): Docs with doc._.relations.
    star (bool): Write only the last word of each entity (NYT*, WebNLG* style).
    RETURNS (List[Dict[str, Any]]): [{"text", "triple_list": [[subject, relation, object], ...]}].
    """
    records = []
    for doc in docs:
        triples = [
            [_mention(r.head, star), r.label, _mention(r.tail, star)] for r in doc._.relations
        ]
        records.append({"text": doc.text, "triple_list": triples})
    return records


def _mention(span: Span, star: bool) -> str:
    if not star:
        return span.text
    words = [token for token in span if not token.is_space]
    return words[-1].text if words else span.text


def read_casrel(
    path: Union[str, Path],
    vocab: Vocab,
    star: bool = False,
    rel2id: RelLabels = None,
    limit: int = 0,
) -> Result:
    """Read a CasRel JSON file (NYT, WebNLG, NYT10, NYT11 and the star versions).

    path (Union[str, Path]): A JSON array of {"text", "triple_list"}.
    vocab (Vocab): The vocab of the Docs.
    star (bool): Whether mentions are only the last word of each entity.
    rel2id (RelLabels): A rel2id.json path or labels; an unknown relation is then fatal.
    limit (int): Read at most this many records; 0 for all.
    RETURNS (Tuple[List[Doc], ConversionReport]): The gold Docs and what happened.
    """
    report = ConversionReport(str(path), "casrel-star" if star else "casrel")
    labels = make_label_map(rel2id)
    docs = casrel_to_docs(read_json_records(path, limit), vocab, report, star=star, labels=labels)
    return docs, report


@spacy.registry.readers("spacy-pmei.CasRelCorpus.v1")
def create_casrel_reader(
    path: Union[str, Path],
    star: bool = False,
    rel2id: Optional[Union[str, Path]] = None,
    limit: int = 0,
) -> Callable[[Language], Iterator[Example]]:
    """Make a corpus reader for a CasRel JSON file, like spacy.Corpus.v1.

    The file is read at every call (every epoch); the reference Docs use the
    source's whitespace tokens and the predicted Docs nlp's tokenizer.

    path (Union[str, Path]): A JSON array of {"text", "triple_list"}.
    star (bool): Whether mentions are only the last word of each entity.
    rel2id (Optional[Union[str, Path]]): A rel2id.json; an unknown relation is then fatal.
    limit (int): Read at most this many sentences; 0 for all.
    RETURNS (Callable[[Language], Iterator[Example]]): The reader.
    """
    path = ensure_path(path)
    if not path.exists():
        raise ConversionError(Errors.E100.format(path=path, why="no such file"), str(path))
    labels = make_label_map(rel2id)
    logged = False

    def read(nlp: Language) -> Iterator[Example]:
        nonlocal logged
        docs, report = read_casrel(path, nlp.vocab, star=star, rel2id=labels, limit=limit)
        if not logged:
            report.log()
            logged = True
        for doc in docs:
            yield Example(nlp.make_doc(doc.text), doc)

    return read
