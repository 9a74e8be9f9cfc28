"""spacy-pmei: PMEI joint entity and relation extraction for spaCy."""
from .relations import Relation, install_extensions
from .render import render

install_extensions()

__version__ = "0.1.0"
__all__ = ["Relation", "install_extensions", "render", "__version__"]
