"""The public API is what ``__all__`` says: sorted, complete, and nothing else leaks."""

from __future__ import annotations

import importlib.metadata
import re
import types

import pytest

import vosweep
import vosweep.registry
import vosweep.testing

MODULES = [vosweep, vosweep.registry, vosweep.testing]


def isort_key(name: str) -> tuple[int, list[int | str]]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then the rest, naturally."""
    if len(name) > 1 and name.upper() == name and name.lower() != name:
        kind = 0
    elif name[:1].isupper():
        kind = 1
    else:
        kind = 2
    natural = [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
    return kind, natural


def public_names(module: types.ModuleType) -> set[str]:
    """Public names bound in *module*, less submodules and ``from __future__`` features."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_all_is_sorted(module):
    """``__all__`` is in ruff's isort-style order (RUF022), with no duplicates."""
    assert module.__all__ == sorted(module.__all__, key=isort_key)
    assert len(set(module.__all__)) == len(module.__all__)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_every_name_in_all_exists(module):
    """Every name in ``__all__`` can be imported from the package."""
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_every_reexport_is_in_all(module):
    """Every public name the package binds is listed in ``__all__``: no helper leaks."""
    assert public_names(module) == set(module.__all__)


def test_version_is_the_installed_metadata():
    """``vosweep.__version__`` is the version of the installed distribution."""
    assert vosweep.__version__ == importlib.metadata.version("vosweep")
