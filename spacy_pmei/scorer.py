"""Relation P/R/F by exact and partial match, and entity P/R/F, for spaCy's Scorer."""
from collections import defaultdict
from typing import Any, Callable, Collection, Dict, Iterable, List, Optional, Set, Tuple

from spacy.language import Language
from spacy.scorer import PRFScore, Scorer
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import registry

from .relations import EXTENSION

Key = Tuple[int, int, str, int, int]
StringKey = Tuple[str, str, str]


def _exact(span: Span) -> Tuple[int, int]:
    return span.start_char, span.end_char


def _last_word(span: Span) -> Tuple[int, int]:
    last = span[-1]
    return last.idx, last.idx + len(last)


def relation_keys(doc: Doc, partial: bool) -> Set[Key]:
    """The triples of a doc as comparable keys in character offsets.

    Character offsets make the keys independent of tokenization, so predicted
    and gold docs need not be tokenized alike.

    doc (Doc): A doc with doc._.relations.
    partial (bool): Compare only the last word of each entity (NYT*, WebNLG*).
    RETURNS (Set[Key]): (head start, head end, label, tail start, tail end).
    """
    where = _last_word if partial else _exact
    return {(*where(r.head), r.label, *where(r.tail)) for r in getattr(doc._, EXTENSION)}


def relation_strings(doc: Doc) -> Set[StringKey]:
    """The triples of a doc as (head text, label, tail text), as the papers score them.

    The CasRel protocol that PMEI's paper follows compares, per sentence, the set
    of triples by their entity strings, not their positions: a predicted triple
    counts when the same strings appear in a gold triple of that sentence, wherever
    they occur in it, and repeated triples count once.

    doc (Doc): A doc with doc._.relations.
    RETURNS (Set[StringKey]): (head text, label, tail text).
    """
    return {(r.head.text, r.label, r.tail.text) for r in getattr(doc._, EXTENSION)}


def _string_prf(examples: List[Example], keep: Optional[frozenset]) -> PRFScore:
    micro = PRFScore()
    for eg in examples:
        pred = relation_strings(eg.predicted)
        gold = relation_strings(eg.reference)
        if keep is not None:
            pred = {k for k in pred if k[1] in keep}
            gold = {k for k in gold if k[1] in keep}
        micro.score_set(pred, gold)
    return micro


def score_relations(
    examples: Iterable[Example], relations: Optional[Collection[str]] = None, **kwargs: Any
) -> Dict[str, Any]:
    """Micro P/R/F over triples; recall counts every gold triple, predicted or not.

    Not `labels`: spaCy's Pipe.score passes the pipe's own labels under that name
    (it ends up in **kwargs, ignored), and filtering on them would drop the gold
    triples of relations the pipeline never learned, inflating recall.

    examples (Iterable[Example]): Predicted and gold docs.
    relations (Optional[Collection[str]]): Score only the triples with these relation
        labels, predicted and gold alike (e.g. the relations two datasets share);
        None scores all.
    RETURNS (Dict[str, Any]): rel_exact_{p,r,f}, rel_partial_{p,r,f},
        rel_exact_per_type and rel_partial_per_type ({label: {p, r, f}}), and
        rel_string_{p,r,f}: the papers' string match (relation_strings).
    """
    examples = list(examples)
    keep = None if relations is None else frozenset(relations)
    scores: Dict[str, Any] = {}
    for name, partial in (("exact", False), ("partial", True)):
        micro = PRFScore()
        per_type: Dict[str, PRFScore] = defaultdict(PRFScore)
        for eg in examples:
            pred = relation_keys(eg.predicted, partial)
            gold = relation_keys(eg.reference, partial)
            if keep is not None:
                pred = {k for k in pred if k[2] in keep}
                gold = {k for k in gold if k[2] in keep}
            micro.score_set(pred, gold)
            for label in {k[2] for k in pred | gold}:
                per_type[label].score_set(
                    {k for k in pred if k[2] == label}, {k for k in gold if k[2] == label}
                )
        scores[f"rel_{name}_p"] = micro.precision
        scores[f"rel_{name}_r"] = micro.recall
        scores[f"rel_{name}_f"] = micro.fscore
        scores[f"rel_{name}_per_type"] = {k: v.to_dict() for k, v in sorted(per_type.items())}
    string = _string_prf(examples, keep)
    scores.update(rel_string_p=string.precision, rel_string_r=string.recall, rel_string_f=string.fscore)
    return scores


def score_pmei(
    examples: Iterable[Example], relations: Optional[Collection[str]] = None, **kwargs: Any
) -> Dict[str, Any]:
    """Relation scores (score_relations) plus entity P/R/F (ents_p, ents_r, ents_f, ents_per_type).

    examples (Iterable[Example]): Predicted and gold docs.
    relations (Optional[Collection[str]]): Relation labels to score (see score_relations);
        None for all. spaCy's `labels` keyword (the pipe's labels) is ignored.
    RETURNS (Dict[str, Any]): The scores under the keys listed in the README.
    """
    examples = list(examples)
    scores = score_relations(examples, relations=relations)
    scores.update(Scorer.score_spans(examples, "ents"))
    return scores


@registry.scorers("spacy-pmei.relation_scorer.v1")
def make_relation_scorer() -> Callable[..., Dict[str, Any]]:
    """The scorer of pmei_relations: exact/partial relation P/R/F and entity P/R/F."""
    return score_pmei


def evaluate_docs(
    nlp: Language,
    gold_docs: Iterable[Doc],
    relations: Optional[Collection[str]] = None,
    batch_size: int = 64,
) -> Dict[str, Any]:
    """Run a pipeline over the texts of gold docs and score it, optionally on some relations.

    What `spacy evaluate` gives for pmei_relations, plus `relations`: score only the
    triples of those relations (predicted and gold), as when a pipeline trained on
    NYT is scored on the relations NYT11 shares with it. Entity P/R/F always
    covers every entity.

    nlp (Language): A pipeline with pmei_relations.
    gold_docs (Iterable[Doc]): Docs with gold doc.ents and doc._.relations.
    relations (Optional[Collection[str]]): The relation labels to score; None for all.
    batch_size (int): Docs per nlp.pipe batch.
    RETURNS (Dict[str, Any]): score_pmei's keys, and n_docs, gold_triples (those
        scored) and gold_triples_left_out (gold triples of other relations).
    """
    gold: List[Doc] = list(gold_docs)
    predicted = nlp.pipe((doc.text for doc in gold), batch_size=batch_size)
    examples = [Example(pred, ref) for pred, ref in zip(predicted, gold)]
    scores = score_pmei(examples, relations=relations)
    gold_keys = [key for doc in gold for key in relation_keys(doc, False)]
    keep = None if relations is None else frozenset(relations)
    kept = sum(1 for key in gold_keys if keep is None or key[2] in keep)
    n_gold = len(gold_keys)
    scores.update(n_docs=len(gold), gold_triples=kept, gold_triples_left_out=n_gold - kept)
    return scores
