"""The hand-written pbbp2 codec against lark-oapi's generated protobuf classes (the oracle)."""

from __future__ import annotations

import pytest

from bot.platforms.feishu_frames import CONTROL, DATA, Frame, FrameError, decode, encode

pb = pytest.importorskip("lark_oapi.ws.pb.pbbp2_pb2")

FRAMES = [
    # the SDK's ping: control, service from the URL, SeqID/LogID 0, one header
    Frame(service=33554678, method=CONTROL, headers=(("type", "ping"),)),
    # a pong carrying the ClientConfig JSON
    Frame(
        service=1,
        method=CONTROL,
        headers=(("type", "pong"),),
        payload=b'{"PingInterval":120,"ReconnectCount":-1,"ReconnectInterval":120,"ReconnectNonce":30}',
    ),
    # an event as the gateway sends it: large ids, trace headers, Chinese text in the payload
    Frame(
        seq_id=2**63 + 5,
        log_id=7_356_891_234_567_890_123,
        service=33554678,
        method=DATA,
        headers=(
            ("type", "event"),
            ("message_id", "6a1e3c0f8b"),
            ("sum", "1"),
            ("seq", "0"),
            ("trace_id", "7f3a"),
            ("timestamp", "1764892800000"),
        ),
        payload_encoding="json",
        payload_type="event",
        payload='{"schema":"2.0","event":{"text":"写计划"}}'.encode(),
        log_id_new="20261205-7f3a",
    ),
    # the second part of a split payload, with an empty header value
    Frame(method=DATA, headers=(("sum", "2"), ("seq", "1"), ("instance_id", "")), payload=b"\x00\xff" * 300),
    # negative int32 values travel sign-extended to ten bytes
    Frame(service=-1, method=-2),
]


def oracle_encode(frame: Frame) -> bytes:
    msg = pb.Frame()
    msg.SeqID, msg.LogID, msg.service, msg.method = frame.seq_id, frame.log_id, frame.service, frame.method
    for k, v in frame.headers:
        header = msg.headers.add()
        header.key, header.value = k, v
    if frame.payload_encoding:
        msg.payload_encoding = frame.payload_encoding
    if frame.payload_type:
        msg.payload_type = frame.payload_type
    if frame.payload:
        msg.payload = frame.payload
    if frame.log_id_new:
        msg.LogIDNew = frame.log_id_new
    return msg.SerializeToString()


def oracle_decode(data: bytes) -> Frame:
    msg = pb.Frame()
    msg.ParseFromString(data)
    return Frame(
        seq_id=msg.SeqID,
        log_id=msg.LogID,
        service=msg.service,
        method=msg.method,
        headers=tuple((h.key, h.value) for h in msg.headers),
        payload_encoding=msg.payload_encoding,
        payload_type=msg.payload_type,
        payload=msg.payload,
        log_id_new=msg.LogIDNew,
    )


@pytest.mark.parametrize("frame", FRAMES)
def test_our_bytes_are_the_sdk_bytes_and_both_read_each_other(frame):
    ours = encode(frame)
    assert ours == oracle_encode(frame)
    assert oracle_decode(ours) == frame
    assert decode(oracle_encode(frame)) == frame


def test_a_response_frame_keeps_every_field_and_adds_biz_rt():
    frame = FRAMES[2]
    answer = decode(encode(frame.answered(b'{"code":200}', biz_rt="12")))
    assert answer.headers == frame.headers + (("biz_rt", "12"),)
    assert (answer.seq_id, answer.log_id, answer.service, answer.log_id_new) == (
        frame.seq_id,
        frame.log_id,
        frame.service,
        frame.log_id_new,
    )
    assert answer.payload == b'{"code":200}'
    assert frame.header("message_id") == "6a1e3c0f8b" and frame.header("absent", "-") == "-"


def test_unknown_fields_from_a_newer_gateway_are_skipped():
    known = encode(FRAMES[0])
    # field 15 varint 150, field 16 length-delimited "abc", field 17 fixed32, field 18 fixed64
    extra = b"\x78\x96\x01" + b"\x82\x01\x03abc" + b"\x8d\x01" + b"1234" + b"\x91\x01" + b"12345678"
    assert oracle_decode(known + extra) == FRAMES[0]
    assert decode(known + extra) == FRAMES[0]


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"", "SeqID"),
        (encode(FRAMES[2])[:-3], "past the end"),
        (b"\x08\x80", "varint"),
        (b"\x08\x00\x10\x00\x18\x00\x20\x00\x2a\x02\x0a\x00", "header without"),
        (b"\x08\x00\x10\x00\x18\x00\x20\x00\x33", "wire type"),
        (b"\x08\x00\x10\x00\x18\x00\x20\x00\x32\x01\xff", "UTF-8"),
    ],
)
def test_bytes_that_are_not_a_frame_are_refused(data, problem):
    with pytest.raises(FrameError, match=problem):
        decode(data)
