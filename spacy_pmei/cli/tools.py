"""The tool commands: benchmark (speed and memory), render (relation pictures as an HTML page)."""

from pathlib import Path
from typing import Annotated, Optional

import typer
from wasabi import msg

from ..errors import Errors
from ._util import app, bad_line_reporter, check_text_format, fail, load_pipeline, write_file, write_text


@app.command("benchmark")
def benchmark_cli(
    data: Annotated[
        Optional[Path], typer.Option("--data", help="CasRel JSON with gold triples (default: the bundled NYT sample)")
    ] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Also write the table here (Markdown)")] = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Training epochs timed")] = 2,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Inference runs (best is kept)")] = 3,
) -> None:
    """Speed and memory of pmei_relations beside spaCy's ner on the same tok2vec, in one run."""
    from ..speed import SAMPLE, format_table, run_benchmark

    table = format_table(run_benchmark(data or SAMPLE, epochs=epochs, repeats=repeats))
    typer.echo(table)
    if output is not None:
        write_file(output, write_text(table + "\n"))


@app.command("render")
def render_cli(
    model: Annotated[str, typer.Argument(help="Trained pipeline: package name or directory")],
    texts: Annotated[
        Optional[list[str]], typer.Option("--text", "-t", help="A text to draw (repeatable)")
    ] = None,
    input_path: Annotated[
        Optional[Path],
        typer.Option("--input", "-i", help="Plain text (one document a line) or JSONL", dir_okay=False),
    ] = None,
    output_path: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="HTML page to write (default: stdout)", dir_okay=False),
    ] = None,
    fmt: Annotated[
        Optional[str], typer.Option("--format", help="text or jsonl (default: from the file name)")
    ] = None,
    text_field: Annotated[str, typer.Option("--text-field", help="JSONL key of the text")] = "text",
    width: Annotated[int, typer.Option("--width", min=200, help="Width of each picture in pixels")] = 900,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Draw at most N documents (0: all)")] = 0,
    gpu_id: Annotated[int, typer.Option("--gpu-id", help="GPU id, -1 for CPU")] = -1,
) -> None:
    """Draw the entities and relations a pipeline finds as a standalone HTML page.

    Blank lines of a text file are skipped; bad JSONL lines are reported with
    their number. The page fetches nothing: inline SVG and CSS, system fonts.
    """
    import itertools
    import sys

    from ..extract import ExtractStats, guess_format, read_records
    from ..pictures import render

    texts = list(texts or [])
    if bool(texts) == (input_path is not None):
        fail(Errors.E303.format(given="both" if texts else "neither"))
    if input_path is not None:
        fmt = check_text_format(fmt or guess_format(input_path))
        stats = ExtractStats(on_bad_line=bad_line_reporter(input_path))
        try:
            with input_path.open(encoding="utf-8", errors="replace") as lines:
                records = (text for text, _ in read_records(lines, fmt, text_field, stats) if text.strip())
                texts = list(itertools.islice(records, limit or None))
        except OSError as err:
            fail(Errors.E304.format(path=input_path, why=err))
        if not texts:
            fail(Errors.E305.format(path=input_path))
    nlp = load_pipeline(model, gpu_id)
    docs = list(nlp.pipe(texts[: limit or None]))
    markup = render(docs, page=True, jupyter=False, options={"width": width})
    if output_path is None:
        sys.stdout.write(markup)
        return
    write_file(output_path, write_text(markup))
    n_relations = sum(len(doc._.relations) for doc in docs)
    msg.good(f"Saved {len(docs)} documents, {n_relations} relations to {output_path}")
