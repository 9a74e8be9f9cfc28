"""Bulk extraction on Ray Data: the output of `extract`, computed by a pool of Ray actors.

The driver reads the input with the same code as `extract` (read_records), so line
numbers and bad-line reports are the same; it puts chunks of usable records on a
bounded Ray queue, from which one streaming read task feeds a Ray Dataset. An actor
pool (one pipeline per actor, loaded once) runs map_batches over it with
preserve_order on, and the driver writes the records as they come back, in input
order, to one output stream. Nothing in the driver grows with the input.
"""

import dataclasses
import json
import logging
import math
import os
import sys
import threading
import warnings
from contextlib import contextmanager
from typing import IO, Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy
import spacy
from spacy.language import Language

from .errors import Errors
from .extract import ExtractStats, doc_to_record, read_records

# Seconds a blocked put on the input queue waits before it checks whether the run stopped.
_PUT_POLL_S = 0.5


def import_ray() -> Any:
    """Import ray and ray.data, or raise an ImportError that says how to install them.

    RETURNS (module): The ray module.
    """
    try:
        import ray
        import ray.data  # noqa: F401
        import ray.util.queue  # noqa: F401
    except ImportError as err:
        raise ImportError(Errors.E400.format(why=err)) from err
    return ray


class RayExtractor:
    """The map_batches UDF: one pipeline per Ray actor, built once from the driver's pipeline.

    A row is one chunk of usable records, {"payload": JSON [[text, context], ...]};
    its result is {"lines": JSON [line numbers], "json": the output lines joined by
    newlines}, in the same order. A chunk is piped as one nlp.pipe batch, so the
    pipeline sees the batches that extract() gives it. Subclass it (and pass udf=)
    to add checks or post-processing; the class must be picklable.
    """

    def __init__(self, pipeline: List[Any], batch_size: int, use_gpu: bool) -> None:
        """Build the pipeline from the serialized one the driver put in the object store.

        pipeline (List[Any]): [ObjectRef of (config string, nlp.to_bytes())], in a list
            so that Ray passes the reference rather than the value.
        batch_size (int): Documents per nlp.pipe batch (the chunk size).
        use_gpu (bool): Run on the GPU Ray gave this actor.
        """
        import ray
        from thinc.api import Config

        if use_gpu:
            spacy.require_gpu(0)  # Ray sets CUDA_VISIBLE_DEVICES to this actor's GPU(s)
        config_str, data = ray.get(pipeline[0])
        # as spacy.load builds a pipeline from its config.cfg, then the weights
        self.nlp = spacy.util.load_model_from_config(Config().from_str(config_str, interpolate=False))
        self.nlp.from_bytes(data)
        self.batch_size = batch_size

    def __call__(self, batch: Dict[str, numpy.ndarray]) -> Dict[str, numpy.ndarray]:
        """Extract from the chunks of one map batch, each on its own.

        batch (Dict[str, numpy.ndarray]): The "payload" column.
        RETURNS (Dict[str, numpy.ndarray]): The "lines" and "json" columns.
        """
        lines_out, json_out = [], []
        for payload in batch["payload"]:
            records = [(text, context) for text, context in json.loads(payload)]
            docs = self.nlp.pipe(records, as_tuples=True, batch_size=self.batch_size)
            lines, outputs = [], []
            for doc, context in docs:
                lines.append(context["line"])
                outputs.append(json.dumps(doc_to_record(doc, context), ensure_ascii=False))
            lines_out.append(json.dumps(lines))
            json_out.append("\n".join(outputs))
        return {
            "lines": numpy.asarray(lines_out, dtype=object),
            "json": numpy.asarray(json_out, dtype=object),
        }


def _block_metadata() -> Any:
    """Empty BlockMetadata (unknown rows and size), whatever fields this Ray version has."""
    from ray.data.block import BlockMetadata

    return BlockMetadata(**{f.name: None for f in dataclasses.fields(BlockMetadata) if f.init})


def _queue_datasource(queue: Any) -> Any:
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
            return [ReadTask(read_chunks, _block_metadata())]

        @property
        def supports_distributed_reads(self) -> bool:
            return True  # the data comes through the object store, not from local files

    return QueueDatasource()


@contextmanager
def _data_context(**settings: Any) -> Iterator[Any]:
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


def _connect(ray: Any, address: Optional[str], num_cpus: float) -> bool:
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


def _feed(
    lines: Iterable[str],
    fmt: str,
    text_field: str,
    stats: ExtractStats,
    chunk_size: int,
    put: Callable[[Optional[str]], bool],
    counts: Dict[str, Any],
) -> None:
    """Read the input as extract() does; put chunks of chunk_size usable records, then None.

    put (Callable[[Optional[str]], bool]): Puts one item; False once the run stopped.
    counts (Dict[str, Any]): Receives "usable" (records put) and "error" (an exception).
    """
    try:
        chunk: List[Tuple[str, Dict[str, Any]]] = []
        for record in read_records(lines, fmt, text_field, stats):
            chunk.append(record)
            counts["usable"] += 1
            if len(chunk) == chunk_size:
                if not put(json.dumps(chunk)):
                    return
                chunk = []
        if chunk and not put(json.dumps(chunk)):
            return
    except Exception as err:  # re-raised by the driver
        counts["error"] = err
    put(None)


def ray_extract(
    nlp: Language,
    lines: Iterable[str],
    output: IO[str],
    *,
    fmt: str = "text",
    text_field: str = "text",
    batch_size: int = 64,
    workers: int = 1,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    address: Optional[str] = None,
    max_retries: int = 3,
    progress: bool = True,
    on_bad_line: Optional[Callable[[int, str], None]] = None,
    udf: Optional[type] = None,
) -> ExtractStats:
    """Extract with a pool of Ray actors; write the same JSONL as extract(), in the same order.

    The input is read here, by the code extract() uses, so line numbers and bad-line
    reports are the same. Each chunk of batch_size usable records is one row of the
    Ray Dataset and one nlp.pipe batch, as in extract(nlp, ..., batch_size=batch_size).
    A chunk whose actor task raises or whose actor dies is retried (max_retries
    times, on a restarted actor if it died). The records written must be exactly
    the usable lines, in order, or a RuntimeError (E402) is raised at the end.

    nlp (Language): The pipeline, loaded (and checked) with load_extraction_model.
        Its config and bytes go to each actor, so workers need spacy-pmei (and the
        pipeline's other packages) but not the pipeline's files.
    lines (Iterable[str]): The input lines, read in this process.
    output (IO[str]): Where the JSONL goes (written in this process).
    fmt (str): "text" or "jsonl".
    text_field (str): JSONL key of the text.
    batch_size (int): Documents per chunk, map batch and nlp.pipe batch.
    workers (int): Ray actors, each with its own copy of the pipeline.
    num_cpus (float): CPUs reserved for each actor.
    num_gpus (float): GPUs for each actor (fractions share a GPU); 0 for the CPU.
    address (Optional[str]): An existing cluster ("auto", "host:6379",
        "ray://host:10001"); None starts a local cluster for this run. If this
        process is already connected to Ray, that connection is used.
    max_retries (int): Retries of a failed chunk, and restarts of a dead actor.
    progress (bool): Show a progress bar with documents/s on stderr.
    on_bad_line (Optional[Callable[[int, str], None]]): Called with (line number,
        reason) for each skipped line, as it is read; logged as a warning if None.
    udf (Optional[type]): The map_batches class: RayExtractor or a subclass.
    RETURNS (ExtractStats): Counts and bad lines.
    """
    from tqdm import tqdm

    ray = import_ray()
    from ray.util.queue import Full, Queue

    if workers < 1 or batch_size < 1 or num_cpus < 0 or num_gpus < 0 or max_retries < 0:
        settings = dict(workers=workers, batch_size=batch_size, num_cpus=num_cpus, num_gpus=num_gpus)
        raise ValueError(Errors.E403.format(settings=dict(settings, max_retries=max_retries)))
    stats = ExtractStats(on_bad_line=on_bad_line)
    counts: Dict[str, Any] = {"usable": 0, "error": None}
    stop = threading.Event()
    started = _connect(ray, address, workers * num_cpus)
    queue = None
    try:
        pipeline_ref = ray.put((nlp.config.to_str(), nlp.to_bytes()))  # config.cfg as to_disk writes it
        queue = Queue(maxsize=max(4, 2 * workers), actor_options={"num_cpus": 0})

        def put(item: Optional[str]) -> bool:
            while not stop.is_set():
                try:
                    queue.put(item, block=True, timeout=_PUT_POLL_S)
                    return True
                except Full:
                    continue
            return False

        feeder = threading.Thread(
            target=_feed,
            args=(lines, fmt, text_field, stats, batch_size, put, counts),
            name="spacy-pmei-ray-feeder",
            daemon=True,
        )
        # target_max_block_size=1: every chunk is a block of its own (one row), so that
        # chunks spread over the actors instead of being merged into one big block.
        with (
            _data_context(
                target_max_block_size=1,
                enable_progress_bars=False,
                max_errored_blocks=0,
                **_retry_settings(ray, max_retries),
            ),
            warnings.catch_warnings(),
        ):
            # One read task feeds the pool on purpose; and Ray >= 2.60 deprecates the
            # per-actor max_restarts/max_task_retries that bound the retries here.
            warnings.filterwarnings("ignore", message=".*minimum number of concurrent actors.*")
            warnings.filterwarnings("ignore", message=".*`ray_remote_args` is deprecated.*")
            dataset = _read(ray, _queue_datasource(queue)).map_batches(
                udf or RayExtractor,
                batch_size=1,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=workers),
                num_cpus=num_cpus,
                num_gpus=num_gpus,
                fn_constructor_args=([pipeline_ref], batch_size, num_gpus > 0),
                **_actor_retries(ray, max_retries),
            )
            feeder.start()
            bar = tqdm(unit="doc", disable=not progress, file=sys.stderr, mininterval=0.5)
            last = 0
            try:
                for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
                    for numbers, records in zip(
                        batch.column("lines").to_pylist(), batch.column("json").to_pylist()
                    ):
                        numbers = json.loads(numbers)
                        if not numbers:
                            continue
                        if numbers[0] <= last or numbers != sorted(set(numbers)):
                            raise RuntimeError(
                                Errors.E402.format(why=f"line {min(numbers)} came after line {last}")
                            )
                        if records.count("\n") + 1 != len(numbers):
                            raise RuntimeError(
                                Errors.E402.format(why=f"a chunk from line {numbers[0]} came back torn")
                            )
                        output.write(records + "\n")
                        last = numbers[-1]
                        stats.documents += len(numbers)
                        bar.update(len(numbers))
            except ray.exceptions.RayError as err:
                raise RuntimeError(Errors.E404.format(why=_short(err))) from err
            finally:
                bar.close()
                stop.set()
                feeder.join()
        if counts["error"] is not None:
            raise counts["error"]
        if stats.documents != counts["usable"]:
            why = f"{stats.documents} records came back for {counts['usable']} usable lines"
            raise RuntimeError(Errors.E402.format(why=why))
    finally:
        stop.set()
        if queue is not None:
            ray.kill(queue.actor)
        if started:
            ray.shutdown()
    return stats


def _actor_retries(ray: Any, max_retries: int) -> Dict[str, int]:
    """map_batches arguments that bound actor restarts and task retries, where Ray takes them."""
    import inspect

    params = inspect.signature(ray.data.Dataset.map_batches).parameters.values()
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params):
        return {"max_restarts": max_retries, "max_task_retries": max_retries}
    return {}


def _retry_settings(ray: Any, max_retries: int) -> Dict[str, Any]:
    """DataContext settings that retry a chunk whose UDF raised.

    Where map_batches takes max_task_retries, actor tasks retry on any exception
    (retry_exceptions=True), at once and up to max_retries times; otherwise Ray
    Data retries the chunk's transform in the actor, with backoff.
    """
    if _actor_retries(ray, max_retries):
        return {"actor_task_retry_on_errors": True}
    return {"retried_map_errors": True, "max_map_retries": max_retries}


def _read(ray: Any, datasource: Any) -> Any:
    """ray.data.read_datasource with one read task that takes no CPU (it only waits on the queue)."""
    import inspect

    params = inspect.signature(ray.data.read_datasource).parameters
    one_task = {"override_num_blocks": 1} if "override_num_blocks" in params else {"parallelism": 1}
    no_cpu = {"num_cpus": 0} if "num_cpus" in params else {"ray_remote_args": {"num_cpus": 0}}
    return ray.data.read_datasource(datasource, **one_task, **no_cpu)


def _short(err: BaseException) -> str:
    """The user's exception in a Ray error ("ValueError: ..."), not the whole remote traceback."""
    text = str(err).split("The above exception was the direct cause")[0]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__
