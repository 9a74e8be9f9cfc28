"""What runs in each Ray actor: the pipeline, built once, applied to chunks of records."""

import json
from typing import Any, Dict, List

import numpy
import spacy

from ..errors import Errors
from ..extract import doc_to_record


def import_ray() -> Any:
    """Import ray and ray.data, or raise an ImportError that says how to install them.

    RETURNS (module): The ray module.
    """
    try:
        import ray
        import ray.data  # noqa: F401
        import ray.util.queue  # noqa: F401
    except ImportError as err:
        raise ImportError(Errors.E400.format(why=err)) from err
    return ray


class RayExtractor:
    """The map_batches UDF: one pipeline per Ray actor, built once from the driver's pipeline.

    A row is one chunk of usable records, {"payload": JSON [[text, context], ...]};
    its result is {"lines": JSON [line numbers], "json": the output lines joined by
    newlines}, in the same order. A chunk is piped as one nlp.pipe batch, so the
    pipeline sees the batches that extract() gives it. Subclass it (and pass udf=)
    to add checks or post-processing; the class must be picklable.
    """

    def __init__(self, pipeline: List[Any], batch_size: int, use_gpu: bool) -> None:
        """Build the pipeline from the serialized one the driver put in the object store.

        pipeline (List[Any]): [ObjectRef of (config string, nlp.to_bytes())], in a list
            so that Ray passes the reference rather than the value.
        batch_size (int): Documents per nlp.pipe batch (the chunk size).
        use_gpu (bool): Run on the GPU Ray gave this actor.
        """
        import ray
        from thinc.api import Config

        if use_gpu:
            spacy.require_gpu(0)  # Ray sets CUDA_VISIBLE_DEVICES to this actor's GPU(s)
        config_str, data = ray.get(pipeline[0])
        # as spacy.load builds a pipeline from its config.cfg, then the weights
        self.nlp = spacy.util.load_model_from_config(Config().from_str(config_str, interpolate=False))
        self.nlp.from_bytes(data)
        self.batch_size = batch_size

    def __call__(self, batch: Dict[str, numpy.ndarray]) -> Dict[str, numpy.ndarray]:
        """Extract from the chunks of one map batch, each on its own.

        batch (Dict[str, numpy.ndarray]): The "payload" column.
        RETURNS (Dict[str, numpy.ndarray]): The "lines" and "json" columns.
        """
        lines_out, json_out = [], []
        for payload in batch["payload"]:
            records = [(text, context) for text, context in json.loads(payload)]
            docs = self.nlp.pipe(records, as_tuples=True, batch_size=self.batch_size)
            lines, outputs = [], []
            for doc, context in docs:
                lines.append(context["line"])
                outputs.append(json.dumps(doc_to_record(doc, context), ensure_ascii=False))
            lines_out.append(json.dumps(lines))
            json_out.append("\n".join(outputs))
        return {
            "lines": numpy.asarray(lines_out, dtype=object),
            "json": numpy.asarray(json_out, dtype=object),
        }
