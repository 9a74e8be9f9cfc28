"""The command line: `python -m spacy_pmei COMMAND` or `spacy-pmei COMMAND`.

Each command is one small function registered with @app.command(...); the
helpers below (fail, blank_nlp, write_file, atomic_output) are shared, so a new
command only needs to parse its options and call library code.
"""

import json
import os
import uuid
import zlib
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, NoReturn, Optional

import spacy
import typer
from spacy.tokens import DocBin
from wasabi import msg

from .convert import ConversionError, ConversionReport, convert_file, docs_to_casrel
from .errors import Errors

app = typer.Typer(
    name="spacy-pmei",
    help="spacy-pmei: joint entity and relation extraction for spaCy.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """spacy-pmei: joint entity and relation extraction for spaCy."""


class InputFormat(str, Enum):
    """The input formats of `convert`."""

    casrel = "casrel"
    casrel_star = "casrel-star"
    jointer = "jointer"
    jsonl = "jsonl"
    prodigy = "prodigy"


def fail(message: str) -> NoReturn:
    """Print an error message and exit with status 1."""
    msg.fail(message)
    raise typer.Exit(code=1)


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; move it onto `path` only on success.

    path (Path): The file to write.
    YIELDS (Path): Where to write; removed if the block raises.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_file(path: Path, write: Callable[[Path], Any]) -> None:
    """Write a file atomically with write(tmp_path); exit with a message on OSError."""
    try:
        with atomic_output(path) as tmp:
            write(tmp)
    except OSError as err:
        fail(Errors.E112.format(path=path, why=err))


def write_text(text: str) -> Callable[[Path], Any]:
    """A writer for write_file that writes UTF-8 text."""
    return lambda path: path.write_text(text, encoding="utf-8")


def blank_nlp(lang: str) -> spacy.Language:
    """spacy.blank(lang), or exit with a message if spaCy has no such language."""
    try:
        return spacy.blank(lang)
    except ImportError as err:
        fail(f"Unknown language {lang!r}: {err}")


@app.command("convert")
def convert_cli(
    input_path: Annotated[Path, typer.Argument(help="Input file", dir_okay=False)],
    output_path: Annotated[Path, typer.Argument(help="Output .spacy file", dir_okay=False)],
    fmt: Annotated[InputFormat, typer.Option("--format", "-f", help="Input format")],
    rel2id: Annotated[
        Optional[Path],
        typer.Option("--rel2id", help="rel2id.json: unknown relation labels are then an error"),
    ] = None,
    report_path: Annotated[
        Optional[Path],
        typer.Option("--report", help="Reported triples, JSONL (default: OUTPUT.report.jsonl)"),
    ] = None,
    lang: Annotated[
        str, typer.Option("--lang", help="Language of the blank pipeline (and tokenizer for jsonl)")
    ] = "en",
    limit: Annotated[
        int, typer.Option("--limit", min=0, help="Read at most N records (0: all)")
    ] = 0,
) -> None:
    """Convert relation data to a .spacy DocBin with gold doc.ents and doc._.relations."""
    nlp = blank_nlp(lang)
    try:
        docs, report = convert_file(input_path, fmt.value, nlp=nlp, rel2id=rel2id, limit=limit)
    except ConversionError as err:
        fail(str(err))
    report_path = report_path or output_path.with_suffix(".report.jsonl")
    write_file(output_path, DocBin(store_user_data=True, docs=docs).to_disk)
    lines = (json.dumps(p.to_dict(), ensure_ascii=False) + "\n" for p in report.problems)
    write_file(report_path, write_text("".join(lines)))
    msg.good(f"Saved {len(docs)} docs to {output_path}")
    print_summary(report, report_path)


def print_summary(report: ConversionReport, report_path: Path) -> None:
    """Print the counts of a conversion and where the reported triples are."""
    rows = [
        ("sentences", report.sentences),
        ("triples", report.triples),
        ("placed", report.placed),
        ("reported", report.reported),
    ]
    if report.skipped_records:
        rows.append(("skipped records", report.skipped_records))
    if report.split_mentions:
        rows.append(("mentions split from a token", report.split_mentions))
    if len(report.problems) > report.reported:
        rows.append(("entities left out", len(report.problems) - report.reported))
    msg.table(rows, aligns=("l", "r"))
    if report.problems:
        codes = ", ".join(f"{code} {n}" for code, n in report.counts_by_code().items())
        msg.warn(f"Left out ({codes}); listed in {report_path}")


@app.command("export")
def export_cli(
    input_path: Annotated[Path, typer.Argument(help="Input .spacy file", dir_okay=False)],
    output_path: Annotated[Path, typer.Argument(help="Output CasRel JSON file", dir_okay=False)],
    star: Annotated[
        bool, typer.Option("--star", help="Write only the last word of each entity")
    ] = False,
    lang: Annotated[str, typer.Option("--lang", help="Language of the blank pipeline")] = "en",
) -> None:
    """Write the gold relations of a .spacy DocBin as CasRel JSON."""
    nlp = blank_nlp(lang)
    try:
        docs = list(DocBin().from_disk(input_path).get_docs(nlp.vocab))
    except (OSError, ValueError, KeyError, TypeError, zlib.error) as err:
        fail(Errors.E111.format(path=input_path, why=err))
    records = docs_to_casrel(docs, star=star)
    write_file(output_path, write_text(json.dumps(records, ensure_ascii=False, indent=4)))
    n_triples = sum(len(r["triple_list"]) for r in records)
    msg.good(f"Saved {len(records)} sentences, {n_triples} triples to {output_path}")
