"""Every advertised registry name resolves, from entry points and from code."""
import sys
from pathlib import Path

import pytest
import spacy
from spacy.util import registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

PYPROJECT = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
ENTRY_POINTS = PYPROJECT["project"]["entry-points"]
REGISTRIES = {
    "spacy_factories": None,
    "spacy_architectures": registry.architectures,
    "spacy_scorers": registry.scorers,
    "spacy_readers": registry.readers,
    "spacy_misc": registry.misc,
}
NAMES = [(group, name) for group, names in ENTRY_POINTS.items() if group in REGISTRIES for name in names]


def test_groups_are_known():
    assert set(ENTRY_POINTS) <= set(REGISTRIES)
    assert ("spacy_factories", "pmei_relations") in NAMES


@pytest.mark.parametrize("group,name", NAMES)
def test_name_resolves(group, name):
    import importlib

    module, attr = ENTRY_POINTS[group][name].split(":")
    target = getattr(importlib.import_module(module), attr)
    if group == "spacy_factories":
        assert spacy.blank("en").add_pipe(name) is not None
        return
    assert registry.has(REGISTRIES[group].namespace[-1], name) or REGISTRIES[group].get(name)
    resolved = REGISTRIES[group].get(name)
    assert resolved is target or getattr(resolved, "__wrapped__", None) is target or resolved.__name__ == target.__name__


def test_installed_entry_points_match_pyproject():
    from importlib.metadata import entry_points

    for group in REGISTRIES:
        installed = {ep.name: ep.value for ep in entry_points(group=group)}
        for name, value in ENTRY_POINTS.get(group, {}).items():
            assert installed.get(name) == value, f"{group}:{name} not installed (reinstall the package)"
