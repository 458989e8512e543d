"""Render one node's files with Jinja2: the operator's template directory first, then
the templates shipped with kissha."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kissha.config import Config
from kissha.errors import ConfigError
from kissha.render.files import SPECS, FileSpec, node_path
from kissha.render.model import context

HEADER_NOTE = "rendered by kissha render; change the template, not this file"


@dataclass(frozen=True)
class Rendered:
    """One file for one node: where it goes, what it holds, how it is installed."""

    node: str
    path: str  # on the node
    content: str
    spec: FileSpec


def _environment(flavour: str, overrides: Path | None):  # type: ignore[no-untyped-def]
    import jinja2

    loaders: list[jinja2.BaseLoader] = []
    if overrides is not None:
        # DIR/FLAVOUR/NAME wins over DIR/NAME: one directory can serve both flavours.
        loaders += [
            jinja2.FileSystemLoader(str(overrides / flavour)),
            jinja2.FileSystemLoader(str(overrides)),
        ]
    loaders.append(jinja2.PackageLoader("kissha.render", f"templates/{flavour}"))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,  # a typo in a template is an error, not ""
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render_node(
    cfg: Config, node_name: str, flavour: str, config_text: str, overrides: Path | None = None
) -> list[Rendered]:
    """Every file of one node, in the flavour's order."""
    import jinja2

    node = cfg.node(node_name)
    ctx = context(cfg, node, flavour, config_text)
    ctx["header"] = HEADER_NOTE
    env = _environment(flavour, overrides)
    out: list[Rendered] = []
    for spec in SPECS[flavour]:
        if spec.only_if and not ctx[spec.only_if]:
            continue
        try:
            template = env.get_template(spec.template + ".j2")
            content = template.render(ctx)
        except jinja2.TemplateSyntaxError as exc:
            where = exc.filename or spec.template
            raise ConfigError([f"line {exc.lineno}: {exc.message}"], where) from None
        except jinja2.TemplateError as exc:
            raise ConfigError([f"{node_name}: {exc}"], spec.template + ".j2") from None
        out.append(Rendered(node_name, node_path(spec, ctx), content, spec))
    return out


def write_tree(files: list[Rendered], out: Path) -> list[Path]:
    """Write rendered files under ``out/NODE/<path on the node>``; return what was written."""
    written: list[Path] = []
    for f in files:
        target = out / f.node / f.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f.content, encoding="utf-8")
        target.chmod(f.spec.mode)
        written.append(target)
    return written
