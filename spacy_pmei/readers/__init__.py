"""Format readers behind spacy_pmei.convert; see that module for the rules."""

from .casrel import casrel_to_docs, docs_to_casrel
from .gold import UNTYPED, Placement, whitespace_doc
from .jointer import jointer_to_docs
from .jsonl import jsonl_to_docs
from .loading import LabelMap, load_rel2id, make_label_map, read_json_records, read_jsonl_records
from .prodigy import prodigy_to_docs
from .report import ConversionError, ConversionReport, Problem, Reason

__all__ = [
    "UNTYPED",
    "ConversionError",
    "ConversionReport",
    "LabelMap",
    "Placement",
    "Problem",
    "Reason",
    "casrel_to_docs",
    "docs_to_casrel",
    "jointer_to_docs",
    "jsonl_to_docs",
    "load_rel2id",
    "make_label_map",
    "prodigy_to_docs",
    "read_json_records",
    "read_jsonl_records",
    "whitespace_doc",
]
