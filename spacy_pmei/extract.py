"""Bulk extraction: stream plain text or JSONL through a pipeline, write JSONL triples."""
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from .errors import Errors
from .relations import EXTENSION

logger = logging.getLogger("spacy_pmei")


@dataclass
class ExtractStats:
    """What an extraction run did."""

    lines: int = 0
    documents: int = 0
    bad_lines: List[Tuple[int, str]] = field(default_factory=list)
    on_bad_line: Optional[Callable[[int, str], None]] = None

    def bad(self, number: int, reason: str) -> None:
        """Record a bad line and tell the caller at once."""
        self.bad_lines.append((number, reason))
        if self.on_bad_line is not None:
            self.on_bad_line(number, reason)
        else:
            logger.warning("line %d skipped: %s", number, reason)


def load_extraction_model(model: str, gpu_id: int = -1) -> Language:
    """Load a pipeline and check that it can extract relations, before any input is read.

    model (str): A package name or a path to a pipeline directory.
    gpu_id (int): GPU to use, -1 for the CPU.
    RETURNS (Language): The loaded pipeline.
    """
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    try:
        nlp = spacy.load(model)
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(Errors.E015.format(path=model, why=err)) from err
    if not any(getattr(pipe, "label_data", None) and hasattr(pipe, "entity_labels") for _, pipe in nlp.pipeline):
        raise ValueError(
            Errors.E015.format(path=model, why="it has no pmei_relations component")
        )
    for _, pipe in nlp.pipeline:
        if hasattr(pipe, "is_initialized") and not pipe.is_initialized:
            raise ValueError(Errors.E015.format(path=model, why="its pmei_relations component is not trained"))
    return nlp


def read_records(
    lines: Iterable[str], fmt: str, text_field: str, stats: ExtractStats
) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """Yield (text, context) per usable line; bad lines are recorded in stats and skipped.

    lines (Iterable[str]): The input, one document per line.
    fmt (str): "text" (the line is the document) or "jsonl" (an object with text_field).
    text_field (str): The JSONL key holding the text.
    stats (ExtractStats): Receives line counts and (line number, reason) of bad lines.
    YIELDS (Tuple[str, Dict[str, Any]]): The text and {"line": n, other fields of the record}.
    """
    for number, line in enumerate(lines, start=1):
        stats.lines += 1
        line = line.rstrip("\n")
        if fmt == "text":
            yield line, {"line": number}
            continue
        if not line.strip():
            stats.bad(number, "empty line")
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            stats.bad(number, f"invalid JSON: {err.msg}")
            continue
        if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
            stats.bad(number, f"no string field {text_field!r}")
            continue
        context = {k: v for k, v in record.items() if k != text_field}
        context["line"] = number
        yield record[text_field], context


def doc_to_record(doc: Doc, context: Dict[str, Any]) -> Dict[str, Any]:
    """The JSON output for one document: input fields, entities and relations.

    Spans have character offsets and token offsets (start, end), so that a client
    can point into the text or into spaCy's tokens; `serve` answers the same records.

    doc (Doc): A processed document.
    context (Dict[str, Any]): Fields to copy into the record first (an id, the line number).
    RETURNS (Dict[str, Any]): The context, "entities" and "relations".
    """
    out = dict(context)
    out["entities"] = [
        {"start_char": e.start_char, "end_char": e.end_char, "label": e.label_, "text": e.text,
         "start": e.start, "end": e.end}
        for e in doc.ents
    ]
    out["relations"] = [rel.to_dict() for rel in getattr(doc._, EXTENSION)]
    return out


def extract(
    nlp: Language,
    lines: Iterable[str],
    output: IO[str],
    *,
    fmt: str = "text",
    text_field: str = "text",
    batch_size: int = 64,
    n_process: int = 1,
    progress: bool = True,
    on_bad_line: Optional[Callable[[int, str], None]] = None,
) -> ExtractStats:
    """Stream documents through nlp and write one JSON line per document.

    Memory does not grow with the input: lines are read lazily, processed in
    batches and written as they come.

    nlp (Language): A pipeline with pmei_relations.
    lines (Iterable[str]): The input lines.
    output (IO[str]): Where the JSONL goes.
    fmt (str): "text" or "jsonl".
    text_field (str): JSONL key of the text.
    batch_size (int): Documents per batch.
    n_process (int): Worker processes for nlp.pipe.
    progress (bool): Show a progress bar with documents/s on stderr.
    on_bad_line (Optional[Callable[[int, str], None]]): Called with (line number, reason)
        for each skipped line, as it is read; logged as a warning if None.
    RETURNS (ExtractStats): Counts and bad lines.
    """
    from tqdm import tqdm

    stats = ExtractStats(on_bad_line=on_bad_line)
    records = read_records(lines, fmt, text_field, stats)
    docs = nlp.pipe(records, as_tuples=True, batch_size=batch_size, n_process=n_process)
    bar = tqdm(docs, unit="doc", disable=not progress, file=sys.stderr, mininterval=0.5)
    for doc, context in bar:
        output.write(json.dumps(doc_to_record(doc, context), ensure_ascii=False) + "\n")
        stats.documents += 1
    return stats


def guess_format(path: Path) -> str:
    """ "jsonl" for .jsonl/.json files, "text" otherwise."""
    return "jsonl" if path.suffix.lower() in (".jsonl", ".json", ".ndjson") else "text"
