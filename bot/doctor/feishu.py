"""Feishu / Lark checks: tenant token, scopes, long connection or webhook, groups, people.

Facts (docs/doctor.md lists which were confirmed only from documentation):
- token: ``POST /open-apis/auth/v3/tenant_access_token/internal {app_id, app_secret}`` ->
  ``{code, msg, tenant_access_token, expire}``; a non-zero ``code`` is Feishu's refusal
  (10003 bad app_id, 10014 bad secret, per Feishu's general error codes).
- scopes: ``GET /open-apis/application/v6/scopes`` ("查询租户授权状态", no scope needed) ->
  ``data.scopes[{scope_name, grant_status: 1 granted | 2 not granted, scope_type}]``; a scope the
  app never requested is absent. Any API answers ``99991672`` with
  ``error.permission_violations[{subject}]`` when a scope is missing.
- groups: ``GET /open-apis/im/v1/chats/:chat_id/members/is_in_chat`` -> ``data.is_in_chat``
  for the caller (the bot); 232006 invalid chat_id, 232025 bot ability off, 232010 other tenant.
- people: ``GET /open-apis/contact/v3/users/:user_id?user_id_type=open_id``; 41050 = outside
  the app's contact range (通讯录权限范围); another code = the id does not resolve.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from bot.doctor.common import Context, host_of, stream_line, unreachable, webhook_line
from bot.doctor.http import Http, Reply, Unreachable
from bot.doctor.model import Line, fail, ok, skip

REQUIRED_SCOPES = ("im:message", "im:message:send_as_bot", "contact:user.id:readonly")
MISSING_SCOPE = 99991672
RATE_LIMITED = 99991400  # older APIs answer it with HTTP 400 rather than 429
NOT_IN_CONTACT_RANGE = 41050
CHAT_ERRORS = {
    232006: "group.unknown",
    232009: "group.unknown",
    232025: "feishu.bot_ability",
    232010: "group.other_tenant",
}


def console(ctx: Context) -> str:
    base = str(ctx.bot.get("api_base", "https://open.feishu.cn"))
    site = "https://open.larksuite.com" if "larksuite" in base else "https://open.feishu.cn"
    return f"{site}/app/{ctx.bot.get('app_id', '')}"


def _code(reply: Reply) -> tuple[int, str]:
    try:
        return int(reply.body.get("code", -1)), str(reply.body.get("msg", ""))[:200]
    except (TypeError, ValueError):
        return -1, str(reply.body.get("msg", ""))[:200]


def missing_scopes(body: dict[str, Any]) -> list[str]:
    """The scopes a 99991672 answer names (``error.permission_violations[].subject``)."""
    violations = (body.get("error") or {}).get("permission_violations") or []
    return [str(v.get("subject")) for v in violations if isinstance(v, dict) and v.get("subject")]


def check(ctx: Context) -> Iterator[Line]:
    tr = ctx.tr
    base = str(ctx.bot.get("api_base", "https://open.feishu.cn")).rstrip("/")
    http = Http(
        ctx.services.http,
        [base],
        timeout=ctx.timeout,
        retry_after_headers=("x-ogw-ratelimit-reset", "Retry-After"),
    )
    app = console(ctx)

    def gone(exc: Unreachable) -> str:
        return unreachable(tr, "feishu", host_of(base), exc)

    def refused(reply: Reply) -> str:
        code, msg = _code(reply)
        scopes = missing_scopes(reply.body) if code == MISSING_SCOPE else []
        if scopes:
            return tr("feishu.scope_missing_call", scopes=", ".join(scopes), code=code)
        if code == RATE_LIMITED:
            return tr("rate_limited_code", platform=tr("platform.feishu"), code=code)
        return tr("refused", platform=tr("platform.feishu"), code=code, msg=msg)

    # 1. credentials
    check_name = tr("check.credentials")
    try:
        reply = http.call(
            "POST",
            f"{base}/open-apis/auth/v3/tenant_access_token/internal",
            json_body={"app_id": str(ctx.bot.get("app_id", "")), "app_secret": ctx.bot.secret("app_secret")},
        )
    except Unreachable as exc:
        yield fail(check_name, gone(exc))
        yield skip(tr("check.rest"), tr("rest.skipped"))
        return
    code, _msg = _code(reply)
    token = reply.body.get("tenant_access_token")
    if code != 0 or not isinstance(token, str) or not token:
        yield fail(check_name, refused(reply), tr("feishu.fix.credentials", console=app))
        yield skip(tr("check.rest"), tr("rest.skipped"))
        return
    yield ok(check_name, tr("feishu.credentials.ok"))
    auth = {"Authorization": f"Bearer {token}"}

    # 2. scopes the features need
    yield from _scopes(ctx, http, base, auth, gone, refused, app)

    # 3. how events arrive
    yield stream_line(ctx, tr("feishu.fix.stream", console=app))
    yield webhook_line(ctx, [("", "")], tr("feishu.where.webhook", console=app))

    # 4. group chats
    for group in ctx.team.groups:
        name = tr("check.group", team=group.team_name, chat=group.chat_id)
        try:
            reply = http.call(
                "GET",
                f"{base}/open-apis/im/v1/chats/{quote(group.chat_id, safe='')}/members/is_in_chat",
                headers=auth,
            )
        except Unreachable as exc:
            yield fail(name, gone(exc))
            continue
        code, _msg = _code(reply)
        if code == 0 and (reply.body.get("data") or {}).get("is_in_chat") is True:
            yield ok(name, tr("group.ok"))
        elif code == 0:
            yield fail(name, tr("group.bot_missing"), tr("feishu.fix.add_bot"))
        elif code in CHAT_ERRORS:
            key = CHAT_ERRORS[code]
            yield fail(name, tr(key, code=code), tr(f"feishu.fix.{key.split('.')[-1]}", console=app))
        else:
            yield fail(
                name, refused(reply), tr("feishu.fix.scopes", console=app) if code == MISSING_SCOPE else ""
            )

    # 5. everyone's open_id
    yield from _people(ctx, http, base, auth, gone, refused, app)


def _scopes(ctx, http, base, auth, gone, refused, app) -> Iterator[Line]:  # noqa: ANN001
    tr = ctx.tr
    try:
        reply = http.call("GET", f"{base}/open-apis/application/v6/scopes", headers=auth)
    except Unreachable as exc:
        yield fail(tr("check.scopes"), gone(exc))
        return
    code, _msg = _code(reply)
    if code != 0:
        yield fail(tr("check.scopes"), refused(reply), tr("feishu.fix.scopes", console=app))
        return
    status: dict[str, int] = {}
    for item in (reply.body.get("data") or {}).get("scopes") or []:
        if isinstance(item, dict) and item.get("scope_type", "tenant") == "tenant":
            try:
                status[str(item.get("scope_name"))] = int(item.get("grant_status") or 0)
            except (TypeError, ValueError):
                continue
    for scope in REQUIRED_SCOPES:
        name = tr("check.scope", scope=scope)
        if status.get(scope) == 1:
            yield ok(name, tr("scope.granted"))
        elif scope in status:
            yield fail(name, tr("feishu.scope.not_granted"), tr("feishu.fix.grant", console=app))
        else:
            yield fail(name, tr("feishu.scope.not_requested"), tr("feishu.fix.scopes", console=app))


def _people(ctx, http, base, auth, gone, refused, app) -> Iterator[Line]:  # noqa: ANN001
    tr = ctx.tr
    people = ctx.team.people
    if not people:
        yield skip(tr("check.people"), tr("people.none"))
        return
    bad = 0
    for member in people:
        name = tr("check.person", name=member.name, id=member.external_id)
        try:
            reply = http.call(
                "GET",
                f"{base}/open-apis/contact/v3/users/{quote(member.external_id, safe='')}",
                params={"user_id_type": "open_id"},
                headers=auth,
            )
        except Unreachable as exc:
            yield fail(name, gone(exc))
            return
        code, _msg = _code(reply)
        if code == 0:
            continue
        bad += 1
        if code == MISSING_SCOPE:  # the same for everyone: say it once
            yield fail(tr("check.people"), refused(reply), tr("feishu.fix.scopes", console=app))
            return
        if code == NOT_IN_CONTACT_RANGE:
            yield fail(
                name, tr("feishu.person.out_of_range", code=code), tr("feishu.fix.contact_range", console=app)
            )
        else:
            yield fail(name, tr("person.unknown", detail=refused(reply)), tr("fix.people_ids"))
    if not bad:
        yield ok(tr("check.people"), tr("people.ok", count=len(people)))
