"""The spaCy project: docs/project-commands.md documents it, and `spacy project run all` builds a wheel that loads."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
WHEEL = "packages/sample/sample/en_pmei_nyt-0.1.0/dist/en_pmei_nyt-0.1.0-py3-none-any.whl"
LOAD = """
import json, spacy
nlp = spacy.load("en_pmei_nyt")
doc = nlp("Bobby Fischer, who was born in Chicago, lived in Reykjavik, Iceland.")
print(json.dumps({
    "file": spacy.util.get_package_path("en_pmei_nyt").as_posix(),
    "tokens": [t.text for t in doc],
    "ents": [[e.start, e.end, e.label_] for e in doc.ents],
    "relations": [r.to_dict() for r in doc._.relations],
    "meta": nlp.meta,
}))
"""


def run(args, cwd: Path, timeout: int, env=None) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, args))}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout


def copy_project(dest: Path) -> Path:
    """The files git would commit (tracked, and new ones not ignored), as on a fresh clone."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout")
    listed = run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], ROOT, 60)
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def test_project_command_table_is_up_to_date(tmp_path):
    """`spacy project document --output docs/project-commands.md` would change nothing."""
    page = ROOT / "docs" / "project-commands.md"
    copy = tmp_path / "project-commands.md"
    shutil.copyfile(page, copy)
    run([sys.executable, "-m", "spacy", "project", "document", str(ROOT), "--output", str(copy)], ROOT, 120)
    assert copy.read_text(encoding="utf-8") == page.read_text(encoding="utf-8"), (
        "The project's command table is stale: run `python -m spacy project document . --output docs/project-commands.md`"
    )
    # The generated table lives in its own page; the README links to it instead.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "WEASEL: AUTO-GENERATED" not in readme
    assert "docs/project-commands.md" in readme


def test_commands_that_copy_from_data_dir_run_every_time(tmp_path):
    """A test file added to --vars.data_dir later must reach the corpus on the next run.

    weasel skips a command whose script, deps and outputs are unchanged, and it
    cannot see files outside the project: a command that copies from data_dir
    and records outputs would be skipped, leaving the new file unconverted.
    """
    from weasel.cli.run import check_rerun, update_lockfile
    from weasel.util import load_project_config

    project = tmp_path / "project"
    project.mkdir()
    shutil.copyfile(ROOT / "project.yml", project / "project.yml")
    config = load_project_config(project, overrides={"vars.data_dir": str(tmp_path / "data")})
    copying = [cmd for cmd in config["commands"] if any("fetch-local" in line for line in cmd["script"])]
    assert {cmd["name"] for cmd in copying} >= {"fetch-local", "bench-data"}
    for cmd in copying:
        for path in [*cmd.get("deps", []), *cmd.get("outputs", [])]:  # as after a run
            (project / path).parent.mkdir(parents=True, exist_ok=True)
            (project / path).write_text("done", encoding="utf-8")
        update_lockfile(project, cmd)
        assert check_rerun(project, cmd), f"weasel would skip {cmd['name']} on the next run"


@pytest.mark.slow
def test_project_run_all_builds_a_wheel_that_loads(tmp_path):
    project = copy_project(tmp_path / "project")
    env = dict(os.environ)
    # Nothing may download; the NYT sample is bundled.
    env.update({"HF_HUB_OFFLINE": "1", "PIP_NO_INDEX": "1"})
    run([sys.executable, "-m", "spacy", "project", "run", "all", str(project)], project, 900, env)
    wheel = project / WHEEL
    assert wheel.exists()
    site = tmp_path / "site"
    run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)], tmp_path, 300, env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH", "")]))
    out = json.loads(run([sys.executable, "-c", LOAD], tmp_path, 300, env).strip().splitlines()[-1])
    assert out["file"].startswith(site.as_posix())
    # spaCy's tokenizer splits raw text: "Chicago," is two tokens
    assert "Chicago" in out["tokens"] and "," in out["tokens"]
    assert isinstance(out["ents"], list) and isinstance(out["relations"], list)
    meta = out["meta"]
    assert meta["name"] == "pmei_nyt" and meta["lang"] == "en"
    assert {"rel_exact_f", "rel_partial_f", "ents_f"} <= set(meta["performance"])
    assert meta["performance"]["eval_split"] == "dev"
    # All 24 relations of the sample's rel2id.json (via corpus/sample/labels.json), though
    # its 300 training sentences have 19 of them.
    assert len(meta["labels"]["pmei_relations"]) == 24
    assert any(req.startswith("spacy-pmei") for req in meta["requirements"])
    assert meta["vectors"]["name"] == "glove_6b_50d"
    scores = json.loads((project / "metrics" / "sample-sample.json").read_text())["pmei_relations"]
    assert meta["performance"]["rel_exact_f"] == pytest.approx(scores["rel_exact_f"], abs=1e-9)
    # The demo learns something in its few minutes (about 0.3 exact F on the 60 dev sentences).
    assert scores["rel_exact_f"] > 0.1
