// Tests of the wire profiles (mana.v1, json-base64.v1, lenpfx.v1), the profile
// registry, data splitting, strict base64, and the golden vectors under
// conformance/vectors/.
#include "mana/core/wire_profile.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#ifndef MANA_SOURCE_DIR
#define MANA_SOURCE_DIR "."
#endif

namespace {

using namespace mana::core;
using Json = nlohmann::json;

Bytes bytes_of(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

std::string string_of(const Bytes& b) {
  return std::string(b.begin(), b.end());
}

Bytes iota_bytes(std::size_t n, std::uint8_t start = 0) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) {
    b[i] = static_cast<std::uint8_t>(start + i);
  }
  return b;
}

std::optional<Bytes> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    return std::nullopt;
  }
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') {
      return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
      return c - 'A' + 10;
    }
    return -1;
  };
  Bytes out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]);
    const int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    out.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
  }
  return out;
}

FrameLimits limits_with(std::size_t max_frame, std::size_t max_control_json = 64 * 1024) {
  FrameLimits l;
  l.max_frame = max_frame;
  l.max_control_json = max_control_json;
  return l;
}

Result<Frame> decode(const WireProfile& p, MessageType type, const Bytes& message,
                     const FrameLimits& limits = {}) {
  return p.decode(type, ByteView(message), limits);
}

const DataFrame* data_of(const Result<Frame>& r) {
  return r.ok() ? std::get_if<DataFrame>(&r.value()) : nullptr;
}

const ControlFrame* control_of(const Result<Frame>& r) {
  return r.ok() ? std::get_if<ControlFrame>(&r.value()) : nullptr;
}

void check_error(const Result<Frame>& r, Errc expected) {
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == expected);
  CHECK(r.error().origin == Origin::remote);
  CHECK_FALSE(r.error().detail.empty());
}

// Decodes `message`, expects a data frame equal to (stream, id, payload).
void check_data(const Result<Frame>& r, Stream stream, ChannelId id, const Bytes& payload) {
  const DataFrame* d = data_of(r);
  REQUIRE(d != nullptr);
  CHECK(d->stream == stream);
  CHECK(d->id == id);
  CHECK(d->payload == payload);
}

void check_control(const Result<Frame>& r, std::string_view text) {
  const ControlFrame* c = control_of(r);
  REQUIRE(c != nullptr);
  CHECK(c->json == text);
}

const std::vector<const WireProfile*>& builtin_profiles() {
  static const std::vector<const WireProfile*> all = {&mana_v1_profile(), &json_base64_v1_profile(),
                                                      &lenpfx_v1_profile()};
  return all;
}

// Message type a profile uses for data frames.
MessageType data_type_of(const WireProfile& p) {
  return &p == &json_base64_v1_profile() ? MessageType::text : MessageType::binary;
}

MessageType control_type_of(const WireProfile& p) {
  return &p == &lenpfx_v1_profile() ? MessageType::binary : MessageType::text;
}

constexpr ChannelId max_id = 2147483647;

}  // namespace

// ---- mana.v1 -------------------------------------------------------------------

TEST_CASE("mana.v1 encodes exact bytes", "[frame]") {
  const WireProfile& p = mana_v1_profile();
  CHECK(p.id() == "mana.v1");

  const OutMessage d = p.encode_data(Stream::err, 0x01020304, Bytes{0xaa, 0xbb});
  CHECK(d.type == MessageType::binary);
  CHECK(d.data == Bytes{0x02, 0x01, 0x02, 0x03, 0x04, 0xaa, 0xbb});

  const OutMessage e = p.encode_data(Stream::out, max_id, Bytes{});
  CHECK(e.data == Bytes{0x01, 0x7f, 0xff, 0xff, 0xff});

  const OutMessage c = p.encode_control(R"({"t":"ping","ts":1})");
  CHECK(c.type == MessageType::text);
  CHECK(string_of(c.data) == R"({"t":"ping","ts":1})");
}

TEST_CASE("mana.v1 round trips data and control", "[frame]") {
  const WireProfile& p = mana_v1_profile();
  for (const Stream s : {Stream::out, Stream::err}) {
    for (const std::size_t n : {0, 1, 255, 256, 4096}) {
      const Bytes payload = iota_bytes(n, 7);
      const OutMessage m = p.encode_data(s, 42, payload);
      check_data(decode(p, m.type, m.data), s, 42, payload);
    }
  }
  const OutMessage c = p.encode_control(R"({"t":"close","id":1,"reason":"bye ✓"})");
  check_control(decode(p, c.type, c.data), R"({"t":"close","id":1,"reason":"bye ✓"})");
}

TEST_CASE("mana.v1 passes any text through as control (parsed later)", "[frame]") {
  const WireProfile& p = mana_v1_profile();
  check_control(decode(p, MessageType::text, bytes_of("not json")), "not json");
  check_control(decode(p, MessageType::text, Bytes{}), "");
}

TEST_CASE("mana.v1 rejects malformed messages", "[frame]") {
  const WireProfile& p = mana_v1_profile();

  SECTION("shorter than the header") {
    for (std::size_t n = 0; n < 5; ++n) {
      INFO("size " << n);
      check_error(decode(p, MessageType::binary, Bytes(n, 0x01)), Errc::truncated_frame);
    }
  }
  SECTION("reserved stream bytes") {
    for (int b = 0; b < 256; ++b) {
      if (b == 0x01 || b == 0x02) {
        continue;
      }
      INFO("stream " << b);
      check_error(decode(p, MessageType::binary, Bytes{static_cast<std::uint8_t>(b), 0, 0, 0, 1}),
                  Errc::unknown_stream);
    }
  }
  SECTION("channel id outside 1..2^31-1") {
    check_error(decode(p, MessageType::binary, Bytes{0x01, 0, 0, 0, 0, 0x61}), Errc::out_of_range);
    check_error(decode(p, MessageType::binary, Bytes{0x01, 0x80, 0, 0, 0}), Errc::out_of_range);
    check_error(decode(p, MessageType::binary, Bytes{0x02, 0xff, 0xff, 0xff, 0xff}),
                Errc::out_of_range);
    CHECK(decode(p, MessageType::binary, Bytes{0x02, 0x7f, 0xff, 0xff, 0xff}).ok());
  }
  SECTION("close is not a frame") {
    check_error(decode(p, MessageType::close, Bytes{}), Errc::wrong_message_type);
  }
  SECTION("size limits, exact boundaries") {
    const FrameLimits l = limits_with(16, 8);
    CHECK(decode(p, MessageType::binary, p.encode_data(Stream::out, 1, Bytes(11)).data, l).ok());
    check_error(decode(p, MessageType::binary, p.encode_data(Stream::out, 1, Bytes(12)).data, l),
                Errc::frame_too_large);
    check_error(decode(p, MessageType::text, Bytes(17, '{'), l), Errc::frame_too_large);
    check_control(decode(p, MessageType::text, bytes_of("12345678"), l), "12345678");
    check_error(decode(p, MessageType::text, bytes_of("123456789"), l), Errc::control_too_large);
  }
  SECTION("default maxFrame is 1 MiB") {
    const Bytes big = p.encode_data(Stream::out, 1, Bytes((1u << 20) - 5)).data;
    CHECK(decode(p, MessageType::binary, big).ok());
    const Bytes bigger = p.encode_data(Stream::out, 1, Bytes((1u << 20) - 4)).data;
    check_error(decode(p, MessageType::binary, bigger), Errc::frame_too_large);
  }
}

TEST_CASE("mana.v1 max_payload is exact", "[frame]") {
  const WireProfile& p = mana_v1_profile();
  CHECK(p.max_payload(1u << 20) == (1u << 20) - 5);
  CHECK(p.max_payload(6) == 1);
  CHECK(p.max_payload(5) == 0);
  CHECK(p.max_payload(0) == 0);
  for (std::size_t mf = 6; mf < 64; ++mf) {
    CHECK(p.encode_data(Stream::out, max_id, Bytes(p.max_payload(mf))).data.size() == mf);
  }
}

// ---- json-base64.v1 --------------------------------------------------------------

TEST_CASE("json-base64.v1 encodes exact bytes", "[frame]") {
  const WireProfile& p = json_base64_v1_profile();
  CHECK(p.id() == "json-base64.v1");

  const OutMessage d = p.encode_data(Stream::out, 1, bytes_of("hi"));
  CHECK(d.type == MessageType::text);
  CHECK(string_of(d.data) == R"({"kind":"data","stream":"stdout","id":1,"payload":"aGk="})");

  CHECK(string_of(p.encode_data(Stream::err, max_id, Bytes{}).data) ==
        R"({"kind":"data","stream":"stderr","id":2147483647,"payload":""})");
  CHECK(string_of(p.encode_data(Stream::out, 10, Bytes{0xff, 0xfe, 0xfd}).data) ==
        R"({"kind":"data","stream":"stdout","id":10,"payload":"//79"})");

  const OutMessage c = p.encode_control(R"({"t":"ping","ts":1})");
  CHECK(c.type == MessageType::text);
  CHECK(string_of(c.data) == R"({"t":"ping","ts":1})");
}

TEST_CASE("json-base64.v1 round trips data and control", "[frame]") {
  const WireProfile& p = json_base64_v1_profile();
  for (const Stream s : {Stream::out, Stream::err}) {
    for (const std::size_t n : {0, 1, 2, 3, 4, 255, 256, 4096}) {
      const Bytes payload = iota_bytes(n, 3);
      const OutMessage m = p.encode_data(s, 9, payload);
      check_data(decode(p, m.type, m.data), s, 9, payload);
    }
  }
  const std::string open = R"({"t":"open","id":1,"kind":"tcp","target":{"host":"h","port":22}})";
  check_control(decode(p, MessageType::text, bytes_of(open)), open);
}

TEST_CASE("json-base64.v1 tells data from control", "[frame]") {
  const WireProfile& p = json_base64_v1_profile();
  SECTION("everything but a top-level kind:data object is control, verbatim") {
    for (const std::string text :
         {R"({"t":"ping","ts":1})", R"(  {"t":"ping"}  )", R"([1,2,3])", R"("data")", "5", "null",
          R"({"kind":5,"stream":"stdout","id":1,"payload":""})",
          R"({"kind":"DATA","stream":"stdout","id":1,"payload":""})",
          R"({"t":"x","a":{"kind":"data","stream":"stdout","id":1,"payload":""}})",
          R"({"kind":["data"]})", R"({})"}) {
      INFO(text);
      check_control(decode(p, MessageType::text, bytes_of(text)), text);
    }
  }
  SECTION("data members: unknown ones ignored, order free, duplicates last-wins") {
    check_data(decode(p, MessageType::text,
                      bytes_of(R"({"payload":"aGk=","x":{"y":[1]},"id":3,"stream":"stderr",)"
                               R"("kind":"data","seq":5})")),
               Stream::err, 3, bytes_of("hi"));
    check_data(decode(p, MessageType::text,
                      bytes_of(R"({"kind":"data","stream":"stdin","stream":"stdout","id":1,)"
                               R"("payload":""})")),
               Stream::out, 1, Bytes{});
    check_control(decode(p, MessageType::text,
                         bytes_of(R"({"kind":"data","kind":"x","stream":"stdout","id":1})")),
                  R"({"kind":"data","kind":"x","stream":"stdout","id":1})");
  }
  SECTION("a \"t\" member makes any object a control frame") {
    for (const std::string text :
         {R"({"t":"ping","ts":1,"kind":"data"})",
          R"({"kind":"data","stream":"stdout","id":1,"payload":"","t":5})",
          R"({"kind":"data","stream":"stdout","id":1,"payload":"","x":{},"t":null})"}) {
      INFO(text);
      check_control(decode(p, MessageType::text, bytes_of(text)), text);
    }
  }
  SECTION("data frames obey the nesting limit") {
    const std::string head = R"({"kind":"data","stream":"stdout","id":1,"payload":"","x":)";
    const auto nested = [&head](std::size_t depth) {  // whole text nests `depth` levels
      const std::string x =
          depth == 1 ? "0" : std::string(depth - 1, '[') + std::string(depth - 1, ']');
      return bytes_of(head + x + "}");
    };
    check_data(decode(p, MessageType::text, nested(8)), Stream::out, 1, Bytes{});
    check_error(decode(p, MessageType::text, nested(9)), Errc::json_too_deep);
    FrameLimits shallow;
    shallow.max_json_depth = 1;
    check_data(decode(p, MessageType::text, nested(1), shallow), Stream::out, 1, Bytes{});
    check_error(decode(p, MessageType::text, nested(2), shallow), Errc::json_too_deep);
    // Control frames are handed on whatever their depth (the control parser checks it).
    const std::string deep_control = R"({"t":"x","a":[[[[[[[[[[1]]]]]]]]]]})";
    check_control(decode(p, MessageType::text, bytes_of(deep_control)), deep_control);
  }
  SECTION("deep nesting is bounded by the size limits, not the stack") {
    std::string deep(100000, '[');
    deep.append(100000, ']');
    check_error(decode(p, MessageType::text, bytes_of(deep)), Errc::control_too_large);
    std::string deep_obj = R"({"kind":"data","stream":"stdout","id":1,"payload":"","x":)";
    deep_obj.append(100000, '[');
    deep_obj.append(100000, ']');
    deep_obj += "}";
    check_error(decode(p, MessageType::text, bytes_of(deep_obj)), Errc::json_too_deep);
  }
}

TEST_CASE("json-base64.v1 rejects malformed messages", "[frame]") {
  const WireProfile& p = json_base64_v1_profile();
  const auto data_text = [](std::string_view members) {
    return bytes_of(std::string(R"({"kind":"data",)") + std::string(members) + "}");
  };

  SECTION("binary and close messages") {
    check_error(decode(p, MessageType::binary, p.encode_data(Stream::out, 1, bytes_of("hi")).data),
                Errc::wrong_message_type);
    check_error(decode(p, MessageType::close, Bytes{}), Errc::wrong_message_type);
  }
  SECTION("not JSON") {
    for (const std::string text : {"", "hello", R"({"kind":"data")", R"({"t":"ping"} x)",
                                   "{\"t\":\"\xff\"}", R"({"a":1,})", "{'a':1}", "[1] [2]"}) {
      INFO(text);
      check_error(decode(p, MessageType::text, bytes_of(text)), Errc::bad_json);
    }
  }
  SECTION("stream") {
    check_error(decode(p, MessageType::text, data_text(R"("id":1,"payload":"")")),
                Errc::missing_field);
    check_error(decode(p, MessageType::text, data_text(R"("stream":1,"id":1,"payload":"")")),
                Errc::wrong_type);
    check_error(decode(p, MessageType::text, data_text(R"("stream":{},"id":1,"payload":"")")),
                Errc::wrong_type);
    for (const char* s : {"stdin", "STDOUT", "", "out"}) {
      INFO(s);
      check_error(decode(p, MessageType::text,
                         data_text(std::string(R"("stream":")") + s + R"(","id":1,"payload":"")")),
                  Errc::unknown_stream);
    }
  }
  SECTION("id") {
    check_error(decode(p, MessageType::text, data_text(R"("stream":"stdout","payload":"")")),
                Errc::missing_field);
    for (const char* id : {"0", "-1", "-0", "2147483648", "4294967296", "18446744073709551615"}) {
      INFO(id);
      check_error(
          decode(p, MessageType::text,
                 data_text(std::string(R"("stream":"stdout","id":)") + id + R"(,"payload":"")")),
          Errc::out_of_range);
    }
    for (const char* id : {"\"1\"", "1.0", "1e0", "true", "null", "[1]", "18446744073709551616"}) {
      INFO(id);
      check_error(
          decode(p, MessageType::text,
                 data_text(std::string(R"("stream":"stdout","id":)") + id + R"(,"payload":"")")),
          Errc::wrong_type);
    }
    check_data(decode(p, MessageType::text,
                      data_text(R"("stream":"stdout","id":2147483647,"payload":"")")),
               Stream::out, max_id, Bytes{});
  }
  SECTION("payload") {
    check_error(decode(p, MessageType::text, data_text(R"("stream":"stdout","id":1)")),
                Errc::missing_field);
    check_error(decode(p, MessageType::text, data_text(R"("stream":"stdout","id":1,"payload":0)")),
                Errc::wrong_type);
    for (const char* b64 : {"aGk", "aGl=", "aB==", "a===", "aGk=aGk=", "aG k", "-_-_", "aGk=\\n"}) {
      INFO(b64);
      check_error(
          decode(p, MessageType::text,
                 data_text(std::string(R"("stream":"stdout","id":1,"payload":")") + b64 + "\"")),
          Errc::bad_base64);
    }
  }
  SECTION("size limits, exact boundaries") {
    const Bytes msg = p.encode_data(Stream::out, 1, bytes_of("abcdef")).data;
    CHECK(decode(p, MessageType::text, msg, limits_with(msg.size())).ok());
    check_error(decode(p, MessageType::text, msg, limits_with(msg.size() - 1)),
                Errc::frame_too_large);
    // Data frames are not bound by the control JSON limit.
    CHECK(decode(p, MessageType::text, msg, limits_with(msg.size(), 8)).ok());
    const Bytes ping = bytes_of(R"({"t":"ping","ts":1})");
    CHECK(decode(p, MessageType::text, ping, limits_with(1024, ping.size())).ok());
    check_error(decode(p, MessageType::text, ping, limits_with(1024, ping.size() - 1)),
                Errc::control_too_large);
    // The size check comes before parsing: oversized garbage is frame_too_large.
    check_error(decode(p, MessageType::text, Bytes(2000, 'x'), limits_with(1024)),
                Errc::frame_too_large);
  }
}

TEST_CASE("json-base64.v1 max_payload is exact for the longest id", "[frame]") {
  const WireProfile& p = json_base64_v1_profile();
  const std::size_t overhead = p.encode_data(Stream::out, max_id, Bytes{}).data.size();
  CHECK(overhead == p.encode_data(Stream::err, max_id, Bytes{}).data.size());
  CHECK(p.max_payload(0) == 0);
  CHECK(p.max_payload(overhead) == 0);
  CHECK(p.max_payload(overhead + 3) == 0);
  CHECK(p.max_payload(overhead + 4) == 3);
  CHECK(p.max_payload(1u << 20) == ((1u << 20) - overhead) / 4 * 3);
  for (std::size_t mf = overhead; mf < overhead + 64; ++mf) {
    INFO("max_frame " << mf);
    const std::size_t n = p.max_payload(mf);
    CHECK(n % 3 == 0);
    if (n > 0) {
      CHECK(p.encode_data(Stream::out, max_id, Bytes(n)).data.size() <= mf);
    }
    CHECK(p.encode_data(Stream::out, max_id, Bytes(n + 1)).data.size() > mf);
  }
}

// ---- lenpfx.v1 -------------------------------------------------------------------

TEST_CASE("lenpfx.v1 encodes exact bytes", "[frame]") {
  const WireProfile& p = lenpfx_v1_profile();
  CHECK(p.id() == "lenpfx.v1");

  const OutMessage c = p.encode_control("{}");
  CHECK(c.type == MessageType::binary);
  CHECK(c.data == Bytes{0, 0, 0, 7, 0x10, 0, 0, 0, 0, '{', '}'});

  const OutMessage d = p.encode_data(Stream::err, 0x01020304, Bytes{0xaa});
  CHECK(d.type == MessageType::binary);
  CHECK(d.data == Bytes{0, 0, 0, 6, 0x02, 1, 2, 3, 4, 0xaa});

  CHECK(p.encode_data(Stream::out, 1, Bytes{}).data == Bytes{0, 0, 0, 5, 0x01, 0, 0, 0, 1});
}

TEST_CASE("lenpfx.v1 round trips data and control", "[frame]") {
  const WireProfile& p = lenpfx_v1_profile();
  for (const Stream s : {Stream::out, Stream::err}) {
    for (const std::size_t n : {0, 1, 255, 256, 70000}) {
      const Bytes payload = iota_bytes(n, 1);
      const OutMessage m = p.encode_data(s, max_id, payload);
      check_data(decode(p, m.type, m.data), s, max_id, payload);
    }
  }
  const OutMessage c = p.encode_control(R"({"t":"flow","id":1,"credit":0,"rx":5})");
  check_control(decode(p, c.type, c.data), R"({"t":"flow","id":1,"credit":0,"rx":5})");
  check_control(decode(p, c.type, p.encode_control("").data), "");
}

TEST_CASE("lenpfx.v1 rejects malformed messages", "[frame]") {
  const WireProfile& p = lenpfx_v1_profile();

  SECTION("text and close messages") {
    check_error(decode(p, MessageType::text, bytes_of(R"({"t":"ping","ts":1})")),
                Errc::wrong_message_type);
    check_error(decode(p, MessageType::close, Bytes{}), Errc::wrong_message_type);
  }
  SECTION("shorter than the header, whatever the length field says") {
    for (std::size_t n = 0; n < 9; ++n) {
      INFO("size " << n);
      Bytes m(n, 0);
      if (n >= 4) {
        m[3] = static_cast<std::uint8_t>(n - 4);
      }
      check_error(decode(p, MessageType::binary, m), Errc::truncated_frame);
    }
  }
  SECTION("length field disagrees with the message size") {
    Bytes m = p.encode_data(Stream::out, 1, bytes_of("abc")).data;
    for (const std::uint8_t len : {0, 4, 5, 7, 9, 255}) {
      INFO("length " << int{len});
      m[3] = len;
      check_error(decode(p, MessageType::binary, m), Errc::bad_length);
    }
    m[3] = 8;
    CHECK(decode(p, MessageType::binary, m).ok());
    m[0] = 0x01;
    check_error(decode(p, MessageType::binary, m), Errc::bad_length);
  }
  SECTION("reserved kinds") {
    for (int k = 0; k < 256; ++k) {
      if (k == 0x01 || k == 0x02 || k == 0x10) {
        continue;
      }
      INFO("kind " << k);
      check_error(decode(p, MessageType::binary,
                         Bytes{0, 0, 0, 5, static_cast<std::uint8_t>(k), 0, 0, 0, 1}),
                  Errc::unknown_stream);
    }
  }
  SECTION("ids") {
    // Control envelopes must carry id 0 (out_of_range otherwise).
    Bytes c = p.encode_control("{}").data;
    c[8] = 1;
    check_error(decode(p, MessageType::binary, c), Errc::out_of_range);
    check_error(decode(p, MessageType::binary, Bytes{0, 0, 0, 5, 0x01, 0, 0, 0, 0}),
                Errc::out_of_range);
    check_error(decode(p, MessageType::binary, Bytes{0, 0, 0, 5, 0x02, 0x80, 0, 0, 0}),
                Errc::out_of_range);
  }
  SECTION("size limits, exact boundaries") {
    const FrameLimits l = limits_with(16, 4);
    CHECK(decode(p, MessageType::binary, p.encode_data(Stream::out, 1, Bytes(7)).data, l).ok());
    check_error(decode(p, MessageType::binary, p.encode_data(Stream::out, 1, Bytes(8)).data, l),
                Errc::frame_too_large);
    check_control(decode(p, MessageType::binary, p.encode_control("1234").data, l), "1234");
    check_error(decode(p, MessageType::binary, p.encode_control("12345").data, l),
                Errc::control_too_large);
  }
}

TEST_CASE("lenpfx.v1 max_payload is exact", "[frame]") {
  const WireProfile& p = lenpfx_v1_profile();
  CHECK(p.max_payload(1u << 20) == (1u << 20) - 9);
  CHECK(p.max_payload(10) == 1);
  CHECK(p.max_payload(9) == 0);
  CHECK(p.max_payload(0) == 0);
  if constexpr (sizeof(std::size_t) > 4) {
    // The 32-bit length field caps a message at 2^32 - 1 + 4 bytes.
    CHECK(p.max_payload(SIZE_MAX) == std::size_t{0xffffffff} - 5);
  }
  for (std::size_t mf = 10; mf < 64; ++mf) {
    CHECK(p.encode_data(Stream::out, max_id, Bytes(p.max_payload(mf))).data.size() == mf);
  }
}

// ---- all profiles ------------------------------------------------------------------

TEST_CASE("decoders check maxFrame first", "[frame]") {
  const Bytes huge((1u << 20) + 1, 0x01);
  for (const WireProfile* p : builtin_profiles()) {
    INFO(p->id());
    check_error(decode(*p, MessageType::binary, huge), Errc::frame_too_large);
    check_error(decode(*p, MessageType::text, huge), Errc::frame_too_large);
  }
}

TEST_CASE("encode_data_split respects maxFrame with exact boundaries", "[frame]") {
  for (const WireProfile* p : builtin_profiles()) {
    for (const std::size_t max_frame : {std::size_t{1024}, std::size_t{4099}}) {
      const std::size_t chunk = p->max_payload(max_frame);
      REQUIRE(chunk > 0);
      for (const std::size_t n : {std::size_t{0}, std::size_t{1}, chunk - 1, chunk, chunk + 1,
                                  3 * chunk, 3 * chunk + 7}) {
        INFO(p->id() << " max_frame " << max_frame << " payload " << n);
        const Bytes payload = iota_bytes(n, 11);
        std::vector<OutMessage> out;
        out.push_back(p->encode_control("{}"));  // existing messages are kept
        encode_data_split(*p, Stream::err, max_id, payload, max_frame, out);
        REQUIRE(out.size() == 1 + (n + chunk - 1) / chunk);
        Bytes joined;
        for (std::size_t i = 1; i < out.size(); ++i) {
          const OutMessage& m = out[i];
          CHECK(m.type == data_type_of(*p));
          CHECK(m.data.size() <= max_frame);
          const bool full = i + 1 < out.size() || n % chunk == 0;
          if (full && p != &json_base64_v1_profile()) {
            CHECK(m.data.size() == max_frame);  // binary profiles fill frames exactly
          }
          const auto r = decode(*p, m.type, m.data, limits_with(max_frame));
          const DataFrame* d = data_of(r);
          REQUIRE(d != nullptr);
          CHECK(d->stream == Stream::err);
          CHECK(d->id == max_id);
          CHECK(d->payload.size() == (full ? chunk : n % chunk));
          joined.insert(joined.end(), d->payload.begin(), d->payload.end());
        }
        CHECK(joined == payload);
      }
    }
  }
}

TEST_CASE("encode_data_split appends nothing when maxFrame cannot carry a byte", "[frame]") {
  for (const WireProfile* p : builtin_profiles()) {
    std::vector<OutMessage> out;
    encode_data_split(*p, Stream::out, 1, Bytes(10), 5, out);
    CHECK(out.empty());
  }
}

TEST_CASE("control frames use the profile's message type", "[frame]") {
  for (const WireProfile* p : builtin_profiles()) {
    INFO(p->id());
    const OutMessage m = p->encode_control(R"({"t":"pong","ts":9})");
    CHECK(m.type == control_type_of(*p));
    check_control(decode(*p, m.type, m.data), R"({"t":"pong","ts":9})");
  }
}

// ---- registry ------------------------------------------------------------------------

namespace {

// A custom profile: mana.v1 bytes under another id.
class RenamedProfile final : public WireProfile {
 public:
  explicit RenamedProfile(std::string id) : id_(std::move(id)) {}
  [[nodiscard]] std::string_view id() const noexcept override { return id_; }
  [[nodiscard]] Result<Frame> decode(MessageType type, ByteView message,
                                     const FrameLimits& limits) const override {
    return mana_v1_profile().decode(type, message, limits);
  }
  [[nodiscard]] OutMessage encode_control(std::string_view json_text) const override {
    return mana_v1_profile().encode_control(json_text);
  }
  [[nodiscard]] OutMessage encode_data(Stream stream, ChannelId id,
                                       ByteView payload) const override {
    return mana_v1_profile().encode_data(stream, id, payload);
  }
  [[nodiscard]] std::size_t max_payload(std::size_t max_frame) const noexcept override {
    return mana_v1_profile().max_payload(max_frame);
  }

 private:
  std::string id_;
};

}  // namespace

TEST_CASE("ProfileRegistry starts with the built-in profiles", "[frame]") {
  const ProfileRegistry reg;
  CHECK(reg.ids() == std::vector<std::string_view>{"mana.v1", "json-base64.v1", "lenpfx.v1"});
  CHECK(reg.find("mana.v1") == &mana_v1_profile());
  CHECK(reg.find("json-base64.v1") == &json_base64_v1_profile());
  CHECK(reg.find("lenpfx.v1") == &lenpfx_v1_profile());
  CHECK(reg.find(default_profile_id) == &mana_v1_profile());
  CHECK(reg.find("MANA.V1") == nullptr);
  CHECK(reg.find("mana.v2") == nullptr);
  CHECK(reg.find("") == nullptr);
  CHECK(subprotocol == "mana.ssh.v1");
}

TEST_CASE("ProfileRegistry adds custom profiles", "[frame]") {
  ProfileRegistry reg;
  auto custom = std::make_shared<RenamedProfile>("acme.raw.v1");
  REQUIRE(reg.add(custom).ok());
  CHECK(reg.find("acme.raw.v1") == custom.get());
  CHECK(reg.ids().size() == 4);
  CHECK(reg.ids().back() == "acme.raw.v1");

  // A second registry is independent.
  const ProfileRegistry other;
  CHECK(other.find("acme.raw.v1") == nullptr);
}

TEST_CASE("ProfileRegistry rejects duplicates, null and invalid ids", "[frame]") {
  ProfileRegistry reg;
  const auto check_rejected = [&reg](std::shared_ptr<const WireProfile> p) {
    const auto before = reg.ids();
    const Result<void> r = reg.add(std::move(p));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::invalid_argument);
    CHECK(r.error().origin == Origin::local);
    CHECK_FALSE(r.error().detail.empty());
    CHECK(reg.ids() == before);
  };

  check_rejected(nullptr);
  check_rejected(std::make_shared<RenamedProfile>("mana.v1"));
  check_rejected(std::make_shared<RenamedProfile>("lenpfx.v1"));
  REQUIRE(reg.add(std::make_shared<RenamedProfile>("acme.x.v1")).ok());
  check_rejected(std::make_shared<RenamedProfile>("acme.x.v1"));

  const std::vector<std::string> bad_ids = {
      std::string(), std::string(65, 'a'),    "has space", "tab\t", "caf\xc3\xa9",
      "del\x7f",     std::string("nul\0x", 5)};
  for (const std::string& id : bad_ids) {
    INFO("id of " << id.size() << " bytes");
    check_rejected(std::make_shared<RenamedProfile>(id));
  }
  CHECK(reg.add(std::make_shared<RenamedProfile>(std::string(64, 'z'))).ok());
  CHECK(reg.add(std::make_shared<RenamedProfile>("!")).ok());
  CHECK(reg.add(std::make_shared<RenamedProfile>("~")).ok());
}

// ---- base64 --------------------------------------------------------------------------

TEST_CASE("base64 matches RFC 4648 test vectors", "[frame]") {
  const std::pair<std::string_view, std::string_view> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    INFO(plain);
    CHECK(base64_encode(bytes_of(plain)) == encoded);
    const auto d = base64_decode(encoded);
    REQUIRE(d.ok());
    CHECK(*d == bytes_of(plain));
  }
  CHECK(base64_encode(Bytes{0xfb, 0xff, 0xbf}) == "+/+/");
}

TEST_CASE("base64 round trips every length and byte", "[frame]") {
  for (std::size_t n = 0; n <= 300; ++n) {
    const Bytes b = iota_bytes(n, static_cast<std::uint8_t>(n * 7));
    const std::string e = base64_encode(b);
    CHECK(e.size() == (n + 2) / 3 * 4);
    const auto d = base64_decode(e);
    REQUIRE(d.ok());
    CHECK(*d == b);
  }
}

TEST_CASE("base64 decoding is strict", "[frame]") {
  const std::vector<std::string> bad = {
      "Z",          "Zg",       "Zg=",  "Zm9",  "Zm9vY", "Z===",     "====",
      "=Zg=",       "Zg==Zg==", "Zm=v", "Zg=A", "Zh==",  "Zm9=",     "Zm9v\n",
      " Zm9v",      "Zm9v ",    "Zm9-", "Zm9_", "Zm9v=", "Zm9v====", std::string("Zm\0v", 4),
      "Zm9\xc3\xa9"};
  for (const std::string& text : bad) {
    INFO(text);
    const auto r = base64_decode(text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::bad_base64);
    CHECK(r.error().origin == Origin::remote);
  }
}

TEST_CASE("base64 accepts exactly the canonical encodings of every last quantum", "[frame]") {
  const std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::size_t accepted = 0;
  for (const char a : alphabet) {
    for (const char b : alphabet) {
      const std::string two = std::string{a, b} + "==";
      const auto r2 = base64_decode(two);
      if (r2.ok()) {
        ++accepted;
        CHECK(base64_encode(*r2) == two);
      }
      for (const char c : alphabet) {
        const std::string three = std::string{a, b, c} + "=";
        const auto r3 = base64_decode(three);
        if (r3.ok()) {
          ++accepted;
          CHECK(base64_encode(*r3) == three);
        }
      }
    }
  }
  CHECK(accepted == 256 + 65536);  // one encoding per 1-byte and per 2-byte value
}

// ---- golden vectors ------------------------------------------------------------------

namespace {

std::optional<Errc> errc_from_name(std::string_view name) {
  static const std::map<std::string_view, Errc> names = {
      {"truncated_frame", Errc::truncated_frame},
      {"bad_length", Errc::bad_length},
      {"unknown_stream", Errc::unknown_stream},
      {"wrong_message_type", Errc::wrong_message_type},
      {"bad_base64", Errc::bad_base64},
      {"frame_too_large", Errc::frame_too_large},
      {"control_too_large", Errc::control_too_large},
      {"bad_json", Errc::bad_json},
      {"json_too_deep", Errc::json_too_deep},
      {"not_an_object", Errc::not_an_object},
      {"missing_field", Errc::missing_field},
      {"wrong_type", Errc::wrong_type},
      {"out_of_range", Errc::out_of_range},
  };
  const auto it = names.find(name);
  if (it == names.end()) {
    return std::nullopt;
  }
  return it->second;
}

std::optional<Json> load_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  Json j = Json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) {
    return std::nullopt;
  }
  return j;
}

std::string str_field(const Json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Runs one golden case (a malformed case fails the test).
void run_golden_case(const WireProfile& p, const Json& c) {
  const std::string name = str_field(c, "name");
  INFO("profile " << p.id() << ", case " << name);
  REQUIRE_FALSE(name.empty());

  const std::string direction = str_field(c, "direction");
  CHECK((direction == "client->server" || direction == "server->client" || direction == "both"));

  const std::string type_name = str_field(c, "messageType");
  REQUIRE((type_name == "text" || type_name == "binary"));
  const MessageType type = type_name == "text" ? MessageType::text : MessageType::binary;

  const auto message = from_hex(str_field(c, "hex"));
  REQUIRE(message.has_value());

  FrameLimits limits;
  if (const auto it = c.find("maxFrame"); it != c.end()) {
    REQUIRE(it->is_number_unsigned());
    limits.max_frame = it->get<std::size_t>();
  }
  if (const auto it = c.find("maxControlJson"); it != c.end()) {
    REQUIRE(it->is_number_unsigned());
    limits.max_control_json = it->get<std::size_t>();
  }
  bool canonical = true;
  if (const auto it = c.find("canonical"); it != c.end()) {
    REQUIRE(it->is_boolean());
    canonical = it->get<bool>();
  }

  const auto exp_it = c.find("expect");
  REQUIRE(exp_it != c.end());
  REQUIRE(exp_it->is_object());
  const Json& expect = *exp_it;

  const Result<Frame> r = p.decode(type, ByteView(*message), limits);

  if (expect.contains("error")) {
    const auto errc = errc_from_name(str_field(expect, "error"));
    REQUIRE(errc.has_value());
    REQUIRE(expect.contains("closeCode"));
    REQUIRE(expect["closeCode"].is_number_unsigned());
    check_error(r, *errc);
    CHECK(static_cast<unsigned>(to_close_code(*errc)) == expect["closeCode"].get<unsigned>());
    return;
  }

  const std::string frame = str_field(expect, "frame");
  if (frame == "control") {
    const ControlFrame* cf = control_of(r);
    REQUIRE(cf != nullptr);
    const Json decoded = Json::parse(cf->json, nullptr, false);
    REQUIRE_FALSE(decoded.is_discarded());
    REQUIRE(expect.contains("json"));
    CHECK(decoded == expect["json"]);
    const std::string text = str_field(expect, "jsonText");
    REQUIRE_FALSE(text.empty());
    CHECK(Json::parse(text, nullptr, false) == expect["json"]);
    if (canonical) {
      CHECK(cf->json == text);
      const OutMessage out = p.encode_control(text);
      CHECK(out.type == type);
      CHECK(out.data == *message);
    }
  } else if (frame == "data") {
    const DataFrame* df = data_of(r);
    REQUIRE(df != nullptr);
    const std::string stream = str_field(expect, "stream");
    REQUIRE((stream == "stdout" || stream == "stderr"));
    CHECK(df->stream == (stream == "stdout" ? Stream::out : Stream::err));
    REQUIRE(expect.contains("id"));
    REQUIRE(expect["id"].is_number_unsigned());
    CHECK(df->id == expect["id"].get<std::uint64_t>());
    const auto payload = from_hex(str_field(expect, "payloadHex"));
    REQUIRE(payload.has_value());
    CHECK(df->payload == *payload);
    if (canonical) {
      const OutMessage out = p.encode_data(df->stream, df->id, *payload);
      CHECK(out.type == type);
      CHECK(out.data == *message);
    }
  } else {
    FAIL("expect is neither a frame nor an error");
  }
}

}  // namespace

TEST_CASE("golden vectors decode and re-encode exactly", "[frame][conformance]") {
  const std::filesystem::path dir =
      std::filesystem::path(MANA_SOURCE_DIR) / "conformance" / "vectors";
  INFO("vector directory " << dir.string());
  std::error_code ec;  // non-throwing overloads: tests may build with -fno-exceptions
  REQUIRE(std::filesystem::is_directory(dir, ec));

  std::vector<std::filesystem::path> files;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec) && it->path().extension() == ".json") {
      files.push_back(it->path());
    }
  }
  REQUIRE_FALSE(ec);
  std::sort(files.begin(), files.end());

  const ProfileRegistry registry;
  std::vector<std::string> seen;
  for (const auto& path : files) {
    const std::string profile_id = path.stem().string();  // "mana.v1.json" -> "mana.v1"
    INFO("file " << path.filename().string());
    const WireProfile* p = registry.find(profile_id);
    REQUIRE(p != nullptr);
    const auto cases = load_json(path);
    REQUIRE(cases.has_value());
    REQUIRE(cases->is_array());
    CHECK(cases->size() >= 20);
    std::vector<std::string> names;
    for (const Json& c : *cases) {
      REQUIRE(c.is_object());
      names.push_back(str_field(c, "name"));
      run_golden_case(*p, c);
    }
    std::sort(names.begin(), names.end());
    CHECK(std::adjacent_find(names.begin(), names.end()) == names.end());
    seen.push_back(profile_id);
  }
  // Every built-in profile has its vector file.
  CHECK(seen == std::vector<std::string>{"json-base64.v1", "lenpfx.v1", "mana.v1"});
}

// ---- header + shared payload parts ----------------------------------------------

TEST_CASE("raw profiles: header plus parts is the classic encoding", "[frame]") {
  for (const WireProfile* p : {&mana_v1_profile(), &lenpfx_v1_profile()}) {
    CAPTURE(p->id());
    CHECK(p->raw_payload());
    for (const std::size_t n : {0, 1, 4096, 20000}) {
      const Bytes payload = iota_bytes(n, 3);
      const OutMessage classic = p->encode_data(Stream::err, 77, payload);
      OutMessage m = p->encode_data_header(Stream::err, 77, n);
      CHECK(m.type == classic.type);
      CHECK(m.data.size() == classic.data.size() - n);
      // The payload in uneven parts, owned by a shared buffer as the replay does.
      const auto owner = std::make_shared<const Bytes>(payload);
      const ByteView all(*owner);
      for (std::size_t off = 0; off < n;) {
        const std::size_t k = std::min<std::size_t>(n - off, 1 + off % 5000);
        m.parts.push_back(mana::core::PayloadPart{owner, all.subspan(off, k)});
        off += k;
      }
      CHECK(m.size() == classic.data.size());
      CHECK(m.owned_size() == classic.data.size() - n);
      CHECK(m.flatten() == classic.data);
      const Bytes flat = m.flatten();
      auto f = p->decode(m.type, flat, FrameLimits{});
      REQUIRE(f);
      const auto* d = std::get_if<DataFrame>(&f.value());
      REQUIRE(d != nullptr);
      CHECK(d->payload == payload);
    }
  }
}

TEST_CASE("json-base64.v1 has no raw payload: no header-only encoding", "[frame]") {
  const WireProfile& p = json_base64_v1_profile();
  CHECK_FALSE(p.raw_payload());
  const OutMessage m = p.encode_data_header(Stream::out, 1, 10);
  CHECK(m.data.empty());
  CHECK(m.parts.empty());
  const OutMessage d = p.encode_data(Stream::out, 1, Bytes{1, 2, 3});
  CHECK(d.parts.empty());
  CHECK(d.size() == d.data.size());
  CHECK(d.flatten() == d.data);
}
