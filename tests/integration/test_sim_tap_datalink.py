"""DataLink below the simulated TAP services: ObsCore rows of DataLink format resolve.

pyvo is the oracle: its TAPService finds the rows, and ``getdatalink()`` (which, with no
service descriptor in the answer, follows the ``access_url`` of rows whose
``access_format`` is DataLink) reads the links. pyvo runs in worker threads while the
simulator serves on the test's event loop.
"""

from __future__ import annotations

import functools
import io
import re
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp
import anyio
import pytest
import requests
from astropy.io import fits
from astropy.io.votable import parse
from hypothesis import given
from hypothesis import strategies as st

SIM_EXTRA = "the simulated TAP services need the sim extra: pip install 'vosweep[sim]'"
pytest.importorskip("sqlglot", reason=SIM_EXTRA)
pyvo = pytest.importorskip("pyvo", reason="pyvo is the oracle: pip install 'vosweep[pyvo]'")

from pyvo.dal import DALServiceError, TAPService  # noqa: E402
from pyvo.dal.adhoc import DatalinkResults  # noqa: E402

from vosweep.services import Protocol  # noqa: E402
from vosweep.testing import (  # noqa: E402
    Behaviour,
    ServiceProfile,
    ServiceSpec,
    SimulatedVO,
    TapProfile,
    TapTable,
)
from vosweep.testing._dal import DATALINK_TYPE, fits_image, png_preview  # noqa: E402
from vosweep.testing._tap import datalink_document  # noqa: E402
from vosweep.testing._tapdata import (  # noqa: E402
    ObscoreDataset,
    data_url,
    datalink_url,
    obscore_datasets,
    table_rows,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("offline_pyvo")]

T = TypeVar("T")

SEED = 11
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SEMANTICS = ["#this", "#preview", "#auxiliary"]
DATALINK_QUERY = "SELECT * FROM ivoa.obscore WHERE access_format LIKE '%datalink%'"
FLEET = [
    ServiceSpec.make(0, 0, ServiceProfile(), protocol=Protocol.TAP, seed=SEED),
    ServiceSpec.make(
        1,
        0,
        ServiceProfile(tap=TapProfile(tables=(TapTable.CATALOGUE,))),
        protocol=Protocol.TAP,
        seed=SEED,
    ),
    ServiceSpec.make(
        2, 1, ServiceProfile(behaviour=Behaviour.HTTP_500), protocol=Protocol.TAP, seed=SEED
    ),
]


@pytest.fixture(name="anyio_backend", scope="module")
def _anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="sim", scope="module")
async def _sim() -> AsyncIterator[SimulatedVO]:
    async with SimulatedVO(FLEET) as sim:
        yield sim


async def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))


def fetch(url: str) -> requests.Response:
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return response


def base(sim: SimulatedVO, index: int) -> str:
    return sim.service(index).url


def datasets_of(sim: SimulatedVO, index: int) -> dict[str, ObscoreDataset]:
    """What service *index*'s ObsCore table holds, computed without a request."""
    rows = table_rows(TapTable.OBSCORE, seed=SEED, index=index, base_url=base(sim, index))
    return obscore_datasets(rows)


async def get_links(
    url: str, method: str = "GET", params: list[tuple[str, str]] | None = None
) -> tuple[int, str, Any]:
    """One raw DataLink request: status, content type and the parsed VOTable."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            url,
            params=params if method == "GET" else None,
            data=params if method == "POST" else None,
        ) as response,
    ):
        body = await response.read()
        return response.status, response.headers["Content-Type"], parse(io.BytesIO(body))


# -- with pyvo -----------------------------------------------------------------------------


async def test_datalink_rows_resolve_with_pyvo(sim: SimulatedVO) -> None:
    """DataLink-format rows point at /datalink?ID=<did>; getdatalink() gives working links."""
    url = base(sim, 0)
    results = await in_thread(TAPService(url).run_sync, DATALINK_QUERY)
    records = list(results)
    assert records
    for record in records:
        assert record["access_format"] == DATALINK_TYPE
        did = record["obs_publisher_did"]
        assert record["access_url"] == f"{url}/datalink?ID={quote(did, safe='')}"
    for record in records[:3]:
        links = await in_thread(record.getdatalink)
        assert [link.semantics for link in links] == SEMANTICS
        assert {link["ID"] for link in links} == {record["obs_publisher_did"]}
        assert not any(link.error_message for link in links)
        preview = next(links.bysemantics("#preview"))
        response = await in_thread(fetch, preview.access_url)
        assert response.content.startswith(PNG_MAGIC)
        assert response.headers["Content-Type"] == preview.content_type == "image/png"
        assert len(response.content) == preview.content_length
        this = next(links.bysemantics("#this"))
        assert this.access_url == f"{url}/data/{record['obs_id']}.fits"
        assert this["content_qualifier"] == "#cube"
        body = (await in_thread(fetch, this.access_url)).content
        assert len(body) == this.content_length
        with fits.open(io.BytesIO(body)) as hdus:
            assert hdus[0].data.shape == (16, 16)
        auxiliary = next(links.bysemantics("#auxiliary"))
        assert (await in_thread(fetch, auxiliary.access_url)).content == fits_image()


async def test_other_rows_keep_their_data_files(sim: SimulatedVO) -> None:
    """Rows of other formats point at data files that are served, and have no DataLink."""
    url = base(sim, 0)
    query = (
        "SELECT TOP 20 * FROM ivoa.obscore WHERE access_format NOT LIKE '%datalink%'"
        " ORDER BY obs_id"
    )
    results = await in_thread(TAPService(url).run_sync, query)
    assert len(results) == 20
    for record in results:
        assert record["access_url"] == f"{url}/data/{record['obs_id']}.fits"
    assert (await in_thread(fetch, results[0]["access_url"])).content == fits_image()
    with pytest.raises(DALServiceError, match="No datalink"):
        await in_thread(results[0].getdatalink)


async def test_iter_datalinks_follows_every_row(sim: SimulatedVO) -> None:
    """pyvo's iter_datalinks() resolves each DataLink row of a result, and only those."""
    query = "SELECT TOP 12 * FROM ivoa.obscore ORDER BY obs_id"
    results = await in_thread(TAPService(base(sim, 0)).run_sync, query)
    linked = [r for r in results if r["access_format"] == DATALINK_TYPE]
    assert 0 < len(linked) < len(results)
    batches = await in_thread(lambda: list(results.iter_datalinks()))
    assert [len(batch) for batch in batches] == [3] * len(linked)
    assert [batch[0]["ID"] for batch in batches] == [r["obs_publisher_did"] for r in linked]


async def test_unknown_id_is_a_not_found_row_in_pyvo(sim: SimulatedVO) -> None:
    """An unknown ID answers one row whose error_message is a NotFoundFault."""
    unknown = "ivo://sim.vosweep.test/tap/00000?obs0-99999"
    links = await in_thread(DatalinkResults.from_result_url, datalink_url(base(sim, 0), unknown))
    assert len(links) == 1
    (row,) = list(links)
    assert unknown == row["ID"]
    assert row.error_message.startswith("NotFoundFault")
    assert not row["access_url"]


# -- raw HTTP ------------------------------------------------------------------------------


async def test_datalink_endpoint_get_post_maxrec(sim: SimulatedVO) -> None:
    """Repeated IDs keep their order (GET and POST); MAXREC cuts with OVERFLOW."""
    url = f"{base(sim, 0)}/datalink"
    known = sorted(datasets_of(sim, 0))
    ids = [known[0], "ivo://elsewhere/x?y", known[-1]]
    status, content_type, got = await get_links(url, params=[("ID", i) for i in ids])
    assert (status, content_type) == (200, DATALINK_TYPE)
    table = got.get_first_table().to_table()
    assert list(table["ID"]) == [ids[0]] * 3 + [ids[1]] + [ids[2]] * 3
    assert list(table["semantics"]) == [*SEMANTICS, "#this", *SEMANTICS]
    assert table["error_message"][3].startswith("NotFoundFault")
    assert not table["access_url"][3]
    assert [info.value for info in got.resources[0].infos] == ["OK"]
    _, _, posted = await get_links(url, "POST", [("id", i) for i in ids])
    assert list(posted.get_first_table().to_table()["ID"]) == list(table["ID"])
    params = [("ID", known[0]), ("ID", known[1]), ("MAXREC", "4")]
    _, _, cut = await get_links(url, params=params)
    assert len(cut.get_first_table().array) == 4
    assert [info.value for info in cut.resources[0].infos] == ["OK", "OVERFLOW"]


@pytest.mark.parametrize(
    "params",
    [[], [("ID", "x"), ("MAXREC", "-1")], [("ID", "x"), ("RESPONSEFORMAT", "csv")]],
)
async def test_datalink_usage_faults(sim: SimulatedVO, params: list[tuple[str, str]]) -> None:
    """No ID, a bad MAXREC or a format other than VOTable: a UsageFault with HTTP 400."""
    status, content_type, document = await get_links(f"{base(sim, 0)}/datalink", params=params)
    assert (status, content_type) == (400, DATALINK_TYPE)
    (info,) = document.resources[0].infos
    assert info.value == "ERROR"
    assert info.content.startswith("UsageFault")


async def test_files_only_for_known_datasets(sim: SimulatedVO) -> None:
    """Data and previews of known obs_ids are served; others, and other services', 404."""
    dataset = next(iter(datasets_of(sim, 0).values()))
    url = base(sim, 0)
    paths = {
        f"/data/{dataset.obs_id}.fits": (200, "application/fits"),
        f"/data/{dataset.obs_id}.aux.fits": (200, "application/fits"),
        f"/preview/{dataset.obs_id}.png": (200, "image/png"),
        "/data/obs0-99999.fits": (404, "text/plain"),
        "/preview/obs0-99999.png": (404, "text/plain"),
        "/preview/obs2-00000.png": (404, "text/plain"),  # service 2's, not this one's
        f"/data/{dataset.obs_id}.png": (404, "text/plain"),
    }
    async with aiohttp.ClientSession() as session:
        for path, expected in paths.items():
            async with session.get(url + path) as response:
                assert (response.status, response.content_type) == expected, path
                body = await response.read()
            if expected[1] == "image/png":
                assert body == png_preview()
        async with session.get(f"{base(sim, 1)}/data/{dataset.obs_id}.fits") as response:
            assert response.status == 404


async def test_links_answer_whatever_the_behaviour(sim: SimulatedVO) -> None:
    """A failing service's queries fail, but its links still resolve; no ObsCore, no links."""
    with pytest.raises(DALServiceError):
        await in_thread(TAPService(base(sim, 2)).run_sync, "SELECT TOP 1 * FROM ivoa.obscore")
    did, dataset = next(iter(datasets_of(sim, 2).items()))
    _, _, got = await get_links(f"{base(sim, 2)}/datalink", params=[("ID", did)])
    (access_url,) = got.get_first_table().to_table()["access_url"][:1]
    assert access_url == data_url(base(sim, 2), dataset.obs_id)
    _, _, none = await get_links(f"{base(sim, 1)}/datalink", params=[("ID", did)])
    (message,) = none.get_first_table().to_table()["error_message"]
    assert message.startswith("NotFoundFault")


# -- pure ----------------------------------------------------------------------------------


def test_rows_point_where_their_format_says() -> None:
    """DataLink-format rows hold their /datalink URL; others their data file."""
    rows = table_rows(TapTable.OBSCORE, seed=SEED, index=4, base_url="http://h/tap/4/")
    datasets = obscore_datasets(rows)
    assert len(datasets) == len(rows)
    kinds = {d.dataproduct_type for d in datasets.values() if d.access_format == DATALINK_TYPE}
    assert kinds == {"cube"}
    for row in rows:
        dataset = datasets[str(row[4])]
        linked = dataset.access_format == DATALINK_TYPE
        expected = (
            datalink_url("http://h/tap/4", dataset.did)
            if linked
            else f"http://h/tap/4/data/{dataset.obs_id}.fits"
        )
        assert row[5] == expected


#: XML 1.0's Char production: what a VOTable can carry.
XML_CHARS = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")


@given(did=st.text(min_size=1, max_size=40))
def test_datalink_url_round_trips(did: str) -> None:
    """Any DID survives the access URL's query string."""
    url = datalink_url("http://h/tap/1", did)
    assert url.startswith("http://h/tap/1/datalink?ID=")
    assert parse_qs(urlsplit(url).query, keep_blank_values=True)["ID"] == [did]


@given(
    ids=st.lists(st.text(min_size=1, max_size=30), max_size=6),
    known=st.lists(st.booleans(), min_size=6, max_size=6),
    limit=st.integers(0, 25),
)
def test_datalink_document_rows(ids: list[str], known: list[bool], limit: int) -> None:
    """Three rows per known ID, one per unknown, in order, cut at the limit; any ID text.

    IDs that XML can carry come back (astropy strips XML whitespace); others still give a document
    that parses.
    """
    datasets = {
        did: ObscoreDataset(did, f"obs1-{k:05d}", "cube", DATALINK_TYPE)
        for k, (did, hit) in enumerate(zip(ids, known, strict=False))
        if hit
    }
    document = datalink_document(datasets, ids, base_url="http://h/tap/1", limit=limit)
    expected = [i for i in ids for _ in range(3 if i in datasets else 1)]
    votable = parse(io.BytesIO(document.encode()))
    table = votable.get_first_table().to_table()
    assert len(table) == min(len(expected), limit)
    for got, sent in zip(table["ID"], expected, strict=False):
        if XML_CHARS.fullmatch(sent):
            assert got == sent.strip(" \t\r\n")
    overflow = len(expected) > limit
    assert [info.value for info in votable.resources[0].infos] == (
        ["OK", "OVERFLOW"] if overflow else ["OK"]
    )
    assert document.status == ("OVERFLOW" if overflow else "OK")
