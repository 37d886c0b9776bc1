"""Control channel of a running facility simulator (fault injection from another process).

A small JSON-over-HTTP server on 127.0.0.1 next to the simulated services, so that a crew
member (or ``scanplan sim`` in another terminal) can inject and clear faults and move set
points while the simulator runs:

=====================================================  ==========================================
``GET /faults``                                        active faults per target
``GET /status``                                        addresses, supplies, active faults
``POST /inject`` ``{"fault": "trip", "target": "DHSTB001"}``
``POST /clear`` ``{"fault": null, "target": null}``    clear one / a target's / all faults
``POST /revive`` ``{"target": "timepix"}``             restart a killed server on its port
``POST /set_current`` ``{"element": "DHSTB001", "current_a": 180.0}``
=====================================================  ==========================================

Errors answer HTTP 400 with ``{"error": "..."}``. :class:`SimControlClient` is the client.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

from ..errors import BadRequest, ConnectionFailed, DeviceTimeout
from ._http import JsonHandler, JsonHTTPServer
from ._server import serve_in_thread
from .facility import FacilitySimulator

DEVICE = "simulator control"


class _Server(JsonHTTPServer):
    facility: FacilitySimulator


class _Handler(JsonHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        fac = self.server.facility
        if self.path == "/faults":
            self.send_json(200, fac.faults())
        elif self.path == "/status":
            self.send_json(200, status(fac))
        else:
            self.send_json(404, {"error": f"no endpoint GET {self.path}"})

    def do_POST(self) -> None:
        fac = self.server.facility
        try:
            body = json.loads(self.read_body() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            if self.path == "/inject":
                fac.inject(str(body["fault"]), str(body["target"]))
            elif self.path == "/clear":
                fac.clear(body.get("fault"), body.get("target"))
            elif self.path == "/revive":
                fac.revive(str(body["target"]))
            elif self.path == "/set_current":
                fac.psu.set_current(str(body["element"]), float(body["current_a"]))
            else:
                self.send_json(404, {"error": f"no endpoint POST {self.path}"})
                return
        except (KeyError, TypeError, ValueError) as exc:
            self.send_json(
                400, {"error": str(exc) if not isinstance(exc, KeyError) else f"missing {exc}"}
            )
            return
        self.send_json(200, {"ok": True, "faults": fac.faults()})


def status(fac: FacilitySimulator) -> dict[str, Any]:
    """JSON-ready overview of a running simulator."""
    return {
        "memcached": fac.memcached_address,
        "key_prefix": fac.psu.key_prefix,
        "timepix_url": fac.serval.url if fac.serval.running else None,
        "runcontrol_port": fac.runcontrol.port if fac.runcontrol.running else None,
        "supplies": {
            e: {
                "set_point_a": s.set_point_a,
                "output_current_a": s.output_current_a,
                "status": s.status,
                "branch": s.branch,
                "commands_applied": s.commands_applied,
                "commands_refused": s.commands_refused,
            }
            for e, s in fac.psu_states().items()
        },
        "faults": fac.faults(),
        "runs": [r.name for r in fac.runcontrol.runs],
    }


class SimControlServer:
    """Serve the control channel of ``facility`` on 127.0.0.1 (port 0 = any free)."""

    def __init__(self, facility: FacilitySimulator, port: int = 0) -> None:
        self.facility = facility
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("control server not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> SimControlServer:
        if self._server is None:
            self._server = _Server(("127.0.0.1", self._port), _Handler)
            self._server.facility = self.facility
            self._thread = serve_in_thread(self._server, "sim-control")
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SimControlServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SimControlClient:
    """Client of :class:`SimControlServer` (bounded timeouts, proxies ignored)."""

    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST" if data else "GET")
        try:
            with self._opener.open(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            exc.close()
            try:
                detail = json.loads(detail).get("error", detail)
            except (json.JSONDecodeError, AttributeError):
                pass
            raise BadRequest(
                f"{DEVICE} {self.url}{path}: {detail}", device=DEVICE, key=path
            ) from None
        except TimeoutError:
            raise DeviceTimeout(
                f"{DEVICE} {self.url}{path}: no answer within {self.timeout_s:g} s",
                device=DEVICE,
                key=path,
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ConnectionFailed(
                f"{DEVICE} {self.url}{path}: {exc}", device=DEVICE, key=path
            ) from None

    def faults(self) -> dict[str, list[str]]:
        return self._call("/faults")

    def status(self) -> dict[str, Any]:
        return self._call("/status")

    def inject(self, fault: str, target: str) -> dict[str, Any]:
        return self._call("/inject", {"fault": fault, "target": target})

    def clear(self, fault: str | None = None, target: str | None = None) -> dict[str, Any]:
        return self._call("/clear", {"fault": fault, "target": target})

    def revive(self, target: str) -> dict[str, Any]:
        return self._call("/revive", {"target": target})

    def set_current(self, element: str, current_a: float) -> dict[str, Any]:
        return self._call("/set_current", {"element": element, "current_a": current_a})
