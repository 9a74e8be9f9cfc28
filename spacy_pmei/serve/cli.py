"""The `serve` and `serve-bench` commands, registered on the main typer app when imported.

spacy_pmei.cli imports this module last, so they come after its own commands.

FastAPI, uvicorn, httpx and Ray are imported inside the commands, so that
``python -m spacy_pmei --help`` works without the serve extra.
"""
from pathlib import Path
from typing import Annotated, List, Optional

import typer
from wasabi import msg

from ..cli._util import app, fail, write_file, write_text
from ..errors import Errors


def require_serve_packages() -> None:
    """Import the serve extra's packages; raises ImportError (E500) naming the install."""
    try:
        import fastapi  # noqa: F401
        import httpx  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as err:
        raise ImportError(Errors.E500.format(why=err)) from err


def import_code(path: Optional[Path]) -> None:
    """Import a Python file (custom components), as spaCy's --code does; raises ValueError (E513)."""
    if path is None:
        return
    from spacy.util import import_file

    try:
        import_file(path.stem, path)
    except Exception as err:  # noqa: BLE001 - any error of the user's file
        raise ValueError(Errors.E513.format(path=path, why=f"{type(err).__name__}: {err}")) from err


def serve_cli(
    model: Annotated[str, typer.Argument(help="Trained pipeline: package name or directory")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on")] = 8000,
    gpu_id: Annotated[int, typer.Option("--gpu-id", help="GPU id, -1 for CPU")] = -1,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Most documents per nlp.pipe batch")] = 64,
    max_wait_ms: Annotated[
        float, typer.Option("--max-wait-ms", min=0, help="Longest wait for a batch to fill, in ms")
    ] = 10.0,
    max_bytes: Annotated[int, typer.Option("--max-bytes", min=1, help="Largest request body (413 above)")] = 1_000_000,
    max_docs: Annotated[int, typer.Option("--max-docs", min=1, help="Most texts per request (413 above)")] = 256,
    code: Annotated[
        Optional[Path], typer.Option("--code", help="Python file to import first (custom components)", dir_okay=False)
    ] = None,
    use_ray: Annotated[bool, typer.Option("--ray", help="Serve on Ray Serve (needs the ray extra)")] = False,
    replicas: Annotated[int, typer.Option("--replicas", min=1, help="With --ray: replicas, one pipeline each")] = 1,
    gpus_per_replica: Annotated[
        float, typer.Option("--gpus-per-replica", min=0, help="With --ray: GPUs per replica (0: CPU)")
    ] = 0,
    cpus_per_replica: Annotated[
        float, typer.Option("--cpus-per-replica", min=0, help="With --ray: CPUs per replica")
    ] = 1,
    ray_address: Annotated[
        Optional[str],
        typer.Option("--ray-address", help="With --ray: auto or ray://host:10001 (default: a local cluster)"),
    ] = None,
    ray_num_cpus: Annotated[
        Optional[int], typer.Option("--ray-num-cpus", min=1, help="With --ray and a local cluster: its CPUs")
    ] = None,
    threads: Annotated[
        Optional[int],
        typer.Option("--threads", min=1, help="Torch threads per pipeline (default: torch's; Ray: the replica's CPUs)"),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn's log level")] = "warning",
) -> None:
    """Serve a pipeline over HTTP: POST /extract, the page at /, OpenAPI docs at /docs.

    Concurrent requests are batched into one nlp.pipe call (--max-batch documents
    or --max-wait-ms). With --ray, Ray Serve runs --replicas copies of the same app.
    """
    if not use_ray and (replicas != 1 or gpus_per_replica or ray_address or ray_num_cpus):
        fail(Errors.E517)
    try:
        require_serve_packages()
        import_code(code)
        from ..extract import load_extraction_model

        # checked before listening (E015), also where the replicas load their own copy
        nlp = load_extraction_model(model, gpu_id if not use_ray else -1)
    except (ImportError, ValueError) as err:
        fail(str(err))
    settings = dict(
        max_batch=max_batch, max_wait_ms=max_wait_ms, max_bytes=max_bytes, max_docs=max_docs, threads=threads
    )
    if use_ray:
        from .ray_serve import run_ray_serve

        del nlp
        msg.info(f"Serving {model} on Ray Serve at http://{host}:{port}, {replicas} replica(s); Ctrl+C ends")
        try:
            run_ray_serve(
                model, host=host, port=port, replicas=replicas, gpus_per_replica=gpus_per_replica,
                cpus_per_replica=cpus_per_replica, address=ray_address, num_cpus=ray_num_cpus,
                code=str(code.resolve()) if code else None, **settings,
            )  # fmt: skip
        except (ImportError, RuntimeError, ValueError) as err:
            fail(str(err))
        return
    import uvicorn

    from .app import create_app
    from .batching import Engine

    engine = Engine(nlp, max_batch=max_batch, max_wait_ms=max_wait_ms, threads=threads)
    app = create_app(engine, max_bytes=max_bytes, max_docs=max_docs)
    msg.info(f"Serving {model} on http://{host}:{port} (docs at /docs, the page at /)")
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def serve_bench_cli(
    model: Annotated[str, typer.Argument(help="Trained pipeline: package name or directory")],
    concurrency: Annotated[
        Optional[List[int]], typer.Option("--concurrency", "-c", min=1, help="Concurrent clients (repeatable)")
    ] = None,
    requests: Annotated[int, typer.Option("--requests", "-n", min=1, help="Requests per concurrency level")] = 360,
    docs_per_request: Annotated[int, typer.Option("--docs-per-request", min=1, help="Texts per request")] = 1,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="The server's --max-batch")] = 64,
    max_wait_ms: Annotated[float, typer.Option("--max-wait-ms", min=0, help="The server's --max-wait-ms")] = 10.0,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Also write the table here (Markdown)", dir_okay=False)
    ] = None,
    code: Annotated[
        Optional[Path], typer.Option("--code", help="Python file to import first (custom components)", dir_okay=False)
    ] = None,
    client: Annotated[str, typer.Option("--client", help="HTTP client: httpx or aiohttp")] = "httpx",
) -> None:
    """Load-test a local server: requests/s, documents/s, latency, and the ratio to nlp.pipe.

    Starts `serve MODEL` on a free port, sends the bundled NYT sample sentences with
    httpx at each concurrency, then stops it; plain nlp.pipe is timed in the same run.
    """
    try:
        require_serve_packages()
        import_code(code)
        from .bench import format_table, run_bench

        results = run_bench(
            model, concurrency=concurrency or [1, 8, 32], requests=requests,
            docs_per_request=docs_per_request, max_batch=max_batch, max_wait_ms=max_wait_ms,
            code=str(code.resolve()) if code else None, client=client,
        )  # fmt: skip
    except (ImportError, ValueError, RuntimeError) as err:
        fail(str(err))
    table = format_table(results)
    typer.echo(table)
    if output is not None:
        write_file(output, write_text(table + "\n"))
        msg.good(f"Saved the table to {output}")


app.command("serve")(serve_cli)
app.command("serve-bench")(serve_bench_cli)
