"""The README's quickstart runs as written."""
import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_quickstart_runs(capsys):
    text = README.read_text()
    block = re.search(r"<!-- quickstart.*?```python\n(.*?)```\n<!-- /quickstart -->", text, re.S)
    assert block, "README has no quickstart block"
    exec(compile(block.group(1), "README-quickstart", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "(Bobby Fischer, Chicago)"
    assert out[1].startswith("Bobby Fischer born_in Chicago ")


ROOT = README.parent
RESULTS_COLUMNS = [
    "dataset", "model", "split", "seeds", "epochs", "paper F (test)",
    "ours: position-match exact F (`rel_exact_f`)",
    "ours: string-match F, CasRel protocol (`rel_string_f`)", "command",
]  # fmt: skip


def test_readme_fits_on_a_few_screens():
    assert len(README.read_text().splitlines()) <= 250


def test_results_table_comes_first():
    """A reader finds paper vs ours within the first 60 lines, with split, seeds and command."""
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| dataset |"))
    assert start < 60, f"the results table starts at line {start + 1}"
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    assert header == RESULTS_COLUMNS
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    assert {(row[0], row[1]) for row in rows} >= {("WebNLG", "PMEI"), ("WebNLG", "MTL"), ("WebNLG\\*", "PMEI")}
    for row in rows:
        assert len(row) == len(RESULTS_COLUMNS), row
        assert row[2].startswith("dev"), row  # the test splits are held back: say so
        assert row[-1].startswith(("`python -m spacy project run ", "`python -m spacy_pmei.accuracy run ")), row
        # string F is measured where the run's model was kept, "n/m" (with its footnote) elsewhere
        assert re.match(r"\d", row[6]) and (row[7] == "n/m" or re.match(r"\d", row[7])), row
    # at least one row compares like with like: both protocols on the same predictions
    assert any(re.match(r"\d", row[7]) for row in rows)


def test_local_links_resolve():
    """The README and the docs pages link to files that are there (sections moved to docs/).

    weasel's generated part of docs/project-commands.md links as if it were in the root: skipped.
    """
    pages = [README, ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").rglob("*.md"))]
    missing = []
    for page in pages:
        text = re.sub(r"<!-- WEASEL: AUTO-GENERATED DOCS START.*?DOCS END.*?-->", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            if not path.exists():
                missing.append(f"{page.relative_to(ROOT)}: {target}")
    assert not missing, missing
