"""What a DAL service says about its own parameters (``FORMAT=METADATA``), sans-I/O.

SIA 1.0 and SSA services answer ``FORMAT=METADATA`` with a VOTable without rows whose
``PARAM`` elements named ``INPUT:<name>`` describe every parameter they take, standard
and custom (a service's ``INPUT:BAND_NAME``). DALI services (SIA2) describe them the same
way in the answer to ``MAXREC=0``. Reading them tells a client which custom parameters
exist before it sends any.
"""

from __future__ import annotations

from dataclasses import dataclass

from vosweep.errors import QueryRejected, ResponseFormatError
from vosweep.protocols._xml import Element, expect_root, parse_tree
from vosweep.protocols.base import Request, with_params
from vosweep.services import Protocol, Service

__all__ = ["ServiceParameter", "metadata_request", "parse_metadata"]


@dataclass(frozen=True, slots=True)
class ServiceParameter:
    """One input parameter a service declares.

    Attributes:
        name: The parameter name to send (without the ``INPUT:`` prefix).
        datatype: The VOTable datatype.
        arraysize: The VOTable arraysize, if any.
        unit: Its unit, if any.
        ucd: Its UCD, if any.
        xtype: Its xtype (``interval``, ``circle`` ...), if any.
        description: What it means, as the service says.
        default: The PARAM's value (the default, or an example).
        options: Allowed values (``VALUES/OPTION``).
        minimum: ``VALUES/MIN``, as written.
        maximum: ``VALUES/MAX``, as written.
    """

    name: str
    datatype: str | None = None
    arraysize: str | None = None
    unit: str | None = None
    ucd: str | None = None
    xtype: str | None = None
    description: str | None = None
    default: str | None = None
    options: tuple[str, ...] = ()
    minimum: str | None = None
    maximum: str | None = None


def metadata_request(service: Service) -> Request:
    """``FORMAT=METADATA`` (SIA 1.0, SSA), or ``MAXREC=0`` for DALI services (SIA2)."""
    if service.protocol is Protocol.SIA2:
        return Request(url=with_params(service.access_url, [("MAXREC", "0")]))
    params = [("FORMAT", "METADATA")]
    if service.protocol is Protocol.SSA:
        params.insert(0, ("REQUEST", "queryData"))
    return Request(url=with_params(service.access_url, params))


def parse_metadata(body: bytes) -> list[ServiceParameter]:
    """The ``INPUT:`` parameters of a metadata VOTable, in document order.

    Raises:
        QueryRejected: The service answered QUERY_STATUS=ERROR.
        ResponseFormatError: Not a VOTable.
    """
    root = parse_tree(body, "metadata VOTable", allow_doctype=True)
    expect_root(root, {"VOTABLE"}, "VOTable")
    for info in root.walk("INFO"):
        if info.attrs.get("name", "").upper() == "QUERY_STATUS" and (
            info.attrs.get("value", "").upper() == "ERROR"
        ):
            raise QueryRejected(info.text or "the service refused the metadata query")
    found = []
    for param in root.walk("PARAM"):
        name = param.attrs.get("name", "")
        if name.upper().startswith("INPUT:"):
            found.append(_parameter(param, name[len("INPUT:") :]))
    if not found and not any(True for _ in root.walk("RESOURCE")):
        raise ResponseFormatError("the metadata answer has no RESOURCE and no INPUT parameters")
    return found


def _parameter(param: Element, name: str) -> ServiceParameter:
    attrs = param.attrs
    description = param.find("DESCRIPTION")
    values = param.find("VALUES")
    options: tuple[str, ...] = ()
    minimum = maximum = None
    if values is not None:
        options = tuple(o.attrs.get("value", "") for o in values.walk("OPTION"))
        low, high = values.find("MIN"), values.find("MAX")
        minimum = low.attrs.get("value") if low is not None else None
        maximum = high.attrs.get("value") if high is not None else None
    return ServiceParameter(
        name=name,
        datatype=attrs.get("datatype"),
        arraysize=attrs.get("arraysize"),
        unit=attrs.get("unit") or None,
        ucd=attrs.get("ucd") or None,
        xtype=attrs.get("xtype") or None,
        description=(description.text or None) if description is not None else None,
        default=attrs.get("value") or None,
        options=options,
        minimum=minimum,
        maximum=maximum,
    )
