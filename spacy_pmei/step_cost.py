"""What a training step costs, PMEI beside MTL, and where PMEI's time goes (issue #31).

    python -m spacy_pmei.step_cost [--data FILE] [--batch-size 50] [--steps 8] [--threads 1]

Each variant gets the same pipeline (the speed benchmark's tok2vec: MultiHashEmbed
width 100 + the BiLSTM encoder), the same batches and seed; a step is one
nlp.update (forward, backward and the optimizer), timed after a warm-up step. The
variants take their steps in turn, round by round (each round one batch, every
variant), so that the drift of a shared machine reaches them alike; a variant's
figure is its median over --steps rounds, and the ratio to MTL is the median of
the rounds' ratios. The stages are then timed on their own, forward and backward
with autograd, on the padded H of one batch (median of --steps): each head, the
stochastic maps, their KL, the table loss (once per n x n x L table) and the
tok2vec. "The rest" is the step less its stages: the Thinc/torch crossings, padding,
gold targets and the optimizer. The stages are timed apart, so their sum is an estimate. Data: a CasRel JSON file or a .spacy file (e.g. corpus/webnlg/train.spacy);
the bundled NYT sample by default.
"""
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy
import spacy
import typer
from spacy.language import Language
from spacy.tokens import DocBin
from spacy.training import Example

from .architectures import get_network
from .machine import describe_machine, machine_info
from .speed import SAMPLE, TOK2VEC

VARIANTS_TIMED = ("mtl", "mtl_sm", "pmei_no_sm", "pmei")


def load_examples(nlp: Language, path: Path) -> List[Example]:
    """Gold examples from a .spacy file or a CasRel JSON file."""
    if path.suffix == ".spacy":
        docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    else:
        from .readers import read_casrel

        docs, _ = read_casrel(path, nlp.vocab)
    return [Example(nlp.make_doc(doc.text), doc) for doc in docs]


def build(variant: str, data: Path, seed: int) -> Tuple[Language, Any, List[Example]]:
    """A blank pipeline with pmei_relations of one variant, initialized on the data."""
    from thinc.api import fix_random_seed

    fix_random_seed(seed)
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "pmei_relations", config={"model": {"@architectures": "spacy-pmei.PMEI.v1", "variant": variant, "tok2vec": TOK2VEC}}
    )
    examples = load_examples(nlp, data)
    optimizer = nlp.initialize(lambda: examples)
    return nlp, optimizer, examples


def _median_seconds(run: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_steps(
    pipelines: Dict[str, Tuple[Language, Any]],
    batches: List[List[Example]],
    before_step: Optional[Callable[[str], None]] = None,
) -> Dict[str, List[float]]:
    """Seconds of each nlp.update, the variants in turn on each batch, after one warm-up
    update each; one list per variant, a figure per batch. before_step(variant), if
    given, runs untimed before each of that variant's updates (scripts/step_cost_ab.py
    swaps the code of an arm in there)."""
    times: Dict[str, List[float]] = {v: [] for v in pipelines}
    # Round 0 is the warm-up: the same update on the first batch, not timed.
    for round_, batch in enumerate([batches[0], *batches]):
        for variant, (nlp, optimizer) in pipelines.items():
            if before_step is not None:
                before_step(variant)
            start = time.perf_counter()
            nlp.update(batch, sgd=optimizer, drop=0.1)
            if round_ > 0:
                times[variant].append(time.perf_counter() - start)
    return times


def _blocks(nlp: Language, batch: List[Example]) -> List[Tuple[Any, Any, List[int]]]:
    """The padded H, mask and lengths of each block the model makes of the batch."""
    import torch
    from thinc.api import xp2torch

    from .decoding import get_segments, make_blocks

    pipe = nlp.get_pipe("pmei_relations")
    docs = [eg.predicted for eg in batch]
    segments = get_segments(docs, pipe.cfg["max_length"])
    out = []
    for block in make_blocks(segments, pipe.cfg["max_cells"]):
        pieces = []
        for d, s, e in (segments[k] for k in block):
            pieces.append(docs[d] if s == 0 and e == len(docs[d]) else docs[d][s:e].as_doc())
        Hs = pipe.model.get_ref("tok2vec").predict(pieces)
        lengths = [H.shape[0] for H in Hs]
        H = xp2torch(pipe.model.ops.pad(Hs)).detach()
        out.append((H, torch.arange(H.shape[1])[None, :] < torch.as_tensor(lengths)[:, None], lengths))
    return out


def _tok2vec_step(nlp: Language, batch: List[Example]) -> None:
    """The encoder's forward and backward over the batch's segments (no weight update)."""
    from .decoding import get_segments

    pipe = nlp.get_pipe("pmei_relations")
    docs = [eg.predicted for eg in batch]
    pieces = [
        docs[d] if s == 0 and e == len(docs[d]) else docs[d][s:e].as_doc()
        for d, s, e in get_segments(docs, pipe.cfg["max_length"])
    ]
    Hs, backprop = pipe.model.get_ref("tok2vec").begin_update(pieces)
    backprop([pipe.model.ops.alloc2f(*H.shape) + 1.0 for H in Hs])


def stage_seconds(nlp: Language, batch: List[Example], repeats: int) -> Dict[str, float]:
    """Each stage of the network, forward and backward, timed alone on the blocks the model
    makes of the batch (padded as in training), summed over the blocks."""
    import torch

    from .loss import _table_bce
    from .pytorch_pmei import gaussian_kl, subject_scores

    pipe = nlp.get_pipe("pmei_relations")
    network = get_network(pipe.model).train()
    ops = pipe.model.ops
    n_rels = network.config["n_rels"]
    blocks = _blocks(nlp, batch)
    no_cells = tuple(numpy.zeros(0, dtype="int64") for _ in range(4))

    def over_blocks(stage: Callable[[Any, Any, List[int]], Callable[[], None]]) -> float:
        runs = [stage(H, mask, lengths) for H, mask, lengths in blocks]
        return _median_seconds(lambda: [run() for run in runs], repeats)

    def fwd_bwd(compute: Callable[[Any, Any], Any]) -> Callable[[Any, Any, List[int]], Callable[[], None]]:
        def stage(H: Any, mask: Any, lengths: List[int]) -> Callable[[], None]:
            def run() -> None:
                x = H.clone().requires_grad_(True)
                sum(t.sum() for t in compute(x, mask) if t is not None).backward()

            return run

        return stage

    def table(H: Any, mask: Any, lengths: List[int]) -> Callable[[], None]:
        rel = network.rel(H).detach().numpy()
        return lambda: _table_bce(ops, rel, numpy.asarray(lengths), no_cells, 1.0)

    found: Dict[str, float] = {}
    found["tok2vec (embedding, BiLSTM)"] = _median_seconds(lambda: _tok2vec_step(nlp, batch), repeats)
    found["final heads (C_e, C_r)"] = over_blocks(fwd_bwd(lambda x, m: (network.ent(x), network.rel(x))))
    found["table loss, one n x n x L table"] = over_blocks(table)
    if network.early:

        def early(x: Any, mask: Any) -> Tuple[Any, ...]:
            e = network.early_ent(x)
            r, g = subject_scores(network.early_rel(x), mask)
            return e, r, torch.softmax(e, dim=-1), g

        found["early heads (C'_e, C'_r, y')"] = over_blocks(fwd_bwd(early))
    if network.map_e is not None:
        cond = network.map_e.cond_width

        def conditions(x: Any) -> Tuple[Any, Any]:
            y = torch.rand(x.shape[0], x.shape[1], cond) if cond else None
            if cond and not network.interaction:
                return y[..., n_rels:], y[..., :n_rels]
            return y, y

        def maps(x: Any, mask: Any) -> Tuple[Any, ...]:
            y_e, y_r = conditions(x)
            return (*network.map_e(x, y_e, mask), *network.map_r(x, y_r, mask))

        found["stochastic maps (posterior, prior, KL)"] = over_blocks(fwd_bwd(maps))
        if network.map_e.stochastic:

            def kl(H: Any, mask: Any, lengths: List[int]) -> Callable[[], None]:
                with torch.no_grad():
                    parts = network.map_e.gaussians(H, conditions(H)[0])

                def run() -> None:
                    tensors = [p.clone().requires_grad_(True) for p in parts]
                    (gaussian_kl(*tensors).sum(-1)[mask].sum() * 2).backward()  # two maps alike

                return run

            found["  of which the KL of both maps"] = over_blocks(kl)
    return found


def step_cost(
    data: Path = typer.Option(SAMPLE, "--data", help="A CasRel JSON or .spacy file (default: the bundled NYT sample)"),
    batch_size: int = typer.Option(50, "--batch-size", help="Sentences per step"),
    steps: int = typer.Option(8, "--steps", help="Steps (and stage repeats) to take the median of"),
    threads: int = typer.Option(1, "--threads", help="torch threads"),
    seed: int = typer.Option(0, "--seed", help="Seed"),
) -> None:
    """Print a Markdown table: a training step of each variant, and PMEI's stages beside MTL's."""
    import torch

    torch.set_num_threads(threads)
    pipelines: Dict[str, Tuple[Language, Any]] = {}
    for variant in VARIANTS_TIMED:
        nlp, optimizer, examples = build(variant, data, seed)
        pipelines[variant] = (nlp, optimizer)
    batches = [examples[i : i + batch_size] for i in range(0, batch_size * steps, batch_size)]
    batches = [b for b in batches if len(b) == batch_size] or [examples[:batch_size]]
    times = interleaved_steps(pipelines, batches)
    steps_of = {v: statistics.median(t) for v, t in times.items()}
    ratio = {v: statistics.median(a / b for a, b in zip(t, times["mtl"])) for v, t in times.items()}
    rows: Dict[str, Dict[str, float]] = {v: stage_seconds(pipelines[v][0], batches[0], steps) for v in ("mtl", "pmei")}
    mtl, pmei = steps_of["mtl"], steps_of["pmei"]
    words = sum(len(eg.predicted) for eg in batches[0])
    lines = [
        f"Machine: {describe_machine(machine_info())}. Data: {data} "
        f"(batches of {batch_size}, the first {words} words); {len(batches)} rounds of one step per "
        "variant in turn, after one warm-up step each: the median step, and the median of the rounds' ratios.",
        "",
        "| step (nlp.update: forward, backward, optimizer) | ms | / MTL |",
        "|---|---|---|",
    ]
    lines += [f"| {v} | {1000 * s:.0f} | {ratio[v]:.2f}x |" for v, s in steps_of.items()]
    lines += ["", "| stage, forward + backward | MTL ms | PMEI ms |", "|---|---|---|"]
    names = list(dict.fromkeys([*rows["pmei"], *rows["mtl"]]))
    tables = {"mtl": 1, "pmei": 2}
    for name in names:
        cells = []
        for v in ("mtl", "pmei"):
            t = rows[v].get(name)
            if t is not None and name.startswith("table loss"):
                t *= tables[v]
            cells.append(f"{1000 * t:.1f}" if t is not None else "-")
        label = name.replace("one n x n x L table", "n x n x L tables (MTL 1, PMEI 2)")
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    for v, total in (("mtl", mtl), ("pmei", pmei)):
        staged = sum(t * (tables[v] if k.startswith("table loss") else 1) for k, t in rows[v].items() if not k.startswith("  "))
        rows[v]["rest"] = total - staged
    lines.append(
        f"| the rest: Thinc/torch crossings, padding, gold targets, optimizer | {1000 * rows['mtl']['rest']:.1f} "
        f"| {1000 * rows['pmei']['rest']:.1f} |"
    )
    lines += ["", f"A PMEI step costs {ratio['pmei']:.2f}x an MTL step (goal: at most 1.3x)."]
    typer.echo("\n".join(lines))


if __name__ == "__main__":
    typer.run(step_cost)
