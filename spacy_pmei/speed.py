"""The speed benchmark (`python -m spacy_pmei benchmark`): speed and memory of pmei_relations.

pmei_relations is measured beside spaCy's ner on the same tok2vec, in one run. The
accuracy benchmark is another tool: project.yml's bench-* commands.
"""
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import spacy
from spacy.language import Language
from spacy.training import Example
from thinc.api import Config, fix_random_seed

from .machine import describe_machine, machine_info

logger = logging.getLogger("spacy_pmei")

SAMPLE = Path(__file__).parents[1] / "assets" / "sample" / "nyt_sample_train.json"

TOK2VEC = {
    "@architectures": "spacy.Tok2Vec.v2",
    "embed": {
        "@architectures": "spacy.MultiHashEmbed.v2",
        "width": 100,
        "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
        "rows": [5000, 1000, 2500, 2500],
        "include_static_vectors": False,
    },
    "encode": {"@architectures": "spacy-pmei.BiLSTMEncoder.v1", "width": 100, "depth": 1},
}


def load_examples(nlp: Language, path: Path, limit: int = 0) -> List[Example]:
    """Gold examples from a CasRel JSON file (the bundled NYT sample by default)."""
    from .readers import read_casrel

    docs, _report = read_casrel(path, nlp.vocab, limit=limit)
    return [Example(nlp.make_doc(doc.text), doc) for doc in docs]


def build_pipeline(kind: str) -> Language:
    """A blank pipeline with pmei_relations or ner, both on the same tok2vec config."""
    nlp = spacy.blank("en")
    if kind == "pmei":
        nlp.add_pipe("pmei_relations", config={"model": {"@architectures": "spacy-pmei.PMEI.v1", "tok2vec": TOK2VEC}})
    else:
        model = Config().from_str(
            """
            [model]
            @architectures = "spacy.TransitionBasedParser.v2"
            state_type = "ner"
            extra_state_tokens = false
            hidden_width = 64
            maxout_pieces = 2
            use_upper = true
            nO = null
            """
        )["model"]
        model["tok2vec"] = TOK2VEC
        nlp.add_pipe("ner", config={"model": model})
    return nlp


def _batches(items: Sequence[Any], size: int) -> List[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def time_training(nlp: Language, examples: List[Example], epochs: int, batch_size: int) -> float:
    """Train for some epochs; RETURNS (float): words per second."""
    optimizer = nlp.initialize(lambda: examples)
    nlp.update(examples[:batch_size], sgd=optimizer)  # warm up (lazy allocations, thread pools)
    rng = random.Random(0)
    n_words = 0
    start = time.perf_counter()
    for _ in range(epochs):
        order = list(examples)
        rng.shuffle(order)
        for batch in _batches(order, batch_size):
            nlp.update(batch, sgd=optimizer, drop=0.1)
            n_words += sum(len(eg.predicted) for eg in batch)
    return n_words / (time.perf_counter() - start)


def time_inference(nlp: Language, texts: List[str], batch_size: int, repeats: int) -> Tuple[float, float]:
    """RETURNS (Tuple[float, float]): words per second and sentences per second (best of repeats)."""
    list(nlp.pipe(texts[:batch_size], batch_size=batch_size))  # warm up
    best = float("inf")
    n_words = 0
    for _ in range(repeats):
        start = time.perf_counter()
        n_words = sum(len(doc) for doc in nlp.pipe(texts, batch_size=batch_size))
        best = min(best, time.perf_counter() - start)
    return n_words / best, len(texts) / best


def peak_memory(model_dir: Path, texts: List[str], n_words: int, as_batch: int = 0) -> Tuple[float, float]:
    """Resident memory of the input Docs, and peak growth of the pipeline over them, in a fresh process.

    The text is tokenized first: a Doc of 100,000 words is itself about 30 MB
    (the input, not the work); the second figure is what running the pipeline
    on the tokenized Docs adds at its peak.

    model_dir (Path): A saved pipeline.
    texts (List[str]): Sentences to build the input from.
    n_words (int): Length of the one document (as_batch=0) or of each document.
    as_batch (int): If > 0, process a batch of this many documents of n_words each.
    RETURNS (Tuple[float, float]): MB the Docs took, and MB of peak RSS above the level with them.
    """
    words = " ".join(texts).split()
    while len(words) < n_words:
        words += words
    payload = {"model": str(model_dir), "n_words": n_words, "batch": as_batch, "words": words[: max(n_words, 1)]}
    with tempfile.TemporaryDirectory() as tmp:
        payload_path, result_path = Path(tmp) / "payload.json", Path(tmp) / "result.json"
        payload_path.write_text(json.dumps(payload))
        code = "from spacy_pmei.speed import _memory_child; _memory_child(%r, %r)" % (str(payload_path), str(result_path))
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        result = json.loads(result_path.read_text())
    return float(result["docs_mb"]), float(result["pipeline_mb"])


class _RSSSampler:
    """Samples this process's resident memory every few milliseconds, keeping the peak."""

    def __init__(self, interval: float = 0.002) -> None:
        import threading

        self.interval = interval
        self.peak = self.current()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def current() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            self._stop.wait(self.interval)

    def __enter__(self) -> "_RSSSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())


def _memory_child(payload_path: str, result_path: str) -> None:
    """Measure one pipeline run in this (fresh) process; write the two figures as JSON to result_path."""
    import gc

    payload = json.loads(Path(payload_path).read_text())
    nlp = spacy.load(payload["model"])
    words = payload["words"]
    nlp(" ".join(words[:2000]))  # warm up allocators and lazy imports
    if payload["batch"]:
        texts = [" ".join(words[: payload["n_words"]])] * payload["batch"]
    else:
        texts = [" ".join(words)]
    gc.collect()
    start = _RSSSampler.current()
    inputs = [nlp.make_doc(text) for text in texts]
    before = _RSSSampler.current()
    with _RSSSampler() as sampler:
        # kept alive until measured, as a caller would hold its docs
        _docs = list(nlp.pipe(inputs, batch_size=max(payload["batch"], 1)))
    figures = {"docs_mb": (before - start) / 2**20, "pipeline_mb": (sampler.peak - before) / 2**20}
    Path(result_path).write_text(json.dumps(figures))


def run_benchmark(
    data: Path = SAMPLE, *, epochs: int = 2, batch_size: int = 50, repeats: int = 3, seed: int = 0
) -> Dict[str, Any]:
    """Measure pmei_relations and ner side by side on the same documents.

    RETURNS (Dict[str, Any]): Figures and ratios (see format_table).
    """
    fix_random_seed(seed)
    results: Dict[str, Any] = {"machine": describe_machine(machine_info()), "data": str(data)}
    pipelines = {}
    for kind in ("ner", "pmei"):
        nlp = build_pipeline(kind)
        examples = load_examples(nlp, data)
        results[f"{kind}_train_wps"] = time_training(nlp, examples, epochs, batch_size)
        texts = [eg.reference.text for eg in examples]
        wps, sps = time_inference(nlp, texts, batch_size, repeats)
        results[f"{kind}_infer_wps"], results[f"{kind}_infer_sps"] = wps, sps
        pipelines[kind] = nlp
        results["n_sentences"] = len(texts)
        results["n_words"] = sum(len(eg.reference) for eg in examples)
    results["infer_time_ratio"] = results["ner_infer_wps"] / results["pmei_infer_wps"]
    results["train_time_ratio"] = results["ner_train_wps"] / results["pmei_train_wps"]
    texts = [eg.reference.text for eg in load_examples(pipelines["pmei"], data)]
    with tempfile.TemporaryDirectory() as tmp:
        pipelines["pmei"].to_disk(tmp)
        for key, n_words, batch in (("10k", 10_000, 0), ("100k", 100_000, 0), ("batch50x100", 100, 50)):
            docs_mb, peak_mb = peak_memory(Path(tmp), texts, n_words, as_batch=batch)
            results[f"mem_{key}_mb"], results[f"docs_{key}_mb"] = peak_mb, docs_mb
    results["mem_ratio_100k_10k"] = results["mem_100k_mb"] / results["mem_10k_mb"]
    return results


def format_table(r: Dict[str, Any]) -> str:
    """A Markdown table of run_benchmark's results."""
    rows = [
        ("inference, words/s", f"{r['pmei_infer_wps']:,.0f}", f"{r['ner_infer_wps']:,.0f}", f"{r['infer_time_ratio']:.2f}x (goal <= 2x)"),
        ("inference, sentences/s", f"{r['pmei_infer_sps']:,.1f}", f"{r['ner_infer_sps']:,.1f}", ""),
        ("training, words/s", f"{r['pmei_train_wps']:,.0f}", f"{r['ner_train_wps']:,.0f}", f"{r['train_time_ratio']:.2f}x (goal <= 3x)"),
    ]
    lines = [
        f"Machine: {r['machine']}",
        f"Data: {r['data']} ({r['n_sentences']} sentences, {r['n_words']} words)",
        "",
        "| figure | pmei_relations | ner (same tok2vec) | PMEI time / ner time |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    lines += [
        "",
        "| input | the tokenized Docs, MB | peak growth of nlp.pipe over them, MB |",
        "|---|---|---|",
        f"| one 10,000-word document | {r['docs_10k_mb']:.0f} | {r['mem_10k_mb']:.0f} |",
        f"| one 100,000-word document | {r['docs_100k_mb']:.0f} | {r['mem_100k_mb']:.0f} "
        f"({r['mem_ratio_100k_10k']:.2f}x the 10,000-word figure; goal within 10%) |",
        f"| a batch of 50 sentences of 100 words | {r['docs_batch50x100_mb']:.0f} | {r['mem_batch50x100_mb']:.0f} |",
    ]
    return "\n".join(lines)
