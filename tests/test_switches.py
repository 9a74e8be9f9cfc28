"""The switches of issue #31 (each suspect of PMEI's small lead over MTL), and the paper's config."""
import warnings
from pathlib import Path

import numpy
import pytest
import spacy
from thinc.api import Config

from spacy_pmei.architectures import get_network
from spacy_pmei.optimizers import clip_global_norm
from spacy_pmei.pytorch_pmei import PAIR_PRIOR_BIAS

from conftest import SMALL_MODEL, TRAIN_DATA, make_example
from test_configs import corpus, glove_txt  # noqa: F401 (fixtures)

ROOT = Path(__file__).parents[1]


def small(model=None, **cfg):
    nlp = spacy.blank("en")
    nlp.add_pipe("pmei_relations", config={"model": {**SMALL_MODEL, **(model or {})}, **cfg})
    examples = [make_example(nlp, *item) for item in TRAIN_DATA]
    optimizer = nlp.initialize(lambda: examples)
    return nlp, examples, optimizer


@pytest.mark.parametrize("bias,expected", [("prior", PAIR_PRIOR_BIAS), ("zero", 0.0)])
def test_early_rel_bias(bias, expected):
    nlp, _, _ = small({"early_rel_bias": bias})
    network = get_network(nlp.get_pipe("pmei_relations").model)
    assert numpy.allclose(network.early_rel.out.bias.detach().numpy(), expected)
    # the final head keeps its prior
    assert numpy.allclose(network.rel.out.bias.detach().numpy(), PAIR_PRIOR_BIAS)
    assert network.config["early_rel_bias"] == bias  # saved with the network, rebuilt alike


def test_early_rel_bias_is_checked():
    with pytest.raises(ValueError, match="E010.*early_rel_bias"):
        small({"early_rel_bias": "small"})


@pytest.mark.parametrize("on", [True, False])
def test_dropout_on_h(on):
    nlp, examples, optimizer = small({"dropout_on_h": on})
    network = get_network(nlp.get_pipe("pmei_relations").model)
    nlp.update(examples, sgd=optimizer, drop=0.3)
    assert network.dropout.p == pytest.approx(0.3 if on else 0.0)


def test_clip_global_norm_clips_thinc_and_torch_gradients_as_one():
    nlp, examples, _ = small()
    pipe = nlp.get_pipe("pmei_relations")
    pipe.update(examples)  # gradients, no step
    before = clip_global_norm(pipe.model, float("inf"))
    assert before > 0
    assert clip_global_norm(pipe.model, before / 10) == pytest.approx(before)
    assert clip_global_norm(pipe.model, float("inf")) == pytest.approx(before / 10, rel=1e-4)


def test_global_grad_clip_setting_slows_the_first_step():
    moved = {}
    for clip in (0.0, 1e-4):
        nlp, examples, optimizer = small(global_grad_clip=clip)
        network = get_network(nlp.get_pipe("pmei_relations").model)
        start = network.rel.out.weight.detach().clone()
        optimizer.learn_rate = 1.0
        optimizer.b1 = optimizer.b2 = 0.0  # plain SGD: the step is the (clipped) gradient
        optimizer.grad_clip = optimizer.L2 = 0.0  # no per-tensor clip, no weight decay
        nlp.update(examples, sgd=optimizer)
        moved[clip] = float((network.rel.out.weight.detach() - start).norm())
    assert 0 < moved[1e-4] <= 1e-4 * 1.01 < moved[0.0]
    with pytest.raises(ValueError, match="E010.*global_grad_clip"):
        small(global_grad_clip=-1.0)


def test_paper_embed_word_dropout():
    from spacy_pmei.encoders import build_paper_embed

    nlp = spacy.blank("en")
    nlp.vocab.vectors = spacy.vectors.Vectors(shape=(3, 4), data=numpy.ones((3, 4), dtype="f"), keys=[
        nlp.vocab.strings.add(w) for w in ("a", "b", "c")
    ])
    embed = build_paper_embed(width=6, word_dropout=0.5)
    docs = [nlp("a b c a b c a b c a") for _ in range(40)]
    embed.initialize(X=docs)
    numpy.random.seed(0)
    Ys, backprop = embed(docs, is_train=True)
    zero = numpy.concatenate([(Y == 0).all(axis=1) for Y in Ys])
    assert 0.4 < zero.mean() < 0.6  # whole words dropped, at the rate
    # the dropped words get no gradient: with every vector all ones and every dY one,
    # each entry of the projection's gradient counts the words that were kept
    backprop([numpy.ones_like(Y) for Y in Ys])
    (node,) = [n for n in embed.walk() if n.has_param("W")]
    assert numpy.allclose(node.get_grad("W"), (~zero).sum())
    predicted = embed.predict(docs)
    assert not numpy.concatenate([(Y == 0).all(axis=1) for Y in predicted]).any()  # none at prediction
    assert embed.get_dim("nO") == 6 and predicted[0].shape == (10, 6)


def flat_config(name: str) -> dict:
    config = Config().from_disk(ROOT / "configs" / f"{name}.cfg", interpolate=False)
    return {f"{section}.{key}": value for section, values in _walk(config) for key, value in values.items()}


def changed_settings(a: str, b: str) -> set:
    base, other = flat_config(a), flat_config(b)
    return {k for k in set(base) | set(other) if base.get(k) != other.get(k)}


def test_paper_config_differs_only_in_the_switches():
    changed = changed_settings("bilstm_glove", "bilstm_glove_paper")
    embed = "components.pmei_relations.model.tok2vec.embed"
    assert changed == {
        "components.pmei_relations.global_grad_clip",
        "training.optimizer.grad_clip",
        "components.pmei_relations.model.dropout_on_h",
        "components.pmei_relations.model.early_rel_bias",
        f"{embed}.@architectures", f"{embed}.attrs", f"{embed}.rows", f"{embed}.include_static_vectors",
        f"{embed}.word_dropout", f"{embed}.tag_width", f"{embed}.tag_rows",
    }


def test_paper_pos_config_differs_from_the_paper_config_only_in_the_tags():
    changed = changed_settings("bilstm_glove_paper", "bilstm_glove_paper_pos")
    assert {k for k in changed if not k.startswith("components.tagger")} == {
        "nlp.pipeline", "training.annotating_components", "training.score_weights.tag_acc",
        "components.pmei_relations.model.tok2vec.embed.tag_width",
        "components.pmei_relations.model.tok2vec.encode.input_width",
    }
    pos = flat_config("bilstm_glove_paper_pos")
    assert pos["nlp.pipeline"] == ["tagger", "pmei_relations"] and pos["training.annotating_components"] == ["tagger"]
    embed, encode = "components.pmei_relations.model.tok2vec.embed", "components.pmei_relations.model.tok2vec.encode"
    assert pos[f"{embed}.tag_width"] == 10 and pos[f"{encode}.input_width"] == pos[f"{embed}.width"] + 10


def test_bilstm_input_width_must_match_the_embedding():
    from spacy_pmei.encoders import build_bilstm_encoder

    encoder = build_bilstm_encoder(width=4, input_width=6)
    encoder.initialize()
    Ys = encoder.predict([numpy.ones((3, 6), dtype="f"), numpy.ones((0, 6), dtype="f")])
    assert [Y.shape for Y in Ys] == [(3, 4), (0, 4)]
    with pytest.raises(ValueError, match="E033.*4 input columns but its embedding gives 6"):
        build_bilstm_encoder(width=4).predict([numpy.ones((3, 6), dtype="f")])
    with pytest.raises(ValueError, match="E010.*input_width"):
        build_bilstm_encoder(width=4, input_width=0)


def test_paper_pos_config_tags_the_text_it_reads(corpus, glove_txt, tmp_path):
    """bilstm_glove_paper_pos.cfg: the tagger learns the corpus's tags in the same loop, and
    pmei_relations reads the tags it predicts, in training and on raw text."""
    import io

    from spacy.tokens import DocBin
    from spacy.training.initialize import init_nlp
    from spacy.training.loop import train
    from spacy.util import load_config

    from spacy_pmei.vectors import build_vectors

    def tag(word: str) -> str:
        return "." if not word[0].isalnum() else "NNP" if word[0].isupper() else "XX"

    tagged = {}
    for split, path in corpus.items():
        docs = list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))
        for doc in docs:
            for token in doc:
                token.tag_ = tag(token.text)
        tagged[split] = tmp_path / f"{split}.spacy"
        DocBin(store_user_data=True, docs=docs).to_disk(tagged[split])
    build_vectors(tmp_path / "vectors", glove_txt=glove_txt)
    overrides = {
        "paths.train": str(tagged["train"]), "paths.dev": str(tagged["dev"]),
        "paths.vectors": str(tmp_path / "vectors"),
        "training.max_steps": 30, "training.eval_frequency": 15, "training.batcher.size": 8,
    }
    config = ROOT / "configs" / "bilstm_glove_paper_pos.cfg"
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*W004")
        nlp = init_nlp(load_config(config, overrides=overrides))  # the tagger comes first: no W004
    untagged = {**overrides, "nlp.pipeline": ["pmei_relations"], "training.annotating_components": []}
    with pytest.warns(UserWarning, match="W004.*tag_width = 10.*no component before it"):
        init_nlp(load_config(config, overrides=untagged))
    not_annotating = {**overrides, "training.annotating_components": []}
    with pytest.warns(UserWarning, match="W004.*tagger before it is not in .training. annotating_components"):
        init_nlp(load_config(config, overrides=not_annotating))
    (tmp_path / "out").mkdir()
    train(nlp, tmp_path / "out", stdout=io.StringIO(), stderr=io.StringIO())
    loaded = spacy.load(tmp_path / "out" / "model-last")
    assert loaded.pipe_names == ["tagger", "pmei_relations"]
    doc = loaded("The New York Times reported it .")
    assert {t.tag_ for t in doc} <= {".", "NNP", "XX"}  # the tagger set a tag of the corpus on every word
    # the tags reach the encoder: the same words, tagged otherwise by hand, read otherwise
    tagged_as = {}
    for name in ("NNP", "XX"):
        tagged_as[name] = loaded.make_doc(doc.text)
        for token in tagged_as[name]:
            token.tag_ = name
    tok2vec = loaded.get_pipe("pmei_relations").model.get_ref("tok2vec")
    H_nnp, H_xx = tok2vec.predict([tagged_as["NNP"], tagged_as["XX"]])
    assert H_nnp.shape == H_xx.shape == (len(doc), 100) and not numpy.allclose(H_nnp, H_xx)


def _walk(config, prefix=""):
    leaves = {k: v for k, v in config.items() if not isinstance(v, dict)}
    yield prefix.rstrip("."), leaves
    for k, v in config.items():
        if isinstance(v, dict):
            yield from _walk(v, f"{prefix}{k}.")


def test_paper_config_trains_saves_and_loads(corpus, glove_txt, tmp_path):
    """bilstm_glove_paper.cfg end to end: vectors, a few steps of spaCy's loop, saved and loaded."""
    import io

    from spacy.training.initialize import init_nlp
    from spacy.training.loop import train
    from spacy.util import load_config

    from spacy_pmei.vectors import build_vectors

    build_vectors(tmp_path / "vectors", glove_txt=glove_txt)
    overrides = {
        "paths.train": str(corpus["train"]), "paths.dev": str(corpus["dev"]),
        "paths.vectors": str(tmp_path / "vectors"),
        "training.max_steps": 4, "training.eval_frequency": 2, "training.batcher.size": 8,
    }
    config = load_config(ROOT / "configs" / "bilstm_glove_paper.cfg", overrides=overrides)
    nlp = init_nlp(config)
    network = get_network(nlp.get_pipe("pmei_relations").model)
    assert numpy.allclose(network.early_rel.out.bias.detach().numpy(), 0.0)
    (tmp_path / "out").mkdir()
    train(nlp, tmp_path / "out", stdout=io.StringIO(), stderr=io.StringIO())
    assert network.dropout.p == 0.0  # training.dropout 0.1 reached the embedding, not H
    loaded = spacy.load(tmp_path / "out" / "model-best")
    assert loaded.get_pipe("pmei_relations").cfg["global_grad_clip"] == 5.0
    doc = loaded("The New York Times reported it .")
    assert isinstance(doc._.relations, list)
