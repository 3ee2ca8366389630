"""What a registry search found: resources, their interfaces, and pyvo's ways to use them.

The names are pyvo's (``RegistryResults``, ``RegistryResource``, ``Interface``,
``access_modes``, ``get_service``, ``list_interfaces``, ``describe``, ``get_contact``,
``get_tables``), so a pyvo user finds them where they look; what differs is deliberate:
``get_service`` returns a `vosweep.Service` (something `Engine.fanout` queries), and the
methods that need the registry again are coroutines whose work for many resources is
batched (`RegistryResults.get_tables` costs a few queries, not one per resource).

Records are immutable values; the only state a resource holds is a link to the client
that found it, for those follow-up queries.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TextIO, overload

from astropy.table import Table

from vosweep.errors import UsageError
from vosweep.registry.constraints import SERVICE_TYPES
from vosweep.services import Protocol as DALProtocol
from vosweep.services import Service, protocol_of_standard

if TYPE_CHECKING:
    from vosweep.registry.constraints import SearchSpec

__all__ = [
    "Column",
    "Contact",
    "Interface",
    "RegistryResource",
    "RegistryResults",
    "TableMeta",
]

_STD = "ivo://ivoa.net/std/"


def shorten_standard_id(standard_id: str | None) -> str | None:
    """``ivo://ivoa.net/std/tap`` -> ``tap`` (pyvo's display form of standard ids)."""
    if standard_id and standard_id.startswith(_STD):
        return standard_id[len(_STD) :]
    return standard_id


def _base_standard(standard_id: str) -> str:
    """The standard a capability speaks, without fragment (``sia2`` kept apart from SIA1)."""
    if protocol_of_standard(standard_id) is DALProtocol.SIA2:
        return _STD + "sia2"
    return standard_id.split("#", 1)[0]


def _requested_standard(service_type: str) -> str:
    """The standard id (without fragment) a ``service_type`` argument names."""
    known = SERVICE_TYPES.get(service_type.lower())
    standard = known.ivoid if known is not None else service_type.lower()
    if "://" not in standard:
        standard = _STD + standard
    return _base_standard(standard)


@dataclass(frozen=True, slots=True)
class Interface:
    """One interface of one capability of a resource (pyvo's ``regtap.Interface``).

    Attributes:
        access_url: Where to send requests.
        standard_id: The capability's standard id, lower-cased as RegTAP stores them
            (``None`` for non-standard capabilities).
        type: The interface type (``vs:paramhttp``, ``vr:webbrowser``...).
        role: ``std`` for the standard interface of a standard capability.
        capability_description: The capability's description, if any.
        mirror_urls: RegTAP 1.1 mirror access URLs of the same interface.
        authenticated_only: RegTAP 1.1: the interface needs authentication.
        cap_index: The capability's index within the resource.
    """

    access_url: str
    standard_id: str | None = None
    type: str | None = None
    role: str | None = None
    capability_description: str | None = None
    mirror_urls: tuple[str, ...] = ()
    authenticated_only: bool = False
    cap_index: int = 0

    @property
    def is_standard(self) -> bool:
        """Whether this is the standard interface of its capability."""
        return self.role == "std"

    @property
    def is_vosi(self) -> bool:
        """Whether this is VOSI infrastructure (capabilities, tables, availability)."""
        return (self.standard_id or "").startswith(_STD + "vosi")

    @property
    def protocol(self) -> DALProtocol | None:
        """The vosweep protocol this interface speaks, if it is one vosweep queries."""
        return protocol_of_standard(self.standard_id)

    def supports(self, standard_id: str) -> bool:
        """Whether this interface speaks *standard_id* (fragments ignored, SIA2 kept apart)."""
        if not self.standard_id:
            return False
        return _base_standard(self.standard_id) == _base_standard(standard_id.lower())

    def to_service(self, resource: RegistryResource | None = None) -> Service:
        """The `vosweep.Service` for this interface.

        Raises:
            UsageError: A non-standard interface or one vosweep does not query.
        """
        protocol = self.protocol
        if protocol is None or not self.is_standard:
            raise UsageError(
                f"vosweep cannot query the interface at {self.access_url}"
                f" (standard id {self.standard_id!r}, role {self.role!r})"
            )
        return Service(
            protocol=protocol,
            access_url=self.access_url,
            ivoid=resource.ivoid if resource is not None else None,
            name=resource.short_name if resource is not None else None,
            title=resource.res_title if resource is not None else None,
            mirrors=self.mirror_urls,
        )

    def __repr__(self) -> str:
        kind = shorten_standard_id(self.standard_id) or self.type
        return f"Interface({kind!r}, {self.access_url!r})"


@dataclass(frozen=True, slots=True)
class Contact:
    """A resource's contact (``rr.res_role`` with base role ``contact``)."""

    name: str | None = None
    email: str | None = None
    telephone: str | None = None
    address: str | None = None
    ivoid: str | None = None

    def __str__(self) -> str:
        return ", ".join(
            part for part in (self.name, self.email, self.telephone, self.address) if part
        )


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a registered table (``rr.table_column``)."""

    name: str
    description: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    datatype: str | None = None
    arraysize: str | None = None
    xtype: str | None = None
    flags: str | None = None


@dataclass(frozen=True, slots=True)
class TableMeta:
    """One registered table (``rr.res_table``) with its columns."""

    name: str
    description: str | None = None
    title: str | None = None
    utype: str | None = None
    type: str | None = None
    nrows: int | None = None
    columns: tuple[Column, ...] = ()


class _Link(Protocol):
    """What a resource needs from the client that found it."""

    async def get_tables(
        self, resources: Sequence[RegistryResource], *, table_limit: int
    ) -> dict[str, list[TableMeta]]: ...

    async def get_contacts(
        self, resources: Sequence[RegistryResource]
    ) -> dict[str, list[Contact]]: ...

    def subquery_for(self, resources: Sequence[RegistryResource]) -> str | None: ...


@dataclass(frozen=True, slots=True, eq=False)
class RegistryResource:
    """One registry record, with its interfaces (pyvo's ``RegistryResource``).

    The attribute names are pyvo's; multi-valued RegTAP columns (``content_level``,
    ``waveband``, ``content_type``, ``creator_seq``) are tuples.
    """

    ivoid: str
    res_type: str | None = None
    short_name: str | None = None
    res_title: str | None = None
    res_description: str | None = None
    reference_url: str | None = None
    content_levels: tuple[str, ...] = ()
    content_types: tuple[str, ...] = ()
    creators: tuple[str, ...] = ()
    waveband: tuple[str, ...] = ()
    created: str | None = None
    updated: str | None = None
    rights: str | None = None
    source_format: str | None = None
    source_value: str | None = None
    res_version: str | None = None
    region_of_regard: float | None = None
    subjects: tuple[str, ...] = ()
    alt_identifiers: tuple[str, ...] = ()
    interfaces: tuple[Interface, ...] = ()
    _link: _Link | None = field(default=None, repr=False, compare=False)

    # -- pyvo's accessors -----------------------------------------------------------

    def access_modes(self) -> set[str]:
        """Short standard ids of the interfaces (``tap``, ``conesearch``, ``web``); no VOSI."""
        return {
            shorten_standard_id(interface.standard_id) or "web"
            for interface in self.interfaces
            if (interface.standard_id or interface.type == "vr:webbrowser")
            and not interface.is_vosi
        }

    def list_interfaces(self, service_type: str | None = None) -> list[Interface]:
        """Interfaces vosweep can query (standard ones of *service_type*, if given)."""
        found = [
            interface
            for interface in self.interfaces
            if interface.is_standard and interface.protocol is not None
        ]
        if service_type is not None:
            wanted = _requested_standard(service_type)
            found = [interface for interface in found if interface.supports(wanted)]
        return sorted(found, key=lambda interface: interface.access_url)

    def get_interface(
        self,
        service_type: str | None = None,
        *,
        lax: bool = False,
        std_only: bool = True,
        keyword: str | None = None,
    ) -> Interface:
        """The interface of *service_type* (``tap``, ``scs``, a standard id, ``web``).

        Raises:
            UsageError: No such interface, or several when *lax* is False.
        """
        if service_type == "web":
            candidates = [i for i in self.interfaces if i.type == "vr:webbrowser"]
        else:
            wanted = _requested_standard(service_type) if service_type else None
            candidates = [
                i
                for i in self.interfaces
                if (i.is_standard or not std_only)
                and not i.is_vosi
                and i.standard_id
                and (wanted is None or i.supports(wanted))
            ]
        if keyword is not None:
            candidates = [i for i in candidates if keyword in (i.capability_description or "")]
        if not candidates:
            modes = ", ".join(sorted(self.access_modes())) or "none"
            raise UsageError(
                f"{self.ivoid} has no {service_type or 'standard'} interface"
                f" (its access modes: {modes})"
            )
        if len(candidates) > 1 and not lax:
            raise UsageError(
                f"{self.ivoid} has {len(candidates)} {service_type or 'standard'} interfaces;"
                " pass lax=True to take the first, or a keyword= from list_interfaces()"
            )
        return candidates[0]

    def get_service(
        self, service_type: str | None = None, *, lax: bool = False, keyword: str | None = None
    ) -> Service:
        """A `vosweep.Service` for this resource's *service_type* interface.

        Raises:
            UsageError: No such interface, several (with ``lax=False``), or one vosweep
                does not query.
        """
        return self.get_interface(service_type, lax=lax, keyword=keyword).to_service(self)

    def services(
        self,
        protocol: DALProtocol | str | frozenset[DALProtocol] | None = None,
        *,
        wanted: Callable[[str], bool] | None = None,
    ) -> list[Service]:
        """Every queryable standard interface of this resource (of *protocol*, if given).

        A VizieR catalogue registers one cone search per table: all of them are returned,
        because each is a different service to ask. *wanted*, if given, filters on the
        capability's standard id. *protocol* may be a set (an image query fits SIA 1 and 2).
        """
        kinds = _protocols(protocol)
        return [
            interface.to_service(self)
            for interface in self.interfaces
            if interface.is_standard
            and interface.protocol is not None
            and (kinds is None or interface.protocol in kinds)
            and (wanted is None or wanted(interface.standard_id or ""))
        ]

    def vosweep_services(
        self, protocol: DALProtocol | frozenset[DALProtocol] | None
    ) -> list[Service]:
        """The services `Engine.fanout` asks when given this resource as a target."""
        return self.services(protocol)

    @property
    def access_url(self) -> str:
        """The access URL when the resource has one queryable interface (pyvo's property).

        Raises:
            UsageError: None, or several different ones (use `get_service`).
        """
        urls = sorted({i.access_url for i in self.interfaces if i.is_standard and not i.is_vosi})
        if len(urls) != 1:
            raise UsageError(
                f"{self.ivoid} has {len(urls) or 'no'} access URLs: use get_service(service_type)"
            )
        return urls[0]

    @property
    def standard_id(self) -> str:
        """The standard id when the resource has a single standard (pyvo's property).

        Raises:
            UsageError: Several standards (use `get_service`).
        """
        ids = sorted({i.standard_id for i in self.interfaces if i.standard_id and not i.is_vosi})
        if len(ids) != 1:
            raise UsageError(
                f"{self.ivoid} supports {len(ids) or 'no'} standards"
                f" ({', '.join(ids)}): use get_service(service_type)"
            )
        return ids[0]

    def get_alt_identifiers(self) -> list[str]:
        """Alternative identifiers (DOIs, bibcodes, ORCIDs: RegTAP 1.1 ``rr.alt_identifier``)."""
        return list(self.alt_identifiers)

    async def get_contact(self) -> str:
        """The contact(s) of the resource as text (pyvo's format: one per line)."""
        contacts = await self._require_link().get_contacts([self])
        return "\n".join(str(contact) for contact in contacts.get(self.ivoid, []))

    async def get_contacts(self) -> list[Contact]:
        """The contacts of the resource, as records."""
        return (await self._require_link().get_contacts([self])).get(self.ivoid, [])

    async def get_tables(self, *, table_limit: int = 500) -> dict[str, TableMeta]:
        """The resource's registered tables with their columns, by table name.

        Raises:
            UsageError: More than *table_limit* tables (pyvo's guard against VizieR-sized
                resources), or a resource not found through a registry.
        """
        tables = await self._require_link().get_tables([self], table_limit=table_limit)
        return {table.name: table for table in tables.get(self.ivoid, [])}

    def _require_link(self) -> _Link:
        if self._link is None:
            raise UsageError(f"{self.ivoid} was not found through a registry: nothing to ask")
        return self._link

    # -- display ---------------------------------------------------------------------

    def describe(
        self, *, verbose: bool = False, width: int = 78, file: TextIO | None = None
    ) -> None:
        """Print a human summary (pyvo's layout: title, short name, ivoid, description...)."""
        out = file or sys.stdout
        print(self.res_title or self.ivoid, file=out)
        print(f"Short Name: {self.short_name}", file=out)
        print(f"IVOA Identifier: {self.ivoid}", file=out)
        modes = ", ".join(sorted(self.access_modes()))
        if modes:
            print(f"Access modes: {modes}", file=out)
        if self.waveband:
            print(f"Waveband Coverage: {', '.join(self.waveband)}", file=out)
        for service in self.services():
            print(f"- {service.protocol.value}: {service.access_url}", file=out)
        if self.res_description:
            print(file=out)
            print(textwrap.fill(self.res_description, width), file=out)
        if verbose:
            if self.subjects:
                print(f"\nSubjects: {', '.join(self.subjects)}", file=out)
            if self.creators:
                print(f"Authors: {'; '.join(self.creators)}", file=out)
            if self.source_value:
                print(f"\nSource: {self.source_value}", file=out)
            if self.alt_identifiers:
                print(f"Alternative identifier(s): {', '.join(self.alt_identifiers)}", file=out)
            if self.reference_url:
                print(f"More info: {self.reference_url}", file=out)

    def __repr__(self) -> str:
        return f"<RegistryResource {self.ivoid} {self.short_name!r}: {self.res_title!r}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RegistryResource):
            return NotImplemented
        return self.ivoid == other.ivoid and self.interfaces == other.interfaces

    def __hash__(self) -> int:
        return hash(self.ivoid)


#: The columns of `RegistryResults.to_table`, pyvo's where pyvo has them.
_TABLE_COLUMNS = (
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
)
_JOIN = "#"


class RegistryResults(Sequence[RegistryResource]):
    """The resources a search found, in ivoid order (pyvo's ``RegistryResults``).

    Index it by position, ivoid (case-insensitive, as ivoids are) or short name. Pass it
    to `Engine.fanout` as the targets: every queryable interface of the query's protocol
    becomes a service to ask.

    Attributes:
        spec: The search that found them.
        query: The ADQL that ran.
        endpoint: The registry that answered.
        overflow: The registry cut the answer at ``maxrec`` (more resources match).
    """

    def __init__(
        self,
        resources: Sequence[RegistryResource],
        *,
        spec: SearchSpec | None = None,
        query: str = "",
        endpoint: str = "",
        overflow: bool = False,
        link: _Link | None = None,
    ) -> None:
        self._resources = tuple(resources)
        self.spec = spec
        self.query = query
        self.endpoint = endpoint
        self.overflow = overflow
        self._link = link
        self._by_ivoid = {r.ivoid.lower(): r for r in self._resources}
        self._by_name: dict[str, RegistryResource] = {}
        for resource in self._resources:
            if resource.short_name:
                self._by_name.setdefault(resource.short_name, resource)

    def __len__(self) -> int:
        return len(self._resources)

    @overload
    def __getitem__(self, key: int | str) -> RegistryResource: ...

    @overload
    def __getitem__(self, key: slice) -> Sequence[RegistryResource]: ...

    def __getitem__(self, key: int | str | slice) -> RegistryResource | Sequence[RegistryResource]:
        if isinstance(key, str):
            found = self._by_ivoid.get(key.lower()) or self._by_name.get(key)
            if found is None:
                raise KeyError(f"no resource with ivoid or short name {key!r} in these results")
            return found
        return self._resources[key]

    def __iter__(self) -> Iterator[RegistryResource]:
        return iter(self._resources)

    def __repr__(self) -> str:
        more = ", overflow" if self.overflow else ""
        return f"<RegistryResults: {len(self)} resources from {self.endpoint or '?'}{more}>"

    @property
    def ivoids(self) -> list[str]:
        """The resources' ivoids, in order."""
        return [resource.ivoid for resource in self._resources]

    def services(
        self, protocol: DALProtocol | str | frozenset[DALProtocol] | None = None
    ) -> list[Service]:
        """Every queryable interface of every resource (of *protocol*, if given).

        When the search named service types, only interfaces of those are returned.
        """
        wanted = self.spec.wants_standard_id if self.spec is not None else None
        return [
            service
            for resource in self._resources
            for service in resource.services(protocol, wanted=wanted)
        ]

    def vosweep_services(
        self, protocol: DALProtocol | frozenset[DALProtocol] | None
    ) -> list[Service]:
        """The services `Engine.fanout` asks when given these results as targets."""
        return self.services(protocol)

    def ivoid_subquery(self) -> str | None:
        """The search as an ADQL subquery selecting exactly these resources' ivoids.

        Follow-up queries about all the results can then name them in a few words
        instead of thousands of literals; None when the answer was cut (``maxrec``) or
        the results were not found by a search.
        """
        if self._link is None:
            return None
        return self._link.subquery_for(self._resources)

    def to_table(self) -> Table:
        """One row per resource, pyvo's columns (lists joined as RegTAP does: ``#``, ``;``)."""
        rows: dict[str, list[Any]] = {name: [] for name in _TABLE_COLUMNS}
        for r in self._resources:
            interfaces = [i for i in r.interfaces if not i.is_vosi]
            values: dict[str, Any] = {
                "ivoid": r.ivoid,
                "res_type": r.res_type or "",
                "short_name": r.short_name or "",
                "res_title": r.res_title or "",
                "content_levels": _JOIN.join(r.content_levels),
                "res_description": r.res_description or "",
                "reference_url": r.reference_url or "",
                "creators": "; ".join(r.creators),
                "content_types": _JOIN.join(r.content_types),
                "source_format": r.source_format or "",
                "source_value": r.source_value or "",
                "region_of_regard": r.region_of_regard,
                "waveband": _JOIN.join(r.waveband),
                "access_urls": _JOIN.join(i.access_url for i in interfaces),
                "standard_ids": _JOIN.join(i.standard_id or "" for i in interfaces),
                "intf_types": _JOIN.join(i.type or "" for i in interfaces),
                "intf_roles": _JOIN.join(i.role or "" for i in interfaces),
                "alt_identifier": _JOIN.join(r.alt_identifiers),
            }
            for name in _TABLE_COLUMNS:
                rows[name].append(values[name])
        table = Table(
            [rows[name] for name in _TABLE_COLUMNS],
            names=_TABLE_COLUMNS,
            dtype=[float if name == "region_of_regard" else str for name in _TABLE_COLUMNS],
            masked=True,
        )
        table["region_of_regard"].mask = [value is None for value in rows["region_of_regard"]]
        table.meta["query"] = self.query
        table.meta["endpoint"] = self.endpoint
        return table

    def get_summary(self) -> Table:
        """A compact overview, one row per resource (pyvo's ``get_summary`` columns)."""
        return Table(
            [
                list(range(len(self))),
                [r.short_name or "" for r in self._resources],
                [r.res_title or "" for r in self._resources],
                [r.res_description or "" for r in self._resources],
                [", ".join(sorted(r.access_modes())) for r in self._resources],
            ],
            names=("index", "short_name", "title", "description", "interfaces"),
            descriptions=(
                "Index of the resource in these results",
                "Short name",
                "Resource title",
                "Resource description",
                "Access modes offered",
            ),
        )

    async def get_tables(self, *, table_limit: int = 500) -> dict[str, dict[str, TableMeta]]:
        """Tables and columns of every resource, in a few batched registry queries.

        Returns:
            ivoid -> table name -> table.
        """
        if not self._resources:
            return {}
        if self._link is None:
            raise UsageError("these results were not found through a registry: nothing to ask")
        found = await self._link.get_tables(self._resources, table_limit=table_limit)
        return {
            r.ivoid: {table.name: table for table in found.get(r.ivoid, [])}
            for r in self._resources
        }

    async def get_contacts(self) -> dict[str, list[Contact]]:
        """Contacts of every resource, in a few batched registry queries."""
        if not self._resources:
            return {}
        if self._link is None:
            raise UsageError("these results were not found through a registry: nothing to ask")
        return await self._link.get_contacts(self._resources)


def _protocols(
    protocol: DALProtocol | str | frozenset[DALProtocol] | None,
) -> frozenset[DALProtocol] | None:
    if protocol is None:
        return None
    if isinstance(protocol, frozenset):
        return protocol
    return frozenset({DALProtocol(protocol)})
