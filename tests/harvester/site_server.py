"""A real HTTP server on 127.0.0.1 serving a fixture site, for crawl and incremental tests.

Files come from a folder (`{base}` in XML files becomes the server's URL; `x.xml.gz` is `x.xml`
gzipped on the fly); `routes` add or override paths with (status, headers, body). Every response
has an ETag and honours If-None-Match with 304. Requests are recorded (path and headers).
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_TYPES = {".html": "text/html; charset=utf-8", ".xml": "application/xml", ".txt": "text/plain",
          ".gz": "application/gzip", ".json": "application/json", ".ics": "text/calendar"}


@dataclass
class SiteServer:
    root: Path | None = None
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    base: str = ""

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def resolve(self, path: str) -> tuple[int, dict[str, str], bytes]:
        if path in self.routes:
            return self.routes[path]
        if self.root is None:
            return 404, {}, b"not found"
        relative = path.lstrip("/") or "index.html"
        gzipped = relative.endswith(".gz")
        file = (self.root / relative.removesuffix(".gz")).resolve()
        if not file.is_file() or self.root.resolve() not in file.parents:
            return 404, {"Content-Type": "text/plain"}, b"not found"
        body = file.read_bytes()
        if file.suffix == ".xml":
            body = body.replace(b"{base}", self.base.encode())
        if gzipped:
            return 200, {"Content-Type": _TYPES[".gz"]}, gzip.compress(body)
        return 200, {"Content-Type": _TYPES.get(file.suffix, "application/octet-stream")}, body


def _handler(site: SiteServer):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            site.requests.append((self.path, dict(self.headers)))
            status, headers, body = site.resolve(self.path.split("?")[0])
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if status == 200 and self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if status == 200:
                self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    return Handler


def start(site: SiteServer) -> tuple[ThreadingHTTPServer, threading.Thread]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    site.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread
