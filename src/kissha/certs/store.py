"""The files of one name: reading what is there, writing key, certificate and chain.

Imports cryptography (heavy); only ``kissha certs`` and the outputs that show
certificates load this module.
"""

from __future__ import annotations

import contextlib
import datetime
import grp
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from kissha.certs.due import CertInfo
from kissha.certs.settings import CertsConfig
from kissha.files import fsync_dir, write_temp

# The issuer of kissha's placeholders: how a later run knows one when it sees one.
PLACEHOLDER_ORG = "kissha placeholder"
PLACEHOLDER_DAYS = 90
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class StoreError(Exception):
    """Certificate files that cannot be written as configured (one line, for the name's
    failure)."""


@dataclass(frozen=True)
class Files:
    """The paths of one name."""

    cert: Path
    key: Path
    fullchain: Path

    @classmethod
    def of(cls, cc: CertsConfig, name: str) -> Files:
        return cls(cc.path("cert", name), cc.path("key", name), cc.path("fullchain", name))


def new_key(key_type: str) -> PrivateKey:
    if key_type == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_key(path: Path) -> PrivateKey | None:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), None)
    except (OSError, ValueError, TypeError):
        return None
    return key if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) else None


def info_of(cert: x509.Certificate) -> CertInfo:
    issuer = cert.issuer.rfc4514_string()
    orgs = cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    placeholder = cert.issuer == cert.subject and any(a.value == PLACEHOLDER_ORG for a in orgs)
    return CertInfo(
        not_before=cert.not_valid_before_utc.timestamp(),
        not_after=cert.not_valid_after_utc.timestamp(),
        issuer=issuer,
        placeholder=placeholder,
        serial=format(cert.serial_number, "x"),
    )


def read(files: Files) -> tuple[CertInfo | None, x509.Certificate | None, str | None]:
    """What is on disk for a name: (info, leaf, problem). A certificate whose key is
    missing or does not match counts as none (a run cut between the two files)."""
    try:
        data = files.cert.read_bytes()
    except FileNotFoundError:
        return None, None, None
    except OSError as exc:
        return None, None, f"{files.cert}: {exc.strerror or exc}"
    try:
        cert = x509.load_pem_x509_certificates(data)[0]
    except ValueError as exc:
        return None, None, f"{files.cert}: not a PEM certificate: {exc}"
    key = load_key(files.key)
    if key is None:
        return None, None, f"{files.key}: missing or unreadable key"
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        return None, None, f"{files.key}: does not match {files.cert}"
    return info_of(cert), cert, None


def placeholder(name: str, key: PrivateKey, now: float) -> bytes:
    """A self-signed certificate for ``name`` alone, so TLS servers can start."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, PLACEHOLDER_ORG),
        ]
    )
    start = datetime.datetime.fromtimestamp(now, datetime.UTC) - datetime.timedelta(hours=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=PLACEHOLDER_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def leaf_of(fullchain: bytes) -> bytes:
    """The first certificate of a PEM chain."""
    end = b"-----END CERTIFICATE-----"
    i = fullchain.find(end)
    return fullchain[: i + len(end)] + b"\n" if i >= 0 else fullchain


def install(cc: CertsConfig, files: Files, key: bytes, fullchain: bytes) -> None:
    """Write key, certificate and chain: every temp file first, then the renames, so a
    failure leaves the old set in place. Keys 0600 (0640 with key_group); others 0644."""
    gid = -1
    if cc.key_group:
        try:
            gid = grp.getgrnam(cc.key_group).gr_gid
        except KeyError:
            raise StoreError(f"certs.key_group: no group {cc.key_group!r} on this host") from None
    cert = fullchain if cc.cert_has_chain else leaf_of(fullchain)
    plan = [(files.key, key, 0o640 if gid >= 0 else 0o600)]
    plan += [(files.cert, cert, 0o644), (files.fullchain, fullchain, 0o644)]
    temps: list[tuple[Path, Path]] = []
    try:
        for path, data, mode in plan:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = write_temp(path, data, like=None, mode=mode)
            temps.append((tmp, path))
            if path == files.key and gid >= 0:
                os.chown(tmp, -1, gid)
        for tmp, path in temps:
            os.replace(tmp, path)
        for directory in {p.parent for _, p in temps}:
            fsync_dir(directory)
    finally:
        for tmp, _ in temps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
