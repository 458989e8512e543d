"""kissha certs: what used to escape as exit 70 is one name's failure (exit 3) in one
line naming the file or the setting, and a damaged certs.json keeps the back-off.

No CA: the account key fails before any connection, the CA is replaced by a fake where
a test needs one to answer (nothing else here could talk to a real one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from kissha import config as configmod
from kissha.certs import acmeclient, store
from kissha.certs import run as certsrun
from kissha.certs.acmeclient import Ca, CaError, account_dir
from kissha.certs.settings import CertsConfig
from tests.unit.test_certs_cli import _certs, _config

NOW = 1_795_435_200.0  # 2026-11-23T12:00:00Z, as _certs passes --now
DIRECTORY = "https://127.0.0.1:9/dir"  # as test_certs_cli: nothing listens


def test_a_damaged_account_key_is_a_ca_error_naming_it(tmp_path: Path) -> None:
    key = account_dir(tmp_path, DIRECTORY) / "account.key"
    key.parent.mkdir(parents=True)
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
    with pytest.raises(CaError) as caught:
        Ca(CertsConfig(directory=DIRECTORY), tmp_path)
    assert str(caught.value).startswith(f"account key {key}: unusable (")
    assert "\n" not in str(caught.value)


def test_an_unreadable_account_key_is_a_ca_error_naming_it(tmp_path: Path) -> None:
    key = account_dir(tmp_path, DIRECTORY) / "account.key"
    key.mkdir(parents=True)  # a directory where the key should be: EISDIR
    with pytest.raises(CaError, match=f"^account key {key}: Is a directory$"):
        Ca(CertsConfig(directory=DIRECTORY), tmp_path)


def test_a_run_with_a_damaged_account_key_fails_each_name_with_exit_3(tmp_path: Path) -> None:
    config = _config(tmp_path, 'exclude = ["www.example.org"]')
    key = account_dir(tmp_path / "state", DIRECTORY) / "account.key"
    key.parent.mkdir(parents=True)
    key.write_text("not a key")
    r = _certs(config, "--json")
    assert r.returncode == 3, r.stdout + r.stderr
    (name,) = [n for n in json.loads(r.stdout)["names"] if n["name"] == "example.org"]
    assert name["action"] == "failed" and f"account key {key}: unusable" in name["error"]
    assert "Traceback" not in r.stderr


def _aki_less_certificate(tmp_path: Path) -> x509.Certificate:
    key = store.new_key("ecdsa-p256")
    pem = store.placeholder("example.org", key, NOW)  # self-signed: no AKI extension
    cert = x509.load_pem_x509_certificate(pem)
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    return cert


class _Directory:
    def to_partial_json(self) -> dict[str, Any]:
        return {"renewalInfo": "https://127.0.0.1:9/ari"}


class _NoNet:
    def get(self, *args: Any, **kw: Any) -> Any:
        raise AssertionError("no request for a certificate without AKI")


def test_a_certificate_without_aki_has_no_renewal_window(tmp_path: Path) -> None:
    ca = Ca.__new__(Ca)  # no connection: only what renewal_window reads
    ca.directory = _Directory()  # type: ignore[assignment]
    ca.net = _NoNet()  # type: ignore[assignment]
    assert ca.renewal_window(_aki_less_certificate(tmp_path)) == (None, None)


class _FailingCa:
    """A CA whose orders fail with what is no CaError (a bug in a library, say)."""

    def __init__(self, cc: CertsConfig, state_dir: Path) -> None:
        self.directory = _Directory()

    def obtain(self, name: str, key_pem: bytes, challenge_dir: Path) -> bytes:
        raise RuntimeError(f"boom\nfor {name}")


class _IssuingCa(_FailingCa):
    """A CA that issues (a self-signed certificate, as good as any for installing)."""

    def obtain(self, name: str, key_pem: bytes, challenge_dir: Path) -> bytes:
        key = store.new_key("ecdsa-p256")
        return store.placeholder(name, key, NOW)


def _load(tmp_path: Path, extra: str = "") -> configmod.Config:
    return configmod.load(_config(tmp_path, 'exclude = ["www.example.org"]\n' + extra))


def test_any_exception_obtaining_a_name_is_that_names_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(acmeclient, "Ca", _FailingCa)
    report = certsrun.run(_load(tmp_path), NOW)
    (name,) = [n for n in report.names if n.name == "example.org"]
    assert name.action == "failed" and name.error == "boom for example.org"
    assert report.exit_code() == 3
    rec = json.loads((tmp_path / "state/certs.json").read_text())["names"]["example.org"]
    assert rec["failures"] == 1 and rec["retry_at"] == NOW + 3600


def test_an_unknown_key_group_fails_the_name_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = "certs.key_group: no group 'kissha-no-such-group' on this host"
    monkeypatch.setattr(acmeclient, "Ca", _FailingCa)
    report = certsrun.run(_load(tmp_path, 'key_group = "kissha-no-such-group"'), NOW)
    (name,) = [n for n in report.names if n.name == "example.org"]
    assert name.action == "failed" and name.error == f"{group}; boom for example.org"
    # The CA issues, the files cannot be installed: the name fails, the back-off counts.
    monkeypatch.setattr(acmeclient, "Ca", _IssuingCa)
    report = certsrun.run(
        _load(tmp_path, 'key_group = "kissha-no-such-group"'), NOW + 86400, force=("example.org",)
    )
    (name,) = [n for n in report.names if n.name == "example.org"]
    assert name.action == "failed" and name.error.endswith(f"cannot install: {group}")
    assert report.exit_code() == 3
    assert not (tmp_path / "ssl/private/example.org.key").exists()


def test_a_damaged_certs_json_keeps_the_back_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    class Counting(_FailingCa):
        def obtain(self, name: str, key_pem: bytes, challenge_dir: Path) -> bytes:
            asked.append(name)
            return super().obtain(name, key_pem, challenge_dir)

    monkeypatch.setattr(acmeclient, "Ca", Counting)
    config = _load(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    damaged = {
        "version": 1,
        "names": {
            "example.org": {
                "failures": 3,
                "retry_at": NOW + 7200,
                "error": "CA: rateLimited",
                "window": "garbage",
                "info": {"not_after": "x"},
            }
        },
    }
    (state / "certs.json").write_text(json.dumps(damaged))
    report = certsrun.run(config, NOW)
    (warning,) = [w for w in report.warnings if "certs.json" in w]
    assert "2 damaged member(s) dropped" in warning and "the rest kept" in warning
    (aside,) = state.glob("certs.json.bad-*")
    assert json.loads(aside.read_text()) == damaged
    (name,) = [n for n in report.names if n.name == "example.org"]
    assert name.action == "placeholder" and "waiting until" in name.reason
    assert "example.org" not in asked and asked  # the other names, not in back-off, are
    rec = json.loads((state / "certs.json").read_text())["names"]["example.org"]
    assert (rec["failures"], rec["retry_at"]) == (3, NOW + 7200)


def test_any_exception_connecting_fails_each_due_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken:
        def __init__(self, *args: Any) -> None:
            raise RuntimeError("no\nconnection")

    monkeypatch.setattr(acmeclient, "Ca", Broken)
    report = certsrun.run(_load(tmp_path), NOW)
    assert report.failed and all(n.error == "no connection" for n in report.failed)
    assert report.exit_code() == 3
