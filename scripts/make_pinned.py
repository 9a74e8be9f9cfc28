"""Build tests/data/pinned_pipeline and its predictions (tests/test_pinned.py).

Run from the repository root, once, on the code whose predictions are to be pinned:
    python scripts/make_pinned.py
"""
import json, sys
from pathlib import Path
import spacy
sys.path.insert(0, "tests")
from conftest import SMALL_MODEL, TRAIN_DATA, make_example, train
from test_pinned import TEXTS, predictions_of

nlp = spacy.blank("en")
nlp.add_pipe("pmei_relations", config={"model": SMALL_MODEL, "threshold": 0.3})
examples = [make_example(nlp, *item) for item in TRAIN_DATA]
train(nlp, examples, n_iter=25)
out = Path("tests/data/pinned_pipeline")
nlp.to_disk(out)
nlp = spacy.load(out)
Path("tests/data/pinned_predictions.json").write_text(json.dumps(predictions_of(nlp), indent=1) + "\n")
