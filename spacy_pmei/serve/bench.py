"""The load benchmark (`serve-bench`): a real server, a real HTTP client, the ratio to nlp.pipe.

One run: time plain ``nlp.pipe`` on the bundled NYT sample sentences, start
``python -m spacy_pmei serve MODEL`` on a free port, send the sentences with
``httpx.AsyncClient`` at each concurrency (one request per client at a time),
stop the server and time ``nlp.pipe`` again. The baseline is the faster of the
two timings, so the ratio served/pipe is not flattered by a slow moment.
"""
import asyncio
import datetime
import itertools
import json
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from spacy.language import Language

from ..errors import Errors

SAMPLE_DIR = Path(__file__).parents[2] / "assets" / "sample"
SAMPLE_FILES = ("nyt_sample_train.json", "nyt_sample_dev.json")


def sample_texts(directory: Path = SAMPLE_DIR) -> List[str]:
    """The sentences of the bundled NYT sample (360: the train and dev parts).

    directory (Path): Where the CasRel JSON files are.
    RETURNS (List[str]): The texts, in file order.
    """
    texts: List[str] = []
    for name in SAMPLE_FILES:
        texts.extend(record["text"] for record in json.loads((directory / name).read_text(encoding="utf-8")))
    return texts


def free_port() -> int:
    """RETURNS (int): A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(
    url: str, timeout: float, process: Optional[subprocess.Popen] = None, log: Optional[Path] = None
) -> None:
    """Poll GET url/ready until it answers 200; raises RuntimeError (E512) after timeout s.

    url (str): The server's base URL.
    timeout (float): Seconds to wait.
    process (Optional[subprocess.Popen]): The server process; its exit ends the wait at once.
    log (Optional[Path]): The server's output, quoted in the error.
    """
    import httpx

    deadline, why = time.monotonic() + timeout, "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            why = f"the server exited with {process.returncode}"
            break
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError as err:
            why = f"{type(err).__name__}: {err}"
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
    raise RuntimeError(Errors.E512.format(seconds=timeout, why=f"{why}. {tail}".strip()))


@contextmanager
def local_server(model: str, *, args: Sequence[str] = (), timeout: float = 180) -> Iterator[str]:
    """Run `python -m spacy_pmei serve MODEL` on a free port until the block ends.

    model (str): Pipeline package name or directory.
    args (Sequence[str]): More options of `serve` (--max-batch 32, --code FILE ...).
    timeout (float): Seconds to wait for GET /ready.
    YIELDS (str): The server's base URL.
    """
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        command = [sys.executable, "-m", "spacy_pmei", "serve", model, "--port", str(port), *args]
        with log.open("w") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, timeout, process, log)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def time_pipe(nlp: Language, texts: List[str], batch_size: int, repeats: int = 3) -> float:
    """Documents per second of plain nlp.pipe, the best of repeats runs after a warm-up.

    RETURNS (float): Documents per second.
    """
    list(nlp.pipe(texts[:batch_size], batch_size=batch_size))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        list(nlp.pipe(texts, batch_size=batch_size))
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method. RETURNS (float): The value."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


@asynccontextmanager
async def http_client(url: str, kind: str, concurrency: int) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """An async function that POSTs a body to url/extract and returns the JSON answer.

    url (str): The server's base URL.
    kind (str): "httpx" (the serve extra's) or "aiohttp" (lighter on the CPU at high concurrency).
    concurrency (int): Connections to keep open.
    YIELDS (Callable[..., Awaitable[Any]]): post(body) -> the decoded answer.
    """
    if kind == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:

            async def post_httpx(body: Dict[str, Any]) -> Any:
                response = await client.post("/extract", json=body)
                response.raise_for_status()
                return response.json()

            yield post_httpx
    elif kind == "aiohttp":
        try:
            import aiohttp
        except ImportError as err:
            raise ImportError(Errors.E516.format(why=err)) from err
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=300)) as session:

            async def post_aiohttp(body: Dict[str, Any]) -> Any:
                async with session.post("/extract", json=body) as response:
                    response.raise_for_status()
                    return await response.json()

            yield post_aiohttp
    else:
        raise ValueError(Errors.E511.format(setting="client", value=kind, why="choose httpx or aiohttp"))


async def load(
    url: str, texts: List[str], *, concurrency: int, requests: int, docs_per_request: int = 1, client: str = "httpx"
) -> Tuple[List[float], float]:
    """Send requests POST /extract from concurrency clients, each waiting for its answer.

    RETURNS (Tuple[List[float], float]): Latency per request (s) and the wall time (s).
    """

    def body(i: int) -> Dict[str, Any]:
        return {"texts": [texts[(i * docs_per_request + j) % len(texts)] for j in range(docs_per_request)]}

    latencies: List[float] = []
    async with http_client(url, client, concurrency) as post:

        async def one(i: int) -> float:
            start = time.perf_counter()
            answer = await post(body(i))
            if len(answer["records"]) != docs_per_request:
                n = len(answer["records"])
                raise RuntimeError(Errors.E518.format(index=i, n=n, expected=docs_per_request))
            return time.perf_counter() - start

        await asyncio.gather(*(one(i) for i in range(concurrency)))  # warm up the connections
        counter = itertools.count()

        async def client_loop() -> None:
            for i in counter:
                if i >= requests:
                    return
                latencies.append(await one(i))

        start = time.perf_counter()
        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return latencies, elapsed


def _machine() -> str:
    from ..machine import describe_machine, machine_info

    return describe_machine(machine_info())


def run_bench(
    model: str,
    *,
    concurrency: Sequence[int] = (1, 8, 32),
    requests: int = 360,
    docs_per_request: int = 1,
    max_batch: int = 64,
    max_wait_ms: float = 10.0,
    texts: Optional[List[str]] = None,
    code: Optional[str] = None,
    client: str = "httpx",
) -> Dict[str, Any]:
    """Benchmark a local server against plain nlp.pipe.

    model (str): Pipeline package name or directory.
    concurrency (Sequence[int]): Concurrent clients, one level after the other.
    requests (int): Requests per level.
    docs_per_request (int): Texts per request.
    max_batch (int): The server's --max-batch, and the batch size of the nlp.pipe baseline.
    max_wait_ms (float): The server's --max-wait-ms.
    texts (Optional[List[str]]): The texts (default: the bundled sample).
    code (Optional[str]): A Python file the server imports first (custom components).
    client (str): The HTTP client, "httpx" or "aiohttp".
    RETURNS (Dict[str, Any]): Settings, the baseline and one row per level.
    """
    from ..extract import load_extraction_model

    texts = texts or sample_texts()
    nlp = load_extraction_model(model)
    pipe_before = time_pipe(nlp, texts, max_batch)
    rows = []
    args = ["--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms), *(["--code", code] if code else [])]
    with local_server(model, args=args) as url:
        for level in concurrency:
            latencies, elapsed = asyncio.run(
                load(url, texts, concurrency=level, requests=requests, docs_per_request=docs_per_request, client=client)
            )
            rows.append({
                "concurrency": level, "requests": requests,
                "requests_per_s": requests / elapsed, "docs_per_s": requests * docs_per_request / elapsed,
                "p50_ms": 1000 * percentile(latencies, 50), "p95_ms": 1000 * percentile(latencies, 95),
                "p99_ms": 1000 * percentile(latencies, 99),
            })  # fmt: skip
    pipe_docs_per_s = max(pipe_before, time_pipe(nlp, texts, max_batch))
    for row in rows:
        row["ratio"] = row["docs_per_s"] / pipe_docs_per_s
    return {
        "model": model, "machine": _machine(), "date": datetime.date.today().isoformat(),
        "texts": len(texts), "docs_per_request": docs_per_request, "max_batch": max_batch,
        "max_wait_ms": max_wait_ms, "client": client, "pipe_docs_per_s": pipe_docs_per_s, "rows": rows,
    }  # fmt: skip


def format_table(results: Dict[str, Any]) -> str:
    """The results as Markdown: a header naming the run, then one row per concurrency.

    results (Dict[str, Any]): What run_bench returned.
    RETURNS (str): The Markdown.
    """
    lines = [
        f"Serving benchmark, {results['date']}: `{results['model']}`, {results['texts']} NYT sample "
        f"sentences, {results['docs_per_request']} text(s) per request, --max-batch {results['max_batch']} "
        f"--max-wait-ms {results['max_wait_ms']:g}, client {results['client']}.",
        "",
        f"Machine: {results['machine']}.",
        "",
        f"Plain `nlp.pipe` (batch size {results['max_batch']}): {results['pipe_docs_per_s']:.1f} docs/s.",
        "",
        "| concurrency | requests | requests/s | docs/s | p50 ms | p95 ms | p99 ms | p99/p50 | served/pipe |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['concurrency']} | {r['requests']} | {r['requests_per_s']:.1f} | {r['docs_per_s']:.1f} | "
            f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['p99_ms'] / r['p50_ms']:.2f} | "
            f"{r['ratio']:.2f} |"
        )
    return "\n".join(lines)
