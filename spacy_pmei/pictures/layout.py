"""How a relation picture is laid out: rows, boxes, arc levels and margin lanes, in pixels.

Only geometry: the markup is written by pictures/svg.py from the Layout made here.
"""
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from spacy.tokens import Doc

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

# Helvetica/Arial advance widths (1/1000 em) for ASCII 32..126.
_WIDTHS = (
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
)  # fmt: skip


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


@dataclass
class Box:
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
class Segment:
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
class Layout:
    """Where everything goes: token positions, rows, boxes, relation routes."""

    text_width: float
    tokens: Dict[int, Tuple[int, float, float]] = field(default_factory=dict)  # i -> (row, x0, x1)
    n_rows: int = 0
    row_widths: List[float] = field(default_factory=list)
    runs: List[Tuple[int, float, float, str]] = field(default_factory=list)  # row, x0, x1, text
    boxes: List[Box] = field(default_factory=list)
    box_at: Dict[Tuple[int, int], Box] = field(default_factory=dict)  # (start, end) -> box
    segments: List[Segment] = field(default_factory=list)
    lanes: Dict[int, Tuple[str, int]] = field(default_factory=dict)  # rel -> (side, lane index)
    n_lanes: Dict[str, int] = field(default_factory=lambda: {"left": 0, "right": 0})


def layout_doc(doc: Doc, relations: Sequence[Any], width: float) -> Tuple[Layout, float, float]:
    """Lay out one Doc in a picture of a given width, reserving the margin lanes it needs.

    doc (Doc): The document.
    relations (Sequence[Any]): Its relations (head and tail Spans, label).
    width (float): The width of the whole picture in pixels.
    RETURNS (Tuple[Layout, float, float]): The layout and the widths of the left and right gutters.
    """
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
    return layout, left, right


def _gutter(n_lanes: int) -> float:
    return GUTTER_PAD + n_lanes * LANE_GAP if n_lanes else 0.0


def _layout(doc: Doc, relations: Sequence[Any], row_width: float) -> Layout:
    """Wrap the tokens into rows, place the boxes, stack the relations' runs into levels."""
    layout = Layout(text_width=row_width)
    boxes: Dict[Tuple[int, int], Box] = {}
    for ent in doc.ents:
        boxes[(ent.start, ent.end)] = Box(ent.start, ent.end, ent.label_, True)
    for rel in relations:
        for span in (rel.head, rel.tail):
            if (span.start, span.end) not in boxes:
                boxes[(span.start, span.end)] = Box(span.start, span.end, span.label_, False)
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


def _route(layout: Layout, boxes: Dict[Tuple[int, int], Box], relations: Sequence[Any]) -> None:
    """Spread the relations' ends over the boxes, choose lanes, stack the runs into levels."""
    width = layout.text_width
    ends: List[Tuple[Box, Box]] = []
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
    segments: List[Segment] = []
    for r, (head, tail) in enumerate(ends):
        hx, tx = head.xs[(r, "head")], tail.xs[(r, "tail")]
        label_w = text_width(relations[r].label, REL_LABEL_SIZE) + 2 * LABEL_PAD
        if r not in side:
            lo, hi = min(hx, tx), max(hx, tx)
            centre = min(max((lo + hi) / 2, label_w / 2), width - label_w / 2)
            segments.append(Segment(r, head.row, lo, hi, label=(centre, label_w)))
            continue
        # Across rows: a run to the margin in each row; the label goes on the longer one.
        edge = 0.0 if side[r] == "left" else max([width] + layout.row_widths)
        runs = [
            Segment(r, head.row, min(hx, edge), max(hx, edge), "head"),
            Segment(r, tail.row, min(tx, edge), max(tx, edge), "tail"),
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
