"""The HTTP service: a real server in a subprocess, called over HTTP, against `extract`'s records."""
import asyncio
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import spacy
from typer.testing import CliRunner

pytest.importorskip("fastapi", reason="serving needs the serve extra: pip install 'spacy-pmei[serve]'")
pytest.importorskip("uvicorn", reason="serving needs the serve extra: pip install 'spacy-pmei[serve]'")
httpx = pytest.importorskip("httpx", reason="serving needs the serve extra: pip install 'spacy-pmei[serve]'")

import serve_poison  # noqa: E402  (registers pmei_test_poison in this process too)
from spacy_pmei.cli import app  # noqa: E402
from spacy_pmei.extract import doc_to_record  # noqa: E402
from spacy_pmei.serve.batching import run_batch, threshold_set  # noqa: E402
from spacy_pmei.serve.bench import local_server  # noqa: E402

from conftest import TRAIN_DATA  # noqa: E402

runner = CliRunner()
POISON_CODE = str(Path(serve_poison.__file__).resolve())
README = Path(__file__).parents[1] / "README.md"
TEXTS = [t for t, _, _ in TRAIN_DATA]
# about 280 words: more than the component's window (max_length = 128 words)
LONG_TEXT = " ".join(f"Bobby Fischer was born in Chicago and Angela Merkel lives in Berlin {i} ." for i in range(20))
MAX_DOCS, MAX_BYTES = 8, 20_000
# One torch thread in every server and in this process: with several, MKL may split a
# product differently from one process to the next, and scores differ in the last bit.
SERVER_ARGS = ["--code", POISON_CODE, "--max-docs", str(MAX_DOCS), "--max-bytes", str(MAX_BYTES), "--max-wait-ms", "30",
               "--threads", "1"]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model_dir(trained_nlp, tmp_path_factory):
    """The trained tiny pipeline with a component that raises on serve_poison.MARKER."""
    path = tmp_path_factory.mktemp("serve_model")
    trained_nlp.add_pipe("pmei_test_poison", last=True)
    try:
        trained_nlp.to_disk(path)
    finally:
        trained_nlp.remove_pipe("pmei_test_poison")
    return path


@pytest.fixture(scope="module")
def nlp(model_dir):
    return spacy.load(model_dir)


@pytest.fixture(scope="module")
def server(model_dir):
    with local_server(str(model_dir), args=SERVER_ARGS) as url:
        yield url


def approx(record):
    """A record to compare with ==, its scores within 1e-5: they vary in float32's last digits with the batch.

    (Rounding both sides instead fails whenever two such scores straddle a rounding boundary.)
    """
    relations = [dict(r, score=pytest.approx(r["score"], rel=0, abs=1e-5)) for r in record["relations"]]
    return dict(record, relations=relations)


def post(url, body, **kwargs):
    if isinstance(body, (bytes, str)):
        return httpx.post(f"{url}/extract", content=body, headers={"Content-Type": "application/json"}, timeout=60)
    return httpx.post(f"{url}/extract", json=body, timeout=60, **kwargs)


def records(url, body):
    response = post(url, body)
    assert response.status_code == 200, response.text
    return response.json()["records"]


def test_answers_are_extracts_records(server, model_dir, nlp, tmp_path):
    texts = [*TEXTS, "", LONG_TEXT]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["extract", str(model_dir), str(tmp_path / "in.txt"), str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    expected = [json.loads(line) for line in out.read_text().splitlines()]
    for record in expected:
        assert record.pop("line")
    # one request of all the texts is one batch, as in extract: the same bytes, floats included
    served = records(server, {"texts": texts})
    assert [json.dumps(r, ensure_ascii=False) for r in served] == [json.dumps(r, ensure_ascii=False) for r in expected]
    # alone, a text is nlp(text); its scores may differ from a batch's in the last float32 digits
    assert [records(server, {"text": t})[0] for t in texts] == [doc_to_record(nlp(t), {}) for t in texts]
    assert expected[0]["relations"] and expected[0]["entities"][0]["start"] == 0
    # the long text was processed in windows, as nlp() does: entities past the first window
    long_record = records(server, {"text": LONG_TEXT})[0]
    assert max(e["start"] for e in long_record["entities"]) > 128


def test_concurrent_requests_each_get_their_own_answer(server, nlp):
    texts = [f"{TEXTS[i % 3]} {'And so on . ' * (i % 7)}Case {i} ." for i in range(100)]
    expected = [doc_to_record(doc, {}) for doc in nlp.pipe(texts)]

    async def send_all():
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=server, timeout=120, limits=limits) as client:
            return await asyncio.gather(*(client.post("/extract", json={"text": t}) for t in texts))

    answers = asyncio.run(send_all())
    assert [a.status_code for a in answers] == [200] * 100
    assert [a.json()["records"][0] for a in answers] == [approx(r) for r in expected]
    stats = httpx.get(f"{server}/health").json()["stats"]
    assert stats["largest_batch"] > 1, stats  # the requests were batched


@pytest.mark.parametrize(
    "body,status,code,field",
    [
        (json.dumps({"text": "x" * (MAX_BYTES + 1)}), 413, "E502", None),
        ({"texts": ["a ."] * (MAX_DOCS + 1)}, 413, "E503", "texts"),
        ('{"text": "unterminated', 422, "E505", "body"),
        ("", 422, None, None),
        ("[1, 2]", 422, "E504", "body"),
        ({}, 422, "E504", "text"),
        ({"text": 5}, 422, "E504", "text"),
        ({"text": None, "texts": None}, 422, "E504", "text"),
        ({"text": "a", "texts": ["b"]}, 422, "E504", "text"),
        ({"texts": "not a list"}, 422, "E504", "texts"),
        ({"texts": ["a", 3]}, 422, "E504", "texts.1"),
        ({"text": "a", "threshold": 1.5}, 422, "E504", "threshold"),
        ({"text": "a", "relations": ["no_such_label"]}, 422, "E506", "relations"),
        ({"text": "a", "txt": "typo"}, 422, "E504", "txt"),
    ],
)
def test_bad_input_gets_its_status_and_a_coded_json_body(server, body, status, code, field):
    response = post(server, body)
    assert response.status_code == status, response.text
    answer = response.json()
    assert re.fullmatch(r"E5\d\d", answer["code"]) and f"[{answer['code']}]" in answer["message"]
    if code is not None:
        assert answer["code"] == code, answer
    if field is not None:
        assert answer["field"] == field and field.split(".")[0] in answer["message"], answer
    assert httpx.get(f"{server}/health").json()["status"] == "ok"


def test_empty_texts_and_other_routes(server):
    for text in ("", "   ", " \n\t "):
        assert records(server, {"text": text}) == [{"entities": [], "relations": []}]
    for method, path, status in (("GET", "/nope", 404), ("GET", "/extract", 405), ("POST", "/meta", 405)):
        response = httpx.request(method, f"{server}{path}")
        assert response.status_code == status and response.json()["code"] == "E509"
    meta = httpx.get(f"{server}/meta").json()
    assert meta["labels"]["relations"] == ["born_in", "capital_of", "lives_in", "visited"]
    assert meta["threshold"] == 0.5 and meta["serving"]["max_docs"] == MAX_DOCS
    assert meta["serving"]["threads"] == 1  # the worker thread that runs the pipeline has --threads
    schema = httpx.get(f"{server}/openapi.json").json()
    assert {"ExtractRequest", "ExtractResponse", "Record", "ErrorBody"} <= set(schema["components"]["schemas"])
    assert httpx.get(f"{server}/docs").status_code == 200
    assert httpx.get(f"{server}/ready").status_code == 200


def test_threshold_and_relations_filter(server, nlp):
    text = TEXTS[2]
    pipe = nlp.get_pipe("pmei_relations")
    for threshold in (0.2, 0.9):
        with threshold_set(nlp, threshold):
            expected = doc_to_record(nlp(text), {})
        assert pipe.cfg["threshold"] == 0.5
        assert records(server, {"text": text, "threshold": threshold}) == [expected]
    all_rels = records(server, {"text": text})[0]["relations"]
    kept = records(server, {"text": text, "relations": ["capital_of"]})[0]["relations"]
    assert kept == [r for r in all_rels if r["label"] == "capital_of"] and kept


def test_poisoned_document_fails_only_itself(server, nlp):
    before = httpx.get(f"{server}/health").json()["stats"]
    poisoned = f"Bobby Fischer {serve_poison.MARKER} ."
    # one request, three documents in one batch: the batch fails, each is retried alone
    response = post(server, {"texts": [TEXTS[0], poisoned, TEXTS[1]]})
    assert response.status_code == 500
    assert response.json()["code"] == "E507" and response.json()["field"] == "texts.1"
    after = httpx.get(f"{server}/health").json()["stats"]
    assert after["retried_batches"] == before["retried_batches"] + 1
    assert after["failed_documents"] == before["failed_documents"] + 1

    # concurrent requests, one poisoned: the others get their answers
    texts = [*TEXTS, poisoned, *TEXTS]

    async def send_all():
        async with httpx.AsyncClient(base_url=server, timeout=60) as client:
            return await asyncio.gather(*(client.post("/extract", json={"text": t}) for t in texts))

    answers = asyncio.run(send_all())
    assert [a.status_code for a in answers] == [200] * 4 + [500] + [200] * 4
    good = [doc_to_record(nlp(t), {}) for t in TEXTS] * 2
    assert [a.json()["records"][0] for a in answers if a.status_code == 200] == [approx(r) for r in good]


def test_run_batch_retries_alone(nlp):
    items = [(TEXTS[0], None), (f"x {serve_poison.MARKER}", None), (TEXTS[1], 0.3), ("", None)]
    outcomes = run_batch(nlp, items)
    assert outcomes[0].record == doc_to_record(nlp(TEXTS[0]), {})
    assert outcomes[1].record is None and "poisoned document" in outcomes[1].error
    assert outcomes[2].record is not None and outcomes[3].record == {"entities": [], "relations": []}


def test_page_draws_the_relations_in_headless_chromium(server, tmp_path):
    from test_render import find_chromium

    chromium = find_chromium()
    assert "<script>" in httpx.get(server).text and "https://" not in httpx.get(server).text
    url = f"{server}/?text={quote(TEXTS[0])}"
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=15000", "--dump-dom", url,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=90, cwd=tmp_path)
    dom = result.stdout
    assert 'id="picture" data-relations="1"' in dom, result.stderr[-2000:]
    assert dom.count('class="pmei-rel') >= 1 and "born_in" in dom and "1 relations" in dom
    assert "<svg" in dom


def test_readme_curl_example(server):
    if shutil.which("curl") is None:
        pytest.skip("no curl on PATH")
    section = README.read_text().split("## Serving", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    line = next(line for line in block.splitlines() if line.strip().startswith("curl "))
    command = [part.replace("http://127.0.0.1:8000", server) for part in shlex.split(line)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert [(r["head"]["text"], r["label"], r["tail"]["text"]) for r in answer["records"][0]["relations"]] == [
        ("Bobby Fischer", "born_in", "Chicago")
    ]


def test_serve_refuses_bad_models_and_missing_packages(tmp_path, monkeypatch):
    result = runner.invoke(app, ["serve", str(tmp_path / "missing"), "--port", "0"])
    assert result.exit_code == 1 and "[E015]" in " ".join(result.output.split())
    result = runner.invoke(app, ["serve", str(tmp_path / "missing"), "--replicas", "2"])
    assert result.exit_code == 1 and "need --ray" in " ".join(result.output.split())
    monkeypatch.setitem(sys.modules, "fastapi", None)
    result = runner.invoke(app, ["serve", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "[E500]" in result.output and 'spacy-pmei[serve]' in " ".join(result.output.split())


def test_help_works_without_the_serve_extra():
    code = "import sys; sys.modules['fastapi'] = sys.modules['uvicorn'] = sys.modules['ray'] = None\n"
    code += "from spacy_pmei.cli import app; app(['--help'])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "serve-bench" in result.stdout, result.stderr


def test_serve_bench_prints_the_table(model_dir):
    result = runner.invoke(
        app, ["serve-bench", str(model_dir), "-c", "1", "-c", "4", "-n", "8", "--max-wait-ms", "5", "--code", POISON_CODE]
    )
    assert result.exit_code == 0, result.output
    assert "| concurrency | requests | requests/s |" in result.output and "Machine:" in result.output
    assert len([line for line in result.output.splitlines() if re.match(r"\| [14] \| 8 \|", line)]) == 2


@pytest.mark.slow
def test_ray_serve_two_replicas_answer_byte_for_byte(server, model_dir):
    pytest.importorskip("ray.serve", reason="serving on Ray needs ray[serve]: pip install 'spacy-pmei[ray]'")
    bodies = [{"text": t} for t in TEXTS] + [{"texts": [*TEXTS, LONG_TEXT]}, {"text": TEXTS[2], "threshold": 0.3}]
    bodies += [{"text": f"{TEXTS[i % 3]} Case {i} ."} for i in range(20)]
    args = [*SERVER_ARGS, "--ray", "--replicas", "2", "--ray-num-cpus", "2", "--cpus-per-replica", "0.5"]
    with local_server(str(model_dir), args=args, timeout=300) as ray_url:
        # one request at a time, so each batch is one request's documents on both servers
        single = [post(server, body) for body in bodies]
        on_ray = [post(ray_url, body) for body in bodies]
        assert [a.status_code for a in on_ray] == [200] * len(bodies)
        assert [a.content for a in on_ray] == [a.content for a in single]

        async def send_all(url):
            async with httpx.AsyncClient(base_url=url, timeout=120) as client:
                return await asyncio.gather(*(client.post("/extract", json=body) for body in bodies))

        # at once: batched differently, the same answers up to the last float32 digits of the scores
        at_once = asyncio.run(send_all(ray_url))
        assert [a.json()["records"] for a in at_once] == [[approx(r) for r in a.json()["records"]] for a in single]
        assert httpx.get(f"{ray_url}/meta").json()["serving"]["threads"] == 1
        stats = httpx.get(f"{ray_url}/health").json()["stats"]
        assert stats["documents"] > 0
        poisoned = post(ray_url, {"texts": [TEXTS[0], f"a {serve_poison.MARKER}"]})
        assert poisoned.status_code == 500 and poisoned.json()["code"] == "E507"
        assert post(ray_url, {"texts": "x"}).json()["field"] == "texts"
        check_replica_killed_mid_load(ray_url, server)


def replica_pids():
    out = subprocess.run(["pgrep", "-f", "ServeReplica:spacy-pmei"], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def check_replica_killed_mid_load(ray_url, single_url, n=60):
    """Kill a replica while n requests are in flight: each is answered right or seen to fail."""
    import os
    import signal

    pids = replica_pids()
    assert len(pids) == 2, pids
    bodies = [{"text": f"{TEXTS[i % 3]} {'And so on . ' * (i % 5)}Case {i} ."} for i in range(n)]
    expected = [[approx(r) for r in post(single_url, body).json()["records"]] for body in bodies]

    async def load_and_kill():
        async with httpx.AsyncClient(base_url=ray_url, timeout=60) as client:

            async def one(body):
                try:
                    response = await client.post("/extract", json=body)
                except httpx.HTTPError as err:
                    return None, repr(err)
                # Ray's proxy answers a request lost with its replica in plain text
                return response.status_code, response.json() if response.status_code == 200 else response.text

            tasks = [asyncio.create_task(one(body)) for body in bodies]
            await asyncio.sleep(0.1)
            os.kill(pids[0], signal.SIGKILL)
            return await asyncio.gather(*tasks)

    results = asyncio.run(load_and_kill())
    answered = [i for i, (status, _) in enumerate(results) if status == 200]
    failed = [(status, str(body)[:200]) for status, body in results if status != 200]
    print(f"replica killed mid-load: {len(answered)} of {n} answered, {len(failed)} failed: {failed[:3]}")
    assert len(answered) + len(failed) == n and answered
    assert [results[i][1]["records"] for i in answered] == [expected[i] for i in answered]
    assert all(status is None or status >= 500 for status, _ in failed)
    # Serve replaces the replica; the service answers again
    assert post(ray_url, bodies[0]).status_code == 200
