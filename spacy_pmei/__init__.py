"""spacy-pmei: PMEI joint entity and relation extraction for spaCy."""
from typing import Any

from .relations import Relation, install_extensions

install_extensions()

__version__ = "0.1.0"
__all__ = ["Relation", "install_extensions", "render", "__version__"]


def __getattr__(name: str) -> Any:
    """Load the picture code (``spacy_pmei.render``) only when it is asked for.

    name (str): The attribute looked up on the package.
    RETURNS (Any): ``spacy_pmei.pictures.render`` for ``render``.
    """
    if name == "render":
        from .pictures import render

        return render
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
