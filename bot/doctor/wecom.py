"""WeCom checks: access token, trusted IP and visible range, the AI bot's long connection or the
app's callback URL, group chats, people.

Facts (docs/doctor.md lists which were confirmed only from documentation):
- token: ``GET /cgi-bin/gettoken?corpid&corpsecret`` -> errcode 0 / 40013 (corpid) / 40001 (secret).
- ``GET /cgi-bin/agent/get?agentid=`` ("获取指定的应用详情", path/90227) -> ``allow_userinfos.user
  [{userid}]``, ``allow_partys.partyid``, ``allow_tags.tagid``: the visible range. It is also the
  harmless call that meets the trusted-IP rule: 60020 "not allow to access from your ip …
  from ip: X" names the address to add.
- people: ``GET /cgi-bin/user/get?userid=``: 60111 UserID does not exist, 60011 no privilege
  (outside the app's visible range), 60020 untrusted IP (global error codes).
- groups: ``GET /cgi-bin/appchat/get?chatid=``: 86003 chatid does not exist, 86008 the chat was
  not created by this app (an app can only send to chats it created).
- a ``connection = "stream"`` bot is the 智能机器人 (bot_id / bot_secret): its credentials are
  checked by opening the connection; the corp app checks run when corp_id / secret are set too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from bot.doctor.common import Context, host_of, stream_line, unreachable, webhook_line
from bot.doctor.http import Http, Reply, Unreachable
from bot.doctor.model import Line, fail, ok, skip, unknown

CONSOLE = "https://work.weixin.qq.com/wework_admin"
UNTRUSTED_IP = 60020
NO_PRIVILEGE = 60011
USER_NOT_FOUND = 60111
CHAT_NOT_FOUND = 86003
CHAT_NOT_OURS = 86008
RATE_LIMITED = 45009
FROM_IP = re.compile(r"from ip:\s*([0-9A-Fa-f.:]+)")


def _code(reply: Reply) -> tuple[int, str]:
    try:
        return int(reply.body.get("errcode", 0)), str(reply.body.get("errmsg", ""))[:200]
    except (TypeError, ValueError):
        return -1, str(reply.body.get("errmsg", ""))[:200]


def check(ctx: Context) -> Iterator[Line]:
    tr = ctx.tr
    base = str(ctx.bot.get("api_base", "https://qyapi.weixin.qq.com")).rstrip("/")
    http = Http(ctx.services.http, [base], timeout=ctx.timeout)
    corp_id = str(ctx.bot.get("corp_id", ""))
    has_app = bool(corp_id and ctx.bot.secret("secret"))

    def gone(exc: Unreachable) -> str:
        return unreachable(tr, "wecom", host_of(base), exc)

    def refused(code: int, msg: str) -> str:
        if code == RATE_LIMITED:
            return tr("rate_limited_code", platform=tr("platform.wecom"), code=code)
        return tr("refused", platform=tr("platform.wecom"), code=code, msg=msg.split(",")[0])

    def untrusted(check_name: str, msg: str) -> Line:
        match = FROM_IP.search(msg)
        ip = match.group(1) if match else "?"
        return fail(
            check_name, tr("wecom.untrusted_ip", ip=ip, code=UNTRUSTED_IP), tr("wecom.fix.trusted_ip")
        )

    if not has_app:
        # the AI bot alone: no corp app to ask about tokens, IPs, groups or people
        yield skip(tr("check.credentials"), tr("wecom.aibot_only"))
        yield stream_line(ctx, tr("wecom.fix.stream"))
        yield webhook_line(ctx, [("", "")], tr("wecom.where.webhook"))
        yield unknown(tr("check.groups"), tr("wecom.aibot_groups"), tr("wecom.fix.aibot_groups"))
        yield skip(tr("check.people"), tr("wecom.aibot_people"))
        return

    # 1. credentials
    name = tr("check.credentials")
    try:
        reply = http.call(
            "GET",
            f"{base}/cgi-bin/gettoken",
            params={"corpid": corp_id, "corpsecret": ctx.bot.secret("secret")},
        )
    except Unreachable as exc:
        yield fail(name, gone(exc))
        yield skip(tr("check.rest"), tr("rest.skipped"))
        return
    code, msg = _code(reply)
    token = reply.body.get("access_token")
    if code != 0 or not isinstance(token, str) or not token:
        yield fail(name, refused(code, msg), "" if code == RATE_LIMITED else tr("wecom.fix.credentials"))
        yield skip(tr("check.rest"), tr("rest.skipped"))
        return
    yield ok(name, tr("wecom.credentials.ok"))
    auth = {"access_token": token}

    # 2. trusted IP and visible range (one harmless call answers both)
    ip_name, range_name = tr("check.trusted_ip"), tr("check.visible")
    agent_id = str(ctx.bot.get("agent_id", ""))
    agent: Reply | None = None
    try:
        agent = http.call("GET", f"{base}/cgi-bin/agent/get", params={**auth, "agentid": agent_id})
    except Unreachable as exc:
        yield fail(ip_name, gone(exc))
    if agent is not None:
        reply = agent
        code, msg = _code(reply)
        if code == UNTRUSTED_IP:
            yield untrusted(ip_name, msg)
            yield skip(range_name, tr("wecom.range_after_ip"))
        elif code != 0:
            yield ok(ip_name, tr("wecom.ip_ok"))
            yield fail(range_name, refused(code, msg), tr("wecom.fix.agent"))
        else:
            yield ok(ip_name, tr("wecom.ip_ok"))
            users = len((reply.body.get("allow_userinfos") or {}).get("user") or [])
            parties = len((reply.body.get("allow_partys") or {}).get("partyid") or [])
            tags = len((reply.body.get("allow_tags") or {}).get("tagid") or [])
            yield ok(range_name, tr("wecom.range", users=users, parties=parties, tags=tags))

    # 3. how events arrive
    yield stream_line(ctx, tr("wecom.fix.stream"))
    yield webhook_line(ctx, [("", "")], tr("wecom.where.webhook"))

    # 4. group chats (app chats: the app must have created them)
    for group in ctx.team.groups:
        name = tr("check.group", team=group.team_name, chat=group.chat_id)
        try:
            reply = http.call("GET", f"{base}/cgi-bin/appchat/get", params={**auth, "chatid": group.chat_id})
        except Unreachable as exc:
            yield fail(name, gone(exc))
            continue
        code, msg = _code(reply)
        if code == 0:
            yield ok(name, tr("group.ok"))
        elif code == CHAT_NOT_FOUND:
            yield fail(name, tr("group.unknown", code=code), tr("fix.group_id"))
        elif code == CHAT_NOT_OURS:
            yield fail(name, tr("wecom.chat_not_ours", code=code), tr("wecom.fix.chat"))
        elif code == UNTRUSTED_IP:
            yield untrusted(name, msg)
        else:
            yield fail(name, refused(code, msg))

    # 5. everyone's userid, inside the app's visible range
    people = ctx.team.people
    if not people:
        yield skip(tr("check.people"), tr("people.none"))
        return
    bad = 0
    for member in people:
        name = tr("check.person", name=member.name, id=member.external_id)
        try:
            reply = http.call(
                "GET", f"{base}/cgi-bin/user/get", params={**auth, "userid": member.external_id}
            )
        except Unreachable as exc:
            yield fail(name, gone(exc))
            return
        code, msg = _code(reply)
        if code == 0:
            continue
        bad += 1
        if code == NO_PRIVILEGE:
            yield fail(name, tr("wecom.person.out_of_range", code=code), tr("wecom.fix.visible"))
        elif code == USER_NOT_FOUND:
            yield fail(name, tr("person.unknown", detail=refused(code, msg)), tr("fix.people_ids"))
        elif code == UNTRUSTED_IP:
            yield untrusted(tr("check.people"), msg)
            return
        else:
            yield fail(name, refused(code, msg))
    if not bad:
        yield ok(tr("check.people"), tr("people.ok", count=len(people)))
