"""The step-cost benchmark of issue #31 (python -m spacy_pmei.step_cost) on a tiny batch."""
from typer.testing import CliRunner

import typer

from spacy_pmei.step_cost import SAMPLE, _blocks, build, stage_seconds, step_cost


def test_stages_are_timed_on_the_blocks_the_model_makes():
    nlp, _, examples = build("pmei", SAMPLE, seed=0)
    batch = examples[:12]
    pipe = nlp.get_pipe("pmei_relations")
    outputs = pipe.model.predict([eg.predicted for eg in batch])
    blocks = _blocks(nlp, batch)
    assert [tuple(H.shape[:2]) for H, _, _ in blocks] == [tuple(b.ent_logits.shape[:2]) for b in outputs.blocks]
    found = stage_seconds(nlp, batch, repeats=1)
    assert set(found) == {
        "tok2vec (embedding, BiLSTM)", "final heads (C_e, C_r)", "table loss, one n x n x L table",
        "early heads (C'_e, C'_r, y')", "stochastic maps (posterior, prior, KL)", "  of which the KL of both maps",
    }
    assert all(t > 0 for t in found.values())
    mtl, _, _ = build("mtl", SAMPLE, seed=0)
    assert set(stage_seconds(mtl, batch, repeats=1)) == {
        "tok2vec (embedding, BiLSTM)", "final heads (C_e, C_r)", "table loss, one n x n x L table"
    }


def test_the_command_prints_both_steps_and_the_ratio():
    app = typer.Typer()
    app.command()(step_cost)
    result = CliRunner().invoke(app, ["--batch-size", "8", "--steps", "1"])
    assert result.exit_code == 0, result.output
    for variant in ("mtl", "mtl_sm", "pmei_no_sm", "pmei"):
        assert f"| {variant} |" in result.output
    assert "A PMEI step costs" in result.output and "an MTL step" in result.output
