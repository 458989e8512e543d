"""Owner names as nsd reads them: RFC 1035 escapes decoded, ASCII case folded.

``\\119ww`` and ``www`` are one name to nsd, and ``\\115tandby`` is ``standby``, so the
keys kissha uses for names (roles, expected answers) are one canonical text per name:
labels decoded to bytes, ASCII letters lower-cased, then written back with an escape
only where a byte could not stand for itself (``\\.`` for a dot inside a label, ``\\\\``,
``\\"``, ``\\(``, ``\\)``, ``\\;``, and ``\\DDD`` for a blank, a control or a non-ASCII byte).
dnspython reads that text back to the same name (tests/unit/test_zonefile_syntax.py).
"""

from __future__ import annotations

# Bytes written as \X: they would end a word or a label, or start a comment or a string.
_BACKSLASHED = frozenset(b'.\\"();')


def _decode(name: str) -> tuple[list[bytes], bool] | None:
    """The labels of a name's text and whether it is absolute; None if it is malformed."""
    labels: list[bytes] = []
    label = bytearray()
    i, end = 0, len(name)
    while i < end:
        c = name[i]
        if c == "\\":
            digits = name[i + 1 : i + 4]
            if len(digits) == 3 and digits.isascii() and digits.isdigit():
                value = int(digits)
                if value > 255:
                    return None
                label.append(value)
                i += 4
            elif i + 1 < end:
                label += name[i + 1].encode("utf-8", "surrogateescape")
                i += 2
            else:
                return None  # a backslash ends the name
        elif c == ".":
            if not label and (labels or i + 1 < end):
                return None  # an empty label ("a..b", ".a")
            if label:
                labels.append(bytes(label))
            label = bytearray()
            i += 1
        else:
            label += c.encode("utf-8", "surrogateescape")
            i += 1
    absolute = not label
    if label:
        labels.append(bytes(label))
    if any(len(x) > 63 for x in labels):
        return None
    return labels, absolute


def _label_text(label: bytes) -> str:
    out = []
    for b in label.lower():  # bytes.lower folds ASCII letters only, as DNS does
        if b in _BACKSLASHED:
            out.append("\\" + chr(b))
        elif 0x21 <= b <= 0x7E:
            out.append(chr(b))
        else:
            out.append(f"\\{b:03d}")
    return "".join(out)


def absolute(name: str, origin: str) -> str:
    """The canonical absolute text of an owner name written in a zone file.

    ``origin`` is canonical and absolute. A name that nsd would refuse (a bad escape,
    an empty or long label) keeps its own text, lower-cased: nsd-checkzone reports it.
    """
    if name == "@":
        return origin
    if "\\" not in name and name.isascii():
        # The common case: no escapes, so the text is the name (the fast path of scan).
        if name.endswith("."):
            return name.lower()
        return f"{name}.{origin}".lower() if origin != "." else f"{name}.".lower()
    decoded = _decode(name)
    if decoded is None:
        return name.lower() if name.endswith(".") else f"{name}.{origin}".lower()
    labels, is_absolute = decoded
    text = ".".join(_label_text(x) for x in labels)
    if is_absolute:
        return text + "." if text else "."
    return f"{text}.{origin}" if origin != "." else f"{text}."


def first_label(name: str) -> str:
    """The first label of a canonical name (a dot inside a label is escaped there)."""
    if "\\" not in name:  # the common case, in C: the scan asks for every marked owner
        return name.partition(".")[0]
    i = 0
    while i < len(name):
        if name[i] == "\\":
            i += 2
            continue
        if name[i] == ".":
            return name[:i]
        i += 1
    return name
