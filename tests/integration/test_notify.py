"""Notifications from real runs on the loopback site, received by a real SMTP server
(aiosmtpd), msmtp as the local sendmail binary, and a real webhook receiver."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kissha.config import load
from kissha.notify import deliver
from kissha.notify.settings import MailChannel, WebhookChannel
from lab.certs import issue
from lab.sink import Sink
from lab.site import LoopbackSite

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # an even week: fishfinger leads
OPS = "ops@example.org"
VIA_SENDMAIL = "sendmail-ops@example.org"


def at(seconds: float) -> str:
    return (NOW + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def sink(site: LoopbackSite) -> Iterator[Sink]:
    with Sink(smtp=("127.0.0.1", 0), http=("127.0.0.1", 0)) as s:
        yield s


def msmtp_config(site: LoopbackSite, smtp: tuple[str, int]) -> Path:
    """msmtp, a real sendmail-compatible client, handing mail to the sink."""
    rc = site.root / "msmtprc"
    rc.write_text(
        f"account default\nhost {smtp[0]}\nport {smtp[1]}\nauth off\ntls off\n"
        "from kissha@example.org\n"
    )
    rc.chmod(0o600)
    return rc


def configure(
    site: LoopbackSite, sink: Sink, notify: str = "", timeout: float = 5, **channels: str
) -> None:
    assert sink.smtp is not None and sink.http is not None
    msmtp = shutil.which("msmtp")
    assert msmtp, "msmtp is missing: run scripts/setup"
    mail = channels.get(
        "mail",
        f'[[notify.mail]]\nname = "smtp"\nto = "{OPS}"\nfrom = "kissha@example.org"\n'
        f'smtp = "127.0.0.1:{sink.smtp[1]}"\nstarttls = false\n',
    )
    sendmail = channels.get(
        "sendmail",
        f'[[notify.mail]]\nname = "sendmail"\nto = "{VIA_SENDMAIL}"\n'
        f'sendmail = ["{msmtp}", "-C", "{msmtp_config(site, sink.smtp)}"]\n',
    )
    webhook = channels.get(
        "webhook", f'[[notify.webhook]]\nname = "hook"\nurl = "http://127.0.0.1:{sink.http[1]}/k"\n'
    )
    text = site.config_text()
    text += f'\n[notify]\ncluster_events = "every-node"\ntimeout = {timeout}\n{notify}\n'
    text += f"{mail}\n{sendmail}\n{webhook}\n"
    site.config_path.write_text(text)
    load(site.config_path)  # a config error shows here, not as a failed run


def mails(sink: Sink, to: str = OPS) -> list[str]:
    return [r.headers["Subject"] for r in sink.of("smtp") if to in r.recipients]


def hooks(sink: Sink) -> list[dict]:
    return [json.loads(r.body) for r in sink.of("http")]


def run(site: LoopbackSite, seconds: float, want: int | None = None) -> str:
    r = site.kissha("failover", now=at(seconds))
    if want is not None:
        assert r.returncode == want, r.stdout + r.stderr
    return r.stdout + r.stderr


def test_one_mail_and_one_webhook_per_failover_and_per_recovery(
    site: LoopbackSite, sink: Sink
) -> None:
    configure(site, sink)
    for i in range(2):
        run(site, i * 60, want=0)
    assert sink.received == []  # quiet runs tell nothing
    site.stop_web("fishfinger")
    codes = [site.kissha("failover", now=at(120 + i * 60)).returncode for i in range(3)]
    assert codes == [0, 0, 1]
    for i in range(3):  # still down, nothing new: nothing more
        run(site, 300 + i * 60, want=0)
    failover = (
        "kissha: failover fishfinger -> blowfish (fishfinger down: https/ipv4: connection refused"
    )
    (subject,) = mails(sink)
    assert subject.startswith(failover), subject
    (via_sendmail,) = mails(sink, VIA_SENDMAIL)
    assert via_sendmail == subject
    (hook,) = hooks(sink)
    assert hook["schema"] == "kissha.event/1"
    assert (hook["kind"], hook["from"], hook["to"]) == ("failover", "fishfinger", "blowfish")
    assert [e["kind"] for e in hook["events"]] == ["node-down", "failover"]
    assert hook["title"] == subject
    assert hook["time"] == at(240)

    site.start_web("fishfinger")
    codes = [site.kissha("failover", now=at(600 + i * 60)).returncode for i in range(7)]
    assert codes == [0, 0, 0, 0, 1, 0, 0]
    assert mails(sink)[1:] == [
        "kissha: failback blowfish -> fishfinger (fishfinger is up again and preferred)"
    ]
    assert len(mails(sink, VIA_SENDMAIL)) == 2
    assert [h["kind"] for h in hooks(sink)] == ["failover", "failback"]
    assert [e["kind"] for e in hooks(sink)[1]["events"]] == ["node-up", "failback"]

    smtp_mail = next(r for r in sink.of("smtp") if OPS in r.recipients)
    for header in ("Date", "Message-ID", "From", "To", "Subject"):
        assert smtp_mail.headers.get(header), header
    assert smtp_mail.headers["Auto-Submitted"] == "auto-generated"
    assert "fishfinger  https ipv4  FAILED connection refused" in smtp_mail.body
    assert "what to do: Find out why fishfinger fails" in smtp_mail.body


def test_failed_delivery_is_retried_later_and_never_changes_the_exit_code(
    site: LoopbackSite, sink: Sink
) -> None:
    assert sink.smtp is not None
    dead = free_port()  # nothing listens here: connection refused
    configure(
        site,
        sink,
        mail=f'[[notify.mail]]\nname = "smtp"\nto = "{OPS}"\nsmtp = "127.0.0.1:{dead}"\n'
        "starttls = false\n",
        sendmail="",
    )
    sink.status = 500
    site.stop_web("fishfinger")
    for i in range(2):
        run(site, i * 60, want=0)
    out = run(site, 120, want=1)  # the failover itself is applied and reported as usual
    assert "result: changed" in out
    assert "warning: notify: webhook hook: HTTP 500" in out
    assert f"warning: notify: mail smtp: SMTP 127.0.0.1:{dead}: Connection refused" in out
    assert sink.received == []
    # The next run is within the backoff (30 s): no try, no warning.
    out = run(site, 130, want=0)
    assert "notify" not in out
    # Both endpoints are back; the next run after the backoff delivers, once.
    sink.status = 200
    with Sink(smtp=("127.0.0.1", dead)) as late:
        out = run(site, 180, want=0)
        assert "notify" not in out, out
        for i in range(3):
            run(site, 240 + i * 60, want=0)
        assert [r.headers["X-Kissha-Event"] for r in late.of("smtp")] == ["failover"]
    assert [h["kind"] for h in hooks(sink)] == ["failover"]
    outbox = json.loads((site.root / "state" / "notify.json").read_text())
    assert all(not box["pending"] for box in outbox["channels"].values())


def test_a_black_holed_smtp_server_does_not_stall_the_run(site: LoopbackSite, sink: Sink) -> None:
    # Accepts the connection (the kernel's backlog) and never says a word.
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(8)
        port = hole.getsockname()[1]
        configure(
            site,
            sink,
            timeout=1,
            mail=f'[[notify.mail]]\nname = "smtp"\nto = "{OPS}"\nsmtp = "127.0.0.1:{port}"\n'
            "starttls = false\n",
            sendmail="",
        )
        site.stop_web("fishfinger")
        for i in range(2):
            run(site, i * 60, want=0)
        r = site.kissha("failover", now=at(120), timeout=30)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "warning: notify: mail smtp: " in r.stdout
        assert "timed out" in r.stdout or "timeout" in r.stdout
    # The webhook, in parallel, got through regardless.
    assert [h["kind"] for h in hooks(sink)] == ["failover"]


def test_an_error_is_told_once_until_it_clears(site: LoopbackSite, sink: Sink) -> None:
    configure(site, sink)
    zone = site.zone_path("foo.zone")
    good = zone.read_text()
    zone.write_text(good + "alias 300 IN CNAME www ; Enable failover\n")
    for i in range(3):
        run(site, i * 60, want=5)
    errors = [h for h in hooks(sink) if h["kind"] == "error"]
    assert len(errors) == 1, hooks(sink)
    assert "CNAME" in errors[0]["title"]
    assert len(mails(sink)) == 1
    zone.write_text(good)
    run(site, 180, want=0)
    zone.write_text(good + "alias 300 IN CNAME www ; Enable failover\n")
    run(site, 240, want=5)
    assert [h["kind"] for h in hooks(sink)] == ["error", "error"]


def test_ntfy_format_with_a_bearer_token_from_a_file(site: LoopbackSite, sink: Sink) -> None:
    assert sink.http is not None
    token = site.root / "ntfy.token"
    token.write_text("tk_secret123\n")
    configure(
        site,
        sink,
        mail="",
        sendmail="",
        webhook=f'[[notify.webhook]]\nurl = "http://127.0.0.1:{sink.http[1]}/kissha"\n'
        f'format = "ntfy"\ntoken_file = "{token}"\nheaders = {{ X-Extra = "1" }}\n',
    )
    site.stop_web("fishfinger")
    for i in range(3):
        out = run(site, i * 60)
    assert "tk_secret123" not in out
    (got,) = sink.of("http")
    assert got.path == "/kissha"
    assert got.headers["Authorization"] == "Bearer tk_secret123"
    assert got.headers["Title"].startswith("kissha: failover fishfinger -> blowfish")
    assert got.headers["Priority"] == "5"
    assert got.headers["Tags"] == "kissha,failover,critical"
    assert got.headers["X-Extra"] == "1"
    assert got.body.startswith(f"{at(120)}  node-down: fishfinger is down")


def test_cron_runs_and_daemon_rounds_tell_a_failover_once(site: LoopbackSite, sink: Sink) -> None:
    configure(site, sink, mail="", sendmail="")
    site.config_path.write_text(
        site.config_path.read_text().replace('rotation = "weekly"', 'rotation = "off"')
    )
    log = (site.root / "daemon.log").open("wb")
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kissha",
            "-c",
            str(site.config_path),
            "daemon",
            "--interval",
            "0.2",
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        site.stop_web("fishfinger")
        done = threading.Event()

        def cron() -> None:
            for _ in range(30):
                if done.is_set():
                    return
                site.kissha("failover")

        t = threading.Thread(target=cron)
        t.start()
        assert site.wait_for("www.example.org", "A", {"127.0.0.12"}, seconds=30)
        done.set()
        t.join(60)
        for _ in range(3):
            site.kissha("failover")
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        log.close()
    assert [h["kind"] for h in hooks(sink)] == ["failover"]


# -- SMTP with STARTTLS and AUTH, the lab's test CA -------------------------------------


@pytest.fixture
def tls_sink(site: LoopbackSite) -> Iterator[Sink]:
    assert site.ca is not None
    pair = issue(site.ca, site.root / "pki", "smtp", ["localhost"], ["127.0.0.1"])
    with Sink(smtp=("127.0.0.1", 0), tls=(pair.cert, pair.key), users={"kissha": "s3cret"}) as s:
        yield s


def notice() -> dict:
    return {
        "id": "e1",
        "kind": "node-down",
        "severity": "warning",
        "time": NOW.timestamp(),
        "node": "fishfinger",
        "title": "kissha: blowfish is down: https/ipv4: connection refused",
        "text": "blowfish is down\n",
        "events": [],
        "fields": {},
    }


def test_smtp_starttls_and_login_with_a_private_ca(
    site: LoopbackSite, tls_sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert site.ca is not None and tls_sink.smtp is not None
    secret = site.root / "smtp.pass"
    secret.write_text("s3cret\n")
    channel = MailChannel(
        name="m",
        to=(OPS,),
        sender="kissha@example.org",
        smtp=tls_sink.smtp,
        tls_ca=str(site.ca.cert),
        username="kissha",
        password_file=str(secret),
    )
    deliver.send(channel, notice(), 5.0, "fishfinger.example.org")
    (got,) = tls_sink.of("smtp")
    assert got.user == "kissha"
    assert got.headers["Subject"] == notice()["title"]
    assert got.headers["Message-ID"].endswith("@fishfinger.example.org>")

    monkeypatch.setenv("KISSHA_TEST_SMTP_PASSWORD", "wrong-password")
    wrong = MailChannel(
        name="m",
        to=(OPS,),
        smtp=tls_sink.smtp,
        tls_ca=str(site.ca.cert),
        username="kissha",
        password_env="KISSHA_TEST_SMTP_PASSWORD",
    )
    with pytest.raises(deliver.DeliveryError) as info:
        deliver.send(wrong, notice(), 5.0, "fishfinger.example.org")
    assert "login refused (535)" in str(info.value)
    assert "wrong-password" not in str(info.value)

    untrusted = MailChannel(
        name="m", to=(OPS,), smtp=tls_sink.smtp, username="kissha", password_file=str(secret)
    )
    with pytest.raises(deliver.DeliveryError) as info:
        deliver.send(untrusted, notice(), 5.0, "fishfinger.example.org")
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    assert len(tls_sink.of("smtp")) == 1


def test_smtp_without_starttls_is_refused_by_a_server_that_requires_it(
    tls_sink: Sink,
) -> None:
    assert tls_sink.smtp is not None
    plain = MailChannel(name="m", to=(OPS,), smtp=tls_sink.smtp, starttls=False)
    with pytest.raises(deliver.DeliveryError) as info:
        deliver.send(plain, notice(), 5.0, "fishfinger.example.org")
    assert "530" in str(info.value)
    assert tls_sink.received == []


def test_a_notice_too_large_for_the_server_is_given_up_alone() -> None:
    # A mail over the SMTP server's size limit (552) and a POST over the webhook's
    # (413) are this notice's fault: it is marked rejected (given up at once, not
    # retried for a day), and the notices after it are still delivered.
    from kissha.notify.plan import Rejected

    with Sink(smtp=("127.0.0.1", 0), http=("127.0.0.1", 0), max_size=4000) as sink:
        assert sink.smtp is not None and sink.http is not None
        mail = MailChannel(name="m", to=(OPS,), smtp=sink.smtp, starttls=False)
        hook = WebhookChannel(name="w", url=f"http://127.0.0.1:{sink.http[1]}/k")
        big = {**notice(), "id": "e1", "text": "x" * 6000 + "\n"}
        small = {**notice(), "id": "e2", "title": "kissha: small"}
        results = deliver.deliver_all([(mail, [big, small]), (hook, [big, small])], 5.0, "ff")
        got = [(r.channel, r.headers.get("Subject")) for r in sink.received]
    ((mail_big, mail_small), (hook_big, hook_small)) = results
    assert isinstance(mail_big, Rejected) and mail_big.startswith("mail m: SMTP 127.0.0.1:")
    assert " 552 " in mail_big
    assert isinstance(hook_big, Rejected)
    assert hook_big == "webhook w: HTTP 413 Request Entity Too Large"
    assert mail_small is None and hook_small is None
    assert sorted(got, key=str) == [("http", None), ("smtp", "kissha: small")]


def test_a_full_mailbox_552_is_retried_not_given_up() -> None:
    # 552 also means "exceeded storage allocation" (a full mailbox, 5.2.2), which may
    # clear: only a 552 that says size gives the notice up at once.
    with Sink(smtp=("127.0.0.1", 0), data_reply="552 5.2.2 Mailbox full") as sink:
        assert sink.smtp is not None
        mail = MailChannel(name="m", to=(OPS,), smtp=sink.smtp, starttls=False)
        with pytest.raises(deliver.DeliveryError) as info:
            deliver.send(mail, notice(), 5.0, "fishfinger.example.org")
    assert not info.value.rejected
    assert str(info.value).endswith(": 552 5.2.2 Mailbox full")


def test_a_mail_some_recipients_refused_is_delivered_with_a_warning() -> None:
    # The server took the mail for one recipient and refused another (550): sending it
    # again would repeat it to the first, so it counts as delivered (a Delivered result,
    # which settle turns into a warning of the run).
    from kissha.notify.plan import Delivered

    with Sink(smtp=("127.0.0.1", 0), refuse=("nobody@example.org",)) as sink:
        assert sink.smtp is not None
        mail = MailChannel(name="m", to=(OPS, "nobody@example.org"), smtp=sink.smtp, starttls=False)
        ((result,),) = deliver.deliver_all([(mail, [notice()])], 5.0, "fishfinger.example.org")
        (got,) = sink.of("smtp")
    assert got.recipients == (OPS,)
    assert isinstance(result, Delivered)
    assert result == (
        f"mail m: SMTP 127.0.0.1:{sink.smtp[1]}: delivered, but recipient(s) refused: "
        "nobody@example.org (550 5.1.1 no such user)"
    )


def test_webhook_to_a_closed_port_is_a_delivery_error() -> None:
    channel = WebhookChannel(name="w", url=f"http://127.0.0.1:{free_port()}/x")
    with pytest.raises(deliver.DeliveryError) as info:
        deliver.send(channel, notice(), 2.0, "fishfinger.example.org")
    assert "Connection refused" in str(info.value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_webhook_redirect_is_not_followed_and_the_token_stays_home(tmp_path: Path) -> None:
    """urllib would re-send the POST as a body-less GET, carrying the token along."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[tuple[str, str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append((self.command, self.path, self.headers.get("Authorization")))
            if self.path == "/hook":
                self.send_response(302)
                self.send_header("Location", "/elsewhere")
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    token = tmp_path / "token"
    token.write_text("s3cr3t-token\n")
    try:
        port = server.server_address[1]
        channel = WebhookChannel("w", f"http://127.0.0.1:{port}/hook", token_file=str(token))
        with pytest.raises(deliver.DeliveryError) as info:
            deliver.send(channel, notice(), 5.0, "fishfinger.example.org")
    finally:
        server.shutdown()
        server.server_close()
    assert "302" in str(info.value) and "redirect, not followed" in str(info.value)
    assert seen == [("POST", "/hook", "Bearer s3cr3t-token")]  # nothing went /elsewhere


def test_a_token_with_a_line_break_is_refused_without_showing_it(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cr3t-token\n# rotated 2026-11-01\n")
    channel = WebhookChannel("w", f"http://127.0.0.1:{free_port()}/x", token_file=str(token))
    with pytest.raises(deliver.DeliveryError) as info:
        deliver.send(channel, notice(), 2.0, "fishfinger.example.org")
    assert "line break" in str(info.value)
    assert "s3cr3t" not in str(info.value) and "rotated" not in str(info.value)


def test_what_was_delivered_before_a_hang_counts_as_delivered() -> None:
    """A channel answers the first notice, then hangs on the second past the deadline:
    the first must count as delivered (else it is sent again), the second as failed."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    release = threading.Event()
    got: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append(json.loads(body)["id"].split("/")[1])
            if len(got) > 1:
                release.wait(10)  # bounded: the test releases it at the end
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        channel = WebhookChannel("w", f"http://127.0.0.1:{server.server_address[1]}/k")
        notices = [notice(), {**notice(), "id": "e2"}]
        ((first, second),) = deliver.deliver_all([(channel, notices)], 1.0, "fishfinger")
    finally:
        release.set()
        server.shutdown()
        server.server_close()
    assert got == ["e1", "e2"]
    assert first is None
    assert second is not None and "timeout" in second
