"""Running checks (I/O): concurrently up to a limit, dependencies first, each attempt
bounded by its timeout, retries apart by their interval, the whole run by a deadline.

Threads, as the probes: a run is a few dozen sockets and subprocesses, and a thread per
running check costs nothing next to a plugin's own start-up.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence

from kissha.monitor import logic
from kissha.monitor.model import CRITICAL, OK, STATES, CheckSpec, Outcome, Result

Attempt = Callable[[CheckSpec], Outcome]


def with_retries(
    spec: CheckSpec, attempt: Attempt, deadline: float, sleep: Callable[[float], None]
) -> Result:
    """Attempts until one is OK or ``retries`` more have failed, ``retry_interval``
    apart; no retry starts after the run's deadline. The last attempt counts."""
    started = time.monotonic()
    outcome = attempt(spec)
    attempts = 1
    while outcome.state != OK and attempts <= spec.retries:
        if time.monotonic() + spec.retry_interval + spec.timeout > deadline:
            break
        sleep(spec.retry_interval)
        outcome = attempt(spec)
        attempts += 1
    return Result(spec.id, outcome, time.monotonic() - started, attempts)


def run_checks(
    specs: Sequence[CheckSpec],
    due: Collection[str],
    prior: Mapping[str, str],
    attempt: Attempt,
    *,
    concurrency: int,
    deadline: float,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Result]:
    """Run the due checks; a check waits for its due dependencies and does not run
    (``dependent_on``) when one is not OK. ``prior``: the states of checks not due now
    (a dependency not run this time counts with its last state). ``deadline``: seconds
    for the run; checks not started by then are left out (``why="deadline"``), and
    running ones are waited for at most their timeout and retries, never longer."""
    ordered = logic.topological(specs)
    end = time.monotonic() + deadline
    state: dict[str, str | None] = dict(prior)
    results: dict[str, Result] = {}
    for s in ordered:
        if s.id not in due:
            results[s.id] = Result(s.id, None, why="not due")
    waiting = [s for s in ordered if s.id in due]
    running: dict[str, float] = {}  # id -> when it must be finished
    done: queue.Queue[Result] = queue.Queue()

    def work(spec: CheckSpec) -> None:
        try:
            done.put(with_retries(spec, attempt, end, sleep))
        except BaseException as exc:  # never lose a check: report it
            done.put(Result(spec.id, Outcome(CRITICAL, f"check error: {exc}"), 0.0, 1))

    def finish(r: Result) -> None:
        if r.id in results:  # a late result of a check already reported: the first counts
            return
        results[r.id] = r
        running.pop(r.id, None)
        if r.outcome is not None:
            state[r.id] = STATES[r.outcome.state]
        elif r.dependent_on is not None:
            state[r.id] = logic.DEPENDENT
        else:
            state[r.id] = None

    while waiting or running:
        progressed = True
        while progressed:
            progressed = False
            for spec in list(waiting):
                if len(running) >= concurrency:
                    break
                if any(d in running or any(w.id == d for w in waiting) for d in spec.depends):
                    continue  # a dependency has not finished yet
                waiting.remove(spec)
                progressed = True
                blocked = logic.blocking(spec, state)
                if blocked is not None:
                    finish(Result(spec.id, None, dependent_on=blocked, why="dependency"))
                    continue
                if time.monotonic() >= end:
                    finish(Result(spec.id, None, why="deadline"))
                    continue
                bound = (spec.timeout + 1.0) * (
                    spec.retries + 1
                ) + spec.retry_interval * spec.retries
                running[spec.id] = time.monotonic() + bound
                threading.Thread(target=work, args=(spec,), daemon=True).start()
        if not running:
            if waiting:  # only dependencies that will never finish: cannot happen
                for spec in waiting:
                    finish(Result(spec.id, None, why="deadline"))
                waiting = []
            break
        limit = min(running.values())
        try:
            finish(done.get(timeout=max(0.0, limit - time.monotonic())))
        except queue.Empty:
            # A check past its own hard bound (an attempt that ignored its timeout):
            # report it and leave its thread behind, as the probes do.
            for cid, must in list(running.items()):
                if must <= time.monotonic():
                    finish(
                        Result(
                            cid, Outcome(CRITICAL, "did not finish within its time limit"), 0.0, 1
                        )
                    )
    while True:  # results that raced the hard bound: the first one counts
        try:
            late = done.get_nowait()
        except queue.Empty:
            break
        results.setdefault(late.id, late)
    return results
