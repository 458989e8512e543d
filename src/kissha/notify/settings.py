"""[notify] in the config: channels (mail, webhook) and how often to tell, validated."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kissha.config.tomlcheck import (
    Reader,
    argv,
    at_least,
    nonempty,
    one_of,
    parse_listen,
    path_from,
    port_number,
    positive,
    seconds_of,
)
from kissha.notify.kinds import DEFAULT_EVENTS, KINDS

if TYPE_CHECKING:
    from kissha.core.model import Node

DEFAULT_SENDMAIL = ("/usr/sbin/sendmail",)
FORMATS = ("json", "ntfy")
CLUSTER_EVENTS = ("master", "every-node")
_ADDRESS_RE = re.compile(r"^[^@\s<>,;\"()]+@[^@\s<>,;\"()]+$")
_HEADER_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CHANNEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# scheme://[userinfo@]host[:port][/path...]; host a name or a [bracketed IPv6] literal
_URL_RE = re.compile(
    r"^https?://(?:[^@/?#]*@)?(?:[A-Za-z0-9._~%!$&'()*+,;=-]+|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?(?:[/?#].*)?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class MailChannel:
    """Mail through the local sendmail binary, or to an SMTP server."""

    name: str
    to: tuple[str, ...]
    sender: str | None = None  # "from"; default kissha@<this host's name>
    sendmail: tuple[str, ...] = DEFAULT_SENDMAIL  # argv; "-t -oi" is added
    smtp: tuple[str, int] | None = None  # (host, port): SMTP instead of sendmail
    starttls: bool = True
    tls_ca: str | None = None
    username: str | None = None
    password_file: str | None = None
    password_env: str | None = None
    events: frozenset[str] = DEFAULT_EVENTS

    kind = "mail"


@dataclass(frozen=True)
class WebhookChannel:
    """A JSON POST (or ntfy's text body with Title/Priority/Tags headers)."""

    name: str
    url: str
    format: str = "json"
    headers: tuple[tuple[str, str], ...] = ()
    token_file: str | None = None
    token_env: str | None = None
    tls_ca: str | None = None
    events: frozenset[str] = DEFAULT_EVENTS

    kind = "webhook"


Channel = MailChannel | WebhookChannel


@dataclass(frozen=True)
class NotifyConfig:
    mail: tuple[MailChannel, ...] = ()
    webhook: tuple[WebhookChannel, ...] = ()
    node: str | None = None  # this node's name; default: from the host name
    cluster_events: str = "master"
    reminder: float = 86400.0  # 0: no reminders
    rate_limit: int = 10  # messages per channel per hour
    retry: float = 86400.0  # how long a failed delivery is retried
    timeout: float = 10.0  # for all deliveries of one run together
    watch_nameservers: bool = False
    watch_port: int = 53
    split_brain_after: float = 300.0

    @property
    def channels(self) -> tuple[Channel, ...]:
        return (*self.mail, *self.webhook)


def parse_duration(value: object) -> float | None:
    """'90m', '1d12h', 3600 (seconds), 'off' or 0 -> seconds (0.0 for off); None if bad."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value >= 0 else None
    if not isinstance(value, str):
        return None
    return 0.0 if value.strip().lower() == "off" else seconds_of(value)


def parse_notify(
    r: Reader, table: Mapping[str, Any], base: Path, nodes: tuple[Node, ...]
) -> NotifyConfig:
    p = "notify"
    r.unknown(
        table,
        {
            "mail",
            "webhook",
            "node",
            "cluster_events",
            "reminder",
            "rate_limit",
            "retry",
            "timeout",
            "events",
            "watch_nameservers",
            "watch_port",
            "split_brain_after",
        },
        p,
    )
    names = [n.name for n in nodes]
    node = r.get(table, "node", p, str, "") or None
    if node is not None and names and node not in names:
        r.problem(f"{p}.node", f"no such node: {node!r} (nodes: {', '.join(names)})")
    defaults = _events(r, table, p, DEFAULT_EVENTS)

    def duration(key: str, default: float, allow_off: bool) -> float:
        if key not in table:
            return default
        seconds = parse_duration(table[key])
        if seconds is None or (seconds == 0 and not allow_off):
            off = ", or 'off'" if allow_off else ""
            r.problem(f"{p}.{key}", f"not a duration (e.g. 30m, 24h, 1d{off}): {table[key]!r}")
            return default
        return seconds

    mail = tuple(
        _mail(r, spec, f"{p}.mail[{i}]", base, defaults)
        for i, spec in enumerate(_array(r, table, "mail", p))
    )
    webhook = tuple(
        _webhook(r, spec, f"{p}.webhook[{i}]", base, defaults)
        for i, spec in enumerate(_array(r, table, "webhook", p))
    )
    if not mail and not webhook:
        r.problem(p, "no channel: add a [[notify.mail]] or a [[notify.webhook]] table")
    seen: dict[str, str] = {}
    keyed: list[tuple[str, Channel]] = [(f"{p}.mail[{i}]", c) for i, c in enumerate(mail)]
    keyed += [(f"{p}.webhook[{i}]", c) for i, c in enumerate(webhook)]
    for key, channel in keyed:
        if channel.name in seen:
            r.problem(f"{key}.name", f"same channel name as {seen[channel.name]}: {channel.name!r}")
        seen.setdefault(channel.name, key)
    return NotifyConfig(
        mail=mail,
        webhook=webhook,
        node=node,
        cluster_events=r.get(table, "cluster_events", p, str, "master", one_of(CLUSTER_EVENTS)),
        reminder=duration("reminder", 86400.0, allow_off=True),
        rate_limit=r.get(table, "rate_limit", p, int, 10, at_least(1)),
        retry=duration("retry", 86400.0, allow_off=True),
        timeout=r.get(table, "timeout", p, float, 10.0, positive),
        watch_nameservers=r.get(table, "watch_nameservers", p, bool, False),
        watch_port=r.get(table, "watch_port", p, int, 53, port_number),
        split_brain_after=duration("split_brain_after", 300.0, allow_off=True),
    )


def _array(r: Reader, table: Mapping[str, Any], key: str, p: str) -> list[dict[str, Any]]:
    raw = table.get(key, [])
    if not isinstance(raw, list):
        r.problem(f"{p}.{key}", f"must be an array of tables ([[{p}.{key}]])")
        return []
    out = []
    for i, spec in enumerate(raw):
        if isinstance(spec, dict):
            out.append(spec)
        else:
            r.problem(f"{p}.{key}[{i}]", "must be a table")
    return out


def _events(
    r: Reader, spec: Mapping[str, Any], key: str, default: frozenset[str]
) -> frozenset[str]:
    """An ``events`` filter: kinds from the table, "default" for the default set."""
    if "events" not in spec:
        return default
    raw = spec["events"]
    if not isinstance(raw, list) or not all(isinstance(k, str) for k in raw):
        r.problem(f"{key}.events", "must be an array of event kinds")
        return default
    out: set[str] = set()
    for i, kind in enumerate(raw):
        if kind == "default":
            out |= DEFAULT_EVENTS
        elif kind in KINDS:
            out.add(kind)
        else:
            r.problem(
                f"{key}.events[{i}]",
                f"no such event kind: {kind!r} (kinds: default, {', '.join(KINDS)})",
            )
    return frozenset(out)


def _secret(
    r: Reader, spec: Mapping[str, Any], key: str, what: str, base: Path
) -> tuple[str | None, str | None]:
    """``<what>_file`` (a path) or ``<what>_env`` (a variable name), not both."""
    file = r.get(spec, f"{what}_file", key, str, "", nonempty) or None
    env = r.get(spec, f"{what}_env", key, str, "", _env_name) or None
    if file and env:
        r.problem(f"{key}.{what}_env", f"give {what}_file or {what}_env, not both")
    return (str(path_from(base, file)) if file else None), env


def _env_name(value: str) -> str | None:
    return None if _ENV_RE.match(value) else f"not an environment variable name: {value!r}"


def _channel_name(value: str) -> str | None:
    if _CHANNEL_RE.match(value):
        return None
    return f"letters, digits, '.', '_' and '-' only: {value!r}"


def _default_name(kind: str, *parts: str) -> str:
    """A stable name from the destination; zlib, not hashlib: it costs nothing to import."""
    import zlib

    return f"{kind}-{zlib.crc32(chr(0).join(parts).encode()):08x}"


def _address(value: str) -> str | None:
    return None if _ADDRESS_RE.match(value) else f"not a mail address: {value!r}"


def _mail(
    r: Reader, spec: Mapping[str, Any], key: str, base: Path, defaults: frozenset[str]
) -> MailChannel:
    r.unknown(
        spec,
        {
            "name",
            "to",
            "from",
            "sendmail",
            "smtp",
            "starttls",
            "tls_ca",
            "username",
            "password_file",
            "password_env",
            "events",
        },
        key,
    )
    raw_to = spec.get("to")
    to: list[str] = []
    if raw_to is None:
        r.problem(f"{key}.to", "missing (the address(es) to mail)")
    elif isinstance(raw_to, str):
        to = [raw_to]
    elif isinstance(raw_to, list) and raw_to and all(isinstance(a, str) for a in raw_to):
        to = list(raw_to)
    else:
        r.problem(f"{key}.to", "must be an address or a non-empty array of addresses")
    for i, address in enumerate(to):
        message = _address(address)
        if message:
            r.problem(f"{key}.to" if len(to) == 1 else f"{key}.to[{i}]", message)
    sender = r.get(spec, "from", key, str, "", _address) or None
    sendmail: tuple[str, ...] = DEFAULT_SENDMAIL
    if "sendmail" in spec:
        raw = spec["sendmail"]
        if isinstance(raw, str) and raw:
            sendmail = (str(path_from(base, raw)) if "/" in raw else raw,)
        elif isinstance(raw, list) and not argv(raw):
            sendmail = tuple(raw)
        else:
            r.problem(f"{key}.sendmail", "must be a path or an argv array")
    smtp = None
    text = r.get(spec, "smtp", key, str, "")
    if text:
        smtp = parse_listen(text)
        if smtp is None:
            r.problem(f"{key}.smtp", f"not HOST:PORT (e.g. 'mail.example.org:587'): {text!r}")
    if text and "sendmail" in spec:
        r.problem(f"{key}.sendmail", "give sendmail or smtp, not both")
    starttls = r.get(spec, "starttls", key, bool, True)
    username = r.get(spec, "username", key, str, "", nonempty) or None
    password_file, password_env = _secret(r, spec, key, "password", base)
    smtp_only = ("starttls", "tls_ca", "username", "password_file", "password_env")
    if not text:
        for k in smtp_only:
            if k in spec:
                r.problem(f"{key}.{k}", "only with smtp (sendmail is configured on its own)")
    if username and not (password_file or password_env):
        r.problem(f"{key}.username", "needs password_file or password_env")
    if (password_file or password_env) and not username:
        r.problem(f"{key}.username", "missing (a password is given)")
    if username and not starttls:
        r.problem(
            f"{key}.starttls", "must be true with a username: a password is never sent in clear"
        )
    tls_ca = r.get(spec, "tls_ca", key, str, "", nonempty) or None
    name = r.get(spec, "name", key, str, "", _channel_name) or _default_name(
        "mail", *to, text or " ".join(sendmail)
    )
    return MailChannel(
        name=name,
        to=tuple(to),
        sender=sender,
        sendmail=sendmail,
        smtp=smtp,
        starttls=starttls,
        tls_ca=str(path_from(base, tls_ca)) if tls_ca else None,
        username=username,
        password_file=password_file,
        password_env=password_env,
        events=_events(r, spec, key, defaults),
    )


def _webhook(
    r: Reader, spec: Mapping[str, Any], key: str, base: Path, defaults: frozenset[str]
) -> WebhookChannel:
    r.unknown(
        spec,
        {"name", "url", "format", "headers", "token_file", "token_env", "tls_ca", "events"},
        key,
    )
    if "url" not in spec:
        r.problem(f"{key}.url", "missing (e.g. 'https://ntfy.sh/my-topic')")
    url = r.get(spec, "url", key, str, "", _url)
    headers: list[tuple[str, str]] = []
    raw = spec.get("headers", {})
    if not isinstance(raw, dict):
        r.problem(f"{key}.headers", "must be a table: header name = value")
        raw = {}
    for h, v in raw.items():
        if not _HEADER_RE.match(h):
            r.problem(f"{key}.headers.{h}", "not a header name")
        elif not isinstance(v, str) or any(c in v for c in "\r\n\0"):
            r.problem(f"{key}.headers.{h}", "must be a string on one line")
        else:
            headers.append((h, v))
    token_file, token_env = _secret(r, spec, key, "token", base)
    tls_ca = r.get(spec, "tls_ca", key, str, "", nonempty) or None
    name = r.get(spec, "name", key, str, "", _channel_name) or _default_name("webhook", url)
    return WebhookChannel(
        name=name,
        url=url,
        format=r.get(spec, "format", key, str, "json", one_of(FORMATS)),
        headers=tuple(headers),
        token_file=token_file,
        token_env=token_env,
        tls_ca=str(path_from(base, tls_ca)) if tls_ca else None,
        events=_events(r, spec, key, defaults),
    )


def _url(value: str) -> str | None:
    """The URL is not repeated in the message: it may hold a secret (a token, a topic).
    A regex, not urllib.parse: this runs at every start of a run."""
    if any(c.isspace() or ord(c) < 32 for c in value):
        return "not a URL (it has blanks or control characters)"
    m = _URL_RE.match(value)
    if m is None:
        return "not an http:// or https:// URL"
    if "@" in value.split("://", 1)[1].split("/", 1)[0]:
        # urllib does not do basic auth from the URL, and its errors would print it
        return "a user or password in the URL is not supported: use token_file or headers"
    port = m.group("port")
    if port is not None and not 0 < int(port) < 65536:
        return "not a URL: bad port"
    return None
