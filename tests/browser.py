"""Headless Chromium for the page tests (screenshots, the DOM after parsing), and a tiny
PNG reader to check that a screenshot is not blank."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

TIMEOUT = 60.0
# From docs/LAB-NOTES: without the background-networking flags it floods the network.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium_path() -> str:
    """chromium, or a skip when it is missing and cannot be installed (not root): as root,
    scripts/setup installs it, so a missing one is a failure there (and in CI)."""
    path = shutil.which("chromium")
    if path is not None:
        return path
    if os.geteuid() != 0:
        pytest.skip("chromium is not installed and this is not root (scripts/setup installs it)")
    pytest.fail("chromium is not installed: run scripts/setup (as root it installs chromium)")


def run_chromium(*args: str) -> subprocess.CompletedProcess[str]:
    """Run chromium with a throwaway profile; killed (its whole process group) on timeout."""
    profile = Path(tempfile.mkdtemp(prefix="kissha-chromium-"))
    proc = subprocess.Popen(
        [chromium_path(), *FLAGS, f"--user-data-dir={profile}", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group: the renderer and GPU helpers die with it
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish within {TIMEOUT:g} s: {args}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def dump_dom(url: str) -> str:
    done = run_chromium("--dump-dom", url)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def screenshot(url: str, out: Path, width: int, height: int) -> Image:
    done = run_chromium(f"--screenshot={out}", f"--window-size={width},{height}", url)
    assert done.returncode == 0 and out.exists(), done.stderr[-2000:]
    return read_png(out.read_bytes())


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    channels: int
    pixels: bytes  # rows of width * channels bytes, unfiltered

    def colours(self, step: int = 7) -> set[bytes]:
        """The distinct colours of every step-th pixel."""
        c = self.channels
        return {self.pixels[i : i + c] for i in range(0, len(self.pixels), c * step)}

    def share_not(self, colour: bytes, step: int = 7) -> float:
        """The share of sampled pixels that differ from ``colour``."""
        c = self.channels
        samples = [self.pixels[i : i + c] for i in range(0, len(self.pixels), c * step)]
        return sum(s != colour for s in samples) / max(1, len(samples))

    def pixel(self, x: int, y: int) -> bytes:
        i = (y * self.width + x) * self.channels
        return self.pixels[i : i + self.channels]


def read_png(data: bytes) -> Image:
    """8-bit RGB or RGBA, not interlaced: what Chromium's screenshots are."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    out = bytearray()
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        row = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        _unfilter(kind, row, previous, channels)
        out += row
        previous = row
    return Image(width, height, channels, bytes(out))


def _unfilter(kind: int, row: bytearray, up: bytearray, bpp: int) -> None:
    if kind == 0:
        return
    for i in range(len(row)):
        a = row[i - bpp] if i >= bpp else 0
        b = up[i]
        if kind == 1:
            row[i] = (row[i] + a) & 0xFF
        elif kind == 2:
            row[i] = (row[i] + b) & 0xFF
        elif kind == 3:
            row[i] = (row[i] + (a + b) // 2) & 0xFF
        else:
            c = up[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            row[i] = (row[i] + pred) & 0xFF
