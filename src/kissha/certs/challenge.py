"""HTTP-01 without shared storage: answer the tokens held here, redirect the others.

A CA validating ``name`` fetches ``http://name/.well-known/acme-challenge/TOKEN`` from
whichever node the DNS points it at, from several vantage points. The node that asked
wrote TOKEN into its own challenge directory; the others do not know TOKEN. So a node
that does not hold a token redirects the request along the chain of node FQDNs (in
config order, skipping itself): each node FQDN always points at that node, and the CA
follows redirects (RFC 8555 §8.3; Let's Encrypt up to 10 hops, pebble up to 10), so the
request reaches the node that holds the token in at most N - 1 hops, from every vantage
point, whichever node the DNS named. The chain ends at the last node FQDN with a 404.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

PREFIX = "/.well-known/acme-challenge/"
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # base64url: no '/', no '..'


@dataclass(frozen=True)
class Answer:
    status: int  # 200, 302, 301, 404
    token: str = ""  # 200: the token whose file to send
    location: str = ""  # 30x


def route(
    host: str,
    path: str,
    me: str,
    chain: Sequence[str],
    holds: Callable[[str], bool],
) -> Answer:
    """What port 80 answers. ``me``: this node's FQDN; ``chain``: every node's FQDN in
    config order; ``holds(token)``: whether this node wrote that token."""
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host  # "name:80"
    host = host.strip("[]").rstrip(".").lower()
    if not path.startswith(PREFIX):
        # Everything else goes to HTTPS, as the original's httpd did on port 80.
        return Answer(301, location=f"https://{host}{path}") if host else Answer(404)
    token = path[len(PREFIX) :].split("?", 1)[0]
    if not _TOKEN_RE.match(token):
        return Answer(404)
    if holds(token):
        return Answer(200, token=token)
    start = chain.index(host) + 1 if host in chain else 0
    for fqdn in chain[start:]:
        if fqdn != me:
            return Answer(302, location=f"http://{fqdn}{PREFIX}{token}")
    return Answer(404)
