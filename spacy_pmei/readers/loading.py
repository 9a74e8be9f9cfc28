"""Read JSON, JSONL, rel2id and labels files, failing with the file and record named."""

import json
from pathlib import Path
from typing import (
    Any,
    Dict,
    FrozenSet,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Tuple,
    Type,
    Union,
)

import spacy
import srsly
from spacy.tokens import Doc
from spacy.util import ensure_path

from ..errors import Errors
from ..relations import doc_labels
from .gold import UNTYPED
from .report import ConversionError, where

_MISSING = object()

# (record index, 1-based line or None, record)
Record = Tuple[int, Optional[int], Dict[str, Any]]


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise ConversionError(Errors.E100.format(path=path, why=err), str(path)) from err


def _loads(text: str, path: Path, line_offset: int = 0, index: Optional[int] = None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        line = err.lineno + line_offset
        name = where(str(path), index)
        msg = Errors.E101.format(path=name, line=line, column=err.colno, why=err.msg)
        raise ConversionError(msg, str(path), index, line) from err


def read_json_records(path: Union[str, Path], limit: int = 0) -> Iterator[Record]:
    """Yield the objects of a file holding one JSON array of objects.

    path (Union[str, Path]): The file.
    limit (int): Stop after this many records; 0 for all.
    YIELDS (Record): (index, None, record).
    """
    path = Path(path)
    data = _loads(_read_text(path), path)
    if not isinstance(data, list):
        expected = "a JSON array of records at the top level"
        raise ConversionError(
            Errors.E102.format(where=path, expected=expected, value=type(data).__name__), str(path)
        )
    for index, record in enumerate(data):
        if limit and index >= limit:
            break
        _check_object(record, path, index, None)
        yield index, None, record


def read_jsonl_records(path: Union[str, Path], limit: int = 0) -> Iterator[Record]:
    """Yield the objects of a JSONL file, one per non-blank line.

    path (Union[str, Path]): The file.
    limit (int): Stop after this many records; 0 for all.
    YIELDS (Record): (index, line, record), index counting non-blank lines.
    """
    path = Path(path)
    index = 0
    for line_no, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        if limit and index >= limit:
            break
        record = _loads(line, path, line_offset=line_no - 1, index=index)
        _check_object(record, path, index, line_no)
        yield index, line_no, record
        index += 1


def _check_object(record: Any, path: Path, index: int, line: Optional[int]) -> None:
    if not isinstance(record, dict):
        msg = Errors.E102.format(
            where=where(str(path), index, line), expected="a JSON object", value=record
        )
        raise ConversionError(msg, str(path), index, line)


def get_field(
    record: Dict[str, Any],
    name: str,
    types: Union[Type, Tuple[Type, ...]],
    place: Tuple[str, int, Optional[int]],
    expected: str,
    default: Any = _MISSING,
) -> Any:
    """Get a field of a record, or fail naming the record.

    record (Dict[str, Any]): The record (or a nested object of it).
    name (str): The key.
    types (Union[Type, Tuple[Type, ...]]): Accepted types. bool is never an int.
    place (Tuple[str, int, Optional[int]]): (file, index, line) for messages.
    expected (str): What the field should be, for the message.
    default (Any): Returned when the key is absent; without it the key is required.
    RETURNS (Any): The value.
    """
    if name not in record and default is not _MISSING:
        return default
    value = record.get(name, _MISSING)
    if not check_type(value, types):
        fail_field(place, name, expected, None if value is _MISSING else value)
    return value


def check_type(value: Any, types: Union[Type, Tuple[Type, ...]]) -> bool:
    """isinstance, except that a bool does not count as an int."""
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        return False
    return isinstance(value, types)


def fail_field(place: Tuple[str, int, Optional[int]], name: str, expected: str, value: Any) -> None:
    """Raise the missing-or-invalid-field error for a record."""
    path, index, line = place
    msg = Errors.E103.format(
        where=where(path, index, line), field=name, expected=expected, value=value
    )
    raise ConversionError(msg, path, index, line)


def fail(message: str, place: Tuple[str, int, Optional[int]]) -> None:
    """Raise a ConversionError with a message already formatted."""
    raise ConversionError(message, *place)


def load_rel2id(path: Union[str, Path]) -> List[str]:
    """Read the relation labels of a rel2id.json file, ordered by id.

    path (Union[str, Path]): [{id: rel}, {rel: id}] (CasRel), [{rel: id}] (WebNLG) or {rel: id}.
    RETURNS (List[str]): The relation labels.
    """
    path = Path(path)
    data = _loads(_read_text(path), path)
    parts = data if isinstance(data, list) else [data]
    for part in parts:
        if isinstance(part, dict) and part and all(check_type(v, int) for v in part.values()):
            return [label for label, _ in sorted(part.items(), key=lambda item: item[1])]
    for part in parts:
        if isinstance(part, dict) and part and all(isinstance(v, str) for v in part.values()):
            return list(part.values())
    raise ConversionError(Errors.E109.format(path=path, why="no {rel: id} object found"), str(path))


class LabelMap(NamedTuple):
    """The allowed relation labels and where they came from."""

    name: str
    labels: FrozenSet[str]


RelLabels = Optional[Union[str, Path, Iterable[str], LabelMap]]


def make_label_map(rel2id: RelLabels) -> Optional[LabelMap]:
    """Load a rel2id file, or wrap a list of labels; None allows any label.

    rel2id (RelLabels): A rel2id.json path, labels, a LabelMap, or None.
    RETURNS (Optional[LabelMap]): The labels to check relations against.
    """
    if rel2id is None or isinstance(rel2id, LabelMap):
        return rel2id
    if isinstance(rel2id, (str, Path)):
        return LabelMap(str(rel2id), frozenset(load_rel2id(rel2id)))
    return LabelMap("the given labels", frozenset(rel2id))


def check_label(
    label: str, labels: Optional[LabelMap], place: Tuple[str, int, Optional[int]]
) -> None:
    """Fail if a relation label is blank or not in the label map (if there is one)."""
    if not label.strip() or label != label.strip():
        fail_field(place, "relation label", _LABEL, label)
    if labels is not None and label not in labels.labels:
        msg = Errors.E104.format(
            where=where(*place), label=label, rel2id=labels.name, n=len(labels.labels)
        )
        raise ConversionError(msg, *place)


_LABEL = "a non-empty label without whitespace at either end"


def check_entity_label(label: str, name: str, place: Tuple[str, int, Optional[int]]) -> None:
    """Fail if an entity label is blank or has whitespace at either end."""
    if not label.strip() or label != label.strip():
        fail_field(place, name, _LABEL, label)


def corpus_labels(docs: Iterable[Doc], rel2id: RelLabels = None) -> Dict[str, List[str]]:
    """The labels to initialize pmei_relations with, in the `spacy init labels` form.

    A dataset's rel2id.json may list relations that its training split never
    uses (NYT dev lacks 2 of NYT's 24): given here, they become labels all the
    same, so a pipeline trained on the split keeps the dataset's label set.

    docs (Iterable[Doc]): Gold Docs, usually the training split.
    rel2id (RelLabels): A rel2id.json path or labels, added to those of the Docs.
    RETURNS (Dict[str, List[str]]): {"entities": [...], "relations": [...]}, sorted.
    """
    found = doc_labels(docs)
    label_map = make_label_map(rel2id)
    relations = set(found["relations"]) | (label_map.labels if label_map is not None else set())
    return {"entities": found["entities"] or [UNTYPED], "relations": sorted(relations)}


@spacy.registry.readers("spacy-pmei.read_labels.v1")
def read_labels(path: Optional[Union[str, Path]] = None) -> Optional[Dict[str, List[str]]]:
    """Read the labels for [initialize.components.pmei_relations.labels].

    Unlike spacy.read_labels.v1 it takes null, so a config can leave the path
    to a variable ([paths] labels = null) and fall back to the labels of the
    training data.

    path (Optional[Union[str, Path]]): A JSON file as `spacy init labels` or
        the project's convert step writes it; None for no labels.
    RETURNS (Optional[Dict[str, List[str]]]): The labels, or None.
    """
    if path is None:
        return None
    path = ensure_path(path)
    if not path.is_file():
        raise ValueError(Errors.E018.format(path=path, why="no such file"))
    try:
        data = srsly.read_json(path)
    except ValueError as err:
        raise ValueError(Errors.E018.format(path=path, why=f"invalid JSON ({err})")) from err
    if not isinstance(data, dict) or not {"entities", "relations"} <= set(data):
        raise ValueError(Errors.E018.format(path=path, why="the keys 'entities' and 'relations' are missing"))
    for key in ("entities", "relations"):
        if not isinstance(data[key], list) or not all(isinstance(v, str) for v in data[key]):
            raise ValueError(Errors.E018.format(path=path, why=f"{key!r} is not a list of strings"))
    return data
