"""The step-cost benchmark of issue #31 (python -m spacy_pmei.step_cost) on a tiny batch."""
from typer.testing import CliRunner

import typer

from spacy_pmei.step_cost import SAMPLE, _blocks, build, stage_seconds, step_cost

from conftest import load_script


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



def test_interleaved_steps_take_turns_and_run_the_hook_before_each_update():
    from spacy_pmei.step_cost import interleaved_steps

    seen, state = [], {}

    class Fake:
        def __init__(self, name):
            self.name = name

        def update(self, batch, sgd=None, drop=0.0):
            seen.append((self.name, state.get("arm"), batch))

    pipelines = {name: (Fake(name), None) for name in ("a", "b")}
    times = interleaved_steps(pipelines, [1, 2, 3], before_step=lambda name: state.update(arm=name))
    # one warm-up each on the first batch, then a round per batch, the arms in turn,
    # each update after its own arm's hook
    assert seen == [("a", "a", 1), ("b", "b", 1)] + [(n, n, b) for b in (1, 2, 3) for n in ("a", "b")]
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}


def test_the_before_and_after_run_restores_the_shipped_functions():
    import spacy_pmei.loss as loss_module
    import spacy_pmei.pytorch_pmei as network_module

    ab = load_script("step_cost_ab")
    shipped = (network_module.subject_scores, loss_module._table_bce)
    app = typer.Typer()
    app.command()(ab.main)
    result = CliRunner().invoke(app, ["--data", str(SAMPLE), "--rounds", "1", "--batch-size", "8"])
    assert result.exit_code == 0, result.output
    for arm in ("mtl:", "pmei, before:", "pmei, shipped:", "shipped / before (PMEI):"):
        assert arm in result.output
    assert (network_module.subject_scores, loss_module._table_bce) == shipped


def test_the_before_table_loss_is_the_shipped_one():
    # The "before" arm must time the same loss: same gradient to the bit, same value to rounding.
    import numpy
    from thinc.api import NumpyOps

    from spacy_pmei.loss import _table_bce

    ab = load_script("step_cost_ab")
    rng = numpy.random.default_rng(0)
    x = (rng.standard_normal((5, 7, 7, 4)) * 3 - 4).astype("float32")
    lengths = numpy.asarray([7, 7, 5, 2, 1])
    cells = tuple(numpy.asarray(c, dtype="int64") for c in ([0, 2, 3], [1, 4, 0], [6, 0, 1], [3, 2, 0]))
    loss, grad = _table_bce(NumpyOps(), x, lengths, cells, 0.5)
    before_loss, before_grad = ab.masked_table_bce(NumpyOps(), x, lengths, cells, 0.5)
    assert numpy.array_equal(grad, before_grad)
    assert abs(loss - before_loss) < 1e-4 * abs(loss)
