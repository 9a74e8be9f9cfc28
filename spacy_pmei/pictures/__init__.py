"""Relation pictures: entities highlighted in the text, an arrow from head to tail per relation.

``render(docs)`` returns HTML with one inline SVG per Doc; nothing is fetched (no
scripts, fonts or URLs: the text uses the system's sans-serif fonts). The layout
is computed here (layout.py; svg.py writes the markup), so the picture is the same
in a browser, a notebook or a file:

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
from .layout import text_width
from .svg import render

__all__ = ["render", "text_width"]
