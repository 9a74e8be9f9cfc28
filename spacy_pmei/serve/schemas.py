"""Request and response bodies of the HTTP service (pydantic models; FastAPI's /docs shows them).

The records of POST /extract are those that ``python -m spacy_pmei extract`` writes
(``spacy_pmei.extract.doc_to_record``), field for field.
"""
from typing import Any, Dict, List, Optional

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator


class ExtractRequest(BaseModel):
    """Body of POST /extract: one text or a list of texts."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"text": "Bobby Fischer was born in Chicago ."}]},
    )

    text: Optional[StrictStr] = Field(None, description="One document (give text or texts)")
    texts: Optional[List[StrictStr]] = Field(None, description="Several documents, answered in order")
    threshold: Optional[float] = Field(
        None, gt=0.0, lt=1.0, description="Decode with this threshold instead of the pipeline's"
    )
    relations: Optional[List[StrictStr]] = Field(
        None, description="Keep only the relations with these labels (entities are all kept)"
    )

    @model_validator(mode="after")
    def _one_of_text_or_texts(self) -> "ExtractRequest":
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' (a string) or 'texts' (a list of strings)")
        return self

    def all_texts(self) -> List[str]:
        """RETURNS (List[str]): The documents of the request, in order."""
        return [self.text] if self.text is not None else list(self.texts or [])


class Entity(BaseModel):
    """An entity: character offsets, token offsets (start, end), label and text."""

    start_char: int
    end_char: int
    label: str
    text: str
    start: int
    end: int


class SpanOut(BaseModel):
    """The head or tail of a relation."""

    text: str
    start_char: int
    end_char: int
    start: int
    end: int
    label: str


class RelationOut(BaseModel):
    """A triple with the model's probability."""

    head: SpanOut
    label: str
    tail: SpanOut
    score: float


class Record(BaseModel):
    """What was found in one document (a line of `extract`'s JSONL)."""

    entities: List[Entity]
    relations: List[RelationOut]


class ExtractResponse(BaseModel):
    """Answer of POST /extract: one record per text, in the order of the request."""

    records: List[Record]


class RenderDoc(BaseModel):
    """A text and its record, as POST /extract answered it."""

    model_config = ConfigDict(extra="ignore")

    text: StrictStr
    entities: List[Entity] = []
    relations: List[RelationOut] = []


class RenderRequest(BaseModel):
    """Body of POST /render: documents with their records, drawn by spacy_pmei.render."""

    docs: List[RenderDoc]
    width: int = Field(900, ge=200, le=4000, description="Width of each picture in pixels")


class RenderResponse(BaseModel):
    """Answer of POST /render: HTML with one inline SVG per document."""

    html: str


class ErrorBody(BaseModel):
    """Every error answer: the code, the message and, for a bad request, the field."""

    code: str
    message: str
    field: Optional[str] = None


class Health(BaseModel):
    """Answer of GET /health: the process lives; counters of the worker."""

    status: str
    ready: bool
    stats: Dict[str, int]


class Meta(BaseModel):
    """Answer of GET /meta."""

    model_config = ConfigDict(protected_namespaces=())

    meta: Dict[str, Any]
    labels: Dict[str, List[str]]
    threshold: Optional[float]
    max_length: Optional[int]
    spacy_pmei_version: str
    serving: Dict[str, Any]
