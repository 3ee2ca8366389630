"""The simulated SIA 1.0, SIA 2.0, SSA and DataLink services, without a server.

Parsers are checked against the standards' syntax (hypothesis where inputs vary), filters
against independent geometry (every returned footprint meets the region, every image
centred in it is returned), and documents against astropy's strict VOTable parser.
"""

from __future__ import annotations

import io
import math
import struct
import time
import warnings
import xml.etree.ElementTree as ET
from typing import Any, ClassVar

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.votable import parse
from astropy.io.votable.exceptions import VOWarning
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import MultiDict

from vosweep.errors import UsageError
from vosweep.services import Protocol
from vosweep.testing import Behaviour, ServiceProfile, ServiceSpec, _dal
from vosweep.testing._dal import (
    DATALINK_TYPE,
    Circle,
    DalParameterError,
    Interval,
    Polygon,
    Range,
    SiaHandler,
    datalink_document,
    expected_images,
    expected_spectra,
    parse_interval,
    parse_shape,
    parse_sia2_query,
    parse_sia_query,
    parse_ssa_query,
    parse_ssa_range,
)

BASE = "http://127.0.0.1:8000"
#: 20 observations per square degree (the simulator's cap): small regions find some.
DENSE = 10_000.0
#: Per-example geometry checks draw a few cells of observations each: keep them few.
FEW = settings(max_examples=25)

ras = st.floats(0.0, 359.999, allow_nan=False)
decs = st.floats(-89.0, 89.0, allow_nan=False)


def spec(protocol: Protocol, behaviour: Behaviour = Behaviour.OK, **profile: Any) -> ServiceSpec:
    profile.setdefault("density", DENSE)
    return ServiceSpec.make(
        7, 0, ServiceProfile(behaviour=behaviour, **profile), protocol=protocol, seed=3
    )


SIA, SIA2, SSA = spec(Protocol.SIA), spec(Protocol.SIA2), spec(Protocol.SSA)


def answer(service: ServiceSpec, params: Any) -> _dal.Document:
    return SiaHandler().answer(service, params, base_url=BASE + service.path)


def strict(document: _dal.Document, *, ucd1: bool = False) -> Any:
    """Parse with astropy, every warning an error (SIA 1.0's UCD1 words aside)."""
    body = io.BytesIO(document.encode())
    if not ucd1:
        return parse(body, verify="exception")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VOWarning)
        vot = parse(body, verify="warn")
    unexpected = [str(w.message) for w in caught if "W06" not in str(w.message)]
    assert not unexpected
    words = {str(w.message).split("'")[1] for w in caught}
    assert words <= {"POS_EQ_RA_MAIN", "POS_EQ_DEC_MAIN", "INST_ID"}
    return vot


def table(document: _dal.Document, **kwargs: Any) -> Any:
    return strict(document, **kwargs).get_first_table().to_table()


def statuses(vot: Any) -> list[str]:
    return [i.value for i in vot.resources[0].infos if i.name == "QUERY_STATUS"]


def separation(ra1: Any, dec1: Any, ra2: float, dec2: float) -> Any:
    """Angular distance in degrees (haversine), written apart from the simulator's vectors."""
    ra1, dec1, ra2, dec2 = (np.radians(x) for x in (ra1, dec1, ra2, dec2))
    h = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1))))


def gnomonic(ra: Any, dec: Any, ra0: float, dec0: float) -> tuple[Any, Any]:
    """Standard gnomonic projection (trigonometric form) of (ra, dec) at (ra0, dec0)."""
    ra, dec, ra0, dec0 = (np.radians(x) for x in (ra, dec, ra0, dec0))
    cos_c = np.sin(dec0) * np.sin(dec) + np.cos(dec0) * np.cos(dec) * np.cos(ra - ra0)
    x = np.cos(dec) * np.sin(ra - ra0) / cos_c
    y = (np.cos(dec0) * np.sin(dec) - np.sin(dec0) * np.cos(dec) * np.cos(ra - ra0)) / cos_c
    return x, y


def unit(ra: Any, dec: Any) -> Any:
    ra, dec = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def radec(vectors: Any) -> tuple[Any, Any]:
    ra = np.degrees(np.arctan2(vectors[..., 1], vectors[..., 0])) % 360
    return ra, np.degrees(np.arctan2(vectors[..., 2], np.hypot(vectors[..., 0], vectors[..., 1])))


class TestParameters:
    def test_sia_query(self) -> None:
        """POS, SIZE (one or two values), INTERSECT, FORMAT lists, VERB, MAXREC, BAND_NAME."""
        query = parse_sia_query(
            {
                "pos": "10.5,-20",
                "SIZE": "0.2,0.1",
                "INTERSECT": "center",
                "FORMAT": "image/fits,GRAPHIC",
                "VERB": "3",
                "MAXREC": "7",
                "BAND_NAME": "r",
            }
        )
        assert (query.ra, query.dec, query.width, query.height) == (10.5, -20.0, 0.2, 0.1)
        assert (query.intersect, query.formats) == ("CENTER", ("image/fits", "GRAPHIC"))
        assert (query.verb, query.maxrec, query.band_name) == (3, 7, "r")
        defaults = parse_sia_query({"POS": "0,0", "SIZE": "1"})
        assert (defaults.height, defaults.intersect, defaults.formats) == (
            1.0,
            "OVERLAPS",
            ("ALL",),
        )

    @pytest.mark.parametrize(
        ("params", "match"),
        [
            ({"SIZE": "1"}, "POS"),
            ({"POS": "1,2"}, "SIZE"),
            ({"POS": "1", "SIZE": "1"}, "ra,dec"),
            ({"POS": "1,95", "SIZE": "1"}, "declination"),
            ({"POS": "400,0", "SIZE": "1"}, "right ascension"),
            ({"POS": "1,2", "SIZE": "1,2,3"}, "SIZE"),
            ({"POS": "1,2", "SIZE": "-1"}, "SIZE"),
            ({"POS": "1,2", "SIZE": "nan"}, "SIZE"),
            ({"POS": "1,2", "SIZE": "1", "INTERSECT": "TOUCHES"}, "INTERSECT"),
            ({"POS": "1,2", "SIZE": "1", "VERB": "9"}, "VERB"),
            ({"POS": "1,2", "SIZE": "1", "MAXREC": "-1"}, "MAXREC"),
        ],
    )
    def test_sia_errors(self, params: dict[str, str], match: str) -> None:
        """Each invalid SIA 1.0 request names its problem."""
        with pytest.raises(DalParameterError, match=match):
            parse_sia_query(params)

    @given(ras, decs, st.floats(0.0, 180.0), st.floats(0.0, 180.0))
    def test_sia_positions_and_sizes_round_trip(
        self, ra: float, dec: float, width: float, height: float
    ) -> None:
        """Any legal POS and SIZE reads back as written."""
        query = parse_sia_query({"POS": f"{ra!r},{dec!r}", "SIZE": f"{width!r},{height!r}"})
        assert (query.ra, query.dec, query.width, query.height) == (ra, dec, width, height)

    @given(st.floats(allow_nan=False).filter(lambda v: not -90 <= v <= 90))
    def test_declinations_out_of_range_are_refused(self, dec: float) -> None:
        """Declinations beyond the poles are refused, infinite ones included."""
        with pytest.raises(DalParameterError):
            parse_sia_query({"POS": f"10,{dec!r}", "SIZE": "1"})

    @given(ras, decs, st.floats(0.0, 180.0))
    def test_circles(self, ra: float, dec: float, radius: float) -> None:
        """DALI circles read back as written, in any letter case."""
        assert parse_shape(f"circle {ra!r} {dec!r} {radius!r}") == Circle(ra, dec, radius)

    def test_ranges_and_polygons(self) -> None:
        """RANGE takes infinite ends and wraps through RA 0; POLYGON takes 3+ vertices."""
        assert parse_shape("RANGE -Inf +Inf 10 20") == Range(0.0, 360.0, 10.0, 20.0)
        assert parse_shape("RANGE 350 10 -Inf 0").ra_min == 350.0
        square = parse_shape("POLYGON 10 10 11 10 11 11 10 11")
        assert square == Polygon(((10.0, 10.0), (11.0, 10.0), (11.0, 11.0), (10.0, 11.0)))

    @pytest.mark.parametrize(
        ("text", "match"),
        [
            ("CIRCLE 1 2", "CIRCLE"),
            ("CIRCLE 1 2 -3", "radius"),
            ("RANGE 1 2 3", "RANGE"),
            ("RANGE 0 10 20 10", "declination"),
            ("POLYGON 1 2 3 4", "POLYGON"),
            ("POLYGON 0 0 120 0 240 0", "within"),
            ("BOX 1 2 3 4", "unknown shape"),
            ("", "unknown shape"),
        ],
    )
    def test_bad_shapes(self, text: str, match: str) -> None:
        """Bad shapes name their problem."""
        with pytest.raises(DalParameterError, match=match):
            parse_shape(text)

    @given(st.floats(allow_nan=False), st.floats(allow_nan=False))
    def test_intervals(self, low: float, high: float) -> None:
        """'low high' reads back (infinite ends included); low > high is refused."""
        text = f"{low!r} {high!r}".replace("inf", "Inf")
        if low > high:
            with pytest.raises(DalParameterError, match="empty"):
                parse_interval(text, "BAND")
        else:
            assert parse_interval(text, "BAND") == Interval(low, high)

    def test_ssa_ranges(self) -> None:
        """SSA range lists: lo/hi, open ends, single values, commas; ISO times as MJD."""
        metres = _dal._metres
        assert parse_ssa_range("4e-7/5e-7,/1e-7, 2e-6/", "BAND", metres) == [
            Interval(4e-7, 5e-7),
            Interval(-math.inf, 1e-7),
            Interval(2e-6, math.inf),
        ]
        assert parse_ssa_range("5e-7", "BAND", metres) == [Interval(5e-7, 5e-7)]
        times = parse_ssa_range("2000-01-01T12:00:00/2000-01-02", "TIME", _dal._mjd_of_iso)
        assert times == [Interval(51544.5, 51545.0)]
        for bad in ("5e-7/4e-7", "optical", "-1/2", ","):
            with pytest.raises(DalParameterError):
                parse_ssa_range(bad, "BAND", metres)
        with pytest.raises(DalParameterError, match="ISO"):
            parse_ssa_range("yesterday/", "TIME", _dal._mjd_of_iso)

    def test_ssa_query(self) -> None:
        """REQUEST=queryData is required; POS may name ICRS; lists and TOP are read."""
        query = parse_ssa_query(
            {
                "REQUEST": "queryData",
                "POS": "10,20;ICRS",
                "SIZE": "0.5",
                "BAND": "4e-7/5e-7",
                "FORMAT": "Compliant,application/fits",
                "TOP": "3",
                "COLLECTION": ["A", "B"],
            }
        )
        assert (query.ra, query.dec, query.size, query.top) == (10.0, 20.0, 0.5, 3)
        assert query.formats == ("compliant", "application/fits")
        assert query.collections == ("A", "B")
        assert parse_ssa_query({"REQUEST": "queryData"}).ra is None
        for params, match in [
            ({"POS": "1,2"}, "REQUEST"),
            ({"REQUEST": "getData"}, "REQUEST"),
            ({"REQUEST": "queryData", "POS": "1,2;GALACTIC"}, "ICRS"),
            ({"REQUEST": "queryData", "TOP": "x"}, "TOP"),
        ]:
            with pytest.raises(DalParameterError, match=match):
                parse_ssa_query(params)

    def test_sia2_query_keeps_repeated_values(self) -> None:
        """Repeated parameters (lists or a MultiDict) are all kept; units as SIA 2.0 says."""
        params = MultiDict(
            [
                ("POS", "CIRCLE 1 2 3"),
                ("pos", "RANGE 0 1 0 1"),
                ("BAND", "-Inf 5e-7"),
                ("CALIB", "2"),
                ("POL", "q"),
                ("ID", "a"),
                ("ID", "b"),
                ("MAXREC", "0"),
                ("RESPONSEFORMAT", "application/x-votable+xml;serialization=tabledata"),
            ]
        )
        query = parse_sia2_query(params)
        assert query.pos == (Circle(1.0, 2.0, 3.0), Range(0.0, 1.0, 0.0, 1.0))
        assert query.band == (Interval(-math.inf, 5e-7),)
        assert (query.calib, query.pol, query.ids, query.maxrec) == ((2,), ("Q",), ("a", "b"), 0)
        for bad, match in [
            ({"POL": "Z"}, "POL"),
            ({"CALIB": "5"}, "CALIB"),
            ({"RESPONSEFORMAT": "text/csv"}, "RESPONSEFORMAT"),
            ({"TIME": "2 1"}, "TIME"),
        ]:
            with pytest.raises(DalParameterError, match=match):
                parse_sia2_query(bad)


def deproject(x: Any, y: Any, ra0: Any, dec0: Any) -> tuple[Any, Any]:
    """Inverse gnomonic projection (trigonometric form), degrees."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ra0, dec0 = np.radians(ra0), np.radians(dec0)
    rho = np.hypot(x, y)
    c = np.arctan(rho)
    safe = np.where(rho > 0, rho, 1.0)
    dec = np.arcsin(np.cos(c) * np.sin(dec0) + y * np.sin(c) * np.cos(dec0) / safe)
    ra = ra0 + np.arctan2(
        x * np.sin(c), rho * np.cos(dec0) * np.cos(c) - y * np.sin(dec0) * np.sin(c)
    )
    return np.degrees(ra) % 360, np.degrees(dec)


SIGNS_X, SIGNS_Y = np.array([-1, 1, 1, -1]), np.array([1, 1, -1, -1])


class TestSia1:
    @FEW
    @given(ras, st.floats(-80.0, 80.0), st.floats(0.01, 2.0), st.floats(0.01, 2.0))
    def test_intersect_modes_filter(
        self, ra: float, dec: float, width: float, height: float
    ) -> None:
        """Each INTERSECT mode against footprints rebuilt from the published naxis and scale."""
        pos = {"POS": f"{ra!r},{dec!r}", "FORMAT": "image/fits", "VERB": "3"}
        wide = table(answer(SIA, {**pos, "SIZE": f"{width + 1!r},{height + 1!r}"}), ucd1=True)
        half_x, half_y = (math.tan(math.radians(s / 2)) for s in (width, height))
        tan_w = np.tan(np.radians(wide["naxis"][:, 0] * wide["scale"][:, 0] / 2))[:, None]
        tan_h = np.tan(np.radians(wide["naxis"][:, 1] * wide["scale"][:, 1] / 2))[:, None]
        centre_ra, centre_dec = np.asarray(wide["ra"])[:, None], np.asarray(wide["dec"])[:, None]
        corner_ra, corner_dec = deproject(SIGNS_X * tan_w, SIGNS_Y * tan_h, centre_ra, centre_dec)
        x, y = gnomonic(corner_ra, corner_dec, ra, dec)
        cx, cy = gnomonic(wide["ra"], wide["dec"], ra, dec)
        box_ra, box_dec = deproject(SIGNS_X * half_x, SIGNS_Y * half_y, ra, dec)
        bx, by = gnomonic(box_ra[None, :], box_dec[None, :], centre_ra, centre_dec)

        def within(u: Any, v: Any, limit_u: Any, limit_v: Any, slack: float) -> Any:
            return (np.abs(u) <= limit_u + slack) & (np.abs(v) <= limit_v + slack)

        oracles = {  # (surely in, possibly in): the simulator's answer lies between them
            "CENTER": [within(cx, cy, half_x, half_y, s) for s in (-1e-9, 1e-9)],
            "ENCLOSED": [within(x, y, half_x, half_y, s).all(axis=1) for s in (-1e-9, 1e-9)],
            "COVERS": [within(bx, by, tan_w, tan_h, s).all(axis=1) for s in (-1e-9, 1e-9)],
        }
        some_corner = [within(x, y, half_x, half_y, s).any(axis=1) for s in (-1e-9, 1e-9)]
        oracles["OVERLAPS"] = [
            oracles["CENTER"][0] | oracles["COVERS"][0] | some_corner[0],
            np.ones(len(wide), dtype=bool),
        ]
        dids = np.asarray(wide["obs_publisher_did"])
        for mode, (surely, possibly) in oracles.items():
            found = {
                r.did
                for r in expected_images(
                    SIA, {**pos, "SIZE": f"{width!r},{height!r}", "INTERSECT": mode}
                )
            }
            assert set(dids[surely]) <= found <= set(dids[possibly]), mode
        overlapping = {
            r.did for r in expected_images(SIA, {**pos, "SIZE": f"{width!r},{height!r}"})
        }
        reach = math.degrees(math.atan(math.hypot(half_x, half_y)))
        assert np.all(
            separation(wide["ra"], wide["dec"], ra, dec)[np.isin(dids, list(overlapping))]
            <= reach + 0.3
        )

    def test_center_finds_every_image_centred_in_the_box(self) -> None:
        """Images of a wide search whose centre lies in a small box are all CENTER matches."""
        wide = expected_images(SIA, {"POS": "150,-30", "SIZE": "3", "FORMAT": "image/fits"})
        x, y = gnomonic([r.ra for r in wide], [r.dec for r in wide], 150.0, -30.0)
        half = math.tan(math.radians(0.5))
        inside = {
            r.did for r, a, b in zip(wide, x, y, strict=True) if abs(a) < half and abs(b) < half
        }
        params = {"POS": "150,-30", "SIZE": "1", "INTERSECT": "CENTER", "FORMAT": "image/fits"}
        assert inside
        assert {r.did for r in expected_images(SIA, params)} == inside

    def test_formats_choose_rows(self) -> None:
        """FORMAT=ALL gives a FITS row per image and a PNG row for some; lists combine."""
        base = {"POS": "10,10", "SIZE": "2"}
        every = expected_images(SIA, base)
        fits_rows = expected_images(SIA, {**base, "FORMAT": "image/fits"})
        png_rows = expected_images(SIA, {**base, "FORMAT": "GRAPHIC"})
        assert len(every) == len(fits_rows) + len(png_rows)
        assert {r.access_format for r in fits_rows} == {"image/fits"}
        assert {r.access_format for r in png_rows} == {"image/png"}
        assert expected_images(SIA, {**base, "FORMAT": "image/png,image/fits"}) == every
        assert expected_images(SIA, {**base, "FORMAT": "image/jpeg"}) == []
        assert {r.obs_id for r in png_rows} < {r.obs_id for r in fits_rows}

    def test_document_matches_expected_and_verbosity(self) -> None:
        """The answer holds the expected rows; VERB chooses the columns; acrefs are absolute."""
        params = {"POS": "10,10", "SIZE": "2"}
        rows = table(answer(SIA, {**params, "VERB": "3"}), ucd1=True)
        expected = expected_images(SIA, params)
        assert list(rows["acref"]) == [BASE + SIA.path + r.path for r in expected]
        assert list(rows["obs_publisher_did"]) == [r.did for r in expected]
        assert list(rows["format"]) == [r.access_format for r in expected]
        assert rows["naxis"].shape == (len(rows), 2)
        minimal = table(answer(SIA, {**params, "VERB": "0"}), ucd1=True)
        assert minimal.colnames == [
            "title",
            "ra",
            "dec",
            "naxes",
            "naxis",
            "scale",
            "format",
            "acref",
        ]
        assert len(table(answer(SIA, {**params, "VERB": "1"}), ucd1=True).colnames) == 17

    def test_band_name_and_maxrec(self) -> None:
        """The custom BAND_NAME filters; MAXREC cuts with an OVERFLOW after the table."""
        params = {"POS": "10,10", "SIZE": "3", "VERB": "1"}
        rows = table(answer(SIA, params), ucd1=True)
        band = rows["bandpass_id"][0]
        narrowed = table(answer(SIA, {**params, "BAND_NAME": band.upper()}), ucd1=True)
        assert 0 < len(narrowed) < len(rows)
        assert set(narrowed["bandpass_id"]) == {band}
        cut = strict(answer(SIA, {**params, "MAXREC": "2"}), ucd1=True)
        assert len(cut.get_first_table().array) == 2
        assert statuses(cut) == ["OK", "OVERFLOW"]

    def test_metadata(self) -> None:
        """FORMAT=METADATA: no rows, every FIELD, INPUT: PARAMs with descriptions, no POS needed."""
        vot = strict(answer(SIA, {"FORMAT": "METADATA"}), ucd1=True)
        params = {p.name: p for p in vot.resources[0].params}
        assert set(params) == {
            f"INPUT:{n}"
            for n in ("POS", "SIZE", "INTERSECT", "FORMAT", "VERB", "MAXREC", "BAND_NAME")
        }
        assert all(p.description for p in params.values())
        assert params["INPUT:MAXREC"].value == SIA.profile.max_rows
        assert len(vot.get_first_table().fields) == len(_dal._SIA1_FIELDS)
        assert len(vot.get_first_table().array) == 0

    def test_errors_are_query_status_error(self) -> None:
        """SIA 1.0 errors: QUERY_STATUS=ERROR in the results RESOURCE."""
        vot = strict(answer(SIA, {"POS": "1,2", "SIZE": "x"}))
        assert vot.resources[0].type == "results"
        assert statuses(vot) == ["ERROR"]


def within_circle(records: list[_dal.SimRecord], circle: Circle, reach: float) -> bool:
    distances = separation([r.ra for r in records], [r.dec for r in records], circle.ra, circle.dec)
    return bool(np.all(distances <= circle.radius + reach))


class TestSia2:
    @FEW
    @given(ras, st.floats(-90.0, 90.0), st.floats(0.0, 1.5))
    def test_circles_filter(self, ra: float, dec: float, radius: float) -> None:
        """Footprints meet the circle; every image centred in it is found (poles, RA 0 too)."""
        circle = Circle(ra, dec, radius)
        found = expected_images(SIA2, {"POS": f"CIRCLE {ra!r} {dec!r} {radius!r}"})
        assert within_circle(found, circle, 0.3)
        wider = expected_images(SIA2, {"POS": f"CIRCLE {ra!r} {dec!r} {radius + 0.5!r}"})
        assert {r.did for r in found} <= {r.did for r in wider}
        centred = separation([r.ra for r in wider], [r.dec for r in wider], ra, dec) <= radius
        assert {r.did for r, c in zip(wider, centred, strict=True) if c} <= {r.did for r in found}
        # Footprints (published s_region) with a point of an edge inside the circle are found.
        rows = table(answer(SIA2, {"POS": f"CIRCLE {ra!r} {dec!r} {radius + 0.5!r}"}))
        for did, region in zip(rows["obs_publisher_did"], rows["s_region"], strict=True):
            corners = unit(*np.array(region.split()[2:], dtype=float).reshape(4, 2).T)
            steps = np.linspace(0.0, 1.0, 40)[:, None, None]
            edges = corners + steps * (np.roll(corners, -1, axis=0) - corners)  # chords...
            edge_ra, edge_dec = radec(edges)  # ...pushed out onto the great circles
            if (separation(edge_ra, edge_dec, ra, dec) < radius - 1e-6).any():
                assert did in {r.did for r in found}

    @FEW
    @given(st.floats(0.0, 359.0), st.floats(-80.0, 79.0), st.floats(0.05, 1.0))
    def test_ranges_and_polygons_filter(self, ra: float, dec: float, size: float) -> None:
        """RANGE and a POLYGON of the same box both find the images centred in the box."""
        box = (ra, ra + size, dec, dec + size)
        by_range = {
            r.did: r for r in expected_images(SIA2, {"POS": "RANGE {} {} {} {}".format(*box)})
        }
        corners = f"{ra} {dec} {ra + size} {dec} {ra + size} {dec + size} {ra} {dec + size}"
        by_polygon = {r.did: r for r in expected_images(SIA2, {"POS": f"POLYGON {corners}"})}
        around = expected_images(SIA2, {"POS": f"CIRCLE {ra + size / 2} {dec + size / 2} 2"})
        inside = {r.did for r in around if ra < r.ra < ra + size and dec < r.dec < dec + size}
        assert inside <= set(by_range)
        assert inside <= set(by_polygon)
        slack = 0.3 / math.cos(math.radians(max(abs(dec), abs(dec + size)) + 0.3))
        for record in [*by_range.values(), *by_polygon.values()]:
            assert dec - 0.3 <= record.dec <= dec + size + 0.3
            assert (record.ra - ra + slack) % 360 <= size + 2 * slack

    def test_range_across_ra_zero(self) -> None:
        """RANGE 359 1 wraps through RA 0: images centred on either side are found."""
        found = {r.did: r for r in expected_images(SIA2, {"POS": "RANGE 359 1 -1 1"})}
        assert all(r.ra > 358.5 or r.ra < 1.5 for r in found.values())
        around = expected_images(SIA2, {"POS": "CIRCLE 0 0 2"})
        inside = {r.did for r in around if (r.ra > 359 or r.ra < 1) and abs(r.dec) < 1}
        assert {r.ra < 1 for r in around if r.did in inside} == {True, False}
        assert inside <= set(found)

    def test_edges_alone_can_meet_a_region(self) -> None:
        """A small circle across one edge, and a thin strip across the whole image, find it."""
        rows = table(answer(SIA2, {"POS": "CIRCLE 300 45 1"}))
        for row in rows[:5]:
            corners = unit(*np.array(row["s_region"].split()[2:], dtype=float).reshape(4, 2).T)
            centre = unit(row["s_ra"], row["s_dec"])
            middle = corners[0] + corners[1]
            middle /= np.linalg.norm(middle)
            width = math.degrees(math.acos(np.dot(corners[0], corners[1])))
            assert width > 0.04  # the circle below holds no corner
            outward = middle - centre
            step = math.radians(0.005) / np.linalg.norm(outward)
            ra, dec = radec(middle + step * outward)
            found = expected_images(SIA2, {"POS": f"CIRCLE {ra} {dec} 0.01"})
            assert row["obs_publisher_did"] in {r.did for r in found}
            half = 0.75 * row["s_fov"] / math.cos(math.radians(row["s_dec"]))
            low, high = row["s_dec"] - 0.0005, row["s_dec"] + 0.0005
            west, east = row["s_ra"] - half, row["s_ra"] + half
            strip = f"POLYGON {west} {low} {east} {low} {east} {high} {west} {high}"
            found = expected_images(SIA2, {"POS": strip})
            assert row["obs_publisher_did"] in {r.did for r in found}

    def test_repeated_pos_are_ored(self) -> None:
        """Several POS values: the union, in archive order."""
        one, two = "CIRCLE 10 10 0.5", "CIRCLE 40 -10 0.5"
        union = expected_images(SIA2, {"POS": [one, two]})
        parts = {r.did for r in expected_images(SIA2, {"POS": one})} | {
            r.did for r in expected_images(SIA2, {"POS": two})
        }
        assert {r.did for r in union} == parts
        assert len(union) == len(parts)

    def test_every_constraint_filters(self) -> None:
        """Each constraint keeps a non-empty proper subset whose records satisfy it."""
        pos = {"POS": "CIRCLE 120 30 3"}
        rows = table(answer(SIA2, pos))
        base = len(rows)
        first = rows[0]
        checks = {
            "BAND": (
                f"{first['em_min']} {first['em_min']}",
                lambda t: (t["em_min"] <= first["em_min"]) & (t["em_max"] >= first["em_min"]),
            ),
            "TIME": (
                f"{first['t_min']} {first['t_min'] + 100}",
                lambda t: (t["t_min"] <= first["t_min"] + 100) & (t["t_max"] >= first["t_min"]),
            ),
            "FOV": (f"0 {rows['s_fov'].min()}", lambda t: t["s_fov"] <= rows["s_fov"].min()),
            "SPATRES": (
                f"{first['s_resolution']} {first['s_resolution']}",
                lambda t: t["s_resolution"] == first["s_resolution"],
            ),
            "EXPTIME": ("-Inf 600", lambda t: t["t_exptime"] <= 600),
            "TIMERES": ("600 +Inf", lambda t: t["t_resolution"] >= 600),
            "SPECRP": ("0 100", lambda t: t["em_res_power"] <= 100),
            "POL": (
                "U",
                lambda t: np.char.find(np.asarray(t["pol_states"], dtype=str), "/U/") >= 0,
            ),
            "COLLECTION": (
                first["obs_collection"],
                lambda t: t["obs_collection"] == first["obs_collection"],
            ),
            "FACILITY": (
                first["facility_name"],
                lambda t: t["facility_name"] == first["facility_name"],
            ),
            "INSTRUMENT": (
                first["instrument_name"],
                lambda t: t["instrument_name"] == first["instrument_name"],
            ),
            "DPTYPE": ("cube", lambda t: t["dataproduct_type"] == "cube"),
            "CALIB": ("3", lambda t: t["calib_level"] == 3),
            "TARGET": (first["target_name"], lambda t: t["target_name"] == first["target_name"]),
            "ID": (
                first["obs_publisher_did"],
                lambda t: t["obs_publisher_did"] == first["obs_publisher_did"],
            ),
            "FORMAT": ("image/fits", lambda t: t["access_format"] == "image/fits"),
        }
        for name, (value, holds) in checks.items():
            narrowed = table(answer(SIA2, {**pos, name: value}))
            assert 0 < len(narrowed) < base, name
            assert np.all(holds(narrowed)), name
        assert len(table(answer(SIA2, {**pos, "FORMAT": DATALINK_TYPE}))) < base
        assert len(table(answer(SIA2, {**pos, "COLLECTION": "nowhere"}))) == 0

    def test_lookups_without_a_position(self) -> None:
        """ID and TARGET alone find their records; a whole-sky scan stops at the limit."""
        record = expected_images(SIA2, {"POS": "CIRCLE 200 -40 1"})[3]
        assert [r.did for r in expected_images(SIA2, {"ID": record.did})] == [record.did]
        target = f"SIMFIELD-{record.obs_id.split('-')[1]}"
        assert record.did in {r.did for r in expected_images(SIA2, {"TARGET": target})}
        assert expected_images(SIA2, {"ID": "ivo://elsewhere?img-1-1"}) == []
        started = time.perf_counter()
        vot = strict(answer(spec(Protocol.SIA2, max_rows=50), {"DPTYPE": "cube"}))
        assert time.perf_counter() - started < 5
        assert len(vot.get_first_table().array) == 50
        assert statuses(vot) == ["OK", "OVERFLOW"]

    def test_documents_are_obscore(self) -> None:
        """Strictly valid VOTable with ObsCore utypes and UCDs; DataLink records every other one."""
        vot = strict(answer(SIA2, {"POS": "CIRCLE 10 10 1"}))
        fields = {f.name: f for f in vot.get_first_table().fields}
        assert fields["s_ra"].utype.endswith("Position2D.Value2.C1")
        assert fields["obs_publisher_did"].ucd == "meta.ref.ivoid"
        assert fields["s_region"].xtype == "adql:REGION"
        rows = vot.get_first_table().to_table()
        linked = rows["access_format"] == DATALINK_TYPE
        assert 0 < linked.sum() < len(rows)
        assert all("/datalink?ID=ivo%3A%2F%2F" in url for url in rows["access_url"][linked])
        assert all(url.endswith(".fits") for url in rows["access_url"][~linked])
        assert all(region.startswith("POLYGON ICRS ") for region in rows["s_region"])
        assert vot.resources[-1].type == "meta"  # service 7 is odd: a DataLink descriptor

    def test_maxrec_zero_and_overflow(self) -> None:
        """MAXREC=0 returns the columns only (OVERFLOW when records exist)."""
        vot = strict(answer(SIA2, {"POS": "CIRCLE 10 10 1", "MAXREC": "0"}))
        assert len(vot.get_first_table().array) == 0
        assert len(vot.get_first_table().fields) == len(_dal._OBSCORE_FIELDS)
        assert statuses(vot) == ["OK", "OVERFLOW"]
        assert statuses(strict(answer(SIA2, {"POS": "CIRCLE 10 10 0.5", "MAXREC": "1000"}))) == [
            "OK"
        ]

    def test_errors_are_dali_documents(self) -> None:
        """Bad parameters: a DALI error document; unknown parameters are ignored."""
        assert statuses(strict(answer(SIA2, {"POS": "CIRCLE 1 2"}))) == ["ERROR"]
        assert statuses(strict(answer(SIA2, {"POS": "CIRCLE 1 2 0.1", "FOO": "x"}))) == ["OK"]


class TestSsa:
    QUERY: ClassVar[dict[str, str]] = {"REQUEST": "queryData", "POS": "250,40", "SIZE": "2"}

    @FEW
    @given(ras, decs, st.floats(0.1, 4.0))
    def test_cones_filter(self, ra: float, dec: float, size: float) -> None:
        """Spectra lie within SIZE/2 of POS; a smaller cone finds a subset."""
        base = {"REQUEST": "queryData", "POS": f"{ra!r},{dec!r}"}
        found = expected_spectra(SSA, {**base, "SIZE": f"{size!r}"})
        distances = separation([r.ra for r in found], [r.dec for r in found], ra, dec)
        assert np.all(distances <= size / 2 + 1e-9)
        smaller = expected_spectra(SSA, {**base, "SIZE": f"{size / 2!r}"})
        assert {r.did for r in smaller} <= {r.did for r in found}

    def test_constraints_filter(self) -> None:
        """BAND, TIME, FORMAT, COLLECTION, TARGETNAME, PUBDID and INSTRUMENT filter."""
        rows = table(answer(SSA, self.QUERY))
        base = len(rows)
        first = rows[0]
        checks = {
            "BAND": (
                f"{first['spec_start']}/{first['spec_start']}",
                "spec_start",
                first["spec_start"],
            ),
            "FORMAT": ("compliant", "mime", "application/x-votable+xml"),
            "COLLECTION": (first["collection"], "collection", first["collection"]),
            "TARGETNAME": (first["target_name"], "target_name", first["target_name"]),
            "PUBDID": (first["ssa_pubdid"], "ssa_pubdid", first["ssa_pubdid"]),
            "INSTRUMENT": (first["instrument"], "instrument", first["instrument"]),
        }
        for name, (value, column, wanted) in checks.items():
            narrowed = table(answer(SSA, {**self.QUERY, name: value}))
            assert 0 < len(narrowed) < base, name
            assert set(narrowed[column]) == {wanted}, name
        native = table(answer(SSA, {**self.QUERY, "FORMAT": "native"}))
        assert set(native["mime"]) == {"application/fits"}
        assert len(native) + len(table(answer(SSA, {**self.QUERY, "FORMAT": "votable"}))) == base
        assert len(table(answer(SSA, {**self.QUERY, "FORMAT": "graphic"}))) == 0
        mid = first["time_mid"]
        day = _dal._iso_date(mid)
        timed = table(answer(SSA, {**self.QUERY, "TIME": f"{day}/{day}T23:59:59"}))
        assert 0 < len(timed) < base
        assert np.all(np.abs(timed["time_mid"] - mid) < 1.1)

    def test_top_and_maxrec(self) -> None:
        """TOP returns the first n without OVERFLOW; MAXREC flags the cut."""
        top = strict(answer(SSA, {**self.QUERY, "TOP": "2"}))
        assert (len(top.get_first_table().array), statuses(top)) == (2, ["OK"])
        cut = strict(answer(SSA, {**self.QUERY, "MAXREC": "2"}))
        assert (len(cut.get_first_table().array), statuses(cut)) == (2, ["OK", "OVERFLOW"])

    def test_document_utypes_and_descriptor(self) -> None:
        """SSA utypes pyvo reads, and a DataLink descriptor whose ID refs the DID column."""
        vot = strict(answer(SSA, self.QUERY))
        fields = {f.utype: f for f in vot.get_first_table().fields}
        for utype in (
            "ssa:Access.Reference",
            "ssa:Access.Format",
            "ssa:Access.Size",
            "ssa:DataID.Title",
            "ssa:Target.Name",
            "ssa:Target.Pos",
            "ssa:Char.SpatialAxis.Coverage.Location.Value",
            "ssa:Char.SpectralAxis.Coverage.Bounds.Start",
            "ssa:Char.SpectralAxis.Coverage.Bounds.Stop",
            "ssa:Char.TimeAxis.Coverage.Location.Value",
            "ssa:DataID.Collection",
            "ssa:Curation.PublisherDID",
            "ssa:Dataset.Length",
        ):
            assert utype in fields, utype
        assert fields["ssa:Char.SpatialAxis.Coverage.Location.Value"].arraysize == "2"
        descriptor = vot.resources[1]
        assert (descriptor.type, descriptor.utype) == ("meta", "adhoc:service")
        params = {p.name: p.value for p in descriptor.params}
        assert params["standardID"] == "ivo://ivoa.net/std/DataLink#links-1.1"
        assert params["accessURL"] == f"{BASE}{SSA.path}/datalink"
        assert fields["ssa:Curation.PublisherDID"].ID == "ssa_pubdid"
        assert 'ref="ssa_pubdid"' in answer(SSA, self.QUERY).text()

    def test_metadata(self) -> None:
        """FORMAT=METADATA lists the inputs (the custom INSTRUMENT too) with defaults."""
        vot = strict(answer(SSA, {"REQUEST": "queryData", "FORMAT": "metadata"}))
        params = {p.name: p for p in vot.resources[0].params}
        assert {"INPUT:POS", "INPUT:SIZE", "INPUT:BAND", "INPUT:TIME", "INPUT:INSTRUMENT"} <= set(
            params
        )
        assert params["INPUT:SIZE"].value == pytest.approx(0.1)
        assert len(vot.get_first_table().array) == 0


class TestBehaviours:
    @pytest.mark.parametrize(
        ("service", "params"),
        [
            (Protocol.SIA, {"POS": "10,10", "SIZE": "2"}),
            (Protocol.SIA2, {"POS": "CIRCLE 10 10 1"}),
            (Protocol.SSA, {"REQUEST": "queryData", "POS": "10,10", "SIZE": "2"}),
        ],
    )
    def test_content_behaviours(self, service: Protocol, params: dict[str, str]) -> None:
        """empty: FIELDs, no rows; overflow: max_rows then OVERFLOW; query_error; clashes."""
        ucd1 = service is Protocol.SIA
        empty = strict(answer(spec(service, Behaviour.EMPTY), params), ucd1=ucd1)
        assert len(empty.get_first_table().array) == 0
        assert empty.get_first_table().fields
        overflow = spec(service, Behaviour.OVERFLOW, max_rows=3)
        full = strict(answer(overflow, params), ucd1=ucd1)
        assert (len(full.get_first_table().array), statuses(full)) == (3, ["OK", "OVERFLOW"])
        assert (
            len(
                expected_images(overflow, params)
                if service is not Protocol.SSA
                else expected_spectra(overflow, params)
            )
            == 3
        )
        failing = strict(answer(spec(service, Behaviour.QUERY_ERROR), params))
        assert statuses(failing) == ["ERROR"]
        clash = strict(answer(spec(service, Behaviour.CONFLICTING_TYPES), params), ucd1=ucd1)
        datatypes = {f.name: f.datatype for f in clash.get_first_table().fields}
        assert "char" in {datatypes.get(n) for n in ("filesize", "calib_level", "length")}
        assert len(clash.get_first_table().array) > 0

    def test_answers_are_deterministic_and_per_service(self) -> None:
        """Same spec, same answer; another seed or index, another archive."""
        params = {"POS": "CIRCLE 10 10 1"}
        assert answer(SIA2, params).text() == answer(SIA2, params).text()
        other = ServiceSpec.make(8, 0, SIA2.profile, protocol=Protocol.SIA2, seed=3)
        reseeded = ServiceSpec.make(7, 0, SIA2.profile, protocol=Protocol.SIA2, seed=4)
        mine = {r.obs_id for r in expected_images(SIA2, params)}
        assert mine != {r.obs_id for r in expected_images(other, params)}
        assert mine != {r.obs_id for r in expected_images(reseeded, params)}

    @given(st.lists(st.integers(0, _dal._N_CELLS - 1), min_size=1, max_size=6, unique=True))
    def test_a_cell_is_the_same_whatever_is_drawn_with_it(self, cells: list[int]) -> None:
        """Observations of cells drawn together equal the cells drawn one by one."""
        service = _dal._service(SIA2)
        together = _dal._archive(service, cells)
        alone = [_dal._archive(service, [cell]) for cell in cells]
        for column in ("cell", "number", "ra", "dec", "filter", "t_min", "calib", "pol"):
            joined = np.concatenate([getattr(a, column) for a in alone])
            assert np.array_equal(getattr(together, column), joined), column

    def test_expected_helpers_check_the_protocol(self) -> None:
        """expected_images is for SIA/SIA2, expected_spectra for SSA; bad params raise."""
        with pytest.raises(UsageError):
            expected_images(SSA, {})
        with pytest.raises(UsageError):
            expected_spectra(SIA, {})
        with pytest.raises(DalParameterError):
            expected_images(SIA2, {"CALIB": "9"})
        assert expected_images(SIA, {"FORMAT": "METADATA"}) == []

    def test_answer_outside_a_request_uses_a_placeholder_url(self) -> None:
        """Called outside the server, records point below http://sim.invalid."""
        document = SiaHandler().answer(SIA2, {"POS": "CIRCLE 10 10 1"})
        assert f"http://sim.invalid{SIA2.path}/data/" in document.text()


class TestDatalinkAndFiles:
    def test_links_of_known_and_unknown_ids(self) -> None:
        """#this, #preview, #auxiliary, #progenitor per ID; NotFoundFault for strangers."""
        records = expected_images(SIA2, {"POS": "CIRCLE 10 10 1"})[:2]
        ids = [records[0].did, "ivo://x/y?img-1-1", records[1].did]
        vot = strict(datalink_document(SIA2, {"ID": ids}, BASE))
        rows = vot.get_first_table().to_table()
        assert list(rows["ID"]) == [ids[0]] * 4 + [ids[1]] + [ids[2]] * 4
        assert list(rows["semantics"][:4]) == ["#this", "#preview", "#auxiliary", "#progenitor"]
        assert rows["access_url"][0] == f"{BASE}/data/{records[0].obs_id}.fits"
        assert rows["content_length"][0] == len(_dal.fits_image())
        assert rows["content_length"][1] == len(_dal.png_preview())
        assert rows["error_message"][4].startswith("NotFoundFault")
        assert [f.name for f in vot.get_first_table().fields][-2:] == [
            "link_auth",
            "link_authorized",
        ]

    def test_maxrec_and_usage_faults(self) -> None:
        """MAXREC cuts with OVERFLOW; no ID or a bad MAXREC is a UsageFault."""
        did = expected_spectra(SSA, TestSsa.QUERY)[0].did
        cut = strict(datalink_document(SSA, {"ID": did, "MAXREC": "3"}, BASE))
        assert (len(cut.get_first_table().array), statuses(cut)) == (3, ["OK", "OVERFLOW"])
        for params in ({}, {"ID": did, "MAXREC": "x"}, {"ID": did, "RESPONSEFORMAT": "csv"}):
            failed = strict(datalink_document(SSA, params, BASE))
            assert statuses(failed) == ["ERROR"]
            assert "UsageFault" in failed.resources[0].infos[0].content

    def test_served_files_are_valid(self) -> None:
        """The FITS image, FITS spectrum, PNG and VOTable spectrum are what they claim."""
        with fits.open(io.BytesIO(_dal.fits_image())) as hdus:
            assert hdus[0].data.shape == (16, 16)
        with fits.open(io.BytesIO(_dal.fits_spectrum())) as hdus:
            assert hdus[0].header["CTYPE1"] == "WAVE"
        png = _dal.png_preview()
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert struct.unpack(">II", png[16:24]) == (16, 16)
        assert (
            len(
                parse(io.BytesIO(_dal.votable_spectrum()), verify="exception")
                .get_first_table()
                .array
            )
            == 16
        )

    def test_data_paths(self) -> None:
        """Existing records are served, by kind; anything else is not."""
        image = expected_images(SIA2, {"POS": "CIRCLE 10 10 1"})[0].obs_id
        spectrum = expected_spectra(SSA, TestSsa.QUERY)[0].obs_id
        images, spectra = _dal._service(SIA2), _dal._service(SSA)
        assert _dal._data_file(images, f"/data/{image}.fits") == (_dal.fits_image(), "image/fits")
        assert _dal._data_file(images, f"/data/{image}.raw.fits") is not None
        assert _dal._data_file(images, f"/preview/{image}.png") is not None
        assert _dal._data_file(spectra, f"/data/{spectrum}.vot") is not None
        for service, path in [
            (images, f"/data/{image}.vot"),
            (images, f"/data/{spectrum}.fits"),
            (images, "/data/img-0-99999.fits"),
            (images, "/data/img-999999-0.fits"),
            (spectra, f"/data/{spectrum}.aux.vot"),
            (images, "/elsewhere"),
        ]:
            assert _dal._data_file(service, path) is None, path

    @pytest.mark.parametrize("protocol", [Protocol.SIA, Protocol.SIA2, Protocol.SSA])
    def test_capabilities(self, protocol: Protocol) -> None:
        """VOSI capabilities: the query interface at the base URL, plus VOSI and DataLink."""
        service = spec(protocol)
        root = ET.fromstring(_dal.capabilities_document(service, BASE))  # noqa: S314 - ours
        found = {c.get("standardID"): c.find("interface/accessURL").text for c in root}
        standard = {
            Protocol.SIA: "ivo://ivoa.net/std/SIA",
            Protocol.SIA2: "ivo://ivoa.net/std/SIA#query-2.0",
            Protocol.SSA: "ivo://ivoa.net/std/SSA",
        }[protocol]
        assert found[standard] == BASE
        assert found["ivo://ivoa.net/std/VOSI#availability"] == f"{BASE}/availability"
        assert found["ivo://ivoa.net/std/DataLink#links-1.1"] == f"{BASE}/datalink"
        availability = ET.fromstring(_dal.availability_document(service))  # noqa: S314 - ditto
        assert availability[0].text == "true"
