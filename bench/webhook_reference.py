"""The reference that bench/webhook_wrk.py holds planloop's Feishu path against (issue 18 §4):
a bare Flask app that does the least a correct Feishu webhook can do — check the timestamp
and the SHA-256 signature over the raw body (constant time), open the AES envelope with
`cryptography`, parse the event, insert ``header.event_id`` into a table (a duplicate is
answered the same) and commit — and answers ``{"msg": "success"}``. No ORM, no handler, no
outbox: the floor a Python webhook on this machine stands on.

Run by webhook_wrk.py under gunicorn with planloop's worker class, workers and threads:

    REF_DB=sqlite:////tmp/ref.db REF_ENCRYPT_KEY=... gunicorn -k gthread -w 2 --threads 4 \\
        bench.webhook_reference:app

``REF_DB`` is ``sqlite:///PATH`` or a ``postgresql://`` URL (psycopg, one connection per thread).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sqlite3
import threading
import time
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from flask import Flask, Response, request

DB = os.environ.get("REF_DB", "sqlite:///reference.db")
ENCRYPT_KEY = os.environ.get("REF_ENCRYPT_KEY", "fake-encrypt-key")
AES_KEY = hashlib.sha256(ENCRYPT_KEY.encode()).digest()
WINDOW = 3600
SQLITE = DB.startswith("sqlite:///")

app = Flask(__name__)
_local = threading.local()


def _connect() -> Any:
    if SQLITE:
        conn = sqlite3.connect(DB.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
    else:
        import psycopg

        conn = psycopg.connect(DB.replace("postgresql+psycopg://", "postgresql://"))
    return conn


def connection() -> Any:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = _connect()
    return conn


def setup() -> None:
    """Create the table (webhook_wrk.py calls this once before gunicorn starts)."""
    conn = _connect()
    ddl = "CREATE TABLE IF NOT EXISTS seen (event_id VARCHAR(200) PRIMARY KEY, received_at BIGINT NOT NULL)"
    if SQLITE:
        conn.execute(ddl)
    else:
        with conn.transaction():
            conn.execute(ddl)
    conn.close()


def remember(event_id: str) -> None:
    conn = connection()
    if SQLITE:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO seen (event_id, received_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (event_id, int(time.time())),
        )
        conn.execute("COMMIT")
    else:
        with conn.transaction():
            conn.execute(
                "INSERT INTO seen (event_id, received_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (event_id, int(time.time())),
            )


def decrypt(sealed: str) -> bytes:
    blob = base64.b64decode(sealed)
    dec = Cipher(algorithms.AES(AES_KEY), modes.CBC(blob[:16])).decryptor()
    plain = dec.update(blob[16:]) + dec.finalize()
    return plain[: -plain[-1]]


def fail(status: int, message: str) -> Response:
    return Response(json.dumps({"error": message}), status=status, content_type="application/json")


@app.post("/webhooks/feishu/<bot_id>")
def feishu(bot_id: str) -> Response:
    body = request.get_data(cache=False)
    ts = request.headers.get("X-Lark-Request-Timestamp", "")
    nonce = request.headers.get("X-Lark-Request-Nonce", "")
    signature = request.headers.get("X-Lark-Signature", "")
    if not ts.isdigit() or abs(time.time() - int(ts)) > WINDOW:
        return fail(401, "timestamp")
    expected = hashlib.sha256((ts + nonce + ENCRYPT_KEY).encode() + body).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return fail(401, "signature")
    try:
        payload = json.loads(decrypt(json.loads(body)["encrypt"]))
        event_id = payload["header"]["event_id"]
    except (ValueError, KeyError, TypeError):
        return fail(400, "malformed")
    remember(f"{bot_id}:{event_id}")
    return Response('{"msg": "success"}', content_type="application/json")
