"""The results table of a rows file's finished runs (`table`): spread over seeds, learning
curves read from each run's train.log, and paired differences at equal epochs."""
import re
import statistics
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import srsly
import typer
from wasabi import msg

from ..errors import Errors

from ..machine import describe_machine
from ..machine import machine_info as machine
from .rows import KEYS, finished_run, read_pairs, read_rows


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
        msg.fail(Errors.E612.format(path=path, data=data), exits=1)
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
        "F (all gold) also counts the gold triples the converter could not place as missed. "
        "String F is the papers' (CasRel) protocol: entity strings per sentence, not positions.",
        "",
        f"Machine of the table: {describe_machine(report['machine'])}.",
        "",
        *run_machines(results),
        "| row | split | seeds | exact P | exact R | exact F | exact F (all gold) | partial P | partial R "
        "| partial F | partial F (all gold) | string F | paper F | mean - sample | epochs | train min |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in results:
        seeds = f"{len(e['seeds_run'])}/{len(e['seeds_planned'])}"
        lines.append(
            f"| {e['row']} | {', '.join(e.get('eval_split', ['-']))} | {seeds} | "
            + " | ".join(
                fmt(e.get(k))
                for k in ("rel_exact_p", "rel_exact_r", "rel_exact_f", "rel_exact_f_all",
                          "rel_partial_p", "rel_partial_r", "rel_partial_f", "rel_partial_f_all", "rel_string_f")
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
