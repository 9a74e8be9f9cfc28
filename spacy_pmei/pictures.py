"""Relation pictures: entities highlighted in the text, an arrow from head to tail per relation.

``render(docs)`` returns HTML with one inline SVG per Doc; nothing is fetched (no
scripts, fonts or URLs: the text uses the system's sans-serif fonts). The layout
is computed here, so the picture is the same in a browser, a notebook or a file:

- Text is wrapped into rows of at most ``options["width"]`` pixels (the whole
  picture, lanes included). Entities (and relation spans) are never split, and
  a newline in the text starts a new row. Word widths are estimated from
  Helvetica/Arial metrics and each text run is drawn with ``textLength`` set
  to the estimate, so other fonts squeeze or stretch a little instead of
  overlapping.
- A relation inside one row is an arc above the row: up from the head, across
  at its level, down into the tail with an arrowhead. Levels are assigned
  first-fit from the shortest arc up, so arcs (and their labels) at one level
  never overlap; nested arcs sit above the arcs they enclose.
- Where an entity is the head or tail of several relations, the arcs' ends are
  spread across its box, ordered so that nested arcs do not cross: arcs to
  nearer partners end nearer the box's edges.
- A relation whose head and tail are in different rows is routed through a
  lane in the margin: from the head up to a level of its row, out to a
  vertical lane left (or right, whichever is the shorter way) of the text,
  along the lane to the tail's row, in at a level of that row and down into
  the tail. Each such relation has its own lane.
- The label is written on the arrow's horizontal run (for a relation across
  rows, on the longer of its two runs), on a white ground, on top of the lines
  of higher arcs. Hovering a relation shows ``label (score)`` and
  ``head → tail`` (an SVG ``<title>``) and fades the others.
"""
import html
import re
import unicodedata
import zlib
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc

from .errors import Errors
from .relations import EXTENSION

FONT_STACK = (
    '-apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, "Liberation Sans", '
    '"DejaVu Sans", sans-serif'
)
DEFAULT_WIDTH = 900
MIN_WIDTH = 200

# Entity colours: displaCy's for the common labels, a stable pick from PALETTE for the others.
ENT_COLORS = {
    "PER": "#aa9cfc",
    "PERSON": "#aa9cfc",
    "ORG": "#7aecec",
    "LOC": "#ff9561",
    "GPE": "#feca74",
    "NORP": "#c887fb",
    "FAC": "#9cc9cc",
    "EVENT": "#ffeb80",
    "PRODUCT": "#bfeeb7",
    "WORK_OF_ART": "#f0d0ff",
    "LAW": "#ff8197",
    "LANGUAGE": "#ff8197",
    "DATE": "#bfe1d9",
    "MISC": "#e4e7d2",
    "ENTITY": "#ddd",
}
ENT_PALETTE = (
    "#7aecec",
    "#bfeeb7",
    "#feca74",
    "#ff9561",
    "#aa9cfc",
    "#c887fb",
    "#9cc9cc",
    "#ffeb80",
    "#ff8197",
    "#f0d0ff",
    "#bfe1d9",
    "#e4e7d2",
)
# Relation colours: dark enough for 12px text on white; given in order of the sorted labels.
REL_PALETTE = (
    "#1f5fa8",
    "#c0392b",
    "#237a3b",
    "#7d3c98",
    "#a65d00",
    "#b0306f",
    "#137a7f",
    "#5d6d1e",
    "#4b4b4b",
    "#2c3e9e",
)

# Geometry, in pixels.
FONT_SIZE = 16
ENT_LABEL_SIZE = 10.5
REL_LABEL_SIZE = 12
PAD = 10  # around the picture
BOX_H = 26  # entity box height
BOX_PAD = 5  # space inside an entity box, left and right
BOX_GAP = 3  # extra space between a box and its neighbours
LEVEL_H = 22  # vertical distance between arc levels
ARC_TOP = 12  # space above the highest level of a row
ROW_GAP = 10  # space below a row's boxes
LABEL_H = 16  # relation label box height
LABEL_PAD = 4  # relation label box padding, left and right
SEG_GAP = 6  # least horizontal space between two arcs (labels included) at one level
LANE_GAP = 9  # distance between two margin lanes
GUTTER_PAD = 10  # space between the text and the innermost lane
ARROW_LEN = 8
ARROW_HALF = 4
RADIUS = 5  # rounded corners of the arrows

OPTIONS = ("width", "colors", "rel_colors")
_COLOR = re.compile(r"^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,30}|(rgb|rgba|hsl|hsla)\(\s*[0-9.,%\s/-]+\))$")
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# Helvetica/Arial advance widths (1/1000 em) for ASCII 32..126.
_WIDTHS = (
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
)  # fmt: skip

CSS = """
.pmei-render { font-family: %(font)s; }
.pmei-render .pmei-doc { margin: 0 0 1em 0; padding: 0; background: #fff; max-width: 100%%;
  overflow-x: auto; }
.pmei-render svg { display: block; }
.pmei-render .pmei-rel { cursor: default; }
.pmei-render .pmei-rel-hit { stroke: transparent; stroke-width: 10; fill: none; pointer-events: stroke; }
.pmei-render .pmei-rels:hover .pmei-rel { opacity: 0.25; }
.pmei-render .pmei-rels .pmei-rel:hover { opacity: 1; }
.pmei-render .pmei-rel:hover .pmei-rel-path { stroke-width: 3; }
""" % {"font": FONT_STACK}


def render(
    docs: Union[Doc, Iterable[Doc]],
    *,
    page: bool = False,
    jupyter: Optional[bool] = None,
    options: Optional[Dict[str, Any]] = None,
) -> Optional[str]:
    """Draw the entities and relations of documents as HTML with inline SVG.

    docs (Union[Doc, Iterable[Doc]]): The document(s), with doc.ents and doc._.relations.
    page (bool): Return a standalone HTML page (<!DOCTYPE html>, <meta charset>).
    jupyter (Optional[bool]): Display in a Jupyter notebook (via IPython) and return None;
        None detects a notebook, as displaCy does.
    options (Optional[Dict[str, Any]]): "width" (int, the picture's width in pixels, default
        900), "colors" ({entity label: CSS colour}), "rel_colors" ({relation label: CSS colour}).
    RETURNS (Optional[str]): The markup, or None where it was displayed in a notebook.
    """
    settings = _check_options(options or {})
    if isinstance(docs, Doc):
        docs = [docs]
    try:
        docs = list(docs)
    except TypeError:
        raise ValueError(Errors.E302.format(value=docs)) from None
    for doc in docs:
        if not isinstance(doc, Doc):
            raise ValueError(Errors.E302.format(value=doc))
    rel_labels = sorted({rel.label for doc in docs for rel in getattr(doc._, EXTENSION)})
    rel_colors = {label: REL_PALETTE[i % len(REL_PALETTE)] for i, label in enumerate(rel_labels)}
    rel_colors.update(settings["rel_colors"])
    figures = [
        _render_doc(doc, i, settings["width"], settings["colors"], rel_colors) for i, doc in enumerate(docs)
    ]
    markup = f'<div class="pmei-render">\n<style>{CSS}</style>\n' + "\n".join(figures) + "\n</div>"
    if page:
        markup = (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            "<title>spacy-pmei relations</title>\n"
            "<style>body { margin: 0; padding: 16px; background: #fff; color: #111; }</style>\n"
            f"</head>\n<body>\n{markup}\n</body>\n</html>\n"
        )
    if jupyter is None:
        from spacy.util import is_in_jupyter

        jupyter = is_in_jupyter()
    if jupyter:
        from IPython.display import HTML, display

        # the span keeps MathJax away from "$" in the text, as in displaCy
        return display(HTML(f'<span class="tex2jax_ignore">{markup}</span>'))
    return markup


def _check_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """Validated options with defaults; raises ValueError (E300, E301)."""
    if not isinstance(options, dict):
        raise ValueError(Errors.E301.format(key="options", value=options, why="expected a dict"))
    for key in options:
        if key not in OPTIONS:
            raise ValueError(Errors.E300.format(key=key, options=", ".join(OPTIONS)))
    width = options.get("width", DEFAULT_WIDTH)
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not MIN_WIDTH <= width <= 100_000:
        raise ValueError(
            Errors.E301.format(key="width", value=width, why=f"expected a number of pixels >= {MIN_WIDTH}")
        )
    out: Dict[str, Any] = {"width": float(width)}
    for key in ("colors", "rel_colors"):
        colors = options.get(key) or {}
        if not isinstance(colors, dict):
            raise ValueError(Errors.E301.format(key=key, value=colors, why="expected {label: colour}"))
        for label, color in colors.items():
            if not isinstance(color, str) or not _COLOR.match(color.strip()):
                why = f"the colour of {label!r} must be #hex, a colour name, rgb(), rgba(), hsl() or hsla()"
                raise ValueError(Errors.E301.format(key=key, value=color, why=why))
        out[key] = {str(label): color.strip() for label, color in colors.items()}
    return out


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Estimated width of text in pixels at a font size, from Helvetica/Arial metrics.

    text (str): The text.
    size (float): Font size in pixels.
    bold (bool): Bold text (about 7% wider).
    RETURNS (float): The width in pixels.
    """
    total = 0
    for char in text:
        code = ord(char)
        if 32 <= code <= 126:
            total += _WIDTHS[code - 32]
        elif unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        elif unicodedata.east_asian_width(char) in ("W", "F"):
            total += 1000
        else:
            total += 600
    return total * size / 1000 * (1.07 if bold else 1.0)


def _esc(text: str) -> str:
    """Text for element content or a quoted attribute; characters XML forbids become U+FFFD."""
    return html.escape(_XML_BAD.sub("\ufffd", str(text)), quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


@dataclass
class _Box:
    """A highlighted span: an entity or a relation argument that is not an entity."""

    start: int
    end: int
    label: str
    is_ent: bool
    row: int = 0
    x0: float = 0.0
    x1: float = 0.0
    endpoints: List[Tuple[Tuple, int, str]] = field(default_factory=list)  # (sort key, rel, role)
    xs: Dict[Tuple[int, str], float] = field(default_factory=dict)  # (rel, role) -> x


@dataclass
class _Segment:
    """A horizontal run of a relation inside one row, with its level once stacked."""

    rel: int
    row: int
    lo: float
    hi: float
    role: str = "arc"  # "arc" (head and tail in the row), or the "head" or "tail" run across rows
    level: int = 0
    label: Optional[Tuple[float, float]] = None  # (centre x, width)

    def extent(self) -> Tuple[float, float]:
        lo, hi = self.lo, self.hi
        if self.label is not None:
            centre, width = self.label
            lo, hi = min(lo, centre - width / 2), max(hi, centre + width / 2)
        return lo, hi


@dataclass
class _Layout:
    """Where everything goes: token positions, rows, boxes, relation routes."""

    text_width: float
    tokens: Dict[int, Tuple[int, float, float]] = field(default_factory=dict)  # i -> (row, x0, x1)
    n_rows: int = 0
    row_widths: List[float] = field(default_factory=list)
    runs: List[Tuple[int, float, float, str]] = field(default_factory=list)  # row, x0, x1, text
    boxes: List[_Box] = field(default_factory=list)
    box_at: Dict[Tuple[int, int], _Box] = field(default_factory=dict)  # (start, end) -> box
    segments: List[_Segment] = field(default_factory=list)
    lanes: Dict[int, Tuple[str, int]] = field(default_factory=dict)  # rel -> (side, lane index)
    n_lanes: Dict[str, int] = field(default_factory=lambda: {"left": 0, "right": 0})


def _render_doc(
    doc: Doc, index: int, width: float, colors: Dict[str, str], rel_colors: Dict[str, str]
) -> str:
    """One <figure> with the SVG of one Doc."""
    relations = list(getattr(doc._, EXTENSION))
    # Reserve margin lanes until the wrapped layout needs no more than it has.
    reserved = {"left": 0, "right": 0}
    for _ in range(6):
        gutters = sum(_gutter(reserved[side]) for side in ("left", "right"))
        layout = _layout(doc, relations, max(width - 2 * PAD - gutters, 60.0))
        needed = layout.n_lanes
        if all(needed[side] <= reserved[side] for side in needed):
            break
        reserved = {side: max(reserved[side], needed[side]) for side in needed}
    left = _gutter(max(reserved["left"], layout.n_lanes["left"]))
    right = _gutter(max(reserved["right"], layout.n_lanes["right"]))
    return _draw(doc, index, relations, layout, left, right, colors, rel_colors)


def _gutter(n_lanes: int) -> float:
    return GUTTER_PAD + n_lanes * LANE_GAP if n_lanes else 0.0


def _layout(doc: Doc, relations: Sequence[Any], row_width: float) -> _Layout:
    """Wrap the tokens into rows, place the boxes, stack the relations' runs into levels."""
    layout = _Layout(text_width=row_width)
    boxes: Dict[Tuple[int, int], _Box] = {}
    for ent in doc.ents:
        boxes[(ent.start, ent.end)] = _Box(ent.start, ent.end, ent.label_, True)
    for rel in relations:
        for span in (rel.head, rel.tail):
            if (span.start, span.end) not in boxes:
                boxes[(span.start, span.end)] = _Box(span.start, span.end, span.label_, False)
    # Units: maximal groups of tokens covered by overlapping boxes; a unit is never split.
    cover = [-1] * len(doc)  # per token: the last token of the boxes that cover it, or -1
    for box in boxes.values():
        for i in range(box.start, box.end):
            cover[i] = max(cover[i], box.end - 1)
    starts = {b.start: b for b in boxes.values() if b.is_ent}
    ends = {b.end - 1: b for b in boxes.values() if b.is_ent}
    units: List[List[int]] = []
    reach = -1
    for i in range(len(doc)):
        if i <= reach and units:
            units[-1].append(i)
        else:
            units.append([i])
        reach = max(reach, cover[i])

    def advance(i: int) -> Tuple[float, float, float]:
        """(space before the token's text, text width, space after) inside a unit."""
        token = doc[i]
        before = BOX_PAD if i in starts else 0.0
        after = 0.0
        if i in ends:
            label = ends[i].label
            after = BOX_PAD + (text_width_label(label) + BOX_PAD if label else 0.0)
        return before, text_width(token.text, FONT_SIZE), after

    space = text_width(" ", FONT_SIZE)
    row, x, row_start = 0, 0.0, True
    run: List[int] = []
    runs: List[Tuple[int, List[int]]] = []
    previous: Optional[int] = None
    for unit in units:
        first = doc[unit[0]]
        if len(unit) == 1 and first.is_space and cover[unit[0]] < 0:
            if "\n" in first.text and not row_start:
                layout.row_widths.append(x)
                row, x, row_start, previous = row + 1, 0.0, True, None
            elif not row_start:
                x += space
            continue
        widths = [advance(i) for i in unit]
        unit_width = sum(b + w + a for b, w, a in widths)
        unit_width += sum(space for i in unit[:-1] if doc[i].whitespace_)
        gap = 0.0
        if previous is not None:
            gap = space if doc[previous].whitespace_ else 0.0
            if unit[0] in starts or previous in ends:
                gap += BOX_GAP
        if not row_start and x + gap + unit_width > row_width:
            layout.row_widths.append(x)
            row, x, row_start, previous = row + 1, 0.0, True, None
            gap = 0.0
        x += gap
        for k, (i, (before, w, after)) in enumerate(zip(unit, widths)):
            if k and doc[unit[k - 1]].whitespace_:
                x += space
            x += before
            layout.tokens[i] = (row, x, x + w)
            x += w + after
        row_start, previous = False, unit[-1]
    layout.row_widths.append(x)
    layout.n_rows = row + 1 if len(doc) else 0
    # Text runs: consecutive tokens of a row with nothing drawn between them.
    for i in range(len(doc)):
        if i not in layout.tokens:
            run = []
            continue
        joined = (
            run
            and layout.tokens[run[-1]][0] == layout.tokens[i][0]
            and i not in starts
            and run[-1] not in ends
            and run[-1] == i - 1
        )
        if not joined:
            run = [i]
            runs.append((layout.tokens[i][0], run))
        else:
            run.append(i)
    for row_index, tokens in runs:
        text = "".join(doc[i].text + (" " if doc[i].whitespace_ and i != tokens[-1] else "") for i in tokens)
        layout.runs.append((row_index, layout.tokens[tokens[0]][1], layout.tokens[tokens[-1]][2], text))
    # Boxes: from the first token's text to the end of the label.
    for box in boxes.values():
        row, x0, _ = layout.tokens[box.start]
        _, _, x1 = layout.tokens[box.end - 1]
        if box.is_ent:
            x0 -= BOX_PAD
            x1 += BOX_PAD + (text_width_label(box.label) + BOX_PAD if box.label else 0.0)
        box.row, box.x0, box.x1 = row, x0, x1
    layout.boxes = sorted(boxes.values(), key=lambda b: (b.start, b.end))
    layout.box_at = boxes
    _route(layout, boxes, relations)
    return layout


def text_width_label(label: str) -> float:
    """Width of an entity label as written in its box (small bold capitals)."""
    return text_width(label, ENT_LABEL_SIZE, bold=True)


def _route(layout: _Layout, boxes: Dict[Tuple[int, int], _Box], relations: Sequence[Any]) -> None:
    """Spread the relations' ends over the boxes, choose lanes, stack the runs into levels."""
    width = layout.text_width
    ends: List[Tuple[_Box, _Box]] = []
    side: Dict[int, str] = {}
    for r, rel in enumerate(relations):
        head, tail = boxes[(rel.head.start, rel.head.end)], boxes[(rel.tail.start, rel.tail.end)]
        ends.append((head, tail))
        if head.row != tail.row:
            centre = (head.x0 + head.x1 + tail.x0 + tail.x1) / 4
            side[r] = "left" if centre < width / 2 else "right"
    # Order each box's ends so that nested arcs do not cross: the leftmost end goes to the
    # nearest partner on the left, the rightmost to the nearest partner on the right.
    for r, (head, tail) in enumerate(ends):
        for role, box, other in (("head", head, tail), ("tail", tail, head)):
            if box is other:
                key: Tuple = (1, 0.0, 0 if role == "head" else 1, r)
            elif r in side:
                far = 1e9 + abs(box.row - other.row)
                key = (0, far, 0, -r) if side[r] == "left" else (2, -far, 0, r)
            else:
                distance = (other.x0 + other.x1) / 2 - (box.x0 + box.x1) / 2
                if distance < 0 or (distance == 0 and other.start < box.start):
                    key = (0, -distance, 0, -r)
                else:
                    key = (2, -distance, 0, r)
            box.endpoints.append((key, r, role))
    for box in boxes.values():
        box.endpoints.sort()
        n = len(box.endpoints)
        inner = max(box.x1 - box.x0 - 2 * RADIUS, 0.0)
        for k, (_, r, role) in enumerate(box.endpoints):
            box.xs[(r, role)] = (
                box.x0 + RADIUS + inner * (k + 1) / (n + 1) if inner else (box.x0 + box.x1) / 2
            )
    # Runs: an arc per relation inside a row; two half-runs (to the margin) per relation across rows.
    segments: List[_Segment] = []
    for r, (head, tail) in enumerate(ends):
        hx, tx = head.xs[(r, "head")], tail.xs[(r, "tail")]
        label_w = text_width(relations[r].label, REL_LABEL_SIZE) + 2 * LABEL_PAD
        if r not in side:
            lo, hi = min(hx, tx), max(hx, tx)
            centre = min(max((lo + hi) / 2, label_w / 2), width - label_w / 2)
            segments.append(_Segment(r, head.row, lo, hi, label=(centre, label_w)))
            continue
        # Across rows: a run to the margin in each row; the label goes on the longer one.
        edge = 0.0 if side[r] == "left" else max([width] + layout.row_widths)
        runs = [
            _Segment(r, head.row, min(hx, edge), max(hx, edge), "head"),
            _Segment(r, tail.row, min(tx, edge), max(tx, edge), "tail"),
        ]
        longer = runs[1] if runs[1].hi - runs[1].lo > runs[0].hi - runs[0].lo else runs[0]
        centre = min(max((longer.lo + longer.hi) / 2, label_w / 2), width - label_w / 2)
        longer.label = (centre, label_w)
        segments.extend(runs)
    # Levels: first fit, shortest first, so that enclosing arcs go above what they enclose.
    taken: Dict[Tuple[int, int], List[Tuple[float, float]]] = {}
    for seg in sorted(segments, key=lambda s: (s.extent()[1] - s.extent()[0], s.lo, s.rel)):
        lo, hi = seg.extent()
        level = 1
        while any(lo < b + SEG_GAP and a < hi + SEG_GAP for a, b in taken.get((seg.row, level), [])):
            level += 1
        seg.level = level
        taken.setdefault((seg.row, level), []).append((lo, hi))
    layout.segments = segments
    # Lanes: a relation's lane runs from the height of its run in the head's row to that of
    # its run in the tail's row. First fit from the shortest, so a lane is inside the lanes
    # whose span contains its own, and no run out to a lane crosses an inner lane. Lanes that
    # do not overlap vertically share a position.
    top = max([seg.level for seg in segments] + [0]) + 1
    spans: Dict[int, List[int]] = {}
    for seg in segments:
        if seg.rel in side:
            spans.setdefault(seg.rel, []).append(seg.row * top - seg.level)
    used: Dict[Tuple[str, int], List[Tuple[int, int]]] = {}
    for r in sorted(side, key=lambda r: (max(spans[r]) - min(spans[r]), r)):
        heights = (min(spans[r]), max(spans[r]))
        lane = 0
        while any(heights[0] <= b and a <= heights[1] for a, b in used.get((side[r], lane), [])):
            lane += 1
        used.setdefault((side[r], lane), []).append(heights)
        layout.lanes[r] = (side[r], lane)
        layout.n_lanes[side[r]] = max(layout.n_lanes[side[r]], lane + 1)


def _rounded(points: Sequence[Tuple[float, float]], radius: float = RADIUS) -> str:
    """An SVG path through orthogonal points, with rounded corners."""
    d = [f"M{_num(points[0][0])},{_num(points[0][1])}"]
    for k in range(1, len(points) - 1):
        (x0, y0), (x1, y1), (x2, y2) = points[k - 1], points[k], points[k + 1]
        len_in, len_out = abs(x1 - x0) + abs(y1 - y0), abs(x2 - x1) + abs(y2 - y1)
        rad = min(radius, len_in / 2, len_out / 2)
        if rad <= 0:
            d.append(f"L{_num(x1)},{_num(y1)}")
            continue
        ax = x1 - (x1 - x0) / len_in * rad
        ay = y1 - (y1 - y0) / len_in * rad
        bx = x1 + (x2 - x1) / len_out * rad
        by = y1 + (y2 - y1) / len_out * rad
        d.append(f"L{_num(ax)},{_num(ay)}Q{_num(x1)},{_num(y1)} {_num(bx)},{_num(by)}")
    d.append(f"L{_num(points[-1][0])},{_num(points[-1][1])}")
    return "".join(d)


def _ent_color(label: str, colors: Dict[str, str]) -> str:
    if label in colors:
        return colors[label]
    if label.upper() in ENT_COLORS:
        return ENT_COLORS[label.upper()]
    return ENT_PALETTE[zlib.crc32(label.encode("utf8")) % len(ENT_PALETTE)]


def _draw(
    doc: Doc,
    index: int,
    relations: Sequence[Any],
    layout: _Layout,
    left: float,
    right: float,
    colors: Dict[str, str],
    rel_colors: Dict[str, str],
) -> str:
    """The <figure> for a laid-out Doc."""
    text_left = PAD + left
    levels = [0] * layout.n_rows
    for seg in layout.segments:
        levels[seg.row] = max(levels[seg.row], seg.level)
    box_tops: List[float] = []
    y = PAD
    for row in range(layout.n_rows):
        y += ARC_TOP + levels[row] * LEVEL_H if levels[row] else 2
        box_tops.append(y)
        y += BOX_H + ROW_GAP
    height = y - ROW_GAP + PAD if layout.n_rows else 2 * PAD
    used_width = max([layout.text_width] + layout.row_widths)
    total_width = text_left + used_width + right + PAD
    baseline = BOX_H / 2 + FONT_SIZE * 0.35
    parts: List[str] = []
    summary = f"{len(doc.ents)} entities, {len(relations)} relations"
    parts.append(
        f'<figure class="pmei-doc" data-doc="{index}" data-rows="{layout.n_rows}">'
        f'<svg xmlns="http://www.w3.org/2000/svg" class="pmei-svg" width="{_num(total_width)}" '
        f'height="{_num(height)}" viewBox="0 0 {_num(total_width)} {_num(height)}" role="img" '
        f'aria-label="{_esc(summary)}" font-family="{_esc(FONT_STACK)}">'
    )
    parts.append('<rect class="pmei-bg" width="100%" height="100%" fill="#fff"/>')
    by_row: Dict[int, List[str]] = {}
    for box in layout.boxes:
        top = box_tops[box.row]
        x0, x1 = text_left + box.x0, text_left + box.x1
        attrs = f'data-start="{box.start}" data-end="{box.end}" data-label="{_esc(box.label)}"'
        if box.is_ent:
            color = _ent_color(box.label, colors)
            label_x = x1 - BOX_PAD - text_width_label(box.label)
            label = (
                f'<text class="pmei-ent-label" x="{_num(label_x)}" y="{_num(top + baseline - 1)}" '
                f'font-size="{ENT_LABEL_SIZE}" font-weight="bold" fill="#333" '
                f'textLength="{_num(text_width_label(box.label))}" lengthAdjust="spacingAndGlyphs">'
                f"{_esc(box.label)}</text>"
                if box.label
                else ""
            )
            by_row.setdefault(box.row, []).append(
                f'<g class="pmei-ent" {attrs}><rect x="{_num(x0)}" y="{_num(top)}" width="{_num(x1 - x0)}" '
                f'height="{BOX_H}" rx="5" fill="{_esc(color)}"/>{label}</g>'
            )
        else:
            by_row.setdefault(box.row, []).append(
                f'<g class="pmei-span" {attrs}><rect x="{_num(x0 - 2)}" y="{_num(top)}" '
                f'width="{_num(x1 - x0 + 4)}" height="{BOX_H}" rx="5" fill="none" stroke="#888" '
                f'stroke-dasharray="3 2"/></g>'
            )
    for row, x0, x1, text in layout.runs:
        by_row.setdefault(row, []).append(
            f'<text class="pmei-text" x="{_num(text_left + x0)}" y="{_num(box_tops[row] + baseline)}" '
            f'font-size="{FONT_SIZE}" fill="#111" textLength="{_num(max(x1 - x0, 0.1))}" '
            f'lengthAdjust="spacingAndGlyphs" xml:space="preserve">{_esc(text)}</text>'
        )
    for row in range(layout.n_rows):
        parts.append(f'<g class="pmei-row" data-row="{row}">' + "".join(by_row.get(row, [])) + "</g>")
    # Relations: higher runs first, so that each label is drawn over the lines that cross it.
    segs: Dict[int, List[_Segment]] = {}
    for seg in layout.segments:
        segs.setdefault(seg.rel, []).append(seg)
    order = sorted(range(len(relations)), key=lambda r: (-max(s.level for s in segs[r]), r))
    parts.append('<g class="pmei-rels">')
    for r in order:
        parts.append(_draw_relation(r, relations[r], segs[r], layout, box_tops, text_left, rel_colors))
    parts.append("</g></svg></figure>")
    return "".join(parts)


def _draw_relation(
    r: int,
    rel: Any,
    segs: List[_Segment],
    layout: _Layout,
    box_tops: List[float],
    text_left: float,
    rel_colors: Dict[str, str],
) -> str:
    """The <g class="pmei-rel"> of one relation: title, line, arrowhead and label."""
    head = layout.box_at[(rel.head.start, rel.head.end)]
    tail = layout.box_at[(rel.tail.start, rel.tail.end)]
    hx = text_left + head.xs[(r, "head")]
    tx = text_left + tail.xs[(r, "tail")]
    h_top, t_top = box_tops[head.row], box_tops[tail.row]
    color = rel_colors.get(rel.label, REL_PALETTE[0])
    labelled = next(s for s in segs if s.label is not None)
    h_y = h_top - next(s for s in segs if s.role != "tail").level * LEVEL_H
    end_y = t_top - ARROW_LEN + 0.5
    if r in layout.lanes:
        side, lane = layout.lanes[r]
        if side == "left":
            lane_x = text_left - GUTTER_PAD - lane * LANE_GAP
        else:
            lane_x = text_left + max([layout.text_width] + layout.row_widths) + GUTTER_PAD + lane * LANE_GAP
        t_y = t_top - next(s for s in segs if s.role == "tail").level * LEVEL_H
        points = [(hx, h_top), (hx, h_y), (lane_x, h_y), (lane_x, t_y), (tx, t_y), (tx, end_y)]
        kind = "cross"
    else:
        points = [(hx, h_top), (hx, h_y), (tx, h_y), (tx, end_y)]
        kind = "row"
    path = _rounded(points)
    arrow = (
        f"M{_num(tx)},{_num(t_top - 0.5)}L{_num(tx - ARROW_HALF)},{_num(t_top - ARROW_LEN)}"
        f"L{_num(tx + ARROW_HALF)},{_num(t_top - ARROW_LEN)}Z"
    )
    centre, label_w = labelled.label  # type: ignore[misc]
    lx = text_left + centre - label_w / 2
    label_y = box_tops[labelled.row] - labelled.level * LEVEL_H
    score = float(rel.score)
    title = f"{rel.label} ({score:.2f})\n{rel.head.text} \u2192 {rel.tail.text}"
    return (
        f'<g class="pmei-rel pmei-rel-{kind}" data-rel="{r}" data-head="{_esc(rel.head.text)}" '
        f'data-head-start="{rel.head.start}" data-label="{_esc(rel.label)}" '
        f'data-tail="{_esc(rel.tail.text)}" '
        f'data-tail-start="{rel.tail.start}" data-score="{score:.4f}" data-level="{labelled.level}">'
        f"<title>{_esc(title)}</title>"
        f'<path class="pmei-rel-hit" d="{path}" fill="none" stroke="transparent" stroke-width="10"/>'
        f'<path class="pmei-rel-path" d="{path}" fill="none" stroke="{_esc(color)}" stroke-width="2"/>'
        f'<path class="pmei-arrowhead" d="{arrow}" fill="{_esc(color)}"/>'
        f'<g class="pmei-rel-label"><rect x="{_num(lx)}" y="{_num(label_y - LABEL_H / 2)}" '
        f'width="{_num(label_w)}" height="{LABEL_H}" rx="3" fill="#fff" fill-opacity="0.92"/>'
        f'<text x="{_num(lx + LABEL_PAD)}" y="{_num(label_y + REL_LABEL_SIZE * 0.35)}" '
        f'font-size="{REL_LABEL_SIZE}" '
        f'fill="{_esc(color)}" textLength="{_num(label_w - 2 * LABEL_PAD)}" lengthAdjust="spacingAndGlyphs">'
        f"{_esc(rel.label)}</text></g></g>"
    )
