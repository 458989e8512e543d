"""A throwaway certificate authority built with the openssl CLI, for tests and the demo."""

from __future__ import annotations

import ipaddress
import re
import secrets
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

OPENSSL_TIMEOUT = 30.0


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    """Run openssl, raising with its stderr on failure (its messages are the only useful clue)."""
    done = subprocess.run(
        ["openssl", *args], capture_output=True, text=True, timeout=OPENSSL_TIMEOUT
    )
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")


def _stem(name: str) -> str:
    """File-name-safe stem: IPv6 literals contain ':' and names may contain spaces."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip(".")
    return stem or "cert"


def _new_key(path: Path) -> None:
    # P-256 keeps generation instant; the mode depends on umask, so tighten it explicitly.
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path)
    )
    path.chmod(0o600)


def _random_serial() -> str:
    # Positive 63-bit value, as RFC 5280 requires serials to be positive and <= 20 octets.
    return str(secrets.randbits(63) | 1)


def _subject(common_name: str) -> str:
    # -subj treats '/', '+' and '=' as syntax; escape them so any name survives as one CN.
    # CN is capped at 64 characters by RFC 5280; verifiers only look at the SAN anyway.
    return "/CN=" + re.sub(r"([/+=\\])", r"\\\1", common_name[:64])


def _write_config(path: Path, extensions: str) -> Path:
    # A private config keeps results independent of the system openssl.cnf, whose v3_ca
    # section differs between distributions and may be replaced via OPENSSL_CONF.
    path.write_text(
        "[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n[dn]\n"
        f"[ext]\n{extensions}"
    )
    return path


def make_ca(directory: Path, name: str = "kissha test CA") -> CertPair:
    """Create a self-signed CA (EC P-256, 30 days) in directory."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = _stem(name)
    pair = CertPair(cert=directory / f"{stem}.crt", key=directory / f"{stem}.key")
    conf = _write_config(
        directory / f"{stem}.cnf",
        "basicConstraints = critical,CA:TRUE\n"
        "keyUsage = critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid:always\n",
    )
    _new_key(pair.key)
    try:
        _openssl(
            "req",
            "-x509",
            "-new",
            "-config",
            str(conf),
            "-key",
            str(pair.key),
            "-out",
            str(pair.cert),
            "-days",
            "30",
            "-sha256",
            "-subj",
            _subject(name),
            "-set_serial",
            _random_serial(),
        )
    finally:
        conf.unlink()
    return pair


def _san(dns_names: Sequence[str], ip_addresses: Sequence[str]) -> str:
    entries = [f"DNS:{n.rstrip('.')}" for n in dns_names]
    # Normalise so that e.g. "[::1]" or a non-canonical v6 spelling still yields a valid IP entry.
    entries += [f"IP:{ipaddress.ip_address(a.strip('[]'))}" for a in ip_addresses]
    if not entries:
        raise ValueError("a leaf certificate needs at least one DNS name or IP address")
    return ",".join(entries)


def issue(
    ca: CertPair,
    directory: Path,
    name: str,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str] = (),
    days: int = 30,
) -> CertPair:
    """Issue a serverAuth leaf certificate for the given names, signed by ca."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = _stem(name)
    pair = CertPair(cert=directory / f"{stem}.crt", key=directory / f"{stem}.key")
    csr = directory / f"{stem}.csr"
    _new_key(pair.key)
    conf = _write_config(
        directory / f"{stem}.cnf",
        "basicConstraints = critical,CA:FALSE\n"
        "keyUsage = critical,digitalSignature\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid:always\n"
        f"subjectAltName = {_san(dns_names, ip_addresses)}\n",
    )
    try:
        _openssl(
            "req",
            "-new",
            "-config",
            str(conf),
            "-key",
            str(pair.key),
            "-out",
            str(csr),
            "-subj",
            _subject(name),
        )
        # `openssl x509 -req` drops extensions requested in the CSR, so they come from the
        # config's [ext] section instead.
        _openssl(
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca.cert),
            "-CAkey",
            str(ca.key),
            # Explicit random serials avoid a .srl file next to the CA.
            "-set_serial",
            _random_serial(),
            "-days",
            str(days),
            "-sha256",
            "-extfile",
            str(conf),
            "-extensions",
            "ext",
            "-out",
            str(pair.cert),
        )
    finally:
        csr.unlink(missing_ok=True)
        conf.unlink()
    return pair
