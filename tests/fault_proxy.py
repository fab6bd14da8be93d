"""A loopback HTTP proxy that injects faults in front of a real server: what a flaky network or an
overloaded server does, on demand. Each POST takes the next planned fault, if any, else is forwarded."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultProxy:
    """Faults, one per POST in order: "drop" (close without answering), "hang:SECONDS" (then drop),
    or an HTTP status such as "503" (answered with an OpenAI-style error that quotes the request).
    GETs are always forwarded; without an upstream, an unplanned request gets 502."""

    def __init__(self, upstream_port: int | None = None) -> None:
        self.upstream_port = upstream_port
        self.faults: deque[str] = deque()
        self.posts = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return None

            def do_GET(self) -> None:
                proxy._forward(self, b"")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy._lock:
                    proxy.posts += 1
                    fault = proxy.faults.popleft() if proxy.faults else None
                if fault is None:
                    proxy._forward(self, body)
                elif fault == "drop":
                    self.close_connection = True
                elif fault.startswith("hang:"):
                    time.sleep(float(fault.removeprefix("hang:")))
                    self.close_connection = True
                else:
                    error = {"error": {"message": f"cannot serve {body.decode()[:200]}", "code": "injected"}}
                    proxy._answer(self, int(fault), json.dumps(error).encode())

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _answer(self, handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        if self.upstream_port is None:
            self._answer(handler, 502, b'{"error": {"message": "no upstream"}}')
            return
        try:
            upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=600)
            headers = {"Content-Type": "application/json"}
            upstream.request(handler.command, handler.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            status, answer = response.status, response.read()
            upstream.close()
        except OSError:  # the server is gone: what a gateway says
            self._answer(handler, 502, b'{"error": {"message": "bad gateway"}}')
            return
        with contextlib.suppress(OSError):  # the client gave up (timed out) meanwhile
            self._answer(handler, status, answer)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
