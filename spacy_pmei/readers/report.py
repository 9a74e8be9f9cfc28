"""What a conversion did: counts, the triples it could not place, fatal errors."""

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from spacy.tokens import Doc

logger = logging.getLogger(__name__)

Triple = Tuple[str, str, str]


class Reason:
    """Codes of the problems that drop a triple (or entity) but are not fatal."""

    NOT_FOUND = "not_found"  # the mention string is not in the text
    ACCENT_MISMATCH = "accent_mismatch"  # found only with accents removed
    BAD_MENTION = "bad_mention"  # empty, or with whitespace at either end
    NOT_ONE_WORD = "not_one_word"  # star mode: the mention has several words
    OVERLAP = "overlap"  # every placement overlaps an entity placed before
    LABEL_CONFLICT = "label_conflict"  # same span placed with another label
    DUPLICATE = "duplicate"  # the same relation between the same spans again
    MISALIGNED = "misaligned"  # char offsets are not token boundaries
    NO_ENTITY = "no_entity"  # a relation argument that is not an entity


def where(path: str, index: Optional[int] = None, line: Optional[int] = None) -> str:
    """Name a place in an input file for messages.

    path (str): The file.
    index (Optional[int]): The 0-based record index.
    line (Optional[int]): The 1-based line, for JSONL.
    RETURNS (str): E.g. "train.jsonl, record 3 (line 5)".
    """
    text = str(path)
    if index is not None:
        text += f", record {index}"
    if line is not None:
        text += f" (line {line})"
    return text


class ConversionError(ValueError):
    """Malformed input: the conversion stops, naming the file and record."""

    def __init__(
        self, message: str, path: str = "", index: Optional[int] = None, line: Optional[int] = None
    ) -> None:
        super().__init__(message)
        self.path = path
        self.index = index
        self.line = line


@dataclass
class Problem:
    """A triple (or entity) that was left out of the gold Doc, and why.

    file (str): The input file.
    index (int): The 0-based record index in the file.
    line (Optional[int]): The 1-based line for JSONL input, else None.
    triple (Optional[Triple]): (head, relation, tail) as strings; None for an
        entity-only problem.
    code (str): A Reason code.
    message (str): What went wrong, for people.
    """

    file: str
    index: int
    line: Optional[int]
    triple: Optional[Triple]
    code: str
    message: str

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready view, one line of the report file."""
        return {
            "file": self.file,
            "index": self.index,
            "line": self.line,
            "triple": list(self.triple) if self.triple is not None else None,
            "code": self.code,
            "message": self.message,
        }


@dataclass
class ConversionReport:
    """Summary of one converted file.

    file (str): The input file.
    format (str): The input format.
    sentences (int): Docs produced.
    triples (int): Triples (relations) in the input, duplicates included.
    placed (int): Triples stored in doc._.relations.
    skipped_records (int): Records left out on purpose (Prodigy answers other
        than "accept").
    split_mentions (int): Placed entities that needed a token to be split.
    problems (List[Problem]): Every triple or entity left out, in input order.
    """

    file: str
    format: str
    sentences: int = 0
    triples: int = 0
    placed: int = 0
    skipped_records: int = 0
    split_mentions: int = 0
    problems: List[Problem] = field(default_factory=list)

    @property
    def reported(self) -> int:
        """The number of triples left out; placed + reported == triples."""
        return sum(1 for p in self.problems if p.triple is not None)

    def add_problem(
        self,
        index: int,
        line: Optional[int],
        triple: Optional[Triple],
        code: str,
        message: str,
    ) -> None:
        """Record a triple or entity that was left out."""
        problem = Problem(self.file, index, line, triple, code, message)
        self.problems.append(problem)
        logger.debug("%s: %s (%s)", where(self.file, index, line), message, code)

    def counts_by_code(self) -> Dict[str, int]:
        """Problems per Reason code, most frequent first."""
        return dict(Counter(p.code for p in self.problems).most_common())

    def summary(self) -> Dict[str, Any]:
        """The counts, without the problem list."""
        return {
            "file": self.file,
            "format": self.format,
            "sentences": self.sentences,
            "triples": self.triples,
            "placed": self.placed,
            "reported": self.reported,
            "entity_problems": len(self.problems) - self.reported,
            "skipped_records": self.skipped_records,
            "split_mentions": self.split_mentions,
            "by_code": self.counts_by_code(),
        }

    def log(self) -> None:
        """Log the summary: a warning if triples were left out, else info."""
        summary = self.summary()
        level = logging.WARNING if self.problems else logging.INFO
        logger.log(
            level,
            "%s (%s): %d sentences, %d triples, %d placed, %d reported %s",
            self.file,
            self.format,
            self.sentences,
            self.triples,
            self.placed,
            self.reported,
            summary["by_code"] or "",
        )


# What every reader returns: the gold Docs and what happened.
Result = Tuple[List[Doc], ConversionReport]
