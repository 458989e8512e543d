"""Which files each flavour renders: template, path on the node, owner, mode, the service
that reads it and the server's own syntax check. The templates decide content only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["file", "lines"]  # "lines": lines to have in a file others also write


@dataclass(frozen=True)
class FileSpec:
    template: str
    path: str  # may use {fqdn}, {web_root}, {config_path}
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    services: tuple[str, ...] = ()  # reloaded (or restarted) when this file changed
    check: tuple[str, ...] = ()  # the server's syntax check; {path}: the file
    kind: Kind = "file"
    only_if: str = ""  # a context key that must be true (e.g. "gemini_names")


OPENBSD = (
    FileSpec(
        "nsd.conf", "/var/nsd/etc/nsd.conf", 0o640, "root", "_nsd", ("nsd",),
        ("nsd-checkconf", "{path}"),
    ),
    FileSpec(
        "httpd.conf", "/etc/httpd.conf", 0o644, "root", "wheel", ("httpd",),
        ("httpd", "-n", "-f", "{path}"),
    ),
    # relayd.conf may hold secrets (the original installed it 0600).
    FileSpec(
        "relayd.conf", "/etc/relayd.conf", 0o600, "root", "wheel", ("relayd",),
        ("relayd", "-n", "-f", "{path}"),
    ),
    FileSpec("index.txt", "{web_root}/{fqdn}/index.txt", 0o644, "root", "daemon"),
    # vger, the Gemini server relayd forwards port 1965 to (the original's inetd line).
    FileSpec(
        "inetd.conf", "/etc/inetd.conf", 0o644, "root", "wheel", ("inetd",), kind="lines",
        only_if="gemini_names",
    ),
    FileSpec("crontab", "/var/cron/tabs/root", 0o600, "root", "crontab", kind="lines"),
    FileSpec("rc.conf.local", "/etc/rc.conf.local", 0o644, "root", "wheel", kind="lines"),
    FileSpec("kissha.toml", "{config_path}", 0o640, "root", "wheel"),
)  # fmt: skip

DEBIAN = (
    FileSpec(
        "nsd.conf", "/etc/nsd/nsd.conf", 0o644, "root", "nsd", ("nsd",),
        ("nsd-checkconf", "{path}"),
    ),
    FileSpec(
        "nginx.conf", "/etc/nginx/sites-enabled/kissha", 0o644, "root", "root", ("nginx",),
        ("nginx", "-t", "-q"),
    ),
    FileSpec(
        "molly-brown.conf", "/etc/molly-brown/kissha.conf", 0o644, "root", "root",
        ("molly-brown@kissha",), only_if="gemini_names",
    ),
    FileSpec("index.txt", "{web_root}/{fqdn}/index.txt"),
    *(
        FileSpec(f"kissha-{unit}", f"/etc/systemd/system/kissha-{unit}", services=("systemd",),
                 only_if=only_if)
        for unit, only_if in (
            ("failover.service", ""), ("failover.timer", ""),
            ("certs.service", "certs"), ("certs.timer", "certs"),
            ("monitor.service", "monitor"), ("monitor.timer", "monitor"),
        )
    ),
    FileSpec("kissha.toml", "{config_path}", 0o640, "root", "root"),
)  # fmt: skip

SPECS = {"openbsd": OPENBSD, "debian": DEBIAN}


def node_path(spec: FileSpec, ctx: dict[str, Any]) -> str:
    return spec.path.format(
        fqdn=ctx["node"].fqdn, web_root=ctx["web_root"], config_path=ctx["config_path"]
    )
