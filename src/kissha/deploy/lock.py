"""The node's kissha lock around the installation of zones.

``kissha failover`` holds ``state_dir/lock`` (flock(2), files.RunLock) for its whole run
and rewrites the marked records from the roles it decides. deploy renders the zones'
marks from the roles in the node's state.json; if a failover ran between that reading and
the installation, the zones would point the records back. deploy reads the roles again
just before installing; this closes the last gap: the install command runs while holding
the same lock, and first checks that state.json is still byte for byte what that second
reading saw. So a failover run either happened before (caught, nothing installed) or
waits for the install and then sees zones marked as it would mark them.

The lock is taken with perl's flock, which is flock(2) as kissha's own: perl is in the
base system of OpenBSD and Essential on Debian, and OpenBSD has no flock(1).
"""

from __future__ import annotations

import hashlib
import shlex
from pathlib import PurePosixPath

WAIT = 60.0  # seconds to wait for a running kissha (a failover run takes seconds)
HELD, CHANGED = 75, 76  # exit codes of the locked command: deploy says which
# flock LOCK_NB in a bounded loop, then the command as a child (perl's exec would close
# the lock's descriptor: close-on-exec), its exit status passed on.
PERL = (
    'use Fcntl ":flock"; my ($lock, $wait, @cmd) = @ARGV; '
    'open(my $f, ">>", $lock) or die "$lock: $!\\n"; my $t = 0; '
    "until (flock($f, LOCK_EX | LOCK_NB)) { "
    'if ($t >= $wait) { print "another kissha run holds $lock\\n"; exit ' + str(HELD) + " } "
    "select(undef, undef, undef, 0.2); $t += 0.2 } "
    "system(@cmd); exit($? == -1 ? 127 : $? & 127 ? 128 + ($? & 127) : $? >> 8);"
)


def digest(text: str | None) -> str:
    """What the locked command expects state.json's SHA-256 to be ("" : absent)."""
    if text is None:
        return ""
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def locked(command: str, lock: str, state: str, state_text: str | None, wait: float) -> str:
    """``command`` run under the node's kissha lock, only if state.json is unchanged.
    ``lock`` and ``state`` are the node's paths (root prefix applied)."""
    q = shlex.quote(state)
    check = (
        "if command -v sha256sum >/dev/null 2>&1; then h=sha256sum; else h=sha256; fi; "
        f"d=; if [ -f {q} ]; then d=$($h < {q} | cut -c1-64); fi; "
        f'[ "$d" = {shlex.quote(digest(state_text))} ] || '
        f"{{ echo {shlex.quote(state + ' changed during the deploy')}; exit {CHANGED}; }}"
    )
    directory = shlex.quote(str(PurePosixPath(lock).parent))
    inner = f"{check}\n{command}"
    return (
        f"mkdir -p {directory} && perl -e {shlex.quote(PERL)} {shlex.quote(lock)} "
        f"{wait:g} sh -c {shlex.quote(inner)}"
    )
