"""A tiny HTTP(S) server playing one node: GET /index.txt answers "Welcome to <fqdn>!"."""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import socketserver
import ssl
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

INDEX_PATH = "/index.txt"
# Bounds TLS handshakes and idle keep-alive connections so stray clients cannot pin threads.
CONNECTION_TIMEOUT = 10.0


@dataclass(frozen=True)
class Behaviour:
    """What the node answers; status/body overrides let tests simulate broken nodes."""

    fqdn: str
    status: int | None = None
    body: str | None = None

    def respond(self, path: str) -> tuple[int, bytes]:
        if urlsplit(path).path == INDEX_PATH:
            status = 200
            text = self.body if self.body is not None else f"Welcome to {self.fqdn}!\n"
        elif urlsplit(path).path == "/":  # a site's home page, for kissha monitor's HTTP checks
            status, text = 200, "<!doctype html><title>lab</title>\n"
        else:
            status, text = 404, "Not found\n"
        return (self.status or status), text.encode("utf-8")


def parse_listen(text: str) -> tuple[str, int]:
    """Parse "ADDR:PORT" or "[V6ADDR]:PORT" into (address, port); addresses must be literals."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected ADDR:PORT or [ADDR]:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"IPv6 addresses need brackets, e.g. [::1]:8443, got {text!r}")
    ipaddress.ip_address(host)  # raises ValueError for names: we never resolve anything
    return host, int(port)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 responses with Content-Length serve both 1.0 and 1.1 clients; for 1.0
    # requests the base class closes the connection after the response anyway.
    protocol_version = "HTTP/1.1"
    server_version = "kissha-lab-node"
    server: _NodeServer
    timeout = CONNECTION_TIMEOUT

    def setup(self) -> None:
        # Handshake here, in the per-connection thread: wrapping the listening socket would
        # run handshakes in the accept loop, where one slow or failing client blocks all.
        context = self.server.tls_context
        if context is not None:
            self.request.settimeout(CONNECTION_TIMEOUT)
            self.request = context.wrap_socket(self.request, server_side=True)
        super().setup()

    def _reply(self, include_body: bool) -> None:
        status, body = self.server.behaviour.respond(self.path)
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if include_body:
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._reply(include_body=True)

    def do_HEAD(self) -> None:
        self._reply(include_body=False)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # tests and the demo start many of these; per-request lines are noise

    def log_error(self, format: str, *args: Any) -> None:
        pass  # malformed requests and timeouts are expected when tests probe failure modes


class _NodeServer(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], behaviour: Behaviour, tls_context: ssl.SSLContext | None
    ) -> None:
        self.address_family = (
            socket.AF_INET6 if ipaddress.ip_address(address[0]).version == 6 else socket.AF_INET
        )
        self.behaviour = behaviour
        self.tls_context = tls_context
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            # V6ONLY lets [::]:P and 0.0.0.0:P be listed side by side without EADDRINUSE.
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        # Skip HTTPServer.server_bind: its socket.getfqdn() does a reverse DNS lookup.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that reject our certificate or hang up are part of the tests, not bugs.
        if isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def _tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ValueError("TLS needs both a certificate and a key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


class NodeServer:
    """Running listeners for one node; close() stops them all. Also a context manager."""

    def __init__(
        self,
        listen: Sequence[tuple[str, int]],
        fqdn: str,
        cert: Path | None = None,
        key: Path | None = None,
        status: int | None = None,
        body: str | None = None,
    ) -> None:
        behaviour = Behaviour(fqdn, status, body)
        context = _tls_context(cert, key)
        self._servers: list[_NodeServer] = []
        self._threads: list[threading.Thread] = []
        try:
            for address in listen:
                self._servers.append(_NodeServer(address, behaviour, context))
        except BaseException:
            self.close()
            raise

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Bound (address, port) pairs, useful when port 0 was requested."""
        return [(s.server_name, s.server_port) for s in self._servers]

    def serve_in_threads(self) -> None:
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                daemon=True,
                name=f"node-{server.server_name}:{server.server_port}",
            )
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        # shutdown() blocks until serve_forever returns, so only call it on started servers.
        for server, thread in zip(self._servers, self._threads, strict=False):
            server.shutdown()
            thread.join(timeout=5)
        for server in self._servers:
            server.server_close()
        self._servers, self._threads = [], []

    def __enter__(self) -> NodeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_in_thread(
    listen: list[tuple[str, int]],
    fqdn: str,
    cert: Path | None = None,
    key: Path | None = None,
    status: int | None = None,
    body: str | None = None,
) -> NodeServer:
    """Start a node in background threads of this process; call .close() when done."""
    node = NodeServer(listen, fqdn, cert, key, status, body)
    node.serve_in_threads()
    return node


def _listen_arg(text: str) -> tuple[str, int]:
    # argparse shows ArgumentTypeError messages but replaces ValueError ones with a generic text.
    try:
        return parse_listen(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lab.webserver", description=__doc__)
    parser.add_argument(
        "--listen",
        action="append",
        required=True,
        type=_listen_arg,
        metavar="ADDR:PORT",
        help="repeatable; IPv6 as [::1]:8443",
    )
    parser.add_argument("--tls-cert", type=Path)
    parser.add_argument("--tls-key", type=Path)
    parser.add_argument("--fqdn", required=True)
    parser.add_argument(
        "--ready-file", type=Path, help="written with our PID once every listener is bound"
    )
    # Environment defaults let a test harness alter a node without rebuilding its argv.
    env_status = os.environ.get("KISSHA_LAB_STATUS")
    parser.add_argument(
        "--status",
        type=int,
        default=int(env_status) if env_status else None,
        help="force this status on every response",
    )
    parser.add_argument(
        "--body", default=os.environ.get("KISSHA_LAB_BODY"), help="replace the /index.txt body"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with NodeServer(
        args.listen, args.fqdn, args.tls_cert, args.tls_key, args.status, args.body
    ) as node:
        node.serve_in_threads()
        if args.ready_file is not None:
            # Write then rename so a poller never reads an empty or partial file.
            partial = args.ready_file.with_name(args.ready_file.name + ".partial")
            partial.write_text(f"{os.getpid()}\n")
            partial.replace(args.ready_file)
        try:
            stop.wait()
        finally:
            if args.ready_file is not None:
                args.ready_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
