"""Fan-out targets: services, URLs, registry results and resources, and pyvo's objects."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

import vosweep
from vosweep.errors import UsageError
from vosweep.protocols.base import Request, Response
from vosweep.registry import Interface, RegistryResource, RegistryResults
from vosweep.services import Protocol, Service, protocol_of_standard
from vosweep.targets import Skipped, expand_targets
from vosweep.transport import MockTransport

STD = "ivo://ivoa.net/std/"
CONE = vosweep.Cone(ra=10, dec=20, radius=0.1)


def expand(targets: Any, protocol: Protocol | None = Protocol.SCS) -> list[Any]:
    return list(expand_targets(targets, protocol))


def vosweep_resource(ivoid: str, *interfaces: tuple[str, str]) -> RegistryResource:
    return RegistryResource(
        ivoid,
        short_name=ivoid.rsplit("/", 1)[-1],
        interfaces=tuple(
            Interface(access_url=url, standard_id=std, role="std", type="vs:paramhttp")
            for std, url in interfaces
        ),
    )


CATALOGUE = vosweep_resource(
    "ivo://cds.test/cat",
    (STD + "conesearch", "http://cds.test/cone/a?"),
    (STD + "conesearch", "http://cds.test/cone/b?"),
    (STD + "tap", "http://cds.test/tap"),
)
ARCHIVE = vosweep_resource(
    "ivo://archive.test/tap",
    (STD + "tap", "http://archive.test/tap"),
    (STD + "ssa", "http://archive.test/ssa?"),
)


class TestPlainTargets:
    def test_services_and_urls_pass_through(self):
        service = Service.ssa("http://a.test/ssa")
        assert expand([service, "http://b.test/cone"]) == [service, "http://b.test/cone"]

    def test_lazy(self):
        def endless() -> Iterator[str]:
            n = 0
            while True:
                n += 1
                yield f"http://h{n}.test/scs"

        targets = expand_targets(endless(), Protocol.SCS)
        assert [next(targets) for _ in range(3)] == [
            "http://h1.test/scs",
            "http://h2.test/scs",
            "http://h3.test/scs",
        ]

    def test_unknown_target_is_named_with_its_position(self):
        with pytest.raises(UsageError, match=r"target #1: cannot use int as a fan-out target"):
            expand(["http://a.test/scs", 42])


class TestRegistryTargets:
    def test_results_passed_whole(self):
        found = RegistryResults([CATALOGUE, ARCHIVE])
        assert [s.access_url for s in expand(found)] == [
            "http://cds.test/cone/a?",
            "http://cds.test/cone/b?",
        ]
        assert [s.access_url for s in expand(found, Protocol.TAP)] == [
            "http://cds.test/tap",
            "http://archive.test/tap",
        ]
        assert len(expand(found, None)) == 5

    def test_results_keep_to_the_searched_service_types(self):
        found = RegistryResults(
            [CATALOGUE, ARCHIVE], spec=vosweep.registry.search(servicetype="ssa")
        )
        assert expand(found, Protocol.TAP) == []
        assert [s.access_url for s in expand(found, None)] == ["http://archive.test/ssa?"]

    def test_resources_and_results_in_a_list(self):
        services = expand(
            [ARCHIVE, RegistryResults([CATALOGUE]), "http://x.test/tap"], Protocol.TAP
        )
        assert services[:2] == [
            Service.tap("http://archive.test/tap", ivoid=ARCHIVE.ivoid, name="tap"),
            Service.tap("http://cds.test/tap", ivoid=CATALOGUE.ivoid, name="cat"),
        ]
        assert services[2] == "http://x.test/tap"

    def test_resource_without_interfaces_of_the_protocol(self):
        assert expand([ARCHIVE], Protocol.SCS) == []


# --- pyvo look-alikes (pyvo is recognised by duck typing and module name) ---------------------


def _fake(name: str, module: str, *bases: type) -> type:
    cls = type(name, bases or (object,), {})
    cls.__module__ = module
    return cls


class _FakeDALService:
    def __init__(self, baseurl: str) -> None:
        self.baseurl = baseurl


FakeSCS = _fake("SCSService", "pyvo.dal.scs", _FakeDALService)
FakeSIA = _fake("SIAService", "pyvo.dal.sia", _FakeDALService)
FakeSIA2 = _fake("SIA2Service", "pyvo.dal.sia2", _FakeDALService)
FakeSSA = _fake("SSAService", "pyvo.dal.ssa", _FakeDALService)
FakeTAP = _fake("TAPService", "pyvo.dal.tap", _FakeDALService)
FakeSLA = _fake("SLAService", "pyvo.dal.sla", _FakeDALService)
#: pyvo 1.5 kept ``pyvo.dal.sia2.SIAService`` as a deprecated name of SIA2Service.
FakeDeprecatedSIA2 = _fake("SIAService", "pyvo.dal.sia2", FakeSIA2)


class MyTAP(FakeTAP):
    """A user's subclass, in the user's module."""


class FakePyvoInterface:
    def __init__(self, standard_id: str | None, access_url: str, *, role: str | None = "std"):
        self.standard_id = standard_id
        self.access_url = access_url
        self.is_standard = role == "std"


class FakePyvoResource:
    """Like pyvo's RegistryResource, a mapping: iterating gives its column names."""

    def __init__(self, ivoid: str, *interfaces: FakePyvoInterface, short_name: str = "") -> None:
        self.ivoid = ivoid
        self.short_name = short_name
        self.res_title = ""
        self._interfaces = list(interfaces)

    def list_interfaces(self) -> list[FakePyvoInterface]:
        return self._interfaces

    def __iter__(self) -> Iterator[str]:
        return iter(["ivoid", "short_name", "res_title"])


class FakePyvoResults:
    def __init__(self, *resources: FakePyvoResource) -> None:
        self._resources = resources

    def __iter__(self) -> Iterator[FakePyvoResource]:
        return iter(self._resources)


for _cls in (FakePyvoResource, FakePyvoResults):
    _cls.__module__ = "pyvo.registry.regtap"
    _cls.__name__ = _cls.__qualname__ = "Registry" + _cls.__name__.removeprefix("FakePyvo")


class TestPyvoLookAlikes:
    @pytest.mark.parametrize(
        ("cls", "protocol"),
        [
            (FakeSCS, Protocol.SCS),
            (FakeSIA, Protocol.SIA),
            (FakeSIA2, Protocol.SIA2),
            (FakeDeprecatedSIA2, Protocol.SIA2),
            (FakeSSA, Protocol.SSA),
            (FakeTAP, Protocol.TAP),
            (MyTAP, Protocol.TAP),
        ],
        ids=["scs", "sia", "sia2", "sia2-deprecated-name", "ssa", "tap", "user-subclass"],
    )
    def test_dal_services(self, cls: type, protocol: Protocol):
        (service,) = expand([cls("http://x.test/svc?")], None)
        assert service == Service(protocol=protocol, access_url="http://x.test/svc?")

    def test_sia2_service_uses_its_query_endpoint(self):
        """An SIA2Service built from a base URL found its query endpoint in the capabilities."""
        sia2 = FakeSIA2("http://x.test/sia2")
        sia2.query_ep = "http://x.test/sia2/query"
        (service,) = expand([sia2], None)
        assert service.access_url == "http://x.test/sia2/query"

    def test_unknown_pyvo_object(self):
        with pytest.raises(UsageError, match="target #0: cannot use pyvo's SLAService"):
            expand([FakeSLA("http://x.test/sla")])

    def test_registry_resource(self):
        resource = FakePyvoResource(
            "ivo://x.test/r",
            FakePyvoInterface(STD + "conesearch", "http://x.test/scs?"),
            FakePyvoInterface(STD + "sia2", "http://x.test/sia2"),
            FakePyvoInterface(STD + "sia2#aux", "http://x.test/sia2-aux"),
            FakePyvoInterface(STD + "sia", "http://x.test/sia1"),
            FakePyvoInterface("IVO://IVOA.NET/STD/TAP", "http://x.test/tap"),
            FakePyvoInterface(STD + "tap", "http://x.test/tap-not-std", role=None),
            FakePyvoInterface(None, "http://x.test/web", role=None),
            FakePyvoInterface(STD + "slap", "http://x.test/slap"),
            short_name="R",
        )
        found = expand([resource], None)
        # The SIA 1.0 interface serves the images its SIA2 sibling serves: reported, not asked.
        skipped = [t for t in found if isinstance(t, Skipped)]
        assert [(t.service.access_url, t.reason) for t in skipped] == [
            ("http://x.test/sia1", "served through its SIA2 interface instead")
        ]
        everything = [t.service if isinstance(t, Skipped) else t for t in found]
        assert [(s.protocol, s.access_url) for s in everything] == [
            (Protocol.SCS, "http://x.test/scs?"),
            (Protocol.SIA2, "http://x.test/sia2"),
            (Protocol.SIA2, "http://x.test/sia2-aux"),
            (Protocol.SIA, "http://x.test/sia1"),
            (Protocol.TAP, "http://x.test/tap"),
        ]
        assert {(s.ivoid, s.name, s.title) for s in everything} == {("ivo://x.test/r", "R", None)}
        assert [s.access_url for s in expand([resource], Protocol.SIA)] == ["http://x.test/sia1"]

    def test_registry_results_in_a_list_and_whole(self):
        first = FakePyvoResource(
            "ivo://x.test/1", FakePyvoInterface(STD + "conesearch", "http://x.test/1?")
        )
        second = FakePyvoResource(
            "ivo://x.test/2", FakePyvoInterface(STD + "tap", "http://x.test/2")
        )
        results = FakePyvoResults(first, second)
        assert [s.access_url for s in expand([results])] == ["http://x.test/1?"]
        assert [s.access_url for s in expand(results, None)] == [
            "http://x.test/1?",
            "http://x.test/2",
        ]

    def test_registry_resource_passed_whole(self):
        """A pyvo resource is a Mapping: iterating it would give its column names."""
        resource = FakePyvoResource(
            "ivo://x.test/r", FakePyvoInterface(STD + "tap", "http://x.test/t")
        )
        assert [s.access_url for s in expand(resource, Protocol.TAP)] == ["http://x.test/t"]


# --- real pyvo objects, built without the network ------------------------------------------


class TestRealPyvo:
    def test_dal_services(self):
        pyvo = pytest.importorskip("pyvo")
        targets = [
            pyvo.dal.SCSService("http://127.0.0.1:1/scs"),
            pyvo.dal.SIAService("http://127.0.0.1:1/sia"),
            pyvo.dal.SIA2Service("http://127.0.0.1:1/sia2", check_baseurl=False),
            pyvo.dal.SSAService("http://127.0.0.1:1/ssa"),
            pyvo.dal.TAPService("http://127.0.0.1:1/tap"),
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyvo deprecated this name of SIA2Service
            targets.append(pyvo.dal.sia2.SIAService("http://127.0.0.1:1/q", check_baseurl=False))
        assert [(s.protocol, s.access_url) for s in expand(targets, None)] == [
            (Protocol.SCS, "http://127.0.0.1:1/scs"),
            (Protocol.SIA, "http://127.0.0.1:1/sia"),
            (Protocol.SIA2, "http://127.0.0.1:1/sia2"),
            (Protocol.SSA, "http://127.0.0.1:1/ssa"),
            (Protocol.TAP, "http://127.0.0.1:1/tap"),
            (Protocol.SIA2, "http://127.0.0.1:1/q"),
        ]

    def test_registry_results(self):
        regtap = pytest.importorskip("pyvo.registry.regtap")
        results = _pyvo_registry_results(regtap)
        assert [type(results).__module__, type(results[0]).__name__] == [
            "pyvo.registry.regtap",
            "RegistryResource",
        ]
        assert [(s.protocol, s.access_url, s.ivoid) for s in expand(results, None)] == [
            (Protocol.SCS, "http://127.0.0.1:1/scs?", "ivo://x.test/r"),
            (Protocol.SIA2, "http://127.0.0.1:1/sia2", "ivo://x.test/r"),
            (Protocol.TAP, "http://127.0.0.1:1/tap", "ivo://x.test/r"),
        ]
        assert [s.access_url for s in expand([results[0]])] == ["http://127.0.0.1:1/scs?"]
        assert [s.access_url for s in expand(results[0], Protocol.TAP)] == [
            "http://127.0.0.1:1/tap"
        ]

    @pytest.mark.anyio
    async def test_fanout_to_pyvo_objects(self):
        pyvo = pytest.importorskip("pyvo")
        regtap = pytest.importorskip("pyvo.registry.regtap")
        asked: list[str] = []

        def handler(request: Request) -> Response:
            asked.append(request.url.split("?")[0])
            body = (
                b'<?xml version="1.0"?><VOTABLE version="1.4"'
                b' xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE type="results">'
                b'<INFO name="QUERY_STATUS" value="OK"/><TABLE><FIELD name="id" datatype="int"/>'
                b"<DATA><TABLEDATA><TR><TD>7</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE>"
                b"</VOTABLE>"
            )
            return Response(url=request.url, status=200, body=body, content_type="text/xml")

        transport = MockTransport(handler)
        async with vosweep.Engine(transport=transport, user_agent_purpose="test") as engine:
            result = await engine.fanout(
                [pyvo.dal.SCSService("http://127.0.0.1:1/other-scs")], CONE
            )
            assert result.rows == 1
            result = await engine.fanout(_pyvo_registry_results(regtap), CONE)
        assert asked == ["http://127.0.0.1:1/other-scs", "http://127.0.0.1:1/scs"]
        assert result.outcomes[0].service.ivoid == "ivo://x.test/r"


def _pyvo_registry_results(regtap: Any) -> Any:
    """pyvo's RegistryResults over a one-resource VOTable shaped like pyvo's own query's."""
    from astropy.io.votable import from_table, parse  # noqa: PLC0415
    from astropy.table import Table  # noqa: PLC0415

    sep = regtap.TOKEN_SEP
    names = [c if isinstance(c, str) else c[1] for c in regtap.RegistryResource.expected_columns]
    row: dict[str, Any] = dict.fromkeys(names, "")
    row.update(
        ivoid="ivo://x.test/r",
        short_name="R",
        res_title="A resource",
        region_of_regard=float("nan"),
        access_urls=sep.join(
            [
                "http://127.0.0.1:1/scs?",
                "http://127.0.0.1:1/tap",
                "http://127.0.0.1:1/sia2",
                "http://127.0.0.1:1/web",
            ]
        ),
        standard_ids=sep.join([STD + "conesearch", STD + "tap", STD + "sia#query-2.0", ""]),
        intf_types=sep.join(["vs:paramhttp"] * 3 + ["vr:webbrowser"]),
        intf_roles=sep.join(["std"] * 3 + [""]),
        cap_descriptions=sep.join([""] * 4),
    )
    table = Table(
        rows=[row], names=names, dtype=[float if n == "region_of_regard" else str for n in names]
    )
    buffer = io.BytesIO()
    from_table(table).to_xml(buffer)
    buffer.seek(0)
    return regtap.RegistryResults(parse(buffer))


@pytest.mark.anyio
async def test_one_resource_or_service_is_a_fanout_target() -> None:
    """A single registry resource (or service) needs no list around it."""
    body = (
        b'<VOTABLE version="1.4"><RESOURCE type="results"><TABLE>'
        b'<FIELD name="a" datatype="int"/><DATA><TABLEDATA><TR><TD>1</TD></TR>'
        b"</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"
    )
    resource = RegistryResource(
        "ivo://x.test/cat",
        interfaces=(
            Interface("http://x.test/a?", "ivo://ivoa.net/std/conesearch", role="std"),
            Interface("http://x.test/b?", "ivo://ivoa.net/std/conesearch", role="std"),
        ),
    )
    mock = MockTransport(lambda request: Response(url=request.url, status=200, body=body))
    cone = vosweep.Cone(ra=1, dec=2, radius=0.1)
    async with vosweep.Engine(transport=mock, user_agent_purpose="test") as engine:
        result = await engine.fanout(resource, cone)
        single = await engine.fanout(vosweep.Service.scs("http://y.test/c?"), cone)
    assert [o.service.access_url for o in result.outcomes] == [
        "http://x.test/a?",
        "http://x.test/b?",
    ]
    assert [o.service.ivoid for o in result.outcomes] == ["ivo://x.test/cat"] * 2
    assert len(single.outcomes) == 1


@pytest.mark.parametrize(
    ("standard_id", "protocol"),
    [
        ("ivo://ivoa.net/std/ConeSearch", Protocol.SCS),
        ("ivo://ivoa.net/std/tap#aux", Protocol.TAP),
        ("ivo://ivoa.net/std/sia", Protocol.SIA),
        ("ivo://ivoa.net/std/sia#query-2.0", Protocol.SIA2),
        ("ivo://ivoa.net/std/sia#query-aux-2.0", Protocol.SIA2),
        ("ivo://ivoa.net/std/sia2", Protocol.SIA2),  # pyvo's rewriting of the SIA2 ids
        ("ivo://ivoa.net/std/ssa", Protocol.SSA),
        ("ivo://ivoa.net/std/vosi#capabilities", None),
        ("", None),
        (None, None),
    ],
)
def test_one_reading_of_standard_ids_for_registry_and_pyvo_interfaces(standard_id, protocol):
    """vosweep's interfaces and pyvo's read standard ids the same way (one function)."""
    assert protocol_of_standard(standard_id) is protocol
    if standard_id:
        interface = Interface(access_url="http://x.test/q?", standard_id=standard_id.lower())
        assert interface.protocol is protocol


class TestOneProtocolEach:
    """A resource offering the same data through several protocols is asked once."""

    @staticmethod
    def resource(*interfaces: tuple[str, str]) -> RegistryResource:
        return RegistryResource(
            ivoid="ivo://x.test/r",
            short_name="R",
            interfaces=tuple(
                Interface(access_url=url, standard_id=STD + std, role="std")
                for std, url in interfaces
            ),
        )

    def test_obscore_tap_wins_over_sia_for_an_obscore_query(self):
        resource = self.resource(
            ("sia", "http://x.test/sia1"),
            ("sia2", "http://x.test/sia2"),
            ("tap", "http://x.test/tap"),
        )
        query = vosweep.PerProtocol(
            sia=vosweep.ImageQuery(ra=1, dec=2, radius=0.1),
            tap=vosweep.TapQuery("SELECT * FROM ivoa.ObsCore WHERE 1=1"),
        )
        found = list(expand_targets([resource], query.protocols, query))
        asked = [t.access_url for t in found if isinstance(t, Service)]
        assert asked == ["http://x.test/tap"]
        reasons = {t.service.access_url: t.reason for t in found if isinstance(t, Skipped)}
        assert set(reasons) == {"http://x.test/sia1", "http://x.test/sia2"}
        assert all("ObsCore TAP" in r for r in reasons.values())

    def test_a_non_obscore_tap_query_leaves_the_image_services_alone(self):
        resource = self.resource(("sia2", "http://x.test/sia2"), ("tap", "http://x.test/tap"))
        query = vosweep.PerProtocol(
            sia=vosweep.ImageQuery(ra=1, dec=2, radius=0.1),
            tap=vosweep.TapQuery("SELECT * FROM cat.sources"),
        )
        found = list(expand_targets([resource], query.protocols, query))
        assert all(isinstance(t, Service) for t in found)

    def test_different_resources_are_not_merged(self):
        one = self.resource(("sia", "http://x.test/sia1"))
        other = RegistryResource(
            ivoid="ivo://x.test/other",
            interfaces=(
                Interface(access_url="http://x.test/sia2", standard_id=STD + "sia2", role="std"),
            ),
        )
        query = vosweep.ImageQuery(ra=1, dec=2, radius=0.1)
        found = list(expand_targets(RegistryResults([one, other]), query.protocols, query))
        assert [type(t) for t in found] == [Service, Service]

    @pytest.mark.anyio
    async def test_the_skipped_interface_is_reported_not_asked(self):
        resource = self.resource(("sia", "http://x.test/sia1"), ("sia2", "http://x.test/sia2"))
        asked: list[str] = []

        def handler(request: Request) -> Response:
            asked.append(request.url)
            return Response(url=request.url, status=500)

        async with vosweep.Engine(transport=MockTransport(handler)) as engine:
            result = await engine.fanout([resource], vosweep.ImageQuery(ra=1, dec=2, radius=0.1))
        statuses = {o.service.access_url: o.status for o in result.outcomes}
        assert statuses["http://x.test/sia1"] is vosweep.Status.SKIPPED
        assert all(url.startswith("http://x.test/sia2") for url in asked)

    @pytest.mark.anyio
    async def test_a_checkpointed_sweep_keeps_the_skip_on_resume(self, tmp_path):
        """The checkpoint stores the skip itself: resuming never asks the SIA 1.0 twin."""
        resource = self.resource(("sia", "http://x.test/sia1"), ("sia2", "http://x.test/sia2"))
        asked: list[str] = []

        def handler(request: Request) -> Response:
            asked.append(request.url)
            return Response(url=request.url, status=500)

        query = vosweep.ImageQuery(ra=1, dec=2, radius=0.1)
        path = tmp_path / "sweep.sqlite"
        async with vosweep.Engine(transport=MockTransport(handler)) as engine:
            first = await engine.fanout([resource], query, checkpoint=path)
        async with vosweep.Engine(transport=MockTransport(handler)) as engine:
            again = await engine.resume(path, retry_failed=True)
        for result in (first, again):
            statuses = {o.service.access_url: o.status for o in result.outcomes}
            assert statuses["http://x.test/sia1"] is vosweep.Status.SKIPPED
        assert asked
        assert all(url.startswith("http://x.test/sia2") for url in asked)
