"""Training and scoring the runs of a rows file (`run`, `rescore`) and packaging the best (`package`)."""
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import srsly
import typer
from wasabi import msg

from ..errors import Errors

from ..machine import machine_info as machine
from .rows import KEYS, finished_run, missing_needs, read_rows, select_rows, split_to_score, train_command
from .tables import last_step


def lost_gold(ds: str, split: str) -> int:
    """Gold triples of a split that the converter could not place (duplicates aside)."""
    path = Path("corpus") / ds / f"{split}.report.jsonl"
    if not path.is_file():
        return 0
    return sum(1 for rec in srsly.read_jsonl(path) if rec.get("code") != "duplicate")


def load_for_scoring(model_dir: Path, ds: str, split: str, gpu_id: int) -> Tuple[Any, List[Any]]:
    """A trained pipeline and the Examples of corpus/DS/SPLIT.spacy to score it on."""
    import spacy
    from spacy.tokens import DocBin
    from spacy.training import Example

    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = spacy.load(model_dir)
    docs = DocBin().from_disk(Path("corpus") / ds / f"{split}.spacy").get_docs(nlp.vocab)
    return nlp, [Example(nlp.make_doc(doc.text), doc) for doc in docs]


def score(
    model_dir: Path, ds: str, gpu_id: int, seed: int, sample: bool, split: str = "eval"
) -> Dict[str, Dict[str, Any]]:
    """Scores predicting with the mean ("mean") and, if asked, one sample ("sample").

    split "eval" scores the dataset's eval split (test where its file is there,
    dev otherwise); "dev" always scores dev (tuning rows, which must never see test).
    Each also gives recall and F counting the gold triples the converter could not place.
    """
    from thinc.api import fix_random_seed

    from ..architectures import get_network

    nlp, examples = load_for_scoring(model_dir, ds, split, gpu_id)
    eval_split = split_to_score(ds, split)
    n_gold = sum(len(eg.reference._.relations) for eg in examples)
    lost = lost_gold(ds, eval_split)
    network = get_network(nlp.get_pipe("pmei_relations").model)
    results = {}
    for mode in ("mean", "sample") if sample else ("mean",):
        network.set_sample_in_eval(mode == "sample")
        fix_random_seed(seed)
        scores = nlp.evaluate(examples)
        out = {key: scores.get(key) for key in KEYS}
        out.update(eval_split=eval_split, gold_placed=n_gold, gold_lost=lost)
        for kind in ("exact", "partial"):
            p, r = out[f"rel_{kind}_p"], out[f"rel_{kind}_r"]
            if r is None or n_gold + lost == 0:
                continue
            r_all = r * n_gold / (n_gold + lost)
            out[f"rel_{kind}_r_all"] = r_all
            out[f"rel_{kind}_f_all"] = 2 * p * r_all / (p + r_all) if p + r_all else 0.0
        results[mode] = out
    return results


def score_again(record: Dict[str, Any], run_dir: Path, row: Dict[str, Any], gpu_id: int) -> None:
    """Score a finished run's model-best again, keep the rest of its run.json, and mark when."""
    record.update(score(run_dir / "model-best", row["dataset"], gpu_id, record["seed"], row["sample"], row["eval"]))
    record["rescored"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    srsly.write_json(run_dir / "run.json", record)


def run(
    rows_path: Path = typer.Argument(..., help="Rows file (YAML)"),
    runs_dir: Path = typer.Option(..., "--runs-dir", help="Where each run's output and run.json go"),
    only: str = typer.Option("", "--only", help="Comma-separated row names (default: all)"),
    seeds: str = typer.Option("", "--seeds", help="Comma-separated seeds to run (default: each row's)"),
    max_epochs: int = typer.Option(0, "--max-epochs", help="Cap the config's max_epochs (0: the config's)"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU id, -1 for the CPU"),
    max_minutes: float = typer.Option(
        0, "--max-minutes", help="Stop each training run after this long and score its best model so far (0: no limit)"
    ),
) -> None:
    """Train and score every (row, seed) that has no finished run.json yet."""
    selected = select_rows(read_rows(rows_path), only)
    seeds_of = {row["name"]: [int(s) for s in seeds.split(",") if s] or row["seeds"] for row in selected}
    unmet = [
        f"{row['name']} needs {need}"
        for row in selected
        if any(not finished_run(runs_dir / row["name"] / f"seed{seed}") for seed in seeds_of[row["name"]])
        for need in missing_needs(row)
    ]
    if unmet:
        msg.fail(Errors.E607.format(unmet="; ".join(unmet)), exits=1)
    for row in selected:
        for seed in seeds_of[row["name"]]:
            out = runs_dir / row["name"] / f"seed{seed}"
            done = finished_run(out)
            if done:
                scored_on, now = done["mean"]["eval_split"], split_to_score(row["dataset"], row["eval"])
                if scored_on == now:
                    msg.info(f"{row['name']} seed {seed}: done already ({out / 'run.json'})")
                    continue
                # Trained before the test file came (or after it went): the model stays, as
                # dev selected it; only its scores move to the split the dataset has now.
                msg.info(f"{row['name']} seed {seed}: done already, scored on {scored_on}; scoring it on {now}")
                score_again(done, out, row, gpu_id)
                continue
            out.mkdir(parents=True, exist_ok=True)
            cmd = train_command(row, seed, out, gpu_id, max_epochs or None)
            msg.divider(f"{row['name']} seed {seed}")
            typer.echo(shlex.join(cmd))
            start = time.time()
            stopped = None
            with (out / "train.log").open("w", encoding="utf-8") as log:
                # cmd reads `python -m spacy ...` in the logs and tables; it runs on this
                # interpreter, whose environment has spaCy, not whichever `python` is on PATH.
                proc = subprocess.Popen([sys.executable, *cmd[1:]], stdout=log, stderr=subprocess.STDOUT)
                while proc.poll() is None:
                    if max_minutes and time.time() - start > max_minutes * 60:
                        proc.terminate()
                        proc.wait()
                        stopped = f"time limit of {max_minutes:g} minutes"
                        break
                    time.sleep(2)
            seconds = time.time() - start
            log_text = (out / "train.log").read_text(encoding="utf-8")
            if stopped and not (out / "model-best" / "meta.json").is_file():
                msg.fail(Errors.E608.format(name=row["name"], seed=seed), exits=1)
            if proc.returncode != 0 and not stopped:
                typer.echo(log_text[-3000:])
                msg.fail(Errors.E609.format(name=row["name"], seed=seed, log=out / "train.log"), exits=1)
            record = {
                "row": row["name"],
                "seed": seed,
                "command": shlex.join(cmd),
                "train_seconds": round(seconds, 1),
                **last_step(log_text),
                "stopped": stopped,
                "machine": machine(),
                **score(out / "model-best", row["dataset"], gpu_id, seed, row["sample"], row["eval"]),
            }
            record["status"] = "done"
            srsly.write_json(out / "run.json", record)
            main = record["mean"]
            msg.good(
                f"{row['name']} seed {seed}: exact F {100 * main['rel_exact_f']:.1f}, "
                f"partial F {100 * main['rel_partial_f']:.1f} on {main['eval_split']} "
                f"({seconds / 60:.1f} min)"
            )


def rescore(
    rows_path: Path = typer.Argument(..., help="Rows file (YAML)"),
    runs_dir: Path = typer.Option(..., "--runs-dir", help="Where the runs are"),
    only: str = typer.Option("", "--only", help="Comma-separated row names (default: all)"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU id, -1 for the CPU"),
) -> None:
    """Score the finished runs' best models again (after a scorer fix), keeping everything else."""
    for row in select_rows(read_rows(rows_path), only):
        for seed in row["seeds"]:
            run_dir = runs_dir / row["name"] / f"seed{seed}"
            record = finished_run(run_dir)
            if record is None:
                continue
            before = record["mean"][row["select"]]
            score_again(record, run_dir, row, gpu_id)
            after = record["mean"][row["select"]]
            msg.good(f"{row['name']} seed {seed}: {row['select']} {100 * before:.2f} -> {100 * after:.2f}")


def package(
    rows_path: Path = typer.Argument(..., help="Rows file (YAML)"),
    row_name: str = typer.Argument(..., help="The row whose best dev run to package"),
    runs_dir: Path = typer.Option(..., "--runs-dir", help="Where the runs are"),
    output_dir: Path = typer.Option(..., "--output-dir", help="Where the package and its wheel go"),
    name: str = typer.Option(..., "--name", help="Package name, e.g. en_pmei_webnlg"),
    version: str = typer.Option("0.1.0", "--version", help="Package version"),
) -> None:
    """Build an installable wheel of the row's best run on dev, its meta carrying the run's scores."""
    rows = {row["name"]: row for row in read_rows(rows_path)}
    if row_name not in rows:
        msg.fail(Errors.E605.format(names=row_name), exits=1)
    row = rows[row_name]
    best_dir, best_score = None, -1.0
    for seed in row["seeds"]:
        model = runs_dir / row_name / f"seed{seed}" / "model-best"
        if (model / "meta.json").is_file():
            dev = srsly.read_json(model / "meta.json").get("performance", {}).get(row["select"]) or 0.0
            if dev > best_score:
                best_dir, best_score = model, dev
    if best_dir is None:
        msg.fail(Errors.E610.format(name=row_name, runs_dir=runs_dir), exits=1)
    run_record = srsly.read_json(best_dir.parent / "run.json")
    ds = row["dataset"]
    scored_on, now = run_record["mean"]["eval_split"], split_to_score(ds)
    if scored_on != now:
        # the meta's notes name the corpus's eval split: its scores must be of that split
        msg.fail(
            Errors.E611.format(
                record=best_dir.parent / "run.json", scored_on=scored_on, ds=ds, now=now,
                rows=rows_path, runs_dir=runs_dir, name=row_name,
            ),
            exits=1,
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    scores_path = output_dir / "scores.json"
    srsly.write_json(scores_path, {k: v for k, v in run_record["mean"].items() if k.startswith(("rel_", "ents_"))})
    meta_path = output_dir / "meta.json"
    steps = [
        [sys.executable, "scripts/package_meta.py", str(best_dir), str(scores_path),
         f"corpus/{ds}/corpus.json", str(meta_path), "--name", name, "--version", version],
        [sys.executable, "-m", "spacy", "package", str(best_dir), str(output_dir),
         "--meta-path", str(meta_path), "--build", "none", "--force"],
        [sys.executable, "-m", "pip", "wheel", str(output_dir / f"{name}-{version}"),
         "--wheel-dir", str(output_dir / f"{name}-{version}" / "dist"),
         "--no-deps", "--no-build-isolation", "--no-index"],
    ]
    msg.info(f"Best run of {row_name} on dev ({row['select']} {100 * best_score:.1f}): {best_dir}")
    for cmd in steps:
        subprocess.run(cmd, check=True)
