"""The [certs] table: which CA, which names, where the files go, what runs after a change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kissha.config.tomlcheck import (
    Reader,
    argv,
    at_least,
    nonempty,
    one_of,
    path_from,
    positive,
    seconds_of,
)
from kissha.core.model import Node

# Names for the directories people use most; any https:// URL works too.
DIRECTORIES = {
    "letsencrypt": "https://acme-v02.api.letsencrypt.org/directory",
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}
STRATEGIES = ("every-node", "when-served")
KEY_TYPES = ("ecdsa-p256", "rsa-2048")


@dataclass(frozen=True)
class Layout:
    """Where one name's files go; ``{name}`` is replaced by the DNS name."""

    cert: str
    key: str
    fullchain: str
    # relayd and httpd send what is in NAME.crt: the original symlinked it to the full
    # chain, so in the OpenBSD layout the .crt file holds the chain too.
    cert_has_chain: bool


LAYOUTS = {
    # relayd's "tls keypair NAME" and httpd's defaults, as acme-client writes them.
    "openbsd": Layout(
        "/etc/ssl/{name}.crt", "/etc/ssl/private/{name}.key", "/etc/ssl/{name}.fullchain.pem", True
    ),
    # Debian's ssl-cert convention: private keys in /etc/ssl/private (group ssl-cert).
    "debian": Layout(
        "/etc/ssl/certs/{name}.crt",
        "/etc/ssl/private/{name}.key",
        "/etc/ssl/certs/{name}.fullchain.pem",
        False,
    ),
}


@dataclass(frozen=True)
class CertsConfig:
    """How ``kissha certs`` obtains and keeps one certificate per name."""

    directory: str = DIRECTORIES["letsencrypt"]
    strategy: str = "every-node"
    contact: str = ""  # e-mail for the CA's expiry and policy mail; "" none
    ca_file: Path | None = None  # trust for the ACME directory's own HTTPS (pebble)
    eab_kid: str = ""
    eab_hmac_key_file: Path | None = None
    key_type: str = "ecdsa-p256"
    layout: str = "openbsd"
    cert: str = LAYOUTS["openbsd"].cert
    key: str = LAYOUTS["openbsd"].key
    fullchain: str = LAYOUTS["openbsd"].fullchain
    cert_has_chain: bool = True
    key_group: str = ""  # "" : root only (0600); else 0640 for this group (Debian: ssl-cert)
    challenge_dir: Path = Path("/var/www/acme")
    reload: tuple[tuple[str, ...], ...] = ()
    hook_timeout: float = 60.0
    spread: float = 86400.0  # due dates move up to this much earlier, per node and name
    concurrency: int = 4
    timeout: float = 120.0  # one order, from new-order to the certificate
    warn_days: int = 14  # a certificate this close to expiry that cannot be renewed is told
    node: str | None = None  # this node; default: from the host name, as [notify]
    exclude: tuple[str, ...] = ()  # names that need no certificate from kissha

    def path(self, which: str, name: str) -> Path:
        template = {"cert": self.cert, "key": self.key, "fullchain": self.fullchain}[which]
        return Path(template.replace("{name}", name))


def _template(value: str) -> str | None:
    if "{name}" not in value:
        return "must contain {name} (one file per name)"
    return None if value.startswith("/") else "must be an absolute path"


def _duration(value: str | float | int) -> float | None:
    if isinstance(value, str):
        return seconds_of(value)
    return float(value) if value >= 0 else None


def parse_certs(
    r: Reader, table: Mapping[str, Any], base: Path, nodes: tuple[Node, ...]
) -> CertsConfig:
    p = "certs"
    r.unknown(
        table,
        {
            "directory",
            "strategy",
            "contact",
            "ca_file",
            "eab_kid",
            "eab_hmac_key_file",
            "key_type",
            "layout",
            "cert",
            "key",
            "fullchain",
            "key_group",
            "challenge_dir",
            "reload",
            "hook_timeout",
            "spread",
            "concurrency",
            "timeout",
            "warn_days",
            "node",
            "exclude",
        },
        p,
    )
    directory = r.get(table, "directory", p, str, "letsencrypt")
    if directory in DIRECTORIES:
        directory = DIRECTORIES[directory]
    elif not directory.startswith(("https://", "http://")):
        names = ", ".join(DIRECTORIES)
        r.problem(f"{p}.directory", f"not {names} or an http(s):// URL: {directory!r}")
    layout_name = r.get(table, "layout", p, str, "openbsd", one_of(tuple(LAYOUTS)))
    layout = LAYOUTS.get(layout_name, LAYOUTS["openbsd"])
    eab_kid = r.get(table, "eab_kid", p, str, "")
    eab_file = r.get(table, "eab_hmac_key_file", p, str, "", nonempty)
    if bool(eab_kid) != bool(eab_file):
        r.problem(f"{p}.eab_kid", "eab_kid and eab_hmac_key_file go together")
    contact = r.get(table, "contact", p, str, "")
    if contact and ("@" not in contact or contact.startswith("mailto:")):
        r.problem(f"{p}.contact", f"not an e-mail address: {contact!r}")
    node = r.get(table, "node", p, str, "", nonempty) or None
    if node is not None and node not in {n.name for n in nodes}:
        r.problem(f"{p}.node", f"no such node: {node!r}")
    reload_raw = r.get(table, "reload", p, list, [])
    reload: list[tuple[str, ...]] = []
    for i, command in enumerate(reload_raw):
        message = argv(command) if isinstance(command, list) else "must be an array"
        if message:
            r.problem(f"{p}.reload[{i}]", message + ' (e.g. ["rcctl", "reload", "relayd"])')
        else:
            reload.append(tuple(command))
    spread_raw = r.get(table, "spread", p, (str, int, float), "1d")
    spread = _duration(spread_raw)
    if spread is None:
        r.problem(f"{p}.spread", f"not a duration such as '1d' or '6h': {spread_raw!r}")
    exclude = r.get(table, "exclude", p, list, [])
    if not all(isinstance(x, str) for x in exclude):
        r.problem(f"{p}.exclude", "must be an array of names")
    ca_file = r.get(table, "ca_file", p, str, "", nonempty)
    return CertsConfig(
        directory=directory,
        strategy=r.get(table, "strategy", p, str, "every-node", one_of(STRATEGIES)),
        contact=contact,
        ca_file=path_from(base, ca_file) if ca_file else None,
        eab_kid=eab_kid,
        eab_hmac_key_file=path_from(base, eab_file) if eab_file else None,
        key_type=r.get(table, "key_type", p, str, "ecdsa-p256", one_of(KEY_TYPES)),
        layout=layout_name,
        cert=r.get(table, "cert", p, str, layout.cert, _template),
        key=r.get(table, "key", p, str, layout.key, _template),
        fullchain=r.get(table, "fullchain", p, str, layout.fullchain, _template),
        cert_has_chain=layout.cert_has_chain,
        key_group=r.get(table, "key_group", p, str, ""),
        challenge_dir=path_from(base, r.get(table, "challenge_dir", p, str, "/var/www/acme")),
        reload=tuple(reload),
        hook_timeout=r.get(table, "hook_timeout", p, float, 60.0, positive),
        spread=spread or 0.0,
        concurrency=r.get(table, "concurrency", p, int, 4, at_least(1)),
        timeout=r.get(table, "timeout", p, float, 120.0, positive),
        warn_days=r.get(table, "warn_days", p, int, 14, at_least(0)),
        node=node,
        exclude=tuple(str(x).rstrip(".").lower() for x in exclude),
    )
