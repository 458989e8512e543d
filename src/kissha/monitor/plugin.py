"""Nagios plugins: run one (argv, timeout, process group killed) and read what it says.

The plugin API: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (anything else is UNKNOWN
too); the first line of output is ``text|perfdata``, further lines are long text, and a
later ``|`` starts more perfdata. ``parse`` is pure; ``run`` is the I/O edge.
"""

from __future__ import annotations

import contextlib
import re

from kissha.monitor.model import CRITICAL, OK, UNKNOWN, Outcome, Perf

MAX_OUTPUT = 16384  # a plugin's output kept, in bytes: the first line is what matters
MAX_TEXT = 300
_PERF_ITEM = re.compile(r"\s*('(?:[^']|'')+'|[^=\s']+)=(\S*)")
_VALUE = re.compile(r"^(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)([A-Za-z%/]*)$")


def parse(output: str, code: int) -> Outcome:
    """A plugin's exit code and output -> state, first line, perfdata, long text."""
    lines = output.replace("\r\n", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    first = lines[0] if lines else ""
    text, _, perf = first.partition("|")
    long_lines: list[str] = []
    more: list[str] = []
    for i, line in enumerate(lines[1:], start=1):
        head, bar, tail = line.partition("|")
        if bar:
            long_lines.append(head)
            more = [tail, *lines[i + 1 :]]
            break
        long_lines.append(line)
    text = " ".join(text.split())
    if 0 <= code <= 3:
        state = code
    else:
        state = UNKNOWN
        text = f"exit code {code}" + (f": {text}" if text else "")
    if not text:
        text = "(no output)"
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1] + "…"
    return Outcome(state, text, parse_perf(" ".join([perf, *more])), "\n".join(long_lines).strip())


def parse_perf(text: str) -> tuple[Perf, ...]:
    """``'label'=value[uom];[warn];[crit];[min];[max]`` items; malformed ones and values
    of ``U`` (unknown) are skipped: perfdata is a bonus, never a reason to fail."""
    out: list[Perf] = []
    pos = 0
    while pos < len(text):
        m = _PERF_ITEM.match(text, pos)
        if m is None:  # not label=value: skip this word
            gap = re.compile(r"\S*\s*").match(text, pos)
            if gap is None or gap.end() == pos:
                break
            pos = gap.end()
            continue
        pos = m.end()
        label, spec = m.group(1), m.group(2)
        if label.startswith("'"):
            label = label[1:-1].replace("''", "'")
        fields = spec.split(";")
        v = _VALUE.match(fields[0].replace(",", "."))
        if v is None:
            continue
        fields += [""] * (5 - len(fields))
        out.append(
            Perf(
                label=label,
                value=float(v.group(1)),
                uom=v.group(2),
                warn=fields[1],
                crit=fields[2],
                min=_number(fields[3]),
                max=_number(fields[4]),
            )
        )
    return tuple(out)


def _number(text: str) -> float | None:
    v = _VALUE.match(text.replace(",", "."))
    return float(v.group(1)) if v else None


def run(argv: tuple[str, ...], timeout: float) -> Outcome:
    """Run a plugin: its own process group (killed whole at the timeout: a plugin's
    children must not outlive it), no stdin, output capped. A timeout is CRITICAL, as
    Nagios does; a plugin that cannot be started is UNKNOWN."""
    import os
    import signal
    import subprocess

    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return Outcome(UNKNOWN, f"cannot run {argv[0]}: {exc.strerror or exc}")
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        # After SIGKILL the pipe closes at once unless a grandchild escaped the group.
        try:
            process.communicate(timeout=1.0)
        except subprocess.TimeoutExpired:
            process.kill()
        return Outcome(CRITICAL, f"timeout: {os.path.basename(argv[0])} ran over {timeout:g} s")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return parse(out[:MAX_OUTPUT].decode("utf-8", "replace"), process.returncode)


__all__ = ["OK", "parse", "parse_perf", "run"]
