"""JSON-over-HTTP plumbing shared by the simulator's HTTP servers."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class JsonHTTPServer(ThreadingHTTPServer):
    """Threaded HTTP server whose request threads are daemons, joined on close."""

    daemon_threads = True
    block_on_close = True


class JsonHandler(BaseHTTPRequestHandler):
    """Request handler that answers with JSON documents."""

    def send_json(self, code: int, doc: Any) -> None:
        """Answer HTTP ``code`` with ``doc`` as the JSON body."""
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self) -> bytes | None:
        """The request body (``Content-Length`` bytes), None when the request declares none."""
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else None
