"""The FastAPI application: POST /extract and /render, GET /, /health, /ready, /meta.

``create_app(engine)`` builds the same app for the single-process server (uvicorn)
and for each Ray Serve replica; only the engine's ``submit`` differs. Every error
answer is JSON, ``{"code": "E5xx", "message": ..., "field": ...}``, and nothing a
client sends can end the process.
"""
import json
import logging
import re
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, List, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from spacy.tokens import Doc, Span
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import Errors
from ..relations import Relation
from .batching import Engine, relation_components
from .page import PAGE
from .schemas import ErrorBody, ExtractRequest, ExtractResponse, Health, Meta, RenderDoc, RenderRequest, RenderResponse

logger = logging.getLogger("spacy_pmei")

DEFAULT_MAX_BYTES = 1_000_000
DEFAULT_MAX_DOCS = 256
# Bytes read (and dropped) from a body that is already too big before answering 413,
# so that the client sees the answer instead of a reset connection.
_DRAIN_FACTOR = 16
_CODE = re.compile(r"\[([EW]\d+)\]")
_ERRORS: Dict[Any, Any] = {
    status: {"model": ErrorBody} for status in (413, 422, 500, 503)
}


def error_response(status: int, message: str, field: Optional[str] = None, **extra: Any) -> JSONResponse:
    """A JSON error answer with the message's code.

    status (int): The HTTP status.
    message (str): A coded message from spacy_pmei.errors.
    field (Optional[str]): The request field at fault.
    RETURNS (JSONResponse): {"code", "message", "field", ...extra}.
    """
    match = _CODE.search(message)
    body: Dict[str, Any] = {"code": match.group(1) if match else "E508", "message": message, "field": field}
    body.update(extra)
    return JSONResponse(body, status_code=status)


class BodyLimit:
    """ASGI middleware: a request body over max_bytes gets 413 before the app parses it."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks: List[bytes] = []
        total, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            total += len(body)
            more = message.get("more_body", False)
            if total > self.max_bytes:
                if total > self.max_bytes * _DRAIN_FACTOR:
                    break
                continue
            chunks.append(body)
        if total > self.max_bytes:
            await error_response(413, Errors.E502.format(limit=self.max_bytes))(scope, receive, send)
            return
        data, replayed = b"".join(chunks), False

        async def replay() -> Dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def docs_from_records(nlp: Any, items: List[RenderDoc]) -> List[Doc]:
    """Docs with the entities and relations of /extract records (tokenized again by nlp).

    nlp (Language): The pipeline whose tokenizer made the records.
    items (List[RenderDoc]): Texts and their records.
    RETURNS (List[Doc]): One Doc per item; raises ValueError (E515) for offsets that do not fit.
    """
    docs = []
    for n, item in enumerate(items):
        doc = nlp.make_doc(item.text)
        ents = []
        for ent in item.entities:
            span = doc.char_span(ent.start_char, ent.end_char, label=ent.label)
            if span is None:
                raise ValueError(Errors.E515.format(why=f"entity {ent.text!r} of doc {n} is not on token boundaries"))
            ents.append(span)
        try:
            doc.ents = ents
            doc._.relations = [
                Relation(
                    Span(doc, r.head.start, r.head.end, label=r.head.label),
                    r.label,
                    Span(doc, r.tail.start, r.tail.end, label=r.tail.label),
                    r.score,
                )
                for r in item.relations
            ]
        except (ValueError, IndexError) as err:
            raise ValueError(Errors.E515.format(why=f"doc {n}: {err}")) from err
        docs.append(doc)
    return docs


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {"type": "", "loc": ("body",), "msg": "invalid"}
    detail = [{"loc": [str(x) for x in e.get("loc", ())], "msg": e.get("msg"), "type": e.get("type")} for e in errors]
    if first.get("type") == "json_invalid":
        why = (first.get("ctx") or {}).get("error", first.get("msg"))
        return error_response(422, Errors.E505.format(why=why), field="body", detail=detail)
    loc = [str(x) for x in first.get("loc", ()) if x != "body"]
    field = ".".join(loc) or "body"
    if first.get("type") == "value_error" and "exactly one of 'text'" in str(first.get("msg")):
        field = "text"
    return error_response(422, Errors.E504.format(field=field, why=first.get("msg")), field=field, detail=detail)


def create_app(
    engine: Engine,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_docs: int = DEFAULT_MAX_DOCS,
    manage_engine: bool = True,
) -> FastAPI:
    """The HTTP app around an engine.

    engine (Engine): The pipeline and how documents reach it.
    max_bytes (int): Largest request body (413 above).
    max_docs (int): Most texts per request (413 above).
    manage_engine (bool): Start and stop the engine with the app's lifespan.
    RETURNS (FastAPI): The app.
    """
    for setting, value in (("max_bytes", max_bytes), ("max_docs", max_docs)):
        if value < 1:
            raise ValueError(Errors.E511.format(setting=setting, value=value, why="must be at least 1"))
    nlp = engine.nlp
    pipes = relation_components(nlp)
    rel_labels = sorted({label for pipe in pipes for label in pipe.label_data["relations"]})
    ent_labels = sorted({label for pipe in pipes for label in pipe.label_data["entities"]})

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_engine:
            await engine.start()
        yield
        if manage_engine:
            await engine.stop()

    app = FastAPI(
        title="spacy-pmei",
        version=__version__,
        description="Entities and relations (PMEI) from text, with the records of `spacy-pmei extract`.",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, max_bytes=max_bytes)

    @app.exception_handler(RequestValidationError)
    async def _on_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, Errors.E509.format(status=exc.status_code, why=exc.detail))

    @app.exception_handler(Exception)
    async def _on_error(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error")
        return error_response(500, Errors.E508.format(why=f"{type(exc).__name__}: {exc}"))

    def not_ready() -> Optional[JSONResponse]:
        return None if engine.ready else error_response(503, Errors.E510)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE)

    @app.get("/health", response_model=Health, summary="The process answers (even under load)")
    async def health() -> Dict[str, Any]:
        return {"status": "ok", "ready": engine.ready, "stats": engine.stats.to_dict()}

    @app.get("/ready", response_model=Health, responses=_ERRORS, summary="200 once the pipeline is loaded")
    async def ready() -> Any:
        return not_ready() or {"status": "ready", "ready": True, "stats": engine.stats.to_dict()}

    @app.get("/meta", response_model=Meta, summary="The pipeline's meta, labels and the serving settings")
    async def meta() -> Dict[str, Any]:
        cfg = pipes[0].cfg if pipes else {}
        return {
            "meta": {k: v for k, v in nlp.meta.items() if not str(k).startswith("_")},
            "labels": {"entities": ent_labels, "relations": rel_labels},
            "threshold": cfg.get("threshold"),
            "max_length": cfg.get("max_length"),
            "spacy_pmei_version": __version__,
            "serving": {"max_batch": engine.max_batch, "max_wait_ms": engine.max_wait_ms,
                        "max_docs": max_docs, "max_bytes": max_bytes, "threads": engine.worker_threads},
        }

    @app.post(
        "/extract",
        response_model=None,
        responses={200: {"model": ExtractResponse}, **_ERRORS},
        summary="Entities and relations of one text or several, as `extract` writes them",
    )
    async def extract(body: ExtractRequest) -> Response:
        failed = not_ready()
        if failed is not None:
            return failed
        texts = body.all_texts()
        if len(texts) > max_docs:
            return error_response(413, Errors.E503.format(n=len(texts), limit=max_docs), field="texts")
        keep = None
        if body.relations is not None:
            unknown = sorted(set(body.relations) - set(rel_labels))
            if unknown:
                message = Errors.E506.format(labels=unknown, options=rel_labels)
                return error_response(422, message, field="relations")
            keep = set(body.relations)
        threshold = body.threshold
        if pipes and threshold == pipes[0].cfg["threshold"]:
            threshold = None  # the pipeline's own: such requests can share a batch
        outcomes = await engine.submit([(text, threshold) for text in texts])
        records = []
        for index, outcome in enumerate(outcomes):
            if outcome.error is not None or outcome.record is None:
                return error_response(500, Errors.E507.format(index=index, why=outcome.error), field=f"texts.{index}")
            record = outcome.record
            if keep is not None:
                record = dict(record, relations=[r for r in record["relations"] if r["label"] in keep])
            records.append(record)
        return Response(json.dumps({"records": records}, ensure_ascii=False), media_type="application/json")

    @app.post(
        "/render", response_model=RenderResponse, responses=_ERRORS, summary="Draw records with spacy_pmei.render"
    )
    async def render(body: RenderRequest) -> Any:
        if len(body.docs) > max_docs:
            return error_response(413, Errors.E503.format(n=len(body.docs), limit=max_docs), field="docs")

        def draw() -> str:
            import spacy_pmei

            return spacy_pmei.render(docs_from_records(nlp, body.docs), jupyter=False, options={"width": body.width})

        try:
            return {"html": await engine.call(draw)}
        except ValueError as err:
            return error_response(422, str(err), field="docs")

    return app
