"""The CA, through certbot's ``acme`` library: account, orders with HTTP-01, ARI windows.

Imported only by ``kissha certs`` when something is due (the library costs ~170 ms).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import email.utils
import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy import jwa, jwk

from kissha.certs.due import Window
from kissha.certs.settings import CertsConfig
from kissha.files import atomic_write, write_temp

log = logging.getLogger(__name__)
USER_AGENT = "kissha"
# Threads of one run share the account file: one registers or reads it at a time.
_ACCOUNT_LOCK = threading.Lock()


class CaError(Exception):
    """The CA refused or could not be reached; ``retry_after`` in seconds when it said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(value: str | None, now: float) -> float | None:
    """Retry-After: seconds, or an HTTP date (RFC 9110)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    with contextlib.suppress(TypeError, ValueError):
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
    return None


class _Net(client.ClientNetwork):
    """ClientNetwork that keeps the CA's Retry-After on the error it raises."""

    @classmethod
    def _check_response(
        cls, response: requests.Response, content_type: str | None = None
    ) -> requests.Response:
        try:
            return super()._check_response(response, content_type=content_type)
        except Exception as exc:
            exc.retry_after = _retry_after(  # type: ignore[attr-defined]
                response.headers.get("Retry-After"), time.time()
            )
            raise


def _describe(exc: BaseException) -> CaError:
    if isinstance(exc, CaError):
        return exc
    retry = getattr(exc, "retry_after", None)
    if isinstance(exc, messages.Error):
        text = exc.detail or exc.description or str(exc)
        return CaError(f"CA: {exc.typ.rsplit(':', 1)[-1]}: {text}", retry)
    if isinstance(exc, requests.RequestException):
        return CaError(f"CA unreachable: {type(exc).__name__}: {exc}", retry)
    if isinstance(exc, errors.TimeoutError):
        return CaError("CA: the order did not complete in time", retry)
    if isinstance(exc, errors.ValidationError):
        details = "; ".join(
            f"{a.body.identifier.value}: {ch.error.detail if ch.error else a.body.status}"
            for a in exc.failed_authzrs
            for ch in a.body.challenges
            if ch.error is not None
        )
        return CaError(f"CA: validation failed: {details or exc}", retry)
    return CaError(f"CA: {type(exc).__name__}: {exc}", retry)


def account_dir(state_dir: Path, directory: str) -> Path:
    """One account per CA directory, kept under state_dir/acme/."""
    digest = hashlib.sha256(directory.encode()).hexdigest()[:16]
    return state_dir / "acme" / digest


def account_key(path: Path) -> jwk.JWKEC:
    """The account key: created once (0600), then always the same."""
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = write_temp(path, pem, like=None, mode=0o600)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # never replaces a key another run made meanwhile
        tmp.unlink()
        pem = path.read_bytes()
    loaded = serialization.load_pem_private_key(pem, None)
    return jwk.JWKEC(key=loaded)


class Ca:
    """One connection to the CA with this node's account."""

    def __init__(self, cc: CertsConfig, state_dir: Path) -> None:
        self.cc = cc
        folder = account_dir(state_dir, cc.directory)
        try:
            self.key = account_key(folder / "account.key")
        except OSError as exc:
            raise CaError(f"account key {folder / 'account.key'}: {exc.strerror or exc}") from exc
        except Exception as exc:  # not PEM, encrypted, not an EC key: each is a name's failure
            raise CaError(
                f"account key {folder / 'account.key'}: unusable ({_one_line(exc)}); move it "
                "away and a new account is registered"
            ) from exc
        verify: Any = str(cc.ca_file) if cc.ca_file else True
        self.net = _Net(self.key, alg=jwa.ES256, verify_ssl=verify, user_agent=USER_AGENT)
        try:
            self.directory = client.ClientV2.get_directory(cc.directory, self.net)
            self.acme = client.ClientV2(self.directory, self.net)
            self.account_file = folder / "account.json"
            self._account(self.account_file)
        except Exception as exc:
            raise _describe(exc) from exc

    def _account(self, path: Path, reuse: bool = True) -> None:
        with _ACCOUNT_LOCK:
            self._account_locked(path, reuse)

    def _account_locked(self, path: Path, reuse: bool) -> None:
        with contextlib.suppress(OSError, ValueError, KeyError):
            if not reuse:
                raise KeyError("register again")
            saved = json.loads(path.read_text())
            if saved["directory"] == self.cc.directory:
                self.net.account = messages.RegistrationResource(
                    body=messages.Registration(), uri=saved["uri"]
                )
                return
        eab = None
        if self.cc.eab_kid and self.cc.eab_hmac_key_file:
            hmac_key = self.cc.eab_hmac_key_file.read_text().strip()
            eab = messages.ExternalAccountBinding.from_data(
                account_public_key=self.key.public_key(),
                kid=self.cc.eab_kid,
                hmac_key=hmac_key,
                directory=self.directory,
            )
        registration = messages.NewRegistration.from_data(
            email=self.cc.contact or None,
            terms_of_service_agreed=True,
            external_account_binding=eab,
        )
        self.net.account = None  # a new account is signed with the key itself (jwk), no kid
        try:
            regr = self.acme.new_account(registration)
        except errors.ConflictError as exc:  # the key has an account already
            regr = messages.RegistrationResource(body=messages.Registration(), uri=exc.location)
            self.net.account = regr
        atomic_write(
            path,
            json.dumps({"directory": self.cc.directory, "uri": regr.uri}).encode(),
            mode=0o600,
        )

    def obtain(self, name: str, key_pem: bytes, challenge_dir: Path) -> bytes:
        """One certificate for ``name`` by HTTP-01; returns the full chain (PEM)."""
        try:
            return self._obtain(name, key_pem, challenge_dir)
        except CaError as exc:
            if "accountDoesNotExist" not in str(exc):
                raise
        # The CA forgot the account (pebble at every start; a CA may deactivate one):
        # register the same key again, once.
        try:
            self._account(self.account_file, reuse=False)
        except Exception as exc:
            raise _describe(exc) from exc
        return self._obtain(name, key_pem, challenge_dir)

    def _obtain(self, name: str, key_pem: bytes, challenge_dir: Path) -> bytes:
        written: list[Path] = []
        try:
            csr = crypto_util.make_csr(key_pem, [name])
            order = self.acme.new_order(csr)
            for authz in order.authorizations:
                if authz.body.status == messages.STATUS_VALID:
                    continue  # reused (the CA remembers a recent validation)
                challb = next(
                    (c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01)),
                    None,
                )
                if challb is None:
                    raise CaError(f"CA: no http-01 challenge offered for {name}")
                response, validation = challb.chall.response_and_validation(self.key)
                token = challb.chall.encode("token")
                path = challenge_dir / token
                challenge_dir.mkdir(parents=True, exist_ok=True)
                atomic_write(path, validation.encode(), mode=0o644)
                written.append(path)
                self.acme.answer_challenge(challb, response)
            deadline = datetime.datetime.now() + datetime.timedelta(seconds=self.cc.timeout)
            done = self.acme.poll_and_finalize(order, deadline)
            return str(done.fullchain_pem).encode()
        except Exception as exc:
            raise _describe(exc) from exc
        finally:
            for path in written:
                with contextlib.suppress(OSError):
                    path.unlink()

    def renewal_window(self, cert: x509.Certificate) -> tuple[Window | None, float | None]:
        """The CA's ARI window for ``cert`` (RFC 9773) and its Retry-After; (None, None)
        when the CA offers no renewal info or the request fails (the lifetime rule
        then applies)."""
        base = self.directory.to_partial_json().get("renewalInfo")
        if not base:
            return None, None
        url = str(base)
        try:
            url = f"{base.rstrip('/')}/{ari_cert_id(cert)}"  # no AKI: ExtensionNotFound
            response = self.net.get(url, content_type="application/json")
            window = response.json()["suggestedWindow"]
            start = _rfc3339(window["start"])
            end = _rfc3339(window["end"])
        except Exception as exc:
            log.info("ARI: %s: %s", url, exc)
            return None, None
        return Window(start, end), _retry_after(response.headers.get("Retry-After"), time.time())


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 120 else text[:119] + "…"


def ari_cert_id(cert: x509.Certificate) -> str:
    """RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(serial, DER bytes)."""
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    serial = cert.serial_number
    raw = serial.to_bytes((serial.bit_length() + 8) // 8, "big")  # DER: a leading 0 if high bit

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return f"{b64(aki.key_identifier or b'')}.{b64(raw)}"


def _rfc3339(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
