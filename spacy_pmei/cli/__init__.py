"""The command line: `python -m spacy_pmei COMMAND` or `spacy-pmei COMMAND`.

Commands by group, each a small function registered on one typer app:

- data.py: convert, export, vectors
- model.py: evaluate, extract
- tools.py: benchmark, render
- spacy_pmei/serve/cli.py: serve, serve-bench (they register themselves)

_util.py holds what they share (the app, fail, blank_nlp, write_file,
atomic_output, read_docbin ...), so a new command only parses its options
and calls library code.
"""

from ._util import (
    app,
    atomic_output,
    blank_nlp,
    fail,
    main,
    read_docbin,
    write_file,
    write_text,
)
from .data import InputFormat, convert_cli, export_cli, print_summary, vectors_cli
from .model import evaluate_cli, extract_cli
from .tools import benchmark_cli, render_cli
from ..serve import cli as _serve_cli  # noqa: F401  (registers serve and serve-bench)

__all__ = [
    "InputFormat",
    "app",
    "atomic_output",
    "benchmark_cli",
    "blank_nlp",
    "convert_cli",
    "evaluate_cli",
    "export_cli",
    "extract_cli",
    "fail",
    "main",
    "print_summary",
    "read_docbin",
    "render_cli",
    "vectors_cli",
    "write_file",
    "write_text",
]
