"""Certificate helpers of the probes: notAfter from DER, expiry warnings, TOFU memory."""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kissha.probes.base import cert_time, server_name
from kissha.probes.tofu import (
    DAY,
    ProbeContext,
    Untrusted,
    cert_warning,
    der_not_after,
    fingerprint,
)
from lab.certs import CertPair, issue, make_ca

NOW = 1_790_000_000.0  # 2026-09-21T14:13:20Z
FP_A = "sha256:" + "A" * 64
FP_B = "sha256:" + "B" * 64


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> list[CertPair]:
    d = tmp_path_factory.mktemp("certs")
    ca = make_ca(d)
    return [
        ca,  # self-signed, 30 days
        issue(ca, d, "soon", ["a.example.org"], days=3),
        issue(ca, d, "expired", ["b.example.org"], days=-1),
        # Past 2049 a certificate says GeneralizedTime instead of UTCTime (RFC 5280).
        issue(ca, d, "far", ["c.example.org"], ["::1"], days=12000),
    ]


def test_der_not_after_agrees_with_openssl(certs: list[CertPair]) -> None:
    for pair in certs:
        der = ssl.PEM_cert_to_DER_cert(pair.cert.read_text())
        # The stdlib's own tests decode certificate files this way; it needs a path.
        decoded = ssl._ssl._test_decode_cert(str(pair.cert))  # type: ignore[attr-defined]
        assert der_not_after(der) == ssl.cert_time_to_seconds(decoded["notAfter"]), pair
        assert cert_time(decoded["notAfter"]) == der_not_after(der), pair


@pytest.mark.parametrize("data", [b"", b"\x30\x03\x02\x01", b"\x30\x82\xff\xff" + b"\0" * 8])
def test_der_not_after_rejects_garbage(data: bytes) -> None:
    with pytest.raises(ValueError):
        der_not_after(data)


def test_fingerprint_is_sha256_of_the_der() -> None:
    assert fingerprint(b"") == (
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
    )


@pytest.mark.parametrize(
    ("left", "warn_days", "words"),
    [
        (30 * DAY, 14, None),
        (14 * DAY + 1, 14, None),
        (14 * DAY, 14, "certificate expires in 14 days (2026-10-05)"),
        (5 * DAY - 60, 14, "certificate expires in 5 days (2026-09-26)"),
        (DAY, 14, "certificate expires in 1 day (2026-09-22)"),
        (3 * 3600 + 5, 14, "certificate expires in 3 hours (2026-09-21)"),
        (60, 14, "certificate expires in 1 hour (2026-09-21)"),
        (5 * DAY, 0, None),
    ],
)
def test_cert_warning(left: float, warn_days: int, words: str | None) -> None:
    assert cert_warning(NOW + left, NOW, warn_days) == words
    assert cert_warning(None, NOW, warn_days) is None


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def test_trust_on_first_use_then_the_same() -> None:
    context = ProbeContext(Path("/var/lib/kissha"))
    note, warning = context.trust("fish", "gemini", FP_A, NOW + 90 * DAY, NOW, 14)
    assert (note, warning) == (f"TOFU: first use, learned sha256:{'A' * 16}…", None)
    assert context.tofu == {
        "fish": {
            "gemini": {
                "fingerprint": FP_A,
                "not_after": _iso(NOW + 90 * DAY),
                "first_seen": _iso(NOW),
            }
        }
    }
    assert context.learned
    context.learned = False
    assert context.trust("fish", "gemini", FP_A, NOW + 90 * DAY, NOW + DAY, 14) == ("", None)
    assert not context.learned
    # Another probe of the same node has a memory of its own.
    assert context.trust("fish", "gemini-alt", FP_B, None, NOW, 14)[0].startswith("TOFU: first")


def test_trust_refuses_a_change_while_the_old_certificate_is_good() -> None:
    context = ProbeContext(Path("/var/lib/kissha"))
    context.trust("fish", "gemini", FP_A, NOW + 90 * DAY, NOW, 14)
    with pytest.raises(Untrusted) as info:
        context.trust("fish", "gemini", FP_B, NOW + 90 * DAY, NOW + DAY, 14)
    assert str(info.value) == (
        f"TLS: certificate changed since first seen (TOFU): sha256:{'B' * 16}…; "
        "if expected, remove the entry from /var/lib/kissha/tofu.json"
    )
    assert context.tofu["fish"]["gemini"]["fingerprint"] == FP_A


def test_trust_accepts_a_renewal_near_the_old_certificates_end() -> None:
    context = ProbeContext()
    context.trust("fish", "gemini", FP_A, NOW + 10 * DAY, NOW, 14)
    context.learned = False
    note, warning = context.trust("fish", "gemini", FP_B, NOW + 90 * DAY, NOW, 14)
    assert note == ""
    assert warning == (
        f"certificate changed (the old one was to expire on 2026-10-01): now sha256:{'B' * 16}…"
    )
    assert context.tofu["fish"]["gemini"]["fingerprint"] == FP_B
    assert context.learned
    _, warning = context.trust("fish", "gemini", FP_A, NOW + 200 * DAY, NOW + 91 * DAY, 14)
    assert warning == f"certificate changed (the old one expired): now sha256:{'A' * 16}…"


def test_tofu_file_round_trip(tmp_path: Path) -> None:
    state = tmp_path / "state"
    context = ProbeContext.load(state)
    assert (context.tofu, context.warnings) == ({}, [])
    context.save()  # nothing learned: nothing written
    assert not (state / "tofu.json").exists()
    context.trust("fish", "gemini", FP_A, NOW + 90 * DAY, NOW, 14)
    context.save()
    data = json.loads((state / "tofu.json").read_text())
    assert data["version"] == 1
    assert ProbeContext.load(state).tofu == context.tofu


def test_corrupt_tofu_file_is_set_aside_by_real_runs_only(tmp_path: Path) -> None:
    path = tmp_path / "tofu.json"
    path.write_text('{"version": 1, "fingerprints": {"fish": []}}')
    dry = ProbeContext.load(tmp_path, readonly=True)
    assert dry.tofu == {}
    why = "unreadable (fingerprints.fish: not an object)"
    assert dry.warnings == [f"{path}: {why}; a real run sets it aside"]
    assert path.exists()
    real = ProbeContext.load(tmp_path)
    assert real.tofu == {}
    (aside,) = tmp_path.glob("tofu.json.bad-*")
    assert real.warnings == [
        f"{path}: {why}; set aside as {aside.name}: certificates are trusted anew on first use"
    ]
    assert not path.exists()


@given(st.integers(min_value=-(2**31), max_value=253402300799), st.booleans())
def test_cert_time_agrees_with_the_ssl_module(seconds: int, padded: bool) -> None:
    """What getpeercert() says (OpenSSL pads the day with a space; "01" is read too)."""
    t = time.gmtime(seconds)
    day = f"{t.tm_mday:2d}" if padded else f"{t.tm_mday:02d}"
    text = time.strftime(f"%b {day} %H:%M:%S %Y GMT", t)
    assert cert_time(text) == ssl.cert_time_to_seconds(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Jun  1 12:00:00 2027",
        "Jun  1 12:00:00 2027 UTC",
        "Foo  1 12:00:00 2027 GMT",
        "Jun 32 12:00:00 2027 GMT",
        "Jun  1 24:00:00 2027 GMT",
        "Jun  1 12:60:00 2027 GMT",
        "Jun 1 12:00 2027 GMT",
        "Jun  1 12:00:00 27 GMT",
        " Jun  1 12:00:00 2027 GMT",
    ],
)
def test_cert_time_rejects_what_the_ssl_module_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        ssl.cert_time_to_seconds(text)
    with pytest.raises(ValueError):
        cert_time(text)


@pytest.mark.parametrize("name", ["fishfinger.example.org", "a_b.example.org", "x.y"])
def test_server_name_is_what_the_idna_codec_makes_of_a_config_s_names(name: str) -> None:
    assert server_name(name) == name.encode("idna")
    assert server_name("bücher.example") == "bücher.example"  # ssl encodes it (idna)
