"""The project's datasets: which files each has, how to read them, what selects a model.

Called by project.yml:

    python scripts/datasets.py fetch-local DATASET ASSETS_DIR DATA_DIR
    python scripts/datasets.py convert DATASET ASSETS_DIR CORPUS_DIR --select KEY --config NAME

`convert` writes train.spacy, dev.spacy and test.spacy (where the split's file
is there), eval.spacy (the test split, or dev where there is no test file),
labels.json (the component's labels: every relation of rel2id.json, whether or
not the training split has it) and corpus.json, which says what was converted
from where, for the package's meta.
"""

import json
import shutil
from pathlib import Path
from typing import Dict, NamedTuple, Optional

import typer
from spacy.tokens import DocBin
from thinc.api import Config
from spacy.vocab import Vocab
from wasabi import msg

from spacy_pmei.cli import InputFormat, convert_cli, fail
from spacy_pmei.errors import Errors
from spacy_pmei.readers import corpus_labels

SPLITS = ("train", "dev", "test")
PRGC = "https://github.com/hy-struggle/PRGC/tree/8bbaf340472d232f09a0b8004457b712e1ff1a66/data"
BIRTE = "https://github.com/neukg/BiRTE/tree/c135841dc4556e036968be99bcdcac08fddcc7c6/datasets"
CASREL_FILES = {"train": "train_triples.json", "dev": "val_triples.json", "test": "test_triples.json"}
JOINTER = "https://github.com/yubowen-ph/JointER/tree/69f5eb04a8457ac300081079e6edf9ff8efe61e8/dataset/WebNLG/data"
HRL_FILES = {"train": "train.json", "dev": "dev.json", "test": "test.json"}


class Dataset(NamedTuple):
    """How a dataset's files are named and read, and what it is."""

    description: str
    source_name: str
    fmt: InputFormat
    files: Dict[str, str]
    select: str  # the score the benchmark reports, and the one to select models on
    source: str
    license: str = "NOASSERTION"
    # Per split, a JointER file of the same sentences whose POS tags convert sets
    tags: Dict[str, str] = {}
    # Where fetch-local finds a file in DATA_DIR if not at DATASET/NAME: NAME -> path
    local: Dict[str, str] = {}


DATASETS = {
    "sample": Dataset(
        "the NYT sample bundled with spacy-pmei (300 training and 60 held-out sentences, "
        "all from the NYT dev split): a demo, not a benchmark",
        "NYT dev split (CopyRE, CasRel format), re-split",
        InputFormat.casrel,
        {"train": "nyt_sample_train.json", "dev": "nyt_sample_dev.json"},
        "rel_exact_f",
        f"{PRGC}/NYT",
    ),
    "nyt": Dataset(
        "NYT (CopyRE, full entity mentions)",
        "NYT (CopyRE, CasRel format)",
        InputFormat.casrel,
        CASREL_FILES,
        "rel_exact_f",
        f"{PRGC}/NYT",
    ),
    "nyt_star": Dataset(
        "NYT* (CopyRE, last word of each entity)",
        "NYT* (CopyRE via CasRel)",
        InputFormat.casrel_star,
        CASREL_FILES,
        "rel_partial_f",
        f"{PRGC}/NYT-star",
    ),
    "webnlg": Dataset(
        "WebNLG (ETL-Span version, full entity mentions)",
        "WebNLG (ETL-Span version, CasRel format)",
        InputFormat.casrel,
        CASREL_FILES,
        "rel_exact_f",
        f"{PRGC}/WebNLG",
        "CC-BY-NC-SA-4.0",
    ),
    "webnlg_pos": Dataset(
        "WebNLG (ETL-Span version, full entity mentions) with the PTB POS tags of JointER's "
        "copy of the same sentences (train and dev; a test split has no tags)",
        "WebNLG (ETL-Span version, CasRel format); POS tags: JointER's WebNLG",
        InputFormat.casrel,
        CASREL_FILES,
        "rel_exact_f",
        f"{PRGC}/WebNLG; {JOINTER}",
        "CC-BY-NC-SA-4.0",
        tags={"train": "pos_train.json", "dev": "pos_dev.json"},
        local={
            **{name: f"webnlg/{name}" for name in [*CASREL_FILES.values(), "rel2id.json"]},
            "pos_train.json": "webnlg/jointer/train.json",
            "pos_dev.json": "webnlg/jointer/dev.json",
        },
    ),
    "webnlg_star": Dataset(
        "WebNLG* (CopyRE, last word of each entity)",
        "WebNLG* (CopyRE via CasRel)",
        InputFormat.casrel_star,
        CASREL_FILES,
        "rel_partial_f",
        f"{PRGC}/WebNLG-star",
        "CC-BY-NC-SA-4.0",
    ),
    "nyt10": Dataset(
        "NYT10 (HRL version, lower-cased)",
        "NYT10 (HRL version, BiRTE copy)",
        InputFormat.casrel,
        HRL_FILES,
        "rel_exact_f",
        f"{BIRTE}/NYT10",
    ),
    "nyt11": Dataset(
        "NYT11 (HRL version)",
        "NYT11 (HRL version, BiRTE copy)",
        InputFormat.casrel,
        HRL_FILES,
        "rel_exact_f",
        f"{BIRTE}/NYT11",
    ),
    "nyt_dev90": Dataset(
        "NYT dev split (5,000 sentences) cut 90/10 with a fixed seed: train on 4,500, select "
        "on 500; no test split (the NYT training split does not reach every machine)",
        "NYT dev split (CopyRE, CasRel format), re-split 90/10",
        InputFormat.casrel,
        {"train": "train.json", "dev": "dev.json"},
        "rel_exact_f",
        f"{PRGC}/NYT",
    ),
    "own": Dataset(
        "your own data (JSONL with character offsets)",
        "",
        InputFormat.jsonl,
        {"train": "train.jsonl", "dev": "dev.jsonl", "test": "test.jsonl"},
        "rel_exact_f",
        "",
    ),
}

app = typer.Typer(add_completion=False, no_args_is_help=True)


def get_dataset(name: str) -> Dataset:
    """The dataset of a name, or exit with the names there are."""
    if name not in DATASETS:
        fail(Errors.E025.format(name=name, options=", ".join(DATASETS)))
    return DATASETS[name]


@app.command("fetch-local")
def fetch_local(
    dataset: str = typer.Argument(..., help="Dataset name"),
    assets_dir: Path = typer.Argument(..., help="The project's assets folder of the dataset"),
    data_dir: str = typer.Argument("", help="Local copy of the data: a folder per dataset (or the places of Dataset.local)"),
) -> None:
    """Copy a dataset's files from a local folder instead of downloading them."""
    data = get_dataset(dataset)
    if dataset == "nyt_dev90":
        split_nyt_dev(assets_dir, data_dir)
        return
    if dataset == "sample" or not data_dir:
        msg.info("Nothing to copy" + (": the sample is bundled" if dataset == "sample" else ""))
        return
    root = Path(data_dir)
    names = [*data.files.values(), *data.tags.values(), "rel2id.json"]
    places = {name: [root / dataset / name] + ([root / data.local[name]] if name in data.local else []) for name in names}
    tried = " or ".join(sorted({str(path.parent) for paths in places.values() for path in paths}))
    if not (root / dataset).is_dir() and not any(p.is_file() for paths in places.values() for p in paths):
        fail(Errors.E026.format(path=tried, dataset=dataset))
    found = {name: [path for path in paths if path.is_file()] for name, paths in places.items()}
    if not any(found[name] for name in data.files.values()):
        fail(Errors.E027.format(files=", ".join(data.files.values()), path=tried))
    lacking = [" or ".join(map(str, places[name])) for name in data.tags.values() if not found[name]]
    if lacking:  # the tags are no extra: convert needs them
        fail(Errors.E030.format(files=", ".join(lacking)))
    assets_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for name, paths in found.items():
        if paths:
            shutil.copyfile(paths[0], assets_dir / name)
            copied.append(str(paths[0]))
    msg.good(f"Copied {', '.join(copied)} to {assets_dir}")


NYT_DEV90_SEED = 0


def split_nyt_dev(assets_dir: Path, data_dir: str) -> None:
    """Cut the NYT dev split 90/10 (seeded shuffle) into train.json and dev.json.

    The source is DATA_DIR/nyt/val_triples.json, or assets/nyt/val_triples.json
    (from `spacy project assets`) without a data_dir. The records are written
    back unchanged, in the CasRel format, so the converter reports on them as on
    any other file.
    """
    import random

    folder = Path(data_dir) / "nyt" if data_dir else assets_dir.parent / "nyt"
    source = folder / "val_triples.json"
    if not source.is_file():
        fail(Errors.E028.format(path=source))
    records = json.loads(source.read_text(encoding="utf-8"))
    order = list(range(len(records)))
    random.Random(NYT_DEV90_SEED).shuffle(order)
    n_dev = len(records) // 10
    dev_ids, train_ids = sorted(order[:n_dev]), sorted(order[n_dev:])
    assets_dir.mkdir(parents=True, exist_ok=True)
    for name, ids in (("train.json", train_ids), ("dev.json", dev_ids)):
        data = [records[i] for i in ids]
        (assets_dir / name).write_text(json.dumps(data, ensure_ascii=False) + "\n", encoding="utf-8")
    shutil.copyfile(folder / "rel2id.json", assets_dir / "rel2id.json")
    (assets_dir / "split.json").write_text(
        json.dumps({"source": str(source), "seed": NYT_DEV90_SEED, "train": train_ids, "dev": dev_ids}) + "\n",
        encoding="utf-8",
    )
    msg.good(
        f"Split {source} ({len(records)} sentences) into {len(train_ids)} train and {len(dev_ids)} dev "
        f"(seed {NYT_DEV90_SEED}; the record indices are in {assets_dir / 'split.json'})"
    )


def check_tags_for(config: str, dataset: str, data: Dataset) -> None:
    """Stop (E034) before converting where configs/CONFIG.cfg trains a tagger that the
    dataset has no POS tags for: spaCy's tagger would find no labels at initialize."""
    path = Path("configs") / f"{config}.cfg"
    if not config or not path.is_file() or data.tags or data.fmt == InputFormat.jointer:
        return
    if "tagger" in Config().from_disk(path, interpolate=False)["nlp"]["pipeline"]:
        fail(Errors.E034.format(config=path, dataset=dataset))


@app.command("convert")
def convert(
    dataset: str = typer.Argument(..., help="Dataset name"),
    assets_dir: Path = typer.Argument(..., help="The dataset's files"),
    corpus_dir: Path = typer.Argument(..., help="Output folder for the .spacy files"),
    select: str = typer.Option("rel_exact_f", "--select", help="The score that selects the model"),
    config: str = typer.Option("", "--config", help="The config that will train on it (for a check)"),
) -> None:
    """Convert every split that is there to .spacy; eval.spacy is test, else dev."""
    data = get_dataset(dataset)
    check_tags_for(config, dataset, data)
    if config == "sample" and dataset != "sample":
        msg.warn(
            f"configs/sample.cfg is sized for the 300 sentences of the sample on a CPU; "
            f"for {dataset} add --vars.config bilstm_glove (the paper's setup)"
        )
    if data.select == "rel_partial_f" and select != data.select:
        # The gold entities are single words: selecting on exact spans would be selecting
        # on a criterion the benchmark does not score.
        fail(Errors.E029.format(dataset=dataset, select=data.select))
    paths = {split: assets_dir / name for split, name in data.files.items()}
    missing = [str(paths[split]) for split in ("train", "dev") if not paths[split].is_file()]
    missing += [str(assets_dir / name) for name in data.tags.values() if not (assets_dir / name).is_file()]
    if missing:
        fail(Errors.E030.format(files=", ".join(missing)))
    rel2id: Optional[Path] = assets_dir / "rel2id.json"
    if not rel2id.is_file():
        if data.fmt != InputFormat.jsonl:
            fail(Errors.E030.format(files=rel2id))
        rel2id = None
    corpus_dir.mkdir(parents=True, exist_ok=True)
    splits = [split for split in SPLITS if split in paths and paths[split].is_file()]
    for split in splits:
        msg.divider(f"{dataset} {split}: {paths[split]}")
        convert_cli(
            paths[split],
            corpus_dir / f"{split}.spacy",
            fmt=data.fmt,
            rel2id=rel2id,
            report_path=corpus_dir / f"{split}.report.jsonl",
            lang="en",
            limit=0,
            tags_from=assets_dir / data.tags[split] if split in data.tags else None,
        )
    train_docs = DocBin().from_disk(corpus_dir / "train.spacy").get_docs(Vocab())
    labels = corpus_labels(train_docs, rel2id)
    (corpus_dir / "labels.json").write_text(json.dumps(labels, indent=2) + "\n", encoding="utf-8")
    msg.info(f"{len(labels['relations'])} relation labels: {corpus_dir / 'labels.json'}")
    eval_split = "test" if "test" in splits else "dev"
    shutil.copyfile(corpus_dir / f"{eval_split}.spacy", corpus_dir / "eval.spacy")
    info = {
        "dataset": dataset,
        "description": data.description,
        "format": data.fmt.value,
        "select": data.select,
        "source_name": data.source_name,
        "source": data.source,
        "license": data.license,
        "files": {split: paths[split].name for split in splits},
        **({"pos_tags": {split: data.tags[split] for split in splits if split in data.tags}} if data.tags else {}),
        "eval_split": eval_split,
        "sentences": {split: len(DocBin().from_disk(corpus_dir / f"{split}.spacy")) for split in splits},
    }
    split_info = assets_dir / "split.json"
    if split_info.is_file():
        cut = json.loads(split_info.read_text(encoding="utf-8"))
        info["resplit"] = {"source": cut["source"], "seed": cut["seed"], "indices": str(split_info)}
    (corpus_dir / "corpus.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    if eval_split == "dev":
        msg.warn(f"No test file: the project evaluates on {paths['dev'].name}, the dev split")


if __name__ == "__main__":
    app()
