"""ADQL identifiers from service-supplied names: quoted when needed, never able to inject."""

from __future__ import annotations

import pytest
import sqlglot
from hypothesis import given
from hypothesis import strategies as st

from vosweep.adql import identifier, is_regular, split_qualified, table_reference
from vosweep.errors import UsageError

NAMES = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\x00"),
    min_size=1,
    max_size=40,
)


@pytest.mark.parametrize(
    ("name", "written"),
    [
        ("ra", "ra"),
        ("size", '"size"'),
        ("DATE", '"DATE"'),
        ("pm ra", '"pm ra"'),
        ('say "hi"', '"say ""hi"""'),
        ("1st", '"1st"'),
        ("_x", '"_x"'),
    ],
)
def test_identifier(name, written):
    assert identifier(name) == written


@pytest.mark.parametrize(
    ("name", "written"),
    [
        ("ivoa.obscore", "ivoa.obscore"),
        ("cat.sources", "cat.sources"),
        ('"J/A+A/586/A5"."table1"', '"J/A+A/586/A5".table1'),
        ('vizier."J/A+A/586/A5/t1"', 'vizier."J/A+A/586/A5/t1"'),
        ("J/A+A/586/A5/table1", '"J/A+A/586/A5/table1"'),
        ("tap_schema.columns", "tap_schema.columns"),
        ("mine.user", 'mine."user"'),
        ("public.t", '"public".t'),
        ('"a.b".c', '"a.b".c'),
    ],
)
def test_table_reference(name, written):
    assert table_reference(name) == written


def test_control_characters_refused():
    with pytest.raises(UsageError, match="control characters"):
        identifier("a\nb")
    with pytest.raises(UsageError, match="empty"):
        identifier("")


@given(NAMES)
def test_any_name_is_one_column_in_the_parsed_query(name):
    """Whatever the name, the query keeps its shape: one column, from one table."""
    query = f"SELECT {identifier(name)} FROM t WHERE 1=1"  # noqa: S608 - the point of the test
    tree = sqlglot.parse_one(query, read="postgres")
    columns = list(tree.find_all(sqlglot.exp.Column))
    assert len(tree.expressions) == 1
    assert len(columns) == 1
    assert columns[0].name == name
    assert [t.name for t in tree.find_all(sqlglot.exp.Table)] == ["t"]


@given(NAMES)
def test_any_table_name_is_one_table(name):
    if not name.strip():
        # Padding is trimmed (registries pad names); nothing left is no name at all.
        with pytest.raises(UsageError, match="empty"):
            table_reference(name)
        return
    reference = table_reference(name)
    query = f"SELECT * FROM {reference} WHERE 1=1"  # noqa: S608 - the point of the test
    tree = sqlglot.parse_one(query, read="postgres")
    tables = list(tree.find_all(sqlglot.exp.Table))
    assert len(tables) == 1
    parts = split_qualified(name.strip())
    assert tables[0].name == parts[-1]


@given(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,20}", fullmatch=True))
def test_regular_names_stay_unquoted_unless_reserved(name):
    assert (identifier(name) == name) == is_regular(name)
