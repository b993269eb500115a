"""Write the generated reference pages: the CLI from the argument parsers, the configuration
reference from bot/config_schema.py, the HTTP endpoints from the web app's routes and the open
API's document, the export columns from handlers/exports.py.

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
    from bot.cli.commands import build_parser

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


def exports_page() -> str:
    from handlers.exports import flat_rows

    empty = {"week": "", "plans": [], "progress": [], "appraisals": []}
    lines = [
        "# Export formats",
        "",
        "`planloop export plans|progress|appraisals --week 2026-W48 [--team T] --format json|csv|xlsx",
        "[-o FILE]` writes one week. The open API's `GET /api/v1/plans`, `/progress` and `/appraisals`",
        "answer with the same JSON (plus `next_cursor` when a page is cut), and outgoing webhooks carry",
        "the same shapes in their `data`, so a script can move between a file, the API and an event.",
        "",
        "## JSON",
        "",
        'One object per week: `{"week": "2026-W48", "plans" | "progress" | "appraisals": [...]}`, one',
        "entry per person with `employee`, `team` and `items`. Values are in the KPI's own unit (a `%`",
        "KPI at 3.05 % is `3.05`); `progress` and `completion` are ratios (1.25 = 125 %); `weight`,",
        "`contribution` and `score` are points out of 100, and",
        "`score = clamp(Σ contribution + Σ adjustments.points, 0, max)`. A deactivated person's",
        'entries carry `"active": false`. An appraisal is the newest version, with `version`,',
        "`version_reason`, `status` (`published` or `held`), the template as in force and everything",
        "needed to recompute the score: `planloop verify appraisals --file EXPORT.json` does exactly",
        "that ([Numbers you can check](../admin/scores.md)).",
        "",
        "## CSV and XLSX",
        "",
        "One row per item (a person without items keeps one row; an appraisal's bonus or penalty is a",
        "row of kind `adjustment`), the person's columns repeated on each row. Text a spreadsheet",
        "would evaluate (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) is made inert:",
        "in CSV it gets a leading `'`, in XLSX it is always a string cell. CSV is UTF-8 with a BOM, so",
        "Excel and WPS open Chinese text correctly; xlsx is never written to a terminal.",
        "",
        "Generated from `handlers/exports.py` by `python docs/gen_reference.py`:",
        "",
    ]
    for what in ("plans", "progress", "appraisals"):
        header, _rows = flat_rows(empty, what)
        lines += [f"`{what}`: " + ", ".join(f"`{c}`" for c in header), ""]
    return "\n".join(lines)


WEBHOOK = (
    "a platform's callbacks for the bot `<bot_id>` (`feishu`, `dingtalk`, `wecom`); "
    "`<sub>` is DingTalk's `card` route for interactive-card clicks"
)

# What each route of the web app is for, by Flask endpoint. A route missing here stops the
# generator (and so tests/test_docs.py): a new URL is documented the day it is added.
ROUTES = {
    "healthz": "liveness: 200 while the process answers (the image's HEALTHCHECK)",
    "readyz": "readiness: 200 once the database answers and is migrated to head, else 503",
    "prometheus": "Prometheus metrics; `Authorization: Bearer <[server] metrics_token>` when one is set",
    "pages.show": "a signed page opened from a card (plan form, progress, appraisal, tables), expiring",
    "pages.submit": "a form posted from such a page (same-origin only, CSRF-checked)",
    "sim.page": "the chat simulator (when `[simulator] enabled`, as in `planloop demo`)",
    "sim.people": "the simulator's people",
    "sim.messages": "the simulator's transcript",
    "sim.say": "a person says a text in the simulator",
    "sim.act": "a person clicks a card button or submits a card form in the simulator",
    "static": "the simulator's static files",
    "console.team": "console home: the leader's team this week",
    "console.appraisals": "console: the week's appraisals, held weeks, appeals waiting",
    "console.decide": "console: decide an appeal",
    "console.templates": "console: which template applies to whom, switch, scenarios",
    "console.switch": "console: switch a team's template (to, until, reason)",
    "console.undo": "console: undo a team's switch",
    "console.template_edit": "console: edit a template's weights, cap, curves and grades (admins)",
    "console.data": "console: sources' last runs and errors, newest sample per metric and scope (admins; leaders: freshness)",
    "console.pull": "console: poll one source now, as planloop run poll:<id> (admins, audited)",
    "console.upload": "console: upload a report file and preview what it would import, nothing written (admins)",
    "console.preview": "console: the preview of a stored upload (the upload answers 303 here; JSON for the progress script)",
    "console.confirm": "console: import the previewed upload, kept server-side by a random id (admins, audited)",
    "console.template_check": "console: check an edited template and preview last week's scores under it",
    "console.template_save": "console: save an edited template as a new version (or preview without JS)",
    "console.scenario": "console: turn a scenario on or off",
    "console.people": "console: teams, people from the directory, leavers, the starter catalogue (admins)",
    "console.directory_pull": "console: read a bot's directory from its contacts API (admins, audited)",
    "console.add": "console: add the ticked newcomers from the directory as people (admins, audited)",
    "console.deactivate_person": "console: confirm a leaver: deactivated, history kept (admins, audited)",
    "console.save_team": "console: create a team or change its name, leader and chat (admins, audited)",
    "console.catalogue": "console: load the recommended KPIs, periods, scenarios and templates (admins, audited)",
    "console.save_person": "console: move a person to another team, role or type (admins, audited)",
    "console.save_period": "console: create or change a promotion period with the team file's checks (admins, audited)",
    "console.save_scenario": "console: create or rename a scenario (admins, audited)",
    "console.save_calendar": "console: a workday-calendar override, 调休 or an extra day off (admins, audited)",
    "console.save_kpi": "console: create or change a KPI with the team file's checks (admins, audited)",
    "console.delivery": "console: the outbox by status, stream connections",
    "console.resend": "console: send an unknown or dead message again",
    "console.login": "console sign-in page: one button per bot's platform",
    "console.oauth_start": "console: start the platform's OAuth sign-in for `<bot_id>`",
    "console.oauth_callback": "console: the platform's OAuth redirect back (state checked)",
    "console.link": "console: a one-time sign-in link (`planloop console link`), shown with a button",
    "console.link_redeem": "console: the button that spends the one-time link",
    "console.logout": "console: sign out",
}


def http_page() -> str:
    import tempfile

    from bot.config import load
    from bot.web.app import create_app
    from bot.web.webhooks import PATHS as WEBHOOK_PATHS

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "planloop.toml"
        config.write_text(
            f'[server]\ndatabase_url = "sqlite:///{tmp}/reference.db"\nsecret_key = "{"k" * 40}"\n'
            'public_url = "https://planloop.example.com"\n[simulator]\nenabled = true\n',
            encoding="utf-8",
        )
        app = create_app(load(config))
        rules = sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, sorted(r.methods or ())))
        document = app.extensions["planloop.api"].get().api_doc
    missing = sorted({r.endpoint for r in rules} - set(ROUTES))
    if missing:
        raise SystemExit(f"gen_reference: describe these routes in ROUTES: {', '.join(missing)}")
    lines = [
        "# HTTP endpoints",
        "",
        "Generated from the web app's routes and the open API's document by",
        "`python docs/gen_reference.py`; do not edit by hand. Every path is served by `planloop serve`",
        "(and by `planloop demo`); `planloop worker` serves only its health port (`/healthz`).",
        "",
        "## The web app",
        "",
        "| path | methods | what it is |",
        "|---|---|---|",
    ]
    rows = [
        (rule.rule, (rule.methods or set()) - {"HEAD", "OPTIONS"}, ROUTES[rule.endpoint]) for rule in rules
    ]
    # The webhook route is answered in front of Flask (bot/web/webhooks.py), so not in its map.
    rows += [(path, {"GET", "POST"}, WEBHOOK) for path in WEBHOOK_PATHS]
    for path, methods, what in sorted(rows, key=lambda row: (row[0], sorted(row[1]))):
        lines.append(f"| `{path}` | {', '.join(sorted(methods))} | {_cell(what)} |")
    lines += [
        "",
        "## The open API (`/api/v1`)",
        "",
        "Bearer tokens with scopes (`planloop token create`); the document is `GET /api/v1/openapi.json`",
        "and an interactive page `GET /api/v1/docs`, both served from the package. The details,",
        "errors, pages and idempotency are in [the open API's reference](api.md).",
        "",
        "| path | method | what it does |",
        "|---|---|---|",
    ]
    for path, operations in sorted(document["paths"].items()):
        for method, operation in sorted(operations.items()):
            lines.append(f"| `/api/v1{path}` | {method.upper()} | {_cell(operation.get('summary', ''))} |")
    return "\n".join(lines) + "\n"


PAGES = {
    HERE / "reference" / "cli.md": cli_page,
    HERE / "reference" / "configuration.md": configuration_page,
    HERE / "reference" / "http.md": http_page,
    HERE / "reference" / "exports.md": exports_page,
}


def main() -> int:
    for path, make in PAGES.items():
        path.write_text(make())
        print(f"wrote {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
