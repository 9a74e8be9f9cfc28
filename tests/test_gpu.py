"""GPU checks: run only where CUDA is available."""
import pytest
import spacy

from conftest import SMALL_MODEL, TRAIN_DATA, make_example, triples_of

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_train_and_predict_on_gpu():
    from thinc.api import require_gpu, use_ops

    require_gpu(0)
    try:
        nlp = spacy.blank("en")
        nlp.add_pipe("pmei_relations", config={"model": SMALL_MODEL})
        examples = [make_example(nlp, *item) for item in TRAIN_DATA]
        optimizer = nlp.initialize(lambda: examples)
        optimizer.learn_rate = 0.01
        for _ in range(80):
            losses = nlp.update(examples, sgd=optimizer)
        assert losses["pmei_relations"] < 1.0
        doc = nlp(TRAIN_DATA[0][0])
        assert all(isinstance(r.score, float) for r in doc._.relations)
        assert triples_of(doc)
    finally:
        use_ops("numpy")
