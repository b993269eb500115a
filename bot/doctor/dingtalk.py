"""DingTalk checks: access token, robot and card permissions, Stream or HTTP callbacks, the HTTP
card-callback route (``--fix`` registers it), groups, people.

Facts (docs/doctor.md lists which were confirmed only from documentation):
- token: ``POST {api_base}/v1.0/oauth2/accessToken {appKey, appSecret}`` -> ``{accessToken,
  expireIn}``; a refusal is HTTP 4xx ``{code, message}``.
- a missing permission is HTTP 403 ``{"code": "Forbidden.AccessDenied.AccessTokenPermissionDenied",
  "accessdenieddetail": {"requiredScopes": [...]}}`` (open-dingtalk developerpedia
  "permission-deny"). The probes below change nothing: they read a message key or update a
  card that do not exist, so a granted permission answers 4xx about the missing object.
  robot: ``POST /v1.0/robot/groupMessages/query`` (qyapi_robot_sendmsg); cards:
  ``PUT /v1.0/card/instances`` (Card.Instance.Write), ``PUT /v1.0/card/streaming``
  (Card.Streaming.Write); paths from alibabacloud-dingtalk 2.2.65 (card_1_0, robot_1_0).
- groups: ``POST /v1.0/robot/groups/robots/query {openConversationId}`` ("查询群内的机器人列表")
  -> ``{chatbotInstanceVOList: [{robotCode, name, …}]}``; 400 ``invalid.openConversationId``.
- people: ``POST {oapi_base}/topapi/v2/user/get?access_token= {userid, language}`` -> errcode 0,
  60121 (user not found), 33012 (invalid userid); the new-API token works on oapi.
- card route: ``POST /v1.0/card/callbacks/register {callbackRouteKey, callbackUrl, apiSecret,
  forceUpdate}`` -> ``{success, result: {callbackUrl, apiSecret}}``. DingTalk has no API that
  reads a registration back (card_1_0 only registers), so the doctor keeps a fingerprint of
  what ``--fix`` registered (the ``settings`` table) and re-registers with ``forceUpdate: true``,
  which makes ``--fix`` idempotent.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

from bot.doctor.common import Context, host_of, stream_line, unreachable, webhook_line
from bot.doctor.http import Http, Reply, Unreachable
from bot.doctor.model import Line, fail, ok, skip

PERMISSION_DENIED = "Forbidden.AccessDenied.AccessTokenPermissionDenied"
PROBE = "planloop-doctor-probe"
CONSOLE = "https://open-dev.dingtalk.com"
USER_NOT_FOUND = 60121
ROUTE_SETTING = "doctor:dingtalk_card_route:{bot}"


def _refusal(reply: Reply) -> tuple[str, str]:
    body = reply.body
    code = body.get("code", body.get("errcode", ""))
    msg = body.get("message", body.get("errmsg", ""))
    return str(code), str(msg)[:200]


def _required(reply: Reply) -> list[str]:
    detail = reply.body.get("accessdenieddetail") or {}
    scopes = detail.get("requiredScopes") if isinstance(detail, dict) else None
    return [str(s) for s in scopes] if isinstance(scopes, list) else []


def _rate_limited(reply: Reply) -> bool:
    """HTTP 403 Forbidden.AccessDenied.QpsLimitForAppkeyAndApi (new API) or errcode 90018 (oapi)."""
    code, _msg = _refusal(reply)
    return "QpsLimit" in code or code == "90018"


def check(ctx: Context) -> Iterator[Line]:
    tr = ctx.tr
    api = str(ctx.bot.get("api_base", "https://api.dingtalk.com")).rstrip("/")
    oapi = str(ctx.bot.get("oapi_base", "https://oapi.dingtalk.com")).rstrip("/")
    http = Http(ctx.services.http, [api, oapi], timeout=ctx.timeout)
    app_key = str(ctx.bot.get("app_key", ""))
    robot_code = str(ctx.bot.get("robot_code") or app_key)

    def gone(exc: Unreachable, url: str = api) -> str:
        return unreachable(tr, "dingtalk", host_of(url), exc)

    def refused(reply: Reply) -> str:
        code, msg = _refusal(reply)
        if _rate_limited(reply):
            return tr("rate_limited_code", platform=tr("platform.dingtalk"), code=code)
        return tr("refused", platform=tr("platform.dingtalk"), code=code or f"HTTP {reply.status}", msg=msg)

    # 1. credentials
    name = tr("check.credentials")
    try:
        reply = http.call(
            "POST",
            f"{api}/v1.0/oauth2/accessToken",
            json_body={"appKey": app_key, "appSecret": ctx.bot.secret("app_secret")},
        )
    except Unreachable as exc:
        yield fail(name, gone(exc))
        yield skip(tr("check.rest"), tr("rest.skipped"))
        return
    token = reply.body.get("accessToken")
    if reply.status != 200 or not isinstance(token, str) or not token:
        fix = "" if _rate_limited(reply) else tr("dingtalk.fix.credentials", console=CONSOLE)
        yield fail(name, refused(reply), fix)
        yield skip(tr("check.rest"), tr("rest.skipped"))
        return
    yield ok(name, tr("dingtalk.credentials.ok"))
    auth = {"x-acs-dingtalk-access-token": token}

    def probe(check_name: str, scope: str, method: str, path: str, body: dict[str, Any]) -> Line:
        """A call that changes nothing; only a 403 naming a permission says the scope is missing."""
        try:
            reply = http.call(method, f"{api}{path}", json_body=body, headers=auth)
        except Unreachable as exc:
            return fail(check_name, gone(exc))
        code, _msg = _refusal(reply)
        if reply.status == 403 and code == PERMISSION_DENIED:
            scopes = ", ".join(_required(reply)) or scope
            return fail(
                check_name,
                tr("dingtalk.scope_missing", scopes=scopes),
                tr("dingtalk.fix.scopes", scopes=scopes, console=CONSOLE),
            )
        if reply.status in (401, 403):
            return fail(check_name, refused(reply))
        if "robotcode" in code.lower():
            return fail(
                check_name,
                tr("dingtalk.robot_code", robot=robot_code, detail=refused(reply)),
                tr("dingtalk.fix.robot", console=CONSOLE),
            )
        return ok(check_name, tr("scope.granted"))

    # 2. permissions
    yield probe(
        tr("check.robot"),
        "qyapi_robot_sendmsg",
        "POST",
        "/v1.0/robot/groupMessages/query",
        {"robotCode": robot_code, "processQueryKey": PROBE},
    )
    cards = bool(ctx.bot.get("card_template_id"))
    for scope, method, path, body in (
        (
            "Card.Instance.Write",
            "PUT",
            "/v1.0/card/instances",
            {"outTrackId": PROBE, "cardData": {"cardParamMap": {}}},
        ),
        (
            "Card.Streaming.Write",
            "PUT",
            "/v1.0/card/streaming",
            {
                "outTrackId": PROBE,
                "guid": uuid.uuid4().hex,
                "key": "content",
                "content": "",
                "isFull": True,
                "isFinalize": True,
            },
        ),
    ):
        name = tr("check.scope", scope=scope)
        yield probe(name, scope, method, path, body) if cards else skip(name, tr("dingtalk.no_cards"))

    # 3. how events arrive
    yield stream_line(ctx, tr("dingtalk.fix.stream", console=CONSOLE))
    paths = [(tr("dingtalk.label.robot"), "robot")]
    if ctx.bot.secret("token") and ctx.bot.secret("aes_key"):
        paths.append((tr("dingtalk.label.events"), ""))
    yield webhook_line(ctx, paths, tr("dingtalk.where.webhook", console=CONSOLE))
    yield _card_route(ctx, http, api, auth, gone, refused, cards)

    # 4. group chats: the robot must be among the group's robots
    for group in ctx.team.groups:
        name = tr("check.group", team=group.team_name, chat=group.chat_id)
        try:
            reply = http.call(
                "POST",
                f"{api}/v1.0/robot/groups/robots/query",
                json_body={"openConversationId": group.chat_id},
                headers=auth,
            )
        except Unreachable as exc:
            yield fail(name, gone(exc))
            continue
        if reply.status == 200:
            robots = reply.body.get("chatbotInstanceVOList") or []
            if any(isinstance(r, dict) and r.get("robotCode") == robot_code for r in robots):
                yield ok(name, tr("group.ok"))
            else:
                yield fail(name, tr("group.bot_missing"), tr("dingtalk.fix.add_bot"))
        elif reply.status == 403 and _refusal(reply)[0] == PERMISSION_DENIED:
            scopes = ", ".join(_required(reply))
            yield fail(
                name,
                tr("dingtalk.scope_missing", scopes=scopes),
                tr("dingtalk.fix.scopes", scopes=scopes, console=CONSOLE),
            )
        else:
            yield fail(name, tr("group.unknown_detail", detail=refused(reply)), tr("fix.group_id"))

    # 5. everyone's userid
    people = ctx.team.people
    if not people:
        yield skip(tr("check.people"), tr("people.none"))
        return
    bad = 0
    for member in people:
        name = tr("check.person", name=member.name, id=member.external_id)
        try:
            reply = http.call(
                "POST",
                f"{oapi}/topapi/v2/user/get",
                params={"access_token": token},
                json_body={"userid": member.external_id, "language": "zh_CN"},
            )
        except Unreachable as exc:
            yield fail(name, gone(exc, oapi))
            return
        code, msg = _refusal(reply)
        if code == "0":
            continue
        bad += 1
        detail = tr("refused", platform=tr("platform.dingtalk"), code=code, msg=msg)
        yield fail(name, tr("person.unknown", detail=detail), tr("fix.people_ids"))
    if not bad:
        yield ok(tr("check.people"), tr("people.ok", count=len(people)))


# ---------------------------------------------------------------- the HTTP card-callback route


def route_fingerprint(route_key: str, url: str, secret: str) -> str:
    """What identifies a registration; a hash, so the secret itself is never stored twice."""
    return hashlib.sha256(f"{route_key}\n{url}\n{secret}".encode()).hexdigest()


def _card_route(ctx, http, api, auth, gone, refused, cards) -> Line:  # noqa: ANN001
    tr = ctx.tr
    name = tr("check.card_route")
    if ctx.stream:
        return skip(name, tr("card_route.stream"))
    if not cards:
        return skip(name, tr("dingtalk.no_cards"))
    route_key = str(ctx.bot.get("card_callback_route_key") or "")
    secret = ctx.bot.secret("card_callback_secret")
    if not route_key or not secret:
        return fail(name, tr("card_route.config"), tr("card_route.fix_config"))
    url = f"{ctx.settings.public_url}/webhooks/dingtalk/{ctx.bot.id}/card"
    fingerprint = route_fingerprint(route_key, url, secret)
    key = ROUTE_SETTING.format(bot=ctx.bot.id)
    recorded = _recorded(ctx, key)
    if not ctx.fix:
        if recorded is None:
            return fail(name, tr("card_route.unknown", key=route_key), tr("card_route.fix"))
        if recorded.get("fingerprint") != fingerprint:
            return fail(name, tr("card_route.changed", key=route_key), tr("card_route.fix"))
        return ok(name, tr("card_route.recorded", key=route_key, url=url, at=recorded.get("at", "")))
    try:
        reply = http.call(
            "POST",
            f"{api}/v1.0/card/callbacks/register",
            json_body={
                "callbackRouteKey": route_key,
                "callbackUrl": url,
                "apiSecret": secret,
                "forceUpdate": True,
            },
            headers=auth,
        )
    except Unreachable as exc:
        return fail(name, gone(exc))
    if reply.status != 200 or reply.body.get("success") is False:
        code, _msg = _refusal(reply)
        if reply.status == 403 and code == PERMISSION_DENIED:
            scopes = ", ".join(_required(reply))
            return fail(
                name,
                tr("dingtalk.scope_missing", scopes=scopes),
                tr("dingtalk.fix.scopes", scopes=scopes, console=CONSOLE),
            )
        return fail(name, refused(reply))
    at = ctx.services.clock().astimezone(ctx.settings.tz).strftime("%Y-%m-%d %H:%M")
    _record(ctx, key, {"fingerprint": fingerprint, "route_key": route_key, "url": url, "at": at})
    return ok(name, tr("card_route.registered", key=route_key, url=url))


def _recorded(ctx: Context, key: str) -> dict[str, Any] | None:
    from storage.models import Setting

    with ctx.services.sessions() as session:
        row = session.get(Setting, key)
        return dict(row.value) if row is not None else None


def _record(ctx: Context, key: str, value: dict[str, Any]) -> None:
    from storage.db import transaction
    from storage.models import Setting

    now = ctx.services.clock()
    with transaction(ctx.services.sessions) as session:
        row = session.get(Setting, key)
        if row is None:
            session.add(Setting(key=key, value=value, updated_at=now))
        else:
            row.value = value
            row.updated_at = now
