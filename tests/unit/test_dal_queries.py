"""Image, spectrum and per-protocol queries, and the SIA 1/2 and SSA requests they become."""

from __future__ import annotations

import math
from urllib.parse import parse_qsl, urlsplit

import astropy.units as u
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.time import Time
from hypothesis import given
from hypothesis import strategies as st

import vosweep
from vosweep.protocols import links, sia, ssa
from vosweep.protocols.metadata import metadata_request, parse_metadata
from vosweep.queries import query_protocols
from vosweep.scheduling.plan import Plan

SIA1 = vosweep.Service.sia("http://h.test/sia?CAT=x")
SIA2 = vosweep.Service.sia2("http://h.test/sia2/query")
SSA = vosweep.Service.ssa("http://h.test/ssa")


def params(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


class TestImageQuery:
    def test_sia1_pos_size_and_options(self):
        query = vosweep.ImageQuery(
            SkyCoord(10 * u.deg, 20 * u.deg),
            size=(0.2, 0.1),
            intersect="covers",
            format="image/fits",
            verb=2,
            maxrec=50,
            params={"BAND_NAME": "R"},
        )
        got = params(sia.build_sia1(SIA1, query).url)
        assert got == [
            ("CAT", "x"),
            ("POS", "10.0,20.0"),
            ("SIZE", "0.2,0.1"),
            ("INTERSECT", "COVERS"),
            ("FORMAT", "image/fits"),
            ("VERB", "2"),
            ("MAXREC", "50"),
            ("BAND_NAME", "R"),
        ]

    def test_sia2_every_constraint(self):
        query = vosweep.ImageQuery(
            (10, 20),
            radius=3 * u.arcmin,
            band=(400 * u.nm, None),
            time=(Time(50000, format="mjd"), 50010),
            collection=["HST", "JWST"],
            calib=[2, 3],
            dptype="image",
            maxrec=10,
        )
        got = params(sia.build_sia2(SIA2, query).url)
        assert got[0] == ("POS", "CIRCLE 10.0 20.0 0.05")
        band = dict(got)["BAND"].split()
        assert math.isclose(float(band[0]), 4e-7)
        assert band[1] == "+Inf"
        assert ("TIME", "50000.0 50010.0") in got
        assert [v for k, v in got if k == "COLLECTION"] == ["HST", "JWST"]
        assert [v for k, v in got if k == "CALIB"] == ["2", "3"]
        assert ("DPTYPE", "image") in got
        assert ("MAXREC", "10") in got

    def test_frequency_band_becomes_wavelength(self):
        query = vosweep.ImageQuery((1, 2), size=1, band=(1 * u.GHz, 2 * u.GHz))
        low, high = query.band or (0, 0)
        assert math.isclose(high, 0.299792458)
        assert math.isclose(low, 0.149896229)

    def test_open_frequency_interval(self):
        query = vosweep.ImageQuery((1, 2), size=1, band=(1 * u.GHz, None))
        assert query.band == (0.0, pytest.approx(0.299792458))

    def test_polygon_sia2_only(self):
        query = vosweep.ImageQuery(polygon=[(0, 0), (1, 0), (1, 1)])
        assert params(sia.build_sia2(SIA2, query).url) == [
            ("POS", "POLYGON 0.0 0.0 1.0 0.0 1.0 1.0")
        ]
        with pytest.raises(vosweep.UsageError, match=r"SIA 1\.0 cannot express polygon"):
            sia.build_sia1(SIA1, query)

    def test_sia1_lenient_sends_the_position(self):
        query = vosweep.ImageQuery((1, 2), size=0.5, collection="X", sia1_lenient=True)
        assert params(sia.build_sia1(SIA1, query).url)[1:] == [("POS", "1.0,2.0"), ("SIZE", "0.5")]

    def test_cone_fits_sia_both_versions_and_ssa(self):
        cone = vosweep.Cone(ra=10, dec=-5, radius=0.5)
        assert params(sia.build_sia1(SIA1, cone).url)[1:] == [("POS", "10.0,-5.0"), ("SIZE", "1.0")]
        assert params(sia.build_sia2(SIA2, cone).url) == [("POS", "CIRCLE 10.0 -5.0 0.5")]
        assert params(ssa.build(SSA, cone).url) == [
            ("REQUEST", "queryData"),
            ("POS", "10.0,-5.0"),
            ("SIZE", "1.0"),
        ]

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({}, "needs a position"),
            ({"ra": 1, "dec": 2}, "size or a radius"),
            ({"ra": 1, "dec": 100, "size": 1}, "dec must be"),
            ({"ra": 1, "dec": 2, "size": 1, "intersect": "near"}, "intersect must be"),
            ({"ra": 1, "dec": 2, "size": 1, "band": (2, 1)}, "band interval is empty"),
            ({"ra": 1, "dec": 2, "size": 1, "band": 3 * u.s}, "wavelength"),
            ({"ra": 1, "dec": 2, "size": 1, "time": "not a time"}, "time must be"),
            ({"ra": 1, "dec": 2, "size": 1, "params": {"RESPONSEFORMAT": "x"}}, "RESPONSEFORMAT"),
            ({"polygon": [(0, 0), (1, 1)]}, "at least 3"),
            ({"ra": 1, "size": 1}, "both ra and dec"),
        ],
    )
    def test_bad_input_is_named(self, kwargs, message):
        with pytest.raises(vosweep.UsageError, match=message):
            vosweep.ImageQuery(**kwargs)

    @given(
        ra=st.floats(-720, 720, allow_nan=False),
        dec=st.floats(-90, 90, allow_nan=False),
        radius=st.floats(1e-6, 10, allow_nan=False),
    )
    def test_positions_round_trip(self, ra, dec, radius):
        query = vosweep.ImageQuery(ra=ra, dec=dec, radius=radius)
        pos = dict(params(sia.build_sia2(SIA2, query).url))["POS"].split()
        assert pos[0] == "CIRCLE"
        assert float(pos[1]) == query.ra
        assert 0 <= float(pos[1]) < 360
        assert float(pos[2]) == dec
        assert float(pos[3]) == radius


class TestSpectrumQuery:
    def test_ssa_ranges_and_times(self):
        query = vosweep.SpectrumQuery(
            (83.6, 22.0),
            radius=0.01,
            band=(None, 1 * u.um),
            time=("2010-01-01T00:00:00", None),
            format="votable",
            maxrec=5,
        )
        got = params(ssa.build(SSA, query).url)
        assert got == [
            ("REQUEST", "queryData"),
            ("POS", "83.6,22.0"),
            ("SIZE", "0.02"),
            ("BAND", f"/{1e-06!r}"),
            ("TIME", "2010-01-01T00:00:00.000/"),
            ("FORMAT", "votable"),
            ("MAXREC", "5"),
        ]

    def test_single_value_band(self):
        assert ssa.ssa_range((5e-7, 5e-7)) == "5e-07"

    def test_diameter_and_radius_exclusive(self):
        with pytest.raises(vosweep.UsageError, match="diameter or a radius"):
            vosweep.SpectrumQuery((1, 2), radius=1, diameter=2)

    def test_wrong_query_for_protocol(self):
        with pytest.raises(vosweep.UsageError, match="SSA service cannot answer"):
            ssa.build(SSA, vosweep.TapQuery("SELECT 1"))


class TestPerProtocol:
    def test_each_service_gets_its_query(self):
        cone = vosweep.Cone(ra=1, dec=2, radius=0.1)
        image = vosweep.ImageQuery((1, 2), size=0.2)
        query = vosweep.PerProtocol(scs=cone, sia=image)
        targets = [
            vosweep.Service.scs("http://a.test/scs"),
            SIA1,
            SIA2,
            SSA,
        ]
        jobs = list(Plan(targets, query))
        assert jobs[0].query is cone
        assert jobs[1].query is image
        assert jobs[2].query is image
        assert jobs[3].skip_reason == "no query given for SSA services"
        assert query.protocols == {
            vosweep.Protocol.SCS,
            vosweep.Protocol.SIA,
            vosweep.Protocol.SIA2,
        }

    def test_registry_expansion_protocols(self):
        assert query_protocols(vosweep.Cone(ra=1, dec=2, radius=1)) == {vosweep.Protocol.SCS}
        assert query_protocols(vosweep.ImageQuery((1, 2), size=1)) == {
            vosweep.Protocol.SIA,
            vosweep.Protocol.SIA2,
        }


class TestMetadata:
    def test_requests(self):
        assert params(metadata_request(SIA1).url)[1:] == [("FORMAT", "METADATA")]
        assert params(metadata_request(SSA).url) == [
            ("REQUEST", "queryData"),
            ("FORMAT", "METADATA"),
        ]
        assert params(metadata_request(SIA2).url) == [("MAXREC", "0")]

    def test_parse_input_params(self):
        body = b"""<?xml version="1.0"?>
<VOTABLE xmlns="http://www.ivoa.net/xml/VOTable/v1.3" version="1.3"><RESOURCE type="results">
<INFO name="QUERY_STATUS" value="OK"/>
<PARAM name="INPUT:POS" datatype="double" arraysize="2" unit="deg" value="0,0">
<DESCRIPTION>Search position</DESCRIPTION></PARAM>
<PARAM name="INPUT:BAND_NAME" datatype="char" arraysize="*" value="">
<DESCRIPTION>Filter</DESCRIPTION><VALUES><OPTION value="R"/><OPTION value="V"/></VALUES></PARAM>
<PARAM name="OUTPUT:ignored" datatype="char" arraysize="*" value="x"/>
<TABLE><FIELD name="a" datatype="int"/></TABLE></RESOURCE></VOTABLE>"""
        found = parse_metadata(body)
        assert [p.name for p in found] == ["POS", "BAND_NAME"]
        assert found[0].unit == "deg"
        assert found[0].description == "Search position"
        assert found[1].options == ("R", "V")
        assert found[1].default is None

    def test_error_status(self):
        body = (
            b'<VOTABLE><RESOURCE><INFO name="QUERY_STATUS" value="ERROR">no metadata</INFO>'
            b"</RESOURCE></VOTABLE>"
        )
        with pytest.raises(vosweep.QueryRejected, match="no metadata"):
            parse_metadata(body)

    def test_html_is_named(self):
        with pytest.raises(vosweep.ResponseFormatError, match="HTML"):
            parse_metadata(b"<html><head><title>Oops</title></head></html>")


class TestDatalinkSources:
    def test_obscore_rows_with_datalink_format(self):
        table = Table(
            {
                "obs_id": ["a", "b", "c", "d"],
                "access_url": [
                    "http://h.test/dl?ID=a",
                    "http://h.test/data/b.fits",
                    "http://h.test/dl?ID=a",
                    "http://h.test/dl?ID=d",
                ],
                "access_format": [
                    "application/x-votable+xml;content=datalink",
                    "image/fits",
                    "application/x-votable+xml;content=datalink",
                    "application/x-votable+xml; content=DataLink",
                ],
            }
        )
        services = links.datalink_services(table)
        assert [s.access_url for s in services] == [
            "http://h.test/dl?ID=a",
            "http://h.test/dl?ID=d",
        ]
        assert {s.protocol for s in services} == {vosweep.Protocol.DATALINK}

    def test_ssa_columns_by_utype(self):
        table = Table(
            {
                "ref": ["http://h.test/dl?ID=1"],
                "fmt": ["application/x-votable+xml;content=datalink"],
            }
        )
        table["ref"].meta["utype"] = "ssa:Access.Reference"
        table["fmt"].meta["utype"] = "ssa:Access.Format"
        assert len(links.datalink_services(table)) == 1

    def test_no_columns(self):
        with pytest.raises(vosweep.UsageError, match="access URL and access format"):
            links.datalink_services(Table({"ra": [1.0]}))


DESCRIPTOR_DOC = b"""<?xml version="1.0"?>
<VOTABLE xmlns="http://www.ivoa.net/xml/VOTable/v1.3" version="1.4">
<RESOURCE type="results"><INFO name="QUERY_STATUS" value="OK"/>
<TABLE><FIELD name="pub_did" ID="ssa_pubDID" datatype="char" arraysize="*"/>
<DATA><TABLEDATA><TR><TD>ivo://x/1</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE>
<RESOURCE type="meta" utype="adhoc:service">
<PARAM name="standardID" datatype="char" arraysize="*" value="ivo://ivoa.net/std/DataLink#links-1.1"/>
<PARAM name="accessURL" datatype="char" arraysize="*" value="http://h.test/dl"/>
<GROUP name="inputParams">
<PARAM name="ID" datatype="char" arraysize="*" ref="ssa_pubDID" value=""/>
<PARAM name="RESPONSEFORMAT" datatype="char" arraysize="*" value="votable"/>
</GROUP></RESOURCE></VOTABLE>"""


class TestDatalinkDescriptors:
    def test_access_from_descriptor(self):
        (access,) = links.datalink_access(DESCRIPTOR_DOC)
        assert access == links.DatalinkAccess(
            "http://h.test/dl", "pub_did", (("RESPONSEFORMAT", "votable"),)
        )

    def test_no_descriptor_costs_nothing(self):
        assert links.datalink_access(b"<VOTABLE><RESOURCE/></VOTABLE>") == ()

    def test_other_standards_ignored(self):
        soda = DESCRIPTOR_DOC.replace(b"DataLink#links-1.1", b"SODA#sync-1.0")
        assert links.datalink_access(soda) == ()

    def test_rows_batched_per_request(self):
        access = links.DatalinkAccess("http://h.test/dl", "pub_did")
        table = Table(
            {
                "pub_did": [f"ivo://x/{i}" for i in range(120)] + ["ivo://x/0"],
                "service_url": ["http://h.test/ssa"] * 121,
            }
        )
        services = links.datalink_services(table, {"http://h.test/ssa": (access,)})
        counts = [
            len([v for k, v in params(s.url if hasattr(s, "url") else s.access_url) if k == "ID"])
            for s in services
        ]
        assert counts == [50, 50, 20]  # the repeated ID is asked once

    def test_rows_of_other_services_are_left(self):
        access = links.DatalinkAccess("http://h.test/dl", "pub_did")
        table = Table({"pub_did": ["a"], "service_url": ["http://elsewhere.test/ssa"]})
        assert links.datalink_services(table, {"http://h.test/ssa": (access,)}) == []
