"""The tables simulated TAP services hold: ObsCore 1.1, EPN-TAP 2.0 and a catalogue (pure).

Every column carries the UCD, unit and (for ObsCore) utype the standards give it, so that
clients which find columns by UCD or utype, as real ones do, work on the simulation.
Rows are seeded from the fleet seed, the service index and the table: the same fleet
always holds the same rows, and two services hold different ones. Sizes stay in the low
thousands, so that a service's SQLite database builds in a fraction of a second.

Geometries are DALI strings in degrees (``s_region`` is a polygon ``"ra1 dec1 ra2 dec2
..."``), which the simulator's ADQL geometry functions read.

ObsCore access URLs point below the service's base URL, at what `vosweep.testing._tap`
serves there: data files (``/data/{obs_id}.fits``), or, for rows whose ``access_format``
is DataLink, the service's DataLink endpoint (``/datalink?ID={obs_publisher_did}``, as
CADC and DaCHS write them), which `ObscoreDataset` and `obscore_datasets` let it answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import numpy as np

from vosweep.testing._adql import ColumnDef, TableDef
from vosweep.testing._dal import DATALINK_TYPE
from vosweep.testing._profiles import TapProfile, TapTable

__all__ = [
    "CATALOGUE_TABLE",
    "EPNTAP_TABLE",
    "EPNTAP_UTYPE",
    "OBSCORE_MODEL",
    "OBSCORE_TABLE",
    "OBSCORE_UTYPE",
    "TABLES",
    "VIZIER_PM_TABLE",
    "ObscoreDataset",
    "data_tables",
    "data_url",
    "datalink_url",
    "obscore_datasets",
    "obscore_did",
    "table_rows",
]

#: ObsCore 1.1 table utype (what RegTAP's ``table_utype`` says).
OBSCORE_UTYPE = "ivo://ivoa.net/std/obscore#table-1.1"
#: ObsCore 1.1 data model (a TAP capability's ``dataModel``).
OBSCORE_MODEL = "ivo://ivoa.net/std/obscore#core-1.1"
#: EPN-TAP 2.0 table utype.
EPNTAP_UTYPE = "ivo://ivoa.net/std/epntap#table-2.0"
OBSCORE_TABLE = "ivoa.obscore"
EPNTAP_TABLE = "planets.epn_core"
CATALOGUE_TABLE = "cat.sources"
#: A VizieR-style table name: no schema, slashes and a plus (a delimited identifier).
VIZIER_PM_TABLE = "J/A+A/600/A12/table2"

#: Rows per table: (low, high) of the seeded count.
_SIZES: Mapping[TapTable, tuple[int, int]] = {
    TapTable.OBSCORE: (400, 1500),
    TapTable.EPNTAP: (200, 800),
    TapTable.CATALOGUE: (1000, 3000),
    TapTable.VIZIER_PM: (300, 900),
}
#: Per-table salt of the row seeds.
_SALT: Mapping[TapTable, int] = {
    TapTable.OBSCORE: 1,
    TapTable.EPNTAP: 2,
    TapTable.CATALOGUE: 3,
    TapTable.VIZIER_PM: 4,
}
#: JD of J2000.0 (EPN-TAP times are Julian days).
_J2000_JD = 2_451_545.0


def _c(  # noqa: PLR0917 -- one call per column reads as a table
    name: str,
    datatype: str,
    ucd: str | None,
    unit: str | None,
    description: str,
    utype: str | None = None,
    xtype: str | None = None,
) -> ColumnDef:
    return ColumnDef(name, datatype, description, unit=unit, ucd=ucd, xtype=xtype, utype=utype)


_OC = "obscore:"
_OBSCORE = TableDef(
    "ivoa",
    "obscore",
    "Observations of the simulated archive, in the ObsCore 1.1 data model.",
    (
        _c("dataproduct_type", "char", "meta.code.class", None, "Data product type (image, "
           "cube, spectrum, timeseries...)", _OC + "ObsDataset.dataProductType"),
        _c("calib_level", "short", "meta.code;obs.calib", None, "Calibration level (0-4)",
           _OC + "ObsDataset.calibLevel"),
        _c("obs_collection", "char", "meta.id", None, "Name of the data collection",
           _OC + "DataID.Collection"),
        _c("obs_id", "char", "meta.id", None, "Observation identifier",
           _OC + "DataID.observationID"),
        _c("obs_publisher_did", "char", "meta.ref.ivoid", None, "Publisher's dataset "
           "identifier", _OC + "Curation.PublisherDID"),
        _c("access_url", "char", "meta.ref.url", None, "URL of the dataset",
           _OC + "Access.Reference"),
        _c("access_format", "char", "meta.code.mime", None, "Media type of the dataset",
           _OC + "Access.Format"),
        _c("access_estsize", "long", "phys.size;meta.file", "kbyte", "Estimated size of "
           "the dataset", _OC + "Access.Size"),
        _c("target_name", "char", "meta.id;src", None, "Name of the target",
           _OC + "Target.Name"),
        _c("s_ra", "double", "pos.eq.ra", "deg", "RA of the centre (ICRS)",
           _OC + "Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C1"),
        _c("s_dec", "double", "pos.eq.dec", "deg", "Dec of the centre (ICRS)",
           _OC + "Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C2"),
        _c("s_fov", "double", "phys.angSize;instr.fov", "deg", "Diameter of the field",
           _OC + "Char.SpatialAxis.Coverage.Bounds.Extent.diameter"),
        _c("s_region", "char", "pos.outline;obs.field", "deg", "Footprint (ICRS)",
           _OC + "Char.SpatialAxis.Coverage.Support.Area", "polygon"),
        _c("s_resolution", "double", "pos.angResolution", "arcsec", "Spatial resolution",
           _OC + "Char.SpatialAxis.Resolution.Refval.value"),
        _c("s_xel1", "long", "meta.number", None, "Pixels along the first axis",
           _OC + "Char.SpatialAxis.numBins1"),
        _c("s_xel2", "long", "meta.number", None, "Pixels along the second axis",
           _OC + "Char.SpatialAxis.numBins2"),
        _c("t_min", "double", "time.start;obs.exposure", "d", "Start time (MJD)",
           _OC + "Char.TimeAxis.Coverage.Bounds.Limits.StartTime"),
        _c("t_max", "double", "time.end;obs.exposure", "d", "Stop time (MJD)",
           _OC + "Char.TimeAxis.Coverage.Bounds.Limits.StopTime"),
        _c("t_exptime", "double", "time.duration;obs.exposure", "s", "Exposure time",
           _OC + "Char.TimeAxis.Coverage.Support.Extent"),
        _c("t_resolution", "double", "time.resolution", "s", "Time resolution",
           _OC + "Char.TimeAxis.Resolution.Refval.value"),
        _c("t_xel", "long", "meta.number", None, "Time samples",
           _OC + "Char.TimeAxis.numBins"),
        _c("em_min", "double", "em.wl;stat.min", "m", "Shortest wavelength",
           _OC + "Char.SpectralAxis.Coverage.Bounds.Limits.LoLimit"),
        _c("em_max", "double", "em.wl;stat.max", "m", "Longest wavelength",
           _OC + "Char.SpectralAxis.Coverage.Bounds.Limits.HiLimit"),
        _c("em_res_power", "double", "spect.resolution", None, "Resolving power",
           _OC + "Char.SpectralAxis.Resolution.ResolPower.refVal"),
        _c("em_xel", "long", "meta.number", None, "Spectral samples",
           _OC + "Char.SpectralAxis.numBins"),
        _c("o_ucd", "char", "meta.ucd", None, "UCD of the observable",
           _OC + "Char.ObservableAxis.ucd"),
        _c("pol_states", "char", "meta.code;phys.polarization", None, "Polarization "
           "states", _OC + "Char.PolarizationAxis.stateList"),
        _c("pol_xel", "long", "meta.number", None, "Polarization samples",
           _OC + "Char.PolarizationAxis.numBins"),
        _c("facility_name", "char", "meta.id;instr.tel", None, "Facility",
           _OC + "Provenance.ObsConfig.Facility.name"),
        _c("instrument_name", "char", "meta.id;instr", None, "Instrument",
           _OC + "Provenance.ObsConfig.Instrument.name"),
    ),
    utype=OBSCORE_UTYPE,
)  # fmt: skip


def _range(name: str, datatype: str, ucd: str, unit: str | None, what: str) -> list[ColumnDef]:
    return [
        _c(f"{name}_min", datatype, f"{ucd};stat.min", unit, f"Minimum {what}"),
        _c(f"{name}_max", datatype, f"{ucd};stat.max", unit, f"Maximum {what}"),
    ]


_EPNTAP = TableDef(
    "planets",
    "epn_core",
    "Observations of Solar System bodies, in EPN-TAP 2.0.",
    (
        _c("granule_uid", "char", "meta.id", None, "Granule identifier (unique)"),
        _c("granule_gid", "char", "meta.id", None, "Group identifier"),
        _c("obs_id", "char", "meta.id;obs", None, "Observation identifier"),
        _c("dataproduct_type", "char", "meta.code.class", None, "Data product type (im, sp,"
           " ts, ds, sc, ci)"),
        _c("target_name", "char", "meta.id;src", None, "Target name (IAU)"),
        _c("target_class", "char", "src.class", None, "Target class (planet, satellite...)"),
        _c("time_min", "double", "time.start", "d", "Start time (JD)"),
        _c("time_max", "double", "time.end", "d", "Stop time (JD)"),
        *_range("time_sampling_step", "double", "time.resolution", "s", "time sampling step"),
        *_range("time_exp", "double", "time.duration;obs.exposure", "s", "exposure time"),
        *_range("spectral_range", "double", "em.freq", "Hz", "frequency"),
        *_range("spectral_sampling_step", "double", "em.freq.step", "Hz",
                "spectral sampling step"),
        *_range("spectral_resolution", "double", "spect.resolution", None,
                "spectral resolving power"),
        _c("c1min", "double", "pos.bodyrc.lon;stat.min", "deg", "Minimum longitude"),
        _c("c1max", "double", "pos.bodyrc.lon;stat.max", "deg", "Maximum longitude"),
        _c("c2min", "double", "pos.bodyrc.lat;stat.min", "deg", "Minimum latitude"),
        _c("c2max", "double", "pos.bodyrc.lat;stat.max", "deg", "Maximum latitude"),
        _c("c3min", "double", "pos.distance;stat.min", "km", "Minimum altitude"),
        _c("c3max", "double", "pos.distance;stat.max", "km", "Maximum altitude"),
        _c("s_region", "char", "obs.field", "deg", "Footprint on the body", xtype="polygon"),
        *_range("c1_resol", "double", "pos.resolution", "deg", "longitude resolution"),
        *_range("c2_resol", "double", "pos.resolution", "deg", "latitude resolution"),
        *_range("c3_resol", "double", "pos.resolution", "km", "altitude resolution"),
        _c("spatial_frame_type", "char", "meta.code.class;pos.frame", None, "Spatial frame "
           "(body, celestial...)"),
        *_range("incidence", "double", "pos.incidenceAng", "deg", "incidence angle"),
        *_range("emergence", "double", "pos.emergenceAng", "deg", "emergence angle"),
        *_range("phase", "double", "pos.phaseAng", "deg", "phase angle"),
        _c("instrument_host_name", "char", "meta.id;instr.obsty", None, "Instrument host "
           "(spacecraft or observatory)"),
        _c("instrument_name", "char", "meta.id;instr", None, "Instrument"),
        _c("measurement_type", "char", "meta.ucd", None, "UCD of the measured quantity"),
        _c("processing_level", "int", "meta.calibLevel", None, "CODMAC processing level"),
        _c("creation_date", "char", "time.creation", None, "Creation of the granule",
           xtype="timestamp"),
        _c("modification_date", "char", "time.processing", None, "Last modification",
           xtype="timestamp"),
        _c("release_date", "char", "time.release", None, "Public release", xtype="timestamp"),
        _c("service_title", "char", "meta.title", None, "Title of the service"),
        _c("access_url", "char", "meta.ref.url;meta.file", None, "URL of the data file"),
        _c("access_format", "char", "meta.code.mime", None, "Media type of the data file"),
        _c("access_estsize", "int", "phys.size;meta.file", "kbyte", "Estimated file size"),
        _c("publisher", "char", "meta.curation", None, "Publisher"),
    ),
    utype=EPNTAP_UTYPE,
)  # fmt: skip

_CATALOGUE = TableDef(
    "cat",
    "sources",
    "A catalogue of simulated sources all over the sky.",
    (
        _c("source_id", "long", "meta.id;meta.main", None, "Source identifier"),
        _c("ra", "double", "pos.eq.ra;meta.main", "deg", "Right ascension (ICRS, J2000)"),
        _c("dec", "double", "pos.eq.dec;meta.main", "deg", "Declination (ICRS, J2000)"),
        _c("vmag", "float", "phot.mag;em.opt.V", "mag", "V magnitude"),
        _c("e_vmag", "float", "stat.error;phot.mag;em.opt.V", "mag", "Error on vmag"),
        _c("bmag", "float", "phot.mag;em.opt.B", "mag", "B magnitude"),
        _c("pmra", "double", "pos.pm;pos.eq.ra", "mas/yr", "Proper motion in RA * cos(Dec)"),
        _c("pmdec", "double", "pos.pm;pos.eq.dec", "mas/yr", "Proper motion in Dec"),
        _c("parallax", "double", "pos.parallax.trig", "mas", "Trigonometric parallax"),
        _c("name", "char", "meta.id", None, "Designation"),
        _c("otype", "char", "src.class", None, "Object type (Star, Galaxy, QSO)"),
    ),
)

# VizieR's habits: no schema, mixed-case names (delimited identifiers in ADQL), floats,
# proper motions in arcsec/yr, and a B1950 position before the J2000 one: only
# ``meta.main`` tells the position to use.
_VIZIER_PM = TableDef(
    "",
    VIZIER_PM_TABLE,
    "Proper motions of simulated stars (a VizieR-like catalogue table).",
    (
        _c("Seq", "int", "meta.id;meta.main", None, "Sequential number"),
        _c("RAB1950", "double", "pos.eq.ra", "deg", "Right ascension (FK4, B1950)"),
        _c("DEB1950", "double", "pos.eq.dec", "deg", "Declination (FK4, B1950)"),
        _c("RAJ2000", "double", "pos.eq.ra;meta.main", "deg", "Right ascension (ICRS, J2000)"),
        _c("DEJ2000", "double", "pos.eq.dec;meta.main", "deg", "Declination (ICRS, J2000)"),
        _c("pmRA", "float", "pos.pm;pos.eq.ra", "arcsec/yr", "Proper motion in RA * cos(Dec)"),
        _c("pmDE", "float", "pos.pm;pos.eq.dec", "arcsec/yr", "Proper motion in Dec"),
        _c("Vmag", "float", "phot.mag;em.opt.V", "mag", "V magnitude"),
    ),
)

#: Every data table a simulated TAP service may hold.
TABLES: Mapping[TapTable, TableDef] = {
    TapTable.OBSCORE: _OBSCORE,
    TapTable.EPNTAP: _EPNTAP,
    TapTable.CATALOGUE: _CATALOGUE,
    TapTable.VIZIER_PM: _VIZIER_PM,
}


def data_tables(profile: TapProfile) -> tuple[TableDef, ...]:
    """The data tables a service with *profile* holds, in the profile's order."""
    return tuple(TABLES[table] for table in profile.tables)


# -- rows ----------------------------------------------------------------------------------


def _rng(seed: int, index: int, table: TapTable) -> np.random.Generator:
    return np.random.default_rng([seed % 2**63, index, _SALT[table]])


def _sky(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """*n* positions uniform on the sphere (degrees)."""
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    return ra, dec


def _squares(lon: np.ndarray, lat: np.ndarray, size: np.ndarray) -> list[str]:
    """DALI polygons: squares of side *size* around the centres, corners anticlockwise."""
    half = size / 2.0
    lat = np.clip(lat, -89.0 + half, 89.0 - half)
    dlon = half / np.maximum(np.cos(np.radians(lat)), 0.05)
    corners = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    columns = [
        (((lon + sx * dlon) % 360.0).tolist(), (lat + sy * half).tolist()) for sx, sy in corners
    ]
    return [
        " ".join(f"{columns[k][0][i]:.6f} {columns[k][1][i]:.6f}" for k in range(4))
        for i in range(len(lon))
    ]


def _nulls(values: list[object], rng: np.random.Generator, fraction: float) -> list[object]:
    for i in np.flatnonzero(rng.random(len(values)) < fraction).tolist():
        values[i] = None
    return values


def _choice(rng: np.random.Generator, options: Sequence[str], n: int) -> list[str]:
    return [options[k] for k in rng.integers(0, len(options), n).tolist()]


def _timestamps(rng: np.random.Generator, n: int, start: datetime) -> list[str]:
    seconds = rng.uniform(0.0, 8 * 365.25 * 86_400.0, n).tolist()
    return [(start + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] for s in seconds]


_PRODUCTS = (
    ("image", "image/fits", "phot.flux.density;em.opt", 2048),
    ("cube", DATALINK_TYPE, "phot.flux.density;em.radio", 64),
    ("spectrum", "application/x-votable+xml", "phot.flux.density;em.wl", 1),
    ("timeseries", "application/x-votable+xml", "phot.mag;em.opt.V", 1),
)
_FACILITIES = (
    ("SIM-1m", "WFC", 4e-7, 9e-7),
    ("SIM-4m", "SPEC", 3.5e-7, 1e-6),
    ("SIM-IR", "NIRCAM", 1e-6, 2.5e-6),
    ("SIM-Radio", "L-band", 0.18, 0.24),
)
_TARGETS = ("M31", "M51", "NGC 1275", "Crab", "Orion Nebula", "Sgr A*", "LMC", "3C 273")


def obscore_did(index: int, obs_id: str) -> str:
    """The ``obs_publisher_did`` of observation *obs_id* of service *index*."""
    return f"ivo://sim.vosweep.test/tap/{index:05d}?{obs_id}"


def data_url(base_url: str, obs_id: str) -> str:
    """Where the service at *base_url* serves the data file of observation *obs_id*."""
    return f"{base_url.rstrip('/')}/data/{obs_id}.fits"


def datalink_url(base_url: str, did: str) -> str:
    """The DataLink {links} URL of dataset *did* at *base_url* (its ID percent-encoded).

    This is what ObsCore rows of DataLink format hold as ``access_url``: a URL that
    answers a DataLink document itself, as CADC's and DaCHS's ObsCore tables have it.
    """
    return f"{base_url.rstrip('/')}/datalink?ID={quote(did, safe='')}"


@dataclass(frozen=True, slots=True)
class ObscoreDataset:
    """One ObsCore row, as the service's DataLink endpoint and file paths see it.

    Attributes:
        did: Its ``obs_publisher_did`` (the DataLink ID).
        obs_id: Its ``obs_id`` (what file paths are named after).
        dataproduct_type: ``image``, ``cube``, ``spectrum`` or ``timeseries``: terms of
            the IVOA product-type vocabulary, which DataLink content qualifiers use too.
        access_format: Its ``access_format``.
    """

    did: str
    obs_id: str
    dataproduct_type: str
    access_format: str


def obscore_datasets(rows: Iterable[Sequence[object]]) -> dict[str, ObscoreDataset]:
    """The datasets of ObsCore *rows* (as `table_rows` gives them), by ``obs_publisher_did``."""
    names = [column.name for column in _OBSCORE.columns]
    did, obs_id, kind, fmt = (
        names.index(name)
        for name in ("obs_publisher_did", "obs_id", "dataproduct_type", "access_format")
    )
    datasets = (
        ObscoreDataset(str(row[did]), str(row[obs_id]), str(row[kind]), str(row[fmt]))
        for row in rows
    )
    return {dataset.did: dataset for dataset in datasets}


def _obscore_rows(n: int, rng: np.random.Generator, ctx: _RowContext) -> list[tuple[object, ...]]:
    ra, dec = _sky(rng, n)
    fov = rng.uniform(0.05, 0.5, n)
    product = rng.integers(0, len(_PRODUCTS), n).tolist()
    facility = rng.integers(0, len(_FACILITIES), n).tolist()
    t_min = rng.uniform(50_000.0, 60_500.0, n)
    exptime = np.round(rng.uniform(10.0, 3600.0, n), 1)
    em_spread = rng.uniform(0.0, 1.0, n).tolist()
    collection = f"SIM-{ctx.index:05d}"
    rows: list[tuple[object, ...]] = []
    ras, decs, fovs = ra.tolist(), dec.tolist(), fov.tolist()
    regions = _squares(ra, dec, fov)
    t_mins, exptimes = t_min.tolist(), exptime.tolist()
    sizes = rng.integers(50, 500_000, n).tolist()
    levels = rng.integers(0, 4, n).tolist()
    resolutions = rng.uniform(0.1, 5.0, n).tolist()
    powers = rng.uniform(100.0, 50_000.0, n).tolist()
    targets = _nulls(list(_choice(rng, _TARGETS, n)), rng, 0.3)
    polarized = (rng.random(n) < 0.1).tolist()
    for k in range(n):
        kind, mime, o_ucd, pixels = _PRODUCTS[product[k]]
        telescope, instrument, low, high = _FACILITIES[facility[k]]
        em_min = low + (high - low) * em_spread[k] * 0.5
        obs_id = f"obs{ctx.index}-{k:05d}"
        did = obscore_did(ctx.index, obs_id)
        spatial = kind in {"image", "cube"}
        rows.append(
            (
                kind,
                levels[k],
                collection,
                obs_id,
                did,
                datalink_url(ctx.base_url, did)
                if mime == DATALINK_TYPE
                else data_url(ctx.base_url, obs_id),
                mime,
                sizes[k],
                targets[k],
                ras[k],
                decs[k],
                fovs[k],
                regions[k],
                resolutions[k],
                pixels if spatial else None,
                pixels if spatial else None,
                t_mins[k],
                t_mins[k] + exptimes[k] / 86_400.0,
                exptimes[k],
                exptimes[k] if kind == "timeseries" else None,
                1 if kind != "timeseries" else 100,
                em_min,
                high,
                powers[k] if kind in {"spectrum", "cube"} else None,
                1 if kind == "image" else 512,
                o_ucd,
                "/I/Q/U/" if polarized[k] else None,
                4 if polarized[k] else 1,
                telescope,
                instrument,
            )
        )
    return rows


_BODIES = (
    ("Mars", "planet"), ("Jupiter", "planet"), ("Saturn", "planet"), ("Venus", "planet"),
    ("Io", "satellite"), ("Europa", "satellite"), ("Titan", "satellite"),
    ("Ceres", "dwarf_planet"), ("Vesta", "asteroid"), ("67P", "comet"), ("Sun", "star"),
)  # fmt: skip
_HOSTS = (
    ("Mars Express", "OMEGA"), ("Juno", "JIRAM"), ("Cassini", "VIMS"), ("Rosetta", "VIRTIS"),
    ("Hubble Space Telescope", "STIS"), ("Venus Express", "VIRTIS"), ("Nancay", "NDA"),
)  # fmt: skip
_EPN_PRODUCTS = ("im", "sp", "ts", "ds", "sc", "ci")
_MEASUREMENTS = ("phot.reflectance;em.wl", "phot.flux.density;em.freq", "phys.temperature")
_BANDS = ((3e14, 1e15), (1e13, 3e14), (1e15, 3e15), (1e6, 4e7))


def _epntap_rows(n: int, rng: np.random.Generator, ctx: _RowContext) -> list[tuple[object, ...]]:
    body = rng.integers(0, len(_BODIES), n).tolist()
    host = rng.integers(0, len(_HOSTS), n).tolist()
    band = rng.integers(0, len(_BANDS), n).tolist()
    lon = rng.uniform(0.0, 360.0, n)
    lat = rng.uniform(-80.0, 80.0, n)
    size = rng.uniform(1.0, 20.0, n)
    regions = _squares(lon, lat, size)
    t_min = (_J2000_JD + rng.uniform(0.0, 9000.0, n)).tolist()
    span = rng.uniform(0.001, 2.0, n).tolist()
    exposure = rng.uniform(0.01, 600.0, n).tolist()
    step = rng.uniform(0.1, 60.0, n).tolist()
    fractions = rng.uniform(0.0, 0.5, n).tolist()
    resolving = rng.uniform(10.0, 20_000.0, n).tolist()
    resolution = rng.uniform(0.01, 1.0, n).tolist()
    angles = rng.uniform(0.0, 90.0, (6, n)).tolist()
    products = _choice(rng, _EPN_PRODUCTS, n)
    # Every fifth granule holds two product types, an EPN-TAP hash list ("im#sp"), so that
    # clients must match with ivo_hashlist_has (no extra draws: other columns unchanged).
    products = [
        f"{p}#{_EPN_PRODUCTS[(_EPN_PRODUCTS.index(p) + 1) % len(_EPN_PRODUCTS)]}"
        if k % 5 == 0
        else p
        for k, p in enumerate(products)
    ]
    measurements = _choice(rng, _MEASUREMENTS, n)
    levels = rng.integers(1, 6, n).tolist()
    created = _timestamps(rng, n, datetime(2012, 1, 1, tzinfo=UTC))
    sizes = rng.integers(10, 200_000, n).tolist()
    lons, lats, sizes_deg = lon.tolist(), lat.tolist(), size.tolist()
    rows: list[tuple[object, ...]] = []
    for k in range(n):
        name, kind = _BODIES[body[k]]
        host_name, instrument = _HOSTS[host[k]]
        low, high = _BANDS[band[k]]
        f_min = low + (high - low) * fractions[k]
        uid = f"{name.lower()}_{ctx.index}_{k:05d}"
        half = sizes_deg[k] / 2.0
        rows.append(
            (
                uid,
                ("raw", "calibrated", "derived")[min(levels[k], 5) // 2],
                f"{name.lower()}_{ctx.index}_{k // 4:05d}",
                products[k],
                name,
                kind,
                t_min[k],
                t_min[k] + span[k],
                step[k],
                step[k],
                exposure[k],
                exposure[k],
                f_min,
                high,
                f_min / resolving[k],
                high / resolving[k],
                resolving[k],
                resolving[k],
                (lons[k] - half) % 360.0,
                (lons[k] + half) % 360.0,
                lats[k] - half,
                lats[k] + half,
                None,
                None,
                regions[k],
                resolution[k],
                resolution[k],
                resolution[k],
                resolution[k],
                None,
                None,
                "body",
                angles[0][k],
                angles[0][k] + angles[1][k] / 10.0,
                angles[2][k],
                angles[2][k] + angles[3][k] / 10.0,
                angles[4][k],
                angles[4][k] + angles[5][k] / 10.0,
                host_name,
                instrument,
                measurements[k],
                levels[k],
                created[k],
                created[k],
                created[k],
                "Simulated planetary observations",
                f"{ctx.base_url}/data/epn/{uid}.fits",
                "application/fits",
                sizes[k],
                "vosweep simulated VO",
            )
        )
    return rows


def _designation(ra: float, dec: float) -> str:
    tenths = math.floor(ra / 15.0 * 36_000.0)
    arcsec = math.floor(abs(dec) * 3600.0)
    sign = "-" if dec < 0 else "+"
    return (
        f"SIM J{tenths // 36_000:02d}{tenths // 600 % 60:02d}{tenths // 10 % 60:02d}."
        f"{tenths % 10}{sign}{arcsec // 3600:02d}{arcsec // 60 % 60:02d}{arcsec % 60:02d}"
    )


def _catalogue_rows(n: int, rng: np.random.Generator, ctx: _RowContext) -> list[tuple[object, ...]]:
    ra, dec = _sky(rng, n)
    first = int(rng.integers(1, 2**40)) * 1000
    vmag = _nulls(np.round(rng.normal(16.0, 2.0, n), 3).tolist(), rng, 0.1)
    e_vmag = np.round(rng.uniform(0.001, 0.2, n), 3).tolist()
    bmag = _nulls(np.round(rng.normal(16.7, 2.2, n), 3).tolist(), rng, 0.2)
    pmra = np.round(rng.normal(0.0, 8.0, n), 3).tolist()
    pmdec = np.round(rng.normal(-2.0, 8.0, n), 3).tolist()
    parallax = _nulls(np.round(np.abs(rng.normal(0.8, 1.0, n)), 4).tolist(), rng, 0.3)
    otype = _choice(rng, ("Star", "Star", "Star", "Galaxy", "QSO"), n)
    ras, decs = ra.tolist(), dec.tolist()
    del ctx  # every service's catalogue is its own only through the seed
    return [
        (
            first + k,
            ras[k],
            decs[k],
            vmag[k],
            e_vmag[k] if vmag[k] is not None else None,
            bmag[k],
            pmra[k],
            pmdec[k],
            parallax[k],
            _designation(ras[k], decs[k]),
            otype[k],
        )
        for k in range(n)
    ]


def _vizier_pm_rows(n: int, rng: np.random.Generator, ctx: _RowContext) -> list[tuple[object, ...]]:
    ra, dec = _sky(rng, n)
    # B1950 positions: a rough offset is enough; nobody should read them for J2000 ones.
    ra_b = (ra - 0.64) % 360.0
    dec_b = np.clip(dec - 0.28, -90.0, 90.0)
    pmra = np.round(rng.normal(0.0, 0.02, n), 4).tolist()  # arcsec/yr
    pmde = _nulls(np.round(rng.normal(-0.005, 0.02, n), 4).tolist(), rng, 0.05)
    vmag = _nulls(np.round(rng.normal(12.0, 1.5, n), 2).tolist(), rng, 0.1)
    ras, decs, ras_b, decs_b = ra.tolist(), dec.tolist(), ra_b.tolist(), dec_b.tolist()
    del ctx
    return [
        (k + 1, ras_b[k], decs_b[k], ras[k], decs[k], pmra[k], pmde[k], vmag[k]) for k in range(n)
    ]


class _RowContext:
    """What rows may mention about their service."""

    __slots__ = ("base_url", "index")

    def __init__(self, index: int, base_url: str) -> None:
        self.index = index
        self.base_url = base_url


_ROWS: Mapping[
    TapTable, Callable[[int, np.random.Generator, _RowContext], list[tuple[object, ...]]]
] = {
    TapTable.OBSCORE: _obscore_rows,
    TapTable.EPNTAP: _epntap_rows,
    TapTable.CATALOGUE: _catalogue_rows,
    TapTable.VIZIER_PM: _vizier_pm_rows,
}


def table_rows(
    table: TapTable, *, seed: int, index: int, base_url: str
) -> list[tuple[object, ...]]:
    """The rows of *table* in service *index* of a fleet with *seed* (values in column order).

    Args:
        table: Which table.
        seed: The fleet seed.
        index: The service index.
        base_url: The service's base URL (access URLs point below it).
    """
    rng = _rng(seed, index, table)
    low, high = _SIZES[table]
    n = int(rng.integers(low, high + 1))
    return _ROWS[table](n, rng, _RowContext(index, base_url.rstrip("/")))
