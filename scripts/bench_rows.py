"""The accuracy benchmark, as project.yml has always called it: the same as
`python -m spacy_pmei.accuracy` (see spacy_pmei/accuracy/__init__.py)."""
import sys

from spacy_pmei.accuracy.cli import app

if __name__ == "__main__":
    sys.exit(app())
