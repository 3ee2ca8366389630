"""RegTAP search constraints and the one query they build (sans-I/O).

Each constraint is a condition on ``rr.resource`` or an ``ivoid IN (SELECT ...)``
subquery on another ``rr`` table, so the query returns exactly one row per resource with no
join and no ``GROUP BY`` (pyvo joins capabilities and interfaces in and groups by every
resource column; vosweep fetches capabilities in a second, batched query). The
constraints, their keywords and their meaning are pyvo's (``pyvo.registry.rtcons``),
and a constraint is subclassed the way pyvo's is::

    class UATConcept(SubqueriedConstraint):
        _keyword = "uat"
        _subquery_table = "rr.subject_uat"

        def __init__(self, uat_id):
            self._condition = "uat_concept={uat_id}"
            self._fillers = {"uat_id": uat_id}

Caller values only ever enter a query as literals made by `sql_literal` (through
``_fillers`` or directly), never as template text: no value can change a query's
structure.

The query shape adapts to the registry's `RegistryFeatures`, and a constraint that needs a
feature the registry lacks raises `vosweep.errors.RegistryFeatureMissing` before anything
is sent.
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
import numbers
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.time import Time

from vosweep.errors import RegistryFeatureMissing, UsageError
from vosweep.registry._adql import call, number_literal, sql_literal, string_literal
from vosweep.registry.features import DEFAULT_FEATURES, RegistryFeatures

__all__ = [
    "MESSENGERS",
    "RESOURCE_COLUMNS",
    "SERVICE_TYPES",
    "UAT",
    "UCD",
    "Author",
    "Constraint",
    "Datamodel",
    "Freetext",
    "Ivoid",
    "SearchSpec",
    "Servicetype",
    "Spatial",
    "Spectral",
    "StandardId",
    "SubqueriedConstraint",
    "Temporal",
    "Waveband",
    "build_query",
    "keywords_to_constraints",
    "sql_literal",
]

#: The ``rr.resource`` columns a search returns, in this order.
RESOURCE_COLUMNS = (
    "ivoid",
    "res_type",
    "created",
    "short_name",
    "res_title",
    "updated",
    "content_level",
    "res_description",
    "reference_url",
    "creator_seq",
    "content_type",
    "source_format",
    "source_value",
    "res_version",
    "region_of_regard",
    "waveband",
    "rights",
)


class StandardId(NamedTuple):
    """The standard a service type stands for, and how RegTAP rows are matched to it.

    Attributes:
        ivoid: The standard id of the capability (lower-case, as RegTAP stores them).
        pattern: For standards that put a minor version in the id (``sia#query-2.0``): the
            ``LIKE`` pattern matching every minor version. ``None``: exact match.
        aux_pattern: The ``LIKE`` pattern of the auxiliary capability of such a standard.
            Classic ids have their auxiliary id at ``ivoid + "#aux"``.
    """

    ivoid: str
    pattern: str | None = None
    aux_pattern: str | None = None


_STD = "ivo://ivoa.net/std/"
_SCS = StandardId(_STD + "conesearch")
_SIA = StandardId(_STD + "sia")
_SIA2 = StandardId(_STD + "sia#query-2.0", _STD + "sia#query-2.%", _STD + "sia#query-aux-2.%")
_SSA = StandardId(_STD + "ssa")
_SLAP = StandardId(_STD + "slap")
_TAP = StandardId(_STD + "tap")

#: Service-type short names (pyvo's, aliases included) and the standards they select.
SERVICE_TYPES: Mapping[str, StandardId] = MappingProxyType(
    {
        "scs": _SCS,
        "conesearch": _SCS,
        "sia": _SIA,
        "sia1": _SIA,
        "image": _SIA,
        "sia2": _SIA2,
        "ssa": _SSA,
        "ssap": _SSA,
        "spectrum": _SSA,
        "slap": _SLAP,
        "line": _SLAP,
        "tap": _TAP,
        "table": _TAP,
        "hips": StandardId(_STD + "hips#hips-1.0", _STD + "hips#hips-1.%"),
        "hats": StandardId(_STD + "hats#hats-1.0", _STD + "hats#hats-%"),
    }
)
#: Names pyvo deprecated because they promise more than they select (SIA1/SSA only).
_DEPRECATED_TYPES = MappingProxyType({"image": "sia", "spectrum": "ssa"})

#: The terms of the IVOA messenger vocabulary (http://www.ivoa.net/rdf/messenger).
MESSENGERS = (
    "Radio",
    "Millimeter",
    "Infrared",
    "Optical",
    "UV",
    "EUV",
    "X-ray",
    "Gamma-ray",
    "Neutrino",
    "Photon",
)

# --- helpers ---------------------------------------------------------------------------


def _shown(*args: Any, **kwargs: Any) -> str:
    parts = [repr(arg) for arg in args]
    parts += [f"{key}={value!r}" for key, value in kwargs.items()]
    return ", ".join(parts)


def _literal(who: str, value: Any) -> str:
    """`sql_literal`, with the constraint named in the error."""
    try:
        return sql_literal(value)
    except UsageError as exc:
        raise UsageError(f"{who}: {exc}") from None


def _text(who: str, value: Any, what: str) -> str:
    """A non-blank string argument, stripped."""
    if not isinstance(value, str):
        raise UsageError(f"{who}: {what} must be a string, got {value!r}")
    stripped = value.strip()
    if not stripped:
        raise UsageError(f"{who}: {what} must not be blank")
    _literal(who, stripped)  # refuse control characters now, not at query time
    return stripped


def _at_least_one(who: str, values: Sequence[Any], what: str) -> None:
    if not values:
        raise UsageError(f"{who} needs at least one {what}")


def _select_ivoids(table: str, condition: str) -> str:
    # S608: *table* is code, *condition* holds values only as literals from sql_literal.
    return f"SELECT DISTINCT ivoid FROM {table} WHERE {condition}"  # noqa: S608


def _subquery(table: str, condition: str) -> str:
    return f"ivoid IN ({_select_ivoids(table, condition)})"


def _require(available: bool | None, feature: str, constraint: Constraint) -> None:
    """Refuse when *feature* is known to be missing (None, "unknown", passes)."""
    if available is False:
        raise RegistryFeatureMissing(feature, type(constraint).__name__)


def _moc_order(order: Any) -> int:
    if (
        isinstance(order, bool)
        or not isinstance(order, numbers.Integral)
        or not 0 <= int(order) <= 29
    ):
        raise UsageError(f"Spatial: order must be an integer MOC order in [0, 29], got {order!r}")
    return int(order)


# --- the base classes ------------------------------------------------------------------


class Constraint:
    """A condition a resource must meet; the base class of every constraint.

    Subclass it as in pyvo: set ``_condition`` to a `str.format` template whose fields
    are filled from ``_fillers`` (a dict of plain Python values, turned into ADQL
    literals by `sql_literal`; never format values into the template yourself), name
    extra tables to join with ``rr.resource`` in ``_extra_tables``, and set ``_keyword``
    for the keyword form. For a condition on another table, prefer `SubqueriedConstraint`.
    Constraints that adapt to the registry override `get_search_condition`.

    Class attributes:
        takes_sequence: The keyword form passes a list or tuple whole, as one argument
            (for geometries and intervals), instead of as several arguments.
        requires_tables: ``rr`` tables the constraint needs that a registry may lack.
    """

    _keyword: ClassVar[str | None] = None
    _condition: str | None = None
    _fillers: Mapping[str, Any] | None = None
    _extra_tables: Sequence[str] = ()
    _shown_args: str | None = None

    takes_sequence: ClassVar[bool] = False
    requires_tables: ClassVar[tuple[str, ...]] = ()

    def get_search_condition(self, features: RegistryFeatures) -> str:
        """Return this constraint as an ADQL boolean expression for *features*' registry.

        Raises:
            RegistryFeatureMissing: The registry lacks something the constraint needs.
            UsageError: A filler value has no safe literal form.
        """
        del features  # a plain template does not depend on the registry
        if self._condition is None:
            raise NotImplementedError(
                f"{type(self).__name__} is abstract: set _condition (and _fillers) or"
                " override get_search_condition"
            )
        return self._condition.format(**self._get_sql_literals())

    def _get_sql_literals(self) -> dict[str, str]:
        """``_fillers`` as ADQL literals; the error names the constraint and the filler."""
        literals = {}
        for key, value in (self._fillers or {}).items():
            try:
                literals[key] = sql_literal(value)
            except UsageError as exc:
                raise UsageError(f"{type(self).__name__} ({key}): {exc}") from None
        return literals

    def __repr__(self) -> str:
        shown = self._shown_args
        if shown is None:
            shown = _shown(**dict(self._fillers or {}))
        return f"{type(self).__name__}({shown})"


class SubqueriedConstraint(Constraint):
    """A constraint on a table other than ``rr.resource``, as ``ivoid IN (SELECT ...)``.

    Set ``_subquery_table`` (the table, or a join of tables, having an ``ivoid`` column)
    besides ``_condition`` and ``_fillers``. A subquery never multiplies result rows,
    which a join with a 1:n table would.
    """

    _subquery_table: str | None = None

    def get_search_condition(self, features: RegistryFeatures) -> str:
        """Return ``ivoid IN (SELECT DISTINCT ivoid FROM <table> WHERE <condition>)``."""
        if self._subquery_table is None:
            raise NotImplementedError(
                f"{type(self).__name__} is abstract: set _subquery_table and _condition"
            )
        return _subquery(self._subquery_table, super().get_search_condition(features))


# --- the constraints -------------------------------------------------------------------


class Freetext(Constraint):
    """Words to find in a resource's title, description or subjects; all must match.

    Each word matches when ``ivo_hasword`` finds it in the title or the description (the
    registry's full-text search, usually case-insensitive with stemming) or when a subject
    contains it (case-insensitively). Phrases (several words in one string) work, but how
    they match differs between registries; prefer one word per argument.

    Query shape: with ``UNION``, each word is ``ivoid IN (<title hits> UNION ALL
    <description hits> UNION ALL <subject hits>)``, pyvo's form, which query planners run
    fastest. Without it, each word is ``(<title hit> OR <description hit> OR ivoid IN
    (<subject hits>))``: plain conditions on ``rr.resource`` and one subquery. pyvo's
    OR-form instead joins ``rr.res_subject`` into the main query and names
    ``rr.res_subject.res_subject``, which some registries reject (MAST's and GAVO's ADQL
    translators did, see pyvo PR #386); this form uses only core ADQL 2.0.
    """

    _keyword = "keywords"

    def __init__(self, *words: str) -> None:
        _at_least_one("Freetext", words, "word")
        self.words = tuple(_text("Freetext", word, "each word") for word in words)
        self._shown_args = _shown(*self.words)

    def get_search_condition(self, features: RegistryFeatures) -> str:
        """Return the per-word conditions, AND-ed, in the shape *features* allows."""
        _require(features.has_udf("ivo_hasword"), "the ivo_hasword UDF", self)
        if not features.ilike:
            _require(features.has_udf("ivo_nocasematch"), "the ivo_nocasematch UDF", self)
        return " AND ".join(self._word_condition(word, features) for word in self.words)

    @staticmethod
    def _word_condition(word: str, features: RegistryFeatures) -> str:
        literal = string_literal(word)
        pattern = string_literal(f"%{word}%")
        in_description = f"1 = ivo_hasword(res_description, {literal})"
        in_title = f"1 = ivo_hasword(res_title, {literal})"
        if features.ilike:
            in_subject = f"res_subject ILIKE {pattern}"
        else:
            in_subject = f"1 = ivo_nocasematch(res_subject, {pattern})"
        if features.union:
            branches = (
                _select_ivoids("rr.resource", in_description),
                _select_ivoids("rr.resource", in_title),
                _select_ivoids("rr.res_subject", in_subject),
            )
            return f"ivoid IN ({' UNION ALL '.join(branches)})"
        return f"({in_description} OR {in_title} OR {_subquery('rr.res_subject', in_subject)})"


class Author(SubqueriedConstraint):
    """A creator ("author") of the resource, as a case-sensitive SQL ``LIKE`` pattern.

    Names are written in many ways in the registry, so use wildcards generously:
    ``Author("%Hubble%")`` (``%`` is any run of characters, ``_`` any one character).
    """

    _keyword = "author"
    _subquery_table = "rr.res_role"

    def __init__(self, name: str) -> None:
        self.name = _text("Author", name, "the name pattern")
        self._condition = "role_name LIKE {auth} AND base_role = 'creator'"
        self._fillers = {"auth": self.name}
        self._shown_args = _shown(self.name)


class Servicetype(Constraint):
    """Resources with a capability of one of these service types (OR-ed).

    Short names (pyvo's): ``scs``/``conesearch``, ``sia``/``sia1``, ``sia2``,
    ``ssa``/``ssap``, ``slap``/``line``, ``tap``/``table``, ``hips``, ``hats``, and the
    deprecated ``image`` (SIA1 only) and ``spectrum`` (SSA only). Any standard ivoid (a URI
    with ``://``) works too; it is lower-cased, as RegTAP stores standard ids. Standards
    with a version in the id (``sia2``, ``hips``, ``hats``) match every minor version.

    The match is on the main capability only, so resources with only an auxiliary one
    (``tap#aux`` of a VizieR catalogue) are left out, which is what service discovery
    wants; `include_auxiliary_services` (or ``includeaux=True``) adds them.
    """

    _keyword = "servicetype"

    def __init__(self, *stds: str) -> None:
        _at_least_one("Servicetype", stds, "service type")
        standards = []
        for std in stds:
            name = _text("Servicetype", std, "a service type")
            if "://" in name:
                standards.append(StandardId(name.lower()))
                continue
            key = name.lower()
            if key not in SERVICE_TYPES:
                raise UsageError(
                    f"Servicetype: {std!r} is neither a standard ivoid (ivo://...) nor one of"
                    f" {', '.join(SERVICE_TYPES)}"
                )
            if key in _DEPRECATED_TYPES:
                warnings.warn(
                    f"servicetype {key!r} is deprecated (it selects"
                    f" {_DEPRECATED_TYPES[key]!r} services only); use"
                    f" {_DEPRECATED_TYPES[key]!r}",
                    DeprecationWarning,
                    stacklevel=2,
                )
            standards.append(SERVICE_TYPES[key])
        self.standards = tuple(standards)
        self.auxiliary = False
        self._shown_args = _shown(*(std.strip() for std in stds))

    def include_auxiliary_services(self) -> Servicetype:
        """Return a copy that also matches the auxiliary capabilities (``#aux``)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.auxiliary = True
        return clone

    @property
    def standard_ids(self) -> tuple[str, ...]:
        """The standard ids matched exactly, sorted (``#aux`` ones too when included)."""
        ids = {std.ivoid for std in self.standards if std.pattern is None}
        if self.auxiliary:
            # An id that already has a fragment has no auxiliary form.
            ids |= {f"{ivoid}#aux" for ivoid in ids if "#" not in ivoid}
        return tuple(sorted(ids))

    @property
    def patterns(self) -> tuple[str, ...]:
        """The ``LIKE`` patterns of versioned standard ids, sorted."""
        found = {std.pattern for std in self.standards if std.pattern is not None}
        if self.auxiliary:
            found |= {std.aux_pattern for std in self.standards if std.aux_pattern is not None}
        return tuple(sorted(found))

    def matches(self, standard_id: str) -> bool:
        """Return whether a capability's *standard_id* is one this constraint selects."""
        standard_id = standard_id.lower()
        return standard_id in self.standard_ids or any(
            _like(pattern).fullmatch(standard_id) for pattern in self.patterns
        )

    def get_search_condition(self, features: RegistryFeatures) -> str:
        """Return ``ivoid IN (SELECT ... FROM rr.capability WHERE standard_id ...)``."""
        del features
        fragments = []
        if self.standard_ids:
            fragments.append(f"standard_id IN {sql_literal(self.standard_ids)}")
        fragments += [f"standard_id LIKE {string_literal(p)}" for p in self.patterns]
        return _subquery("rr.capability", " OR ".join(fragments))

    def __repr__(self) -> str:
        suffix = ".include_auxiliary_services()" if self.auxiliary else ""
        return super().__repr__() + suffix


def _like(pattern: str) -> re.Pattern[str]:
    """A SQL ``LIKE`` pattern as a regular expression."""
    return re.compile(
        "".join(
            ".*" if char == "%" else "." if char == "_" else re.escape(char) for char in pattern
        ),
        re.DOTALL,
    )


class Waveband(Constraint):
    """Resources declaring one of these messengers (OR-ed), case-insensitively.

    Terms come from the IVOA messenger vocabulary: Radio, Millimeter, Infrared, Optical,
    UV, EUV, X-ray, Gamma-ray, Neutrino, Photon (`MESSENGERS`; pyvo downloads the
    vocabulary, vosweep keeps this copy so that building a query needs no network). For
    selections by energy use `Spectral`, which fewer resources support.
    """

    _keyword = "waveband"
    valid_terms: ClassVar[tuple[str, ...]] = MESSENGERS

    def __init__(self, *bands: str) -> None:
        _at_least_one("Waveband", bands, "band")
        valid = {term.lower() for term in self.valid_terms}
        lowered = []
        for band in bands:
            term = _text("Waveband", band, "a band").lower()
            if term not in valid:
                raise UsageError(
                    f"Waveband: {band!r} is not in the IVOA messenger vocabulary; use one of"
                    f" {', '.join(self.valid_terms)} (any case)"
                )
            lowered.append(term)
        self.bands = tuple(lowered)
        self._shown_args = _shown(*self.bands)

    def get_search_condition(self, features: RegistryFeatures) -> str:
        """Return ``1 = ivo_hashlist_has(waveband, ...)`` for each band, OR-ed."""
        _require(features.has_udf("ivo_hashlist_has"), "the ivo_hashlist_has UDF", self)
        return " OR ".join(
            f"1 = ivo_hashlist_has(waveband, {string_literal(band)})" for band in self.bands
        )


class _DataModel(NamedTuple):
    table: str
    condition: str
    udf: str | None


_DM_DETAIL = "detail_xpath = '/capability/dataModel/@ivo-id' AND 1 = ivo_nocasematch(detail_value, "
_DATAMODELS: Mapping[str, _DataModel] = MappingProxyType(
    {
        # The obscore data model id has had several spellings: match them all.
        "obscore": _DataModel(
            "rr.res_detail", _DM_DETAIL + "'ivo://ivoa.net/std/obscore%')", "ivo_nocasematch"
        ),
        # Legacy pre-IVOA utypes too; utypes are lower-cased in RegTAP.
        "epntap": _DataModel(
            "rr.res_table",
            "table_utype LIKE 'ivo://vopdc.obspm/std/epncore#schema-2.%'"
            " OR table_utype LIKE 'ivo://ivoa.net/std/epntap#table-2.%'",
            None,
        ),
        "regtap": _DataModel(
            "rr.res_detail", _DM_DETAIL + "'ivo://ivoa.net/std/RegTAP#1.%')", "ivo_nocasematch"
        ),
        # Table-based ObsCore discovery; catalogue records only, so that full TAP services
        # listing the table in their tablesets stay out.
        "obscore_new": _DataModel(
            "rr.res_table NATURAL JOIN rr.resource",
            "table_utype LIKE 'ivo://ivoa.net/std/obscore#table-1.%'"
            " AND res_type = 'vs:catalogresource'",
            None,
        ),
    }
)


class Datamodel(Constraint):
    """TAP services holding tables of a well-known data model (several are OR-ed).

    ``obscore`` (declared ObsCore data model), ``epntap`` (EPN-TAP tables, current and
    legacy utypes), ``regtap`` (registries: where to send RegTAP queries), and
    ``obscore_new`` (ObsCore tables declared by table utype; may become ``obscore`` when
    the VO has migrated). Names are case-insensitive; ``obscore-new`` works too.
    """

    _keyword = "datamodel"

    def __init__(self, *dmnames: str) -> None:
        _at_least_one("Datamodel", dmnames, "data model")
        names = []
        for dmname in dmnames:
            key = _text("Datamodel", dmname, "a data model").lower().replace("-", "_")
            if key not in _DATAMODELS:
                raise UsageError(
                    f"Datamodel: unknown data model {dmname!r}; known are"
                    f" {', '.join(sorted(_DATAMODELS))}"
                )
            names.append(key)
        self.dmnames = tuple(names)
        self._shown_args = _shown(*self.dmnames)

    def get_search_condition(self, features: RegistryFeatures) -> str:
        """Return one subquery per data model, OR-ed."""
        parts = []
        for name in self.dmnames:
            model = _DATAMODELS[name]
            if model.udf is not None:
                _require(features.has_udf(model.udf), f"the {model.udf} UDF", self)
            parts.append(_subquery(model.table, model.condition))
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


class Ivoid(Constraint):
    """Resources with one of these IVOA identifiers (lower-cased, as RegTAP stores them)."""

    _keyword = "ivoid"

    def __init__(self, ivoid: str, *more_ivoids: str) -> None:
        ivoids = []
        for value in (ivoid, *more_ivoids):
            text = _text("Ivoid", value, "an ivoid").lower()
            if not text.startswith("ivo://"):
                raise UsageError(f"Ivoid: {value!r} is not an IVOA identifier (ivo://...)")
            ivoids.append(text)
        self.ivoids = tuple(ivoids)
        self._shown_args = _shown(*self.ivoids)

    def get_search_condition(self, features: RegistryFeatures) -> str:
        """Return ``ivoid = '...'`` or ``ivoid IN (...)``."""
        del features
        if len(self.ivoids) == 1:
            return f"ivoid = {string_literal(self.ivoids[0])}"
        return f"ivoid IN {sql_literal(self.ivoids)}"


class UCD(SubqueriedConstraint):
    """Resources with a table column whose UCD matches one of these ``LIKE`` patterns.

    ``UCD("phot.mag;em.ir.%")`` finds any infrared magnitude.
    """

    _keyword = "ucd"
    _subquery_table = "rr.table_column"

    def __init__(self, *patterns: str) -> None:
        _at_least_one("UCD", patterns, "pattern")
        self.patterns = tuple(_text("UCD", pattern, "each pattern") for pattern in patterns)
        self._condition = " OR ".join(f"ucd LIKE {{ucd{i}}}" for i in range(len(self.patterns)))
        self._fillers = {f"ucd{i}": pattern for i, pattern in enumerate(self.patterns)}
        self._shown_args = _shown(*self.patterns)


class UAT(SubqueriedConstraint):
    """Resources with one of these Unified Astronomy Thesaurus concepts as a subject.

    Concepts are the lower-case dashed identifiers of http://www.ivoa.net/rdf/uat, such as
    ``x-ray-transient-sources``. pyvo can widen or narrow a concept through the UAT
    hierarchy (``expand_up``, ``expand_down``), which needs the vocabulary downloaded;
    vosweep builds queries without network access and only supports the non-expanding
    form: list the wider or narrower concepts you want yourself.
    """

    _keyword = "uat"
    _subquery_table = "rr.res_subject"

    def __init__(self, *uat_keywords: str, expand_up: int = 0, expand_down: int = 0) -> None:
        if expand_up or expand_down:
            raise UsageError(
                "UAT: expand_up/expand_down need the UAT vocabulary, which vosweep does not"
                " download; pass the wider or narrower concepts as further arguments"
            )
        _at_least_one("UAT", uat_keywords, "concept")
        concepts = []
        for keyword in uat_keywords:
            concept = _text("UAT", keyword, "a concept").lower()
            if any(char.isspace() for char in concept):
                raise UsageError(
                    f"UAT: {keyword!r} is not a UAT concept identifier (dashed, no spaces,"
                    " like 'x-ray-transient-sources')"
                )
            concepts.append(concept)
        self.concepts = tuple(concepts)
        self._condition = "res_subject IN {query_terms}"
        self._fillers = {"query_terms": frozenset(self.concepts)}
        self._shown_args = _shown(*self.concepts)


# --- coverage (RegTAP 1.2) -------------------------------------------------------------


def _degrees(who: str, value: Any, what: str) -> float:
    """Degrees from a number or an angle `Quantity`."""
    if isinstance(value, u.Quantity):
        if value.unit.physical_type != "angle" or not value.isscalar:
            raise UsageError(f"{who}: {what} must be an angle, got {value!r}")
        number = float(value.to_value(u.deg))
    elif isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        number = float(value)
    else:
        raise UsageError(f"{who}: {what} must be a number of degrees or an angle, got {value!r}")
    if not math.isfinite(number):
        raise UsageError(f"{who}: {what} must be finite, got {value!r}")
    return number


def _position(who: str, ra: Any, dec: Any) -> tuple[float, float]:
    ra_deg, dec_deg = _degrees(who, ra, "ra"), _degrees(who, dec, "dec")
    if not -90.0 <= dec_deg <= 90.0:
        raise UsageError(f"{who}: dec must be within [-90, 90] degrees, got {dec_deg}")
    return ra_deg, dec_deg


def _skycoord_position(who: str, coord: SkyCoord) -> tuple[float, float]:
    if not coord.isscalar:
        raise UsageError(f"{who}: a SkyCoord position must be scalar, got {len(coord)} positions")
    icrs = coord.icrs
    return float(icrs.ra.deg), float(icrs.dec.deg)


def _radius(who: str, value: Any) -> float:
    radius = _degrees(who, value, "the radius")
    if not 0.0 < radius <= 180.0:
        raise UsageError(f"{who}: the radius must be in (0, 180] degrees, got {radius}")
    return radius


#: ASCII MOC: orders and cell ranges, e.g. ``"0/1-3 3/"`` or ``"1/0 2/5-7,9"``.
_MOC_ASCII = re.compile(r"\d+/[\d\s,/-]*")

_GEOMETRY_HELP = (
    "give a point (ra, dec), a circle (ra, dec, radius), a polygon (ra1, dec1, ra2, dec2,"
    " ra3, dec3, ...) or a sequence of at least 3 (ra, dec) vertices, a SkyCoord,"
    " (SkyCoord, radius), or an ASCII MOC string such as '0/1-3 3/'; angles in degrees or"
    " as astropy quantities"
)


def _is_pair(value: Any) -> bool:
    return isinstance(value, SkyCoord) or (
        isinstance(value, Sequence | np.ndarray) and not isinstance(value, str) and len(value) == 2
    )


def _geometry(spec: Any) -> tuple[str, tuple[float, ...] | str]:
    """Parse a DALI-style geometry into (shape, degrees), or ("MOC", ascii)."""
    who = "Spatial"
    if isinstance(spec, str):
        moc = " ".join(spec.split())
        if not _MOC_ASCII.fullmatch(moc):
            raise UsageError(f"{who}: {spec!r} is not an ASCII MOC; {_GEOMETRY_HELP}")
        return "MOC", moc
    if isinstance(spec, SkyCoord):
        return "POINT", _skycoord_position(who, spec)
    if isinstance(spec, np.ndarray):
        if spec.ndim != 1:
            raise UsageError(f"{who}: cannot use an array of shape {spec.shape}; {_GEOMETRY_HELP}")
        spec = list(spec)
    if not isinstance(spec, Sequence):
        raise UsageError(f"{who}: cannot use {spec!r}; {_GEOMETRY_HELP}")
    items = list(spec)
    if len(items) == 2 and isinstance(items[0], SkyCoord):
        center = _skycoord_position(who, items[0])
        return "CIRCLE", (*center, _radius(who, items[1]))
    if len(items) >= 3 and all(_is_pair(item) for item in items):
        vertices: list[float] = []
        for item in items:
            if isinstance(item, SkyCoord):
                vertices += _skycoord_position(who, item)
            else:
                vertices += _position(who, item[0], item[1])
        return "POLYGON", tuple(vertices)
    if len(items) == 2:
        return "POINT", _position(who, *items)
    if len(items) == 3:
        return "CIRCLE", (*_position(who, items[0], items[1]), _radius(who, items[2]))
    if len(items) >= 6 and len(items) % 2 == 0:
        flat: list[float] = []
        for index in range(0, len(items), 2):
            flat += _position(who, items[index], items[index + 1])
        return "POLYGON", tuple(flat)
    raise UsageError(f"{who}: cannot use {len(items)} numbers; {_GEOMETRY_HELP}")


_INTERSECT = MappingProxyType(
    {
        "covers": ("CONTAINS", "1 = CONTAINS({geom}, coverage)"),
        "enclosed": ("CONTAINS", "1 = CONTAINS(coverage, {geom})"),
        "overlaps": ("INTERSECTS", "1 = INTERSECTS(coverage, {geom})"),
    }
)


class Spatial(Constraint):
    """Resources whose declared sky coverage (RegTAP 1.2 ``rr.stc_spatial``) fits a geometry.

    Geometries are DALI-style, in ICRS degrees: ``(ra, dec)`` a point, ``(ra, dec,
    radius)`` a circle, ``(ra1, dec1, ..., ra3, dec3, ...)`` or a sequence of ``(ra,
    dec)`` vertices a polygon, a `SkyCoord` a point (converted to ICRS), ``(SkyCoord,
    radius)`` a circle, and a string an ASCII MOC. Angles may be astropy quantities.
    Geometries become MOCs of *order* (6 is about a degree, RegTAP's recommended coverage
    resolution) on the server.

    Args:
        geom_spec: The geometry.
        order: MOC order for non-MOC geometries, 0 to 29.
        intersect: ``covers`` (the coverage contains the geometry; the default),
            ``enclosed`` (the coverage lies within it) or ``overlaps``.
        inclusive: Keep resources that declare no spatial coverage, too.

    Needs the MOC function, CONTAINS or INTERSECTS, the shape's geometry function and the
    ``rr.stc_spatial`` table; few resources declare coverage yet.
    """

    _keyword = "spatial"
    takes_sequence = True
    requires_tables = ("rr.stc_spatial",)

    def __init__(
        self,
        geom_spec: Any,
        *,
        order: int = 6,
        intersect: str = "covers",
        inclusive: bool = False,
    ) -> None:
        self.order = _moc_order(order)
        if intersect not in _INTERSECT:
            raise UsageError(
                f"Spatial: intersect must be one of {', '.join(map(repr, _INTERSECT))},"
                f" got {intersect!r}"
            )
        self.intersect = intersect
        self.inclusive = bool(inclusive)
        self.shape, self.geometry = _geometry(geom_spec)
        self._shown_args = _shown(
            self.geometry, order=self.order, intersect=intersect, inclusive=self.inclusive
        )

    def get_search_condition(self, features: RegistryFeatures) -> str:
        """Return the coverage subquery; refuses registries without MOC or the table."""
        function, template = _INTERSECT[self.intersect]
        _require(features.moc, "the MOC function", self)
        _require(features.has_geometry(function), f"the {function} function", self)
        _require(features.has_table("rr.stc_spatial"), "the rr.stc_spatial table", self)
        if isinstance(self.geometry, str):
            geom = call("MOC", string_literal(self.geometry))
        else:
            _require(features.has_geometry(self.shape), f"the {self.shape} function", self)
            args = [number_literal(value) for value in self.geometry]
            if "2.1" not in features.adql_versions:
                args.insert(0, "'ICRS'")  # ADQL 2.0 requires the coordinate system
            geom = call("MOC", str(self.order), call(self.shape, *args))
        condition = _subquery("rr.stc_spatial", template.format(geom=geom))
        if self.inclusive:
            undeclared = "SELECT ivoid FROM rr.stc_spatial WHERE coverage IS NOT NULL"
            return f"({condition} OR ivoid NOT IN ({undeclared}))"
        return condition


def _interval(spec: Any, kind: type) -> tuple[Any, Any] | None:
    """The two ends of an interval spec, or None for a single value."""
    if isinstance(spec, tuple | list):
        if len(spec) != 2:
            raise UsageError(f"{kind.__name__}: an interval has 2 ends, got {len(spec)} values")
        return spec[0], spec[1]
    if isinstance(spec, Time | u.Quantity) and not spec.isscalar:
        if spec.shape != (2,):
            raise UsageError(
                f"{kind.__name__}: give one value or a (low, high) pair, got shape {spec.shape}"
            )
        return spec[0], spec[1]
    return None


def _joule(value: Any) -> float:
    """A particle energy in joules, RegTAP 1.2's spectral unit."""
    if isinstance(value, u.Quantity):
        try:
            joules = float(value.to_value(u.J, equivalencies=u.spectral()))
        except (u.UnitsError, TypeError):
            raise UsageError(
                f"Spectral: {value!r} is not an energy, wavelength or frequency"
            ) from None
    elif isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        joules = float(value)
    else:
        raise UsageError(
            f"Spectral: {value!r} must be an astropy Quantity (energy, wavelength, frequency)"
            " or a number of joules"
        )
    if not math.isfinite(joules) or joules <= 0:
        raise UsageError(f"Spectral: {value!r} is not a positive finite energy")
    return joules


def _mjd(value: Any) -> float:
    """Modified Julian Date, in the time's own scale (RegTAP 1.2 uses TDB; no conversion)."""
    if isinstance(value, Time):
        mjd = float(value.mjd)
    elif isinstance(value, dt.datetime | dt.date):
        if not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time())
        mjd = float(Time(value, scale="utc").mjd)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        mjd = float(value)
    else:
        raise UsageError(
            f"Temporal: {value!r} must be an astropy Time, a datetime or an MJD number"
        )
    if not math.isfinite(mjd):
        raise UsageError(f"Temporal: {value!r} is not a finite time")
    return mjd


class _Coverage(Constraint):
    """Spectral and Temporal: a value or an interval against a start/end column pair."""

    _table: ClassVar[str]
    _columns: ClassVar[tuple[str, str]]
    value: float | None
    interval: tuple[float, float] | None
    inclusive: bool

    def _set(self, spec: Any, convert: Any, inclusive: bool) -> None:
        ends = _interval(spec, type(self))
        if ends is None:
            self.value, self.interval = convert(spec), None
            shown = self.value
        else:
            low, high = sorted((convert(ends[0]), convert(ends[1])))
            self.value, self.interval = None, (low, high)
            shown = self.interval
        self.inclusive = bool(inclusive)
        self._shown_args = _shown(shown, inclusive=self.inclusive)

    def get_search_condition(self, features: RegistryFeatures) -> str:
        """Return the coverage subquery (``BETWEEN`` for a value, overlap for an interval)."""
        start, end = self._columns
        _require(features.has_table(self._table), f"the {self._table} table", self)
        if self.interval is None:
            condition = f"{number_literal(self.value)} BETWEEN {start} AND {end}"
        else:
            udf = "ivo_interval_overlaps"
            _require(features.has_udf(udf), f"the {udf} UDF", self)
            low, high = (number_literal(end_value) for end_value in self.interval)
            condition = f"1 = {udf}({start}, {end}, {low}, {high})"
        subquery = _subquery(self._table, condition)
        if self.inclusive:
            return f"({subquery} OR ivoid NOT IN (SELECT ivoid FROM {self._table}))"  # noqa: S608
        return subquery


class Spectral(_Coverage):
    """Resources whose declared spectral coverage (RegTAP 1.2) meets an energy or a band.

    Give a `Quantity` in any spectral unit (energy, wavelength, frequency, wavenumber),
    converted to joules of particle energy as RegTAP stores it, or a plain number of
    joules; or a ``(low, high)`` pair (any order, since wavelength and energy run
    opposite ways) for every resource overlapping the band. ``inclusive=True`` keeps
    resources that declare no spectral coverage. Few resources declare it yet;
    `Waveband` is the robust choice.
    """

    _keyword = "spectral"
    takes_sequence = True
    requires_tables = ("rr.stc_spectral",)
    _table = "rr.stc_spectral"
    _columns = ("spectral_start", "spectral_end")

    def __init__(self, spec: Any, *, inclusive: bool = False) -> None:
        self._set(spec, _joule, inclusive)


class Temporal(_Coverage):
    """Resources whose declared time coverage (RegTAP 1.2) meets an instant or an interval.

    Give an astropy `Time`, a `datetime` (UTC) or an MJD number; or a ``(start, end)``
    pair (or a two-element `Time`). Times are compared as MJD in their own scale (RegTAP
    uses TDB; the difference is about a minute, so relax constraints rather than rely on
    it). ``inclusive=True`` keeps resources that declare no time coverage.
    """

    _keyword = "temporal"
    takes_sequence = True
    requires_tables = ("rr.stc_temporal",)
    _table = "rr.stc_temporal"
    _columns = ("time_start", "time_end")

    def __init__(self, times: Any, *, inclusive: bool = False) -> None:
        self._set(times, _mjd, inclusive)


# --- keywords and the query ------------------------------------------------------------

_KEYWORDS: Mapping[str, type[Constraint]] = MappingProxyType(
    {
        cls._keyword: cls
        for cls in (
            Freetext,
            Author,
            Servicetype,
            Waveband,
            Datamodel,
            Ivoid,
            UCD,
            UAT,
            Spatial,
            Spectral,
            Temporal,
        )
        if cls._keyword is not None
    }
)


def keywords_to_constraints(**keywords: Any) -> list[Constraint]:
    """Return the constraints that search keywords stand for, in keyword order.

    Lists and tuples are spread into several arguments (``waveband=["radio", "optical"]``
    is ``Waveband("radio", "optical")``), except for constraints that take a sequence
    whole (spatial, spectral, temporal). A ``None`` value is treated as absent.

    Raises:
        UsageError: An unknown keyword (the message lists the valid ones), or values the
            constraint does not accept.
    """
    constraints = []
    for keyword, value in keywords.items():
        cls = _KEYWORDS.get(keyword)
        if cls is None:
            raise UsageError(
                f"{keyword!r} is not a registry search keyword; use one of"
                f" {', '.join(sorted(_KEYWORDS))}"
            )
        if value is None:
            continue
        spread = isinstance(value, tuple | list) and not cls.takes_sequence
        args = tuple(value) if spread else (value,)
        try:
            inspect.signature(cls).bind(*args)
        except TypeError as exc:
            raise UsageError(f"{keyword}={value!r}: {exc}") from None
        constraints.append(cls(*args))
    return constraints


def _render(constraint: Constraint, features: RegistryFeatures) -> str:
    """A constraint's condition; pyvo-style ``_extra_tables`` become a joined subquery."""
    condition = constraint.get_search_condition(features)
    extra = tuple(constraint._extra_tables)
    if extra:
        tables = " NATURAL LEFT OUTER JOIN ".join(("rr.resource", *extra))
        condition = _subquery(tables, condition)
    return condition


@dataclass(frozen=True, slots=True)
class SearchSpec:
    """One registry search: its constraints (AND-ed), ``includeaux`` and ``maxrec``.

    Positional strings become `Freetext` constraints, as in pyvo. Build one from search
    arguments with `from_arguments`; `adql` renders it for a registry.

    Attributes:
        constraints: The constraints, as given (``includeaux`` is applied when rendering).
        includeaux: Also match auxiliary capabilities (``tap#aux`` ...) in `Servicetype`.
        maxrec: At most this many resources (``TOP``), or None for the registry's limit.
    """

    constraints: tuple[Constraint, ...]
    includeaux: bool = False
    maxrec: int | None = None

    def __post_init__(self) -> None:
        constraints = tuple(
            Freetext(item) if isinstance(item, str) else item for item in self.constraints
        )
        if not constraints:
            raise UsageError(
                "a registry search needs at least one constraint (keywords=, servicetype=,"
                f" ...; keywords: {', '.join(sorted(_KEYWORDS))})"
            )
        for item in constraints:
            if not isinstance(item, Constraint):
                raise UsageError(f"{item!r} is not a registry constraint")
        if self.maxrec is not None and (
            isinstance(self.maxrec, bool)
            or not isinstance(self.maxrec, numbers.Integral)
            or self.maxrec < 1
        ):
            raise UsageError(f"maxrec must be a positive integer or None, got {self.maxrec!r}")
        object.__setattr__(self, "constraints", constraints)

    @classmethod
    def from_arguments(
        cls,
        *constraints: Constraint | str,
        includeaux: bool = False,
        maxrec: int | None = None,
        **keywords: Any,
    ) -> SearchSpec:
        """Build a search from constraint objects and keywords, as ``registry.search`` takes."""
        return cls(
            (*constraints, *keywords_to_constraints(**keywords)),  # type: ignore[arg-type]
            includeaux=includeaux,
            maxrec=maxrec,
        )

    def effective_constraints(self) -> tuple[Constraint, ...]:
        """The constraints with ``includeaux`` applied to every `Servicetype`."""
        if not self.includeaux:
            return self.constraints
        return tuple(
            item.include_auxiliary_services() if isinstance(item, Servicetype) else item
            for item in self.constraints
        )

    def _servicetypes(self) -> list[Servicetype]:
        return [item for item in self.effective_constraints() if isinstance(item, Servicetype)]

    @property
    def requested_standard_ids(self) -> tuple[str, ...]:
        """Standard ids the search asked for, sorted; entries with ``%`` are LIKE patterns.

        Empty when no `Servicetype` was given. Use `wants_standard_id` to test an id.
        """
        found: set[str] = set()
        for servicetype in self._servicetypes():
            found.update(servicetype.standard_ids, servicetype.patterns)
        return tuple(sorted(found))

    def wants_standard_id(self, standard_id: str) -> bool:
        """Return whether a capability with *standard_id* is one the search asked for.

        Every capability is wanted when the search has no `Servicetype`.
        """
        servicetypes = self._servicetypes()
        return not servicetypes or any(item.matches(standard_id) for item in servicetypes)

    def needs_table_list(self, features: RegistryFeatures) -> bool:
        """Whether a constraint needs tables *features* does not know about (run TABLES_QUERY)."""
        return features.coverage_tables is None and any(
            item.requires_tables for item in self.constraints
        )

    def adql(self, features: RegistryFeatures = DEFAULT_FEATURES) -> str:
        """Return the ADQL that selects the matching resources on *features*' registry.

        One row per resource, the `RESOURCE_COLUMNS` of ``rr.resource``, ordered by ivoid.

        Raises:
            RegistryFeatureMissing: A constraint needs something the registry lacks.
        """
        top = f" TOP {int(self.maxrec)}" if self.maxrec is not None else ""
        return "\n".join(
            [
                f"SELECT{top} {', '.join(RESOURCE_COLUMNS)}",
                "FROM rr.resource",
                self._where(features),
                "ORDER BY ivoid",
            ]
        )

    def ivoid_query(self, features: RegistryFeatures = DEFAULT_FEATURES) -> str:
        """The ivoids of every matching resource (no ``maxrec``), for ``ivoid IN (...)``.

        Follow-up queries about a large result use it instead of listing the ivoids.

        Raises:
            RegistryFeatureMissing: A constraint needs something the registry lacks.
        """
        return " ".join(["SELECT ivoid FROM rr.resource", self._where(features)])

    def _where(self, features: RegistryFeatures) -> str:
        conditions = [_render(item, features) for item in self.effective_constraints()]
        return "WHERE " + "\n  AND ".join(f"({condition})" for condition in conditions)


def build_query(
    *constraints: Constraint | str,
    includeaux: bool = False,
    maxrec: int | None = None,
    features: RegistryFeatures = DEFAULT_FEATURES,
    **keywords: Any,
) -> str:
    """Return the ADQL a registry search with these arguments runs (pyvo's get_RegTAP_query).

    Args:
        *constraints: Constraint objects; strings are `Freetext`.
        includeaux: Also match auxiliary capabilities for `Servicetype`.
        maxrec: At most this many resources.
        features: What the registry supports; the default is a modern registry.
        **keywords: Constraints by keyword: keywords, author, servicetype, waveband,
            datamodel, ivoid, ucd, uat, spatial, spectral, temporal.

    Raises:
        UsageError: No constraint, an unknown keyword, or a bad value.
        RegistryFeatureMissing: A constraint needs something the registry lacks.
    """
    spec = SearchSpec.from_arguments(*constraints, includeaux=includeaux, maxrec=maxrec, **keywords)
    return spec.adql(features)
