"""Addresses and failure wording of the BTF memcached (shared by the adapter, the simulator
and the command line)."""

from __future__ import annotations

from pymemcache.exceptions import MemcacheUnexpectedCloseError


def parse_hostport(text: str, default_port: int = 11211) -> tuple[str, int]:
    """``HOST:PORT`` (or ``HOST``) -> ``(host, port)``; ValueError on nonsense."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = text.strip(), str(default_port)
    if not host:
        raise ValueError(f"'{text}': expected HOST:PORT")
    try:
        port_i = int(port)
    except ValueError:
        raise ValueError(f"'{text}': port '{port}' is not a number") from None
    if not 0 < port_i < 65536:
        raise ValueError(f"'{text}': port {port_i} outside 1..65535")
    return host, port_i


def failure_reason(exc: BaseException | None) -> str:
    """Why a memcached call failed, in words a crew can act on (pymemcache's errors often
    carry no message: a server that is not memcached just closes the connection)."""
    if isinstance(exc, MemcacheUnexpectedCloseError):
        return (
            "the server closed the connection without a memcached reply: is this address a "
            "memcached? (an HTTP server, e.g. the TimePix, does this)"
        )
    text = str(exc) if exc is not None else ""
    if "HTTP/" in text:
        return f"the server answered HTTP ({text[:60]!r}): that is a web server, not memcached"
    if exc is None:
        return "no answer"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
