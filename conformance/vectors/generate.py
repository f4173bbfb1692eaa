#!/usr/bin/env python3
"""Generate the wire-profile golden vectors (and the fuzz seed corpora).

Independent model of docs/PROTOCOL.md "Wire profiles", written without looking
at the C++ encoders so the two can check each other. Python 3 stdlib only.

    python3 conformance/vectors/generate.py            # rewrite the vectors + seeds
    python3 conformance/vectors/generate.py --check    # exit 1 if anything is stale

Output: conformance/vectors/<profile id>.json and
tests/fuzz/corpus/fuzz_decode_<profile>/<sha1 of content> (first byte of a seed
selects the message type: 0x00 text, 0x01 binary; the rest is the message).
"""

import base64
import hashlib
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

CLOSE_CODES = {
    "truncated_frame": 4014,
    "bad_length": 4014,
    "unknown_stream": 4014,
    "wrong_message_type": 4014,
    "bad_base64": 4014,
    "bad_json": 4014,
    "json_too_deep": 4014,
    "missing_field": 4014,
    "wrong_type": 4014,
    "out_of_range": 4014,
    "frame_too_large": 4008,
    "control_too_large": 4008,
}

STREAMS = {"stdout": 0x01, "stderr": 0x02}


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def control_messages(profile):
    """(name, direction, message) for every control message type."""
    return [
        ("hello", "client->server", {
            "t": "hello", "proto": 1,
            "auth": {"scheme": "bearer", "token": "tok-123"},
            "caps": {"profile": profile, "maxFrame": 1048576, "bidi": True, "resume": True}}),
        ("hello_ok", "server->client", {
            "t": "hello_ok", "server": "mana-gateway",
            "caps": {"flow": "credit", "maxFrame": 1048576, "profileAccepted": profile,
                     "bidi": True, "resumeTtlMs": 60000, "heartbeatMs": 20000,
                     "idleTimeoutMs": 60000, "maxChannels": 4, "window": 262144},
            "resume": {"token": "AAAAAAAAAAAAAAAAAAAAAA", "channels": []}}),
        ("open", "client->server", {
            "t": "open", "id": 1, "kind": "tcp", "target": {"host": "10.0.0.5", "port": 22},
            "term": {"cols": 80, "rows": 24}, "window": 262144}),
        ("open_ok", "server->client", {"t": "open_ok", "id": 1, "window": 262144}),
        ("open_err", "server->client", {
            "t": "open_err", "id": 3, "code": "target_unreachable", "msg": "connection refused"}),
        ("resize", "client->server", {"t": "resize", "id": 1, "cols": 120, "rows": 40}),
        ("signal", "client->server", {"t": "signal", "id": 1, "sig": "INT"}),
        ("close", "both", {"t": "close", "id": 1, "reason": "eof"}),
        ("close_utf8_reason", "both", {"t": "close", "id": 2, "reason": "bye \u2713"}),
        ("exit", "server->client", {"t": "exit", "id": 1, "code": 0}),
        ("flow", "both", {"t": "flow", "id": 1, "credit": 131072, "rx": 131072}),
        ("ping", "both", {"t": "ping", "ts": 1700000000000}),
        ("pong", "both", {"t": "pong", "ts": 1700000000000}),
    ]


BOOTSTRAP_NOTE = ("hello/hello_ok always travel as plain JSON text messages (bootstrap); "
                  "this case shows the profile's encoding of the same control frame")

DATA_PAYLOADS = [
    ("data_empty_stdout", "both", "stdout", 1, b""),
    ("data_1_byte", "both", "stdout", 1, b"a"),
    ("data_2_bytes", "both", "stdout", 1, b"hi"),
    ("data_3_bytes", "both", "stdout", 1, b"abc"),
    ("data_all_bytes", "both", "stdout", 5, bytes(range(256))),
    ("data_stderr", "server->client", "stderr", 2, b"error: denied\n"),
    ("data_max_id", "both", "stdout", 2147483647, b"\x00\xff"),
]


def control_case(name, direction, msg_type, message, obj, **extra):
    text = compact(obj)
    case = {"name": name, "direction": direction, "messageType": msg_type,
            "hex": message.hex()}
    case.update(extra)
    case["expect"] = {"frame": "control", "json": obj, "jsonText": text}
    return case


def data_case(name, direction, msg_type, message, stream, cid, payload, **extra):
    case = {"name": name, "direction": direction, "messageType": msg_type,
            "hex": message.hex()}
    case.update(extra)
    case["expect"] = {"frame": "data", "stream": stream, "id": cid, "payloadHex": payload.hex()}
    return case


def error_case(name, msg_type, message, error, direction="both", **extra):
    case = {"name": name, "direction": direction, "messageType": msg_type,
            "hex": message.hex()}
    case.update(extra)
    case["expect"] = {"error": error, "closeCode": CLOSE_CODES[error]}
    return case


# ---- mana.v1 -----------------------------------------------------------------

def mana_data(stream, cid, payload):
    return bytes([STREAMS[stream]]) + struct.pack(">I", cid) + payload


def mana_v1_cases():
    p = "mana.v1"
    cases = []
    for name, direction, obj in control_messages(p):
        cases.append(control_case(name, direction, "text", compact(obj).encode(), obj))
    for name, direction, stream, cid, payload in DATA_PAYLOADS:
        cases.append(data_case(name, direction, "binary", mana_data(stream, cid, payload),
                               stream, cid, payload))
    # Exact limits.
    msg16 = mana_data("stdout", 1, b"0123456789a")
    assert len(msg16) == 16
    cases.append(data_case("data_exactly_max_frame", "both", "binary", msg16, "stdout", 1,
                           b"0123456789a", maxFrame=16))
    ping = {"t": "ping", "ts": 1}
    cases.append(control_case("control_exactly_max_control_json", "both", "text",
                              compact(ping).encode(), ping, maxControlJson=len(compact(ping))))
    # Errors.
    cases += [
        error_case("binary_empty", "binary", b"", "truncated_frame"),
        error_case("binary_4_bytes", "binary", bytes.fromhex("01000000"), "truncated_frame"),
        error_case("stream_0x00", "binary", bytes.fromhex("000000000161"), "unknown_stream"),
        error_case("stream_0x03", "binary", bytes.fromhex("030000000161"), "unknown_stream"),
        error_case("stream_0x10", "binary", bytes.fromhex("100000000161"), "unknown_stream"),
        error_case("stream_0xff", "binary", bytes.fromhex("ff0000000161"), "unknown_stream"),
        error_case("channel_id_0", "binary", bytes.fromhex("010000000061"), "out_of_range"),
        error_case("channel_id_2pow31", "binary", bytes.fromhex("018000000061"), "out_of_range"),
        error_case("channel_id_max_u32", "binary", bytes.fromhex("01ffffffff61"), "out_of_range"),
        error_case("binary_over_max_frame", "binary", mana_data("stdout", 1, b"0123456789ab"),
                   "frame_too_large", maxFrame=16),
        error_case("text_over_max_frame", "text", compact({"t": "ping", "ts": 12345}).encode(),
                   "frame_too_large", maxFrame=16),
        error_case("control_over_max_control_json", "text", compact(ping).encode(),
                   "control_too_large", maxControlJson=len(compact(ping)) - 1),
    ]
    return cases


# ---- json-base64.v1 ----------------------------------------------------------

def jb_data_text(stream, cid, payload):
    return ('{"kind":"data","stream":"%s","id":%d,"payload":"%s"}'
            % (stream, cid, base64.b64encode(payload).decode()))


def json_base64_v1_cases():
    p = "json-base64.v1"
    cases = []
    for name, direction, obj in control_messages(p):
        extra = {"note": BOOTSTRAP_NOTE} if name in ("hello", "hello_ok") else {}
        cases.append(control_case(name, direction, "text", compact(obj).encode(), obj, **extra))
    for name, direction, stream, cid, payload in DATA_PAYLOADS:
        cases.append(data_case(name, direction, "text",
                               jb_data_text(stream, cid, payload).encode(), stream, cid, payload))
    # Valid but not in the encoder's canonical form: decode only.
    cases += [
        data_case("data_reordered_with_whitespace", "both", "text",
                  b'{ "payload" : "aGk=", "id" : 7, "stream" : "stderr", "kind" : "data" }',
                  "stderr", 7, b"hi", canonical=False),
        data_case("data_unknown_member_ignored", "both", "text",
                  b'{"kind":"data","stream":"stdout","id":1,"payload":"aGk=","seq":5}',
                  "stdout", 1, b"hi", canonical=False),
        data_case("data_nesting_depth_8", "both", "text",
                  b'{"kind":"data","stream":"stdout","id":1,"payload":"aGk=","x":[[[[[[[]]]]]]]}',
                  "stdout", 1, b"hi", canonical=False),
        data_case("data_escaped_kind", "both", "text",
                  b'{"kind":"d\\u0061ta","stream":"stdout","id":1,"payload":"aGk="}',
                  "stdout", 1, b"hi", canonical=False),
    ]
    # Limits: data frames are bounded by maxFrame only, controls also by maxControlJson.
    big = jb_data_text("stdout", 1, b"abcdef")
    cases.append(data_case("data_exactly_max_frame", "both", "text", big.encode(), "stdout", 1,
                           b"abcdef", maxFrame=len(big)))
    cases.append(data_case("data_not_bound_by_max_control_json", "both", "text", big.encode(),
                           "stdout", 1, b"abcdef", maxControlJson=16))
    ping = {"t": "ping", "ts": 1}
    cases.append(control_case("control_exactly_max_control_json", "both", "text",
                              compact(ping).encode(), ping, maxControlJson=len(compact(ping))))
    # "t" decides: an object with "t" is a control frame even with "kind":"data".
    ping_kind = {"t": "ping", "ts": 1, "kind": "data"}
    cases.append(control_case("control_with_kind_data_member", "both", "text",
                              compact(ping_kind).encode(), ping_kind,
                              note="an object with a \"t\" member is a control frame"))

    def d(stream='"stdout"', cid="1", payload='"aGk="'):
        members = []
        if stream is not None:
            members.append('"stream":' + stream)
        if cid is not None:
            members.append('"id":' + cid)
        if payload is not None:
            members.append('"payload":' + payload)
        return ('{"kind":"data",' + ",".join(members) + "}").encode()

    cases += [
        error_case("binary_message", "binary", jb_data_text("stdout", 1, b"hi").encode(),
                   "wrong_message_type"),
        error_case("empty_text", "text", b"", "bad_json"),
        error_case("not_json", "text", b"hello", "bad_json"),
        error_case("unterminated_json", "text", b'{"kind":"data"', "bad_json"),
        error_case("trailing_garbage", "text", b'{"t":"ping","ts":1} x', "bad_json"),
        error_case("invalid_utf8", "text", b'{"t":"close","id":1,"reason":"\xff"}', "bad_json"),
        error_case("stream_unknown", "text", d(stream='"stdin"'), "unknown_stream"),
        error_case("stream_not_string", "text", d(stream="1"), "wrong_type"),
        error_case("stream_missing", "text", d(stream=None), "missing_field"),
        error_case("id_0", "text", d(cid="0"), "out_of_range"),
        error_case("id_2pow31", "text", d(cid="2147483648"), "out_of_range"),
        error_case("id_negative", "text", d(cid="-1"), "out_of_range"),
        error_case("id_string", "text", d(cid='"1"'), "wrong_type"),
        error_case("id_fraction", "text", d(cid="1.0"), "wrong_type"),
        error_case("id_missing", "text", d(cid=None), "missing_field"),
        error_case("data_nesting_depth_9", "text",
                   b'{"kind":"data","stream":"stdout","id":1,"payload":"aGk=","x":[[[[[[[[]]]]]]]]}',
                   "json_too_deep"),
        error_case("payload_missing", "text", d(payload=None), "missing_field"),
        error_case("payload_null", "text", d(payload="null"), "wrong_type"),
        error_case("base64_missing_padding", "text", d(payload='"aGk"'), "bad_base64"),
        error_case("base64_nonzero_trailing_bits_1", "text", d(payload='"aGl="'), "bad_base64"),
        error_case("base64_nonzero_trailing_bits_2", "text", d(payload='"aB=="'), "bad_base64"),
        error_case("base64_triple_padding", "text", d(payload='"a==="'), "bad_base64"),
        error_case("base64_padding_inside", "text", d(payload='"aGk=aGk="'), "bad_base64"),
        error_case("base64_space", "text", d(payload='"aG k"'), "bad_base64"),
        error_case("base64_url_alphabet", "text", d(payload='"-_-_"'), "bad_base64"),
        error_case("text_over_max_frame", "text", big.encode(), "frame_too_large",
                   maxFrame=len(big) - 1),
        error_case("control_over_max_control_json", "text", compact(ping).encode(),
                   "control_too_large", maxControlJson=len(compact(ping)) - 1),
    ]
    return cases


# ---- lenpfx.v1 ---------------------------------------------------------------

def envelope(kind, cid, body):
    return struct.pack(">IBI", 5 + len(body), kind, cid) + body


def lenpfx_v1_cases():
    p = "lenpfx.v1"
    cases = []
    for name, direction, obj in control_messages(p):
        extra = {"note": BOOTSTRAP_NOTE} if name in ("hello", "hello_ok") else {}
        cases.append(control_case(name, direction, "binary",
                                  envelope(0x10, 0, compact(obj).encode()), obj, **extra))
    for name, direction, stream, cid, payload in DATA_PAYLOADS:
        cases.append(data_case(name, direction, "binary", envelope(STREAMS[stream], cid, payload),
                               stream, cid, payload))
    msg16 = envelope(0x01, 1, b"0123456")
    assert len(msg16) == 16
    cases.append(data_case("data_exactly_max_frame", "both", "binary", msg16, "stdout", 1,
                           b"0123456", maxFrame=16))
    ping = {"t": "ping", "ts": 1}
    cases.append(control_case("control_exactly_max_control_json", "both", "binary",
                              envelope(0x10, 0, compact(ping).encode()), ping,
                              maxControlJson=len(compact(ping))))
    cases += [
        error_case("text_message", "text", compact(ping).encode(), "wrong_message_type",
                   note="any text message after hello_ok"),
        error_case("binary_empty", "binary", b"", "truncated_frame"),
        error_case("length_only", "binary", bytes.fromhex("00000005"), "truncated_frame"),
        error_case("header_8_bytes", "binary", bytes.fromhex("0000000501000000"),
                   "truncated_frame"),
        error_case("length_too_big", "binary", bytes.fromhex("00000007010000000161"),
                   "bad_length"),
        error_case("length_too_small", "binary", bytes.fromhex("00000005010000000161"),
                   "bad_length"),
        error_case("length_below_5", "binary", bytes.fromhex("000000040100000001"), "bad_length"),
        error_case("length_max_u32", "binary", bytes.fromhex("ffffffff010000000161"),
                   "bad_length"),
        error_case("kind_0x00", "binary", bytes.fromhex("00000006000000000161"),
                   "unknown_stream"),
        error_case("kind_0x03", "binary", bytes.fromhex("00000006030000000161"),
                   "unknown_stream"),
        error_case("kind_0x11", "binary", bytes.fromhex("00000006110000000161"),
                   "unknown_stream"),
        error_case("kind_0xff", "binary", bytes.fromhex("00000006ff0000000161"),
                   "unknown_stream"),
        error_case("control_id_not_0", "binary", envelope(0x10, 1, compact(ping).encode()),
                   "out_of_range"),
        error_case("data_id_0", "binary", envelope(0x01, 0, b"a"), "out_of_range"),
        error_case("data_id_2pow31", "binary", envelope(0x02, 0x80000000, b"a"),
                   "out_of_range"),
        error_case("over_max_frame", "binary", envelope(0x01, 1, b"01234567"),
                   "frame_too_large", maxFrame=16),
        error_case("control_over_max_control_json", "binary",
                   envelope(0x10, 0, compact(ping).encode()), "control_too_large",
                   maxControlJson=len(compact(ping)) - 1),
    ]
    return cases


PROFILES = [
    ("mana.v1", "fuzz_decode_mana_v1", mana_v1_cases),
    ("json-base64.v1", "fuzz_decode_json_base64", json_base64_v1_cases),
    ("lenpfx.v1", "fuzz_decode_lenpfx", lenpfx_v1_cases),
]

# Seeds: the valid data cases, a few controls and one case per error class.
SEED_CONTROLS = {"hello", "open", "flow", "close_utf8_reason"}


def seeds(cases):
    out = []
    seen_errors = set()
    for c in cases:
        exp = c["expect"]
        take = False
        if exp.get("frame") == "data":
            take = len(c["hex"]) <= 2 * 64
        elif exp.get("frame") == "control":
            take = c["name"] in SEED_CONTROLS
        elif exp["error"] not in seen_errors:
            seen_errors.add(exp["error"])
            take = True
        if take:
            prefix = b"\x00" if c["messageType"] == "text" else b"\x01"
            out.append(prefix + bytes.fromhex(c["hex"]))
    return out


def render(cases):
    lines = ["["]
    for i, c in enumerate(cases):
        sep = "," if i + 1 < len(cases) else ""
        lines.append("  " + json.dumps(c, ensure_ascii=False, separators=(", ", ": ")) + sep)
    lines.append("]")
    return "\n".join(lines) + "\n"


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for profile, target, make in PROFILES:
        cases = make()
        names = [c["name"] for c in cases]
        assert len(names) == len(set(names)), profile + ": duplicate case names"
        files = {os.path.join(HERE, profile + ".json"): render(cases).encode()}
        corpus = os.path.join(ROOT, "tests", "fuzz", "corpus", target)
        for seed in seeds(cases):
            files[os.path.join(corpus, hashlib.sha1(seed).hexdigest())] = seed
        for path, content in files.items():
            old = None
            if os.path.exists(path):
                with open(path, "rb") as f:
                    old = f.read()
            if old == content:
                continue
            if check:
                stale.append(path)
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(content)
    if stale:
        print("stale:\n  " + "\n  ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
