"""Write the generated reference pages: the CLI from the argument parsers, the configuration
reference from bot/config_schema.py.

Run `python docs/gen_reference.py` after changing a command; `tests/test_docs.py` fails while a
committed page differs from what this writes, so the reference never goes stale.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    found: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((name, sub))
    return found


def _walk(
    parser: argparse.ArgumentParser, path: list[str]
) -> list[tuple[list[str], argparse.ArgumentParser]]:
    out = [(path, parser)]
    for name, sub in _subcommands(parser):
        out.extend(_walk(sub, [*path, name]))
    return out


def cli_page() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal: fix it for a stable page
    from bot.cli import build_parser

    lines = [
        "# CLI reference",
        "",
        "Generated from the argument parsers by `python docs/gen_reference.py`; do not edit by hand.",
        "Exit codes: 0 done, 1 failed (message on stderr), 2 usage or configuration error.",
        "",
    ]
    for path, parser in _walk(build_parser(), ["planloop"]):
        if len(path) > 1:
            lines += [f"## `{' '.join(path)}`", ""]
        lines += ["```text", parser.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


def _cell(text: str) -> str:
    """A table cell: pipes escaped, and <…> outside code spans shown rather than taken as HTML."""
    parts = text.replace("|", "\\|").replace("\n", " ").split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _key_table(keys: dict) -> list[str]:
    from bot.config_schema import NO_DEFAULT

    lines = [
        "| Key | Type | Default | Required | Secret | Example | Meaning |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in keys.values():
        if key.default_text:
            default = key.default_text
        elif key.default is NO_DEFAULT:
            default = "—"
        else:
            default = f"`{_toml_value(key.default)}`"
        meaning = key.description
        if key.choices:
            meaning += " One of: " + ", ".join(f"`{c}`" for c in key.choices) + "."
        lines.append(
            f"| `{key.name}` | {key.type} | {_cell(default)} | {'yes' if key.required else ''} | "
            f"{'yes' if key.secret else ''} | `{_cell(key.example)}` | {_cell(meaning)} |"
        )
    return [*lines, ""]


def configuration_page() -> str:
    from bot import config_schema as schema

    total = (
        len(schema.SERVER)
        + len(schema.SIMULATOR)
        + len(schema.AFTERSALES)
        + len(schema.WEBHOOKS)
        + len(schema.BOT_COMMON)
        + sum(len(k) for k in schema.BOTS.values())
        + len(schema.SOURCE_COMMON)
        + sum(len(k) for k in schema.SOURCES.values())
    )
    lines = [
        "# Configuration reference (`planloop.toml`)",
        "",
        "Generated from `bot/config_schema.py` by `python docs/gen_reference.py`; do not edit by hand.",
        f"{total} keys in all (a key shared by several platforms or source kinds is counted in each).",
        "",
        "planloop reads `planloop --config PATH`, else `$PLANLOOP_CONFIG`, else `./planloop.toml`;",
        "without a file it runs on the defaults (SQLite in the working directory). The file is checked",
        "when it is loaded: every problem is reported on its own line (for example",
        '`server.wokers: unknown key — did you mean "workers"?`), and nothing starts until all are fixed.',
        "",
        "**Secret** keys take a literal, `env:NAME` (an environment variable) or `file:/path` (a file's",
        "content, e.g. a Docker or Kubernetes secret); they are never printed or logged. Keys marked",
        "**required** must be present for the entry to load. 配置中的密钥可写成明文、`env:变量名`",
        "或 `file:/路径`；标注 required 的键必须填写。",
        "",
        "See [the annotated example](../admin/configuration.md) for a whole file.",
        "",
        "## `[server]`",
        "",
        *_key_table(schema.SERVER),
        "## `[simulator]`",
        "",
        *_key_table(schema.SIMULATOR),
        "## `[aftersales]`",
        "",
        *_key_table(schema.AFTERSALES),
        "## `[[webhooks]]`",
        "",
        "Outgoing webhooks: each event is POSTed to `url`, signed with `secret` (see the API",
        "reference, *Outgoing webhooks*). An address inside the network is refused unless",
        "`allow_private = true`.",
        "",
        *_key_table(schema.WEBHOOKS),
        "## `[[bots]]`",
        "",
        "One entry per chat app. Every entry has these keys; the rest depend on `platform` and",
        "`connection`.",
        "",
        *_key_table(schema.BOT_COMMON),
    ]
    for (platform, connection), keys in schema.BOTS.items():
        if not keys:
            lines += [f'### `platform = "{platform}"`', "", "No further keys.", ""]
            continue
        lines += [f'### `platform = "{platform}"`, `connection = "{connection}"`', ""]
        lines += _key_table(keys)
    lines += [
        "## `[[sources]]`",
        "",
        "One entry per metric source. Every entry has these keys; the rest depend on `kind`.",
        "",
        *_key_table(schema.SOURCE_COMMON),
    ]
    for kind, keys in schema.SOURCES.items():
        lines += [f'### `kind = "{kind}"`', "", *_key_table(keys)]
    return "\n".join(lines).rstrip() + "\n"


PAGES = {
    HERE / "reference" / "cli.md": cli_page,
    HERE / "reference" / "configuration.md": configuration_page,
}


def main() -> int:
    for path, make in PAGES.items():
        path.write_text(make())
        print(f"wrote {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
