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
