"""Shared fixtures: a handful of sentences with multi-word entities and overlapping triples."""
import importlib.util
from pathlib import Path
from typing import List, Sequence, Tuple

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Span
from spacy.training import Example

import spacy_pmei  # noqa: F401  (installs doc._.relations)
from spacy_pmei import Relation

# (text, entities as (start, end, label) token offsets, relations as (head ent, label, tail ent))
TRAIN_DATA = [
    (
        "Bobby Fischer was born in Chicago .",
        [(0, 2, "PER"), (5, 6, "LOC")],
        [(0, "born_in", 1)],
    ),
    (
        "Barack Obama visited New York City and Paris last year .",
        [(0, 2, "PER"), (3, 6, "LOC"), (7, 8, "LOC")],
        [(0, "visited", 1), (0, "visited", 2)],
    ),
    (
        # one pair with two relations, one entity in three triples
        "Angela Merkel lives in Berlin , the capital of Germany .",
        [(0, 2, "PER"), (4, 5, "LOC"), (9, 10, "LOC")],
        [(0, "lives_in", 1), (0, "born_in", 1), (1, "capital_of", 2)],
    ),
    (
        "The weather was nice .",
        [],
        [],
    ),
]


@pytest.fixture(scope="module")
def one_torch_thread():
    """The test process at one torch thread, as a Ray worker with one CPU (Ray sets its
    OMP_NUM_THREADS) and a server started with --threads 1: MKL may split a product
    differently at another thread count, and a score then differs in its last bit."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def load_script(name: str):
    """A module of the project's scripts/ folder, loaded from its file."""
    path = Path(__file__).parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_example(nlp: Language, text: str, ents: Sequence[Tuple[int, int, str]], rels) -> Example:
    """A gold Example with doc.ents and doc._.relations set."""
    ref = nlp.make_doc(text)
    ref.ents = [Span(ref, s, e, label=label) for s, e, label in ents]
    spans = list(ref.ents)
    ref._.relations = [Relation(spans[h], label, spans[t]) for h, label, t in rels]
    return Example(nlp.make_doc(text), ref)


def gold_triples(data=TRAIN_DATA) -> List[set]:
    """The expected (head text, label, tail text) triples per sentence."""
    out = []
    for text, ents, rels in data:
        words = text.split()
        spans = [" ".join(words[s:e]) for s, e, _ in ents]
        out.append({(spans[h], label, spans[t]) for h, label, t in rels})
    return out


def triples_of(doc) -> set:
    return {(r.head.text, r.label, r.tail.text) for r in doc._.relations}


SMALL_MODEL = {
    "@architectures": "spacy-pmei.PMEI.v1",
    "variant": "pmei",
    "dropout": 0.0,
    "tok2vec": {
        "@architectures": "spacy.Tok2Vec.v2",
        "embed": {
            "@architectures": "spacy.MultiHashEmbed.v2",
            "width": 32,
            "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
            "rows": [500, 100, 100, 100],
            "include_static_vectors": False,
        },
        "encode": {
            "@architectures": "spacy-pmei.BiLSTMEncoder.v1",
            "width": 32,
            "depth": 1,
            "dropout": 0.0,
        },
    },
}


@pytest.fixture
def nlp_small() -> Language:
    """A blank pipeline with a small pmei_relations model (fast to train)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("pmei_relations", config={"model": SMALL_MODEL})
    return nlp


def train(nlp: Language, examples, n_iter: int = 80, seed: int = 0):
    """Initialize and overfit; returns the last losses."""
    from thinc.api import fix_random_seed

    fix_random_seed(seed)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.01
    losses = {}
    for _ in range(n_iter):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses)
    return losses


@pytest.fixture(scope="module")
def trained_nlp() -> Language:
    """A small pipeline overfitted on TRAIN_DATA (shared by the tests of one module)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("pmei_relations", config={"model": SMALL_MODEL})
    examples = [make_example(nlp, *item) for item in TRAIN_DATA]
    losses = train(nlp, examples, n_iter=80)
    nlp.meta["_final_loss"] = losses["pmei_relations"]
    return nlp
