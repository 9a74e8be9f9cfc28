"""The pmei_relations component: a TrainablePipe that sets doc.ents and doc._.relations."""
import logging
from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import filter_spans
from spacy.vocab import Vocab
from thinc.api import Model, Optimizer, set_dropout_rate

from . import defaults
from .architectures import PMEIBlockGrad, PMEIOutput, get_network, map_blocks
from .decoding import DocPrediction, decode_blocks, make_tag_names, threshold_cells
from .defaults import DEFAULT_MODEL
from .diagnostics import update_record
from .encoders import warn_if_untagged
from .errors import Errors
from .loss import eq15_loss, gold_targets, warn_cross_window
from .optimizers import ScaledLearnRate, clip_global_norm
from .relations import doc_labels, get_records, set_records

logger = logging.getLogger("spacy_pmei")


@Language.factory(
    "pmei_relations",
    assigns=["doc.ents", "doc._.relations"],
    default_config={
        "model": DEFAULT_MODEL,
        **defaults.COMPONENT_DEFAULTS,
        "scorer": {"@scorers": "spacy-pmei.relation_scorer.v1"},
    },
    default_score_weights=defaults.SCORE_WEIGHTS,
)
def make_pmei_relations(
    nlp: Language,
    name: str,
    model: Model,
    *,
    threshold: float,
    alpha: float,
    beta_e: float,
    beta_r: float,
    max_length: int,
    max_cells: int,
    overwrite_ents: bool,
    anchor_fallback: bool,
    learn_rate_scale: float,
    global_grad_clip: float,
    scorer: Optional[Callable],
) -> "PMEIRelations":
    """Create a pmei_relations component (see PMEIRelations for the settings)."""
    return PMEIRelations(
        nlp.vocab, model, name, threshold=threshold, alpha=alpha, beta_e=beta_e, beta_r=beta_r,
        max_length=max_length, max_cells=max_cells, overwrite_ents=overwrite_ents,
        anchor_fallback=anchor_fallback, learn_rate_scale=learn_rate_scale,
        global_grad_clip=global_grad_clip, scorer=scorer,
    )  # fmt: skip


class PMEIRelations(TrainablePipe):
    """Joint entity and relation extraction with PMEI (AAAI 2021)."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "pmei_relations",
        *,
        threshold: float = defaults.THRESHOLD,
        alpha: float = defaults.ALPHA,
        beta_e: float = defaults.BETA_E,
        beta_r: float = defaults.BETA_R,
        max_length: int = defaults.MAX_LENGTH,
        max_cells: int = defaults.MAX_CELLS,
        overwrite_ents: bool = defaults.OVERWRITE_ENTS,
        anchor_fallback: bool = defaults.ANCHOR_FALLBACK,
        learn_rate_scale: float = defaults.LEARN_RATE_SCALE,
        global_grad_clip: float = defaults.GLOBAL_GRAD_CLIP,
        scorer: Optional[Callable] = None,
    ) -> None:
        """Initialize the component.

        vocab (Vocab): The shared vocabulary.
        model (Model): A spacy-pmei.PMEI model.
        name (str): The component's name in the pipeline.
        threshold (float): Probability at or above which a table cell is a triple.
        alpha (float): Weight of the early classifiers' loss (eq. 15).
        beta_e (float): Weight of the ER map's KL term.
        beta_r (float): Weight of the RC map's KL term.
        max_length (int): Longest window, in words, whose pairs are scored together.
        max_cells (int): Budget of pair cells (segments x n x n) per forward block.
        overwrite_ents (bool): Replace doc.ents (True) or keep existing entities
            and add only predicted ones that do not overlap them (False).
        anchor_fallback (bool): When no predicted entity ends at a triple's anchor
            word, use the one-word span (True) or drop the triple (False).
        learn_rate_scale (float): Multiplies the optimizer's learning rate for this
            component's own weights. A shared transformer or tok2vec component keeps
            the optimizer's rate, so a transformer can fine-tune at 1e-5 while the
            PMEI network trains at 1e-3 (learn_rate_scale 100).
        global_grad_clip (float): Clip the gradient of this component's weights to this
            global norm before each update (0: off; the paper: 5, with the optimizer's
            own per-tensor grad_clip set to 0).
        scorer (Optional[Callable]): The scoring method.
        """
        for setting, value, ok, why in (
            ("threshold", threshold, 0.0 < threshold < 1.0, "must be in (0, 1)"),
            ("max_length", max_length, max_length >= 1, "must be at least 1"),
            ("max_cells", max_cells, max_cells >= 1, "must be at least 1"),
            ("learn_rate_scale", learn_rate_scale, learn_rate_scale > 0, "must be above 0"),
            ("global_grad_clip", global_grad_clip, global_grad_clip >= 0, "must be 0 (off) or above"),
        ):
            if not ok:
                raise ValueError(Errors.E010.format(setting=setting, value=value, why=why))
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: Dict[str, Any] = {
            "entity_labels": [], "relation_labels": [], "threshold": threshold,
            "alpha": alpha, "beta_e": beta_e, "beta_r": beta_r,
            "max_length": max_length, "max_cells": max_cells, "overwrite_ents": overwrite_ents,
            "anchor_fallback": anchor_fallback, "learn_rate_scale": learn_rate_scale,
            "global_grad_clip": global_grad_clip,
        }  # fmt: skip
        self._observers: List[Callable[[Dict[str, Any]], None]] = []
        self._sync_model_attrs()

    # ---- labels -------------------------------------------------------------

    @property
    def labels(self) -> Tuple[str, ...]:
        """RETURNS (Tuple[str, ...]): The relation labels."""
        return tuple(self.cfg["relation_labels"])

    @property
    def entity_labels(self) -> Tuple[str, ...]:
        """RETURNS (Tuple[str, ...]): The entity labels."""
        return tuple(self.cfg["entity_labels"])

    @property
    def tag_names(self) -> List[str]:
        """RETURNS (List[str]): The BIOES tags: O, then B/I/E/S per entity label."""
        return make_tag_names(self.cfg["entity_labels"])

    @property
    def label_data(self) -> Dict[str, List[str]]:
        """RETURNS (Dict[str, List[str]]): Both label sets, for `spacy init labels`."""
        return {
            "entities": list(self.cfg["entity_labels"]),
            "relations": list(self.cfg["relation_labels"]),
        }

    @property
    def is_initialized(self) -> bool:
        """RETURNS (bool): Whether the PyTorch network has been built."""
        return self.model.attrs.get("n_rels") is not None and hasattr(get_network(self.model), "set_dropout")

    def _add(self, key: str, label: str, kind: str) -> int:
        if not isinstance(label, str) or not label.strip() or label != label.strip():
            raise ValueError(Errors.E012.format(label=label, kind=kind))
        if label in self.cfg[key]:
            return 0
        if self.is_initialized:
            raise ValueError(Errors.E014.format(label=label, name=self.name))
        self.cfg[key] = sorted([*self.cfg[key], label])
        self.vocab.strings.add(label)
        return 1

    def add_label(self, label: str) -> int:
        """Add a relation label before initialization.

        label (str): The relation label.
        RETURNS (int): 1 if the label was added, 0 if it was already there.
        """
        return self._add("relation_labels", label, "relation")

    def add_entity_label(self, label: str) -> int:
        """Add an entity label before initialization.

        label (str): The entity label.
        RETURNS (int): 1 if the label was added, 0 if it was already there.
        """
        return self._add("entity_labels", label, "entity")

    def _sync_model_attrs(self) -> None:
        """Pass the settings that shape the training forward pass on to the model (prediction
        passes max_length and max_cells to map_blocks itself, changing nothing on the model)."""
        attrs = self.model.attrs
        attrs["max_length"] = self.cfg["max_length"]
        attrs["max_cells"] = self.cfg["max_cells"]
        if self.cfg["relation_labels"]:
            attrs["n_tags"] = len(self.tag_names)
            attrs["n_rels"] = len(self.cfg["relation_labels"])

    # ---- training -----------------------------------------------------------

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Dict[str, List[str]]] = None,
    ) -> None:
        """Take the labels, validate the data and build the network on a sample.

        get_examples (Callable[[], Iterable[Example]]): The training examples.
        nlp (Optional[Language]): The pipeline.
        labels (Optional[Dict[str, List[str]]]): {"entities": [...], "relations": [...]},
            as written by `spacy init labels`; inferred from the examples when None.
        """
        validate_get_examples(get_examples, "PMEIRelations.initialize")
        if labels is None:
            labels = doc_labels(eg.reference for eg in get_examples())
        if not isinstance(labels, dict) or not {"entities", "relations"} <= set(labels):
            raise ValueError(Errors.E009.format(name=self.name, labels=labels))
        for label in labels["entities"]:
            self.add_entity_label(label)
        for label in labels["relations"]:
            self.add_label(label)
        if not self.cfg["relation_labels"]:
            raise ValueError(Errors.E008.format(name=self.name))
        if not self.cfg["entity_labels"]:
            self.add_entity_label("ENTITY")
        sample = list(islice(get_examples(), 10))
        for eg in sample:
            self._validate_gold(eg)
        self._sync_model_attrs()
        warn_if_untagged(self.model, nlp, self.name)
        self.model.initialize(X=[eg.predicted for eg in sample])

    def _validate_gold(self, eg: Example) -> None:
        ents = {(span.start, span.end) for span in eg.reference.ents}
        for span in eg.reference.ents:
            if span.label_ not in self.cfg["entity_labels"]:
                raise ValueError(
                    Errors.E007.format(label=span.label_, labels=self.entity_labels, name=self.name)
                )
        for hs, he, _, label, ts, te, _, _ in get_records(eg.reference):
            if label not in self.cfg["relation_labels"]:
                raise ValueError(Errors.E006.format(label=label, labels=self.labels, name=self.name))
            for role, start, end in (("head", hs, he), ("tail", ts, te)):
                if (start, end) not in ents:
                    span = eg.reference[start:end].text
                    raise ValueError(
                        Errors.E005.format(role=role, label=label, span=span, start=start, end=end)
                    )

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch of examples.

        examples (Iterable[Example]): Predicted docs with gold references.
        drop (float): Dropout rate, applied in the tok2vec and on H in the network.
        sgd (Optional[Optimizer]): The optimizer.
        losses (Optional[Dict[str, float]]): Running losses, updated in place.
        RETURNS (Dict[str, float]): The losses.
        """
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "PMEIRelations.update")
        if not self.is_initialized:
            raise ValueError(Errors.E011.format(name=self.name))
        if not any(len(eg.predicted) for eg in examples):
            return losses
        for eg in examples:
            self._validate_gold(eg)
        self._sync_model_attrs()  # cfg may have been edited since (max_length, max_cells)
        set_dropout_rate(self.model, drop)
        outputs, backprop = self.model.begin_update([eg.predicted for eg in examples])
        loss, terms, d_outputs = self._eq15(examples, outputs)
        backprop(d_outputs)
        if self._observers:
            self._notify(examples, loss, terms)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def finish_update(self, sgd: Optimizer) -> None:
        """Update this component's weights from their gradients, clipped to the
        global_grad_clip norm if set, at the optimizer's learning rate times the
        learn_rate_scale setting.

        sgd (Optimizer): The optimizer.
        """
        if self.cfg.get("global_grad_clip"):
            clip_global_norm(self.model, self.cfg["global_grad_clip"])
        scale = self.cfg["learn_rate_scale"]
        self.model.finish_update(sgd if scale == 1.0 else ScaledLearnRate(sgd, scale))

    def get_loss(
        self, examples: Iterable[Example], outputs: PMEIOutput
    ) -> Tuple[float, List[PMEIBlockGrad]]:
        """Loss of eq. 15 and its gradients, averaged over the batch's segments (loss.eq15_loss).

        examples (Iterable[Example]): The batch.
        outputs (PMEIOutput): The model's output for the batch.
        RETURNS (Tuple[float, List[PMEIBlockGrad]]): The loss and the gradients per block.
        """
        loss, _, grads = self._eq15(examples, outputs)
        return loss, grads

    def get_loss_terms(self, examples: Iterable[Example], outputs: PMEIOutput) -> Dict[str, float]:
        """The terms of eq. 15 for a batch, weighted and averaged as get_loss sums them.

        examples (Iterable[Example]): The batch.
        outputs (PMEIOutput): The model's output for the batch.
        RETURNS (Dict[str, float]): "final", "early" (alpha times the early heads' loss),
            "kl_e" and "kl_r" (beta times each map's KL); they sum to get_loss's loss.
        """
        return self._eq15(examples, outputs)[1]

    def _eq15(self, examples: Iterable[Example], outputs: PMEIOutput) -> Tuple[float, Dict[str, float], list]:
        examples = list(examples)
        tag_index = {name: i for i, name in enumerate(self.tag_names)}
        rel_index = {label: i for i, label in enumerate(self.cfg["relation_labels"])}
        targets = [gold_targets(eg, tag_index, rel_index) for eg in examples]
        warn_cross_window(outputs.blocks, targets, self.cfg["max_length"])
        cfg = self.cfg
        return eq15_loss(self.model.ops, outputs, targets, cfg["alpha"], cfg["beta_e"], cfg["beta_r"])

    def add_update_observer(self, observer: Callable[[Dict[str, Any]], None]) -> Callable[[], None]:
        """Call `observer` after the backward pass of each update, before any weight changes.

        It gets a dict: "docs" (the batch's size), "max_len" (its longest reference doc,
        in words), "loss", the terms of eq. 15 ("final", "early", "kl_e", "kl_r", as
        get_loss_terms), "grad_norm" (the norm of the gradient over the PyTorch
        parameters of this component's model) and "grad_max" ([name, norm] of the
        parameter with the largest). Observers only read; the accuracy tool's `trace`
        writes them to a file. Measuring the gradient costs a pass over the parameters,
        paid only while an observer is there.

        observer (Callable[[Dict[str, Any]], None]): Called once per update.
        RETURNS (Callable[[], None]): Removes the observer.
        """
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    def _notify(self, examples: List[Example], loss: float, terms: Dict[str, float]) -> None:
        record = update_record(self.model, examples, loss, terms)
        for observer in list(self._observers):
            observer(record)

    # ---- prediction ---------------------------------------------------------

    def predict(self, docs: Iterable[Doc]) -> List[DocPrediction]:
        """Predict entities and triples, without changing the docs.

        docs (Iterable[Doc]): The documents.
        RETURNS (List[DocPrediction]): Per doc, entity spans and relation records.
        """
        docs = list(docs)
        if not self.is_initialized:
            raise ValueError(Errors.E011.format(name=self.name))
        if not any(len(doc) for doc in docs):
            return [([], []) for _ in docs]
        t = self.cfg["threshold"]
        min_logit = float(numpy.log(t / (1.0 - t)))
        ops = self.model.ops
        cells = map_blocks(
            self.model,
            docs,
            lambda block: threshold_cells(ops, block, min_logit),
            max_length=self.cfg["max_length"],
            max_cells=self.cfg["max_cells"],
        )
        return decode_blocks(
            ops, docs, cells, self.cfg["entity_labels"], self.cfg["relation_labels"], self.cfg["anchor_fallback"]
        )

    def set_annotations(self, docs: Iterable[Doc], predictions: List[DocPrediction]) -> None:
        """Write entities to doc.ents and triples to doc._.relations.

        docs (Iterable[Doc]): The documents.
        predictions (List[DocPrediction]): From predict().
        """
        for doc, (ents, records) in zip(docs, predictions):
            spans = [Span(doc, s, e, label=label) for s, e, label in ents]
            if self.cfg["overwrite_ents"]:
                doc.ents = filter_spans(spans)
            else:
                kept = list(doc.ents)
                taken = {i for span in kept for i in range(span.start, span.end)}
                new = [sp for sp in filter_spans(spans) if not taken & set(range(sp.start, sp.end))]
                doc.ents = sorted(kept + new, key=lambda sp: sp.start)
            set_records(doc, records)

