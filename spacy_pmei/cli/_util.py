"""What every command shares: the typer app, the one `fail`, file writing, loading inputs.

A command parses its options, calls library code and reports with wasabi's msg;
every error it reports goes through fail(), so it carries a code (errors.py).
"""

import os
import re
import uuid
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, List, NoReturn

import spacy
import typer
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab
from wasabi import msg

from ..errors import Errors

app = typer.Typer(
    name="spacy-pmei",
    help="spacy-pmei: joint entity and relation extraction for spaCy.",
    no_args_is_help=True,
    add_completion=False,
)

# The start of a coded message, as errors.ErrorsWithCodes writes it.
_CODED = re.compile(r"^\(spacy-pmei\) \[[EW]\d{3}\]")


@app.callback()
def main() -> None:
    """spacy-pmei: joint entity and relation extraction for spaCy."""


def fail(message: str) -> NoReturn:
    """Print an error message and exit with status 1.

    message (str): A coded message (Errors.E0xx.format(...), or str() of an
        exception raised with one); any other text is given the code E024, so
        that no error of the command line goes out without a code.
    """
    if not _CODED.match(message):
        message = Errors.E024.format(why=message)
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
        fail(Errors.E019.format(lang=lang, why=err))


def read_docbin(path: Path, vocab: Vocab) -> List[Doc]:
    """The Docs of a .spacy file, or exit with a message (E111) if it cannot be read."""
    try:
        return list(DocBin().from_disk(path).get_docs(vocab))
    except (OSError, ValueError, KeyError, TypeError, zlib.error) as err:
        fail(Errors.E111.format(path=path, why=err))


def load_pipeline(model: str, gpu_id: int) -> spacy.Language:
    """A trained pipeline to extract with (load_extraction_model), or exit with its message (E015)."""
    from ..extract import load_extraction_model

    try:
        return load_extraction_model(model, gpu_id)
    except ValueError as err:
        fail(str(err))


def check_text_format(fmt: str) -> str:
    """The --format of extract and render, or exit with a message (E020)."""
    if fmt not in ("text", "jsonl"):
        fail(Errors.E020.format(fmt=fmt))
    return fmt


def bad_line_reporter(input_path: Path) -> Callable[[int, str], None]:
    """An on_bad_line callback that reports a skipped input line on stderr."""

    def report(number: int, reason: str) -> None:
        typer.echo(f"{input_path}:{number}: skipped ({reason})", err=True)

    return report
