"""Where the lab's notifications land: a real SMTP server (aiosmtpd) and a webhook
receiver (http.server), both recording what they get, for tests and the demo.

In-process: ``with Sink(smtp=("127.0.0.1", 0), http=("127.0.0.1", 0)) as sink:``.
As a process inside a lab namespace: ``python -m lab.sink --smtp ADDR:PORT
--http ADDR:PORT --out FILE --ready-file FILE`` appends one JSON line per message.
"""

from __future__ import annotations

import argparse
import json
import signal
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Received:
    """One message: ``channel`` is "smtp" or "http"."""

    channel: str
    headers: dict[str, str]
    body: str
    recipients: tuple[str, ...] = ()
    path: str = ""
    user: str | None = None  # the SMTP login used, if any

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "headers": self.headers,
            "body": self.body,
            "recipients": list(self.recipients),
            "path": self.path,
            "user": self.user,
        }


@dataclass
class Sink:
    smtp: tuple[str, int] | None = None
    http: tuple[str, int] | None = None
    out: Path | None = None
    tls: tuple[Path, Path] | None = None  # (cert, key): SMTP offers STARTTLS
    users: dict[str, str] = field(default_factory=dict)  # SMTP AUTH, only over TLS
    status: int = 200  # what the webhook receiver answers
    max_size: int | None = None  # bytes: larger mail gets SMTP 552, a larger POST HTTP 413
    refuse: tuple[str, ...] = ()  # SMTP recipients answered 550
    data_reply: str | None = None  # what SMTP answers after DATA instead of taking it
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Any = None
    _httpd: ThreadingHTTPServer | None = None

    def __enter__(self) -> Sink:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def record(self, item: Received) -> None:
        with self._lock:
            self.received.append(item)
            if self.out is not None:
                with self.out.open("a") as f:
                    f.write(json.dumps(item.to_json()) + "\n")

    def of(self, channel: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.channel == channel]

    # -- SMTP ----------------------------------------------------------------------------

    def start(self) -> None:
        if self.smtp is not None:
            self._start_smtp(*self.smtp)
        if self.http is not None:
            self._start_http(*self.http)

    def _start_smtp(self, host: str, port: int) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        sink = self

        class Handler:
            async def handle_RCPT(
                self, server: Any, session: Any, envelope: Any, address: str, options: Any
            ) -> str:
                if address in sink.refuse:
                    return "550 5.1.1 no such user"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                if sink.data_reply is not None:
                    return sink.data_reply
                msg = message_from_bytes(envelope.original_content, policy=policy.default)
                body = msg.get_body(("plain",))
                user = session.auth_data.login.decode() if session.auth_data else None
                sink.record(
                    Received(
                        "smtp",
                        {k: str(v) for k, v in msg.items()},
                        body.get_content() if body is not None else "",
                        tuple(envelope.rcpt_tos),
                        user=user,
                    )
                )
                return "250 OK"

        def authenticate(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and self.users.get(data.login.decode()) == data.password.decode()
            )
            return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

        kwargs: dict[str, Any] = {}
        if self.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            kwargs = {"tls_context": context, "require_starttls": True}
        if self.users:
            kwargs.update(authenticator=authenticate, auth_required=True, auth_require_tls=True)
        if self.max_size is not None:
            kwargs["data_size_limit"] = self.max_size
        # port 0 cannot be asked of Controller (it checks its own port): pick one first
        if port == 0:
            port = _free_port(host)
        self._controller = Controller(Handler(), hostname=host, port=port, **kwargs)
        self._controller.start()
        self.smtp = (host, port)

    # -- webhooks ------------------------------------------------------------------------

    def _start_http(self, host: str, port: int) -> None:
        import socket

        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                data = self.rfile.read(length).decode("utf-8", "replace")
                status = sink.status
                if sink.max_size is not None and length > sink.max_size:
                    status = 413
                if status < 300:
                    sink.record(Received("http", dict(self.headers.items()), data, path=self.path))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True

        self._httpd = Server((host, port), Handler)
        self.http = (host, self._httpd.server_address[1])
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


def _free_port(host: str) -> int:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def messages(out: Path) -> list[dict[str, str]]:
    """What a sink's ``--out`` file holds, as kissha's notifications: per message, in
    arrival order, ``via`` ("mail" or "webhook"), the event ``kind``, the sending
    ``node`` and the ``title`` (the mail's subject)."""
    found: list[dict[str, str]] = []
    if not out.exists():
        return found
    for line in out.read_text().splitlines():
        r = json.loads(line)
        if r["channel"] == "smtp":
            h = r["headers"]
            kind, node, title = h["X-Kissha-Event"], h["X-Kissha-Node"], h["Subject"]
            found.append({"via": "mail", "kind": kind, "node": node, "title": title})
        else:
            b = json.loads(r["body"])
            found.append(
                {"via": "webhook", "kind": b["kind"], "node": b["node"], "title": b["title"]}
            )
    return found


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.sink")
    p.add_argument("--smtp", type=_address, help="HOST:PORT for the SMTP server")
    p.add_argument("--http", type=_address, help="HOST:PORT for the webhook receiver")
    p.add_argument("--out", type=Path, required=True, help="append one JSON line a message")
    p.add_argument("--ready-file", type=Path, help="created once both listen")
    args = p.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Sink(smtp=args.smtp, http=args.http, out=args.out):
        if args.ready_file is not None:
            args.ready_file.write_text("ready\n")
        while not stop.wait(0.5):  # bounded waits: the signal handler runs between them
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
