"""Benchmark kissha failover against a shell rendition of the original, side by side.

Run with ``bench/run`` (it enters a private network namespace). Prints figures as a
Markdown table; nothing here asserts on them. Three parts:

1. a no-change run over 6 zones (the every-minute cron case): CPU (user+sys of the
   process and its children), wall time and peak RSS, median over N runs each;
2. a master switch over 1,000 and 5,000 zones x 50 marked records (``--zones``), end
   to end: wall time of the one run that switches (kissha cold = nothing validated
   before, warm = the zones' skeletons were validated by an earlier run), against the
   floor measured in the same run on a twin site (the same zones, its own nsd): the
   median of every floor measured, and the floor measured right after each switch
   (this machine's speed drifts within minutes), and against the rendition's (at the
   first size only: ~90 s at 1,000 zones, it would take minutes more at 5,000); at
   each size also ``kissha status``, which asks a second nsd on the nodes' own
   addresses (serving copies of the zone files) and should not grow with the zones;
3. a summary: each size's floor, cold, cron-case and warm switch, no-change run and
   status, as ratios of that floor.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from lab.nsd import NsdInstance
from lab.site import ZONE_TEMPLATE, LoopbackSite

HERE = Path(__file__).resolve().parent
ORIGINAL = HERE / "original.sh"
WEEK_NO_SWAP = "1"  # the original swaps in even weeks: week 1 keeps fishfinger master


def measure(
    argv: Sequence[str], env: dict[str, str] | None = None, ok: tuple[int, ...] = (0, 1)
) -> tuple[float, float, int, int]:
    """Run a command; return (cpu seconds, wall seconds, peak RSS KiB, exit status).

    Through GNU time: Linux carries a process's RSS high-water mark across exec, so a
    child forked from this (large) Python process would report our RSS, not its own.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        start = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%U %S %M", "-o", out.name, *argv],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
        wall = time.perf_counter() - start
        fields = out.read().split()[-3:]
    if proc.returncode not in ok:
        raise SystemExit(f"bench: {argv[0]} exited {proc.returncode}: {proc.stderr[-500:]!r}")
    user, system, rss = float(fields[0]), float(fields[1]), int(fields[2])
    return user + system, wall, rss, proc.returncode


# compare_runs' columns; "wall vs first" is against the first case.
RUN_COLUMNS = ("case", "runs", "CPU (median)", "wall (median)", "wall vs first", "peak RSS")


def compare_runs(argvs: dict[str, list[str]], runs: int) -> list[str]:
    """Each case's no-change run, ``runs`` times interleaved (after one warm-up each):
    Markdown rows of CPU, wall, wall against the first case, and peak RSS."""
    for argv in argvs.values():
        measure(argv)  # warm-up: page cache, pyc files, a first write of any file
    samples: dict[str, list[tuple[float, float, int, int]]] = {k: [] for k in argvs}
    for _ in range(runs):
        for name, argv in argvs.items():
            samples[name].append(measure(argv, ok=(0,)))
    rows = []
    base = statistics.median(x[1] for x in next(iter(samples.values())))
    for name, s in samples.items():
        cpu = statistics.median(x[0] for x in s)
        wall = statistics.median(x[1] for x in s)
        rss = max(x[2] for x in s) / 1024
        rows.append(
            f"| {name} | {runs} | {cpu:.3f} s | {wall:.3f} s | {wall - base:+.3f} s "
            f"| {rss:.2f} MiB |"
        )
    return rows


def config_variant(site: LoopbackSite, name: str, extra: str | None) -> Path:
    """The site's config with a state_dir of its own (``state-NAME``) and ``extra`` TOML
    appended (None: nothing), written to ``kissha-NAME.toml``."""
    state = site.root / f"state-{name}"
    text = site.config_text().replace(str(site.root / "state"), str(state))
    path = site.root / f"kissha-{name}.toml"
    path.write_text(text + (extra or ""))
    return path


def variant_argvs(site: LoopbackSite, cases: dict[str, str | None]) -> dict[str, list[str]]:
    """A no-change ``kissha failover`` per case, each with config_variant(case's TOML)."""
    argvs = {}
    for i, (name, extra) in enumerate(cases.items()):
        argv = kissha_argv(site)
        argv[argv.index("-c") + 1] = str(config_variant(site, str(i), extra))
        argvs[name] = argv
    return argvs


def print_heading(title: str) -> None:
    print(
        f"# {title} ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]})\n"
    )


def print_table(title: str, columns: Sequence[str], rows: Iterable[str]) -> None:
    """A Markdown section; rows are printed as they come (a long bench shows progress)."""
    print(f"## {title}\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print(row, flush=True)
    print()


def original_env(site: LoopbackSite) -> dict[str, str]:
    assert site.nsd is not None and site.ca is not None
    resolve = []
    for n in site.nodes:
        # one entry per host:port with both addresses: a second entry would replace it
        resolve.append(f"--resolve {n.fqdn}:{site.https_port}:{n.ipv4},[{n.ipv6}]")
    return {
        **os.environ,
        "ZONES_DIR": str(site.root / "zones"),
        "DEFAULT_MASTER": site.nodes[0].fqdn,
        "DEFAULT_STANDBY": site.nodes[1].fqdn,
        "ORIG_WEEK": WEEK_NO_SWAP,
        "HTTPS_PORT": str(site.https_port),
        "CURL_RESOLVE_ARGS": " ".join(resolve),
        "CURL_CACERT": str(site.ca.cert),
        "DIG_SERVER": "127.0.0.1",
        "DIG_PORT": str(site.dns_port),
        "NSD_CONTROL": " ".join(site.nsd.control_argv),
    }


def kissha_command(site: LoopbackSite, *args: str) -> list[str]:
    """``python -m kissha -c SITE_CONFIG ARGS...``."""
    return [sys.executable, "-m", "kissha", "-c", str(site.config_path), *args]


def kissha_argv(site: LoopbackSite, *args: str) -> list[str]:
    # An even week: rotation keeps fishfinger master, like WEEK_NO_SWAP for the original.
    return kissha_command(site, "failover", "--now", "2026-11-23T12:00:00Z", *args)


def bench_no_change(root: Path, runs: int) -> list[str]:
    rows = []
    with LoopbackSite(root / "small") as site:
        env = original_env(site)
        cases = {
            "original (shell rendition)": (["bash", str(ORIGINAL)], env),
            "kissha failover": (kissha_argv(site), None),
        }
        samples: dict[str, list[tuple[float, float, int, int]]] = {k: [] for k in cases}
        for argv, e in cases.values():  # warm-up: page cache, pyc files
            measure(argv, e)
        for _ in range(runs):
            for name, (argv, e) in cases.items():
                sample = measure(argv, e)
                if sample[3] != 0:
                    raise SystemExit(f"bench: {name} changed something in a no-change run")
                samples[name].append(sample)
        for name, s in samples.items():
            cpu = statistics.median(x[0] for x in s)
            wall = statistics.median(x[1] for x in s)
            rss = max(x[2] for x in s) / 1024
            rows.append(f"| {name} | 6 | {runs} | {cpu:.3f} s | {wall:.3f} s | {rss:.2f} MiB |")
    return rows


BIG_TEMPLATE_HEAD = ZONE_TEMPLATE.split("www      300 IN A")[0]


# The nodes' own names, relative: in the zone example.org they are the names the
# original's rendition looks up (fishfinger.example.org ...). Without them its lookups
# came back empty, it wrote "IN A  ; Enable failover" and rolled every zone back.
NODE_NAMES = ZONE_TEMPLATE[ZONE_TEMPLATE.index("; the nodes' own names") :]


def big_template(records: int) -> str:
    lines = [BIG_TEMPLATE_HEAD.rstrip("\n"), NODE_NAMES.rstrip("\n")]
    # apex A + AAAA are in the head; add (records - 2) more, alternating A and AAAA
    for i in range(records - 2):
        if i % 2 == 0:
            lines.append(f"www{i}     300 IN A {{a4}} ; Enable failover")
        else:
            lines.append(f"www{i}     300 IN AAAA {{a6}} ; Enable failover")
    return "\n".join(lines) + "\n"


def status_argv(
    stack: contextlib.ExitStack, site: LoopbackSite, names: Sequence[str], directory: Path
) -> list[str]:
    """``kissha status`` asks each node's nameserver at the node's own addresses: a
    second nsd listens there (on its own port) and serves copies of the site's zone
    files. Returns the command line."""
    directory.mkdir()
    for n in names:
        shutil.copyfile(site.zone_path(n), directory / f"{n}.zone")
    port = site.dns_port + 2  # the twin floor site has dns_port + 1
    listen = [(a, port) for node in site.nodes for a in (node.ipv4, node.ipv6)]
    ns = NsdInstance(directory, listen, {n: f"{n}.zone" for n in names})
    ns.start()
    stack.callback(ns.stop)
    return kissha_command(site, "status", "--port", str(port))


def switch(site: LoopbackSite, to_standby: bool) -> None:
    """Kill or restore fishfinger's web server (thresholds are 1 in the big bench)."""
    if to_standby:
        site.stop_web("fishfinger")
    else:
        site.start_web("fishfinger")


def floor(site: LoopbackSite, names: Sequence[str], node: int, serial: int) -> float:
    """The floor: write every zone's file (pointing at ``site.nodes[node]``) with fsync,
    one ``nsd-control reload``, until the first correct answer for the last zone.
    The texts are made before the clock starts; the answer is polled every 1 ms."""
    a, b = site.nodes[node], site.nodes[1 - node]
    texts = {
        n: site.template.format(
            zone=n, serial=serial, a4=a.ipv4, a6=a.ipv6, b4=b.ipv4, b6=b.ipv6
        ).encode()
        for n in names
    }
    assert site.nsd is not None
    last = names[-1]
    start = time.perf_counter()
    for n, data in texts.items():
        path = site.zone_path(n)
        tmp = path.with_name(path.name + ".floor")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    dfd = os.open(site.zone_path(last).parent, os.O_RDONLY)
    os.fsync(dfd)
    os.close(dfd)
    subprocess.run([*site.nsd.control_argv, "reload"], check=True, capture_output=True)
    deadline = start + 120

    def served() -> bool:
        import dns.exception

        try:
            return site.answers(f"www0.{last}", "A") == {a.ipv4}
        except dns.exception.Timeout:  # nsd loading thousands of zones may not answer
            return False

    while not served():
        if time.perf_counter() > deadline:
            raise SystemExit("bench: the floor's zones were not served within 120 s")
        time.sleep(0.001)
    return time.perf_counter() - start


# bench_switch's key figures for the summary, by size: (case, wall, peak RSS KiB, the
# median of wall / the floor measured right after it, for switches)
Summary = dict[int, list[tuple[str, float, int, float | None]]]


def bench_switch(
    root: Path, zones: int, records: int, original: bool, summary: Summary
) -> list[str]:
    # The last zone is example.org, which serves the nodes' own names.
    names = [f"z{i:04d}.example" for i in range(zones - 1)] + ["example.org"]
    samples: list[tuple[str, tuple[float, float, int, int]]] = []
    paired: dict[str, float] = {}  # a switch's case -> median of wall / the floor right after
    health = {"failures_before_demotion": 1, "successes_before_promotion": 1}
    template = big_template(records)
    with contextlib.ExitStack() as stack:
        site = stack.enter_context(
            LoopbackSite(root / f"big{zones}", zones=names, template=template, health=health)
        )
        # The floor on a twin site (the same zones, its own nsd and ports): so it can be
        # measured right after each switch without touching the files whose layouts
        # kissha keeps. The machine's speed drifts (docs/benchmarks.md, issue 13's fifth
        # round): a switch over the floor measured right after it is the steadier ratio.
        twin = stack.enter_context(
            LoopbackSite(
                root / f"floor{zones}",
                zones=names,
                template=template,
                health=health,
                dns_port=site.dns_port + 1,
                https_port=site.https_port + 1,
            )
        )
        turns = itertools.count()
        floors: list[float] = []

        def floor_now() -> float:
            # back and forth: a poll for an address already served proves nothing
            i = next(turns)
            floors.append(floor(twin, names, (i + 1) % 2, 2_100_000_000 + i))
            return floors[-1]

        marked = sum(
            1 for line in site.zone_text(names[0]).splitlines() if "Enable failover" in line
        )
        label = f"{zones} x {marked}"

        def row(name: str, sample: tuple[float, float, int, int], *ratios: float) -> None:
            samples.append((name, sample))
            if ratios:
                paired[name] = statistics.median(ratios)
            print(f"  {name}: {sample[1]:.2f} s", file=sys.stderr, flush=True)

        def switched(expect: int = 1) -> tuple[tuple[float, float, int, int], float]:
            """A switch, and its wall time over the floor measured right after it."""
            sample = run(expect)
            return sample, sample[1] / floor_now()

        def run(expect: int) -> tuple[float, float, int, int]:
            sample = measure(kissha_argv(site))
            assert sample[3] == expect, f"kissha exited {sample[3]}, expected {expect}"
            return sample

        checked = site.root / "state" / "checked.json"
        scans = site.root / "state" / "scans.json"
        # 0. the floor, before kissha's cases (and after them, below, and right after
        # each switch): on a machine shared with other work it moves, so the "x the
        # floor" column takes the median of them all.
        for _ in range(4):
            floor_now()
        # 1. the first run ever is a switch: every zone goes through nsd-checkzone
        switch(site, to_standby=True)
        row("kissha switch, cold (first run ever: every zone checked)", *switched())
        switch(site, to_standby=False)
        run(1)
        # 2. the cron case: no-change runs came first and validated the files on disk
        checked.unlink()
        scans.unlink(missing_ok=True)
        scans.with_name("layouts.json").unlink(missing_ok=True)
        row("kissha no-change run, first (validates every zone once)", run(0))
        nochange = sorted((run(0) for _ in range(5)), key=lambda x: x[1])
        row("kissha no-change run (median of 5)", nochange[2])
        status = status_argv(stack, site, names, root / f"ns{zones}")
        statuses = sorted((measure(status) for _ in range(5)), key=lambda x: x[1])
        row(
            "kissha status (median of 5; the first zones' names, at most 40 a nameserver)",
            statuses[2],
        )
        switch(site, to_standby=True)
        row("kissha switch after no-change runs (the cron case)", *switched())
        # 3. back and forth
        warm, ratios = [], []
        for to_standby in (False, True, False, True):
            switch(site, to_standby)
            sample, ratio = switched()
            warm.append(sample)
            ratios.append(ratio)
        row("kissha switch, warm (median of 4)", sorted(warm, key=lambda x: x[1])[2], *ratios)
        # 4. the floor again
        for _ in range(3):
            floor_now()
        floor_wall = statistics.median(floors)
        spread = f"{min(floors):.2f}-{max(floors):.2f} s"
        samples.append(
            (
                "the floor: write the files (fsync), one reload, first answer "
                f"(median of {len(floors)}: 4 before the cases above, one right after each "
                f"switch, 3 after them; {spread})",
                (0.0, floor_wall, 0, 0),
            )
        )
        if original:
            # The original needs the zones in the state it expects: fishfinger master.
            switch(site, to_standby=False)
            assert measure(kissha_argv(site))[3] in (0, 1)
            switch(site, to_standby=True)
            env = original_env(site)
            env["ORIG_FAMILIES"] = "4 6"
            # It must switch every zone and roll nothing back (exit 1), or the
            # comparison is unfair: the run fails otherwise.
            sample = measure(["bash", str(ORIGINAL)], env, ok=(1,))
            new_master = site.nodes[1]
            for n in names:  # every marked record now names the new master
                marked_lines = [
                    line
                    for line in site.zone_path(n).read_text().splitlines()
                    if "; Enable failover" in line
                ]
                assert all(
                    new_master.ipv4 in line or new_master.ipv6 in line for line in marked_lines
                ), f"the rendition did not switch {n}"
            samples.append(("original (shell rendition)", sample))
    rendition = next((s[1] for n, s in samples if n.startswith("original")), None)
    keys = {
        "kissha switch, cold": "cold",
        "kissha switch after": "cron case",
        "kissha switch, warm": "warm",
        "kissha no-change run (median": "no change",
        "kissha status": "status",
    }
    summary[zones] = [("floor", floor_wall, 0, None)] + [
        (short, s[1], s[2], paired.get(n))
        for n, s in samples
        for k, short in keys.items()
        if n.startswith(k)
    ]
    rows = []
    for name, (cpu, wall, rss, _) in samples:
        vs_floor = f"{wall / floor_wall:.2f}x"
        right_after = f"{paired[name]:.2f}x" if name in paired else "-"
        # the rendition's figure is a switch: only a switch (or the floor) compares
        switch_like = "switch" in name or name.startswith(("the floor", "original"))
        vs_orig = f"{rendition / wall:.1f}x faster" if rendition and switch_like else "-"
        cpu_text = f"{cpu:.2f} s" if rss else "-"
        rss_text = f"{rss / 1024:.1f} MiB" if rss else "-"
        rows.append(
            f"| {name} | {label} | {wall:.2f} s | {vs_floor} | {right_after} | {vs_orig} "
            f"| {cpu_text} | {rss_text} |"
        )
    return rows


def summary_table(summary: Summary) -> tuple[list[str], list[str]]:
    """Each case's wall (x the median floor; x the floor measured right after it)."""
    cases = ["floor", "cold", "cron case", "warm", "no change", "status"]
    columns = ["zones", *cases, "no change: peak RSS"]
    rows = []
    for zones, figures in summary.items():
        got = {case: (wall, rss, pair) for case, wall, rss, pair in figures}
        floor_wall = got["floor"][0]
        cells = [f"{got['floor'][0]:.2f} s"]
        for case in cases[1:]:
            wall, _, pair = got[case]
            after = f"; {pair:.2f}x right after" if pair is not None else ""
            cells.append(f"{wall:.2f} s ({wall / floor_wall:.2f}x{after})")
        cells.append(f"{got['no change'][1] / 1024:.1f} MiB")
        rows.append(f"| {zones} | " + " | ".join(cells) + " |")
    return columns, rows


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--runs", type=int, default=20, help="no-change runs per tool")
    p.add_argument(
        "--zones",
        type=int,
        nargs="+",
        default=[1000, 5000],
        help="zone counts of the big switch (default: 1000 5000)",
    )
    p.add_argument("--records", type=int, default=50)
    p.add_argument(
        "--skip-original-switch",
        action="store_true",
        help="skip the slow (~1 min) rendition run of the big switch",
    )
    args = p.parse_args()
    # Every run measured must find kissha's byte code, as an installed kissha does: with
    # PYTHONDONTWRITEBYTECODE set (or after an edit), each run would compile it again.
    import compileall

    import kissha

    compileall.compile_dir(Path(kissha.__file__).parent, quiet=1)
    root = Path(tempfile.mkdtemp(prefix="kissha-bench-", dir="/tmp"))
    try:
        print_heading("kissha benchmarks")
        print_table(
            "No-change run (cron, every minute)",
            ("tool", "zones", "runs", "CPU (median)", "wall (median)", "peak RSS (max)"),
            bench_no_change(root, args.runs),
        )
        summary: Summary = {}
        for i, zones in enumerate(args.zones):
            original = i == 0 and not args.skip_original_switch
            print_table(
                f"Master switch, end to end, {zones} zones",
                (
                    "case",
                    "zones x marked",
                    "wall",
                    "vs the floor (median)",
                    "vs the floor right after (median)",
                    "vs the rendition",
                    "CPU",
                    "peak RSS",
                ),
                bench_switch(root, zones, args.records, original, summary),
            )
        print_table(
            "Summary: wall, and wall / the floor of the same zones (the median floor; the "
            "floor measured right after each switch)",
            *summary_table(summary),
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
