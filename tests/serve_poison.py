"""A test-only pipeline component that fails on a marker text (the server imports it with --code)."""
from spacy.language import Language
from spacy.tokens import Doc

MARKER = "POISON"


@Language.component("pmei_test_poison")
def poison(doc: Doc) -> Doc:
    """Raise on a document that contains MARKER, as a component with a bug would."""
    if MARKER in doc.text:
        raise ValueError(f"poisoned document ({len(doc)} tokens)")
    return doc
