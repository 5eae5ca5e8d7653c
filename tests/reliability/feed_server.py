"""A real HTTP server on 127.0.0.1 whose answers a test scripts: a body, a status, or a hang."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/csv; charset=utf-8"
    delay_s: float = 0.0  # sleep before answering (a feed that hangs)


@dataclass
class ScriptedServer:
    answers: dict[str, Answer] = field(default_factory=dict)
    base: str = ""
    hits: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


def start(script: ScriptedServer) -> tuple[ThreadingHTTPServer, threading.Thread]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            script.hits.append(self.path)
            answer = script.answers.get(self.path, Answer(404, b"not found", "text/plain"))
            if answer.delay_s:
                script.release.wait(answer.delay_s)  # released at shutdown, so tests end quickly
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    script.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def stop(script: ScriptedServer, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
    script.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
