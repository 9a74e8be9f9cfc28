"""Overfitting: the bar of spaCy's test_span_finder / test_textcat."""
import spacy
from spacy.tokens import DocBin

from conftest import TRAIN_DATA, gold_triples, make_example, triples_of


def test_overfit_loss_falls(trained_nlp):
    assert trained_nlp.meta["_final_loss"] < 0.5


def test_overfit_exact_triples(trained_nlp):
    for (text, ents, _), gold in zip(TRAIN_DATA, gold_triples()):
        doc = trained_nlp(text)
        assert triples_of(doc) == gold
        assert [(e.start, e.end, e.label_) for e in doc.ents] == list(ents)
        for rel in doc._.relations:
            assert isinstance(rel.score, float) and 0.5 <= rel.score <= 1.0


def test_overfit_after_to_disk(trained_nlp, tmp_path):
    trained_nlp.to_disk(tmp_path / "model")
    nlp2 = spacy.load(tmp_path / "model")
    for text, _, _ in TRAIN_DATA:
        doc1, doc2 = trained_nlp(text), nlp2(text)
        assert triples_of(doc1) == triples_of(doc2)
        assert [r.score for r in doc1._.relations] == [r.score for r in doc2._.relations]
        assert [(e.start, e.end, e.label_) for e in doc1.ents] == [
            (e.start, e.end, e.label_) for e in doc2.ents
        ]


def test_overfit_evaluate(trained_nlp):
    examples = [make_example(trained_nlp, *item) for item in TRAIN_DATA]
    scores = trained_nlp.evaluate(examples)
    for key in ("rel_exact", "rel_partial", "ents"):
        assert scores[f"{key}_p"] == 1.0
        assert scores[f"{key}_r"] == 1.0
        assert scores[f"{key}_f"] == 1.0
    assert set(scores["rel_exact_per_type"]) == {"born_in", "visited", "lives_in", "capital_of"}


def test_evaluate_counts_missed_and_wrong_triples(trained_nlp):
    # Gold with an extra triple the model never predicts, and without one it does.
    text, ents, rels = TRAIN_DATA[1]
    gold = make_example(trained_nlp, text, ents, [rels[0], (2, "visited", 1)])
    scores = trained_nlp.evaluate([gold])
    # predicted: 2 triples, 1 right; gold: 2 triples, 1 found
    assert abs(scores["rel_exact_p"] - 0.5) < 1e-9
    assert abs(scores["rel_exact_r"] - 0.5) < 1e-9


def test_partial_match_ignores_span_starts(trained_nlp):
    text, ents, rels = TRAIN_DATA[1]
    # gold says "York City" instead of "New York City": exact misses, partial hits
    shifted = [(0, 2, "PER"), (4, 6, "LOC"), (7, 8, "LOC")]
    scores = trained_nlp.evaluate([make_example(trained_nlp, text, shifted, rels)])
    assert scores["rel_partial_f"] == 1.0
    assert abs(scores["rel_exact_r"] - 0.5) < 1e-9


def test_pipe_equals_call(trained_nlp):
    texts = [t for t, _, _ in TRAIN_DATA] + ["", "Paris"]
    piped = list(trained_nlp.pipe(texts, batch_size=2))
    for text, doc in zip(texts, piped):
        single = trained_nlp(text)
        assert triples_of(single) == triples_of(doc)
        assert [r.score for r in single._.relations] == [r.score for r in doc._.relations]


def test_predict_is_deterministic(trained_nlp):
    text = TRAIN_DATA[2][0]
    scores = [[r.score for r in trained_nlp(text)._.relations] for _ in range(3)]
    assert scores[0] == scores[1] == scores[2]


def test_relations_survive_doc_to_bytes_and_docbin(trained_nlp):
    docs = list(trained_nlp.pipe([t for t, _, _ in TRAIN_DATA]))
    for doc in docs:
        restored = type(doc)(trained_nlp.vocab).from_bytes(doc.to_bytes())
        assert triples_of(restored) == triples_of(doc)
        assert [r.score for r in restored._.relations] == [r.score for r in doc._.relations]
    data = DocBin(docs=docs, store_user_data=True).to_bytes()
    back = list(DocBin().from_bytes(data).get_docs(trained_nlp.vocab))
    for doc, other in zip(docs, back):
        assert triples_of(other) == triples_of(doc)
        assert [(r.head.label_, r.tail.label_) for r in other._.relations] == [
            (r.head.label_, r.tail.label_) for r in doc._.relations
        ]


def test_relations_survive_multiprocessing(trained_nlp):
    texts = [t for t, _, _ in TRAIN_DATA] * 2
    single = [triples_of(trained_nlp(t)) for t in texts]
    multi = [triples_of(doc) for doc in trained_nlp.pipe(texts, n_process=2, batch_size=2)]
    assert multi == single
