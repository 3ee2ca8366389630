"""ADQL names vosweep writes: identifiers quoted where they must be, and never otherwise.

Table and column names come from registry metadata and VOSI tables, that is from
services: VizieR's ``J/A+A/586/A5/table1``, columns called ``size`` or ``date`` (reserved
words), names with spaces or quotes. Written into a query as they are, they break it or
change its structure; `identifier` turns one name into a safe ADQL identifier (a
*delimited* one, in double quotes with inner quotes doubled, only when needed, since
delimited identifiers are case-sensitive), and `table_reference` does the same for a
possibly schema-qualified table name as TAP_SCHEMA lists it.
"""

from __future__ import annotations

import re

from vosweep.errors import UsageError

__all__ = ["RESERVED_WORDS", "identifier", "is_regular", "split_qualified", "table_reference"]

_SQL92 = """
ABSOLUTE ACTION ADD ALL ALLOCATE ALTER AND ANY ARE AS ASC ASSERTION AT AUTHORIZATION AVG
BEGIN BETWEEN BIT BIT_LENGTH BOTH BY CASCADE CASCADED CASE CAST CATALOG CHAR CHARACTER
CHARACTER_LENGTH CHAR_LENGTH CHECK CLOSE COALESCE COLLATE COLLATION COLUMN COMMIT CONNECT
CONNECTION CONSTRAINT CONSTRAINTS CONTINUE CONVERT CORRESPONDING COUNT CREATE CROSS CURRENT
CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER CURSOR DATE DAY DEALLOCATE DEC
DECIMAL DECLARE DEFAULT DEFERRABLE DEFERRED DELETE DESC DESCRIBE DESCRIPTOR DIAGNOSTICS
DISCONNECT DISTINCT DOMAIN DOUBLE DROP ELSE END ESCAPE EXCEPT EXCEPTION EXEC EXECUTE EXISTS
EXTERNAL EXTRACT FALSE FETCH FIRST FLOAT FOR FOREIGN FOUND FROM FULL GET GLOBAL GO GOTO
GRANT GROUP HAVING HOUR IDENTITY IMMEDIATE IN INDICATOR INITIALLY INNER INPUT INSENSITIVE
INSERT INT INTEGER INTERSECT INTERVAL INTO IS ISOLATION JOIN KEY LANGUAGE LAST LEADING LEFT
LEVEL LIKE LOCAL LOWER MATCH MAX MIN MINUTE MODULE MONTH NAMES NATIONAL NATURAL NCHAR NEXT NO
NOT NULL NULLIF NUMERIC OCTET_LENGTH OF ON ONLY OPEN OPTION OR ORDER OUTER OUTPUT OVERLAPS
PAD PARTIAL POSITION PRECISION PREPARE PRESERVE PRIMARY PRIOR PRIVILEGES PROCEDURE PUBLIC
READ REAL REFERENCES RELATIVE RESTRICT REVOKE RIGHT ROLLBACK ROWS SCHEMA SCROLL SECOND
SECTION SELECT SESSION SESSION_USER SET SIZE SMALLINT SOME SPACE SQL SQLCODE SQLERROR
SQLSTATE SUBSTRING SUM SYSTEM_USER TABLE TEMPORARY THEN TIME TIMESTAMP TIMEZONE_HOUR
TIMEZONE_MINUTE TO TRAILING TRANSACTION TRANSLATE TRANSLATION TRIM TRUE UNION UNIQUE UNKNOWN
UPDATE UPPER USAGE USER USING VALUE VALUES VARCHAR VARYING VIEW WHEN WHENEVER WHERE WITH WORK
WRITE YEAR ZONE
"""
_ADQL = """
ABS ACOS AREA ASIN ATAN ATAN2 BIGINT BOX CEILING CENTROID CIRCLE CONTAINS COORD1 COORD2
COORDSYS COS COT DEGREES DISTANCE EXP FLOOR ILIKE INTERSECTS IN_UNIT LOG LOG10 MOD OFFSET PI
POINT POLYGON POWER RADIANS REGION RAND ROUND SIN SQRT TAN TOP TRUNCATE
"""
#: ADQL 2.1's reserved words (SQL-92's and its own): never usable as regular identifiers.
RESERVED_WORDS = frozenset((_SQL92 + _ADQL).split())

_REGULAR = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
#: One part of a qualified name: a delimited identifier or anything up to the next dot.
_PART = re.compile(r'"((?:[^"]|"")*)"|([^."]+)')


def is_regular(name: str) -> bool:
    """Whether *name* can be written as it is: a regular identifier, not a reserved word."""
    return bool(_REGULAR.fullmatch(name)) and name.upper() not in RESERVED_WORDS


def identifier(name: str) -> str:
    """*name* as an ADQL identifier: as it is when regular, else delimited (``"..."``).

    Raises:
        UsageError: An empty name, or one with characters no identifier may hold (NUL
            and other control characters).
    """
    if not name:
        raise UsageError("an ADQL identifier cannot be empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise UsageError(f"ADQL identifier {name!r} contains control characters")
    if is_regular(name):
        return name
    return '"' + name.replace('"', '""') + '"'


def split_qualified(name: str) -> list[str]:
    """The parts of a possibly qualified table name as TAP_SCHEMA lists it, unquoted.

    ``ivoa.obscore`` -> ``["ivoa", "obscore"]``; ``"J/A+A/586/A5"."table1"`` and
    ``vizier."J/A+A/586/A5/t1"`` keep their slashes and dots inside the quotes. A name
    that is not a dotted sequence of plain or delimited parts (``J/A+A/1/t``, unquoted
    with a slash) is one part, whole.
    """
    parts: list[str] = []
    position = 0
    while position <= len(name):
        match = _PART.match(name, position)
        if match is None:
            return [name]
        delimited, plain = match.groups()
        parts.append(delimited.replace('""', '"') if delimited is not None else plain)
        position = match.end()
        if position == len(name):
            break
        if name[position] != ".":
            return [name]
        position += 1
    if any(not part for part in parts) or len(parts) > 3:
        return [name]
    if '"' not in name and any(not _REGULAR.fullmatch(p) for p in parts):
        return [name]  # an unquoted name with odd characters: one name, not a path
    return parts


def table_reference(name: str) -> str:
    """A table name from TAP_SCHEMA or the registry, safe to write after ``FROM``.

    Raises:
        UsageError: As `identifier`.
    """
    return ".".join(identifier(part) for part in split_qualified(name.strip()))
