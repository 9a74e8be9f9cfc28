"""BIOES decoding, segments, blocks and triple linking."""
from spacy_pmei.decoding import (
    length_runs,
    link_triples,
    make_blocks,
    make_tag_names,
    spans_from_tags,
    tags_from_biluo,
)

NAMES = make_tag_names(["LOC", "PER"])
IDX = {name: i for i, name in enumerate(NAMES)}


def ids(*tags):
    return [IDX[t] for t in tags]


def test_valid_sequences():
    assert spans_from_tags(ids("B-PER", "E-PER", "O", "S-LOC"), NAMES) == [(0, 2, "PER"), (3, 4, "LOC")]
    assert spans_from_tags(ids("B-LOC", "I-LOC", "I-LOC", "E-LOC"), NAMES) == [(0, 4, "LOC")]
    assert spans_from_tags(ids("O", "O"), NAMES) == []
    assert spans_from_tags([], NAMES) == []


def test_repairs_keep_every_tagged_word():
    # B without E: closed before the O
    assert spans_from_tags(ids("B-PER", "I-PER", "O"), NAMES) == [(0, 2, "PER")]
    # I/E without B: start a span
    assert spans_from_tags(ids("O", "I-LOC", "E-LOC"), NAMES) == [(1, 3, "LOC")]
    assert spans_from_tags(ids("E-LOC"), NAMES) == [(0, 1, "LOC")]
    # label change inside a span splits it
    assert spans_from_tags(ids("B-PER", "E-LOC"), NAMES) == [(0, 1, "PER"), (1, 2, "LOC")]
    # B right after an open B starts a new span; a trailing open span is closed
    assert spans_from_tags(ids("B-PER", "B-PER", "I-PER"), NAMES) == [(0, 1, "PER"), (1, 3, "PER")]


def test_biluo_conversion():
    tags = tags_from_biluo(["B-PER", "L-PER", "O", "U-LOC", None, "-"], IDX)
    assert tags.tolist() == [IDX["B-PER"], IDX["E-PER"], 0, IDX["S-LOC"], -1, -1]


def test_blocks_respect_budget_and_cover_all():
    segments = [(0, 0, 10), (1, 0, 100), (2, 0, 50), (3, 0, 3), (3, 3, 40)]
    blocks = make_blocks(segments, max_cells=100 * 100 + 1)
    assert sorted(k for b in blocks for k in b) == list(range(len(segments)))
    for block in blocks:
        n = max(segments[k][2] - segments[k][1] for k in block)
        assert len(block) == 1 or len(block) * n * n <= 100 * 100 + 1
    assert blocks[0] == [1]  # longest first


def test_link_triples_with_and_without_fallback():
    ents = [(0, 2, "PER"), (5, 6, "LOC")]
    cells = [(1, 5, 0, 0.9), (3, 5, 1, 0.8)]
    triples, made = link_triples(ents, cells, ["born_in", "lives_in"], None)
    assert triples == [((0, 2, "PER"), "born_in", (5, 6, "LOC"), 0.9)]
    assert made == []
    triples, made = link_triples(ents, cells, ["born_in", "lives_in"], ["PER"] * 7)
    assert triples[1] == ((3, 4, "PER"), "lives_in", (5, 6, "LOC"), 0.8)
    assert made == [(3, 4, "PER")]


def test_length_runs_cover_each_segment_once():
    assert length_runs([5, 5, 3, 3, 3, 1]) == [(0, 2, 5), (2, 5, 3), (5, 6, 1)]
    assert length_runs([2, 4, 2]) == [(0, 1, 2), (1, 2, 4), (2, 3, 2)]
    assert length_runs([]) == []
