"""Errors of the PadmeDAQ database access (:mod:`hw_interfaces.padme_db`).

They derive from :class:`hw_interfaces.errors.HardwareError`, so the CLI reports them as one
``error: ...`` line. ``exit_code`` is the process exit status the CLI uses: 2 for a refusal
(retrying will not help: fix the account, the name, the data), 75 (``EX_TEMPFAIL`` of
sysexits.h) for an outage a later retry may cure (server down or restarting, connection
lost, lock wait timeout, deadlock). ``device`` is ``PadmeDAQ <host>:<port>/<database>``,
``key`` the table or operation that failed.
"""

from __future__ import annotations

from .errors import HardwareError

#: exit status of a refusal (the CLI's usage/user error code)
EXIT_REFUSED = 2
#: exit status of a retryable outage (sysexits.h EX_TEMPFAIL)
EXIT_TEMPFAIL = 75


class PadmeDBError(HardwareError):
    """Base of every PadmeDAQ database error."""

    exit_code = EXIT_REFUSED
    retryable = False


class PadmeDBUnavailable(PadmeDBError):
    """The server cannot be reached, is restarting or dropped the connection, or a lock
    could not be had in time: retry later."""

    exit_code = EXIT_TEMPFAIL
    retryable = True


class PadmeDBLockConflict(PadmeDBUnavailable):
    """A concurrent writer held a lock: deadlock (MariaDB 1213) or lock wait timeout (1205).
    The transaction was rolled back; running it again is safe for idempotent writes."""


class PadmeDBAccessDenied(PadmeDBError):
    """The login was refused (user, password) or the database named does not exist or is
    not open to the user (a wrong ``PADME_DB_NAME``): a configuration error, not an outage."""


class PadmeDBReadOnly(PadmeDBError):
    """The server or the account does not allow writes (SELECT-only grant, read-only server)."""


class PadmeDBSchemaError(PadmeDBError):
    """The database is not a PadmeDAQ database (a table or column this code needs is missing)."""


class PadmeDBDataError(PadmeDBError):
    """A row is missing or would break a constraint (unknown run, conflicting value...)."""
