"""The driver of extraction on Ray: read the input, feed the actor pool, write the output in order."""

import json
import sys
import threading
import warnings
from typing import IO, Any, Callable, Dict, Iterable, List, Optional, Tuple

from spacy.language import Language

from ..errors import Errors
from ..extract import ExtractStats, read_records
from .actor import RayExtractor, import_ray
from .data import (
    actor_retries,
    connect,
    data_context,
    queue_datasource,
    read_queue,
    retry_settings,
    short_error,
)

# Seconds a blocked put on the input queue waits before it checks whether the run stopped.
_PUT_POLL_S = 0.5


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
    started = connect(ray, address, workers * num_cpus)
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
            data_context(
                target_max_block_size=1,
                enable_progress_bars=False,
                max_errored_blocks=0,
                **retry_settings(ray, max_retries),
            ),
            warnings.catch_warnings(),
        ):
            # One read task feeds the pool on purpose; and Ray >= 2.60 deprecates the
            # per-actor max_restarts/max_task_retries that bound the retries here.
            warnings.filterwarnings("ignore", message=".*minimum number of concurrent actors.*")
            warnings.filterwarnings("ignore", message=".*`ray_remote_args` is deprecated.*")
            dataset = read_queue(ray, queue_datasource(queue)).map_batches(
                udf or RayExtractor,
                batch_size=1,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=workers),
                num_cpus=num_cpus,
                num_gpus=num_gpus,
                fn_constructor_args=([pipeline_ref], batch_size, num_gpus > 0),
                **actor_retries(ray, max_retries),
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
                raise RuntimeError(Errors.E404.format(why=short_error(err))) from err
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
