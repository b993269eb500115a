"""Sign-in with the chat platform (OAuth 2.0 authorization code) for the web console.

Each platform gives ``authorize_url(state, redirect_uri)`` (where the browser goes) and
``identify(args, redirect_uri)`` (the callback's query → the person's id on this bot, the same id
the team file lists under ``ids``). Nothing outside this module sees the platforms' JSON.

Facts, from the platforms' documentation:

- Feishu / Lark: ``GET {oauth_base}/open-apis/authen/v1/authorize?client_id&redirect_uri&state``
  (oauth_base https://accounts.feishu.cn); the callback carries ``code`` and ``state``;
  ``POST {api_base}/open-apis/authen/v2/oauth/token`` with ``grant_type=authorization_code,
  client_id, client_secret, code, redirect_uri`` → ``{code: 0, access_token, expires_in, …}``
  or ``{code: 2000x, error, error_description}``; ``GET {api_base}/open-apis/authen/v1/user_info``
  with ``Authorization: Bearer <user_access_token>`` → ``{code: 0, data: {open_id, union_id,
  user_id, name, …}}``. The team data holds the open_id.
  [DOC open.feishu.cn authentication-management/access-token/get-user-access-token, obtain-oauth-code,
  authen-v1/user_info/get]
- DingTalk: ``GET {oauth_base}/oauth2/auth?client_id&redirect_uri&response_type=code&scope=openid
  &state&prompt=consent`` (oauth_base https://login.dingtalk.com); the callback carries
  ``authCode`` (and ``code``) and ``state``; ``POST {api_base}/v1.0/oauth2/userAccessToken``
  ``{clientId, clientSecret, code, grantType: "authorization_code"}`` → ``{accessToken, expireIn,
  refreshToken, corpId}``; ``GET {api_base}/v1.0/contact/users/me`` with header
  ``x-acs-dingtalk-access-token`` → ``{unionId, nick, …}``; the staff userId the team data holds
  comes from ``POST {oapi_base}/topapi/user/getbyunionid?access_token=<app token>`` ``{unionid}``
  → ``{errcode: 0, result: {userid, contact_type}}``.
  [DOC open-dingtalk developerpedia get_user_app_token_browser; open.dingtalk.com obtain-identity-credentials]
- WeCom: ``GET {oauth_base}/connect/oauth2/authorize?appid=<corp_id>&redirect_uri&response_type=code
  &scope=snsapi_base&state&agentid#wechat_redirect`` (oauth_base https://open.weixin.qq.com; silent
  inside the WeCom client); the callback carries ``code`` and ``state``;
  ``GET {api_base}/cgi-bin/auth/getuserinfo?access_token=<app token>&code`` → ``{errcode: 0, userid}``
  for a member, ``{errcode: 0, openid, external_userid}`` for someone outside the company, or
  ``{errcode: 40029, errmsg: "invalid code"}``. [DOC developer.work.weixin.qq.com path/98177, 91022]
  Outside the WeCom client (a desktop browser) the web login instead: ``GET
  https://login.work.weixin.qq.com/wwlogin/sso/login?login_type=CorpApp&appid=<corp_id>&agentid
  &redirect_uri&state`` shows a QR code; scanned and confirmed in WeCom, it redirects with ``code``
  and ``state``, and the same ``auth/getuserinfo`` names the member. [DOC path/98152, 98171]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlencode

import requests

from bot.config import BotConfig
from bot.platforms.tokens import DINGTALK_STALE_TOKEN, AppToken, adapter_token, with_fresh_token
from bot.platforms.wecom import TOKEN_ERRORS

TIMEOUT = 10.0
DEFAULT_OAUTH_BASE = {
    "feishu": "https://accounts.feishu.cn",
    "dingtalk": "https://login.dingtalk.com",
    "wecom": "https://open.weixin.qq.com",
}
WECOM_WEB_LOGIN_BASE = "https://login.work.weixin.qq.com"  # 企业微信 Web 登录 (path/98152)


class SignInError(Exception):
    """The platform did not confirm who this is; ``text`` is shown to the person (zh-CN)."""

    def __init__(self, text: str, detail: str = ""):
        super().__init__(detail or text)
        self.text = text


class SignIn(Protocol):
    bot_id: str
    platform: str

    def authorize_url(self, state: str, redirect_uri: str, *, in_app: bool = True) -> str: ...

    def identify(self, args: Mapping[str, str], redirect_uri: str) -> str: ...


def _json(resp: requests.Response, what: str) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        raise SignInError(
            "平台返回了无法识别的应答，请稍后再试。", f"{what}: HTTP {resp.status_code}, not JSON"
        ) from None
    if not isinstance(data, dict):
        raise SignInError("平台返回了无法识别的应答，请稍后再试。", f"{what}: not an object")
    return data


def _call(http: requests.Session, method: str, url: str, what: str, **kwargs: Any) -> dict[str, Any]:
    try:
        resp = http.request(method, url, timeout=TIMEOUT, **kwargs)
    except requests.RequestException as exc:
        raise SignInError("暂时连不上平台，请稍后再试。", f"{what}: {type(exc).__name__}") from None
    return _json(resp, what)


def _code(args: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = args.get(name, "")
        if value and len(value) <= 1024:
            return value
    if args.get("error"):
        raise SignInError("你在平台上取消了授权，没有登录。", f"error={args.get('error', '')[:100]}")
    raise SignInError("登录回调缺少授权码，请重新登录。", "no code")


class FeishuSignIn:
    platform = "feishu"

    def __init__(self, bot: BotConfig, http: requests.Session):
        self.bot_id = bot.id
        self.http = http
        self.app_id = str(bot.get("app_id", ""))
        self.app_secret = bot.secret("app_secret")
        self.api_base = str(bot.get("api_base") or "https://open.feishu.cn").rstrip("/")
        self.oauth_base = str(bot.get("oauth_base") or DEFAULT_OAUTH_BASE["feishu"]).rstrip("/")

    def authorize_url(self, state: str, redirect_uri: str, *, in_app: bool = True) -> str:
        query = {
            "client_id": self.app_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "state": state,
        }
        return f"{self.oauth_base}/open-apis/authen/v1/authorize?{urlencode(query)}"

    def identify(self, args: Mapping[str, str], redirect_uri: str) -> str:
        code = _code(args, "code")
        body = {
            "grant_type": "authorization_code",
            "client_id": self.app_id,
            "client_secret": self.app_secret,
            "code": code,
            "redirect_uri": redirect_uri,
        }
        token = _call(
            self.http, "POST", f"{self.api_base}/open-apis/authen/v2/oauth/token", "token", json=body
        )
        access = token.get("access_token")
        if token.get("code") not in (0, None) or not isinstance(access, str) or not access:
            raise SignInError(
                "飞书没有确认你的身份（授权码无效或已过期），请重新登录。",
                f"token: code={token.get('code')} {str(token.get('error_description', ''))[:200]}",
            )
        info = _call(
            self.http, "GET", f"{self.api_base}/open-apis/authen/v1/user_info", "user_info",
            headers={"Authorization": f"Bearer {access}"},
        )  # fmt: skip
        data = info.get("data")
        open_id = data.get("open_id") if isinstance(data, dict) else None
        if info.get("code") != 0 or not isinstance(open_id, str) or not open_id:
            raise SignInError("飞书没有返回你的用户信息，请重新登录。", f"user_info: code={info.get('code')}")
        return open_id


class DingTalkSignIn:
    platform = "dingtalk"

    def __init__(self, bot: BotConfig, http: requests.Session, app_token: AppToken):
        self.bot_id = bot.id
        self.http = http
        self.app_token = app_token
        self.app_key = str(bot.get("app_key", ""))
        self.app_secret = bot.secret("app_secret")
        self.api_base = str(bot.get("api_base") or "https://api.dingtalk.com").rstrip("/")
        self.oapi_base = str(bot.get("oapi_base") or "https://oapi.dingtalk.com").rstrip("/")
        self.oauth_base = str(bot.get("oauth_base") or DEFAULT_OAUTH_BASE["dingtalk"]).rstrip("/")

    def authorize_url(self, state: str, redirect_uri: str, *, in_app: bool = True) -> str:
        query = {
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "client_id": self.app_key,
            "scope": "openid",
            "state": state,
            "prompt": "consent",
        }
        return f"{self.oauth_base}/oauth2/auth?{urlencode(query)}"

    def identify(self, args: Mapping[str, str], redirect_uri: str) -> str:
        code = _code(args, "authCode", "code")
        body = {
            "clientId": self.app_key,
            "clientSecret": self.app_secret,
            "code": code,
            "grantType": "authorization_code",
        }
        token = _call(
            self.http, "POST", f"{self.api_base}/v1.0/oauth2/userAccessToken", "userAccessToken", json=body
        )
        access = token.get("accessToken")
        if not isinstance(access, str) or not access:
            raise SignInError(
                "钉钉没有确认你的身份（授权码无效或已过期），请重新登录。",
                f"userAccessToken: {str(token.get('code', ''))[:100]} {str(token.get('message', ''))[:200]}",
            )
        me = _call(
            self.http, "GET", f"{self.api_base}/v1.0/contact/users/me", "users/me",
            headers={"x-acs-dingtalk-access-token": access},
        )  # fmt: skip
        union_id = me.get("unionId")
        if not isinstance(union_id, str) or not union_id:
            raise SignInError("钉钉没有返回你的用户信息，请重新登录。", "users/me: no unionId")
        found = with_fresh_token(
            self.app_token,
            lambda app: _call(
                self.http,
                "POST",
                f"{self.oapi_base}/topapi/user/getbyunionid",
                "getbyunionid",
                params={"access_token": app},
                json={"unionid": union_id},
            ),  # fmt: skip
            lambda answer: answer.get("errcode") in DINGTALK_STALE_TOKEN,
        )
        result = found.get("result")
        userid = result.get("userid") if isinstance(result, dict) else None
        if found.get("errcode") != 0 or not isinstance(userid, str) or not userid:
            raise SignInError(
                "你的钉钉账号不是本企业通讯录中的成员，无法登录。",
                f"getbyunionid: errcode={found.get('errcode')}",
            )
        return userid


class WeComSignIn:
    platform = "wecom"

    def __init__(self, bot: BotConfig, http: requests.Session, app_token: AppToken):
        self.bot_id = bot.id
        self.http = http
        self.app_token = app_token
        self.corp_id = str(bot.get("corp_id", ""))
        self.agent_id = str(bot.get("agent_id", ""))
        self.api_base = str(bot.get("api_base") or "https://qyapi.weixin.qq.com").rstrip("/")
        self.oauth_base = str(bot.get("oauth_base") or DEFAULT_OAUTH_BASE["wecom"]).rstrip("/")
        self.web_login_base = str(bot.get("web_login_base") or WECOM_WEB_LOGIN_BASE).rstrip("/")

    def authorize_url(self, state: str, redirect_uri: str, *, in_app: bool = True) -> str:
        """Inside the WeCom client the silent in-app OAuth; in any other browser WeCom's web login
        (a QR code the person scans with WeCom). Both come back with ``code`` and ``state``."""
        if not in_app:
            query = {
                "login_type": "CorpApp",
                "appid": self.corp_id,
                "agentid": self.agent_id,
                "redirect_uri": redirect_uri,
                "state": state,
            }
            return f"{self.web_login_base}/wwlogin/sso/login?{urlencode(query)}"
        query = {
            "appid": self.corp_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": "snsapi_base",
            "state": state,
            "agentid": self.agent_id,
        }
        return f"{self.oauth_base}/connect/oauth2/authorize?{urlencode(query)}#wechat_redirect"

    def identify(self, args: Mapping[str, str], redirect_uri: str) -> str:
        code = _code(args, "code")
        data = with_fresh_token(
            self.app_token,
            lambda app: _call(
                self.http,
                "GET",
                f"{self.api_base}/cgi-bin/auth/getuserinfo",
                "getuserinfo",
                params={"access_token": app, "code": code},
            ),  # fmt: skip
            lambda answer: answer.get("errcode") in TOKEN_ERRORS,
        )
        userid = data.get("userid") or data.get("UserId")
        if data.get("errcode") == 0 and isinstance(userid, str) and userid:
            return userid
        if data.get("errcode") == 0:
            raise SignInError(
                "你不是本企业的成员（企业微信没有返回成员账号），无法登录。", "getuserinfo: no userid"
            )
        raise SignInError(
            "企业微信没有确认你的身份（授权码无效或已过期），请重新登录。",
            f"getuserinfo: errcode={data.get('errcode')}",
        )


def _wecom_token(bot: BotConfig, http: requests.Session) -> AppToken:
    """For a WeCom bot whose adapter keeps no corp-app token (the AI bot on a long connection)."""
    api_base = str(bot.get("api_base") or "https://qyapi.weixin.qq.com").rstrip("/")
    secret = bot.secret("secret")

    def fetch(_stale: str | None) -> str:
        data = _call(
            http, "GET", f"{api_base}/cgi-bin/gettoken", "gettoken",
            params={"corpid": str(bot.get("corp_id", "")), "corpsecret": secret},
        )  # fmt: skip
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise SignInError(
                "企业微信应用凭证无效，请联系管理员检查配置。", f"gettoken: errcode={data.get('errcode')}"
            )
        return token

    return fetch


def build_signin(bot: BotConfig, http: requests.Session, adapter: Any = None) -> SignIn | None:
    """The sign-in of one bot, or None for a platform without one (the simulator)."""
    if bot.platform == "feishu":
        return FeishuSignIn(bot, http)
    if bot.platform == "dingtalk":
        token = adapter_token(adapter)
        if token is None:
            return None
        return DingTalkSignIn(bot, http, token)
    if bot.platform == "wecom":
        if not bot.get("corp_id"):
            return None
        return WeComSignIn(bot, http, adapter_token(adapter) or _wecom_token(bot, http))
    return None
