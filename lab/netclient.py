"""Tiny clients that the network lab runs inside a namespace: a TCP connect and a Gemini fetch.

Run as ``ip netns exec NS python -m lab.netclient ...``: a socket belongs to the
namespace of the process that opens it, so the lab cannot open these from its own process.
Each command prints one line (or the Gemini response) and exits 0 on success, 1 on failure.
"""

from __future__ import annotations

import argparse
import socket
import ssl
import sys
import time
from collections.abc import Sequence

GEMINI_PORT = 1965
MAX_RESPONSE = 1 << 20
RETRY_INTERVAL = 0.02


def _describe(error: BaseException) -> str:
    # "ConnectionRefusedError: [Errno 111] Connection refused": the type says what a test
    # wants to know even when the message is empty (a bare TimeoutError).
    text = str(error) or "(no message)"
    return f"{type(error).__name__}: {text}"


def connect(address: str, port: int, timeout: float) -> None:
    """Open and close one TCP connection; raises OSError if that fails."""
    with socket.create_connection((address, port), timeout=timeout):
        pass


def connect_until(address: str, port: int, timeout: float, wait: float) -> None:
    """connect(), retried until it works or `wait` seconds have passed (for start-up)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            connect(address, port, timeout)
            return
        except OSError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(RETRY_INTERVAL)


def gemini(address: str, hostname: str, path: str, ca_file: str, timeout: float) -> bytes:
    """One Gemini request to address:1965 with SNI hostname, verified against ca_file."""
    context = ssl.create_default_context(cafile=ca_file)
    with (
        socket.create_connection((address, GEMINI_PORT), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=hostname) as conn,
    ):
        conn.sendall(f"gemini://{hostname}{path}\r\n".encode())
        chunks: list[bytes] = []
        size = 0
        while size < MAX_RESPONSE:
            chunk = conn.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lab.netclient", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("connect", help="TCP connect; prints ok or the error")
    c.add_argument("address")
    c.add_argument("port", type=int)
    c.add_argument("--timeout", type=float, default=1.0, help="per attempt")
    c.add_argument("--wait", type=float, default=0.0, help="retry for this many seconds")
    g = sub.add_parser("gemini", help="fetch gemini://HOSTNAME/PATH from ADDRESS")
    g.add_argument("address")
    g.add_argument("hostname")
    g.add_argument("--path", default="/")
    g.add_argument("--ca-file", required=True)
    g.add_argument("--timeout", type=float, default=3.0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        if args.command == "connect":
            connect_until(args.address, args.port, args.timeout, args.wait)
            print("ok")
        else:
            body = gemini(args.address, args.hostname, args.path, args.ca_file, args.timeout)
            sys.stdout.write(body.decode("utf-8", errors="replace"))
    except (OSError, ssl.SSLError) as e:
        print(_describe(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
