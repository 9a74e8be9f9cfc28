"""Bulk extraction: streaming JSONL out, bad lines reported, bad models refused."""
import json

import pytest
import spacy
from typer.testing import CliRunner

from spacy_pmei.cli import app

from conftest import TRAIN_DATA

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(trained_nlp, tmp_path_factory):
    path = tmp_path_factory.mktemp("model")
    trained_nlp.to_disk(path)
    return path


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_extract_plain_text(model_dir, tmp_path, trained_nlp):
    texts = [t for t, _, _ in TRAIN_DATA] + [""]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["extract", str(model_dir), str(tmp_path / "in.txt"), str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    records = _read(out)
    assert [r["line"] for r in records] == list(range(1, len(texts) + 1))
    for text, record in zip(texts, records):
        doc = trained_nlp(text)
        assert [(e["start_char"], e["end_char"], e["label"]) for e in record["entities"]] == [
            (e.start_char, e.end_char, e.label_) for e in doc.ents
        ]
        assert [(r["head"]["text"], r["label"], r["tail"]["text"]) for r in record["relations"]] == [
            (r.head.text, r.label, r.tail.text) for r in doc._.relations
        ]
        for rel in record["relations"]:
            assert text[rel["head"]["start_char"] : rel["head"]["end_char"]] == rel["head"]["text"]
            assert 0.5 <= rel["score"] <= 1.0


def test_extract_jsonl_keeps_ids_and_reports_bad_lines(model_dir, tmp_path):
    lines = [
        json.dumps({"id": "a", "text": TRAIN_DATA[0][0]}),
        "{not json",
        json.dumps({"id": "b", "body": "no text field"}),
        "",
        json.dumps({"id": "c", "text": TRAIN_DATA[1][0], "meta": {"source": "x"}}),
    ]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["extract", str(model_dir), str(tmp_path / "in.jsonl"), str(out), "--no-progress", "--batch-size", "1"])
    assert result.exit_code == 0, result.output
    records = _read(out)
    assert [(r["id"], r["line"]) for r in records] == [("a", 1), ("c", 5)]
    assert records[1]["meta"] == {"source": "x"}
    assert records[1]["relations"]
    for number in (2, 3, 4):
        assert f"in.jsonl:{number}: skipped" in result.output


def test_extract_multiprocess_matches(model_dir, tmp_path):
    (tmp_path / "in.txt").write_text("\n".join(t for t, _, _ in TRAIN_DATA * 3) + "\n")
    outs = []
    for n in ("1", "2"):
        out = tmp_path / f"out{n}.jsonl"
        result = runner.invoke(app, ["extract", str(model_dir), str(tmp_path / "in.txt"), str(out), "--no-progress", "--n-process", n, "--batch-size", "2"])
        assert result.exit_code == 0, result.output
        outs.append(_read(out))
    assert outs[0] == outs[1]


def _flat(result):
    return " ".join(result.output.split())


def test_extract_refuses_bad_models_before_reading(tmp_path):
    (tmp_path / "in.txt").write_text("text\n")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["extract", str(tmp_path / "missing"), str(tmp_path / "in.txt"), str(out)])
    assert result.exit_code == 1 and "[E015]" in _flat(result) and not out.exists()
    spacy.blank("en").to_disk(tmp_path / "blank")
    result = runner.invoke(app, ["extract", str(tmp_path / "blank"), str(tmp_path / "in.txt"), str(out)])
    assert result.exit_code == 1 and "no pmei_relations" in _flat(result) and not out.exists()
    untrained = spacy.blank("en")
    untrained.add_pipe("pmei_relations")
    untrained.to_disk(tmp_path / "untrained")
    result = runner.invoke(app, ["extract", str(tmp_path / "untrained"), str(tmp_path / "in.txt"), str(out)])
    assert result.exit_code == 1 and "not trained" in _flat(result) and not out.exists()


@pytest.mark.parametrize(
    "args,code",
    [
        (["--format", "xml"], "[E020]"),
        (["--workers", "2"], "[E022]"),
        (["--ray", "--n-process", "2"], "[E023]"),
    ],
)
def test_extract_option_errors_are_coded(tmp_path, args, code):
    """Checked before the model is loaded: a missing model is not what the message says."""
    (tmp_path / "in.txt").write_text("text\n")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["extract", str(tmp_path / "missing"), str(tmp_path / "in.txt"), str(out), *args])
    assert result.exit_code == 1 and code in _flat(result) and not out.exists()
    result = runner.invoke(app, ["extract", str(tmp_path / "missing"), str(tmp_path / "none.txt"), str(out)])
    assert result.exit_code == 1 and "[E021]" in _flat(result)


def test_fail_gives_every_message_a_code(capsys):
    """One fail() for the whole CLI (serve included); a message without a code gets E024."""
    import typer

    from spacy_pmei.cli import fail
    from spacy_pmei.errors import Errors
    from spacy_pmei.serve import cli as serve_cli

    assert serve_cli.fail is fail
    for message, code in ((Errors.E021.format(path="x"), "[E021]"), ("disk full", "[E024]")):
        with pytest.raises(typer.Exit) as exit_info:
            fail(message)
        assert exit_info.value.exit_code == 1
        out = capsys.readouterr().out
        assert code in out and out.count("[E") == 1
