"""Write the meta.json that `spacy package --meta-path` packages a trained pipeline with.

It is the pipeline's own meta (labels, components, spaCy version) with the
package's name and version, a description, the data source and licence, and as
"performance" the scores of `spacy evaluate` on the evaluation split (test, or
dev where there is no test file) instead of the dev scores that training wrote.
The training output is not changed.

    python scripts/package_meta.py MODEL_DIR SCORES CORPUS_INFO OUTPUT --name NAME --version VERSION
"""

import json
from pathlib import Path
from typing import Any, Dict, List

import typer
from wasabi import msg

from spacy_pmei.cli import fail
from spacy_pmei.errors import Errors

# The default package name of the project; only NYT data may carry it.
DEFAULT_NAME = "en_pmei_nyt"


def flatten_scores(scores: Dict[str, Any]) -> Dict[str, Any]:
    """Scores of `spacy evaluate --per-component` ({component: {key: score}}) as one dict."""
    flat: Dict[str, Any] = {}
    for key, value in scores.items():
        if isinstance(value, dict) and not key.endswith("per_type"):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def main(
    model_dir: Path = typer.Argument(..., help="The trained pipeline (model-best)"),
    scores_path: Path = typer.Argument(..., help="Output of spacy evaluate --per-component"),
    corpus_info: Path = typer.Argument(..., help="corpus.json written by scripts/datasets.py convert"),
    output_path: Path = typer.Argument(..., help="The meta.json to write"),
    name: str = typer.Option(..., "--name", help="Package name, e.g. en_pmei_nyt"),
    version: str = typer.Option(..., "--version", help="Package version"),
) -> None:
    """Write a package meta.json with the evaluation scores, labels and data source."""
    meta = json.loads((model_dir / "meta.json").read_text(encoding="utf-8"))
    scores = flatten_scores(json.loads(scores_path.read_text(encoding="utf-8")))
    info = json.loads(corpus_info.read_text(encoding="utf-8"))
    dataset = info["dataset"]
    if name == DEFAULT_NAME and dataset not in ("nyt", "nyt_dev90", "sample"):
        fail(Errors.E031.format(name=name, dataset=dataset))
    lang = meta.get("lang", "en")
    # spacy package prefixes the language itself: "pmei_nyt" becomes en_pmei_nyt.
    meta["name"] = name[len(lang) + 1 :] if name.startswith(f"{lang}_") else name
    meta["version"] = version
    meta["description"] = (
        "Joint entity and relation extraction with PMEI (Sun et al., AAAI 2021) as the "
        "spaCy component pmei_relations (spacy-pmei): sets doc.ents and doc._.relations "
        f"(head Span, label, tail Span, score). Trained on {info['description']}."
    )
    if info.get("source"):
        meta["sources"] = [{"name": info["source_name"], "url": info["source"]}]
    meta["license"] = info.get("license", "NOASSERTION")
    split = info["eval_split"]
    notes = [
        f"Scores: `spacy evaluate` on the {split} split of {dataset} "
        f"({info['files'][split]}); the model was selected on {info['select']} over the dev split.",
    ]
    if split == "dev":
        notes.append(
            "There was no test file, so these are scores on the split that selected the "
            "model: they overestimate, and are not comparable with published test results."
        )
    relation_labels = meta.get("labels", {}).get("pmei_relations", [])
    entity_labels = _entity_labels(model_dir)
    notes.append(
        f"Entity labels: {', '.join(entity_labels)}. Relation labels: the {len(relation_labels)} "
        "of the training data (labels.pmei_relations)."
    )
    meta["notes"] = "\n\n".join(notes)
    meta["performance"] = {**scores, "eval_split": split}
    # What the pipeline saw: which files, how many sentences, how a split was cut.
    meta["training_data"] = {
        key: info[key] for key in ("dataset", "source", "files", "sentences", "resplit", "select") if key in info
    }
    output_path.parent.mkdir(parents=True, exist_ok=True)
    output_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    msg.good(f"Saved the package meta to {output_path}")
    msg.table([(k, f"{v * 100:.2f}") for k, v in scores.items() if _is_score(k, v)])


def _is_score(key: str, value: Any) -> bool:
    """Whether a key of the scores is one of the relation or entity P/R/F."""
    return key.startswith(("rel_", "ents_")) and isinstance(value, float)


def _entity_labels(model_dir: Path) -> List[str]:
    """The component's entity labels, from its saved cfg."""
    cfg_path = model_dir / "pmei_relations" / "cfg"
    if not cfg_path.exists():
        return []
    return json.loads(cfg_path.read_text(encoding="utf-8")).get("entity_labels", [])


if __name__ == "__main__":
    typer.run(main)
