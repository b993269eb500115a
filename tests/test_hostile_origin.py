"""Row 8 of issue 17: /p/ form POSTs from another site are refused; same-origin and Origin-less work."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.web.origin import cross_site_reason, origin_of
from storage.models import Plan
from tests.test_pages import THREE, form_values, token

# public_url of the test settings: http://planloop.test


@pytest.mark.parametrize(
    ("headers", "stored"),
    [
        ({}, True),  # no Origin at all: an old browser or a tool; the token decides
        ({"Origin": "http://planloop.test"}, True),
        ({"Origin": "http://PLANLOOP.test:80"}, True),
        ({"Origin": "http://planloop.test", "Sec-Fetch-Site": "same-origin"}, True),
        ({"Sec-Fetch-Site": "same-origin"}, True),
        ({"Sec-Fetch-Site": "none"}, True),  # typed or bookmarked by the person
        ({"Origin": "https://evil.example"}, False),
        ({"Origin": "http://planloop.test.evil.example"}, False),
        ({"Origin": "https://planloop.test"}, False),  # another scheme is another origin
        ({"Origin": "http://planloop.test:8080"}, False),
        ({"Origin": "null"}, False),  # sandboxed iframe, data: URL
        ({"Origin": "null", "Sec-Fetch-Site": "cross-site"}, False),
        ({"Origin": "null", "Sec-Fetch-Site": "same-site"}, False),
        # our own page under Referrer-Policy: no-referrer, as Chromium posts it
        ({"Origin": "null", "Sec-Fetch-Site": "same-origin"}, True),
        ({"Sec-Fetch-Site": "cross-site"}, False),
        ({"Origin": "http://planloop.test", "Sec-Fetch-Site": "cross-site"}, False),
    ],
)
def test_form_posts_by_origin(services, client, demo_team, db, headers, stored):
    tok = token(services, "lilei", "plan-form")
    res = client.post(f"/p/{tok}", data=form_values(*THREE) | {"_nonce": "c" * 32}, headers=headers)
    with db() as s:
        count = s.scalar(select(func.count()).select_from(Plan))
    if stored:
        assert res.status_code == 200 and count == 1
    else:
        assert res.status_code == 403 and count == 0
        assert "只能在 planloop 自己的页面里提交" in res.get_data(as_text=True)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://plan.example.com/", "https://plan.example.com"),
        ("https://plan.example.com:443/base", "https://plan.example.com"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://[::1]:8000/", "http://[::1]:8000"),
    ],
)
def test_origin_of(url, origin):
    assert origin_of(url) == origin


def test_reason_names_what_was_wrong():
    assert "evil" in (cross_site_reason({"Origin": "https://evil.example"}, "https://plan.example") or "")
    assert cross_site_reason({}, "https://plan.example") is None
