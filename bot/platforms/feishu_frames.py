"""Feishu's long-connection frames (``pbbp2.Frame``), encoded and decoded by hand.

The schema, from ``lark_oapi/ws/pb/pbbp2_pb2.py`` (proto2) [SRC lark-oapi 1.7.5, and the same
fields in oapi-sdk-go ``ws/pbbp2.pb.go`` and node-sdk ``ws-client/proto-buf/pbbp2.js``]::

    message Header { required string key = 1; required string value = 2; }
    message Frame {
      required uint64 SeqID = 1;  required uint64 LogID = 2;
      required int32 service = 3; required int32 method = 4;   // 0 control, 1 data
      repeated Header headers = 5;
      optional string payload_encoding = 6; optional string payload_type = 7;
      optional bytes payload = 8;           optional string LogIDNew = 9;
    }

Why no ``protobuf`` dependency: two messages with nine scalar fields need varints and
length-delimited fields only (about sixty lines here); the ``protobuf`` runtime is a large
compiled package with its own version constraints (lark-oapi even vendors a private copy to
avoid them), and the tests check this codec against lark-oapi's generated classes in both
directions, so hand-written is the smaller and equally verified choice.

A response frame is the received frame sent back with one more header (``biz_rt``) and its
payload replaced; ``decode`` therefore keeps every field, so nothing the gateway uses to match
the answer (SeqID, LogID, service, trace headers, LogIDNew) is lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

CONTROL = 0  # method of ping / pong frames
DATA = 1  # method of event / card frames

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_U64 = (1 << 64) - 1


class FrameError(ValueError):
    """Bytes that are not a pbbp2 frame."""


@dataclass(frozen=True)
class Frame:
    seq_id: int = 0
    log_id: int = 0
    service: int = 0
    method: int = CONTROL
    headers: tuple[tuple[str, str], ...] = ()
    payload_encoding: str = ""
    payload_type: str = ""
    payload: bytes = b""
    log_id_new: str = ""

    def header(self, key: str, default: str = "") -> str:
        """The first header named ``key`` (the SDKs look headers up the same way)."""
        return next((v for k, v in self.headers if k == key), default)

    def answered(self, payload: bytes, **extra_headers: str) -> Frame:
        """The response frame: this frame, its headers plus ``extra_headers``, with ``payload``."""
        return replace(self, headers=self.headers + tuple(extra_headers.items()), payload=payload)


@dataclass
class _Reader:
    data: bytes
    pos: int = 0
    end: int = field(default=-1)

    def __post_init__(self) -> None:
        if self.end < 0:
            self.end = len(self.data)

    def more(self) -> bool:
        return self.pos < self.end

    def varint(self) -> int:
        value, shift = 0, 0
        while True:
            if self.pos >= self.end or shift > 63:
                raise FrameError("truncated or overlong varint")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value & _U64
            shift += 7

    def chunk(self) -> bytes:
        size = self.varint()
        if self.pos + size > self.end:
            raise FrameError("length-delimited field runs past the end")
        out = self.data[self.pos : self.pos + size]
        self.pos += size
        return out

    def skip(self, wire: int) -> None:
        if wire == _VARINT:
            self.varint()
        elif wire == _LEN:
            self.chunk()
        elif wire in (_I64, _I32):
            self.pos += 8 if wire == _I64 else 4
            if self.pos > self.end:
                raise FrameError("fixed-width field runs past the end")
        else:
            raise FrameError(f"unsupported wire type {wire}")


def _varint(value: int) -> bytes:
    value &= _U64  # negative int32 values go out sign-extended to ten bytes, as protobuf does
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _len_field(number: int, data: bytes) -> bytes:
    return _key(number, _LEN) + _varint(len(data)) + data


def _int32(raw: int) -> int:
    raw &= 0xFFFFFFFF
    return raw - (1 << 32) if raw & 0x80000000 else raw


def encode(frame: Frame) -> bytes:
    """The frame's wire bytes; required fields always, optional ones only when not empty."""
    out = bytearray()
    out += _key(1, _VARINT) + _varint(frame.seq_id)
    out += _key(2, _VARINT) + _varint(frame.log_id)
    out += _key(3, _VARINT) + _varint(frame.service)
    out += _key(4, _VARINT) + _varint(frame.method)
    for k, v in frame.headers:
        out += _len_field(5, _len_field(1, k.encode()) + _len_field(2, v.encode()))
    if frame.payload_encoding:
        out += _len_field(6, frame.payload_encoding.encode())
    if frame.payload_type:
        out += _len_field(7, frame.payload_type.encode())
    if frame.payload:
        out += _len_field(8, frame.payload)
    if frame.log_id_new:
        out += _len_field(9, frame.log_id_new.encode())
    return bytes(out)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError("a string field is not UTF-8") from None


def _header(raw: bytes) -> tuple[str, str]:
    reader, key, value = _Reader(raw), None, None
    while reader.more():
        tag = reader.varint()
        number, wire = tag >> 3, tag & 7
        if number in (1, 2) and wire == _LEN:
            text = _text(reader.chunk())
            key, value = (text, value) if number == 1 else (key, text)
        else:
            reader.skip(wire)
    if key is None or value is None:
        raise FrameError("header without key or value")
    return key, value


def decode(data: bytes) -> Frame:
    """Parse wire bytes; unknown fields are skipped, missing required ones refused."""
    reader = _Reader(data)
    ints: dict[int, int] = {}
    headers: list[tuple[str, str]] = []
    texts: dict[int, str] = {}
    payload = b""
    while reader.more():
        tag = reader.varint()
        number, wire = tag >> 3, tag & 7
        if number in (1, 2, 3, 4) and wire == _VARINT:
            ints[number] = reader.varint()
        elif number == 5 and wire == _LEN:
            headers.append(_header(reader.chunk()))
        elif number in (6, 7, 9) and wire == _LEN:
            texts[number] = _text(reader.chunk())
        elif number == 8 and wire == _LEN:
            payload = reader.chunk()
        else:
            reader.skip(wire)
    missing = [
        name for n, name in ((1, "SeqID"), (2, "LogID"), (3, "service"), (4, "method")) if n not in ints
    ]
    if missing:
        raise FrameError(f"frame without {', '.join(missing)}")
    return Frame(
        seq_id=ints[1],
        log_id=ints[2],
        service=_int32(ints[3]),
        method=_int32(ints[4]),
        headers=tuple(headers),
        payload_encoding=texts.get(6, ""),
        payload_type=texts.get(7, ""),
        payload=payload,
        log_id_new=texts.get(9, ""),
    )
