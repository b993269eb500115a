"""The platforms' signing rules against the official (and re-computed) vectors of SOURCES.md §0."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from sources.doudian import param_json as doudian_param_json
from sources.doudian import sign_doudian
from sources.jd import jos_timestamp, sign_jos
from sources.pdd import sign_pop
from sources.taobao import response_key, sign_top, top_timestamp

TOP_PARAMS = {
    "method": "taobao.item.seller.get",
    "app_key": "12345678",
    "session": "test",
    "timestamp": "2016-01-01 12:00:00",
    "format": "json",
    "v": "2.0",
    "fields": "num_iid,title,nick,price,num",
    "num_iid": "11223344",
}


@pytest.mark.parametrize(
    ("sign_method", "expected"),
    [
        ("md5", "66987CB115214E59E6EC978214934FB8"),  # official, open.taobao.com docId=101617
        ("hmac", "D56D7858309C31B6251083A874D48273"),
        ("hmac-sha256", "04DB15AD0774D5CFCE2C837DE43E3FCEA9011ED74F3038FB6AB5F3C4CEA119E8"),
    ],
)
def test_top_vectors(sign_method: str, expected: str) -> None:
    params = {**TOP_PARAMS, "sign_method": sign_method}
    assert sign_top(params, "helloworld", sign_method) == expected


def test_top_ignores_sign_and_empty_values() -> None:
    params = {**TOP_PARAMS, "sign_method": "md5"}
    assert (
        sign_top({**params, "sign": "X", "partner_id": ""}, "helloworld")
        == "66987CB115214E59E6EC978214934FB8"
    )


def test_top_unknown_method() -> None:
    with pytest.raises(ValueError):
        sign_top(TOP_PARAMS, "s", "sha1")


def test_jos_official_vector() -> None:
    params = {
        "360buy_param_json": '{"end_date":null,"optional_fields":null,"order_state":"WAIT_SELLER_STOCK_OUT",'
        '"page":"1","page_size":"200","start_date":null}',
        "access_token": "yourtoken",
        "app_key": "yourappkey",
        "method": "jingdong.pop.order.search",
        "timestamp": "2021-05-07 09:20:39.683+0800",
        "v": "2.0",
    }
    assert sign_jos(params, "yourappSecret") == "D70825340F4084360B9362B60DFD7930"


def test_jos_signs_chinese_as_utf8() -> None:
    """The official Python SDK encodes latin1 and crashes on Chinese; the gateway reads UTF-8."""
    params = {
        "360buy_param_json": '{"name":"小店"}',
        "app_key": "k",
        "method": "m",
        "timestamp": "t",
        "v": "2.0",
    }
    text = "s" + "".join(k + params[k] for k in sorted(params)) + "s"
    assert sign_jos(params, "s") == hashlib.md5(text.encode("utf-8")).hexdigest().upper()


def test_pop_official_vector() -> None:
    params = {
        "type": "pdd.order.number.list.get",
        "client_id": "1",
        "timestamp": "1480411125",
        "data_type": "XML",
        "access_token": "asd78172s8ds9a921j9qqwda12312w1w21211",
        "order_status": "1",
        "page": "1",
        "page_size": "10",
    }
    assert sign_pop(params, "testSecret") == "E4DE3ED21002510DED352819E7AE6775"


@pytest.mark.parametrize(
    ("sign_method", "expected"),
    [
        ("md5", "0281f1381ee22db1aeda83a69280b891"),
        ("hmac-sha256", "b5f337472dbf1af18575e4cbb3a9df70b83fd4b8ff738dc617c7560163637c81"),
    ],
)
def test_doudian_vectors(sign_method: str, expected: str) -> None:
    body = doudian_param_json({"shop_order_id": "4781320682406083640"})
    assert body == '{"shop_order_id":"4781320682406083640"}'
    got = sign_doudian("12345678", "helloworld", "order.orderDetail", body, "1700000000", "2", sign_method)
    assert got == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (None, "{}"),
        ({}, "{}"),
        ({"b": 1, "a": {"d": [3, 1], "c": "x/y"}}, '{"a":{"c":"x/y","d":[3,1]},"b":1}'),
        ({"list": [{"z": 1, "y": 2}], "名": "小店"}, '{"list":[{"y":2,"z":1}],"名":"小店"}'),
    ],
)
def test_doudian_param_json_sorted_recursively(params: dict | None, expected: str) -> None:
    assert doudian_param_json(params) == expected


def test_timestamps() -> None:
    now = datetime(2021, 5, 7, 1, 20, 39, 683000, tzinfo=UTC)
    assert top_timestamp(now) == "2021-05-07 09:20:39"
    assert jos_timestamp(now) == "2021-05-07 09:20:39.683+0800"


@pytest.mark.parametrize(
    ("method", "key"),
    [
        ("taobao.trades.sold.get", "trades_sold_get_response"),
        ("taobao.top.auth.token.refresh", "top_auth_token_refresh_response"),
    ],
)
def test_top_response_key(method: str, key: str) -> None:
    assert response_key(method) == key
