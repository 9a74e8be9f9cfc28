"""Dynamic batching: concurrent requests share one ``nlp.pipe`` call, run off the event loop.

Every use of the pipeline happens in one worker thread (spaCy's tokenizer and the
component are not meant to be shared between threads), so the event loop only
parses requests and writes answers: ``GET /health`` stays responsive under load.
A batch that raises is retried one document at a time, so that one bad document
fails only itself.
"""
import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from spacy.language import Language

from ..errors import Errors
from ..extract import doc_to_record

logger = logging.getLogger("spacy_pmei")

# One document to process: its text and the threshold to decode it with (None: the pipeline's).
Item = Tuple[str, Optional[float]]


@dataclass
class Outcome:
    """What became of one document: its record, or why it failed."""

    record: Optional[Dict[str, Any]] = None
    error: Optional[str] = None


@dataclass
class BatchStats:
    """Counters of a worker, shown by GET /health."""

    batches: int = 0
    documents: int = 0
    retried_batches: int = 0
    failed_documents: int = 0
    largest_batch: int = 0

    def to_dict(self) -> Dict[str, int]:
        """RETURNS (Dict[str, int]): The counters by name."""
        return dict(self.__dict__)


def relation_components(nlp: Language) -> List[Any]:
    """The pmei_relations components of a pipeline (those with entity and relation labels).

    nlp (Language): The pipeline.
    RETURNS (List[Any]): The components, in pipeline order.
    """
    return [pipe for _, pipe in nlp.pipeline if hasattr(pipe, "entity_labels") and hasattr(pipe, "cfg")]


@contextmanager
def threshold_set(nlp: Language, threshold: Optional[float]) -> Iterator[None]:
    """Decode with another threshold for the duration of the block (None: leave it).

    The component reads cfg["threshold"] at each predict, so the answer equals that of
    a pipeline configured with this threshold. Only the worker thread calls this.
    """
    pipes = relation_components(nlp) if threshold is not None else []
    saved = [pipe.cfg["threshold"] for pipe in pipes]
    for pipe in pipes:
        pipe.cfg["threshold"] = threshold
    try:
        yield
    finally:
        for pipe, value in zip(pipes, saved):
            pipe.cfg["threshold"] = value


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def run_batch(nlp: Language, items: Sequence[Item], stats: Optional[BatchStats] = None) -> List[Outcome]:
    """Process documents in as few nlp.pipe calls as their thresholds allow.

    Documents with the same threshold go through one call. Where a call raises, its
    documents are processed again one by one; those that fail alone get an error.
    Empty and whitespace-only texts get a record without entities.

    nlp (Language): The pipeline.
    items (Sequence[Item]): (text, threshold) per document.
    stats (Optional[BatchStats]): Counters to update.
    RETURNS (List[Outcome]): One outcome per item, in order.
    """
    stats = stats if stats is not None else BatchStats()
    outcomes: List[Outcome] = [Outcome() for _ in items]
    groups: Dict[Optional[float], List[int]] = {}
    for i, (text, threshold) in enumerate(items):
        if text.strip():
            groups.setdefault(threshold, []).append(i)
        else:
            # nothing to find in whitespace (a model may still tag a space token)
            outcomes[i].record = doc_to_record(nlp.make_doc(text), {})
    for threshold, indices in groups.items():
        texts = [items[i][0] for i in indices]
        stats.batches += 1
        stats.documents += len(texts)
        stats.largest_batch = max(stats.largest_batch, len(texts))
        with threshold_set(nlp, threshold):
            try:
                docs = list(nlp.pipe(texts, batch_size=max(1, len(texts))))
                for i, doc in zip(indices, docs):
                    outcomes[i].record = doc_to_record(doc, {})
                continue
            except Exception as err:  # noqa: BLE001 - whatever a document does, the server lives
                if len(texts) > 1:
                    stats.retried_batches += 1
                    logger.warning(
                        "a batch of %d documents failed (%s); retrying them alone", len(texts), _describe(err)
                    )
                else:
                    stats.failed_documents += 1
                    outcomes[indices[0]].error = _describe(err)
                    continue
            for i, text in zip(indices, texts):
                try:
                    outcomes[i].record = doc_to_record(nlp(text), {})
                except Exception as err:  # noqa: BLE001
                    stats.failed_documents += 1
                    outcomes[i].error = _describe(err)
                    logger.warning("a document of %d characters failed alone: %s", len(text), _describe(err))
    return outcomes


@dataclass
class _Pending:
    item: Item
    future: "asyncio.Future[Outcome]"


@dataclass
class DynamicBatcher:
    """Gather documents from concurrent requests into batches for one worker function.

    A batch closes when it holds max_batch documents or max_wait_ms after its first
    document arrived; documents that queued while the previous batch ran are taken
    at once. Each caller gets its own outcomes, in its own order.

    process (Callable[[List[Item]], List[Outcome]]): Runs in the worker thread.
    executor (ThreadPoolExecutor): The worker thread.
    max_batch (int): Most documents per batch.
    max_wait_ms (float): Longest wait for a batch to fill.
    """

    process: Callable[[List[Item]], List[Outcome]]
    executor: ThreadPoolExecutor
    max_batch: int = 64
    max_wait_ms: float = 10.0
    _queue: Optional["asyncio.Queue[_Pending]"] = field(default=None, init=False)
    _task: Optional["asyncio.Task[None]"] = field(default=None, init=False)

    def start(self) -> None:
        """Start gathering (call from the event loop that will submit)."""
        if self.max_batch < 1:
            raise ValueError(Errors.E511.format(setting="max_batch", value=self.max_batch, why="must be at least 1"))
        if self.max_wait_ms < 0:
            raise ValueError(
                Errors.E511.format(setting="max_wait_ms", value=self.max_wait_ms, why="must be at least 0")
            )
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop gathering; documents still queued get an error."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while self._queue is not None and not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.future.done():
                pending.future.set_result(Outcome(error="the server is shutting down"))

    async def submit(self, items: Sequence[Item]) -> List[Outcome]:
        """Queue documents and wait for their outcomes.

        items (Sequence[Item]): (text, threshold) per document.
        RETURNS (List[Outcome]): One outcome per item, in order.
        """
        if self._queue is None:
            raise RuntimeError(Errors.E510)
        loop = asyncio.get_running_loop()
        futures = []
        for item in items:
            future: "asyncio.Future[Outcome]" = loop.create_future()
            self._queue.put_nowait(_Pending(item, future))
            futures.append(future)
        return list(await asyncio.gather(*futures))

    async def _gather(self) -> List[_Pending]:
        assert self._queue is not None
        batch = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_ms / 1000
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            timeout = deadline - loop.time()
            if timeout <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), timeout))
            except asyncio.TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            # a caller that went away (client disconnected) needs no answer
            batch = [p for p in batch if not p.future.cancelled()]
            if not batch:
                continue
            try:
                outcomes = await loop.run_in_executor(self.executor, self.process, [p.item for p in batch])
            except Exception as err:  # noqa: BLE001 - run_batch catches; this is a last resort
                outcomes = [Outcome(error=_describe(err)) for _ in batch]
            for pending, outcome in zip(batch, outcomes):
                if not pending.future.done():
                    pending.future.set_result(outcome)


def set_torch_threads(threads: Optional[int]) -> None:
    """Set torch's intra-op thread count in the calling thread (None: leave it)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


class Engine:
    """A pipeline behind one worker thread, with a way to submit documents.

    nlp (Language): The loaded pipeline.
    max_batch (int): Most documents per batch.
    max_wait_ms (float): Longest wait for a batch to fill.
    submit (Optional[Callable[[List[Item]], Awaitable[List[Outcome]]]]): How documents
        reach the worker; None: a DynamicBatcher (Ray Serve brings its own, @serve.batch).
    threads (Optional[int]): Torch's intra-op threads in the worker; None: as the
        process has them (Ray sets a replica's from its CPUs). Scores agree to the last
        bit between two servers only at the same thread count.
    """

    def __init__(
        self,
        nlp: Language,
        *,
        max_batch: int = 64,
        max_wait_ms: float = 10.0,
        submit: Optional[Callable[[List[Item]], Awaitable[List[Outcome]]]] = None,
        threads: Optional[int] = None,
    ) -> None:
        self.nlp = nlp
        self.stats = BatchStats()
        # set in the worker itself: OpenMP keeps a thread count per calling thread
        self.executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="pmei-worker", initializer=set_torch_threads, initargs=(threads,)
        )
        self.batcher: Optional[DynamicBatcher] = None
        if submit is None:
            self.batcher = DynamicBatcher(self.process, self.executor, max_batch=max_batch, max_wait_ms=max_wait_ms)
            submit = self.batcher.submit
        self.submit = submit
        self.max_batch = max_batch
        self.max_wait_ms = max_wait_ms
        self.ready = False
        self.worker_threads: Optional[int] = None

    def warm_up(self) -> None:
        """Load the pipeline's lazy parts and note the worker's torch threads (in the worker)."""
        import torch

        self.nlp("Warm up .")
        self.worker_threads = torch.get_num_threads()

    def process(self, items: List[Item]) -> List[Outcome]:
        """Run one batch (in the worker thread). RETURNS (List[Outcome]): One per item."""
        return run_batch(self.nlp, items, self.stats)

    async def call(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run func(*args) in the worker thread, between batches. RETURNS (Any): Its result."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, func, *args)

    async def start(self) -> None:
        """Start the batcher and warm the pipeline up; then the engine is ready."""
        if self.batcher is not None:
            self.batcher.start()
        await self.call(self.warm_up)
        self.ready = True

    async def stop(self) -> None:
        """Stop the batcher; the worker thread ends after the batch it runs."""
        self.ready = False
        if self.batcher is not None:
            await self.batcher.stop()
        self.executor.shutdown(wait=False)
