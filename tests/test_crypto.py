"""The WeCom/DingTalk envelope and Feishu's variant, checked against the official SDKs as oracles."""

from __future__ import annotations

import base64
import json

import pytest

from bot.platforms.base import SignatureError
from bot.platforms.crypto import CryptoError, WxEnvelope, feishu_decrypt, feishu_encrypt, sha1_signature

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
TOKEN = "QDG6eK"
CORP = "wx5823bf96d3bd56c7"


@pytest.mark.parametrize(
    "text", ["<xml><Content>hi</Content></xml>", "写计划：支付转化率 +2pp " * 20, "", "x" * 31]
)
def test_wecom_envelope_round_trips_with_wechatpy(text):
    from wechatpy.crypto import PrpCrypto

    ours = WxEnvelope(TOKEN, AES_KEY, CORP)
    theirs = PrpCrypto(base64.b64decode(AES_KEY + "="))
    assert theirs.decrypt(ours.encrypt(text), CORP) == text
    assert ours.decrypt(theirs.encrypt(text, CORP).decode()) == text


def test_signature_matches_wechatpy():
    from wechatpy.crypto import _get_signature

    assert sha1_signature(TOKEN, "1409659813", "1372623149", "enc") == _get_signature(
        TOKEN, "1409659813", "1372623149", "enc"
    )


def test_dingtalk_sdk_output_opens_with_app_key_as_receive_id():
    from dingtalk.crypto import DingTalkCrypto

    sdk = DingTalkCrypto("tok", AES_KEY, "dingappkey")
    reply = sdk.encrypt_message("success", nonce="nonce1", timestamp="1700000000000")
    ours = WxEnvelope("tok", AES_KEY, "dingappkey")
    ours.verify(reply["msg_signature"], reply["timeStamp"], reply["nonce"], reply["encrypt"])
    assert ours.decrypt(reply["encrypt"]) == "success"


@pytest.mark.parametrize(
    "mutate, error",
    [
        (lambda e: "%%%not-base64", CryptoError),
        (lambda e: base64.b64encode(b"short").decode(), CryptoError),
        (lambda e: base64.b64encode(base64.b64decode(e)[:-16]).decode(), CryptoError),
    ],
)
def test_broken_ciphertext_is_a_bad_request(mutate, error):
    env = WxEnvelope(TOKEN, AES_KEY, CORP)
    with pytest.raises(error):
        env.decrypt(mutate(env.encrypt("hello world, 你好")))


def test_wrong_receive_id_is_refused():
    sealed = WxEnvelope(TOKEN, AES_KEY, "other-corp").encrypt("hi")
    with pytest.raises(CryptoError, match="receive id"):
        WxEnvelope(TOKEN, AES_KEY, CORP).decrypt(sealed)


def test_wrong_key_is_refused():
    sealed = WxEnvelope(TOKEN, AES_KEY, CORP).encrypt("hi")
    other = WxEnvelope(TOKEN, "Z" * 43, CORP)
    with pytest.raises(CryptoError):
        other.decrypt(sealed)


def test_forged_signature_is_refused():
    env = WxEnvelope(TOKEN, AES_KEY, CORP)
    with pytest.raises(SignatureError):
        env.verify("0" * 40, "1", "2", "enc")


def test_feishu_decrypt_opens_lark_oapi_sample_and_round_trips():
    from lark_oapi.core.utils import AESCipher

    body = json.dumps({"challenge": "ajls384kdjx98XX", "token": "t", "type": "url_verification"})
    sealed = feishu_encrypt("test key", body)
    assert AESCipher("test key").decrypt_str(sealed) == body
    assert feishu_decrypt("test key", sealed) == body
    with pytest.raises(CryptoError):
        feishu_decrypt("wrong key", sealed)
