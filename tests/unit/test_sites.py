"""The table of sites: defaults, derived names, kinds, and the names in config order."""

from __future__ import annotations

from pathlib import Path

from kissha import config as configmod
from kissha.config.sites import Site, SiteName

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


def test_sites_parsed_with_defaults_and_derived_names() -> None:
    cfg = configmod.load(CONFIG_DIR / "good-sites.toml")
    assert cfg.sites == (
        Site("example.org", ("www.example.org",), ("standby.example.org",), ("https",)),
        Site(
            "example.net",
            ("www.example.net", "www.paul.example.net"),
            ("standby.example.net", "standby.paul.example.net"),
            ("https", "gemini"),
        ),
        Site("foo.zone", (), (), ()),
    )
    assert cfg.sites[0].names == ("example.org", "www.example.org", "standby.example.org")


def test_every_name_with_its_kind_in_config_order() -> None:
    cfg = configmod.load(CONFIG_DIR / "good-sites.toml")
    rows = [(n.name, n.kind, n.role, n.serve, n.site, n.node) for n in cfg.site_names()]
    org, net, both = "example.org", "example.net", ("https", "gemini")
    assert rows == [
        (org, "site", "master", ("https",), org, None),
        ("www.example.org", "alias", "master", ("https",), org, None),
        ("standby.example.org", "standby", "standby", ("https",), org, None),
        (net, "site", "master", both, net, None),
        ("www.example.net", "alias", "master", both, net, None),
        ("www.paul.example.net", "alias", "master", both, net, None),
        ("standby.example.net", "standby", "standby", both, net, None),
        ("standby.paul.example.net", "standby", "standby", both, net, None),
        ("foo.zone", "site", "master", (), "foo.zone", None),
        # A node's own FQDN: https always; gemini where a gemini probe applies to it.
        ("fishfinger.example.org", "node", "node", both, None, "fishfinger"),
        ("blowfish.example.org", "node", "node", ("https",), None, "blowfish"),
    ]


def test_no_sites_still_lists_the_node_fqdns() -> None:
    cfg = configmod.load(CONFIG_DIR / "good-minimal.toml")
    assert cfg.sites == ()
    assert cfg.site_names() == (
        SiteName("fishfinger.example.org", "node", ("https",), node="fishfinger"),
        SiteName("blowfish.example.org", "node", ("https",), node="blowfish"),
    )


def test_certs_defaults_and_layouts(tmp_path: Path) -> None:
    base = (CONFIG_DIR / "good-sites.toml").read_text()
    path = tmp_path / "k.toml"
    path.write_text(base + '\n[certs]\nnode = "blowfish"\n')
    cc = configmod.load(path).certs
    assert cc is not None
    assert cc.directory == "https://acme-v02.api.letsencrypt.org/directory"
    assert cc.strategy == "every-node"
    assert cc.path("cert", "example.org") == Path("/etc/ssl/example.org.crt")
    assert cc.path("key", "example.org") == Path("/etc/ssl/private/example.org.key")
    assert cc.cert_has_chain
    path.write_text(
        base + '\n[certs]\nlayout = "debian"\ndirectory = "letsencrypt-staging"\n'
        'reload = [["systemctl", "reload", "nginx"]]\nspread = "6h"\n'
    )
    cc = configmod.load(path).certs
    assert cc is not None
    assert cc.path("fullchain", "a.org") == Path("/etc/ssl/certs/a.org.fullchain.pem")
    assert not cc.cert_has_chain
    assert cc.directory.startswith("https://acme-staging-v02.")
    assert cc.reload == (("systemctl", "reload", "nginx"),)
    assert cc.spread == 6 * 3600
