"""Registry results: interfaces, resources and result lists, with pyvo's accessors."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pytest

import vosweep
from vosweep.errors import UsageError
from vosweep.registry import (
    Column,
    Contact,
    Interface,
    RegistryResource,
    RegistryResults,
    TableMeta,
)
from vosweep.services import Protocol

STD = "ivo://ivoa.net/std/"
SCS_URL = "http://cds.test/cone/a?"


def intf(standard_id: str | None, url: str, **kwargs: object) -> Interface:
    kwargs.setdefault("role", "std" if standard_id else None)
    kwargs.setdefault("type", "vs:paramhttp" if standard_id else "vr:webbrowser")
    return Interface(access_url=url, standard_id=standard_id, **kwargs)


CATALOGUE = RegistryResource(
    "ivo://CDS.VizieR/II/283",
    res_type="vs:catalogservice",
    short_name="II/283",
    res_title="Two cone searches, a TAP service and a web page",
    res_description="A catalogue. " * 12,
    reference_url="http://cds.test/II/283",
    content_levels=("research",),
    creators=("Doe, J.", "Roe, R."),
    waveband=("optical", "uv"),
    source_format="bibcode",
    source_value="2020A&A...1..1D",
    region_of_regard=0.5,
    subjects=("stars", "photometry"),
    alt_identifiers=("doi:10.1234/ii283",),
    interfaces=(
        intf(STD + "conesearch", "http://cds.test/cone/b?", capability_description="table b"),
        intf(
            STD + "conesearch",
            SCS_URL,
            capability_description="table a",
            mirror_urls=("http://mirror.test/cone/a?",),
        ),
        intf(STD + "tap", "http://cds.test/tap"),
        intf(None, "http://cds.test/viz-bin/II/283"),
        intf(STD + "vosi#capabilities", "http://cds.test/tap/capabilities"),
    ),
)
IMAGES = RegistryResource(
    "ivo://images.test/sia",
    short_name="images",
    res_title="Images in two SIA versions",
    interfaces=(
        intf(STD + "sia", "http://images.test/sia1?"),
        intf(STD + "sia#query-2.0", "http://images.test/sia2"),
    ),
)
SPECTRA = RegistryResource(
    "ivo://spectra.test/ssa",
    res_title="Spectra",
    interfaces=(intf(STD + "ssa", "http://spectra.test/ssa?"),),
)
BARE = RegistryResource("ivo://bare.test/nothing", short_name="bare")


class TestInterface:
    @pytest.mark.parametrize(
        ("standard_id", "protocol"),
        [
            (STD + "conesearch", Protocol.SCS),
            (STD + "sia", Protocol.SIA),
            (STD + "sia#query-1.0", Protocol.SIA),
            (STD + "sia#query-2.0", Protocol.SIA2),
            (STD + "sia#query-aux-2.0", Protocol.SIA2),
            (STD + "ssa", Protocol.SSA),
            (STD + "tap", Protocol.TAP),
            (STD + "tap#aux", Protocol.TAP),
            (STD + "slap", None),
            (STD + "vosi#capabilities", None),
            (None, None),
        ],
    )
    def test_protocol(self, standard_id: str | None, protocol: Protocol | None):
        assert intf(standard_id, "http://x.test/s").protocol is protocol

    def test_flags(self):
        vosi = intf(STD + "vosi#tables", "http://x.test/tables")
        assert vosi.is_vosi
        assert vosi.is_standard
        web = intf(None, "http://x.test/")
        assert not web.is_vosi
        assert not web.is_standard
        assert not intf(STD + "tap", "http://x.test/tap", role=None).is_standard

    def test_supports_ignores_fragments_but_keeps_sia2_apart(self):
        tap_aux = intf(STD + "tap#aux", "http://x.test/tap")
        assert tap_aux.supports(STD + "tap")
        assert tap_aux.supports("IVO://IVOA.NET/STD/TAP")
        sia2 = intf(STD + "sia#query-2.0", "http://x.test/sia2")
        assert not sia2.supports(STD + "sia")
        assert sia2.supports(STD + "sia#query-2.0")
        assert not intf(STD + "sia", "http://x.test/sia").supports(STD + "sia#query-2.0")
        assert not intf(None, "http://x.test/").supports(STD + "tap")

    def test_to_service(self):
        service = CATALOGUE.interfaces[1].to_service(CATALOGUE)
        assert service == vosweep.Service.scs(
            SCS_URL,
            ivoid="ivo://CDS.VizieR/II/283",
            name="II/283",
            title=CATALOGUE.res_title,
            mirrors=("http://mirror.test/cone/a?",),
        )
        bare = intf(STD + "sia#query-2.0", "http://x.test/sia2").to_service()
        assert bare.protocol is Protocol.SIA2
        assert bare.ivoid is None

    @pytest.mark.parametrize(
        "interface",
        [
            intf(None, "http://x.test/"),
            intf(STD + "tap", "http://x.test/tap", role=None),
            intf(STD + "slap", "http://x.test/slap"),
        ],
        ids=["web", "not-std", "slap"],
    )
    def test_to_service_refuses_what_vosweep_cannot_query(self, interface: Interface):
        with pytest.raises(UsageError, match=r"cannot query the interface at http://x\.test/"):
            interface.to_service()

    def test_repr(self):
        assert repr(CATALOGUE.interfaces[2]) == "Interface('tap', 'http://cds.test/tap')"
        assert repr(CATALOGUE.interfaces[3]) == (
            "Interface('vr:webbrowser', 'http://cds.test/viz-bin/II/283')"
        )


class TestResource:
    def test_access_modes(self):
        assert CATALOGUE.access_modes() == {"conesearch", "tap", "web"}  # no VOSI
        assert IMAGES.access_modes() == {"sia", "sia#query-2.0"}
        assert BARE.access_modes() == set()

    def test_list_interfaces(self):
        urls = [i.access_url for i in CATALOGUE.list_interfaces()]
        assert urls == [SCS_URL, "http://cds.test/cone/b?", "http://cds.test/tap"]  # sorted
        assert [i.access_url for i in CATALOGUE.list_interfaces("scs")] == [
            SCS_URL,
            "http://cds.test/cone/b?",
        ]
        assert CATALOGUE.list_interfaces("conesearch") == CATALOGUE.list_interfaces("scs")
        assert [i.access_url for i in CATALOGUE.list_interfaces(STD + "tap")] == [
            "http://cds.test/tap"
        ]
        assert CATALOGUE.list_interfaces("ssa") == []
        # other names are standard ids, with or without the ivo://ivoa.net/std/ prefix
        assert CATALOGUE.list_interfaces("tap#aux") == CATALOGUE.list_interfaces("tap")

    def test_sia1_and_sia2_are_told_apart(self):
        assert [i.access_url for i in IMAGES.list_interfaces("sia")] == ["http://images.test/sia1?"]
        assert [i.access_url for i in IMAGES.list_interfaces("sia2")] == ["http://images.test/sia2"]
        assert IMAGES.get_service("sia").protocol is Protocol.SIA
        assert IMAGES.get_service("sia2").protocol is Protocol.SIA2
        assert IMAGES.get_service("sia2").access_url == "http://images.test/sia2"
        assert [s.protocol for s in IMAGES.services()] == [Protocol.SIA, Protocol.SIA2]
        assert [s.access_url for s in IMAGES.services("sia2")] == ["http://images.test/sia2"]

    def test_get_interface(self):
        assert CATALOGUE.get_interface("tap").access_url == "http://cds.test/tap"
        assert CATALOGUE.get_interface("web").access_url == "http://cds.test/viz-bin/II/283"
        # lax=True takes the first of several (pyvo's default is lax=False, and so is ours)
        assert CATALOGUE.get_interface("scs", lax=True).access_url == "http://cds.test/cone/b?"
        assert CATALOGUE.get_interface("scs", keyword="table a").access_url == SCS_URL
        assert CATALOGUE.get_interface(keyword="table a", lax=True).access_url == SCS_URL

    def test_get_interface_lax_false_refuses_several(self):
        with pytest.raises(UsageError, match=r"has 2 scs interfaces;.*lax=True.*keyword="):
            CATALOGUE.get_interface("scs", lax=False)
        with pytest.raises(UsageError, match="has 3 standard interfaces"):
            CATALOGUE.get_interface(lax=False)
        assert CATALOGUE.get_interface("scs", lax=False, keyword="table b").access_url == (
            "http://cds.test/cone/b?"
        )

    def test_get_interface_std_only(self):
        resource = RegistryResource(
            "ivo://x.test/r", interfaces=(intf(STD + "tap", "http://x.test/tap", role=None),)
        )
        with pytest.raises(UsageError, match="no tap interface"):
            resource.get_interface("tap")
        assert resource.get_interface("tap", std_only=False).access_url == "http://x.test/tap"

    def test_get_service(self):
        service = CATALOGUE.get_service("tap")
        assert service == vosweep.Service.tap(
            "http://cds.test/tap",
            ivoid=CATALOGUE.ivoid,
            name="II/283",
            title=CATALOGUE.res_title,
        )
        assert CATALOGUE.get_service("conesearch", keyword="table a").mirrors == (
            "http://mirror.test/cone/a?",
        )

    def test_get_service_errors_name_the_access_modes(self):
        with pytest.raises(UsageError) as info:
            CATALOGUE.get_service("ssa")
        message = str(info.value)
        assert "ivo://CDS.VizieR/II/283 has no ssa interface" in message
        assert "its access modes: conesearch, tap, web" in message
        with pytest.raises(UsageError, match=r"no standard interface \(its access modes: none\)"):
            BARE.get_service()
        with pytest.raises(UsageError, match="has 2 scs interfaces"):
            CATALOGUE.get_service("scs", lax=False)
        with pytest.raises(UsageError, match="cannot query"):
            CATALOGUE.get_service("web")
        with pytest.raises(UsageError, match="no scs interface"):
            CATALOGUE.get_service("scs", keyword="no such table")

    def test_services(self):
        assert [s.access_url for s in CATALOGUE.services()] == [
            "http://cds.test/cone/b?",
            SCS_URL,
            "http://cds.test/tap",
        ]
        assert [s.protocol for s in CATALOGUE.services(Protocol.SCS)] == [Protocol.SCS] * 2
        assert CATALOGUE.services("ssa") == []
        assert CATALOGUE.vosweep_services(Protocol.TAP) == CATALOGUE.services("tap")
        assert CATALOGUE.vosweep_services(None) == CATALOGUE.services()
        only_tap = CATALOGUE.services(wanted=lambda standard_id: standard_id.endswith("/tap"))
        assert [s.protocol for s in only_tap] == [Protocol.TAP]

    def test_access_url_and_standard_id(self):
        assert SPECTRA.access_url == "http://spectra.test/ssa?"
        assert SPECTRA.standard_id == STD + "ssa"
        with pytest.raises(UsageError, match="has 3 access URLs: use get_service"):
            _ = CATALOGUE.access_url
        with pytest.raises(UsageError, match="has no access URLs"):
            _ = BARE.access_url
        with pytest.raises(UsageError, match=r"supports 2 standards \(.*conesearch, .*tap\)"):
            _ = CATALOGUE.standard_id
        with pytest.raises(UsageError, match="supports no standards"):
            _ = BARE.standard_id

    def test_alt_identifiers(self):
        assert CATALOGUE.get_alt_identifiers() == ["doi:10.1234/ii283"]
        assert BARE.get_alt_identifiers() == []

    @pytest.mark.anyio
    async def test_follow_ups_need_a_registry(self):
        with pytest.raises(UsageError, match="not found through a registry"):
            await BARE.get_tables()
        with pytest.raises(UsageError, match="not found through a registry"):
            await BARE.get_contact()
        with pytest.raises(UsageError, match="not found through a registry"):
            await BARE.get_contacts()

    def test_describe(self, capsys: pytest.CaptureFixture[str]):
        CATALOGUE.describe()
        out = capsys.readouterr().out
        lines = out.splitlines()
        assert lines[:5] == [
            "Two cone searches, a TAP service and a web page",
            "Short Name: II/283",
            "IVOA Identifier: ivo://CDS.VizieR/II/283",
            "Access modes: conesearch, tap, web",
            "Waveband Coverage: optical, uv",
        ]
        assert "- scs: http://cds.test/cone/b?" in lines
        assert "- tap: http://cds.test/tap" in lines
        assert "vosi" not in out
        assert all(len(line) <= 78 for line in lines)
        assert "A catalogue. A catalogue." in out
        assert "Subjects" not in out  # verbose only

    def test_describe_verbose_to_a_file(self, capsys: pytest.CaptureFixture[str]):
        buffer = io.StringIO()
        CATALOGUE.describe(verbose=True, width=40, file=buffer)
        assert capsys.readouterr().out == ""
        out = buffer.getvalue()
        assert "Subjects: stars, photometry" in out
        assert "Authors: Doe, J.; Roe, R." in out
        assert "Source: 2020A&A...1..1D" in out
        assert "Alternative identifier(s): doi:10.1234/ii283" in out
        assert "More info: http://cds.test/II/283" in out
        description = out.split("\n\n")[1]
        assert max(len(line) for line in description.splitlines()) <= 40

    def test_describe_minimal(self, capsys: pytest.CaptureFixture[str]):
        RegistryResource("ivo://x.test/r").describe(verbose=True)
        assert capsys.readouterr().out == (
            "ivo://x.test/r\nShort Name: None\nIVOA Identifier: ivo://x.test/r\n"
        )

    def test_repr_equality_and_hash(self):
        assert repr(BARE) == "<RegistryResource ivo://bare.test/nothing 'bare': None>"
        same = RegistryResource("ivo://bare.test/nothing", short_name="another name")
        assert same == BARE
        assert hash(same) == hash(BARE)
        with_interface = RegistryResource(
            "ivo://bare.test/nothing", interfaces=(intf(STD + "tap", "http://x.test/tap"),)
        )
        assert with_interface != BARE
        assert BARE != "ivo://bare.test/nothing"

    def test_frozen(self):
        with pytest.raises(AttributeError):
            BARE.short_name = "x"


class FakeLink:
    """Stands for the client: records the follow-up calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    async def get_tables(
        self, resources: Sequence[RegistryResource], *, table_limit: int
    ) -> dict[str, list[TableMeta]]:
        self.calls.append((f"tables/{table_limit}", [r.ivoid for r in resources]))
        return {
            resources[0].ivoid: [
                TableMeta("t.main", columns=(Column("ra", unit="deg"), Column("dec")))
            ]
        }

    async def get_contacts(self, resources: Sequence[RegistryResource]) -> dict[str, list[Contact]]:
        self.calls.append(("contacts", [r.ivoid for r in resources]))
        return {resources[0].ivoid: [Contact(name="Help desk", email="help@x.test")]}


def results(*resources: RegistryResource, **kwargs: object) -> RegistryResults:
    return RegistryResults(resources or (CATALOGUE, IMAGES, SPECTRA, BARE), **kwargs)


class TestResults:
    def test_indexing(self):
        found = results()
        assert len(found) == 4
        assert found[0] is CATALOGUE
        assert found[-1] is BARE
        assert list(found[1:3]) == [IMAGES, SPECTRA]
        assert found["ivo://CDS.VizieR/II/283"] is CATALOGUE
        assert found["IVO://cds.vizier/ii/283"] is CATALOGUE  # ivoids compare case-insensitively
        assert found["II/283"] is CATALOGUE
        assert found["images"] is IMAGES
        assert list(found) == [CATALOGUE, IMAGES, SPECTRA, BARE]
        assert found.ivoids == [r.ivoid for r in found]
        assert CATALOGUE in found
        with pytest.raises(IndexError):
            found[4]

    def test_unknown_key(self):
        with pytest.raises(KeyError, match="no resource with ivoid or short name 'ii/283'"):
            results()["ii/283"]  # short names are case-sensitive
        with pytest.raises(KeyError, match="'ivo://nowhere'"):
            results()["ivo://nowhere"]

    def test_duplicate_short_names_first_wins(self):
        twin = RegistryResource("ivo://other.test/images", short_name="images")
        found = results(IMAGES, twin)
        assert found["images"] is IMAGES
        assert found["ivo://other.test/images"] is twin

    def test_repr(self):
        assert repr(results()) == "<RegistryResults: 4 resources from ?>"
        found = results(BARE, endpoint="http://reg.test/tap", overflow=True)
        assert repr(found) == "<RegistryResults: 1 resources from http://reg.test/tap, overflow>"

    def test_services(self):
        found = results()
        assert [s.protocol for s in found.services()] == [
            Protocol.SCS,
            Protocol.SCS,
            Protocol.TAP,
            Protocol.SIA,
            Protocol.SIA2,
            Protocol.SSA,
        ]
        assert [s.access_url for s in found.services(Protocol.SSA)] == ["http://spectra.test/ssa?"]
        assert found.vosweep_services(Protocol.SIA2) == found.services("sia2")

    def test_services_keep_to_the_searched_service_types(self):
        """A TAP search's results do not offer the resources' cone searches."""
        tap_search = vosweep.registry.search(servicetype="tap")
        found = results(spec=tap_search)
        assert [s.access_url for s in found.services()] == ["http://cds.test/tap"]
        assert found.services(Protocol.SCS) == []
        scs_search = vosweep.registry.search(servicetype="scs")
        assert len(results(spec=scs_search).services()) == 2

    def test_to_table(self):
        table = results(endpoint="http://reg.test/tap", query="SELECT 1").to_table()
        assert table.colnames == [
            "ivoid",
            "res_type",
            "short_name",
            "res_title",
            "content_levels",
            "res_description",
            "reference_url",
            "creators",
            "content_types",
            "source_format",
            "source_value",
            "region_of_regard",
            "waveband",
            "access_urls",
            "standard_ids",
            "intf_types",
            "intf_roles",
            "alt_identifier",
        ]
        assert len(table) == 4
        row = table[0]
        assert row["ivoid"] == "ivo://CDS.VizieR/II/283"
        assert row["waveband"] == "optical#uv"
        assert row["creators"] == "Doe, J.; Roe, R."
        assert row["alt_identifier"] == "doi:10.1234/ii283"
        assert row["access_urls"] == (
            f"http://cds.test/cone/b?#{SCS_URL}#http://cds.test/tap#http://cds.test/viz-bin/II/283"
        )
        assert row["standard_ids"] == f"{STD}conesearch#{STD}conesearch#{STD}tap#"
        assert row["intf_roles"] == "std#std#std#"
        assert row["region_of_regard"] == 0.5
        assert np.ma.is_masked(table["region_of_regard"][1])
        assert table["short_name"][2] == ""
        assert table.meta == {"query": "SELECT 1", "endpoint": "http://reg.test/tap"}

    def test_to_table_of_nothing(self):
        table = RegistryResults([]).to_table()
        assert len(table) == 0
        assert "ivoid" in table.colnames

    def test_get_summary(self):
        summary = results().get_summary()
        assert summary.colnames == ["index", "short_name", "title", "description", "interfaces"]
        assert list(summary["index"]) == [0, 1, 2, 3]
        assert summary["interfaces"][0] == "conesearch, tap, web"
        assert summary["short_name"][3] == "bare"

    @pytest.mark.anyio
    async def test_follow_ups_are_one_call_for_all_resources(self):
        link = FakeLink()
        found = results(CATALOGUE, IMAGES, link=link)
        tables = await found.get_tables(table_limit=7)
        assert link.calls == [("tables/7", [CATALOGUE.ivoid, IMAGES.ivoid])]
        assert list(tables) == [CATALOGUE.ivoid, IMAGES.ivoid]
        assert tables[IMAGES.ivoid] == {}
        main = tables[CATALOGUE.ivoid]["t.main"]
        assert [c.name for c in main.columns] == ["ra", "dec"]
        contacts = await found.get_contacts()
        assert link.calls[-1] == ("contacts", [CATALOGUE.ivoid, IMAGES.ivoid])
        assert contacts == {CATALOGUE.ivoid: [Contact(name="Help desk", email="help@x.test")]}

    @pytest.mark.anyio
    async def test_follow_ups_need_a_registry(self):
        with pytest.raises(UsageError, match="not found through a registry"):
            await results().get_tables()
        with pytest.raises(UsageError, match="not found through a registry"):
            await results().get_contacts()
        # nothing to ask about: no registry needed
        assert await RegistryResults([]).get_tables() == {}
        assert await RegistryResults([]).get_contacts() == {}


def test_contact_text():
    assert str(Contact(name="CDS", email="cds@x.test", telephone=None, address="Strasbourg")) == (
        "CDS, cds@x.test, Strasbourg"
    )
    assert str(Contact()) == ""
