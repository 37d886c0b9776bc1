"""Errors of the PadmeDAQ database access (:mod:`hw_interfaces.padme_db`).

They derive from :class:`hw_interfaces.errors.HardwareError`, so the CLI reports them as one
``error: ...`` line with exit code 2. ``device`` is ``PadmeDAQ <host>:<port>/<database>``,
``key`` the table or operation that failed.
"""

from __future__ import annotations

from .errors import HardwareError


class PadmeDBError(HardwareError):
    """Base of every PadmeDAQ database error."""


class PadmeDBUnavailable(PadmeDBError):
    """The server cannot be reached, refused the login or dropped the connection."""


class PadmeDBReadOnly(PadmeDBError):
    """The server or the account does not allow writes (SELECT-only grant, read-only server)."""


class PadmeDBSchemaError(PadmeDBError):
    """The database is not a PadmeDAQ database (a table or column this code needs is missing)."""


class PadmeDBDataError(PadmeDBError):
    """A row is missing or would break a constraint (unknown run, conflicting value...)."""
