"""Registry constraints build the RegTAP query pyvo would, safely, for the registry at hand."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Callable

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.time import Time
from hypothesis import assume, example, given
from hypothesis import strategies as st

from vosweep.errors import RegistryFeatureMissing, UsageError
from vosweep.registry import constraints as rc
from vosweep.registry._adql import number_literal, sql_literal, string_literal
from vosweep.registry.constraints import (
    MESSENGERS,
    RESOURCE_COLUMNS,
    SERVICE_TYPES,
    UAT,
    UCD,
    Author,
    Constraint,
    Datamodel,
    Freetext,
    Ivoid,
    SearchSpec,
    Servicetype,
    Spatial,
    Spectral,
    SubqueriedConstraint,
    Temporal,
    Waveband,
    build_query,
    keywords_to_constraints,
)
from vosweep.registry.features import DEFAULT_FEATURES, RegistryFeatures
from vosweep.services import STANDARD_IDS

# --- an ADQL tokenizer: enough to compare query structure ------------------------------

_TOKEN = re.compile(
    r"""'(?:[^']|'')*'"""  # a character literal, '' inside
    r"|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?"  # a number
    r"|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"  # a (qualified) identifier
    r"|<>|<=|>=|!=|\|\||--|/\*|\*/"
    r"|\S"
)


def tokens(adql: str) -> list[str]:
    return _TOKEN.findall(adql)


def is_literal(token: str) -> bool:
    return token.startswith("'")


def unescape(token: str) -> str:
    assert token[0] == token[-1] == "'"
    return token[1:-1].replace("''", "'")


def skeleton(adql: str) -> list[str]:
    """The query's tokens with every character literal blanked."""
    return ["<literal>" if is_literal(token) else token for token in tokens(adql)]


def literals(adql: str) -> list[str]:
    return [unescape(token) for token in tokens(adql) if is_literal(token)]


def normal(adql: str) -> str:
    """Tokens joined by blanks; keywords lower-cased, rr.resource/rr.res_subject qualifiers and
    number spellings dropped: what pyvo's and our conditions are compared on."""
    out = []
    for token in tokens(adql):
        if is_literal(token):
            out.append(token)
        elif token[0].isdigit():
            out.append(repr(float(token)))
        else:
            lowered = token.lower()
            for qualifier in ("rr.resource.", "rr.res_subject."):
                lowered = lowered.removeprefix(qualifier)
            out.append(lowered)
    return " ".join(out)


def numbers_in(adql: str) -> list[float]:
    return [float(token) for token in tokens(adql) if token[0].isdigit()]


def where(adql: str) -> str:
    """The WHERE clause of a query from build_query."""
    return adql.split("\nWHERE ", 1)[1].split("\nORDER BY ", 1)[0]


# --- hostile input -----------------------------------------------------------------------

MARKER = "zqxmarker"
_printable = st.characters(blacklist_categories=("Cc", "Cs"))
HOSTILE = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "'",
                "''",
                "' OR 1=1 --",
                "--",
                "/*",
                "*/",
                ";",
                "; DROP TABLE rr.resource;",
                "\\",
                "\\'",
                '"',
                "(",
                ")",
                "%",
                "_",
                "{auth}",
                "{0}",
                "}",
                "é",
                "漢字",
                "\U0001f52d",
                "\u2028",
                "\u202e",
                " ",
            ]
        ),
        st.text(alphabet=_printable, max_size=6),
    ),
    min_size=1,
    max_size=10,
).map("".join)


def assert_confined(
    build: Callable[[str], str], value: str, expected: str, *, ordered: bool = True
) -> None:
    """The value changes nothing but the literals it was meant to fill.

    *build* makes a query from a value; the query from *value* must have exactly the tokens
    of the query from a harmless marker, and each literal holding the marker must hold
    *expected* (the value as the constraint means it) in its place. Lists a constraint sorts
    (standard ids) are compared unordered.
    """
    safe, hostile = build(MARKER), build(value)
    assert skeleton(hostile) == skeleton(safe)
    safe_literals, hostile_literals = literals(safe), literals(hostile)
    assert any(MARKER in literal for literal in safe_literals)
    wanted = [lit.replace(MARKER, expected) for lit in safe_literals]
    if ordered:
        assert hostile_literals == wanted
    else:
        assert sorted(hostile_literals) == sorted(wanted)


class TestLiterals:
    @given(st.text(alphabet=_printable))
    @example("it's")
    @example("'; DROP TABLE x; --")
    def test_strings_round_trip(self, text):
        """A character literal is one token and unescapes to the text it was made from."""
        literal = string_literal(text)
        assert tokens(literal) == [literal]
        assert unescape(literal) == text

    @given(st.floats(allow_nan=False, allow_infinity=False) | st.integers())
    def test_numbers_round_trip(self, number):
        """A numeric literal is a plain ADQL number (sign apart) with the exact value."""
        literal = number_literal(number)
        body = literal.removeprefix("-")
        assert re.fullmatch(r"\d+(\.\d+)?([eE][+-]?\d+)?", body)
        if isinstance(number, int):
            assert int(literal) == number  # exactly: big ints are not squeezed through a float
        else:
            assert float(literal) == number

    @pytest.mark.parametrize(
        ("value", "literal"),
        [
            ("that's", "'that''s'"),
            (b"bytes", "'bytes'"),
            (210, "210"),
            (np.int16(-3), "-3"),
            (5e7, "50000000.0"),
            (np.float32(0.5), "0.5"),
            (1e-19, "1e-19"),
            (dt.datetime(2021, 6, 30, 9, 1), "'2021-06-30T09:01:00'"),  # noqa: DTZ001 (naive is UTC)
            (
                dt.datetime(2021, 6, 30, 11, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                "'2021-06-30T09:01:00'",
            ),
            (dt.date(2021, 6, 30), "'2021-06-30'"),
            (Time("2021-06-30T09:01:00", scale="utc"), "'2021-06-30T09:01:00'"),
            ({"b", "a"}, "('a', 'b')"),
            (["b", "a"], "('b', 'a')"),
            ((1, 2.5), "(1, 2.5)"),
        ],
    )
    def test_values(self, value, literal):
        """Strings, numbers, times (UTC ISO, as RegTAP stores them), lists: as pyvo writes them."""
        assert sql_literal(value) == literal

    @pytest.mark.parametrize(
        "value",
        [
            True,
            np.bool_(False),
            math.nan,
            math.inf,
            -math.inf,
            np.float64("nan"),
            "nul\x00byte",
            "new\nline",
            "tab\there",
            "\x1b[31m",
            "lone \ud800 surrogate",
            b"\xff\xfe",
            [],
            set(),
            {"a": 1},
            None,
            object(),
            Time(["2020-01-01", "2021-01-01"]),
        ],
        ids=repr,
    )
    def test_refused(self, value):
        """Values without a safe literal form are a UsageError, never a guess."""
        with pytest.raises(UsageError):
            sql_literal(value)

    @given(
        st.text(alphabet=_printable),
        st.characters(categories=("Cc",)),
        st.text(alphabet=_printable),
    )
    def test_any_control_character_is_refused(self, before, control, after):
        """Every control character is refused, wherever it is, and the message says where."""
        with pytest.raises(UsageError, match=f"U\\+{ord(control):04X}"):
            string_literal(before + control + after)


class TestConfinement:
    """No constraint value can change the structure of the query (hypothesis)."""

    @given(HOSTILE)
    def test_freetext(self, value):
        """Freetext words, in the UNION form and the OR form."""
        assume(value.strip())
        for features in (DEFAULT_FEATURES, RegistryFeatures(union=False, ilike=False)):
            assert_confined(
                lambda word, f=features: build_query(Freetext(word, "x"), features=f),
                value,
                value.strip(),
            )

    @given(HOSTILE)
    def test_author(self, value):
        """Author patterns go through _fillers, so '{auth}' cannot re-enter the template."""
        assume(value.strip())
        assert_confined(lambda name: build_query(author=name), value, value.strip())

    @given(HOSTILE)
    def test_ucd_and_uat(self, value):
        """UCD patterns and UAT concepts."""
        assume(value.strip())
        assert_confined(lambda p: build_query(UCD("phot.mag", p)), value, value.strip())
        assume(not any(char.isspace() for char in value))
        assert_confined(lambda c: build_query(uat=c), value, value.strip().lower())

    @given(HOSTILE)
    def test_ivoid_and_servicetype(self, value):
        """Ivoids and standard ids are lower-cased, but otherwise kept whole."""
        expected = value.rstrip().lower()
        assert_confined(lambda i: build_query(ivoid="ivo://" + i), value, expected)
        assert_confined(lambda i: build_query(Ivoid("ivo://a/b", "ivo://" + i)), value, expected)
        assert_confined(
            lambda s: build_query(servicetype=["tap", "ivo://" + s]), value, expected, ordered=False
        )

    @given(HOSTILE)
    def test_user_constraint(self, value):
        """A user-defined constraint's fillers are literals too."""

        class Concept(SubqueriedConstraint):
            _subquery_table = "rr.subject_uat"

            def __init__(self, uat_id):
                self._condition = "uat_concept={uat_id} OR uat_concept={uat_id}"
                self._fillers = {"uat_id": uat_id}

        assert_confined(lambda c: build_query(Concept(c)), value, value)

    @given(HOSTILE)
    def test_moc_strings(self, value):
        """Anything but an ASCII MOC is refused; a MOC is one literal."""
        try:
            query = build_query(Spatial(value))
        except UsageError:
            return
        assert skeleton(query) == skeleton(build_query(Spatial("0/1")))

    @pytest.mark.parametrize("control", ["\x00", "\n", "\r", "\x7f"])
    @pytest.mark.parametrize(
        "make",
        [
            Freetext,
            Author,
            UCD,
            UAT,
            Waveband,
            Datamodel,
            Servicetype,
            lambda v: Ivoid("ivo://" + v),
        ],
        ids=["Freetext", "Author", "UCD", "UAT", "Waveband", "Datamodel", "Servicetype", "Ivoid"],
    )
    def test_control_characters_refused_early(self, make, control):
        """A control character is refused when the constraint is made, naming the constraint."""
        with pytest.raises(UsageError, match="control character") as excinfo:
            make(f"a{control}b")
        name = getattr(make, "__name__", "Ivoid")
        assert (name if name != "<lambda>" else "Ivoid") in str(excinfo.value)


# --- the query ---------------------------------------------------------------------------


class TestQuery:
    def test_shape(self):
        """One row per resource: exactly the rr.resource columns, no join, no GROUP BY, by ivoid."""
        query = build_query(waveband="radio")
        lines = query.split("\n")
        assert lines[0] == "SELECT " + ", ".join(RESOURCE_COLUMNS)
        assert lines[1] == "FROM rr.resource"
        assert lines[-1] == "ORDER BY ivoid"
        assert "GROUP BY" not in query
        assert "JOIN" not in query
        assert RESOURCE_COLUMNS == (
            "ivoid", "res_type", "created", "short_name", "res_title", "updated",
            "content_level", "res_description", "reference_url", "creator_seq", "content_type",
            "source_format", "source_value", "res_version", "region_of_regard", "waveband",
            "rights",
        )  # fmt: skip

    def test_every_constraint_is_a_resource_condition_or_an_ivoid_subquery(self):
        """Each condition is on rr.resource columns or ivoid IN (...): rows never multiply."""
        everything = build_query(
            Freetext("star"),
            Author("%Hubble%"),
            Servicetype("tap"),
            Waveband("optical"),
            Datamodel("obscore"),
            Ivoid("ivo://x/y"),
            UCD("pos.eq.ra"),
            UAT("galaxies"),
            Spatial("0/0-11", intersect="overlaps"),
            Spectral((5000 * u.AA, 6000 * u.AA)),
            Temporal((50000, 60000)),
        )
        conditions = where(everything).split("\n  AND ")
        assert len(conditions) == 11
        for condition in conditions:
            assert condition.startswith(
                ("(ivoid IN (", "(1 = ivo_hashlist_has(waveband", "(ivoid = ")
            )
        # Subqueries select ivoid only, with DISTINCT.
        assert set(re.findall(r"SELECT (\w+ \w+)", where(everything))) == {"DISTINCT ivoid"}

    def test_maxrec(self):
        """maxrec is a TOP clause."""
        assert build_query(waveband="radio", maxrec=25).startswith("SELECT TOP 25 ivoid, ")
        assert "TOP" not in build_query(waveband="radio")

    @pytest.mark.parametrize("maxrec", [0, -1, True, 2.5, "10"])
    def test_bad_maxrec(self, maxrec):
        """maxrec must be a positive integer."""
        with pytest.raises(UsageError, match="maxrec"):
            build_query(waveband="radio", maxrec=maxrec)

    def test_constraints_are_anded_in_order(self):
        """Positional constraints first, then keywords, each parenthesised and AND-ed."""
        query = build_query(Waveband("EUV"), author="%Hubble%")
        assert where(query) == (
            "(1 = ivo_hashlist_has(waveband, 'euv'))\n"
            "  AND (ivoid IN (SELECT DISTINCT ivoid FROM rr.res_role"
            " WHERE role_name LIKE '%Hubble%' AND base_role = 'creator'))"
        )

    def test_no_constraint(self):
        """An empty search is refused (pyvo refuses it too); None keywords do not count."""
        with pytest.raises(UsageError, match="at least one constraint"):
            build_query()
        with pytest.raises(UsageError, match="at least one constraint"):
            build_query(servicetype=None, maxrec=10)

    def test_unknown_keyword(self):
        """An unknown keyword is named, and the valid ones are listed."""
        with pytest.raises(UsageError) as excinfo:
            build_query(wavebands="radio")
        message = str(excinfo.value)
        assert "'wavebands'" in message
        assert (
            "author, datamodel, ivoid, keywords, servicetype, spatial, spectral, temporal,"
            " uat, ucd, waveband"
        ) in message

    def test_not_a_constraint(self):
        """Positional arguments must be constraints (or strings, which are Freetext)."""
        with pytest.raises(UsageError, match="not a registry constraint"):
            build_query(42)  # type: ignore[arg-type]
        assert build_query("star") == build_query(Freetext("star"))

    @pytest.mark.parametrize(
        ("keywords", "objects"),
        [
            ({"keywords": "white dwarf"}, [Freetext("white dwarf")]),
            ({"keywords": ["blazar", "Fermi"]}, [Freetext("blazar", "Fermi")]),
            ({"author": "%Hubble%"}, [Author("%Hubble%")]),
            ({"servicetype": "tap"}, [Servicetype("tap")]),
            ({"servicetype": ("scs", "sia2")}, [Servicetype("scs", "sia2")]),
            ({"waveband": ["Radio", "Millimeter"]}, [Waveband("Radio", "Millimeter")]),
            ({"datamodel": "obscore"}, [Datamodel("obscore")]),
            ({"ivoid": ["ivo://a/b", "ivo://c/d"]}, [Ivoid("ivo://a/b", "ivo://c/d")]),
            ({"ucd": "phot.mag;em.ir.%"}, [UCD("phot.mag;em.ir.%")]),
            ({"uat": "solar-flares"}, [UAT("solar-flares")]),
            ({"spatial": (10, 20, 1)}, [Spatial((10, 20, 1))]),
            ({"spatial": [1, 2, 3, 4, 5, 6]}, [Spatial([1, 2, 3, 4, 5, 6])]),
            ({"spectral": (1e-19, 2e-19)}, [Spectral((1e-19, 2e-19))]),
            ({"temporal": [54130, 54200]}, [Temporal((54130, 54200))]),
            (
                {"keywords": "quasar", "waveband": "x-ray", "servicetype": "tap"},
                [Freetext("quasar"), Waveband("x-ray"), Servicetype("tap")],
            ),
        ],
    )
    def test_keyword_and_positional_forms_agree(self, keywords, objects):
        """Every keyword builds the same query as its constraint object."""
        assert build_query(**keywords) == build_query(*objects)
        assert [type(c) for c in keywords_to_constraints(**keywords)] == [type(o) for o in objects]

    def test_keyword_arity(self):
        """A list where the constraint takes one value is a UsageError, not a TypeError."""
        with pytest.raises(UsageError, match="author="):
            build_query(author=["a%", "b%"])

    def test_extra_tables_become_a_joined_subquery(self):
        """pyvo-style _extra_tables are joined inside a subquery, so rows never multiply."""

        class Subject(Constraint):
            _extra_tables = ("rr.res_subject",)

            def __init__(self, subject):
                self._condition = "res_subject = {s}"
                self._fillers = {"s": subject}

        assert where(build_query(Subject("x"))) == (
            "(ivoid IN (SELECT DISTINCT ivoid FROM rr.resource NATURAL LEFT OUTER JOIN"
            " rr.res_subject WHERE res_subject = 'x'))"
        )


class TestUserConstraints:
    def test_seed_uat_concept(self):
        """The pyVO course's UATConcept, written the pyvo way, works unchanged."""

        class UATConcept(SubqueriedConstraint):
            _keyword = "uat"
            _subquery_table = "rr.subject_uat"

            def __init__(self, uat_id):
                self._condition = "uat_concept={uat_id}"
                self._fillers = {"uat_id": uat_id}

        query = build_query(UATConcept("x-ray-binary-stars"), servicetype="tap")
        assert where(query).startswith(
            "(ivoid IN (SELECT DISTINCT ivoid FROM rr.subject_uat"
            " WHERE uat_concept='x-ray-binary-stars'))\n  AND "
        )
        assert repr(UATConcept("a")) == "UATConcept(uat_id='a')"
        # The built-in "uat" keyword still means the built-in UAT constraint.
        assert isinstance(keywords_to_constraints(uat="galaxies")[0], UAT)
        with pytest.raises(UsageError, match=r"UATConcept \(uat_id\)"):
            build_query(UATConcept("bad\x00"))

    def test_plain_constraint_and_feature_aware_override(self):
        """A plain template, and a get_search_condition that looks at the features."""

        class Recent(Constraint):
            def __init__(self, when):
                self._condition = "updated > {when}"
                self._fillers = {"when": when}

        class NeedsCast(Constraint):
            def get_search_condition(self, features):
                if not features.has_udf("gavo_specconv"):
                    raise RegistryFeatureMissing("the gavo_specconv UDF", "NeedsCast")
                return "1 = 1"

        assert where(build_query(Recent(dt.datetime(2024, 1, 2, tzinfo=dt.UTC)))) == (
            "(updated > '2024-01-02T00:00:00')"
        )
        with pytest.raises(RegistryFeatureMissing, match="gavo_specconv"):
            build_query(NeedsCast())

    def test_abstract(self):
        """Constraints without a template say so."""
        with pytest.raises(NotImplementedError):
            Constraint().get_search_condition(DEFAULT_FEATURES)

        class NoTable(SubqueriedConstraint):
            _condition = "x = 1"

        with pytest.raises(NotImplementedError, match="_subquery_table"):
            NoTable().get_search_condition(DEFAULT_FEATURES)


# --- the constraints, one by one, against pyvo ------------------------------------------


class _PyvoLanguage:
    def __init__(self, features):
        self.features = features

    def get_feature(self, kind, form):
        return (kind, form) in self.features


class _PyvoService:
    """What pyvo's rtcons needs of a TAP service (as pyvo's own tests fake it)."""

    def __init__(self, features, tables):
        self.tables = tables
        language = _PyvoLanguage(features)
        self._capability = type("Cap", (), {"get_adql": lambda _self: language})()

    def get_tap_capability(self):
        return self._capability


PYVO_FULL = _PyvoService(
    {
        ("ivo://ivoa.net/std/TAPRegExt#features-adql-sets", "UNION"),
        ("ivo://org.gavo.dc/std/exts#extra-adql-keywords", "MOC"),
    },
    {"rr.stc_spatial": None, "rr.stc_spectral": None, "rr.stc_temporal": None},
)


@pytest.fixture(name="rtcons")
def _rtcons(monkeypatch):
    """pyvo's constraint module, with its vocabularies filled in (no downloads)."""
    module = pytest.importorskip("pyvo.registry.rtcons")
    monkeypatch.setattr(module.Waveband, "_legal_terms", {t.lower() for t in MESSENGERS})
    uat = {"solar-flares": {"wider": ["solar-activity"], "narrower": []}}
    monkeypatch.setattr(module.UAT, "_uat", uat)
    return module


def ours(constraint: Constraint, features: RegistryFeatures = DEFAULT_FEATURES) -> str:
    return constraint.get_search_condition(features)


class TestAgainstPyvo:
    """For the same input, our condition selects what pyvo's does (compared structurally)."""

    @pytest.mark.parametrize(
        "make",
        [
            lambda m: m.Freetext("star"),
            lambda m: m.Freetext("\N{GREEK SMALL LETTER ALPHA} Cen's planets"),
            lambda m: m.Freetext("gamma", "ray", "burst"),
            lambda m: m.Author("%Hubble%"),
            lambda m: m.Servicetype("scs"),
            lambda m: m.Servicetype("http://extstandards/invention", "sia"),
            lambda m: m.Servicetype("conesearch", "sia2"),
            lambda m: m.Servicetype("hips"),
            lambda m: m.Servicetype("ssap", "table", "line").include_auxiliary_services(),
            lambda m: m.Servicetype("conesearch", "sia2").include_auxiliary_services(),
            lambda m: m.Waveband("Infrared", "EUV"),
            lambda m: m.Waveband("oPtIcAl"),
            lambda m: m.Datamodel("ObsCore"),
            lambda m: m.Datamodel("epntap"),
            lambda m: m.Datamodel("regtap"),
            lambda m: m.Datamodel("obscore_new"),
            lambda m: m.Ivoid("ivo://example/some_path"),
            lambda m: m.UCD("phot.mag;em.opt.%", "phot.mag;em.ir.%"),
            lambda m: m.UAT("solar-flares"),
            lambda m: m.Spatial([23, -40]),
            lambda m: m.Spatial([23, -40, 0.25], order=7),
            lambda m: m.Spatial([23, -40, 26, -39, 25, -43]),
            lambda m: m.Spatial("0/1-3 3/"),
            lambda m: m.Spatial("0/1-3", intersect="enclosed"),
            lambda m: m.Spatial("0/1-3", intersect="overlaps"),
            lambda m: m.Spatial(SkyCoord(3 * u.deg, -30 * u.deg)),
            lambda m: m.Spatial((SkyCoord(3 * u.deg, -30 * u.deg), 180 * u.arcmin)),
        ],
    )
    def test_same_condition(self, rtcons, make):
        """pyvo's condition, normalised, is ours (inside the same subquery where pyvo joins)."""
        theirs = make(rtcons).get_search_condition(PYVO_FULL)
        mine = ours(make(rc))
        assert normal(theirs) in normal(mine)
        assert sorted(literals(theirs)) == sorted(literals(mine))

    def test_ivoid(self, rtcons):
        """Several ivoids: pyvo ORs equalities, we write IN; same lower-cased literals."""
        theirs = rtcons.Ivoid("ivo://A/b", "ivo://c/D").get_search_condition(PYVO_FULL)
        mine = ours(Ivoid("ivo://A/b", "ivo://c/D"))
        assert literals(theirs) == literals(mine) == ["ivo://a/b", "ivo://c/d"]
        assert mine == "ivoid IN ('ivo://a/b', 'ivo://c/d')"

    @pytest.mark.parametrize(
        "spec",
        [
            1e-19,
            5 * u.eV,
            5000 * u.AA,
            2 * u.GHz,
            (1e-10 * u.erg, 2e-10 * u.erg),
            (20 * u.cm, 22 * u.cm),
            (88 * u.MHz, 102 * u.MHz),
        ],
        ids=repr,
    )
    def test_spectral(self, rtcons, spec):
        """Same joules as pyvo; intervals are sorted (pyvo leaves wavelength bands reversed)."""
        theirs = rtcons.Spectral(spec).get_search_condition(PYVO_FULL)
        mine = ours(Spectral(spec))
        assert sorted(numbers_in(theirs)) == pytest.approx(sorted(numbers_in(mine)), rel=1e-12)
        energies = [number for number in numbers_in(mine) if number < 1e-3]  # not the "1 ="
        assert energies == sorted(energies)
        shape = re.sub(r"\b\d[\w.+-]*", "N", normal(theirs))
        assert shape in re.sub(r"\b\d[\w.+-]*", "N", normal(mine))

    @pytest.mark.parametrize(
        "times",
        [
            (54130, 54200),
            Time("2022-01-10"),
            (Time(2459000, format="jd"), Time(59002, format="mjd")),
        ],
        ids=repr,
    )
    def test_temporal(self, rtcons, times):
        """Same MJDs and shape as pyvo."""
        theirs = rtcons.Temporal(times).get_search_condition(PYVO_FULL)
        mine = ours(Temporal(times))
        assert numbers_in(theirs) == pytest.approx(numbers_in(mine))
        assert normal(theirs).replace("54130.0", "x") == normal(mine).replace("54130.0", "x")

    def test_keywords(self, rtcons):
        """Our search keywords are exactly pyvo's."""
        ours_keywords = set(rc._KEYWORDS)
        assert ours_keywords == set(rtcons._KEYWORD_TO_CONSTRAINT)
        for keyword, cls in rc._KEYWORDS.items():
            assert cls.__name__ == rtcons._KEYWORD_TO_CONSTRAINT[keyword].__name__
            assert cls.takes_sequence == rtcons._KEYWORD_TO_CONSTRAINT[keyword].takes_sequence

    def test_service_types(self, rtcons):
        """Every pyvo service-type name maps to the same standard id or LIKE pattern."""
        for name, ivoid in rtcons.SERVICE_TYPE_MAP.items():
            assert SERVICE_TYPES[name].ivoid == ivoid
            assert SERVICE_TYPES[name].pattern is None
        for name, (pattern, aux) in rtcons.NEW_STYLE_STDIDS.items():
            assert SERVICE_TYPES[name].pattern == pattern
            assert SERVICE_TYPES[name].aux_pattern == aux

    def test_service_types_agree_with_protocols(self):
        """The registry's table and the protocols' standard ids say the same."""
        for protocol, ivoid in STANDARD_IDS.items():
            assert SERVICE_TYPES[protocol.value].ivoid == ivoid


# --- per constraint: shapes, features, errors ---------------------------------------------

NO_UNION = RegistryFeatures(union=False)
ADQL20 = RegistryFeatures(adql_versions=frozenset({"2.0"}))


class TestFreetext:
    def test_union_form(self):
        """With UNION: one IN over three UNION ALL branches per word, words AND-ed."""
        condition = ours(Freetext("white", "dwarf"))
        assert condition.count("UNION ALL") == 4
        parts = condition.split(" AND ivoid IN (")
        assert len(parts) == 2
        assert "res_subject ILIKE '%dwarf%'" in parts[1]

    def test_or_form_works_everywhere(self):
        """Without UNION: ORs on rr.resource and one subquery, no join, no qualified columns."""
        condition = ours(Freetext("white", "dwarf"), NO_UNION)
        assert condition == (
            "(1 = ivo_hasword(res_description, 'white') OR 1 = ivo_hasword(res_title, 'white')"
            " OR ivoid IN (SELECT DISTINCT ivoid FROM rr.res_subject"
            " WHERE res_subject ILIKE '%white%'))"
            " AND (1 = ivo_hasword(res_description, 'dwarf') OR 1 = ivo_hasword(res_title, 'dwarf')"
            " OR ivoid IN (SELECT DISTINCT ivoid FROM rr.res_subject"
            " WHERE res_subject ILIKE '%dwarf%'))"
        )
        query = build_query(Freetext("white"), features=NO_UNION)
        assert "UNION" not in query
        assert "JOIN" not in query
        assert "rr.res_subject.res_subject" not in query

    def test_without_ilike(self):
        """Without ILIKE (ADQL 2.0), subjects are matched with RegTAP's ivo_nocasematch."""
        features = RegistryFeatures(ilike=False)
        assert "1 = ivo_nocasematch(res_subject, '%star%')" in ours(Freetext("star"), features)
        assert "ILIKE" not in ours(Freetext("star"), features)
        with pytest.raises(RegistryFeatureMissing, match="ivo_nocasematch"):
            ours(Freetext("star"), RegistryFeatures(ilike=False, udfs=frozenset({"ivo_hasword"})))

    def test_needs_hasword(self):
        """Without ivo_hasword there is no full-text search."""
        with pytest.raises(RegistryFeatureMissing) as excinfo:
            ours(Freetext("star"), RegistryFeatures(udfs=frozenset()))
        assert excinfo.value.constraint == "Freetext"
        assert "ivo_hasword" in str(excinfo.value)

    @pytest.mark.parametrize("words", [(), ("",), ("  ",), (3,), ("ok", None)])
    def test_bad_words(self, words):
        """At least one word, each a non-blank string."""
        with pytest.raises(UsageError, match="Freetext"):
            Freetext(*words)

    def test_repr(self):
        """The repr reads like the call."""
        assert repr(Freetext("a", "b")) == "Freetext('a', 'b')"


class TestServicetype:
    def test_exact_and_patterns(self):
        """Short names map to lower-case standard ids; versioned ones are LIKE-matched."""
        condition = ours(Servicetype("scs", "sia2", "TAP", "ivo://IVOA.net/std/SSA"))
        assert condition == (
            "ivoid IN (SELECT DISTINCT ivoid FROM rr.capability WHERE standard_id IN"
            " ('ivo://ivoa.net/std/conesearch', 'ivo://ivoa.net/std/ssa', 'ivo://ivoa.net/std/tap')"
            " OR standard_id LIKE 'ivo://ivoa.net/std/sia#query-2.%')"
        )

    def test_auxiliary(self):
        """include_auxiliary_services adds #aux ids and aux patterns; the original is unchanged."""
        plain = Servicetype("tap", "sia2", "hips", "ivo://x.test/std#frag")
        aux = plain.include_auxiliary_services()
        assert aux.standard_ids == (
            "ivo://ivoa.net/std/tap",
            "ivo://ivoa.net/std/tap#aux",
            "ivo://x.test/std#frag",
        )
        assert aux.patterns == (
            "ivo://ivoa.net/std/hips#hips-1.%",
            "ivo://ivoa.net/std/sia#query-2.%",
            "ivo://ivoa.net/std/sia#query-aux-2.%",
        )
        assert plain.standard_ids == ("ivo://ivoa.net/std/tap", "ivo://x.test/std#frag")
        assert repr(aux).endswith(".include_auxiliary_services()")

    def test_includeaux_applies_to_every_servicetype(self):
        """includeaux=True is include_auxiliary_services() on each Servicetype constraint."""
        assert build_query(servicetype="tap", includeaux=True) == build_query(
            Servicetype("tap").include_auxiliary_services()
        )
        assert "#aux" not in build_query(servicetype="tap")
        assert build_query(waveband="radio", includeaux=True) == build_query(waveband="radio")

    def test_matches(self):
        """matches() tells which capabilities the constraint selects, LIKE patterns included."""
        constraint = Servicetype("sia2", "scs")
        assert constraint.matches("ivo://ivoa.net/std/SIA#query-2.0")
        assert constraint.matches("ivo://ivoa.net/std/conesearch")
        assert not constraint.matches("ivo://ivoa.net/std/sia")
        assert not constraint.matches("ivo://ivoa.net/std/sia#query-aux-2.0")
        assert constraint.include_auxiliary_services().matches(
            "ivo://ivoa.net/std/sia#query-aux-2.0"
        )
        assert not constraint.matches("ivo://ivoa.net/std/conesearch#aux")

    @pytest.mark.parametrize("name", ["image", "spectrum"])
    def test_deprecated_names(self, name):
        """pyvo's deprecated image/spectrum still work, with a DeprecationWarning."""
        with pytest.warns(DeprecationWarning, match=name):
            constraint = Servicetype(name)
        assert constraint.standard_ids == (SERVICE_TYPES[name].ivoid,)

    def test_unknown(self):
        """An unknown short name lists the known ones."""
        with pytest.raises(UsageError, match=r"'junk'.*scs, conesearch, sia") as excinfo:
            Servicetype("junk")
        assert "sia2" in str(excinfo.value)
        with pytest.raises(UsageError, match="at least one"):
            Servicetype()


class TestSimpleConstraints:
    def test_author(self):
        """Author is a case-sensitive LIKE on rr.res_role creators."""
        assert ours(Author("%Hubble%")) == (
            "ivoid IN (SELECT DISTINCT ivoid FROM rr.res_role"
            " WHERE role_name LIKE '%Hubble%' AND base_role = 'creator')"
        )

    def test_waveband(self):
        """Bands are lower-cased and OR-ed through ivo_hashlist_has."""
        assert ours(Waveband("Infrared", "EUV")) == (
            "1 = ivo_hashlist_has(waveband, 'infrared') OR 1 = ivo_hashlist_has(waveband, 'euv')"
        )
        with pytest.raises(RegistryFeatureMissing, match="ivo_hashlist_has"):
            ours(Waveband("radio"), RegistryFeatures(udfs=frozenset()))

    def test_unknown_waveband(self):
        """An unknown band lists the valid names."""
        with pytest.raises(UsageError) as excinfo:
            Waveband("ultraviolet")
        message = str(excinfo.value)
        assert "'ultraviolet'" in message
        assert ", ".join(MESSENGERS) in message
        with pytest.raises(UsageError, match="at least one band"):
            Waveband()

    def test_datamodel(self):
        """Several data models are OR-ed; obscore needs ivo_nocasematch, epntap does not."""
        both = ours(Datamodel("obscore", "EPNTAP"))
        assert both.startswith("(ivoid IN (SELECT DISTINCT ivoid FROM rr.res_detail WHERE ")
        assert ") OR ivoid IN (SELECT DISTINCT ivoid FROM rr.res_table WHERE " in both
        assert ours(Datamodel("obscore-new")) == ours(Datamodel("obscore_new"))
        no_udfs = RegistryFeatures(udfs=frozenset())
        assert "table_utype" in ours(Datamodel("epntap"), no_udfs)
        with pytest.raises(RegistryFeatureMissing, match="ivo_nocasematch"):
            ours(Datamodel("regtap"), no_udfs)
        with pytest.raises(UsageError, match="epntap, obscore, obscore_new, regtap"):
            Datamodel("junk")

    def test_ivoid(self):
        """One ivoid is an equality, several an IN list; must be ivo:// identifiers."""
        assert ours(Ivoid("IVO://Org.Gavo.DC/tap")) == "ivoid = 'ivo://org.gavo.dc/tap'"
        with pytest.raises(UsageError, match="not an IVOA identifier"):
            Ivoid("http://example.org")

    def test_ucd(self):
        """UCD patterns are OR-ed LIKEs on rr.table_column."""
        assert ours(UCD("phot.mag;em.opt.%", "pos.eq.ra")) == (
            "ivoid IN (SELECT DISTINCT ivoid FROM rr.table_column"
            " WHERE ucd LIKE 'phot.mag;em.opt.%' OR ucd LIKE 'pos.eq.ra')"
        )
        with pytest.raises(UsageError, match="UCD"):
            UCD()

    def test_uat(self):
        """UAT concepts are an IN list on rr.res_subject; expansion is refused with advice."""
        assert ours(UAT("Solar-Flares", "solar-activity")) == (
            "ivoid IN (SELECT DISTINCT ivoid FROM rr.res_subject"
            " WHERE res_subject IN ('solar-activity', 'solar-flares'))"
        )
        with pytest.raises(UsageError, match="expand_up/expand_down"):
            UAT("solar-flares", expand_down=1)
        with pytest.raises(UsageError, match="not a UAT concept"):
            UAT("solar flares")


class TestSpatial:
    @pytest.mark.parametrize(
        ("spec", "geometry"),
        [
            ((10, 20), "MOC(6, POINT(10.0, 20.0))"),
            ([10 * u.deg, 1200 * u.arcmin], "MOC(6, POINT(10.0, 20.0))"),
            (np.array([10.0, 20.0]), "MOC(6, POINT(10.0, 20.0))"),
            ((10, 20, 0.5), "MOC(6, CIRCLE(10.0, 20.0, 0.5))"),
            ((10, 20, 30 * u.arcmin), "MOC(6, CIRCLE(10.0, 20.0, 0.5))"),
            ([1, 2, 3, 4, 5, 6], "MOC(6, POLYGON(1.0, 2.0, 3.0, 4.0, 5.0, 6.0))"),
            ([(1, 2), (3, 4), (5, 6)], "MOC(6, POLYGON(1.0, 2.0, 3.0, 4.0, 5.0, 6.0))"),
            ("1/0  2/5-7,9\n", "MOC('1/0 2/5-7,9')"),
            (SkyCoord(3 * u.deg, -30 * u.deg), "MOC(6, POINT(3.0, -30.0))"),
            ((SkyCoord(3 * u.deg, -30 * u.deg), 1), "MOC(6, CIRCLE(3.0, -30.0, 1.0))"),
            (
                (SkyCoord(3 * u.deg, -30 * u.deg), 1 * u.rad),
                f"MOC(6, CIRCLE(3.0, -30.0, {math.degrees(1)!r}))",
            ),
        ],
        ids=repr,
    )
    def test_geometries(self, spec, geometry):
        """DALI points, circles, polygons, SkyCoords and ASCII MOCs; angles become degrees."""
        subquery = "ivoid IN (SELECT DISTINCT ivoid FROM rr.stc_spatial WHERE "
        assert ours(Spatial(spec)) == f"{subquery}1 = CONTAINS({geometry}, coverage))"

    def test_skycoord_frames_become_icrs(self):
        """A galactic SkyCoord is converted to ICRS degrees (pyvo would use l/b as ra/dec)."""
        centre = SkyCoord(l=0 * u.deg, b=0 * u.deg, frame="galactic")
        found = re.search(r"POINT\(([^,]+), ([^)]+)\)", ours(Spatial(centre)))
        assert found
        ra, dec = float(found[1]), float(found[2])
        assert ra == pytest.approx(266.405, abs=1e-3)
        assert dec == pytest.approx(-28.936, abs=1e-3)

    def test_intersect_and_order(self):
        """covers/enclosed/overlaps put coverage on the right side; order sets the MOC order."""
        assert "1 = CONTAINS(MOC(8, POINT(1.0, 2.0)), coverage)" in ours(Spatial((1, 2), order=8))
        assert "1 = CONTAINS(coverage, MOC('0/1'))" in ours(Spatial("0/1", intersect="enclosed"))
        assert "1 = INTERSECTS(coverage, MOC('0/1'))" in ours(Spatial("0/1", intersect="overlaps"))

    def test_inclusive(self):
        """inclusive also keeps resources declaring no (or a NULL) coverage."""
        assert ours(Spatial("0/1", inclusive=True)) == (
            "(ivoid IN (SELECT DISTINCT ivoid FROM rr.stc_spatial"
            " WHERE 1 = CONTAINS(MOC('0/1'), coverage))"
            " OR ivoid NOT IN (SELECT ivoid FROM rr.stc_spatial WHERE coverage IS NOT NULL))"
        )

    @pytest.mark.parametrize(
        ("features", "feature"),
        [
            (RegistryFeatures(moc=False), "the MOC function"),
            (RegistryFeatures(coverage_tables=frozenset()), "the rr.stc_spatial table"),
            (RegistryFeatures(geometry=frozenset({"POINT"})), "the CONTAINS function"),
            (RegistryFeatures(geometry=frozenset({"CONTAINS"})), "the CIRCLE function"),
        ],
    )
    def test_missing_features(self, features, feature):
        """Each missing feature is named, with the constraint."""
        with pytest.raises(RegistryFeatureMissing) as excinfo:
            build_query(Spatial((1, 2, 3)), features=features)
        assert excinfo.value.feature == feature
        assert excinfo.value.constraint == "Spatial"
        assert feature in str(excinfo.value)

    def test_unknown_tables_are_tried(self):
        """When the coverage tables are unknown, the query is built (and the server decides)."""
        unknown = RegistryFeatures(coverage_tables=None)
        assert "rr.stc_spatial" in build_query(Spatial("0/1"), features=unknown)
        assert SearchSpec((Spatial("0/1"),)).needs_table_list(unknown)
        assert not SearchSpec((Waveband("radio"),)).needs_table_list(unknown)
        assert not SearchSpec((Spatial("0/1"),)).needs_table_list(DEFAULT_FEATURES)

    def test_adql_20(self):
        """ADQL 2.0 registries get the coordinate system argument."""
        assert "CIRCLE('ICRS', 1.0, 2.0, 3.0)" in ours(Spatial((1, 2, 3)), ADQL20)

    @pytest.mark.parametrize(
        ("spec", "kwargs", "match"),
        [
            ((1, 2, 3, 4), {}, "4 numbers"),
            ((1, 2, 3, 4, 5), {}, "5 numbers"),
            ((1,), {}, "1 numbers"),
            ((10, 100), {}, "dec must be within"),
            ((10, 20, 0), {}, "radius must be in"),
            ((10, 20, 181), {}, "radius must be in"),
            ((10, 20, 1 * u.m), {}, "radius must be an angle"),
            ((math.nan, 20), {}, "ra must be finite"),
            ((10, math.inf, 1), {}, "dec must be finite"),
            ((True, 20), {}, "ra must be a number"),
            (("10", "20"), {}, "ra must be a number"),
            (SkyCoord([1, 2] * u.deg, [3, 4] * u.deg), {}, "must be scalar"),
            (np.zeros((2, 2)), {}, "shape"),
            ("M31", {}, "not an ASCII MOC"),
            ("0/1'; --", {}, "not an ASCII MOC"),
            (42, {}, "cannot use 42"),
            ((1, 2), {"intersect": "inside"}, "intersect must be one of"),
            ((1, 2), {"order": 30}, "order"),
            ((1, 2), {"order": True}, "order"),
            ((1, 2), {"order": 6.0}, "order"),
        ],
        ids=repr,
    )
    def test_bad_input(self, spec, kwargs, match):
        """Bad geometries are a UsageError saying what was wrong and what works."""
        with pytest.raises(UsageError, match=match) as excinfo:
            Spatial(spec, **kwargs)
        assert str(excinfo.value).startswith("Spatial")


class TestSpectralTemporal:
    def test_spectral_units(self):
        """Energies, wavelengths, frequencies and wavenumbers all become joules."""
        joules = (5 * u.eV).to_value(u.J)
        for spec in (
            5 * u.eV,
            (5 * u.eV).to(u.nm, u.spectral()),
            (5 * u.eV).to(u.THz, u.spectral()),
        ):
            assert numbers_in(ours(Spectral(spec)))[0] == pytest.approx(joules, rel=1e-12)
        wavenumber = (5 * u.eV).to(u.cm**-1, u.spectral())
        assert numbers_in(ours(Spectral(wavenumber)))[0] == pytest.approx(joules, rel=1e-9)

    def test_spectral_point_and_interval(self):
        """A value is BETWEEN the bounds; a band is an overlap, in increasing energy."""
        assert ours(Spectral(1e-19)) == (
            "ivoid IN (SELECT DISTINCT ivoid FROM rr.stc_spectral"
            " WHERE 1e-19 BETWEEN spectral_start AND spectral_end)"
        )
        band = ours(Spectral([6000, 5000] * u.AA))
        low, high = numbers_in(band)[1:]
        assert low < high
        assert "1 = ivo_interval_overlaps(spectral_start, spectral_end, " in band

    def test_spectral_features(self):
        """Intervals need ivo_interval_overlaps, everything needs rr.stc_spectral."""
        no_overlaps = RegistryFeatures(udfs=frozenset())
        assert "BETWEEN" in ours(Spectral(1e-19), no_overlaps)
        with pytest.raises(RegistryFeatureMissing, match="ivo_interval_overlaps"):
            ours(Spectral((1e-19, 2e-19)), no_overlaps)
        with pytest.raises(RegistryFeatureMissing, match=r"rr\.stc_spectral"):
            ours(Spectral(1e-19), RegistryFeatures(coverage_tables=frozenset({"rr.stc_spatial"})))

    def test_inclusive(self):
        """inclusive keeps resources without spectral or temporal coverage."""
        assert ours(Spectral(1e-19, inclusive=True)).endswith(
            " OR ivoid NOT IN (SELECT ivoid FROM rr.stc_spectral))"
        )
        assert ours(Temporal(50000, inclusive=True)).endswith(
            " OR ivoid NOT IN (SELECT ivoid FROM rr.stc_temporal))"
        )

    @pytest.mark.parametrize(
        "spec",
        [
            1 * u.s,
            -5 * u.eV,
            0,
            math.nan,
            True,
            "5 eV",
            (1, 2, 3),
            [1 * u.eV] * 3,
            np.ones((2, 2)) * u.eV,
        ],
        ids=repr,
    )
    def test_spectral_refused(self, spec):
        """Non-spectral units, non-positive or NaN energies, strings and odd shapes."""
        with pytest.raises(UsageError, match="Spectral"):
            Spectral(spec)

    @pytest.mark.parametrize(
        ("times", "expected"),
        [
            (54130, [54130.0]),
            (Time("2022-01-10"), [59589.0]),
            (dt.datetime(2022, 1, 10, 12, tzinfo=dt.UTC), [59589.5]),
            (dt.date(2022, 1, 10), [59589.0]),
            ((59002, Time(2459000, format="jd")), [58999.5, 59002.0]),
            (Time([59100.0, 59000.0], format="mjd"), [59000.0, 59100.0]),
        ],
        ids=repr,
    )
    def test_temporal_values(self, times, expected):
        """Times, datetimes and MJDs become MJD; intervals are sorted."""
        assert numbers_in(ours(Temporal(times)))[-len(expected) :] == pytest.approx(expected)

    @pytest.mark.parametrize(
        "times",
        [Time(["2020-01-01", "2021-01-01", "2022-01-01"]), "2020-01-01", math.inf, (1,), False],
        ids=repr,
    )
    def test_temporal_refused(self, times):
        """Strings, infinities, 3-element times and 1-tuples are refused."""
        with pytest.raises(UsageError, match="Temporal"):
            Temporal(times)

    def test_temporal_features(self):
        """Temporal needs rr.stc_temporal."""
        with pytest.raises(RegistryFeatureMissing, match=r"rr\.stc_temporal") as excinfo:
            build_query(temporal=50000, features=RegistryFeatures(coverage_tables=frozenset()))
        assert excinfo.value.constraint == "Temporal"


class TestSearchSpec:
    def test_requested_standard_ids(self):
        """The standard ids (and patterns) asked for, with includeaux applied."""
        spec = SearchSpec.from_arguments(servicetype=["tap", "sia2"], includeaux=True)
        assert spec.requested_standard_ids == (
            "ivo://ivoa.net/std/sia#query-2.%",
            "ivo://ivoa.net/std/sia#query-aux-2.%",
            "ivo://ivoa.net/std/tap",
            "ivo://ivoa.net/std/tap#aux",
        )
        assert SearchSpec.from_arguments(waveband="radio").requested_standard_ids == ()

    def test_wants_standard_id(self):
        """Capabilities are filtered by the standards asked for; all pass without servicetype."""
        spec = SearchSpec.from_arguments(servicetype="scs")
        assert spec.wants_standard_id("ivo://ivoa.net/std/ConeSearch")
        assert not spec.wants_standard_id("ivo://ivoa.net/std/tap")
        assert SearchSpec.from_arguments(keywords="x").wants_standard_id("ivo://ivoa.net/std/tap")

    def test_adql_is_build_query(self):
        """build_query is SearchSpec.adql; the spec keeps the constraints as given."""
        features = RegistryFeatures(union=False)
        spec = SearchSpec.from_arguments("star", servicetype="tap", maxrec=5, includeaux=True)
        assert spec.adql(features) == build_query(
            "star", servicetype="tap", maxrec=5, includeaux=True, features=features
        )
        assert isinstance(spec.constraints[0], Freetext)
        assert not spec.constraints[1].auxiliary  # type: ignore[attr-defined]
        assert spec.effective_constraints()[1].auxiliary  # type: ignore[attr-defined]

    def test_frozen(self):
        """A search spec is a value."""
        spec = SearchSpec.from_arguments(waveband="radio")
        with pytest.raises(dataclasses.FrozenInstanceError):
            spec.maxrec = 3  # type: ignore[misc]

    def test_feature_errors_come_from_adql(self):
        """Feature checks happen when rendering for a registry, not when building the spec."""
        spec = SearchSpec.from_arguments(spatial="0/1")
        with pytest.raises(RegistryFeatureMissing):
            spec.adql(RegistryFeatures(moc=False))
        assert "MOC('0/1')" in spec.adql()


def test_all_is_complete():
    """The module's __all__ lists its public names and nothing else."""
    public = {
        name
        for name, value in vars(rc).items()
        if not name.startswith("_")
        and getattr(value, "__module__", rc.__name__) == rc.__name__
        and not isinstance(value, type(rc))
    }
    assert public - {"annotations"} <= set(rc.__all__)
    assert all(hasattr(rc, name) for name in rc.__all__)
