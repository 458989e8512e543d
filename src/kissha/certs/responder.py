"""A tiny port-80 server: ACME challenges by challenge.route, everything else to HTTPS."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

from kissha.certs.challenge import route

log = logging.getLogger(__name__)
TIMEOUT = 10.0  # a client that sends nothing cannot hold a thread longer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    challenge_dir: Path
    me: str
    chain: tuple[str, ...]


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = TIMEOUT
    server_version = "kissha"

    def do_GET(self) -> None:
        directory = self.server.challenge_dir
        answer = route(
            self.headers.get("Host", ""),
            self.path,
            self.server.me,
            self.server.chain,
            lambda token: (directory / token).is_file(),
        )
        body = b""
        if answer.status == 200:
            try:
                body = (directory / answer.token).read_bytes()
            except OSError:  # removed between the check and the read: the order is over
                answer = type(answer)(404)
        self.send_response(answer.status)
        if answer.location:
            self.send_header("Location", answer.location)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.info("%s %s", self.address_string(), format % args)


def serve(
    addresses: list[tuple[str, int]], challenge_dir: Path, me: str, chain: tuple[str, ...]
) -> int:
    servers: list[_Server] = []
    for host, port in addresses:
        cls = _Server6 if ":" in host else _Server
        server = cls((host, port), _Handler)
        server.challenge_dir, server.me, server.chain = challenge_dir, me, chain
        servers.append(server)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    log.info("challenges: %s on %s", me, ", ".join(f"{h}:{p}" for h, p in addresses))
    stop.wait()
    for s in servers:
        s.shutdown()
        s.server_close()
    return 0
