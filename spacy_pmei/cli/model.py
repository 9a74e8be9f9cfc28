"""The model commands: evaluate (score a pipeline on gold data), extract (many documents to JSONL)."""

import json
from pathlib import Path
from typing import Annotated, Optional

import spacy
import typer
from wasabi import msg

from ..errors import Errors
from ..readers import ConversionError
from ._util import (
    app,
    atomic_output,
    bad_line_reporter,
    check_text_format,
    fail,
    load_pipeline,
    read_docbin,
    write_file,
    write_text,
)


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

    from ..errors import Warnings
    from ..readers import load_rel2id
    from ..scorer import evaluate_docs

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
    docs = read_docbin(data_path, nlp.vocab)
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

    from ..extract import extract, guess_format

    fmt = check_text_format(fmt or guess_format(input_path))
    if not input_path.exists():
        fail(Errors.E021.format(path=input_path))
    if not use_ray and (ray_address or workers != 1 or gpus_per_worker):
        fail(Errors.E022)
    if use_ray and (n_process != 1 or gpu_id >= 0):
        fail(Errors.E023)
    nlp = load_pipeline(model, gpu_id)
    settings = dict(fmt=fmt, text_field=text_field, batch_size=batch_size,
                    progress=progress, on_bad_line=bad_line_reporter(input_path))
    run, errors = partial(extract, n_process=n_process), ()
    if use_ray:
        from ..ray_extract import ray_extract

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
