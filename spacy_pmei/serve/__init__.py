"""The HTTP extraction service: `python -m spacy_pmei serve MODEL` (the serve extra).

- batching.py: the dynamic batcher and the worker thread that owns the pipeline
- schemas.py: request and response bodies (pydantic)
- app.py: the FastAPI app, the same for uvicorn and for each Ray Serve replica
- page.py: the page at GET /
- ray_serve.py: the Ray Serve deployment (@serve.batch)
- bench.py: the load benchmark (`serve-bench`)
- cli.py: the commands, registered on the main CLI (spacy_pmei.cli) when imported

Nothing here is imported by ``import spacy_pmei``; FastAPI and Ray only load with a command.
"""
