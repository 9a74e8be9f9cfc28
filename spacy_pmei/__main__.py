"""Run the spacy-pmei command line: python -m spacy_pmei --help."""

from .cli import app

if __name__ == "__main__":
    app()
