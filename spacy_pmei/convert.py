"""Convert relation extraction data to gold Docs (doc.ents + doc._.relations) and back.

Formats: "casrel" (CasRel JSON, full mentions: NYT, WebNLG, NYT10, NYT11),
"casrel-star" (CasRel JSON, last word only: NYT*, WebNLG*), "jointer" (JointER
token spans), "jsonl" (character offsets) and "prodigy" (rel.manual JSONL).
Untyped entities get the label "ENTITY". Every relation argument is an entity
in doc.ents.

Rules for CasRel's string triples:

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

Nothing that is reported is fatal: ConversionReport counts sentences, triples,
placed and reported triples (placed + reported == triples) and lists every
problem with file, 0-based record index, line (JSONL), triple and reason code.
Malformed input (bad JSON, a missing field, an unknown relation label when a
rel2id map is given, an entity outside the text, an index out of range) raises
ConversionError with a coded message naming the file and record.

docs_to_casrel() writes gold Docs back: source -> Docs -> CasRel gives the
placed triples of every sentence again (as multisets), with the same text.
"""

import logging
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import spacy
import srsly
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import ensure_path
from spacy.vocab import Vocab

from .errors import Errors
from .readers.casrel import casrel_to_docs, docs_to_casrel
from .readers.gold import UNTYPED, whitespace_doc
from .readers.jointer import jointer_to_docs
from .readers.jsonl import jsonl_to_docs
from .readers.loading import (
    RelLabels,
    load_rel2id,
    make_label_map,
    read_json_records,
    read_jsonl_records,
)
from .readers.prodigy import prodigy_to_docs
from .readers.report import ConversionError, ConversionReport, Problem, Reason
from .relations import doc_labels

logger = logging.getLogger(__name__)

FORMATS = ("casrel", "casrel-star", "jointer", "jsonl", "prodigy")

__all__ = [
    "FORMATS",
    "UNTYPED",
    "ConversionError",
    "ConversionReport",
    "Problem",
    "Reason",
    "convert_file",
    "corpus_labels",
    "create_casrel_reader",
    "docs_to_casrel",
    "load_rel2id",
    "read_casrel",
    "read_jointer",
    "read_jsonl",
    "read_labels",
    "read_prodigy",
    "whitespace_doc",
]

Result = Tuple[List[Doc], ConversionReport]


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


def convert_file(
    path: Union[str, Path],
    fmt: str,
    nlp: Optional[Language] = None,
    rel2id: RelLabels = None,
    limit: int = 0,
) -> Result:
    """Read a file of any supported format into gold Docs.

    path (Union[str, Path]): The input file.
    fmt (str): One of FORMATS.
    nlp (Optional[Language]): Gives the vocab, and the tokenizer for "jsonl";
        spacy.blank("en") if None.
    rel2id (RelLabels): A rel2id.json path or labels; an unknown relation is then fatal.
    limit (int): Read at most this many records; 0 for all.
    RETURNS (Tuple[List[Doc], ConversionReport]): The gold Docs and what happened.
    """
    nlp = nlp if nlp is not None else spacy.blank("en")
    if fmt in ("casrel", "casrel-star"):
        return read_casrel(path, nlp.vocab, star=fmt == "casrel-star", rel2id=rel2id, limit=limit)
    if fmt == "jointer":
        return read_jointer(path, nlp.vocab, rel2id=rel2id, limit=limit)
    if fmt == "jsonl":
        return read_jsonl(path, nlp, rel2id=rel2id, limit=limit)
    if fmt == "prodigy":
        return read_prodigy(path, nlp.vocab, rel2id=rel2id, limit=limit)
    raise ConversionError(Errors.E110.format(fmt=fmt, options=", ".join(FORMATS)), str(path))


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


def corpus_labels(docs: Iterable[Doc], rel2id: RelLabels = None) -> Dict[str, List[str]]:
    """The labels to initialize pmei_relations with, in the `spacy init labels` form.

    A dataset's rel2id.json may list relations that its training split never
    uses (NYT dev lacks 2 of NYT's 24): given here, they become labels all the
    same, so a pipeline trained on the split keeps the dataset's label set.

    docs (Iterable[Doc]): Gold Docs, usually the training split.
    rel2id (RelLabels): A rel2id.json path or labels, added to those of the Docs.
    RETURNS (Dict[str, List[str]]): {"entities": [...], "relations": [...]}, sorted.
    """
    found = doc_labels(docs)
    label_map = make_label_map(rel2id)
    relations = set(found["relations"]) | (label_map.labels if label_map is not None else set())
    return {"entities": found["entities"] or [UNTYPED], "relations": sorted(relations)}


@spacy.registry.readers("spacy-pmei.read_labels.v1")
def read_labels(path: Optional[Union[str, Path]] = None) -> Optional[Dict[str, List[str]]]:
    """Read the labels for [initialize.components.pmei_relations.labels].

    Unlike spacy.read_labels.v1 it takes null, so a config can leave the path
    to a variable ([paths] labels = null) and fall back to the labels of the
    training data.

    path (Optional[Union[str, Path]]): A JSON file as `spacy init labels` or
        the project's convert step writes it; None for no labels.
    RETURNS (Optional[Dict[str, List[str]]]): The labels, or None.
    """
    if path is None:
        return None
    path = ensure_path(path)
    if not path.is_file():
        raise ValueError(Errors.E018.format(path=path, why="no such file"))
    try:
        data = srsly.read_json(path)
    except ValueError as err:
        raise ValueError(Errors.E018.format(path=path, why=f"invalid JSON ({err})")) from err
    if not isinstance(data, dict) or not {"entities", "relations"} <= set(data):
        raise ValueError(Errors.E018.format(path=path, why="the keys 'entities' and 'relations' are missing"))
    for key in ("entities", "relations"):
        if not isinstance(data[key], list) or not all(isinstance(v, str) for v in data[key]):
            raise ValueError(Errors.E018.format(path=path, why=f"{key!r} is not a list of strings"))
    return data
