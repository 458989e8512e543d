"""Delivery (I/O): mail through sendmail or SMTP, webhooks; all channels at once, with
one deadline for the lot. Secrets are read here, at the last moment, and never shown."""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kissha.core.model import iso
from kissha.notify.plan import Delivered, Rejected
from kissha.notify.settings import Channel, MailChannel, WebhookChannel

if TYPE_CHECKING:
    from email.message import EmailMessage

log = logging.getLogger(__name__)
SCHEMA = "kissha.event/1"
NTFY_PRIORITY = {"info": "3", "warning": "4", "critical": "5"}
# ntfy's default message-size-limit: a longer body becomes an attachment (or HTTP 413
# where attachments are off), so a long digest is cut to fit, with a note.
NTFY_MAX_BODY = 4096
NOT_TRIED = "not tried: an earlier delivery to this channel failed"


class DeliveryError(Exception):
    """One delivery failed; the message says why, without secrets. ``rejected``: the
    server refused this notice itself (too large), so sending it again cannot succeed."""

    def __init__(self, message: str, rejected: bool = False) -> None:
        super().__init__(message)
        self.rejected = rejected


def deliver_all(
    jobs: Sequence[tuple[Channel, Sequence[Mapping[str, Any]]]], timeout: float, hostname: str
) -> list[list[str | None]]:
    """Send each job's notices in order (stopping at its first failure, but for a notice
    the server rejected itself), every job in its own thread; after ``timeout`` seconds
    whatever is unfinished counts as failed. Returns per job, per notice: None
    (delivered) or the error (a ``Rejected`` one for a notice the server refused)."""
    deadline = time.monotonic() + timeout
    results: list[list[str | None]] = [[] for _ in jobs]

    def work(i: int) -> None:
        channel, notices = jobs[i]
        # Written as each notice completes, so a later one that hangs past the deadline
        # does not make the delivered ones count as failed (and be sent again).
        out = results[i]
        for n in notices:
            left = deadline - time.monotonic()
            if left <= 0:
                out.append(
                    f"{channel.kind} {channel.name}: timeout: no time left within {timeout:g} s"
                )
                break
            try:
                concern = send(channel, n, left, hostname)
                out.append(
                    Delivered(f"{channel.kind} {channel.name}: {concern}") if concern else None
                )
            except DeliveryError as exc:
                error = f"{channel.kind} {channel.name}: {exc}"
                if exc.rejected:  # this notice only: the next ones may well pass
                    out.append(Rejected(error))
                    continue
                out.append(error)
                break
            except Exception as exc:  # a bug must not hide the other channels' results
                out.append(f"{channel.kind} {channel.name}: {type(exc).__name__}: {exc}")
                break
        out += [NOT_TRIED] * (len(notices) - len(out))

    threads = [
        threading.Thread(target=work, args=(i,), name=f"notify-{jobs[i][0].name}", daemon=True)
        for i in range(len(jobs))
        if jobs[i][1]
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    # A thread still running (a black-holed server) is left behind: it ends by itself
    # within its socket timeout. What it delivered counts; the notice it is stuck on and
    # those after it count as not delivered (sent again).
    stuck = f"timeout: no answer within {timeout:g} s"
    return [
        [*r, *[f"{c.kind} {c.name}: {stuck}"] * (len(notices) - len(r))]
        for r, (c, notices) in zip([list(r) for r in results], jobs, strict=True)
    ]


def send(channel: Channel, notice: Mapping[str, Any], timeout: float, hostname: str) -> str | None:
    """Deliver one notice, or raise DeliveryError; returns a concern about a delivery
    that went through (recipients an SMTP server refused), or None."""
    if isinstance(channel, MailChannel):
        message = mail_message(channel, notice, hostname)
        if channel.smtp is not None:
            return _smtp(channel, message, timeout, hostname)
        _sendmail(channel, message, timeout)
    else:
        _webhook(channel, notice, timeout)
    return None


# -- mail ------------------------------------------------------------------------------


def mail_message(channel: MailChannel, notice: Mapping[str, Any], hostname: str) -> EmailMessage:
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    msg = EmailMessage()
    msg["From"] = channel.sender or f"kissha@{hostname}"
    msg["To"] = ", ".join(channel.to)
    msg["Subject"] = str(notice["title"])
    msg["Date"] = formatdate(localtime=False)
    # With a domain: make_msgid would otherwise ask the resolver for this host's name.
    msg["Message-ID"] = make_msgid("kissha", domain=hostname)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    msg["X-Kissha-Event"] = str(notice["kind"])
    msg["X-Kissha-Id"] = delivery_id(notice)
    msg["X-Kissha-Node"] = str(notice["node"])
    msg.set_content(str(notice["text"]))
    return msg


def _sendmail(channel: MailChannel, message: EmailMessage, timeout: float) -> None:
    import subprocess

    argv = [*channel.sendmail, "-t", "-oi"]
    try:
        done = subprocess.run(
            argv, input=message.as_bytes(), capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise DeliveryError(f"{argv[0]} did not finish within {timeout:.3g} s") from None
    except OSError as exc:
        raise DeliveryError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
        raise DeliveryError(
            f"{argv[0]} exited {done.returncode}" + (f": {said[-1][:200]}" if said else "")
        )


def _smtp(channel: MailChannel, message: EmailMessage, timeout: float, hostname: str) -> str | None:
    import smtplib
    import ssl

    assert channel.smtp is not None
    host, port = channel.smtp
    where = f"{host}:{port}"
    try:
        password = _secret(channel.password_file, channel.password_env, "password")
        # local_hostname given: smtplib would otherwise ask the resolver for our name.
        with smtplib.SMTP(host, port, timeout=timeout, local_hostname=hostname) as s:
            if channel.starttls:
                s.starttls(context=ssl.create_default_context(cafile=channel.tls_ca))
            if channel.username:
                s.login(channel.username, password or "")
            refused = s.send_message(message)
        if refused:  # delivered to the others: sending again would repeat it to them
            said = "; ".join(f"{to} ({code} {_said(text)})" for to, (code, text) in refused.items())
            return f"SMTP {where}: delivered, but recipient(s) refused: {said}"[:300]
        return None
    except smtplib.SMTPNotSupportedError:
        raise DeliveryError(f"SMTP {where} does not offer STARTTLS") from None
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"SMTP {where}: login refused ({exc.smtp_code})") from None
    except smtplib.SMTPResponseException as exc:
        said = _said(exc.smtp_error)
        # 552 to MAIL FROM (its SIZE) or after DATA, saying size (5.3.4, "too large",
        # "size", "too much"): this message is too large. Other 552s (a full mailbox,
        # 5.2.2) may clear: retried.
        words = said.lower()
        too_large = (
            exc.smtp_code == 552
            and isinstance(exc, smtplib.SMTPSenderRefused | smtplib.SMTPDataError)
            and any(w in words for w in ("5.3.4", "too large", "size", "too much"))
        )
        raise DeliveryError(
            f"SMTP {where}: {exc.smtp_code} {said}"[:300], rejected=too_large
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        what = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DeliveryError(f"SMTP {where}: {what or type(exc).__name__}"[:300]) from None


def _said(text: bytes | str) -> str:
    """An SMTP server's words."""
    return text.decode(errors="replace") if isinstance(text, bytes) else text


def _secret(file: str | None, env: str | None, what: str) -> str | None:
    if file is not None:
        try:
            with open(file, encoding="utf-8") as f:
                return f.read().strip("\r\n")
        except OSError as exc:
            raise DeliveryError(f"cannot read {what}_file {file}: {exc.strerror or exc}") from None
    if env is not None:
        value = os.environ.get(env)
        if value is None:
            raise DeliveryError(f"{what}_env: ${env} is not set")
        return value
    return None


# -- webhooks --------------------------------------------------------------------------


def delivery_id(notice: Mapping[str, Any]) -> str:
    """What receivers see as the id: the same for every delivery of one notification,
    and unique across nodes and state resets: ``node/id/epoch``. (The bare id counts
    events per node's state, so two nodes, or one after a reset, reuse it.)"""
    return f"{notice['node']}/{notice['id']}/{int(float(notice['time']))}"


def payload(notice: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body: ``{"schema": "kissha.event/1", "kind", "time", "node", ...}``."""
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "id": delivery_id(notice),
        "kind": notice["kind"],
        "severity": notice["severity"],
        "time": iso(float(notice["time"])),
        "node": notice["node"],
        "title": notice["title"],
        "message": notice["text"],
        "events": [
            {**e, "time": iso(float(e["time"]))} if "time" in e else dict(e)
            for e in notice.get("events", [])
        ],
    }
    for key, value in dict(notice.get("fields", {})).items():
        data.setdefault(key, value)
    return data


def _header_text(text: str) -> str:
    """A header value: ASCII as is, anything else RFC 2047-encoded (ntfy decodes it)."""
    if text.isascii():
        return text
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


def _fit(text: str, limit: int) -> bytes:
    """``text`` in UTF-8, cut at a line end to at most ``limit`` bytes with a note of
    what was cut (the whole text is in kissha status, the page and the mail)."""
    data = text.encode()
    if len(data) <= limit:
        return data
    room = limit - 80  # the note fits in 80 bytes
    kept = data[:room].decode("utf-8", "ignore")  # a character cut in two is dropped
    if "\n" in kept:
        kept = kept[: kept.rindex("\n") + 1]
    cut = len(data) - len(kept.encode())
    return (kept + f"[... {cut} more bytes cut: over ntfy's {limit}-byte limit]\n").encode()


def webhook_request(
    channel: WebhookChannel, notice: Mapping[str, Any]
) -> tuple[bytes, dict[str, str]]:
    from kissha import __version__

    headers = {"User-Agent": f"kissha/{__version__}"}
    if channel.format == "ntfy":
        body = _fit(str(notice["text"]), NTFY_MAX_BODY)
        headers["Content-Type"] = "text/plain; charset=utf-8"
        headers["Title"] = _header_text(str(notice["title"]))
        headers["Priority"] = NTFY_PRIORITY.get(str(notice["severity"]), "3")
        headers["Tags"] = f"kissha,{notice['kind']},{notice['severity']}"
    else:
        import json

        body = json.dumps(payload(notice)).encode()
        headers["Content-Type"] = "application/json"
    headers.update(dict(channel.headers))
    token = _secret(channel.token_file, channel.token_env, "token")
    if token:
        if any(ord(c) < 32 or ord(c) == 127 for c in token):
            # http.client would refuse it and echo the value in its error: never that
            raise DeliveryError("the token has a line break or control character in it")
        headers["Authorization"] = f"Bearer {token}"
    return body, headers


def _webhook(channel: WebhookChannel, notice: Mapping[str, Any], timeout: float) -> None:
    import ssl
    import urllib.error
    import urllib.request

    body, headers = webhook_request(channel, notice)
    request = urllib.request.Request(channel.url, data=body, headers=headers, method="POST")
    context = None
    if channel.url.startswith("https:"):
        context = ssl.create_default_context(cafile=channel.tls_ca)

    # No redirects: urllib would re-send a POST as a body-less GET (a 200 on that is no
    # delivery) and carry the Authorization header to wherever it points.
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(65536)
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            raise DeliveryError(
                f"HTTP {exc.code} {exc.reason}: a redirect, not followed (set url to its target)"
            ) from None
        if exc.code == 413:  # this notice is too large for the server: never retried
            raise DeliveryError(f"HTTP 413 {exc.reason}", rejected=True) from None
        raise DeliveryError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = reason.strerror if isinstance(reason, OSError) and reason.strerror else str(reason)
        raise DeliveryError(text[:300]) from None
    except (OSError, ValueError) as exc:  # a timeout while reading, a bad answer
        raise DeliveryError(f"{type(exc).__name__}: {exc}"[:300]) from None
