#!/usr/bin/python3
"""Unit test: conformance/profiles.py against the golden vectors of conformance/vectors/.

Every case must decode to the expected frame or error, and every canonical valid case must encode
back to the same bytes.
Usage: test_vectors.py  (exit 0 when every case passes)
"""
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from conformance import profiles  # noqa: E402


def load(profile_id):
    with open(os.path.join(HERE, "vectors", profile_id + ".json")) as f:
        return json.load(f)


class VectorTest(unittest.TestCase):
    def run_profile(self, profile_id):
        prof = profiles.get(profile_id)
        cases = load(profile_id)
        self.assertGreater(len(cases), 10)
        for case in cases:
            with self.subTest(profile=profile_id, case=case["name"]):
                self.check_case(prof, case)

    def check_case(self, prof, case):
        mtype = case["messageType"]
        msg = bytes.fromhex(case["hex"])
        limits = profiles.Limits(case.get("maxFrame", profiles.DEFAULT_MAX_FRAME),
                                 case.get("maxControlJson", profiles.DEFAULT_MAX_CONTROL_JSON))
        exp = case["expect"]
        canonical = case.get("canonical", True)
        if "error" in exp:
            with self.assertRaises(profiles.DecodeError) as cm:
                prof.decode(mtype, msg, limits)
            self.assertEqual(cm.exception.errc, exp["error"])
            self.assertEqual(cm.exception.close_code, exp["closeCode"])
            return
        frame = prof.decode(mtype, msg, limits)
        if exp["frame"] == "control":
            self.assertIsInstance(frame, profiles.Control)
            self.assertEqual(json.loads(frame.text), exp["json"])
            self.assertEqual(frame.text, exp["jsonText"])
            if canonical:
                self.assertEqual(prof.encode_control(exp["jsonText"]), (mtype, msg))
        else:
            self.assertIsInstance(frame, profiles.Data)
            self.assertEqual(frame.stream, exp["stream"])
            self.assertEqual(frame.id, exp["id"])
            self.assertEqual(frame.payload, bytes.fromhex(exp["payloadHex"]))
            if canonical:
                self.assertEqual(prof.encode_data(exp["stream"], exp["id"],
                                                  bytes.fromhex(exp["payloadHex"])), (mtype, msg))

    def test_mana_v1(self):
        self.run_profile("mana.v1")

    def test_json_base64_v1(self):
        self.run_profile("json-base64.v1")

    def test_lenpfx_v1(self):
        self.run_profile("lenpfx.v1")

    def test_split_fits_max_frame(self):
        for prof in profiles.PROFILES.values():
            for max_frame in (1024, 4096, 65545):
                msgs = prof.encode_data_split("stdout", profiles.MAX_CHANNEL_ID,
                                              bytes(range(256)) * 40, max_frame)
                self.assertTrue(all(len(m) <= max_frame for _, m in msgs), prof.id)
                got = b"".join(prof.decode(t, m, profiles.Limits(max_frame)).payload
                               for t, m in msgs)
                self.assertEqual(got, bytes(range(256)) * 40)


if __name__ == "__main__":
    unittest.main()
