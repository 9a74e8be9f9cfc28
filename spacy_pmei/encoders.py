"""A length-aware BiLSTM encoder for spacy.Tok2Vec.v2 (the paper's shared encoder)."""
from typing import Callable, List, Tuple

import numpy
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, PyTorchWrapper_v2, torch2xp, xp2torch
from thinc.types import Floats2d, Floats3d

from .errors import Errors


@registry.architectures("spacy-pmei.BiLSTMEncoder.v1")
def build_bilstm_encoder(
    width: int, depth: int = 1, dropout: float = 0.0
) -> Model[List[Floats2d], List[Floats2d]]:
    """Encode token vectors with a BiLSTM that respects each sequence's length.

    A drop-in for spacy.TorchBiLSTMEncoder.v1 whose output does not depend on
    the other sequences of the batch: that encoder lets the backward direction
    read the padding, so nlp.pipe() and nlp() disagree and training differs
    from prediction.

    width (int): Input and output width; width // 2 units per direction.
    depth (int): Number of stacked BiLSTM layers.
    dropout (float): Dropout between stacked layers (torch applies none after the last).
    RETURNS (Model[List[Floats2d], List[Floats2d]]): The encoder.
    """
    from .pytorch_pmei import PackedBiLSTM

    if width < 2 or width % 2:
        raise ValueError(Errors.E010.format(setting="width", value=width, why="must be even and >= 2"))
    wrapped = PyTorchWrapper_v2(
        PackedBiLSTM(width, depth, dropout),
        convert_inputs=_convert_inputs,
        convert_outputs=_convert_outputs,
    )
    return Model(
        "pmei_bilstm",
        _forward,
        layers=[wrapped],
        dims={"nI": width, "nO": width},
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
