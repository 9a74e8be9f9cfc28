"""Scoring on some relations only (score_relations(relations=...), `spacy-pmei evaluate`)."""
import json

import pytest
import spacy
from spacy.tokens import DocBin, Span
from spacy.training import Example
from typer.testing import CliRunner

from spacy_pmei import Relation
from spacy_pmei.cli import app
from spacy_pmei.scorer import score_relations

from conftest import TRAIN_DATA, make_example

runner = CliRunner()


def _example_with_prediction():
    nlp = spacy.blank("en")
    text, ents, rels = TRAIN_DATA[2]  # lives_in, born_in (same pair), capital_of
    eg = make_example(nlp, text, ents, rels)
    pred = eg.predicted
    pred.ents = [Span(pred, s, e, label=label) for s, e, label in ents]
    per, berlin, germany = pred.ents
    pred._.relations = [
        Relation(per, "lives_in", berlin),  # right
        Relation(per, "capital_of", germany),  # wrong pair
        Relation(berlin, "visited", germany),  # a relation the gold has none of
    ]
    return eg


def test_labels_restrict_predicted_and_gold_triples():
    eg = _example_with_prediction()
    everything = score_relations([eg])
    assert everything["rel_exact_p"] == pytest.approx(1 / 3)
    assert everything["rel_exact_r"] == pytest.approx(1 / 3)
    only = score_relations([eg], relations={"lives_in", "born_in"})
    # lives_in right, born_in missed; capital_of and visited are not scored
    assert only["rel_exact_p"] == pytest.approx(1.0)
    assert only["rel_exact_r"] == pytest.approx(0.5)
    assert set(only["rel_exact_per_type"]) == {"lives_in", "born_in"}
    # a label nobody has: nothing to score, not a crash
    assert score_relations([eg], relations={"founded"})["rel_exact_f"] == 0.0


def test_pipe_score_counts_gold_of_relations_the_pipe_lacks(trained_nlp):
    """spaCy's Pipe.score passes labels=pipe.labels to the scorer: it must not filter on them.

    The gold has born_in and capital_of, which the pipeline knows, and a relation it
    was never trained on: that triple is missed, and recall must say so.
    """
    pipe = trained_nlp.get_pipe("pmei_relations")
    assert "founded" not in pipe.labels
    eg = _example_with_prediction()
    per, berlin, germany = eg.reference.ents
    eg.reference._.relations = [*eg.reference._.relations, Relation(per, "founded", germany)]
    n_gold = len(eg.reference._.relations)
    scores = pipe.score([eg])
    assert scores["rel_exact_r"] == pytest.approx(1 / n_gold)
    unfiltered = score_relations([eg])
    for key in ("rel_exact_p", "rel_exact_r", "rel_exact_f", "rel_partial_r"):
        assert scores[key] == pytest.approx(unfiltered[key])
    assert "founded" in scores["rel_exact_per_type"]


@pytest.fixture(scope="module")
def paths(trained_nlp, tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    trained_nlp.to_disk(root / "model")
    gold = [make_example(trained_nlp, *item).reference for item in TRAIN_DATA]
    DocBin(store_user_data=True, docs=gold).to_disk(root / "gold.spacy")
    return root


def test_cli_scores_like_spacy_evaluate(paths, trained_nlp):
    out = paths / "all.json"
    result = runner.invoke(app, ["evaluate", str(paths / "model"), str(paths / "gold.spacy"), "--output", str(out)])
    assert result.exit_code == 0, result.output
    scores = json.loads(out.read_text())
    examples = [make_example(trained_nlp, *item) for item in TRAIN_DATA]
    expected = trained_nlp.evaluate(examples)
    for key in ("rel_exact_f", "rel_partial_f", "ents_f"):
        assert scores[key] == pytest.approx(expected[key])
    assert scores["gold_triples"] == 6 and scores["gold_triples_left_out"] == 0
    assert scores["relations_scored"] == "all"


def test_cli_relations_from_a_list_or_a_rel2id_file(paths):
    listed = paths / "listed.json"
    result = runner.invoke(
        app, ["evaluate", str(paths / "model"), str(paths / "gold.spacy"), "--relations", "born_in, visited",
              "--output", str(listed)],
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(listed.read_text())
    # born_in twice, visited twice; lives_in and capital_of left out
    assert scores["gold_triples"] == 4 and scores["gold_triples_left_out"] == 2
    assert set(scores["rel_exact_per_type"]) <= {"born_in", "visited"}
    assert "2 gold triples of other relations not scored" in result.output
    rel2id = paths / "rel2id.json"
    rel2id.write_text(json.dumps([{"0": "born_in", "1": "visited"}, {"born_in": 0, "visited": 1}]))
    from_file = paths / "file.json"
    result = runner.invoke(
        app, ["evaluate", str(paths / "model"), str(paths / "gold.spacy"), "--relations", str(rel2id),
              "--output", str(from_file)],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(from_file.read_text()) == scores


def test_cli_warns_of_relations_the_pipeline_lacks(paths):
    with pytest.warns(UserWarning, match="W003"):
        result = runner.invoke(
            app, ["evaluate", str(paths / "model"), str(paths / "gold.spacy"), "--relations", "born_in,founded"],
        )
    assert result.exit_code == 0, result.output


def test_cli_bad_input_is_a_coded_error(paths):
    model, gold = str(paths / "model"), str(paths / "gold.spacy")
    (paths / "broken.spacy").write_text("not a DocBin")
    cases = [
        ([model, gold, "--relations", " , "], "E017"),
        ([model, str(paths / "broken.spacy")], "E111"),
        (["no_such_pipeline", gold], "E016"),
    ]
    for args, code in cases:
        result = runner.invoke(app, ["evaluate", *args])
        assert result.exit_code == 1, args
        assert code in result.output, (args, result.output)


def test_string_match_scores_by_entity_text_per_sentence():
    """The papers' protocol (CasRel): a triple is right when its strings match a gold triple of
    the sentence, even at other positions; position match calls the same prediction wrong."""
    nlp = spacy.blank("en")
    gold = nlp("Paris is in France and Paris is big .")
    gold.ents = [Span(gold, 0, 1, label="LOC"), Span(gold, 3, 4, label="LOC")]
    gold._.relations = [Relation(gold.ents[0], "located_in", gold.ents[1])]
    pred = nlp(gold.text)
    second_paris, france = Span(pred, 5, 6, label="LOC"), Span(pred, 3, 4, label="LOC")
    pred.ents = [france, second_paris]
    pred._.relations = [
        Relation(second_paris, "located_in", france),  # the other "Paris": strings match
        Relation(france, "located_in", second_paris),  # reversed: wrong either way
    ]
    scores = score_relations([Example(pred, gold)])
    assert scores["rel_exact_p"] == 0.0 and scores["rel_exact_r"] == 0.0
    assert scores["rel_string_p"] == pytest.approx(0.5)
    assert scores["rel_string_r"] == pytest.approx(1.0)
    # strings are matched within a sentence only: the same triple in another doc does not count
    other = nlp("France is not here .")
    other._.relations = []
    across = score_relations([Example(pred, other), Example(nlp("x"), gold)])
    assert across["rel_string_p"] == 0.0 and across["rel_string_r"] == 0.0
