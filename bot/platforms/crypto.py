"""AES envelopes: the WeCom/DingTalk one (WXBizMsgCrypt) and Feishu's variant.

WeCom and DingTalk: key = b64decode(EncodingAESKey + "="), AES-256-CBC with IV = key[:16],
PKCS#7 padded to 32 bytes; plaintext = 16 random bytes + 4-byte big-endian byte length +
message + receive id (CorpID / appKey / ""); signature = SHA1 of the sorted
(token, timestamp, nonce, encrypt) concatenated. Feishu: key = SHA256(encrypt key), IV =
the first 16 bytes of the decoded blob, PKCS#7 to 16.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.platforms.base import BadRequest, SignatureError


class CryptoError(BadRequest):
    """The ciphertext cannot be opened: broken base64, wrong key, bad padding, wrong receive id."""


def _pkcs7_pad(data: bytes, block: int) -> bytes:
    n = block - len(data) % block
    return data + bytes([n]) * n


def _pkcs7_unpad(data: bytes, block: int) -> bytes:
    if not data:
        raise CryptoError("empty plaintext")
    n = data[-1]
    if n < 1 or n > block or data[-n:] != bytes([n]) * n:
        raise CryptoError("bad padding (wrong key?)")
    return data[:-n]


def _aes_cbc(key: bytes, iv: bytes, data: bytes, *, encrypt: bool) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = cipher.encryptor() if encrypt else cipher.decryptor()
    return op.update(data) + op.finalize()


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError("encrypted payload is not valid base64") from None


def sha1_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """WeCom/DingTalk msg_signature: SHA1 over the four values sorted, concatenated."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()  # noqa: S324


class WxEnvelope:
    """The WeCom/DingTalk envelope for one (token, EncodingAESKey, receive id)."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str):
        if len(encoding_aes_key) != 43:
            raise ValueError("EncodingAESKey must be 43 characters")
        self.token = token
        self.key = base64.b64decode(encoding_aes_key + "=")
        self.receive_id = receive_id

    def sign(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return sha1_signature(self.token, timestamp, nonce, encrypt)

    def verify(self, signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = self.sign(timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise SignatureError("msg_signature does not match")

    def encrypt(self, plaintext: str, random16: bytes | None = None) -> str:
        msg = plaintext.encode("utf-8")
        body = (random16 or os.urandom(16)) + struct.pack(">I", len(msg)) + msg + self.receive_id.encode()
        return base64.b64encode(
            _aes_cbc(self.key, self.key[:16], _pkcs7_pad(body, 32), encrypt=True)
        ).decode()

    def decrypt(self, encrypt: str) -> str:
        blob = _b64decode(encrypt)
        if not blob or len(blob) % 16:
            raise CryptoError("ciphertext length is not a multiple of the AES block")
        plain = _pkcs7_unpad(_aes_cbc(self.key, self.key[:16], blob, encrypt=False), 32)
        if len(plain) < 20:
            raise CryptoError("plaintext too short")
        (length,) = struct.unpack(">I", plain[16:20])
        if 20 + length > len(plain):
            raise CryptoError("length field exceeds the plaintext")
        msg, tail = plain[20 : 20 + length], plain[20 + length :]
        if not hmac.compare_digest(tail, self.receive_id.encode()):
            raise CryptoError("receive id does not match this bot (wrong CorpID / appKey)")
        try:
            return msg.decode("utf-8")
        except UnicodeDecodeError:
            raise CryptoError("plaintext is not UTF-8") from None


@functools.lru_cache(maxsize=64)
def feishu_aes_key(encrypt_key: str) -> bytes:
    """SHA-256 of the Encrypt Key, the AES-256 key; derived once per bot, not per event."""
    return hashlib.sha256(encrypt_key.encode("utf-8")).digest()


def feishu_decrypt(encrypt_key: str, encrypt: str) -> str:
    key = feishu_aes_key(encrypt_key)
    blob = _b64decode(encrypt)
    if len(blob) < 32 or len(blob) % 16:
        raise CryptoError("ciphertext length is not a multiple of the AES block")
    plain = _pkcs7_unpad(_aes_cbc(key, blob[:16], blob[16:], encrypt=False), 16)
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise CryptoError("plaintext is not UTF-8 (wrong Encrypt Key?)") from None


def feishu_encrypt(encrypt_key: str, plaintext: str, iv: bytes | None = None) -> str:
    """What Feishu does to an event body; the fake server and tests use it."""
    key = feishu_aes_key(encrypt_key)
    iv = iv or os.urandom(16)
    data = _pkcs7_pad(plaintext.encode("utf-8"), 16)
    return base64.b64encode(iv + _aes_cbc(key, iv, data, encrypt=True)).decode()
