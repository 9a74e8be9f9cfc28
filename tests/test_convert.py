"""Tests for spacy_pmei.readers and the `convert` / `export` commands."""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

import spacy_pmei  # noqa: F401  (installs doc._.relations)
from spacy_pmei.cli import app
from spacy_pmei.readers import (
    ConversionError,
    add_jointer_tags,
    convert_file,
    create_casrel_reader,
    docs_to_casrel,
    load_rel2id,
    read_casrel,
    read_jointer,
    read_jsonl,
    read_prodigy,
    whitespace_doc,
)

DATA = Path(__file__).parents[1].parent / "shared" / "data"
REL2ID = [
    {"0": "born_in", "1": "contains", "2": "works_for"},
    {"born_in": 0, "contains": 1, "works_for": 2},
]


@pytest.fixture
def nlp():
    return spacy.blank("en")


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def write_jsonl(path: Path, records) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    return path


def triples(doc):
    return [(r.head.text, r.label, r.tail.text) for r in doc._.relations]


def spans(doc):
    return [(r.head.start, r.head.end, r.label, r.tail.start, r.tail.end) for r in doc._.relations]


def casrel(tmp_path, records, star=False, **kwargs):
    path = write_json(tmp_path / "data.json", records)
    return read_casrel(path, spacy.blank("en").vocab, star=star, **kwargs)


def placed_round_trip(records, docs, report):
    """Whether every placed triple comes back, per sentence, as a multiset."""
    left_out = {}
    for problem in report.problems:
        left_out.setdefault(problem.index, Counter())[tuple(problem.triple)] += 1
    for index, (record, back) in enumerate(zip(records, docs_to_casrel(docs))):
        expected = Counter(map(tuple, record["triple_list"])) - left_out.get(index, Counter())
        if back["text"] != record["text"] or Counter(map(tuple, back["triple_list"])) != expected:
            return False
    return True


# CasRel, full mentions


def test_casrel_multi_and_one_word(tmp_path):
    records = [
        {
            "text": "Barack Obama was born in Honolulu , Hawaii .",
            "triple_list": [
                ["Barack Obama", "born_in", "Honolulu"],
                ["Hawaii", "contains", "Honolulu"],
            ],
        },
        {"text": "Nothing here .", "triple_list": []},
    ]
    docs, report = casrel(tmp_path, records, rel2id=REL2ID[1])
    doc = docs[0]
    assert doc.text == records[0]["text"]
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("Barack Obama", "ENTITY"),
        ("Honolulu", "ENTITY"),
        ("Hawaii", "ENTITY"),
    ]
    assert triples(doc) == [tuple(t) for t in records[0]["triple_list"]]
    assert (report.sentences, report.triples, report.placed, report.reported) == (2, 2, 2, 0)
    assert docs[1]._.relations == [] and len(docs[1].ents) == 0
    assert placed_round_trip(records, docs, report)


def test_casrel_repeated_string_takes_closest_pair(tmp_path):
    text = "Paris hosted it ; later Lyon , France , and Paris , France , agreed ."
    records = [
        {
            "text": text,
            "triple_list": [["France", "contains", "Paris"], ["France", "contains", "Lyon"]],
        }
    ]
    docs, report = casrel(tmp_path, records)
    doc = docs[0]
    (h1, _, t1, _), (h2, _, t2, _) = doc._.relations
    assert (h1.start, t1.start) == (12, 10)  # the second France and the Paris right before it
    assert (h2.start, t2.start) == (7, 5)  # the first France, next to Lyon
    assert report.reported == 0 and placed_round_trip(records, docs, report)


def test_casrel_self_relation_prefers_two_occurrences(tmp_path):
    records = [
        {
            "text": "Addiction journal , called ' Addiction ' , is about addiction .",
            "triple_list": [["Addiction", "contains", "Addiction"]],
        }
    ]
    docs, _ = casrel(tmp_path, records)
    assert spans(docs[0]) == [(0, 1, "contains", 5, 6)]


def test_casrel_mention_inside_token_is_split(tmp_path):
    records = [
        {
            "text": "The New Yorker wrote about Jersey-based bands .",
            "triple_list": [["New York", "contains", "Jersey"]],
        }
    ]
    docs, report = casrel(tmp_path, records)
    doc = docs[0]
    assert doc.text == records[0]["text"]
    assert [t.text for t in doc] == [
        "The",
        "New",
        "York",
        "er",
        "wrote",
        "about",
        "Jersey",
        "-based",
        "bands",
        ".",
    ]
    assert triples(doc) == [("New York", "contains", "Jersey")]
    assert report.split_mentions == 2 and report.reported == 0
    assert placed_round_trip(records, docs, report)


def test_casrel_whole_word_preferred_over_substring(tmp_path):
    records = [
        {
            "text": "Iraqi officials in Iraq met .",
            "triple_list": [["Iraq", "contains", "officials"]],
        }
    ]
    docs, report = casrel(tmp_path, records)
    assert spans(docs[0]) == [(3, 4, "contains", 1, 2)] and report.split_mentions == 0


def test_casrel_overlapping_mentions(tmp_path):
    records = [
        {
            "text": "Jens played for 1 . FC Union Berlin .",
            "triple_list": [
                ["1 . FC", "works_for", "Jens"],
                ["Jens", "works_for", "1 . FC Union Berlin"],
            ],
        },
        {
            "text": "New York City is in New York .",
            "triple_list": [["New York", "contains", "New York City"]],
        },
    ]
    docs, report = casrel(tmp_path, records)
    assert triples(docs[0]) == [("1 . FC", "works_for", "Jens")]  # placed first, kept
    assert [(p.index, p.triple, p.code) for p in report.problems] == [
        (0, ("Jens", "works_for", "1 . FC Union Berlin"), "overlap")
    ]
    # "New York" inside "New York City" is taken last, so both fit
    assert spans(docs[1]) == [(5, 7, "contains", 0, 3)]
    assert (report.triples, report.placed, report.reported) == (3, 2, 1)
    assert placed_round_trip(records, docs, report)


def test_casrel_unplaceable_triples_are_reported(tmp_path):
    records = [
        {"text": "x", "triple_list": []},
        {
            "text": "A doctor in Medellin , Colombia , and Bogota , Colombia .",
            "triple_list": [
                ["Colombia", "contains", "Medellín"],
                ["Colombia", "contains", "Cali"],
                ["Colombia", "contains", "Bogota"],
                ["Colombia", "contains", "Bogota"],
                [" Colombia", "contains", "Bogota"],
            ],
        },
    ]
    docs, report = casrel(tmp_path, records)
    codes = [(p.file, p.index, p.line, p.code) for p in report.problems]
    path = str(tmp_path / "data.json")
    assert codes == [
        (path, 1, None, c) for c in ("accent_mismatch", "not_found", "duplicate", "bad_mention")
    ]
    assert triples(docs[1]) == [("Colombia", "contains", "Bogota")]
    assert (report.triples, report.placed, report.reported) == (5, 1, 4)
    assert placed_round_trip(records, docs, report)


def test_casrel_whitespace_kept(tmp_path, nlp):
    text = " In Spain ,  protests in\tMadrid . "
    docs, _ = casrel(tmp_path, [{"text": text, "triple_list": [["Spain", "contains", "Madrid"]]}])
    doc = docs[0]
    assert doc.text == text
    assert [t.text for t in doc] == [
        " ",
        "In",
        "Spain",
        ",",
        " ",
        "protests",
        "in",
        "\t",
        "Madrid",
        ".",
    ]
    assert triples(doc) == [("Spain", "contains", "Madrid")]
    assert [t.text for t in whitespace_doc(nlp.vocab, "ab cd", cuts=[1, 3])] == ["a", "b", "cd"]


def test_casrel_star(tmp_path):
    records = [
        {
            "text": "Rev. Franklin Graham , son of Billy Graham , spoke .",
            "triple_list": [
                ["Graham", "contains", "Graham"],
                ["Billy Graham", "contains", "Graham"],
            ],
        }
    ]
    docs, report = casrel(tmp_path, records, star=True)
    assert spans(docs[0]) == [(2, 3, "contains", 7, 8)]
    assert all(len(e) == 1 for e in docs[0].ents)
    assert [p.code for p in report.problems] == ["not_one_word"]
    assert docs_to_casrel(docs, star=True)[0]["triple_list"] == [["Graham", "contains", "Graham"]]


def test_docs_to_casrel_star_takes_last_word(tmp_path):
    docs, _ = casrel(
        tmp_path,
        [
            {
                "text": "Barack Obama visited New York .",
                "triple_list": [["Barack Obama", "contains", "New York"]],
            }
        ],
    )
    assert docs_to_casrel(docs, star=True)[0]["triple_list"] == [["Obama", "contains", "York"]]


def test_load_rel2id_shapes(tmp_path):
    assert load_rel2id(write_json(tmp_path / "a.json", REL2ID)) == [
        "born_in",
        "contains",
        "works_for",
    ]
    assert load_rel2id(write_json(tmp_path / "b.json", [{"y": 1, "x": 0}])) == ["x", "y"]
    with pytest.raises(ConversionError, match="E109"):
        load_rel2id(write_json(tmp_path / "c.json", [1, 2]))


# Malformed CasRel input is fatal


@pytest.mark.parametrize(
    "content,code,where",
    [
        ('[{"text": "a b", "triple_list": []},\n {"text": "a", ]', "E101", "line 2"),
        ('{"text": "a"}', "E102", "data.json"),
        ('[{"text": "a", "triple_list": []}, {"text": "b"}]', "E103", "record 1"),
        ('[{"text": "a", "triple_list": [["a", "x"]]}]', "E103", "record 0"),
        ('[{"text": "a b", "triple_list": [["a", "unknown", "b"]]}]', "E104", "record 0"),
        ('[{"text": "a b", "triple_list": [["a", " ", "b"]]}]', "E103", "record 0"),
    ],
)
def test_casrel_malformed(tmp_path, content, code, where):
    path = tmp_path / "data.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConversionError, match=code) as err:
        read_casrel(path, spacy.blank("en").vocab, rel2id=REL2ID[1])
    assert where in str(err.value) and str(path) in str(err.value)


# JointER


JOINTER = {
    "tokens": [
        "The",
        "manager",
        "of",
        "1",
        ".",
        "FC",
        "Union",
        "Berlin",
        "is",
        "Jens",
        "Hartel",
        ".",
    ],
    "spo_list": [],
    "spo_details": [
        [3, 8, "None-label", "works_for", 9, 11, "PERSON"],
        [9, 11, "PERSON", "works_for", 3, 6, "None-label"],
        [3, 8, "None-label", "works_for", 9, 11, "PERSON"],
    ],
    "pos_tags": ["DT", "NN", "IN", "CD", ".", "NNP", "NNP", "NNP", "VBZ", "NNP", "NNP", "."],
}


def test_jointer(tmp_path, nlp):
    path = write_json(tmp_path / "dev.json", [JOINTER])
    docs, report = read_jointer(path, nlp.vocab, rel2id=REL2ID[1])
    doc = docs[0]
    assert doc.text == " ".join(JOINTER["tokens"])
    assert [t.tag_ for t in doc] == JOINTER["pos_tags"]
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("1 . FC Union Berlin", "ENTITY"),
        ("Jens Hartel", "PERSON"),
    ]
    assert triples(doc) == [("1 . FC Union Berlin", "works_for", "Jens Hartel")]
    assert [p.code for p in report.problems] == ["overlap", "duplicate"]
    assert (report.triples, report.placed, report.reported) == (3, 1, 2)


@pytest.mark.parametrize(
    "change,code",
    [
        ({"spo_details": [[3, 13, "None-label", "works_for", 9, 11, "PERSON"]]}, "E107"),
        ({"spo_details": [[3, 8, "None-label", "works_for", 9]]}, "E103"),
        ({"pos_tags": ["DT"]}, "E103"),
        ({"pos_tags": [""] * 12}, "E103"),
        ({"tokens": None}, "E103"),
    ],
)
def test_jointer_malformed(tmp_path, nlp, change, code):
    path = write_json(tmp_path / "dev.json", [JOINTER, {**JOINTER, **change}])
    with pytest.raises(ConversionError, match=f"{code}.*record 1"):
        read_jointer(path, nlp.vocab)


def casrel_of(record):
    """The CasRel record of a JointER one: the same sentence, its triples as strings."""
    tokens = record["tokens"]
    triples_ = [[" ".join(tokens[s:e]), r, " ".join(tokens[o:f])] for s, e, _, r, o, f, _ in record["spo_details"]]
    return {"text": " ".join(tokens), "triple_list": triples_}


def test_jointer_tags_on_casrel_gold(tmp_path):
    """--tags-from: CasRel's gold (placed by strings) with the tags of JointER's copy of the same sentences."""
    other = {**JOINTER, "tokens": ["Jens", "Hartel", "sleeps", "."], "spo_details": [], "pos_tags": ["NNP", "NNP", "VBZ", "."]}
    source = write_json(tmp_path / "train_triples.json", [casrel_of(JOINTER), casrel_of(other)])
    tags = write_json(tmp_path / "pos_train.json", [JOINTER, other])
    output = tmp_path / "train.spacy"
    result = CliRunner().invoke(app, ["convert", str(source), str(output), "-f", "casrel", "--tags-from", str(tags)])
    assert result.exit_code == 0, result.output
    docs = list(DocBin().from_disk(output).get_docs(spacy.blank("en").vocab))
    assert [[t.tag_ for t in doc] for doc in docs] == [JOINTER["pos_tags"], other["pos_tags"]]
    untagged, _ = read_casrel(source, spacy.blank("en").vocab)
    assert [triples(doc) for doc in docs] == [triples(doc) for doc in untagged]  # the gold is CasRel's
    # --limit cuts the tags file alike
    result = CliRunner().invoke(app, ["convert", str(source), str(output), "-f", "casrel", "--tags-from", str(tags), "--limit", "1"])
    assert result.exit_code == 0, result.output
    docs = list(DocBin().from_disk(output).get_docs(spacy.blank("en").vocab))
    assert [[t.tag_ for t in doc] for doc in docs] == [JOINTER["pos_tags"]]


@pytest.mark.parametrize(
    "records,code,where",
    [
        ([JOINTER], "E113", "has 1 records but the corpus has 2"),
        ([JOINTER, {**JOINTER, "tokens": JOINTER["tokens"][:-1] + ["!"]}], "E114", "record 1"),
        ([JOINTER, {**JOINTER, "pos_tags": JOINTER["pos_tags"][:-1]}], "E103", "record 1"),
        ([JOINTER, {**JOINTER, "pos_tags": [""] * len(JOINTER["tokens"])}], "E103", "record 1"),
    ],
)
def test_jointer_tags_that_have_no_place(tmp_path, nlp, records, code, where):
    docs, _ = read_casrel(write_json(tmp_path / "data.json", [casrel_of(JOINTER)] * 2), nlp.vocab)
    with pytest.raises(ConversionError, match=code) as err:
        add_jointer_tags(docs, write_json(tmp_path / "pos.json", records))
    assert where in str(err.value)
    assert not any(t.tag_ for doc in docs for t in doc)  # all or nothing


# JSONL with character offsets


def jsonl_record(**change):
    record = {
        "text": "Marie Curie was born in Warsaw, Poland.",
        "entities": [
            {"start": 0, "end": 11, "label": "PERSON"},
            {"start": 24, "end": 30, "label": "GPE"},
            {"start": 32, "end": 38, "label": "GPE", "text": "Poland"},
        ],
        "relations": [
            {"head": 0, "tail": 1, "label": "born_in"},
            {"head": 2, "tail": 1, "label": "contains"},
        ],
    }
    record.update(change)
    return record


def test_jsonl(tmp_path, nlp):
    misaligned = jsonl_record(
        entities=[{"start": 0, "end": 5}, {"start": 24, "end": 28}, {"start": 26, "end": 38}],
        relations=[{"head": 0, "tail": 1, "label": "born_in"}],
    )
    overlap = jsonl_record(entities=jsonl_record()["entities"] + [{"start": 24, "end": 38}])
    path = write_jsonl(tmp_path / "data.jsonl", [jsonl_record(), misaligned, overlap])
    path.write_text(path.read_text() + "\n", encoding="utf-8")  # a blank line is skipped
    docs, report = read_jsonl(path, nlp, rel2id=REL2ID[1])
    assert docs[0].text == jsonl_record()["text"]
    assert [(e.text, e.label_) for e in docs[0].ents] == [
        ("Marie Curie", "PERSON"),
        ("Warsaw", "GPE"),
        ("Poland", "GPE"),
    ]
    assert triples(docs[0]) == [
        ("Marie Curie", "born_in", "Warsaw"),
        ("Poland", "contains", "Warsaw"),
    ]
    assert [(e.text, e.label_) for e in docs[1].ents] == [("Marie", "ENTITY")]
    problems = [(p.index, p.line, p.triple, p.code) for p in report.problems]
    assert problems == [
        (1, 2, None, "misaligned"),
        (1, 2, None, "misaligned"),
        (1, 2, ("Marie", "born_in", "Wars"), "misaligned"),
        (2, 3, None, "overlap"),
    ]
    assert (report.sentences, report.triples, report.placed, report.reported) == (3, 5, 4, 1)


@pytest.mark.parametrize(
    "record,code",
    [
        (jsonl_record(entities=[{"start": 30, "end": 99}], relations=[]), "E105"),
        (jsonl_record(entities=[{"start": 0, "end": 5, "text": "Mario"}], relations=[]), "E106"),
        (jsonl_record(relations=[{"head": 0, "tail": 3, "label": "born_in"}]), "E107"),
        (jsonl_record(relations=[{"head": 0, "tail": 1, "label": "married_to"}]), "E104"),
        ({"text": "no entities key"}, "E103"),
        (jsonl_record(entities=[{"start": "0", "end": 5}]), "E103"),
    ],
)
def test_jsonl_malformed(tmp_path, nlp, record, code):
    path = write_jsonl(tmp_path / "data.jsonl", [jsonl_record(), record])
    with pytest.raises(ConversionError, match=f"{code}.*record 1 \\(line 2\\)"):
        read_jsonl(path, nlp, rel2id=REL2ID[1])


def test_jsonl_bad_json_names_line(tmp_path, nlp):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(jsonl_record()) + "\n\n{oops\n", encoding="utf-8")
    with pytest.raises(ConversionError, match="E101.*record 1: invalid JSON at line 3") as err:
        read_jsonl(path, nlp)
    assert (err.value.index, err.value.line) == (1, 3)


# Prodigy rel.manual


def prodigy_record(answer="accept", **change):
    words = ["Apple", "hired", "Tim", "Cook", "in", "Cupertino", "."]
    tokens = [{"text": w, "id": i, "ws": i < len(words) - 2} for i, w in enumerate(words)]
    record = {
        "text": "Apple hired Tim Cook in Cupertino.",
        "tokens": tokens,
        "spans": [
            {"token_start": 0, "token_end": 0, "label": "ORG"},
            {"token_start": 2, "token_end": 3, "label": "PERSON"},
            {"token_start": 5, "token_end": 5},
        ],
        "relations": [
            {
                "head": 3,
                "child": 0,
                "label": "works_for",
                "head_span": {"token_start": 2, "token_end": 3, "label": "PERSON"},
            },
            {"head": 5, "child": 0, "label": "contains"},
            {"head": 1, "child": 0, "label": "contains"},
        ],
        "answer": answer,
    }
    record.update(change)
    return record


def test_prodigy(tmp_path, nlp):
    path = write_jsonl(
        tmp_path / "rel.jsonl",
        [prodigy_record(), prodigy_record("reject"), prodigy_record("ignore")],
    )
    docs, report = read_prodigy(path, nlp.vocab, rel2id=REL2ID[1])
    assert len(docs) == 1 and report.skipped_records == 2
    doc = docs[0]
    assert doc.text == prodigy_record()["text"]
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("Apple", "ORG"),
        ("Tim Cook", "PERSON"),
        ("Cupertino", "ENTITY"),
    ]
    assert triples(doc) == [("Tim Cook", "works_for", "Apple"), ("Cupertino", "contains", "Apple")]
    assert [(p.index, p.line, p.triple, p.code) for p in report.problems] == [
        (0, 1, ("hired", "contains", "Apple"), "no_entity")
    ]


@pytest.mark.parametrize(
    "change,code",
    [
        ({"spans": [{"token_start": 5, "token_end": 9}]}, "E107"),
        ({"relations": [{"head": 42, "child": 0, "label": "contains"}]}, "E107"),
        ({"text": "Apple hired Tim Cook in Cupertino!"}, "E108"),
        ({"tokens": [{"ws": True}]}, "E103"),
        ({"relations": [{"head": 0, "child": 0, "label": "unknown"}]}, "E104"),
    ],
)
def test_prodigy_malformed(tmp_path, nlp, change, code):
    path = write_jsonl(tmp_path / "rel.jsonl", [prodigy_record(), prodigy_record(**change)])
    with pytest.raises(ConversionError, match=f"{code}.*record 1 \\(line 2\\)"):
        read_prodigy(path, nlp.vocab, rel2id=REL2ID[1])


# The corpus reader


def test_casrel_reader(tmp_path, nlp):
    records = [
        {
            "text": "Barack Obama was born in Honolulu .",
            "triple_list": [["Barack Obama", "born_in", "Honolulu"]],
        }
    ] * 3
    path = write_json(tmp_path / "train.json", records)
    rel2id = write_json(tmp_path / "rel2id.json", REL2ID)
    config = {
        "corpus": {
            "@readers": "spacy-pmei.CasRelCorpus.v1",
            "path": str(path),
            "rel2id": str(rel2id),
            "limit": 2,
        }
    }
    reader = spacy.registry.resolve(config)["corpus"]
    examples = list(reader(nlp))
    assert len(examples) == 2
    assert triples(examples[0].reference) == [("Barack Obama", "born_in", "Honolulu")]
    assert examples[0].predicted.text == records[0]["text"] and not examples[0].predicted.ents
    assert len(list(reader(nlp))) == 2  # a second epoch reads again
    with pytest.raises(ConversionError, match="E100"):
        create_casrel_reader(tmp_path / "missing.json")


# The command line


FORMAT_INPUTS = {
    "casrel": (
        "data.json",
        [{"text": "Obama was born in Hawaii .", "triple_list": [["Obama", "born_in", "Hawaii"]]}],
    ),
    "casrel-star": (
        "data.json",
        [{"text": "Obama was born in Hawaii .", "triple_list": [["Obama", "born_in", "Hawaii"]]}],
    ),
    "jointer": ("data.json", [JOINTER]),
    "jsonl": ("data.jsonl", [jsonl_record()]),
    "prodigy": ("data.jsonl", [prodigy_record()]),
}


@pytest.mark.parametrize("fmt", sorted(FORMAT_INPUTS))
def test_cli_convert_each_format(tmp_path, fmt):
    name, records = FORMAT_INPUTS[fmt]
    write = write_jsonl if name.endswith(".jsonl") else write_json
    source = write(tmp_path / name, records)
    output = tmp_path / "out" / "train.spacy"
    result = CliRunner().invoke(
        app,
        [
            "convert",
            str(source),
            str(output),
            "--format",
            fmt,
            "--rel2id",
            str(write_json(tmp_path / "rel2id.json", REL2ID)),
        ],
    )
    assert result.exit_code == 0, result.output
    docs = list(DocBin().from_disk(output).get_docs(spacy.blank("en").vocab))
    _, report = convert_file(source, fmt)
    assert len(docs) == 1 and len(docs[0]._.relations) == report.placed > 0
    if fmt == "jointer":
        assert [t.tag_ for t in docs[0]] == JOINTER["pos_tags"]
    assert all(r.head in docs[0].ents and r.tail in docs[0].ents for r in docs[0]._.relations)
    report_lines = (tmp_path / "out" / "train.report.jsonl").read_text().splitlines()
    assert len(report_lines) == len(report.problems)
    assert f"placed      {report.placed}" in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "train.report.jsonl",
        "train.spacy",
    ]


def test_cli_round_trip(tmp_path):
    records = [
        {
            "text": "In Queens , Douglaston and Queens Village grew .",
            "triple_list": [
                ["Queens", "contains", "Douglaston"],
                ["Douglaston", "born_in", "Queens"],
                ["Queens", "contains", "Douglaston"],
            ],
        },
        {
            "text": "The New Yorker met Ana in São Paulo .",
            "triple_list": [["New York", "contains", "Ana"], ["Ana", "born_in", "Sao Paulo"]],
        },
    ]
    source = write_json(tmp_path / "src.json", records)
    runner = CliRunner()
    report = tmp_path / "problems.jsonl"
    result = runner.invoke(
        app,
        [
            "convert",
            str(source),
            str(tmp_path / "c.spacy"),
            "-f",
            "casrel",
            "--report",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    problems = [json.loads(line) for line in report.read_text().splitlines()]
    assert [(p["index"], p["code"]) for p in problems] == [(0, "duplicate"), (1, "accent_mismatch")]
    result = runner.invoke(app, ["export", str(tmp_path / "c.spacy"), str(tmp_path / "back.json")])
    assert result.exit_code == 0, result.output
    back = json.loads((tmp_path / "back.json").read_text(encoding="utf-8"))
    assert [r["text"] for r in back] == [r["text"] for r in records]
    assert Counter(map(tuple, back[0]["triple_list"])) == Counter(
        [("Queens", "contains", "Douglaston"), ("Douglaston", "born_in", "Queens")]
    )
    assert back[1]["triple_list"] == [["New York", "contains", "Ana"]]


@pytest.mark.parametrize(
    "content,args,needle",
    [
        ('[{"text": "a b", "triple_list": [["a", "x", "b"]]}, ', [], "E101"),
        ('[{"text": "a b", "triple_list": []}, {"triple_list": []}]', [], "record 1"),
        (
            '[{"text": "a b", "triple_list": [["a", "married_to", "b"]]}]',
            ["--rel2id"],
            "married_to",
        ),
        ('[{"text": "a b", "triple_list": []}]', ["--lang", "xx-nope"], "xx-nope"),
    ],
)
def test_cli_malformed_leaves_no_output(tmp_path, content, args, needle):
    source = tmp_path / "bad.json"
    source.write_text(content, encoding="utf-8")
    if args == ["--rel2id"]:
        args = ["--rel2id", str(write_json(tmp_path / "rel2id.json", REL2ID))]
    out_dir = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["convert", str(source), str(out_dir / "bad.spacy"), "-f", "casrel", *args]
    )
    assert result.exit_code == 1
    assert needle in " ".join(result.output.split())
    assert not out_dir.exists() or not list(out_dir.iterdir())


def test_cli_unwritable_output(tmp_path):
    source = write_json(tmp_path / "data.json", FORMAT_INPUTS["casrel"][1])
    (tmp_path / "file").write_text("not a folder")
    output = tmp_path / "file" / "out.spacy"
    result = CliRunner().invoke(app, ["convert", str(source), str(output), "-f", "casrel"])
    assert result.exit_code == 1 and "E112" in result.output


def test_unknown_format(tmp_path):
    with pytest.raises(ConversionError, match="E110"):
        convert_file(write_json(tmp_path / "data.json", []), "conll")


def test_cli_export_bad_docbin(tmp_path):
    source = write_json(tmp_path / "not.spacy", [])
    result = CliRunner().invoke(app, ["export", str(source), str(tmp_path / "x.json")])
    assert result.exit_code == 1 and "E111" in result.output and not (tmp_path / "x.json").exists()


def test_python_m_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "spacy_pmei", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "convert" in result.stdout and "export" in result.stdout


# The real benchmark files


@pytest.mark.skipif(not DATA.exists(), reason="shared benchmark data not present")
@pytest.mark.parametrize("dataset,max_share", [("nyt", 0.01), ("webnlg", 0.03)])
def test_real_dev_files_round_trip(tmp_path, dataset, max_share):
    """Every placed triple survives source -> DocBin -> CasRel; few are left out."""
    source = DATA / dataset / "val_triples.json"
    records = json.loads(source.read_text(encoding="utf-8"))
    nlp = spacy.blank("en")
    docs, report = read_casrel(source, nlp.vocab, rel2id=DATA / dataset / "rel2id.json")
    DocBin(store_user_data=True, docs=docs).to_disk(tmp_path / "dev.spacy")
    loaded = list(DocBin().from_disk(tmp_path / "dev.spacy").get_docs(nlp.vocab))
    assert placed_round_trip(records, loaded, report)
    assert report.sentences == len(records) and report.placed + report.reported == report.triples
    not_duplicates = sum(1 for p in report.problems if p.code != "duplicate")
    assert not_duplicates <= max_share * report.triples
    print(f"{dataset}/val: {report.summary()}")
