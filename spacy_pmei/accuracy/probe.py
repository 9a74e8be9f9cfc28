"""Dev-only diagnostics of the finished runs' best models (`probe`): the score at other
thresholds, the early heads' own score, the final heads' with the early predictions
blanked, and the stochastic maps' statistics, through spacy_pmei.diagnostics."""
from pathlib import Path
from typing import Any, Dict, List, Optional

import srsly
import typer
from wasabi import msg

from ..diagnostics import blank_early, early_as_final, map_stats
from ..machine import machine_info as machine
from .rows import finished_run, read_rows, select_rows
from .running import load_for_scoring


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
    from ..architectures import get_network

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
