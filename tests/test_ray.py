"""Extraction on Ray: the same output and bad-line reports as `extract`, retries, no silent loss."""

import io
import json
import logging
import os
import sys

import pytest
from typer.testing import CliRunner

ray = pytest.importorskip("ray", reason="extraction on Ray needs ray[data]: pip install 'spacy-pmei[ray]'")
pytest.importorskip("ray.data", reason="extraction on Ray needs ray[data]: pip install 'spacy-pmei[ray]'")

import spacy  # noqa: E402

from spacy_pmei.cli import app  # noqa: E402
from spacy_pmei.extract import extract, load_extraction_model  # noqa: E402
from spacy_pmei.ray_extract import RayExtractor, import_ray, ray_extract  # noqa: E402

from conftest import TRAIN_DATA  # noqa: E402

runner = CliRunner()
# Each actor has one CPU, so Ray runs its torch at one thread; the in-process
# reference runs at one thread too, for byte-equal scores.
pytestmark = pytest.mark.usefixtures("one_torch_thread")
TEXTS = [t for t, _, _ in TRAIN_DATA]
BATCH_SIZE = 8


@pytest.fixture(scope="module")
def ray_cluster(nlp):
    """One local cluster for the module (Ray takes seconds to start).

    Started after the model is trained: training beside Ray's starting workers is
    several times slower on two cores.
    """
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def model_dir(trained_nlp, tmp_path_factory):
    path = tmp_path_factory.mktemp("model")
    trained_nlp.to_disk(path)
    return path


@pytest.fixture(scope="module")
def nlp(model_dir):
    return load_extraction_model(str(model_dir))


def jsonl_lines(n: int = 300):
    """n JSONL lines, about one in ten bad: empty, invalid JSON, no text, text not a string."""
    lines = []
    for i in range(n):
        if i % 29 == 3:
            lines.append("")
        elif i % 31 == 7:
            lines.append('{"id": %d, "text": "unterminated' % i)
        elif i % 37 == 11:
            lines.append(json.dumps({"id": i, "body": TEXTS[0]}))
        elif i % 41 == 13:
            lines.append(json.dumps({"id": i, "text": ["not", "a", "string"]}))
        else:
            text = TEXTS[i % len(TEXTS)] + " And so on ." * (i % 3)
            lines.append(
                json.dumps({"id": f"doc-{i}", "text": text, "meta": {"n": i, "x": 0.1 * i, "é": "ü"}})
            )
    return [line + "\n" for line in lines]


def run_plain(nlp, lines, fmt):
    out, reports = io.StringIO(), []
    stats = extract(
        nlp,
        lines,
        out,
        fmt=fmt,
        batch_size=BATCH_SIZE,
        progress=False,
        on_bad_line=lambda n, why: reports.append((n, why)),
    )
    return out.getvalue(), reports, stats


def test_ray_matches_plain_jsonl(ray_cluster, nlp):
    lines = jsonl_lines()
    expected, expected_reports, expected_stats = run_plain(nlp, lines, "jsonl")
    out, reports = io.StringIO(), []
    stats = ray_extract(
        nlp,
        iter(lines),
        out,
        fmt="jsonl",
        batch_size=BATCH_SIZE,
        workers=2,
        progress=False,
        on_bad_line=lambda n, why: reports.append((n, why)),
    )
    assert sum(bool(json.loads(line)["relations"]) for line in expected.splitlines()) > 150
    assert out.getvalue().splitlines() == expected.splitlines()
    assert out.getvalue() == expected
    assert reports == expected_reports and len(reports) >= 25
    assert {why.split(":")[0] for _, why in reports} == {
        "empty line",
        "invalid JSON",
        "no string field 'text'",
    }
    assert (stats.lines, stats.documents, stats.bad_lines) == (
        300,
        expected_stats.documents,
        expected_reports,
    )


def test_cli_ray_matches_plain_text(ray_cluster, model_dir, tmp_path):
    texts = [TEXTS[i % len(TEXTS)] if i % 17 else "" for i in range(200)] + [
        "  Bobby Fischer ",
        "ünïcode ☃ text",
    ]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    outputs = []
    for name, extra in (("plain", []), ("ray", ["--ray", "--workers", "2"])):
        out = tmp_path / f"{name}.jsonl"
        args = [
            "extract",
            str(model_dir),
            str(tmp_path / "in.txt"),
            str(out),
            "--no-progress",
            "--batch-size",
            str(BATCH_SIZE),
        ]
        result = runner.invoke(app, args + extra)
        assert result.exit_code == 0, result.output
        assert "202 documents from 202 lines; 0 bad lines" in result.output
        outputs.append(out.read_text(encoding="utf-8"))
    assert outputs[1] == outputs[0]
    assert [json.loads(line)["line"] for line in outputs[1].splitlines()] == list(range(1, 203))


def test_failed_and_crashed_batches_are_retried(ray_cluster, nlp, tmp_path):
    """Each chunk raises on its first try, the first one kills its actor; all are retried."""
    flags = tmp_path / "flags"
    flags.mkdir()

    class FailOnce(RayExtractor):
        def __call__(self, batch):
            first_line = json.loads(batch["payload"][0])[0][1]["line"]
            flag = flags / str(first_line)
            if not flag.exists():
                flag.touch()
                if first_line == 1:
                    os._exit(1)  # the actor dies: Ray restarts it and retries the chunk
                raise RuntimeError(f"injected failure at line {first_line}")
            return super().__call__(batch)

    lines = jsonl_lines(120)
    expected, expected_reports, _ = run_plain(nlp, lines, "jsonl")
    out, reports = io.StringIO(), []
    stats = ray_extract(
        nlp,
        lines,
        out,
        fmt="jsonl",
        batch_size=BATCH_SIZE,
        workers=2,
        progress=False,
        on_bad_line=lambda n, why: reports.append((n, why)),
        udf=FailOnce,
    )
    assert out.getvalue() == expected
    assert reports == expected_reports
    n_chunks = -(-stats.documents // BATCH_SIZE)
    assert len(list(flags.iterdir())) == n_chunks > 5


def test_lost_records_are_an_error(ray_cluster, nlp):
    """A chunk that comes back empty is not silently dropped: the run fails with E402."""

    class DropFirstChunk(RayExtractor):
        def __call__(self, batch):
            result = super().__call__(batch)
            if json.loads(result["lines"][0])[0] == 1:
                result["lines"][0], result["json"][0] = "[]", ""
            return result

    lines = [TEXTS[i % len(TEXTS)] + "\n" for i in range(20)]
    with pytest.raises(RuntimeError, match=r"\[E402\].*12 records came back for 20 usable lines"):
        ray_extract(
            nlp, lines, io.StringIO(), batch_size=BATCH_SIZE, workers=1, progress=False, udf=DropFirstChunk
        )


def test_failing_batches_fail_the_run(ray_cluster, nlp):
    """A chunk that fails on every try stops the run (E404) once its retries are spent."""

    class AlwaysFail(RayExtractor):
        def __call__(self, batch):
            raise ValueError("always broken")

    lines = [TEXTS[i % len(TEXTS)] + "\n" for i in range(16)]
    with pytest.raises(RuntimeError, match=r"\[E404\].*ValueError: always broken"):
        ray_extract(
            nlp,
            lines,
            io.StringIO(),
            batch_size=BATCH_SIZE,
            workers=1,
            max_retries=1,
            progress=False,
            udf=AlwaysFail,
        )


def test_cli_ray_refuses_bad_models_before_starting(model_dir, tmp_path, monkeypatch):
    """No cluster fixture: the model is checked (E015) before Ray is touched or anything written."""
    import spacy_pmei.ray_extract

    def must_not_run(*args, **kwargs):
        raise AssertionError("ray_extract was called with a bad model")

    monkeypatch.setattr(spacy_pmei.ray_extract, "ray_extract", must_not_run)
    (tmp_path / "in.txt").write_text("Bobby Fischer was born in Chicago .\n")
    spacy.blank("en").to_disk(tmp_path / "blank")
    out = tmp_path / "out.jsonl"
    for model, why in ((tmp_path / "missing", "[E015]"), (tmp_path / "blank", "no pmei_relations")):
        result = runner.invoke(app, ["extract", str(model), str(tmp_path / "in.txt"), str(out), "--ray"])
        assert result.exit_code == 1 and why in " ".join(result.output.split()), result.output
        assert not out.exists()


def test_cli_ray_options_need_ray(model_dir, tmp_path):
    (tmp_path / "in.txt").write_text("text\n")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app, ["extract", str(model_dir), str(tmp_path / "in.txt"), str(out), "--workers", "2"]
    )
    assert result.exit_code == 1 and "need --ray" in result.output and not out.exists()
    result = runner.invoke(
        app, ["extract", str(model_dir), str(tmp_path / "in.txt"), str(out), "--ray", "--n-process", "2"]
    )
    assert result.exit_code == 1 and "--workers" in result.output and not out.exists()


def test_without_ray_installed(model_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray.data", None)  # `import ray.data` now fails
    with pytest.raises(ImportError, match=r"\[E400\].*spacy-pmei\[ray\]"):
        import_ray()
    (tmp_path / "in.txt").write_text("text\n")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["extract", str(model_dir), str(tmp_path / "in.txt"), str(out), "--ray"])
    assert result.exit_code == 1 and "[E400]" in result.output and not out.exists()


def test_import_spacy_pmei_does_not_load_ray():
    """The Ray code (and ray) load when `extract --ray` runs, not with the package or its CLI."""
    import subprocess

    code = (
        "import sys, spacy_pmei, spacy_pmei.cli; "
        "assert 'spacy_pmei.ray_extract' not in sys.modules and 'ray' not in sys.modules; "
        "import spacy_pmei.ray_extract; assert 'ray' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
