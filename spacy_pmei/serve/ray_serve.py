"""Scale out on Ray Serve: the same app on N replicas, documents batched by ``@serve.batch``.

Each replica loads its own pipeline and builds the app of ``app.create_app``
around an engine whose documents go through a ``@serve.batch`` method instead of
the local batcher; the batch itself runs ``batching.run_batch``, as the single
server does, so the same requests get the same answers, byte for byte. Ray Serve
routes the requests between replicas and restarts a replica that dies.
"""
import asyncio
import logging
import signal
import threading
from pathlib import Path
from typing import Any, List, Optional, Tuple

from ..errors import Errors

logger = logging.getLogger("spacy_pmei")
APP_NAME = "spacy-pmei"


def import_ray_serve() -> Tuple[Any, Any]:
    """Ray and Ray Serve; raises ImportError (E501) naming the extra to install.

    RETURNS (Tuple[Any, Any]): The ray and ray.serve modules.
    """
    try:
        import ray
        from ray import serve
    except ImportError as err:
        raise ImportError(Errors.E501.format(why=err)) from err
    return ray, serve


def build_deployment(
    model: str,
    *,
    replicas: int = 1,
    gpus_per_replica: float = 0,
    cpus_per_replica: float = 1,
    max_batch: int = 64,
    max_wait_ms: float = 10.0,
    max_bytes: int = 1_000_000,
    max_docs: int = 256,
    code: Optional[str] = None,
    threads: Optional[int] = None,
) -> Any:
    """The Ray Serve deployment of the HTTP app (call .bind() to get the application).

    model (str): Pipeline package name or directory, loaded by each replica.
    replicas (int): Number of replicas.
    gpus_per_replica (float): GPUs per replica (0: CPU).
    cpus_per_replica (float): CPUs reserved per replica.
    max_batch (int): Most documents per batch (@serve.batch max_batch_size).
    max_wait_ms (float): Longest wait for a batch to fill (batch_wait_timeout_s).
    max_bytes (int): Largest request body.
    max_docs (int): Most texts per request.
    code (Optional[str]): A Python file each replica imports first (custom components).
    threads (Optional[int]): Torch threads per replica; None: Ray's, from its CPUs.
    RETURNS (Any): The deployment.
    """
    _, serve = import_ray_serve()
    for setting, value, ok in (
        ("replicas", replicas, replicas >= 1),
        ("max_batch", max_batch, max_batch >= 1),
        ("gpus_per_replica", gpus_per_replica, gpus_per_replica >= 0),
        ("cpus_per_replica", cpus_per_replica, cpus_per_replica >= 0),
    ):
        if not ok:
            raise ValueError(Errors.E511.format(setting=setting, value=value, why="out of range"))

    @serve.deployment(
        name="PMEIReplica",
        num_replicas=replicas,
        ray_actor_options={"num_cpus": cpus_per_replica, "num_gpus": gpus_per_replica},
        # enough requests in flight per replica for full batches
        max_ongoing_requests=max(8, 2 * max_batch),
    )
    @serve.ingress()
    class PMEIReplica:
        def __init__(self) -> None:
            from ..extract import load_extraction_model
            from .batching import Engine
            from .cli import import_code

            import_code(Path(code) if code else None)
            self.engine = Engine(
                load_extraction_model(model, 0 if gpus_per_replica else -1),
                max_batch=max_batch,
                max_wait_ms=max_wait_ms,
                submit=self.submit,
                threads=threads,
            )
            self.engine.executor.submit(self.engine.warm_up).result()
            self.engine.ready = True

        def __serve_build_asgi_app__(self) -> Any:
            from .app import create_app

            return create_app(self.engine, max_bytes=max_bytes, max_docs=max_docs, manage_engine=False)

        async def submit(self, items: List[Any]) -> List[Any]:
            return list(await asyncio.gather(*(self.process_one(item) for item in items)))

        @serve.batch(max_batch_size=max_batch, batch_wait_timeout_s=max_wait_ms / 1000)
        async def process_one(self, items: List[Any]) -> List[Any]:
            # run_batch never raises: a failed document comes back as an Outcome with an error
            return await self.engine.call(self.engine.process, list(items))

    return PMEIReplica


def run_ray_serve(
    model: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    address: Optional[str] = None,
    num_cpus: Optional[int] = None,
    stop: Optional[threading.Event] = None,
    **settings: Any,
) -> None:
    """Deploy the app on Ray Serve and serve until SIGINT or SIGTERM (or stop is set).

    model (str): Pipeline package name or directory.
    host (str): Address of Serve's HTTP proxy.
    port (int): Port of Serve's HTTP proxy.
    address (Optional[str]): A cluster to join ("auto", "ray://host:10001"); None: a local one.
    num_cpus (Optional[int]): CPUs of a local cluster (None: all).
    stop (Optional[threading.Event]): Ends serving when set.
    settings: The arguments of build_deployment after model.
    """
    ray, serve = import_ray_serve()
    deployment = build_deployment(model, **settings)
    stop = stop or threading.Event()
    try:
        if address:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        else:
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise RuntimeError(Errors.E514.format(why=err)) from err
    previous = {}
    try:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda *_: stop.set())
        serve.start(http_options={"host": host, "port": port})
        serve.run(deployment.bind(), name=APP_NAME, route_prefix="/")
        logger.info("Serving %s on Ray Serve at http://%s:%d", model, host, port)
        while not stop.wait(0.5):
            pass
    except Exception as err:  # noqa: BLE001 - Ray's own errors have many types
        if isinstance(err, (ImportError, ValueError)):
            raise
        raise RuntimeError(Errors.E514.format(why=f"{type(err).__name__}: {err}")) from err
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
