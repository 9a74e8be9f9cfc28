"""The Thinc model: tok2vec or transformer listener -> padded H -> PyTorch PMEI heads."""
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple, TypeVar

import numpy
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, PyTorchWrapper_v3, torch2xp, xp2torch
from thinc.types import Floats2d, Floats3d
from thinc.util import get_torch_default_device

from .decoding import Segment, get_segments, make_blocks
from .defaults import DROPOUT, DROPOUT_ON_H, EARLY_REL_BIAS, MAX_CELLS, MAX_LENGTH, VAR_EPS
from .errors import Errors
from .memory import release_freed_memory

T = TypeVar("T")


@dataclass
class PMEIBlock:
    """The network's output for one padded block of segments (arrays on the model's device)."""

    segments: List[Segment]
    lengths: numpy.ndarray
    ent_logits: Floats3d
    rel_logits: Any  # B x n x n x L
    early_ent_logits: Optional[Floats3d]
    early_rel_logits: Optional[Any]
    kl_e: Optional[Any]
    kl_r: Optional[Any]


@dataclass
class PMEIBlockGrad:
    """Gradients of the loss with respect to a PMEIBlock's outputs."""

    d_ent: Floats3d
    d_rel: Any
    d_early_ent: Optional[Floats3d] = None
    d_early_rel: Optional[Any] = None
    d_kl_e: float = 0.0
    d_kl_r: float = 0.0


@dataclass
class PMEIOutput:
    """Everything the network says about a batch of docs."""

    blocks: List[PMEIBlock]
    n_segments: int


@registry.architectures("spacy-pmei.PMEI.v1")
def build_pmei_model(
    tok2vec: Model[List[Doc], List[Floats2d]],
    variant: str = "pmei",
    pair_width: Optional[int] = None,
    prior_width: Optional[int] = None,
    dropout: float = DROPOUT,
    prior_var_floor: float = VAR_EPS,
    dropout_on_h: bool = DROPOUT_ON_H,
    early_rel_bias: str = EARLY_REL_BIAS,
) -> Model[List[Doc], PMEIOutput]:
    """Build the PMEI model over any token-vector layer.

    The PyTorch network is created in initialize(), when the label sets and the
    encoder width are known; before that a placeholder holds its place.

    tok2vec (Model[List[Doc], List[Floats2d]]): Shared encoder (H): a Tok2Vec,
        a Tok2VecListener or a TransformerListener.
    variant (str): pmei, mtl, mtl_sm, pmei_no_sm, pmei_no_interaction or
        pmei_no_gru (PMEI.md, Table 6).
    pair_width (Optional[int]): Hidden width of the pair MLPs; None = encoder width.
    prior_width (Optional[int]): Hidden width of the prior MLPs; None = encoder width.
    dropout (float): Dropout on H; nlp.update(drop=...) overrides it while training.
    prior_var_floor (float): Added to the squared output of each stochastic map's prior
        to make its variance. 1e-8 is the authors' code; a floor of 1e-4 kept runs at
        beta 1e-4 and 1e-3 from the loss spikes (and the collapse) that a near-zero
        prior variance set off (BENCHMARKS.md).
    dropout_on_h (bool): Apply `dropout` to H (True), or leave H undropped whatever
        nlp.update's drop, so that only the tok2vec drops (False: the paper's choice).
    early_rel_bias (str): The early relation head's starting bias: "prior" (the 1% prior
        of the final head) or "zero". At the prior, sigmoid's slope is ~0.01 rather than
        0.25, so the early head and g start ~25x slower (issue #31).
    RETURNS (Model[List[Doc], PMEIOutput]): The model.
    """
    from .pytorch_pmei import VARIANTS, Placeholder, deserialize_network, serialize_network

    if variant not in VARIANTS:
        raise ValueError(Errors.E004.format(variant=variant, options=", ".join(VARIANTS)))
    if early_rel_bias not in ("prior", "zero"):
        raise ValueError(Errors.E010.format(setting="early_rel_bias", value=early_rel_bias, why='use "prior" or "zero"'))
    if not prior_var_floor > 0:
        raise ValueError(
            Errors.E010.format(setting="prior_var_floor", value=prior_var_floor, why="it must be above 0")
        )
    torch_layer = PyTorchWrapper_v3(
        Placeholder(),
        convert_inputs=_convert_inputs,
        convert_outputs=_convert_outputs,
        serialize_model=serialize_network,
        deserialize_model=deserialize_network,
    )
    return Model(
        "pmei",
        _forward,
        init=_init,
        layers=[tok2vec, torch_layer],
        refs={"tok2vec": tok2vec, "torch": torch_layer},
        attrs={
            "variant": variant,
            "pair_width": pair_width,
            "prior_width": prior_width,
            "dropout_rate": dropout,
            "prior_var_floor": float(prior_var_floor),
            "dropout_on_h": bool(dropout_on_h),
            "early_rel_bias": early_rel_bias,
            "n_tags": None,
            "n_rels": None,
            "max_length": MAX_LENGTH,
            "max_cells": MAX_CELLS,
        },
    )


def get_network(model: Model) -> Any:
    """The PyTorch module inside the model (a Placeholder before initialize)."""
    return model.get_ref("torch").shims[0]._model


def _infer_width(tok2vec: Model, X: Optional[List[Doc]]) -> int:
    if tok2vec.has_dim("nO") and tok2vec.get_dim("nO"):
        return tok2vec.get_dim("nO")
    sample = [doc for doc in (X or []) if len(doc)][:10]
    if sample:
        for H in tok2vec.predict(sample):
            if H.shape[0]:
                return int(H.shape[1])
    raise ValueError(
        Errors.E010.format(setting="tok2vec width", value=None, why="cannot infer it from the sample")
    )


def _init(model: Model, X: Optional[List[Doc]] = None, Y: Any = None) -> None:
    from .pytorch_pmei import PMEINetwork

    tok2vec = model.get_ref("tok2vec")
    if X is not None:
        tok2vec.initialize(X=X)
    else:
        tok2vec.initialize()
    n_tags, n_rels = model.attrs["n_tags"], model.attrs["n_rels"]
    if not n_tags or not n_rels:
        raise ValueError(Errors.E011.format(name="spacy-pmei.PMEI.v1 (labels unset)"))
    network = PMEINetwork(
        width=_infer_width(tok2vec, X),
        n_tags=n_tags,
        n_rels=n_rels,
        variant=model.attrs["variant"],
        pair_width=model.attrs["pair_width"],
        prior_width=model.attrs["prior_width"],
        dropout=model.attrs["dropout_rate"],
        prior_var_floor=model.attrs["prior_var_floor"],
        early_rel_bias=model.attrs.get("early_rel_bias", EARLY_REL_BIAS),
    )
    model.get_ref("torch").shims[0]._model = network.to(get_torch_default_device())


def _is_listener(tok2vec: Model) -> bool:
    """Whether the encoder reads vectors an upstream component already computed."""
    return any(node.name.endswith("listener") for node in tok2vec.walk())


def _prepare(model: Model, docs: List[Doc], is_train: bool, max_length: int, max_cells: int) -> Any:
    """The docs' segments, their blocks and, for a listener, the upstream vectors."""
    tok2vec = model.get_ref("tok2vec")
    H_docs, backprop_docs = tok2vec(docs, is_train) if _is_listener(tok2vec) else (None, None)
    segments = get_segments(docs, max_length)
    network = get_network(model)
    if hasattr(network, "set_dropout"):
        network.set_dropout(model.attrs["dropout_rate"] if model.attrs.get("dropout_on_h", True) else 0.0)
    return H_docs, backprop_docs, segments, make_blocks(segments, max_cells)


def _run_block(
    model: Model, docs: List[Doc], H_docs: Optional[List[Floats2d]], segments: List[Segment], is_train: bool
) -> Tuple[PMEIBlock, Callable, Optional[Callable]]:
    """Encode (or slice) one block's segments, pad them and run the network on them."""
    if H_docs is not None:
        Hs = [H_docs[d][s:e] for d, s, e in segments]
        backprop_pieces = None
    else:
        pieces = [docs[d] if s == 0 and e == len(docs[d]) else docs[d][s:e].as_doc() for d, s, e in segments]
        Hs, backprop_pieces = model.get_ref("tok2vec")(pieces, is_train)
    lengths = numpy.asarray([e - s for _, s, e in segments], dtype="int64")
    X = model.ops.alloc3f(len(segments), int(lengths.max()), Hs[0].shape[1])
    for k, H in enumerate(Hs):
        X[k, : H.shape[0]] = H
    outputs, backprop_block = model.get_ref("torch")((X, lengths), is_train)
    return PMEIBlock(segments, lengths, **outputs._asdict()), backprop_block, backprop_pieces


def _forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[PMEIOutput, Callable]:
    """Encode, pad and run the network block by block.

    With its own encoder, the model encodes each segment (sentence or window)
    as a document of its own, one block at a time: memory then depends on the
    block size, not on the length of the longest document, and a sentence is
    encoded the same way in training and prediction. A listener reads vectors
    of whole documents from the upstream component; they are sliced.
    The output holds every block's dense tables: prediction over long documents
    goes through map_blocks instead, which keeps one block's at a time.
    """
    ops = model.ops
    H_docs, backprop_docs, segments, block_list = _prepare(
        model, docs, is_train, model.attrs["max_length"], model.attrs["max_cells"]
    )
    blocks: List[PMEIBlock] = []
    callbacks: List[Tuple[Callable, Optional[Callable]]] = []
    for block in block_list:
        block_out, backprop_block, backprop_pieces = _run_block(
            model, docs, H_docs, [segments[k] for k in block], is_train
        )
        blocks.append(block_out)
        if is_train:
            callbacks.append((backprop_block, backprop_pieces))

    def backprop(d_blocks: List[PMEIBlockGrad]) -> List[Doc]:
        dH_docs = [ops.alloc2f(*H.shape) for H in H_docs] if H_docs is not None else []
        for block_out, (backprop_block, backprop_pieces), d_block in zip(blocks, callbacks, d_blocks):
            dX = backprop_block(d_block)
            dHs = [dX[k, : e - s] for k, (_, s, e) in enumerate(block_out.segments)]
            if backprop_pieces is not None:
                backprop_pieces(dHs)
            else:
                for dH, (d, s, e) in zip(dHs, block_out.segments):
                    dH_docs[d][s:e] += dH
        if backprop_docs is not None:
            backprop_docs(dH_docs)
        return []

    return PMEIOutput(blocks, len(segments)), backprop


def map_blocks(
    model: Model, docs: List[Doc], reduce: Callable[[PMEIBlock], T], *, max_length: int, max_cells: int
) -> List[T]:
    """Predict block by block, keeping of each block only what `reduce` makes of it.

    The n x n x L tables of a long document would all be alive at once in
    model.predict's output; here each block's are dropped once reduced (the
    component keeps the cells at or above its threshold), so memory does not grow
    with the number of blocks. A call bigger than a few blocks' budget (a long
    document) also trims the heap after each block; an ordinary batch of
    sentences does not pay for it.

    model (Model): A spacy-pmei.PMEI model.
    docs (List[Doc]): The documents.
    reduce (Callable[[PMEIBlock], T]): What to keep of each block.
    max_length (int): The window, in words.
    max_cells (int): The budget of pair cells per block.
    RETURNS (List[T]): reduce's result per block, in order.
    """
    H_docs, _, segments, block_list = _prepare(model, docs, False, max_length, max_cells)
    trim = sum((e - s) ** 2 for _, s, e in segments) > 4 * max_cells
    kept: List[T] = []
    for block in block_list:
        kept.append(reduce(_run_block(model, docs, H_docs, [segments[k] for k in block], False)[0]))
        if trim:
            release_freed_memory()
    return kept


def _convert_inputs(
    model: Model, X_lengths: Tuple[Floats3d, numpy.ndarray], is_train: bool
) -> Tuple[ArgsKwargs, Callable]:
    import torch

    X, lengths = X_lengths
    Xt = xp2torch(X, requires_grad=is_train)
    # The mask is built once per block, on the device, from the lengths alone.
    positions = torch.arange(X.shape[1], device=Xt.device)
    mask = positions.unsqueeze(0) < torch.as_tensor(lengths, device=Xt.device).unsqueeze(1)

    def backprop(d_inputs: ArgsKwargs) -> Floats3d:
        return torch2xp(d_inputs.args[0], ops=model.ops)

    return ArgsKwargs(args=(Xt, mask), kwargs={}), backprop


def _convert_outputs(model: Model, inputs_outputs: Tuple[Any, Tuple], is_train: bool):
    import torch

    from .pytorch_pmei import NetworkOutput

    _, outputs = inputs_outputs
    converted = NetworkOutput(*(None if t is None else torch2xp(t, ops=model.ops) for t in outputs))

    def backprop(d_block: PMEIBlockGrad) -> ArgsKwargs:
        grads = NetworkOutput(
            ent_logits=d_block.d_ent,
            rel_logits=d_block.d_rel,
            early_ent_logits=d_block.d_early_ent,
            early_rel_logits=d_block.d_early_rel,
            kl_e=d_block.d_kl_e,
            kl_r=d_block.d_kl_r,
        )
        tensors, grad_tensors = [], []
        for out, grad in zip(outputs, grads):
            if out is None or grad is None or not out.requires_grad:
                continue
            if isinstance(grad, float):
                grad_t = torch.tensor(grad, dtype=out.dtype, device=out.device)
            else:
                grad_t = xp2torch(grad, device=out.device)
            tensors.append(out)
            grad_tensors.append(grad_t)
        return ArgsKwargs(args=(tensors,), kwargs={"grad_tensors": grad_tensors})

    return converted, backprop
