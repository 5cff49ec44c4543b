"""The examples in the package's docstrings run: a docstring that lies fails the suite."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import lineage_tools

MODULES = sorted(m.name for m in pkgutil.walk_packages(lineage_tools.__path__, "lineage_tools.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
