"""The `planloop` command's own sentences in zh-CN (the default, as ``[server] locale``) and en-US.

One key, one sentence per locale, ``str.format`` placeholders, looked up through
``cards.i18n.Catalogue`` as the cards' and the doctor's texts are. The locale is the config's
``[server] locale``, read before the config is validated, so even a refusal of the config or of an
argument speaks the team's language; no config means zh-CN. Names, paths, ids and the reasons
other modules give (a team file's problems, a driver's error) are shown as they are.
tests/test_cli_texts.py checks both catalogues have the same keys and placeholders.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from bot.config import find_config
from cards.i18n import Catalogue
from storage.backup import REFUSALS

ZH: dict[str, str] = {
    # bot/cli/commands.py
    "failure": "planloop: {reason}",
    "config_problem": "config: {problem}",
    "no_database": "没有数据库 {path}：先运行 `planloop db upgrade`，或用 --config PATH 指向团队的 planloop.toml",
    "bad_at": "--at：不是 ISO 日期时间：{value}（例如 2026-11-30T09:00）",
    "db_open": "打不开数据库 {where}：{reason}",
    "db_no_folder": "（文件夹 {folder} 不存在）",
    "db_revision": "数据库已在版本 {revision}",
    "db_backup": "已备份：{done}",
    "db_restore": "已恢复：{done}",
    "db_restore_next": "下一步：planloop db upgrade（较旧备份的表结构），然后启动 serve 和 worker",
    "cannot_read": "{path}：无法读取（{reason}）",
    "bad_toml": "{path}：不是有效的 TOML（{reason}）",
    "path_problem": "{path}：{problem}",
    "warning": "警告：{line}",
    "changed": "已更改 {count} 项",
    "would_change": "将更改 {count} 项（--dry-run，没有写入）",
    "no_changes": "没有变化",
    "bad_week": "--week：{reason}",
    "bad_until": "--until：{reason}",
    "xlsx_to_terminal": "--format xlsx 输出的是二进制文件：请加 -o 文件名.xlsx",
    "wrote": "已写入 {path}",
    "export_of_other_week": "{file} 是 {found} 的导出，不是 {week}",
    "keys_unreadable": "{reason}；没有做任何更改（轮换完成前，请在 server.secret_key 里保留旧密钥）",
    "resealed": "已用最新的密钥重新加密 {count} 项",
    "run_week_and_at": "planloop run：--week 和 --at 只能给一个",
    "run_problem": "planloop run：{reason}",
    "run_current_rules": "planloop run：--current-rules 只用于 appraisal",
    "run_result": "{job} {period}: {status}",  # the job's own words (bot/worker/jobs.py), as in its logs
    "run_result_reason": "{job} {period}: {status} ({reason})",
    "run_messages": "消息：入队 {queued} 条，送达 {sent} 条，{dead} 条最终失败",
    "no_secret_key": (
        "planloop {what}：没有设置 server.secret_key（它签名页面链接并加密保存的密钥）；"
        "生成一个：planloop keys generate"
    ),
    "no_team": "没有 id 为 {team} 的团队",
    "switched": "团队 {team}：从 {start} 起使用模板 {template}，{end}",
    "switched_until": "到 {day} 为止",
    "switched_open": "直到再次切换",
    # storage/backup.py's refusals
    "backup.no_database": "没有数据库 {path}",
    "backup.no_backup": "没有备份文件 {path}",
    "backup.not_sqlite": "{path} 不是完好的 SQLite 数据库",
    "backup.in_memory": "内存数据库没有可备份的内容",
    "backup.tool_missing": "找不到 {tool}：请安装 PostgreSQL 客户端工具（Debian：postgresql-client）",
    "backup.tool_failed": "{tool} 失败：{output}",
    # bot/cli/sources.py
    "import_missing": "{path}：文件不存在",
    "import_problem": "planloop import：{reason}",
    "import_encoding": "编码 {label}",
    "import_header": "表头在第 {line} 行",
    "import_how": "{name}：{how}",
    "list_sep": "，",
    "name_sep": "、",
    "import_counts": (
        "读取 {read} 行：载入 {loaded} 行，拒绝 {refused} 行，跳过 {skipped} 行（合计/空行/备注）；"
        "数值新增 {inserted}，更新 {updated}，未变 {unchanged}"
    ),
    "import_not_imported": "未导入的列：{columns}",
    "import_unmapped": "未归类的售后原因（计入“其他”，可在 [aftersales] causes 里归类）：{reasons}",
    "import_more_errors": "……另有 {count} 处错误未列出",
    "sources_none": "没有配置任何数据源（[[sources]]）",
    "sources_no_dates": "无日期",
    "sources_would_load": "    会载入 {samples} 个数值（{days}），读取 {read} 行，拒绝 {refused} 行",
    # bot/cli/outbox.py
    "outbox_empty": "没有等管理员处理的消息：没有状态未知或已放弃的消息",
    "outbox_no_message": "planloop outbox resend：没有消息 {id}",
    "outbox_not_resendable": "planloop outbox resend：{id} 的状态是 {was}，不是 unknown 或 dead；无需处理",
    "outbox_requeued": "{id}：原状态 {was}，已重新排队；worker 会发送它（从第一个尚未被平台接受的部分开始）",
    # bot/cli/tokens.py
    "token_problem": "planloop token create：{reason}",
    "token_created": "令牌 {id}（{name}）：{scopes}",
    "token_team": "，限团队 {team}",
    "token_expires": "到期：{at}",
    "token_secret_once": "令牌如下（只显示这一次；数据库里只保存它的哈希）：",
    "token_row": "{id}  {prefix}…  {name}  {state}  权限={scopes}  团队={team}  到期={expires}  最近使用={used}",
    "token_never": "从不",
    "token_none": "没有 API 令牌：planloop token create --name 名称 --scopes …",
    "token_no_such": "planloop token revoke：没有令牌 {id}",
    "token_revoked": "令牌 {id} 已吊销：从现在起会被拒绝",
    # bot/cli/console.py
    "console_bad_minutes": "planloop console link：--minutes 必须在 1–{most} 之间",
    "console_no_person": "planloop console link：没有在职的人员 {person}（见团队文件的 [[people]]）",
    "console_link_note": "只能用一次，{minutes} 分钟内有效，以 {name}（{id}）的身份登录",
    "console_signed_out": "已让{who}退出：吊销了 {count} 个会话和未用的登录链接",
    "console_everyone": "所有人",
    "console_not_admin": "planloop console link：{person} 不在 planloop.toml 的 [server] admins 里，不能这样创建（只有管理员可以）",
    "console_bad_id": "planloop console link：--person 和 --team 只能用字母、数字和 _-.，最长 64 个字符",
    # bot/cli/config_export.py
    "config_export_header": "planloop config export：{at} 数据库中的当前配置",
    "config_export_apply": "用 planloop apply 导入（先加 --dry-run 看会改什么）",
    "config_export_env": "群机器人的地址和密钥不写进文件：导入前请设置环境变量 {name}",
    "config_exported": "已写入 {path}：{teams} 个团队、{people} 人、{kpis} 个 KPI、{templates} 个模板",
    "cannot_write": "无法写入 {path}：{reason}",
    # bot/demo/run.py
    "demo_port": "端口 {port} 无法使用（{reason}）：换一个端口，例如 planloop demo --port {next}",
    "demo_story": "示例团队已就绪：过去四周的计划、考核和周初汇总，以及本周的计划（1 人未交、1 项落后）",
    "demo_started": "planloop demo 已启动：打开 http://{host}:{port}/sim/ （数据在 {data}；Ctrl-C 停止）",
    "demo_stopped": "planloop demo 已停止",
    "demo_console": "组长的网页控制台（一次性登录链接，60 分钟内有效）：{url}",
}

EN: dict[str, str] = {
    "failure": "planloop: {reason}",
    "config_problem": "config: {problem}",
    "no_database": "no database at {path}: run `planloop db upgrade` first, or pass --config PATH to the team's planloop.toml",
    "bad_at": "--at: not an ISO date-time: {value} (e.g. 2026-11-30T09:00)",
    "db_open": "cannot open the database {where}: {reason}",
    "db_no_folder": " (the folder {folder} does not exist)",
    "db_revision": "database is at revision {revision}",
    "db_backup": "backup: {done}",
    "db_restore": "restore: {done}",
    "db_restore_next": "next: planloop db upgrade (an older backup's schema), then start serve and worker",
    "cannot_read": "{path}: cannot read ({reason})",
    "bad_toml": "{path}: not valid TOML ({reason})",
    "path_problem": "{path}: {problem}",
    "warning": "warning: {line}",
    "changed": "{count} changed",
    "would_change": "{count} would change (--dry-run, nothing written)",
    "no_changes": "no changes",
    "bad_week": "--week: {reason}",
    "bad_until": "--until: {reason}",
    "xlsx_to_terminal": "--format xlsx writes a binary file: add -o FILE.xlsx",
    "wrote": "wrote {path}",
    "export_of_other_week": "{file} is the export of {found}, not {week}",
    "keys_unreadable": "{reason}; nothing was changed (keep the old key in server.secret_key until rotated)",
    "resealed": "{count} re-sealed with the newest key",
    "run_week_and_at": "planloop run: give --week or --at, not both",
    "run_problem": "planloop run: {reason}",
    "run_current_rules": "planloop run: --current-rules is for the appraisal",
    "run_result": "{job} {period}: {status}",
    "run_result_reason": "{job} {period}: {status} ({reason})",
    "run_messages": "messages: {queued} queued, {sent} delivered, {dead} failed for good",
    "no_secret_key": (
        "planloop {what}: server.secret_key is not set (it signs page links and encrypts secrets "
        "at rest); generate one with: planloop keys generate"
    ),
    "no_team": "no team with id {team}",
    "switched": "team {team}: template {template} from {start} {end}",
    "switched_until": "until {day}",
    "switched_open": "until further notice",
    **{f"backup.{key}": sentence for key, sentence in REFUSALS.items()},  # storage/backup.py's own
    "import_missing": "{path}: no such file",
    "import_problem": "planloop import: {reason}",
    "import_encoding": "encoding {label}",
    "import_header": "header on line {line}",
    "import_how": "{name}: {how}",
    "list_sep": ", ",
    "name_sep": ", ",
    "import_counts": (
        "read {read} rows: {loaded} loaded, {refused} refused, {skipped} skipped (totals, blank lines, notes); "
        "values {inserted} new, {updated} updated, {unchanged} unchanged"
    ),
    "import_not_imported": "columns not imported: {columns}",
    "import_unmapped": "after-sales reasons not sorted (counted as “other”; sort them in [aftersales] causes): {reasons}",
    "import_more_errors": "… and {count} more errors not listed",
    "sources_none": "no data sources are configured ([[sources]])",
    "sources_no_dates": "no dates",
    "sources_would_load": "    would load {samples} values ({days}), {read} rows read, {refused} refused",
    "outbox_empty": "nothing waits for an admin: no unknown or dead messages",
    "outbox_no_message": "planloop outbox resend: no message {id}",
    "outbox_not_resendable": "planloop outbox resend: {id} is {was}, not unknown or dead; nothing to do",
    "outbox_requeued": "{id}: was {was}, queued again; the worker sends it (from the first part not yet accepted)",
    "token_problem": "planloop token create: {reason}",
    "token_created": "token {id} ({name}): {scopes}",
    "token_team": ", team {team}",
    "token_expires": "expires {at}",
    "token_secret_once": "the token (shown only now; only its hash is kept):",
    "token_row": "{id}  {prefix}…  {name}  {state}  scopes={scopes}  team={team}  expires={expires}  last_used={used}",
    "token_never": "never",
    "token_none": "no API tokens: planloop token create --name NAME --scopes …",
    "token_no_such": "planloop token revoke: no token {id}",
    "token_revoked": "token {id} revoked: it is refused from now on",
    "console_bad_minutes": "planloop console link: --minutes must be 1–{most}",
    "console_no_person": "planloop console link: no active person {person} (see the team file's [[people]])",
    "console_link_note": "works once, for {minutes} minutes, signs in as {name} ({id})",
    "console_signed_out": "signed out {who}: {count} session(s) and unused link(s) revoked",
    "console_everyone": "everyone",
    "console_not_admin": "planloop console link: {person} is not in [server] admins of planloop.toml, so cannot be created this way (admins only)",
    "console_bad_id": "planloop console link: --person and --team take letters, digits and _-. only, at most 64 characters",
    # bot/cli/config_export.py
    "config_export_header": "planloop config export: the configuration in the database at {at}",
    "config_export_apply": "import it with planloop apply (add --dry-run first to see what would change)",
    "config_export_env": "team robot webhooks and secrets are not written: set the environment variable {name} before applying",
    "config_exported": "wrote {path}: {teams} teams, {people} people, {kpis} KPIs, {templates} templates",
    "cannot_write": "cannot write {path}: {reason}",
    "demo_port": "port {port} cannot be used ({reason}): choose another, e.g. planloop demo --port {next}",
    "demo_story": (
        "the example team is ready: four past weeks of plans, appraisals and Monday summaries, "
        "and this week's plans (1 person missing, 1 item lagging)"
    ),
    "demo_started": "planloop demo is running: open http://{host}:{port}/sim/ (data in {data}; Ctrl-C stops)",
    "demo_stopped": "planloop demo stopped",
    "demo_console": "the leader's web console (one-time sign-in link, valid for 60 minutes): {url}",
}

CATALOGUES = {"zh-CN": ZH, "en-US": EN}


def texts(locale: str) -> Catalogue:
    return Catalogue(CATALOGUES, locale)


def config_locale(path: Path | None) -> str:
    """``[server] locale`` of the config at ``path``, read without validating the rest (a config
    with problems is refused in its own language); zh-CN when there is none or it is unreadable."""
    if path is None:
        return "zh-CN"
    try:
        server = tomllib.loads(path.read_text(encoding="utf-8")).get("server", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "zh-CN"
    locale = server.get("locale") if isinstance(server, dict) else None
    return locale if isinstance(locale, str) and locale in CATALOGUES else "zh-CN"


def for_config(explicit: str | None) -> Catalogue:
    """The texts of the config a command runs with (``--config``, ``$PLANLOOP_CONFIG``, ./planloop.toml)."""
    return texts(config_locale(find_config(explicit)))
