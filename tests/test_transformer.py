"""A transformer-listener config with a tiny BERT built here (no download)."""
import pytest
import spacy
from thinc.api import fix_random_seed

from conftest import TRAIN_DATA, make_example, triples_of

transformers = pytest.importorskip("transformers")
pytest.importorskip("spacy_transformers")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 2-layer BERT with a WordPiece vocabulary of the test sentences, saved locally."""
    path = tmp_path_factory.mktemp("tiny_bert")
    words = sorted({w.lower() for text, _, _ in TRAIN_DATA for w in text.split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(str(path))
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    transformers.BertModel(config).save_pretrained(str(path))
    return str(path)


def test_transformer_listener_trains_and_roundtrips(tiny_bert, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "transformer",
        config={
            "model": {
                "@architectures": "spacy-transformers.TransformerModel.v3",
                "name": tiny_bert,
                "tokenizer_config": {"use_fast": True},
                "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 64, "stride": 48},
            }
        },
    )
    nlp.add_pipe(
        "pmei_relations",
        config={
            "model": {
                "@architectures": "spacy-pmei.PMEI.v1",
                "dropout": 0.0,
                "tok2vec": {
                    "@architectures": "spacy-transformers.TransformerListener.v1",
                    "grad_factor": 1.0,
                    "pooling": {"@layers": "reduce_mean.v1"},
                },
            }
        },
    )
    examples = [make_example(nlp, *item) for item in TRAIN_DATA]
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.003
    losses = []
    for _ in range(40):
        losses.append(nlp.update(examples, sgd=optimizer)["pmei_relations"])
    assert losses[-1] < losses[0] / 4
    network_width = nlp.get_pipe("pmei_relations").model.get_ref("torch").shims[0]._model.config["width"]
    assert network_width == 32
    docs = list(nlp.pipe([t for t, _, _ in TRAIN_DATA] + [""]))
    nlp.to_disk(tmp_path / "nlp")
    nlp2 = spacy.load(tmp_path / "nlp")
    docs2 = list(nlp2.pipe([t for t, _, _ in TRAIN_DATA] + [""]))
    assert [triples_of(d) for d in docs] == [triples_of(d) for d in docs2]
