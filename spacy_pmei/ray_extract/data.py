"""Ray Data plumbing for extraction on Ray, written to work across Ray versions.

A queue-fed datasource with one streaming read task, the DataContext settings of
one run, the connection to a cluster, and the retry arguments each Ray version takes.
"""

import dataclasses
import logging
import math
import os
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional

from ..errors import Errors


def block_metadata() -> Any:
    """Empty BlockMetadata (unknown rows and size), whatever fields this Ray version has."""
    from ray.data.block import BlockMetadata

    return BlockMetadata(**{f.name: None for f in dataclasses.fields(BlockMetadata) if f.init})


def queue_datasource(queue: Any) -> Any:
    """A Ray Data source with one streaming read task that yields the chunks put on queue.

    queue (ray.util.queue.Queue): Receives chunk payloads (JSON strings), then None.
    RETURNS (ray.data.Datasource): The source, for ray.data.read_datasource.
    """
    from ray.data.datasource import Datasource, ReadTask

    def read_chunks() -> Iterator[Any]:
        import pyarrow

        while True:
            payload = queue.get(block=True)
            if payload is None:
                return
            yield pyarrow.table({"payload": pyarrow.array([payload], pyarrow.string())})

    class QueueDatasource(Datasource):
        def estimate_inmemory_data_size(self) -> Optional[int]:
            return None

        def get_read_tasks(self, parallelism: int, **kwargs: Any) -> List[Any]:
            return [ReadTask(read_chunks, block_metadata())]

        @property
        def supports_distributed_reads(self) -> bool:
            return True  # the data comes through the object store, not from local files

    return QueueDatasource()


@contextmanager
def data_context(**settings: Any) -> Iterator[Any]:
    """Set DataContext attributes and preserve_order for one run, then restore them.

    settings: Attribute values; names this Ray version does not have are skipped.
    YIELDS (ray.data.DataContext): The current context.
    """
    from ray.data import DataContext

    ctx = DataContext.get_current()
    saved = {name: getattr(ctx, name) for name in settings if hasattr(ctx, name)}
    saved_order = ctx.execution_options.preserve_order
    # Ray Data logs that its progress bars are off; the run shows its own.
    progress_logger = logging.getLogger("ray.data._internal.progress")
    saved_level = progress_logger.level
    try:
        for name in saved:
            setattr(ctx, name, settings[name])
        ctx.execution_options.preserve_order = True
        progress_logger.setLevel(logging.ERROR)
        yield ctx
    finally:
        for name, value in saved.items():
            setattr(ctx, name, value)
        ctx.execution_options.preserve_order = saved_order
        progress_logger.setLevel(saved_level)


def connect(ray: Any, address: Optional[str], num_cpus: float) -> bool:
    """Use this process's Ray connection, connect to address, or start a local cluster.

    address (Optional[str]): "auto", "host:port" or "ray://host:10001"; None for a
        new local cluster.
    num_cpus (float): CPUs the actor pool needs; a local cluster gets at least that many.
    RETURNS (bool): Whether this call connected (and ray.shutdown() is ours to call).
    """
    if ray.is_initialized():
        return False
    try:
        if address:
            ray.init(address=address)
        else:
            ray.init(
                address="local",
                num_cpus=max(os.cpu_count() or 1, math.ceil(num_cpus)),
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise RuntimeError(Errors.E401.format(address=address or "a new local cluster", why=err)) from err
    return True


def actor_retries(ray: Any, max_retries: int) -> Dict[str, int]:
    """map_batches arguments that bound actor restarts and task retries, where Ray takes them."""
    import inspect

    params = inspect.signature(ray.data.Dataset.map_batches).parameters.values()
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params):
        return {"max_restarts": max_retries, "max_task_retries": max_retries}
    return {}


def retry_settings(ray: Any, max_retries: int) -> Dict[str, Any]:
    """DataContext settings that retry a chunk whose UDF raised.

    Where map_batches takes max_task_retries, actor tasks retry on any exception
    (retry_exceptions=True), at once and up to max_retries times; otherwise Ray
    Data retries the chunk's transform in the actor, with backoff.
    """
    if actor_retries(ray, max_retries):
        return {"actor_task_retry_on_errors": True}
    return {"retried_map_errors": True, "max_map_retries": max_retries}


def read_queue(ray: Any, datasource: Any) -> Any:
    """ray.data.read_datasource with one read task that takes no CPU (it only waits on the queue)."""
    import inspect

    params = inspect.signature(ray.data.read_datasource).parameters
    one_task = {"override_num_blocks": 1} if "override_num_blocks" in params else {"parallelism": 1}
    no_cpu = {"num_cpus": 0} if "num_cpus" in params else {"ray_remote_args": {"num_cpus": 0}}
    return ray.data.read_datasource(datasource, **one_task, **no_cpu)


def short_error(err: BaseException) -> str:
    """The user's exception in a Ray error ("ValueError: ..."), not the whole remote traceback."""
    text = str(err).split("The above exception was the direct cause")[0]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__
