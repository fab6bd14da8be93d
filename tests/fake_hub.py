"""A loopback HTTP server that answers like a model hub for `hf_hub_download`, serving local files."""

from __future__ import annotations

import hashlib
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@contextmanager
def fake_hub(files: dict[str, Path]):
    """Serve {"owner/repo/filename": path} at http://127.0.0.1:PORT; yields (endpoint, request log)."""
    etags = {key: hashlib.sha256(path.read_bytes()).hexdigest() for key, path in files.items()}
    log: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _lookup(self) -> str | None:
            # /{owner}/{repo}/resolve/{revision}/{filename}
            parts = self.path.split("?")[0].strip("/").split("/")
            if len(parts) >= 5 and parts[2] == "resolve":
                return "/".join(parts[:2] + parts[4:])
            return None

        def _headers(self, key: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(files[key].stat().st_size))
            self.send_header("ETag", f'"{etags[key]}"')
            self.send_header("X-Repo-Commit", COMMIT)
            self.end_headers()

        def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
            log.append(f"HEAD {self.path}")
            key = self._lookup()
            if key in files:
                self._headers(key)
            else:
                self.send_error(404)

        def do_GET(self) -> None:  # noqa: N802
            log.append(f"GET {self.path}")
            key = self._lookup()
            if key not in files:
                self.send_error(404)
                return
            self._headers(key)
            with files[key].open("rb") as handle:
                while block := handle.read(1 << 20):
                    self.wfile.write(block)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()
