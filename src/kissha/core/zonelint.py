"""Comments that almost match the mark: check-config warns, planning ignores them.

The mark is matched exactly as before (``; Enable failover``, any case, then optionally
``master`` or ``standby``), so zone files marked for the original script behave the
same. A comment that differs by spacing, a hyphen, a letter or two (``; Enable  failover``,
``; Enable fail-over``, ``; Enabel failover``) marks nothing, and a role written any
other way (``; Enable failover (standby)``) is not read: both change nothing, silently.
These helpers say so, for ``kissha check-config``.
"""

from __future__ import annotations

import re

_TARGET = "enablefailover"
_LETTERS_RE = re.compile(r"[^a-z]+")
_ROLE_WORDS_RE = re.compile(r"master|standby|primary|secondary|slave|backup", re.IGNORECASE)
_SHOWN = 60  # characters of a comment quoted in a warning


def _distance_within(pattern: str, text: str) -> int:
    """The fewest edits (a transposition counts one) that put ``pattern`` inside ``text``."""
    m, n = len(pattern), len(text)
    before: list[int] = []
    prev = [0] * (n + 1)  # a match may start anywhere in the text
    for i in range(1, m + 1):
        row = [i] + [0] * n
        for j in range(1, n + 1):
            cost = 0 if pattern[i - 1] == text[j - 1] else 1
            best = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and pattern[i - 1] == text[j - 2] and pattern[i - 2] == text[j - 1]:
                best = min(best, before[j - 2] + 1)
            row[j] = best
        before, prev = prev, row
    return min(prev)


def _shown(comment: str) -> str:
    text = comment.strip()
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def near_miss(comment: str, mark: re.Match[str] | None, owner: str | None) -> str | None:
    """Why a record's comment looks like the mark but does not do what it seems; or None.

    ``comment`` starts with ';'; ``mark`` is the mark found in it; ``owner`` the
    record's canonical owner name (None when unknown).
    """
    if mark is not None:
        if mark.group(1) is not None or not _ROLE_WORDS_RE.search(comment, mark.end()):
            return None
        from kissha.core.zonename import first_label

        role = "standby" if owner and first_label(owner) == "standby" else "master"
        return (
            f"{_shown(comment)}: the words after the mark are not read, so this record "
            f"follows its name ({role}); write '; Enable failover master' or "
            "'; Enable failover standby' to choose"
        )
    low = comment.lower()
    if "enab" not in low and "fail" not in low and "over" not in low:
        return None  # most comments: "; serial", "; mail server"
    letters = _LETTERS_RE.sub("", low[:200])
    if _TARGET not in letters and _distance_within(_TARGET, letters) > 1:
        return None
    return (
        f"{_shown(comment)} is not the mark '; Enable failover' (spacing, spelling or "
        "hyphens differ): kissha leaves this record alone"
    )
