"""Relation pictures: the markup on hand-built docs, the pixels in a headless browser, `render`."""
import json
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy
import pytest
import spacy
from spacy.tokens import Doc, Span
from typer.testing import CliRunner

import spacy_pmei
from spacy_pmei import Relation
from spacy_pmei.cli import app

SVG = "{http://www.w3.org/2000/svg}"
NLP = spacy.blank("en")
runner = CliRunner()

# One entity (Berlin) is the tail of two relations from one head and the head and tail of two
# more; Merkel heads three relations; "visits" and "located_in" cross rows when wrapped.
WORDS = (
    "Angela Merkel lives in Berlin , the capital of Germany , and often visits Paris , "
    "which is in France ."
).split()
ENTS = [(0, 2, "PER"), (4, 5, "LOC"), (9, 10, "LOC"), (14, 15, "LOC"), (19, 20, "LOC")]
RELS = [
    (0, "lives_in", 1, 0.93),
    (0, "born_in", 1, 0.714),
    (1, "capital_of", 2, 0.88),
    (2, "contains", 1, 0.6),
    (0, "visits", 3, 0.51),
    (3, "located_in", 4, 0.99),
]


def make_doc(words: Sequence[str], ents, rels, spaces=None) -> Doc:
    """A Doc from words with doc.ents and doc._.relations set (relations index the entities)."""
    doc = Doc(NLP.vocab, words=list(words), spaces=spaces)
    doc.ents = [Span(doc, s, e, label=label) for s, e, label in ents]
    spans = list(doc.ents)
    doc._.relations = [Relation(spans[h], label, spans[t], score) for h, label, t, score in rels]
    return doc


def parse(markup: str) -> ET.Element:
    """The markup (without page=True) is well-formed XML."""
    return ET.fromstring(markup)


def with_class(root: ET.Element, name: str, tag: str = "g") -> List[ET.Element]:
    return [el for el in root.iter(SVG + tag) if name in el.get("class", "").split()]


def numbers(d: str) -> List[Tuple[float, float]]:
    values = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", d)]
    return list(zip(values[::2], values[1::2]))


def rect_of(el: ET.Element) -> Tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a <rect>."""
    x, y = float(el.get("x")), float(el.get("y"))
    return x, y, x + float(el.get("width")), y + float(el.get("height"))


def overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_every_relation_is_drawn_with_label_arrow_and_score():
    doc = make_doc(WORDS, ENTS, RELS)
    markup = spacy_pmei.render(doc, jupyter=False)
    root = parse(markup)
    groups = with_class(root, "pmei-rel")
    assert len(groups) == len(RELS)
    seen = set()
    for g in groups:
        key = (g.get("data-head"), g.get("data-label"), g.get("data-tail"))
        seen.add(key)
        assert g.find(SVG + "title").text.startswith(f"{key[1]} (")
        assert [el for el in g.iter(SVG + "path") if el.get("class") == "pmei-arrowhead"]
        label = with_class(g, "pmei-rel-label")[0]
        assert label.find(SVG + "text").text == key[1]
    spans = [" ".join(WORDS[s:e]) for s, e, _ in ENTS]
    assert seen == {(spans[h], label, spans[t]) for h, label, t, _ in RELS}
    titles = [g.find(SVG + "title").text for g in groups]
    assert any(t.startswith("lives_in (0.93)\nAngela Merkel \u2192 Berlin") for t in titles)
    assert any(t.startswith("born_in (0.71)") for t in titles)
    assert [e.get("data-label") for e in with_class(root, "pmei-ent")] == [label for _, _, label in ENTS]


def test_overlapping_relations_stay_legible():
    """Distinct ends on each box, arrowheads on the tail, labels and same-level runs apart."""
    doc = make_doc(WORDS, ENTS, RELS)
    root = parse(spacy_pmei.render(doc, jupyter=False, options={"width": 2000}))
    assert not with_class(root, "pmei-rel-cross")
    boxes = {int(g.get("data-start")): rect_of(g.find(SVG + "rect")) for g in with_class(root, "pmei-ent")}
    ends = []
    labels = []
    runs = []
    for g in with_class(root, "pmei-rel"):
        path = numbers(next(p for p in g.iter(SVG + "path") if p.get("class") == "pmei-rel-path").get("d"))
        tip = numbers(next(p for p in g.iter(SVG + "path") if p.get("class") == "pmei-arrowhead").get("d"))[0]
        head, tail = boxes[int(g.get("data-head-start"))], boxes[int(g.get("data-tail-start"))]
        assert head[0] < path[0][0] < head[2] and path[0][1] == head[1]  # starts on the head's top
        assert tail[0] < tip[0] < tail[2] and abs(tip[1] - tail[1]) <= 1  # points at the tail's top
        assert abs(path[-1][0] - tip[0]) < 0.01
        ends += [path[0][0], tip[0]]
        labels.append(rect_of(with_class(g, "pmei-rel-label")[0].find(SVG + "rect")))
        level_y = min(y for _, y in path)
        runs.append((min(x for x, _ in path), level_y, max(x for x, _ in path), level_y + 0.5))
    assert len(set(ends)) == len(ends), "two arcs end at the same point"
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            assert not overlap(a, b), "relation labels overlap"
    for i, a in enumerate(runs):
        for b in runs[i + 1 :]:
            assert not overlap(a, b), "two arcs share a level where they overlap"
    levels = {g.get("data-label"): int(g.get("data-level")) for g in with_class(root, "pmei-rel")}
    assert levels["lives_in"] > levels["born_in"]  # the arc with the outer ends goes above


def test_long_sentence_wraps_and_draws_relations_across_rows():
    words = [f"word{i}" for i in range(80)]
    ents = [(0, 2, "PER"), (5, 6, "ORG"), (40, 41, "LOC"), (78, 80, "LOC")]
    rels = [
        (0, "works_for", 1, 0.9),
        (0, "lives_in", 3, 0.8),
        (2, "contains", 1, 0.7),
        (1, "based_in", 1, 0.6),
    ]
    doc = make_doc(words, ents, rels)
    markup = spacy_pmei.render(doc, jupyter=False, options={"width": 600})
    root = parse(markup)
    figure = next(root.iter("figure"))
    n_rows = int(figure.get("data-rows"))
    assert n_rows >= 5
    svg = figure.find(SVG + "svg")
    assert float(svg.get("width")) <= 600
    rows = with_class(root, "pmei-row")
    assert len(rows) == n_rows
    texts = " ".join(
        t.text for t in root.iter(SVG + "text") if t.get("class") in ("pmei-text", None) and t.text
    )
    assert all(f"word{i}" in texts.split() for i in range(80))
    runs = [t for t in root.iter(SVG + "text") if t.get("class") == "pmei-text"]
    text_left = min(float(t.get("x")) for t in runs)
    text_right = max(float(t.get("x")) + float(t.get("textLength")) for t in runs)
    text_right = max([text_right] + [rect_of(g.find(SVG + "rect"))[2] for g in with_class(root, "pmei-ent")])
    cross = with_class(root, "pmei-rel-cross")
    assert {g.get("data-label") for g in cross} == {"lives_in", "contains"}
    for g in cross:
        path = numbers(next(p for p in g.iter(SVG + "path") if p.get("class") == "pmei-rel-path").get("d"))
        lane = [x for x, _ in path if x < text_left - 1 or x > text_right + 1]
        assert lane, "a relation across rows is routed through a margin lane"
        assert max(y for _, y in path) - min(y for _, y in path) > 60  # from one row to another
    assert len(with_class(root, "pmei-rel")) == len(rels)


def test_text_and_labels_are_escaped():
    words = ["<script>alert(1)</script>", "&", "Tom", '"O\'Neil"', "x\x01y"]
    doc = make_doc(
        words, [(2, 3, "<b>PER</b>"), (3, 4, "a&b")], [(0, "<img src=x onerror=alert(1)>", 1, 1.0)]
    )
    markup = spacy_pmei.render(doc, jupyter=False, options={"colors": {"<b>PER</b>": "#abcdef"}})
    assert "<script" not in markup and "<img" not in markup and "<b>" not in markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markup and "&amp;" in markup
    root = parse(markup)  # still well-formed: nothing broke out of an attribute
    g = with_class(root, "pmei-rel")[0]
    assert g.get("data-label") == "<img src=x onerror=alert(1)>" and g.get("data-tail") == '"O\'Neil"'
    assert "#abcdef" in markup and "\x01" not in markup


def test_empty_and_plain_docs():
    docs = [NLP(""), NLP("No entities here ."), NLP("  \n\n "), make_doc(["A", "B"], [(0, 1, "X")], [])]
    root = parse(spacy_pmei.render(docs, jupyter=False))
    figures = list(root.iter("figure"))
    assert len(figures) == 4 and not with_class(root, "pmei-rel")
    assert figures[0].get("data-rows") == "0"
    assert "No entities here ." in [t.text for t in root.iter(SVG + "text")]
    assert parse(spacy_pmei.render([], jupyter=False)).find(".//figure") is None


def test_page_is_standalone_and_fetches_nothing():
    page = spacy_pmei.render([make_doc(WORDS, ENTS, RELS)], page=True, jupyter=False)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert '<meta charset="utf-8">' in page and "<title>" in page
    assert re.findall(r"https?://[^\s\"]*", page) == ["http://www.w3.org/2000/svg"]  # the SVG namespace only
    for fetch in ("<script", "src=", "href=", "url(", "@import", "@font-face", "<link"):
        assert fetch not in page


def test_newline_starts_a_row_and_words_keep_their_order():
    doc = NLP("Bobby Fischer was born in Chicago .\n\nHe died in Reykjavik .")
    root = parse(spacy_pmei.render(doc, jupyter=False))
    assert next(root.iter("figure")).get("data-rows") == "2"
    assert [t.text for t in root.iter(SVG + "text")] == [
        "Bobby Fischer was born in Chicago .",
        "He died in Reykjavik .",
    ]


def test_options_and_inputs_are_checked():
    doc = make_doc(WORDS, ENTS, RELS)
    with pytest.raises(ValueError, match=r"\[E300\]"):
        spacy_pmei.render(doc, jupyter=False, options={"colour": {}})
    with pytest.raises(ValueError, match=r"\[E301\]"):
        spacy_pmei.render(doc, jupyter=False, options={"rel_colors": {"visits": "url(http://x/y.svg)"}})
    with pytest.raises(ValueError, match=r"\[E301\]"):
        spacy_pmei.render(doc, jupyter=False, options={"width": 10})
    with pytest.raises(ValueError, match=r"\[E302\]"):
        spacy_pmei.render(["a text"], jupyter=False)
    markup = spacy_pmei.render(
        doc, jupyter=False, options={"colors": {"PER": "#123456"}, "rel_colors": {"visits": "rgb(1, 2, 3)"}}
    )
    assert 'fill="#123456"' in markup and 'stroke="rgb(1, 2, 3)"' in markup


def test_jupyter_displays_through_ipython(monkeypatch):
    import sys
    import types

    shown = []
    display_module = types.ModuleType("IPython.display")
    display_module.HTML = lambda data: ("HTML", data)
    display_module.display = lambda obj: shown.append(obj)
    monkeypatch.setitem(sys.modules, "IPython", types.ModuleType("IPython"))
    monkeypatch.setitem(sys.modules, "IPython.display", display_module)
    doc = make_doc(WORDS, ENTS, RELS)
    assert spacy_pmei.render(doc, jupyter=True) is None
    assert shown[0][0] == "HTML" and 'class="pmei-rel' in shown[0][1]
    monkeypatch.setattr(spacy.util, "is_in_jupyter", lambda: True)
    assert spacy_pmei.render(doc) is None and len(shown) == 2
    monkeypatch.setattr(spacy.util, "is_in_jupyter", lambda: False)
    assert spacy_pmei.render(doc).startswith('<div class="pmei-render">')


def test_import_spacy_pmei_does_not_load_the_picture_code():
    import sys

    code = (
        "import sys, spacy_pmei; assert 'spacy_pmei.pictures' not in sys.modules; "
        "spacy_pmei.render; assert 'spacy_pmei.pictures' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(AttributeError):
        spacy_pmei.no_such_name


# --- in a real browser -------------------------------------------------------------------------

REL_COLORS = {"lives_in": "#ff0000", "born_in": "#00a000", "capital_of": "#0000ff", "contains": "#ff00ff",
              "visits": "#ff8000", "located_in": "#008080"}  # fmt: skip
CALIBRATION = "#00ffff"  # the PER box: where the picture is on the screenshot


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(
        "no chromium or chromium-browser on PATH: the browser test needs a headless Chromium "
        "(Debian: apt-get install chromium)"
    )


def read_png(path: Path) -> numpy.ndarray:
    """A PNG's pixels as a (height, width, 3) uint8 array: 8-bit RGB or RGBA, not interlaced."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, color_type, _, _, interlace = header
    assert depth == 8 and color_type in (2, 6) and interlace == 0, header
    bpp = 3 if color_type == 2 else 4
    raw = numpy.frombuffer(zlib.decompress(b"".join(chunks)), dtype=numpy.uint8).reshape(
        height, 1 + width * bpp
    )
    out = numpy.zeros((height, width * bpp), dtype=numpy.int64)
    prev = numpy.zeros(width * bpp, dtype=numpy.int64)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(numpy.int64)
        if kind == 0:
            cur = line
        elif kind == 1:
            cur = numpy.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) % 256
        elif kind == 2:
            cur = (line + prev) % 256
        else:
            up, row = prev.tolist(), line.tolist()
            for x in range(len(row)):
                a = row[x - bpp] if x >= bpp else 0
                b = up[x]
                c = up[x - bpp] if x >= bpp else 0
                if kind == 3:
                    row[x] = (row[x] + (a + b) // 2) % 256
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    row[x] = (row[x] + pred) % 256
            cur = numpy.array(row, dtype=numpy.int64)
        out[y] = cur
        prev = cur
    return out.reshape(height, width, bpp)[:, :, :3].astype(numpy.uint8)


def color_mask(pixels: numpy.ndarray, color: str, tolerance: int = 40) -> numpy.ndarray:
    rgb = numpy.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
    return numpy.abs(pixels.astype(int) - rgb).max(axis=2) <= tolerance


def screenshot(chromium: str, html: str, size: Tuple[int, int], tmp_path: Path) -> numpy.ndarray:
    page, png = tmp_path / "page.html", tmp_path / "shot.png"
    page.write_text(html, encoding="utf-8")
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--hide-scrollbars", "--force-device-scale-factor=1",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
        f"--window-size={size[0]},{size[1]}",
        page.as_uri(),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert png.exists(), f"chromium wrote no screenshot (exit {result.returncode}): {result.stderr[-2000:]}"
    return read_png(png)


def test_browser_draws_every_arrow_and_label(tmp_path):
    chromium = find_chromium()
    doc = make_doc(WORDS, ENTS, RELS)
    options = {"width": 520, "rel_colors": REL_COLORS, "colors": {"PER": CALIBRATION, "LOC": "#dddddd"}}
    page = spacy_pmei.render(doc, page=True, jupyter=False, options=options)
    root = parse(spacy_pmei.render(doc, jupyter=False, options=options))
    assert with_class(root, "pmei-rel-cross"), "the test doc should wrap with a relation across rows"
    svg = next(root.iter(SVG + "svg"))
    size = (int(float(svg.get("width"))) + 80, int(float(svg.get("height"))) + 80)
    pixels = screenshot(chromium, page, size, tmp_path)
    # Where the SVG's origin is on the screenshot, from the PER box.
    per = next(g for g in with_class(root, "pmei-ent") if g.get("data-label") == "PER").find(SVG + "rect")
    ys, xs = numpy.nonzero(color_mask(pixels, CALIBRATION, tolerance=8))
    assert len(xs) > 100, "the PER box is not on the screenshot"
    x0, y0, x1, y1 = rect_of(per)
    assert abs((xs.max() - xs.min()) - (x1 - x0)) <= 3 and abs((ys.max() - ys.min()) - (y1 - y0)) <= 3
    dx, dy = xs.min() - x0, ys.min() - y0
    label_boxes = [
        rect_of(with_class(g, "pmei-rel-label")[0].find(SVG + "rect")) for g in with_class(root, "pmei-rel")
    ]

    def found(mask: numpy.ndarray, x: float, y: float, reach: int = 2) -> bool:
        px, py = int(round(x + dx)), int(round(y + dy))
        return bool(mask[max(py - reach, 0) : py + reach + 1, max(px - reach, 0) : px + reach + 1].any())

    for g in with_class(root, "pmei-rel"):
        label = g.get("data-label")
        mask = color_mask(pixels, REL_COLORS[label])
        # the arrowhead: a filled triangle above the tail
        tip, left, right = numbers(
            next(p for p in g.iter(SVG + "path") if p.get("class") == "pmei-arrowhead").get("d")
        )
        cx, cy = (tip[0] + left[0] + right[0]) / 3, (tip[1] + left[1] + right[1]) / 3
        assert found(mask, cx, cy, reach=1), f"no arrowhead for {label}"
        # the label, written in the relation's colour
        lx0, ly0, lx1, ly1 = rect_of(with_class(g, "pmei-rel-label")[0].find(SVG + "rect"))
        written = mask[int(ly0 + dy) : int(ly1 + dy) + 1, int(lx0 + dx) : int(lx1 + dx) + 1].sum()
        assert written >= 8, f"the label {label!r} is not drawn ({written} pixels of its colour)"
        # the line, sampled every 4 px (except under a label, which is drawn over lines)
        points = numbers(next(p for p in g.iter(SVG + "path") if p.get("class") == "pmei-rel-path").get("d"))
        samples = []
        for (ax, ay), (bx, by) in zip(points, points[1:]):
            steps = max(int(max(abs(bx - ax), abs(by - ay)) // 4), 1)
            for k in range(steps + 1):
                x, y = ax + (bx - ax) * k / steps, ay + (by - ay) * k / steps
                if not any(b[0] - 2 <= x <= b[2] + 2 and b[1] - 2 <= y <= b[3] + 2 for b in label_boxes):
                    samples.append(found(mask, x, y))
        assert len(samples) >= 5 and sum(samples) >= 0.9 * len(
            samples
        ), f"the arrow of {label!r} is not drawn"


# --- the render command ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(trained_nlp, tmp_path_factory):
    path = tmp_path_factory.mktemp("model")
    trained_nlp.to_disk(path)
    return path


def _flat(result) -> str:
    return " ".join(result.output.split())


def test_render_command_writes_a_page(model_dir, tmp_path, trained_nlp):
    from conftest import TRAIN_DATA

    texts = [t for t, _, _ in TRAIN_DATA[:3]]
    out = tmp_path / "page.html"
    args = ["render", str(model_dir), "--output", str(out), "--width", "600"]
    result = runner.invoke(app, args + [arg for text in texts for arg in ("--text", text)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    expected = [
        (r.head.text, r.label, r.tail.text) for doc in trained_nlp.pipe(texts) for r in doc._.relations
    ]
    assert expected, "the trained pipeline should find relations"
    drawn = re.findall(r'class="pmei-rel pmei-rel-\w+"[^>]*data-head="([^"]*)"[^>]*data-label="([^"]*)"'
                       r'[^>]*data-tail="([^"]*)"', page)  # fmt: skip
    assert sorted(drawn) == sorted(expected)
    assert page.count('<figure class="pmei-doc"') == 3


def test_render_command_reads_jsonl_to_stdout(model_dir, tmp_path):
    from conftest import TRAIN_DATA

    lines = [
        json.dumps({"id": 1, "text": TRAIN_DATA[0][0]}),
        "{broken",
        json.dumps({"text": TRAIN_DATA[1][0]}),
    ]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["render", str(model_dir), "--input", str(tmp_path / "in.jsonl")])
    assert result.exit_code == 0, result.output
    assert (
        result.stdout.startswith("<!DOCTYPE html>") and result.stdout.count('<figure class="pmei-doc"') == 2
    )
    assert "in.jsonl:2: skipped" in result.stderr
    (tmp_path / "in.txt").write_text("\n".join(t for t, _, _ in TRAIN_DATA) + "\n\n")
    result = runner.invoke(app, ["render", str(model_dir), "-i", str(tmp_path / "in.txt"), "--limit", "2"])
    assert result.exit_code == 0 and result.stdout.count('<figure class="pmei-doc"') == 2


def test_render_command_errors(model_dir, tmp_path):
    result = runner.invoke(app, ["render", str(model_dir)])
    assert result.exit_code == 1 and "[E303]" in _flat(result)
    (tmp_path / "in.txt").write_text("A text .\n")
    result = runner.invoke(
        app, ["render", str(model_dir), "--text", "x", "--input", str(tmp_path / "in.txt")]
    )
    assert result.exit_code == 1 and "[E303]" in _flat(result)
    result = runner.invoke(app, ["render", str(model_dir), "--input", str(tmp_path / "missing.txt")])
    assert result.exit_code == 1 and "[E304]" in _flat(result)
    (tmp_path / "blank.txt").write_text("\n \n")
    result = runner.invoke(app, ["render", str(model_dir), "--input", str(tmp_path / "blank.txt")])
    assert result.exit_code == 1 and "[E305]" in _flat(result)
    out = tmp_path / "page.html"
    result = runner.invoke(app, ["render", str(tmp_path / "no-model"), "--text", "x", "-o", str(out)])
    assert result.exit_code == 1 and "[E015]" in _flat(result) and not out.exists()
