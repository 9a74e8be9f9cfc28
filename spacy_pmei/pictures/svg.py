"""Relation pictures as HTML with inline SVG: render(), its options, the markup of a laid-out Doc."""
import html
import re
import zlib
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc

from ..errors import Errors
from ..relations import EXTENSION
from .layout import (
    ARROW_HALF,
    ARROW_LEN,
    ARC_TOP,
    BOX_H,
    BOX_PAD,
    ENT_LABEL_SIZE,
    FONT_SIZE,
    GUTTER_PAD,
    LABEL_H,
    LABEL_PAD,
    LANE_GAP,
    LEVEL_H,
    PAD,
    RADIUS,
    REL_LABEL_SIZE,
    ROW_GAP,
    Layout,
    Segment,
    layout_doc,
    text_width_label,
)

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

OPTIONS = ("width", "colors", "rel_colors")
_COLOR = re.compile(r"^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,30}|(rgb|rgba|hsl|hsla)\(\s*[0-9.,%\s/-]+\))$")
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

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


def _esc(text: str) -> str:
    """Text for element content or a quoted attribute; characters XML forbids become U+FFFD."""
    return html.escape(_XML_BAD.sub("\ufffd", str(text)), quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _render_doc(
    doc: Doc, index: int, width: float, colors: Dict[str, str], rel_colors: Dict[str, str]
) -> str:
    """One <figure> with the SVG of one Doc."""
    relations = list(getattr(doc._, EXTENSION))
    layout, left, right = layout_doc(doc, relations, width)
    return _draw(doc, index, relations, layout, left, right, colors, rel_colors)


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
    layout: Layout,
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
    segs: Dict[int, List[Segment]] = {}
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
    segs: List[Segment],
    layout: Layout,
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
