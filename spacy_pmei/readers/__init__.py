"""Relation extraction data to gold Docs (doc.ents + doc._.relations) and back.

Formats: "casrel" (CasRel JSON, full mentions: NYT, WebNLG, NYT10, NYT11),
"casrel-star" (CasRel JSON, last word only: NYT*, WebNLG*), "jointer" (JointER
token spans), "jsonl" (character offsets) and "prodigy" (rel.manual JSONL).
Untyped entities get the label "ENTITY". Every relation argument is an entity
in doc.ents. The rules for placing CasRel's string triples are in readers/casrel.py.

Nothing that is reported is fatal: ConversionReport counts sentences, triples,
placed and reported triples (placed + reported == triples) and lists every
problem with file, 0-based record index, line (JSONL), triple and reason code.
Malformed input (bad JSON, a missing field, an unknown relation label when a
rel2id map is given, an entity outside the text, an index out of range) raises
ConversionError with a coded message naming the file and record.

docs_to_casrel() writes gold Docs back: source -> Docs -> CasRel gives the
placed triples of every sentence again (as multisets), with the same text.
"""

from pathlib import Path
from typing import Optional, Union

import spacy
from spacy.language import Language

from ..errors import Errors
from .casrel import casrel_to_docs, create_casrel_reader, docs_to_casrel, read_casrel
from .gold import UNTYPED, Placement, whitespace_doc
from .jointer import add_jointer_tags, jointer_to_docs, read_jointer
from .jsonl import jsonl_to_docs, read_jsonl
from .loading import (
    LabelMap,
    RelLabels,
    corpus_labels,
    load_rel2id,
    make_label_map,
    read_json_records,
    read_jsonl_records,
    read_labels,
)
from .prodigy import prodigy_to_docs, read_prodigy
from .report import ConversionError, ConversionReport, Problem, Reason, Result

FORMATS = ("casrel", "casrel-star", "jointer", "jsonl", "prodigy")

__all__ = [
    "FORMATS",
    "UNTYPED",
    "ConversionError",
    "ConversionReport",
    "LabelMap",
    "Placement",
    "Problem",
    "Reason",
    "add_jointer_tags",
    "casrel_to_docs",
    "convert_file",
    "corpus_labels",
    "create_casrel_reader",
    "docs_to_casrel",
    "jointer_to_docs",
    "jsonl_to_docs",
    "load_rel2id",
    "make_label_map",
    "prodigy_to_docs",
    "read_casrel",
    "read_json_records",
    "read_jsonl",
    "read_jsonl_records",
    "read_jointer",
    "read_labels",
    "read_prodigy",
    "whitespace_doc",
]


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
