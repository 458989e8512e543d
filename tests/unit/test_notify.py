"""Notifications, the pure parts: config, which notices go where, rate limit, retries,
reminders, rendering, and the mail and webhook bodies."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from kissha.config import Config
from kissha.core.model import Event, NodeHealth, Problem, Roles
from kissha.engine import state as statefile
from kissha.notify import deliver, plan, render
from kissha.notify.kinds import DEFAULT_EVENTS, KINDS
from kissha.notify.settings import MailChannel, WebhookChannel, parse_duration
from tests.unit.test_policy import EVEN, cfg

ALL = frozenset(KINDS)


def notify_cfg(**notify: Any) -> Config:
    table = {"webhook": [{"url": "https://ntfy.example.org/kissha"}], **notify}
    return cfg(notify=table)


def ctx(node: str = "blowfish", now: float = EVEN) -> render.Context:
    st = statefile.State(
        health={"fishfinger": NodeHealth(False, 3, 0), "blowfish": NodeHealth()},
        roles=Roles("blowfish", "blowfish"),
    )
    return render.Context(notify_cfg(), node, now, None, st)


def ev(id: int, kind: str, time: float = EVEN, **extra: Any) -> Event:
    return Event.from_json(
        {"id": id, "time": time, "kind": kind, "message": f"{kind} {id}", **extra}
    )


FAILOVER_RUN = [
    ev(1, "node-down", node="fishfinger", message="fishfinger is down: https/ipv4: refused"),
    ev(
        2,
        "failover",
        cause="failover",
        reason="https/ipv4: connection refused",
        **{"from": "fishfinger", "to": "blowfish"},
    ),
]


# -- config ----------------------------------------------------------------------------


def test_a_full_notify_table() -> None:
    c = cfg(
        notify={
            "node": "blowfish",
            "reminder": "off",
            "rate_limit": 3,
            "retry": "2h",
            "timeout": 4,
            "events": ["default", "rotation"],
            "mail": [
                {
                    "to": ["a@example.org", "b@example.org"],
                    "smtp": "mail.example.org:587",
                    "username": "kissha",
                    "password_env": "KISSHA_SMTP_PASSWORD",
                },
                {"to": "c@example.org", "sendmail": ["/usr/bin/msmtp", "-a", "ops"]},
            ],
            "webhook": [
                {
                    "name": "ntfy",
                    "url": "https://ntfy.example.org/kissha",
                    "format": "ntfy",
                    "events": ["failover", "failback"],
                    "token_env": "NTFY_TOKEN",
                }
            ],
        }
    )
    n = c.notify
    assert n is not None
    assert (n.node, n.reminder, n.rate_limit, n.retry, n.timeout) == ("blowfish", 0, 3, 7200, 4)
    smtp, sendmail = n.mail
    assert smtp.smtp == ("mail.example.org", 587) and smtp.starttls
    assert smtp.events == DEFAULT_EVENTS | {"rotation"}
    assert smtp.name.startswith("mail-") and smtp.name != sendmail.name
    assert sendmail.sendmail == ("/usr/bin/msmtp", "-a", "ops") and sendmail.smtp is None
    (hook,) = n.webhook
    assert (hook.name, hook.format, hook.events) == ("ntfy", "ntfy", {"failover", "failback"})
    assert [c.name for c in n.channels] == [smtp.name, sendmail.name, "ntfy"]


def test_no_notify_table_means_none() -> None:
    assert cfg().notify is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("24h", 86400), ("1d12h", 129600), ("90m", 5400), (60, 60), ("off", 0), (0, 0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["daily", "-5", -5, True, "1x", ""])
def test_bad_durations(text: object) -> None:
    assert parse_duration(text) is None


def test_a_url_with_a_secret_is_not_repeated_in_the_error() -> None:
    from kissha.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        cfg(notify={"webhook": [{"url": "ftp://user:hunter2@example.org/"}]})
    assert "hunter2" not in str(info.value)


def test_a_user_or_password_in_the_url_is_refused_without_repeating_it() -> None:
    from kissha.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        cfg(notify={"webhook": [{"url": "https://ops:hunter2@ntfy.example.org/kissha"}]})
    assert "a user or password in the URL is not supported" in str(info.value)
    assert "hunter2" not in str(info.value)


# -- which notices -----------------------------------------------------------------------


def test_a_failover_takes_in_the_node_down_of_its_run() -> None:
    (n,) = plan.notices(FAILOVER_RUN, ALL, None, ctx())
    assert n["id"] == "e1+2"
    assert n["kind"] == "failover" and n["severity"] == "critical"
    assert n["title"] == (
        "kissha: failover fishfinger -> blowfish (fishfinger down: https/ipv4: connection refused)"
    )
    assert n["fields"]["from"] == "fishfinger"
    assert [e["kind"] for e in n["events"]] == ["node-down", "failover"]


def test_without_failover_in_the_filter_the_node_down_goes_alone() -> None:
    (n,) = plan.notices(FAILOVER_RUN, frozenset({"node-down"}), None, ctx())
    assert (n["id"], n["kind"]) == ("e1", "node-down")
    assert n["title"] == "kissha: fishfinger is down: https/ipv4: refused"


def test_events_of_different_runs_are_not_folded() -> None:
    evs = [ev(1, "node-down", node="fishfinger"), replace(FAILOVER_RUN[1], time=EVEN + 60)]
    assert [n["id"] for n in plan.notices(evs, ALL, None, ctx())] == ["e1", "e2"]


def test_cluster_events_come_from_the_master_and_local_ones_from_every_node() -> None:
    evs = [*FAILOVER_RUN, ev(3, "rollback"), ev(4, "pin")]
    assert plan.sends("failover", "blowfish", "blowfish", "master")
    assert not plan.sends("failover", "fishfinger", "blowfish", "master")
    assert plan.sends("failover", "fishfinger", "blowfish", "every-node")
    assert plan.sends("failover", None, "blowfish", "master")  # who am I? tell anyway
    may = {k: plan.sends(k, "fishfinger", "blowfish", "master") for k in KINDS}
    assert [n["kind"] for n in plan.notices(evs, ALL, may, ctx("fishfinger"))] == ["rollback"]


def test_rotation_is_off_by_default() -> None:
    evs = [ev(1, "rotation", cause="rotation", **{"from": "a", "to": "b"})]
    assert plan.notices(evs, DEFAULT_EVENTS, None, ctx()) == []
    (n,) = plan.notices(evs, DEFAULT_EVENTS | {"rotation"}, None, ctx())
    assert n["kind"] == "rotation"


def test_every_kind_told_is_an_event_kissha_writes_and_has_its_words() -> None:
    from typing import get_args

    from kissha.core.model import EventKind

    assert set(KINDS) <= set(get_args(EventKind))
    # Every kind told has its title and advice; UNLISTED is for kinds no version tells.
    assert set(render.WORDS) == set(KINDS)


def test_each_kind_of_change_has_its_own_kind_title_and_hint() -> None:
    move = {"from": "fishfinger", "to": "blowfish"}
    evs = [
        ev(1, "failover", EVEN, cause="failover", reason="https/ipv4: refused", **move),
        ev(2, "failback", EVEN + 60, cause="failback", **move),
        ev(3, "rotation", EVEN + 120, cause="rotation", **move),
        ev(4, "records", EVEN + 180, cause="records", master="blowfish", standby="fishfinger"),
        ev(5, "records", EVEN + 240, cause="standby", master="blowfish", standby="blowfish"),
        # A state written before the kinds were split: the cause is the kind.
        ev(6, "failover", EVEN + 300, cause="failback", **move),
    ]
    got = plan.notices(evs, ALL, None, ctx())
    assert [n["kind"] for n in got] == [
        "failover",
        "failback",
        "rotation",
        "records",
        "records",
        "failback",
    ]
    titles = [n["title"] for n in got]
    assert (
        titles[0]
        == "kissha: failover fishfinger -> blowfish (fishfinger down: https/ipv4: refused)"
    )
    assert (
        titles[1] == "kissha: failback fishfinger -> blowfish (blowfish is up again and preferred)"
    )
    assert titles[2] == (
        "kissha: rotation: master fishfinger -> blowfish (planned: a new week, a pin or the config)"
    )
    assert titles[3] == "kissha: records changed: records 4"
    assert not any("failover" in t for t in titles[1:])
    assert [n["severity"] for n in got] == ["critical", "info", "info", "info", "info", "info"]
    assert "the zone files now match the config's addresses" in got[3]["text"]
    assert "the standby names follow the healthy nodes" in got[4]["text"]
    assert got[3]["fields"]["cause"] == "records"


def test_zone_invalid_is_an_error_and_pins_are_never_told() -> None:
    evs = [ev(1, "zone-invalid"), ev(2, "unpinned"), ev(3, "records")]
    assert [n["kind"] for n in plan.notices(evs, DEFAULT_EVENTS, None, ctx())] == ["error"]


# -- reminders -------------------------------------------------------------------------


def problems() -> dict[str, Problem]:
    return {
        "node-down:fishfinger": Problem(
            "node-down", EVEN, "fishfinger is down: https/ipv4: refused"
        ),
        "zone-invalid:abc": Problem("zone-invalid", EVEN + 5, "x.zone bad"),
    }


def test_a_reminder_a_day_while_problems_stay_open() -> None:
    box = plan.Box()
    day = 86400.0
    assert plan.reminder(box, problems(), ALL, None, day, ctx(now=EVEN)) is None
    assert plan.reminder(box, problems(), ALL, None, day, ctx(now=EVEN + day - 1)) is None
    r = plan.reminder(box, problems(), ALL, None, day, ctx(now=EVEN + day))
    assert r is not None and r["kind"] == "reminder"
    assert r["title"] == (
        "kissha: still open since 2026-11-23T12:00:00Z: fishfinger is down: https/ipv4: "
        "refused (+1 more)"
    )
    assert "since 2026-11-23T12:00:05Z  zone-invalid: x.zone bad" in r["text"]
    assert plan.reminder(box, problems(), ALL, None, day, ctx(now=EVEN + day + 60)) is None
    # A problem that closes is forgotten; reminders off: none at all.
    assert plan.reminder(box, {}, ALL, None, day, ctx(now=EVEN + 3 * day)) is None
    assert box.reminded == {}
    assert plan.reminder(plan.Box(), problems(), ALL, None, 0, ctx(now=EVEN + 9 * day)) is None


def test_reminders_follow_the_channel_filter_and_the_sender_rule() -> None:
    box = plan.Box()
    day = 86400.0
    may = {k: plan.sends(k, "fishfinger", "blowfish", "master") for k in KINDS}
    plan.reminder(box, problems(), ALL, may, day, ctx(now=EVEN))
    assert list(box.reminded) == ["zone-invalid:abc"]  # node-down is the master's to tell
    box = plan.Box()
    plan.reminder(box, problems(), frozenset({"node-down"}), None, day, ctx(now=EVEN))
    assert list(box.reminded) == ["node-down:fishfinger"]


# -- rate limit, retries ---------------------------------------------------------------


def pending(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"e{i}",
            "kind": "node-down",
            "severity": "warning",
            "time": EVEN,
            "node": "b",
            "title": f"t{i}",
            "text": f"x{i}\n",
            "events": [],
            "fields": {},
        }
        for i in range(1, n + 1)
    ]


def test_within_the_hours_budget_each_notice_goes_alone_the_rest_in_one_digest() -> None:
    box = plan.Box(pending=pending(5), sent=[EVEN - 4000, EVEN - 1800, EVEN - 60])
    out = plan.select(box, EVEN, rate_limit=4)
    assert box.sent == [EVEN - 1800, EVEN - 60]  # an hour old: out of the window
    assert [n["id"] for n in out] == ["e1", "d" + "e2,e3,e4,e5"]
    digest = out[1]
    assert digest["title"] == "kissha: 4 notifications in one (rate limit): node-down"
    assert "== t2\n\nx2\n\n== t3" in digest["text"]
    assert plan.settle(box, out, [None, None], EVEN, 86400) == []
    assert box.pending == [] and len(box.sent) == 4
    box.pending = pending(1)
    assert plan.select(box, EVEN + 10, rate_limit=4) == []  # the budget is spent


def test_a_drill_in_the_future_does_not_hold_back_real_deliveries() -> None:
    week = 7 * 86400
    box = plan.Box(pending=pending(2), sent=[EVEN + week] * 4, next_try=EVEN + week)
    out = plan.select(box, EVEN, rate_limit=4)  # the real clock, after a drill at +1 week
    assert box.sent == []
    assert [n["id"] for n in out] == ["e1", "e2"]


def test_a_failure_backs_off_the_channel_and_old_notices_are_given_up_with_a_warning() -> None:
    box = plan.Box(pending=pending(2))
    out = plan.select(box, EVEN, rate_limit=10)
    warnings = plan.settle(box, out, ["hook: HTTP 500", deliver.NOT_TRIED], EVEN, 86400)
    assert warnings == ["hook: HTTP 500"]
    assert len(box.pending) == 2 and box.next_try == EVEN + 30
    assert plan.select(box, EVEN + 29, rate_limit=10) == []
    out = plan.select(box, EVEN + 30, rate_limit=10)
    plan.settle(box, out, ["hook: HTTP 500", deliver.NOT_TRIED], EVEN + 30, 86400)
    assert box.next_try == EVEN + 30 + 60  # doubled
    out = plan.select(box, EVEN + 90, rate_limit=10)
    plan.settle(box, out, [None, "hook: HTTP 500"], EVEN + 90, 86400)
    assert [n["id"] for n in box.pending] == ["e2"] and box.failures == 3
    out = plan.select(box, EVEN + 86401, rate_limit=10)
    warnings = plan.settle(box, out, ["hook: timeout"], EVEN + 86401, 86400)
    assert warnings[1] == "gave up 1 notification(s) after retrying for 86400 s: t2"
    assert box.pending == [] and box.dropped == 1
    box.pending = pending(1)
    out = plan.select(box, EVEN + 90000, rate_limit=10)
    plan.settle(box, out, [None], EVEN + 90000, 86400)
    assert (box.failures, box.next_try) == (0, 0.0)


def test_a_rejected_notice_is_given_up_at_once_and_the_others_go_on() -> None:
    # The server refused one notice itself (too large): it is dropped with a warning,
    # the channel does not back off, and what came after it counts as delivered.
    box = plan.Box(pending=pending(3))
    out = plan.select(box, EVEN, rate_limit=10)
    rejected = plan.Rejected("hook: HTTP 413 Request Entity Too Large")
    warnings = plan.settle(box, out, [None, rejected, None], EVEN, 86400)
    assert warnings == [
        "gave up a notification the server rejected: t2: hook: HTTP 413 Request Entity Too Large"
    ]
    assert box.pending == [] and box.dropped == 1 and len(box.sent) == 2
    assert (box.failures, box.next_try) == (0, 0.0)
    # Rejected, then a failure of the channel: the rejected one is still given up, the
    # rest waits for the backoff.
    box.pending = pending(3)
    out = plan.select(box, EVEN + 60, rate_limit=10)
    warnings = plan.settle(box, out, [rejected, "hook: HTTP 500", deliver.NOT_TRIED], EVEN, 86400)
    assert warnings[1] == "hook: HTTP 500" and "t1" in warnings[0]
    assert [n["id"] for n in box.pending] == ["e2", "e3"] and box.dropped == 2
    assert box.next_try == EVEN + 30
    # A digest the server rejected gives up every notice folded into it.
    box = plan.Box(pending=pending(5), sent=[EVEN - 60] * 7)
    out = plan.select(box, EVEN, rate_limit=10)
    assert [n["id"] for n in out] == ["e1", "e2", "d" + "e3,e4,e5"]
    warnings = plan.settle(box, out, [None, None, rejected], EVEN, 86400)
    assert box.pending == [] and box.dropped == 3
    assert warnings[0].startswith("gave up 3 notifications (a digest) the server rejected: ")


def test_delivered_with_a_concern_is_delivered_and_warned() -> None:
    box = plan.Box(pending=pending(2))
    out = plan.select(box, EVEN, rate_limit=10)
    concern = plan.Delivered("mail m: SMTP x:25: delivered, but recipient(s) refused: a@b (550 no)")
    assert plan.settle(box, out, [concern, None], EVEN, 86400) == [concern]
    assert box.pending == [] and len(box.sent) == 2 and box.failures == 0


def test_retry_off_gives_up_at_the_first_failure() -> None:
    box = plan.Box(pending=pending(1))
    out = plan.select(box, EVEN, rate_limit=10)
    assert len(plan.settle(box, out, ["x"], EVEN, 0)) == 2
    assert box.pending == []


def test_a_channel_taken_out_of_the_config_says_what_waited_for_it(tmp_path: Path) -> None:
    # Renaming a channel is taking one out and putting one in: the old one's queue is
    # dropped, with a warning that says how many waited (never silently).
    from kissha import notify
    from kissha.notify import outbox

    config = replace(notify_cfg(), state_dir=tmp_path)
    box = outbox.Outbox({"old": plan.Box(pending=pending(2)), "empty": plan.Box()})
    assert outbox.save(tmp_path, box) == []
    warnings = notify.publish(config, statefile.State(), EVEN, 0, None)
    assert warnings == [
        "notify: channel old is no longer in the config: 2 notification(s) waiting for it dropped"
    ]
    left, _ = outbox.load(tmp_path)
    assert config.notify is not None
    assert set(left.channels) == {c.name for c in config.notify.channels}


def test_events_gone_from_the_history_before_they_were_told_are_said(tmp_path: Path) -> None:
    # The channel's cursor is far behind (notify.json could not be saved for a long
    # time): the events between it and the oldest the state keeps are lost, said.
    from kissha import notify
    from kissha.notify import outbox

    config = replace(notify_cfg(), state_dir=tmp_path)
    assert config.notify is not None
    name = config.notify.channels[0].name
    assert outbox.save(tmp_path, outbox.Outbox({name: plan.Box(cursor=100)})) == []
    st = statefile.State(seq=500, events=[ev(i, "pin") for i in range(301, 501)])  # never told
    warnings = notify.publish(config, st, EVEN, 500, None)
    assert warnings == [
        f"notify: channel {name}: 200 event(s) left the state's history before they could be "
        "told (notify.json was not saved?)"
    ]
    assert notify.publish(config, st, EVEN, 500, None) == []  # the cursor moved on
    st.seq += 3
    assert len(notify.publish(config, st, EVEN, 500, None)) == 1  # 3 events and none kept


def test_box_round_trip() -> None:
    box = plan.Box(cursor=7, pending=pending(1), sent=[1.0], reminded={"k": 2.0}, failures=1)
    assert plan.Box.from_json(json.loads(json.dumps(box.to_json()))) == box


# -- mail and webhook bodies -------------------------------------------------------------


def test_the_json_payload_and_the_ntfy_request() -> None:
    (n,) = plan.notices(FAILOVER_RUN, ALL, None, ctx())
    data = deliver.payload(n)
    assert data["schema"] == "kissha.event/1"
    assert (data["kind"], data["node"], data["time"]) == (
        "failover",
        "blowfish",
        "2026-11-23T12:00:00Z",
    )
    assert (data["from"], data["to"]) == ("fishfinger", "blowfish")
    assert data["events"][0]["time"] == "2026-11-23T12:00:00Z"
    assert data["message"].startswith("2026-11-23T12:00:00Z  node-down: fishfinger is down")
    hook = WebhookChannel("n", "https://ntfy.example.org/k", format="ntfy")
    body, headers = deliver.webhook_request(hook, {**n, "title": "kissha: ärger"})
    assert body == n["text"].encode()
    assert headers["Title"] == "=?UTF-8?B?a2lzc2hhOiDDpHJnZXI=?="
    assert (headers["Priority"], headers["Tags"]) == ("5", "kissha,failover,critical")
    body, headers = deliver.webhook_request(WebhookChannel("j", "https://x.example/"), n)
    assert json.loads(body)["id"] == f"blowfish/e1+2/{int(EVEN)}" and "Authorization" not in headers


def test_a_long_ntfy_body_is_cut_to_ntfys_limit_at_a_line_end() -> None:
    # ntfy makes a body over 4,096 bytes an attachment (or refuses it with 413): a long
    # digest is cut at a line end, with a note; multi-byte characters stay whole.
    hook = WebhookChannel("n", "https://ntfy.example.org/k", format="ntfy")
    lines = [
        f"2026-11-23T12:{i % 60:02d}:00Z  node-down: blöwfish {i} is down\n" for i in range(200)
    ]
    text = "".join(lines)
    body, _ = deliver.webhook_request(hook, {**pending(1)[0], "text": text})
    assert len(body) <= deliver.NTFY_MAX_BODY < len(text.encode())
    got = body.decode()  # valid UTF-8
    kept, note = got.rsplit("\n[", 1)
    assert text.startswith(kept + "\n") and kept.count("\n") > 40
    cut = len(text.encode()) - len(kept.encode()) - 1
    assert note == f"... {cut} more bytes cut: over ntfy's 4096-byte limit]\n"
    short = {**pending(1)[0], "text": "one line\n"}
    assert deliver.webhook_request(hook, short)[0] == b"one line\n"


def test_the_mail_message() -> None:
    (n,) = plan.notices(FAILOVER_RUN, ALL, None, ctx())
    channel = MailChannel("m", ("a@example.org", "b@example.org"))
    msg = deliver.mail_message(channel, n, "blowfish.example.org")
    assert msg["From"] == "kissha@blowfish.example.org"
    assert msg["To"] == "a@example.org, b@example.org"
    assert msg["Subject"] == n["title"]
    assert msg["Message-ID"].endswith("@blowfish.example.org>")
    assert msg["Date"] and msg["X-Kissha-Event"] == "failover"
    text = msg.get_content()
    assert "now: master blowfish, standby blowfish" in text
    assert "what to do: Find out why fishfinger fails the probes above" in text
    assert text.endswith("-- kissha on blowfish (event 1, 2)\n")


def test_titles_are_one_line_and_bounded() -> None:
    long = ev(1, "error", message="line one\nline two " + "x" * 500)
    (n,) = plan.notices([long], ALL, None, ctx())
    assert "\n" not in n["title"] and len(n["title"]) <= render.MAX_TITLE
    assert n["title"].startswith("kissha: error on blowfish: line one line two xxx")


def test_status_notify_needs_a_notify_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kissha.cli import main

    path = tmp_path / "kissha.toml"
    path.write_text(
        '[nodes.a]\nfqdn = "a.example.org"\nipv4 = "198.51.100.11"\n'
        '[nodes.b]\nfqdn = "b.example.org"\nipv4 = "198.51.100.12"\n'
        f'[dns]\nzones_dir = "{tmp_path}"\n'
    )
    assert main(["-c", str(path), "status", "--notify"]) == 2
    assert "--notify needs a [notify] table" in capsys.readouterr().err
