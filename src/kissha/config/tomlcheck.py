"""Reading parsed TOML with checks: typed values, every problem with its key path, validators."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_KIND_NAMES: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "a table",
}

T = TypeVar("T")


class Reader:
    """Reads typed values out of nested tables, collecting every problem with its key path."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}" if key else message)

    def table(self, data: Mapping[str, Any], key: str, prefix: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.problem(join(prefix, key), f"must be a table, not {kind_of(value)}")
            return {}
        return value

    def get(
        self,
        data: Mapping[str, Any],
        key: str,
        prefix: str,
        kind: type[T] | tuple[type, ...],
        default: T,
        check: Callable[[Any], str | None] | None = None,
    ) -> T:
        if key not in data:
            return default
        value = data[key]
        # bool is an int in Python; a TOML boolean is never a number here.
        wrong = isinstance(value, bool) and kind is not bool
        if wrong or not isinstance(value, kind):
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            else:
                self.problem(join(prefix, key), f"must be {kind_name(kind)}, not {kind_of(value)}")
                return default
        if check is not None:
            message = check(value)
            if message:
                self.problem(join(prefix, key), message)
                return default
        return value  # type: ignore[no-any-return]

    def unknown(self, data: Mapping[str, Any], known: set[str], prefix: str) -> None:
        for key in data:
            if key not in known:
                hint = ""
                from difflib import get_close_matches  # only on the error path

                close = get_close_matches(key, sorted(known), n=1)
                if close:
                    hint = f" (did you mean '{close[0]}'?)"
                self.problem(join(prefix, key), f"unknown key{hint}")


def join(prefix: str, key: str) -> str:
    """A key's path: ``prefix.key``, or ``key`` at the top level."""
    return f"{prefix}.{key}" if prefix else key


def kind_of(value: object) -> str:
    """A value's TOML kind for messages: 'an integer', 'a table'..."""
    return _KIND_NAMES.get(type(value), type(value).__name__)


def kind_name(kind: type | tuple[type, ...]) -> str:
    """What a key must be, for messages: 'an integer', 'a string or an array'..."""
    if isinstance(kind, tuple):
        return " or ".join(kind_name(k) for k in kind)
    return _KIND_NAMES.get(kind, kind.__name__)


# Validators: a value in, None if it is fine, else what is wrong with it.


_DURATION_PART = re.compile(r"(\d+)([smhdw]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds_of(text: str) -> float | None:
    """'90m', '2h', '1d12h', '1w', or plain seconds ('45') to seconds; None if not so."""
    text = text.strip().lower()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return float(sum(int(n) * _UNIT_SECONDS[u] for n, u in parts))


def positive(value: float) -> str | None:
    if value != value or value in (float("inf"), float("-inf")):  # TOML has inf and nan
        return f"must be a finite number, not {value}"
    return None if value > 0 else f"must be > 0, not {value}"


def not_negative(value: float) -> str | None:
    if value != value or value in (float("inf"), float("-inf")):
        return f"must be a finite number, not {value}"
    return None if value >= 0 else f"must be >= 0, not {value}"


def at_least(minimum: int) -> Callable[[int], str | None]:
    return lambda v: None if v >= minimum else f"must be >= {minimum}, not {v}"


def port_number(value: int) -> str | None:
    return None if 0 < value < 65536 else f"not a port number: {value}"


def one_of(choices: tuple[str, ...]) -> Callable[[str], str | None]:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}, not {v!r}"


def nonempty(value: str) -> str | None:
    return None if value else "must not be empty"


def ip(version: int) -> Callable[[str], str | None]:
    """An IPv4 or IPv6 address that can go in a DNS record (no scope)."""

    def check(value: str) -> str | None:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return f"not an IPv{version} address: {value!r}"
        if address.version != version:
            return f"not an IPv{version} address: {value!r}"
        if getattr(address, "scope_id", None):
            return f"a scoped address cannot go in a DNS record: {value!r}"
        return None

    return check


def fully_qualified(value: str) -> str | None:
    labels = value.rstrip(".").split(".")
    if len(labels) < 2 or not all(_LABEL_RE.match(label) for label in labels):
        return f"not a fully qualified domain name: {value!r}"
    return None


def zone_name(value: str) -> str | None:
    labels = value.rstrip(".").split(".")
    if not value.rstrip(".") or not all(_LABEL_RE.match(label) for label in labels):
        return f"not a zone name: {value!r}"
    return None


def argv(value: list[Any]) -> str | None:
    if not value or not all(isinstance(v, str) and v for v in value):
        return "must be a non-empty array of strings (a command and its arguments)"
    return None


def path_from(base: Path, value: str) -> Path:
    """A path from the config: relative ones are taken from ``base``."""
    p = Path(value)
    return p if p.is_absolute() else base / p


def parse_listen(text: str) -> tuple[str, int] | None:
    """'127.0.0.1:9469' or '[::1]:9469' -> (host, port); None if it is neither."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        return None  # an IPv6 address needs brackets
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if fully_qualified(host + ".x") is not None:
            return None
    return host, int(port)
