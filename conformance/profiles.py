"""The three built-in wire profiles of docs/PROTOCOL.md §3, written from the document alone.

This module does not use the C++ core. It is checked against the golden vectors of
conformance/vectors/ by conformance/test_vectors.py.

A frame is either Control(text) or Data(stream, id, payload). decode() raises DecodeError with
the mana::core::Errc name and the close code the error maps to (§11), checking sizes before it
looks at (or allocates for) anything else (§3.5).
"""
import base64
import binascii
import json
import re
import struct
from dataclasses import dataclass

TEXT = "text"
BINARY = "binary"

STDOUT = "stdout"
STDERR = "stderr"
STREAM_BYTE = {STDOUT: 0x01, STDERR: 0x02}
BYTE_STREAM = {0x01: STDOUT, 0x02: STDERR}

MAX_CHANNEL_ID = 2**31 - 1
DEFAULT_MAX_FRAME = 1048576
DEFAULT_MAX_CONTROL_JSON = 65536
MAX_JSON_DEPTH = 8

CLOSE_CODE = {
    "truncated_frame": 4014, "bad_length": 4014, "unknown_stream": 4014,
    "wrong_message_type": 4014, "bad_base64": 4014, "bad_json": 4014, "json_too_deep": 4014,
    "not_an_object": 4014, "missing_field": 4014, "wrong_type": 4014, "out_of_range": 4014,
    "unknown_channel": 4014, "frame_too_large": 4008, "control_too_large": 4008,
}


class DecodeError(Exception):
    def __init__(self, errc, detail=""):
        super().__init__("%s%s" % (errc, ": " + detail if detail else ""))
        self.errc = errc
        self.close_code = CLOSE_CODE[errc]


@dataclass(frozen=True)
class Control:
    text: str  # the control JSON text, UTF-8 decoded


@dataclass(frozen=True)
class Data:
    stream: str  # "stdout" or "stderr"
    id: int
    payload: bytes


@dataclass(frozen=True)
class Limits:
    max_frame: int = DEFAULT_MAX_FRAME
    max_control_json: int = DEFAULT_MAX_CONTROL_JSON


# --- strict JSON helpers (§4.1, §4.2) --------------------------------------------------------

class _Float(float):
    """A JSON number with a fraction or exponent part: a wrong type wherever an integer is due."""


def _reject_constant(name):
    raise ValueError("not JSON: " + name)


def json_depth_ok(text, limit=MAX_JSON_DEPTH):
    """Nesting depth of JSON text (top-level object = 1) without recursion, strings skipped."""
    depth = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def parse_json(raw):
    """Strict parse of UTF-8 JSON bytes: raises DecodeError(bad_json / json_too_deep)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
    except UnicodeDecodeError:
        raise DecodeError("bad_json", "not UTF-8")
    if not json_depth_ok(text):
        raise DecodeError("json_too_deep")
    try:
        return json.loads(text, parse_float=_Float, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise DecodeError("bad_json", str(e)[:60])


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def compact(obj):
    """Compact JSON text as our encoders write it (no spaces, UTF-8 kept as is)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


# --- strict base64 (RFC 4648 §4, §3.3) -------------------------------------------------------

_B64 = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")


def b64decode_strict(s):
    if not _B64.match(s):
        raise DecodeError("bad_base64")
    try:
        out = base64.b64decode(s, validate=True)
    except binascii.Error:
        raise DecodeError("bad_base64")
    if base64.b64encode(out).decode("ascii") != s:  # non-zero trailing bits
        raise DecodeError("bad_base64", "non-canonical")
    return out


def _check_id(v):
    if not is_int(v):
        raise DecodeError("wrong_type", "id")
    if not 1 <= v <= MAX_CHANNEL_ID:
        raise DecodeError("out_of_range", "id")
    return v


def _control_size(text_bytes, limits):
    if len(text_bytes) > limits.max_control_json:
        raise DecodeError("control_too_large")


def _text(raw):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("bad_json", "not UTF-8")


# --- profiles --------------------------------------------------------------------------------

class Profile:
    id = ""
    header = 0  # bytes a data message adds around the payload (upper bound)

    def decode(self, mtype, msg, limits=Limits()):
        raise NotImplementedError

    def encode_control(self, text):
        """(message type, bytes) of a control frame carrying JSON `text` (str or bytes)."""
        raise NotImplementedError

    def encode_data(self, stream, cid, payload):
        raise NotImplementedError

    def max_payload(self, max_frame):
        raise NotImplementedError

    def encode_data_split(self, stream, cid, payload, max_frame):
        step = self.max_payload(max_frame)
        return [self.encode_data(stream, cid, payload[i:i + step])
                for i in range(0, len(payload), step)]


class ManaV1(Profile):
    """§3.2: control = text JSON; data = binary [stream u8][id u32 BE][payload]."""
    id = "mana.v1"

    def decode(self, mtype, msg, limits=Limits()):
        if len(msg) > limits.max_frame:
            raise DecodeError("frame_too_large")
        if mtype == TEXT:
            _control_size(msg, limits)
            return Control(_text(msg))
        if len(msg) < 5:
            raise DecodeError("truncated_frame")
        stream = BYTE_STREAM.get(msg[0])
        if stream is None:
            raise DecodeError("unknown_stream")
        cid = struct.unpack(">I", msg[1:5])[0]
        _check_id(cid)
        return Data(stream, cid, bytes(msg[5:]))

    def encode_control(self, text):
        return TEXT, text.encode("utf-8") if isinstance(text, str) else text

    def encode_data(self, stream, cid, payload):
        return BINARY, struct.pack(">BI", STREAM_BYTE[stream], cid) + payload

    def max_payload(self, max_frame):
        return max_frame - 5


class JsonBase64V1(Profile):
    """§3.3: every frame is a text JSON object; data has "kind":"data" and base64 payload."""
    id = "json-base64.v1"

    def decode(self, mtype, msg, limits=Limits()):
        if len(msg) > limits.max_frame:
            raise DecodeError("frame_too_large")
        if mtype != TEXT:
            raise DecodeError("wrong_message_type")
        obj = parse_json(msg)
        if not isinstance(obj, dict) or "t" in obj or obj.get("kind") != "data":
            # A control frame (or something the control parser rejects: §3.3, [Choice]).
            _control_size(msg, limits)
            return Control(_text(msg))
        for f in ("stream", "id", "payload"):
            if f not in obj:
                raise DecodeError("missing_field", f)
        stream = obj["stream"]
        if not isinstance(stream, str):
            raise DecodeError("wrong_type", "stream")
        if stream not in STREAM_BYTE:
            raise DecodeError("unknown_stream")
        cid = _check_id(obj["id"])
        if not isinstance(obj["payload"], str):
            raise DecodeError("wrong_type", "payload")
        return Data(stream, cid, b64decode_strict(obj["payload"]))

    def encode_control(self, text):
        return TEXT, text.encode("utf-8") if isinstance(text, str) else text

    def encode_data(self, stream, cid, payload):
        text = '{"kind":"data","stream":"%s","id":%d,"payload":"%s"}' % (
            stream, cid, base64.b64encode(payload).decode("ascii"))
        return TEXT, text.encode("ascii")

    def max_payload(self, max_frame):
        # fixed part with the longest stream name and a 10-digit id
        fixed = len(self.encode_data(STDOUT, MAX_CHANNEL_ID, b"")[1])
        room = max(0, max_frame - fixed)
        return room // 4 * 3


class LenpfxV1(Profile):
    """§3.4: binary [length u32 BE][kind u8][id u32 BE][payload], length = 5 + payload."""
    id = "lenpfx.v1"
    KIND_CONTROL = 0x10

    def decode(self, mtype, msg, limits=Limits()):
        if len(msg) > limits.max_frame:
            raise DecodeError("frame_too_large")
        if mtype != BINARY:
            raise DecodeError("wrong_message_type")
        if len(msg) < 9:
            raise DecodeError("truncated_frame")
        length, kind, cid = struct.unpack(">IBI", msg[:9])
        if length < 5 or length != len(msg) - 4:
            raise DecodeError("bad_length")
        payload = bytes(msg[9:])
        if kind == self.KIND_CONTROL:
            if cid != 0:
                raise DecodeError("out_of_range", "control id")
            _control_size(payload, limits)
            return Control(_text(payload))
        stream = BYTE_STREAM.get(kind)
        if stream is None:
            raise DecodeError("unknown_stream")
        _check_id(cid)
        return Data(stream, cid, payload)

    def envelope(self, kind, cid, payload):
        return struct.pack(">IBI", 5 + len(payload), kind, cid) + payload

    def encode_control(self, text):
        raw = text.encode("utf-8") if isinstance(text, str) else text
        return BINARY, self.envelope(self.KIND_CONTROL, 0, raw)

    def encode_data(self, stream, cid, payload):
        return BINARY, self.envelope(STREAM_BYTE[stream], cid, payload)

    def max_payload(self, max_frame):
        return max_frame - 9


PROFILES = {p.id: p for p in (ManaV1(), JsonBase64V1(), LenpfxV1())}


def get(profile_id):
    return PROFILES[profile_id]
