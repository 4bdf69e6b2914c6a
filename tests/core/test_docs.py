"""Parameter docs: the ``Parameters:`` docstring convention and what ``mmtk show`` prints."""
from __future__ import annotations

import json
import re

import pytest

from mmtk.cli import main
from mmtk.docs import description, parameter_docs, parse_parameter_docs
from mmtk.plugins import reset_plugin_system


def test_entries_and_continuation_lines():
    doc = """Summary line.

    Longer description.

    Parameters:
        hidden: width of the hidden layers
        dropout: probability of zeroing a unit;
            continued here
              and indented even further
        kind: one of a, b: the colon in the text stays
    Returns nothing in particular.
    """
    assert parse_parameter_docs(doc) == {
        "hidden": "width of the hidden layers",
        "dropout": "probability of zeroing a unit; continued here and indented even further",
        "kind": "one of a, b: the colon in the text stays",
    }


def test_blank_lines_inside_and_section_end():
    doc = "S.\n\nParameters:\n    a: first\n\n    b: second\n\nNotes:\n    c: not a parameter\n"
    assert parse_parameter_docs(doc) == {"a": "first", "b": "second"}


@pytest.mark.parametrize("doc", [
    "",
    "No section at all.\n\n    x: looks like an entry but has no header",
    "Args:\n    x: another convention",
    "Parameters\n----------\nx : int\n    numpy style",
    "Parameters: x: inline is not the header",
    "S.\n\n    Parameters:\n    x: not indented under the header",
])
def test_no_section_means_no_docs(doc):
    assert parse_parameter_docs(doc) == {}


def test_entry_with_text_only_on_continuation_lines():
    assert parse_parameter_docs("S.\n\n    Parameters:\n        x:\n            the meaning\n") == {"x": "the meaning"}


class Base:
    """Base.

    Parameters:
        width: how wide
        depth: how deep
    """

    def __init__(self, width: int = 1, depth: int = 2): ...


class Child(Base):
    """Child.

    Parameters:
        depth: the child's own words
    """

    def __init__(self, depth: int = 3): ...


class NoDoc(Base):
    def __init__(self, width: int = 1): ...


def test_inherited_entries_only_for_parameters_still_there():
    assert parameter_docs(Child) == {"depth": "the child's own words"}
    assert parameter_docs(NoDoc) == {"width": "how wide"}
    assert description(NoDoc) == ""  # never a base class's description


def test_factory_function_docs():
    def adam(params, lr: float = 1e-3):
        """Adam.

        Parameters:
            lr: learning rate
        """

    assert parameter_docs(adam) == {"lr": "learning rate"}
    assert description(adam) == "Adam."


def test_description_drops_only_the_section():
    assert description(Child) == "Child."
    doc_then_more = type("X", (), {"__doc__": "Top.\n\nParameters:\n    a: b\n\nAfter."})
    assert description(doc_then_more) == "Top.\n\nAfter."


@pytest.fixture
def local_plugin(tmp_path):
    (tmp_path / "documented.py").write_text('''
import mmtk
from torch import nn


class Documented(nn.Module):
    """An encoder with documented parameters.

    Parameters:
        hidden: width of the hidden layer
        act: the non-linearity,
            applied after the first layer
    """

    def __init__(self, in_dim: int, latent_dim: int, hidden: int = 32, act: str = "relu",
                 undocumented: float = 0.5):
        super().__init__()


@mmtk.hookimpl
def mmtk_register_components(register):
    register("encoder", "documented", Documented)
''')
    reset_plugin_system()
    yield ["--plugins-dir", str(tmp_path)]
    reset_plugin_system()


def test_show_prints_each_meaning_next_to_type_and_default(local_plugin, capsys):
    assert main([*local_plugin, "show", "component", "encoder/documented"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\n  hidden: int +\(default 32\) +width of the hidden layer\n", out)
    assert re.search(r"\n  act: str +\(default 'relu'\) +the non-linearity, applied after the first layer\n", out)
    assert re.search(r"\n  undocumented: float +\(default 0\.5\)\n", out)  # nothing extra
    assert "Parameters:" not in out  # the section is shown as the list, not twice
    assert "An encoder with documented parameters." in out


def test_show_json_has_each_parameters_doc(local_plugin, capsys):
    assert main([*local_plugin, "show", "component", "encoder/documented", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    docs = {p["name"]: p["doc"] for p in info["parameters"]}
    assert docs == {"in_dim": "", "latent_dim": "", "hidden": "width of the hidden layer",
                    "act": "the non-linearity, applied after the first layer", "undocumented": ""}
    assert info["doc"] == "An encoder with documented parameters."
