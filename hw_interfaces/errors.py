"""Errors of the hardware layer. Every message names the device (element, host:port, URL)
and, where there is one, the key or command that failed, so a crew member knows where to look.

All derive from :class:`HardwareError`; the CLI registers that base class as a user error
(one ``error: ...`` line, exit code 2).
"""

from __future__ import annotations


class HardwareError(RuntimeError):
    """Base of every error raised by ``hw_interfaces``.

    ``device`` is the element / server the call talked to, ``key`` the memcached key,
    HTTP path or protocol command (empty when not applicable).
    """

    def __init__(self, message: str, *, device: str = "", key: str = "") -> None:
        super().__init__(message)
        self.device = device
        self.key = key


class BadRequest(HardwareError):
    """The call itself is invalid (illegal element name or key, bad argument)."""


class ConnectionFailed(HardwareError):
    """The server could not be reached (refused, reset, DNS...) after the allowed retries."""


#: Alias used by callers that think in terms of availability.
DeviceUnavailable = ConnectionFailed


class DeviceTimeout(HardwareError):
    """The server accepted the call but did not answer within the timeout."""


class MissingKey(HardwareError):
    """A memcached key (or an expected field of a record) is absent."""


class DecodeError(HardwareError):
    """Bytes or JSON that do not match the expected layout (truncated, garbage, wrong type)."""


class InvalidValue(HardwareError):
    """A record decoded but carries a non-finite or out-of-range value (NaN current...)."""


class StaleReading(HardwareError):
    """A record has not changed for longer than the allowed age."""


class WriteNotEnabled(HardwareError):
    """A write was attempted on a client created read-only."""


class WriteNotConfirmed(HardwareError):
    """A write was refused by the confirmation callback."""


class ProtocolError(HardwareError):
    """The peer broke the protocol: bad frame, unexpected message, server error answer."""


class NoData(HardwareError):
    """A detector returned no usable frames (all dropped, measurement not running)."""


class NoBeam(HardwareError):
    """Frames arrived but hold too few hits to measure a beam spot."""


class RunInitFailed(HardwareError):
    """RunControl answered ``init_fail`` to a new run."""


class RunInitTimeout(HardwareError):
    """RunControl answered ``init_timeout`` to a new run."""


class RunTerminateError(HardwareError):
    """RunControl answered ``terminate_error`` when stopping a run."""
