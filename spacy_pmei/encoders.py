"""The paper's shared encoder for spacy.Tok2Vec.v2: a length-aware BiLSTM, and its embedding."""
import warnings
from typing import Callable, List, Optional, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, PyTorchWrapper_v2, torch2xp, xp2torch
from thinc.types import Floats2d, Floats3d

from .errors import Errors, Warnings


@registry.architectures("spacy-pmei.BiLSTMEncoder.v1")
def build_bilstm_encoder(
    width: int, depth: int = 1, dropout: float = 0.0, input_width: Optional[int] = None
) -> Model[List[Floats2d], List[Floats2d]]:
    """Encode token vectors with a BiLSTM that respects each sequence's length.

    A drop-in for spacy.TorchBiLSTMEncoder.v1 whose output does not depend on
    the other sequences of the batch: that encoder lets the backward direction
    read the padding, so nlp.pipe() and nlp() disagree and training differs
    from prediction.

    width (int): Output width (and input width, unless input_width says otherwise);
        width // 2 units per direction.
    depth (int): Number of stacked BiLSTM layers.
    dropout (float): Dropout between stacked layers (torch applies none after the last).
    input_width (Optional[int]): The embedding's width where it is not `width`, as
        for spacy-pmei.PaperEmbed.v1 with a POS embedding (width + tag_width).
    RETURNS (Model[List[Floats2d], List[Floats2d]]): The encoder.
    """
    from .pytorch_pmei import PackedBiLSTM

    if width < 2 or width % 2:
        raise ValueError(Errors.E010.format(setting="width", value=width, why="must be even and >= 2"))
    if input_width is not None and input_width < 1:
        raise ValueError(Errors.E010.format(setting="input_width", value=input_width, why="must be >= 1"))
    n_in = input_width or width
    wrapped = PyTorchWrapper_v2(
        PackedBiLSTM(width, depth, dropout, n_in),
        convert_inputs=_convert_inputs,
        convert_outputs=_convert_outputs,
    )
    return Model(
        "pmei_bilstm",
        _forward,
        layers=[wrapped],
        dims={"nI": n_in, "nO": width},
    )


def _forward(
    model: Model, Xs: List[Floats2d], is_train: bool
) -> Tuple[List[Floats2d], Callable]:
    ops = model.ops
    width = model.get_dim("nO")
    lengths = [X.shape[0] for X in Xs]
    keep = [k for k, n in enumerate(lengths) if n > 0]
    outputs = [ops.alloc2f(0, width) for _ in Xs]
    if not keep:
        return outputs, lambda dYs: [ops.alloc2f(0, model.get_dim("nI")) for _ in Xs]
    if Xs[keep[0]].shape[1] != model.get_dim("nI"):
        n_in = Xs[keep[0]].shape[1]
        raise ValueError(Errors.E033.format(found=n_in, expected=model.get_dim("nI")))
    padded = ops.pad([Xs[k] for k in keep])
    kept_lengths = numpy.asarray([lengths[k] for k in keep], dtype="int64")
    Y, backprop_padded = model.layers[0]((padded, kept_lengths), is_train)
    for row, k in enumerate(keep):
        outputs[k] = Y[row, : lengths[k]]

    def backprop(dYs: List[Floats2d]) -> List[Floats2d]:
        dY = ops.pad([dYs[k] for k in keep])
        dX = backprop_padded(dY)
        dXs = [ops.alloc2f(0, model.get_dim("nI")) for _ in Xs]
        for row, k in enumerate(keep):
            dXs[k] = dX[row, : lengths[k]]
        return dXs

    return outputs, backprop


def _convert_inputs(model: Model, X_lengths: Tuple[Floats3d, numpy.ndarray], is_train: bool):
    import torch

    X, lengths = X_lengths
    Xt = xp2torch(X, requires_grad=is_train)

    def backprop(d_inputs: ArgsKwargs) -> Floats3d:
        return torch2xp(d_inputs.args[0], ops=model.ops)

    return ArgsKwargs(args=(Xt, torch.as_tensor(lengths)), kwargs={}), backprop


def _convert_outputs(model: Model, inputs_outputs: Tuple, is_train: bool):
    _, Yt = inputs_outputs

    def backprop(dY: Floats3d) -> ArgsKwargs:
        return ArgsKwargs(args=(Yt,), kwargs={"grad_tensors": xp2torch(dY, device=Yt.device)})

    return torch2xp(Yt, ops=model.ops), backprop


@registry.architectures("spacy-pmei.PaperEmbed.v1")
def build_paper_embed(
    width: int, word_dropout: float = 0.04, tag_width: int = 0, tag_rows: int = 100
) -> Model[List[Doc], List[Floats2d]]:
    """The paper's embedding: static word vectors (GloVe), optionally a POS embedding,
    and word dropout, for spacy.Tok2Vec.v2's `embed`.

    Unlike spacy.MultiHashEmbed.v2 there are no NORM/PREFIX/SUFFIX/SHAPE hash
    embeddings, no Maxout and no layer norm: the vectors are StaticVectors' linear
    map of the pipeline's vectors to `width`, beside a TAG embedding of tag_width
    (token.tag_, which a tagger earlier in the pipeline must set at prediction).

    width (int): Width of the projected word vectors.
    word_dropout (float): In training, the share of words whose whole vector (all of
        its parts) is zeroed (the paper: 0.04).
    tag_width (int): Width of the TAG embedding; 0 for none.
    tag_rows (int): Rows of the TAG hash embedding.
    RETURNS (Model[List[Doc], List[Floats2d]]): width + tag_width columns per word.
    """
    from spacy.ml.staticvectors import StaticVectors
    from thinc.api import HashEmbed, chain, concatenate, list2ragged, ragged2list, with_array
    from spacy.ml.featureextractor import FeatureExtractor

    if not 0.0 <= word_dropout < 1.0:
        raise ValueError(Errors.E010.format(setting="word_dropout", value=word_dropout, why="must be in [0, 1)"))
    vectors: Model = StaticVectors(nO=width, dropout=0.0)
    if tag_width:
        tags = chain(FeatureExtractor(["TAG"]), list2ragged(), with_array(HashEmbed(tag_width, tag_rows, column=0)))
        vectors = concatenate(vectors, tags)
    embed = chain(vectors, ragged2list())
    return Model(
        "pmei_paper_embed",
        _word_dropout_forward,
        init=lambda model, X=None, Y=None: model.layers[0].initialize(X=X),
        layers=[embed],
        attrs={"word_dropout": float(word_dropout), "tag_width": int(tag_width)},
        dims={"nO": width + tag_width},
    )


def warn_if_untagged(model: Model, nlp: Optional[Language], name: str) -> None:
    """Warn (W004) where a PaperEmbed of `model` reads POS tags that no component before
    `name` in the pipeline sets in training: spaCy's Corpus gives the model untagged
    Docs, and a tagger's tags reach them only if it is in annotating_components.

    model (Model): The component's model.
    nlp (Optional[Language]): The pipeline; nothing is checked without one.
    name (str): The component's name in it.
    """
    widths = [node.attrs["tag_width"] for node in model.walk() if node.name == "pmei_paper_embed"]
    if nlp is None or not any(widths) or name not in nlp.pipe_names:
        return
    before = nlp.pipe_names[: nlp.pipe_names.index(name)]
    taggers = [other for other in before if "token.tag" in nlp.get_pipe_meta(other).assigns]
    annotating = nlp.config.get("training", {}).get("annotating_components", [])
    if not taggers:
        why = "no component before it in the pipeline sets them"
    elif not set(taggers) & set(annotating):
        why = f"{', '.join(taggers)} before it is not in [training] annotating_components"
    else:
        return
    warnings.warn(Warnings.W004.format(name=name, width=max(widths), why=why))


def _word_dropout_forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    Ys, backprop_embed = model.layers[0](docs, is_train)
    rate = model.attrs["word_dropout"]
    if not is_train or not rate:
        return Ys, backprop_embed
    masks = [(model.ops.xp.random.uniform(size=(Y.shape[0], 1)) >= rate).astype(Y.dtype) for Y in Ys]

    def backprop(dYs: List[Floats2d]) -> List[Doc]:
        return backprop_embed([dY * mask for dY, mask in zip(dYs, masks)])

    return [Y * mask for Y, mask in zip(Ys, masks)], backprop
