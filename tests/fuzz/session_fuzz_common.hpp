// Shared parts of the session fuzz targets (fuzz_server_session.cpp,
// fuzz_client_session.cpp): the input reader, control-message templates built
// from fuzz bytes, and the invariant checks run after every step. A violated
// invariant calls __builtin_trap() so libFuzzer (and the plain replay runner)
// report it as a crash.
//
// Input format (both targets): byte 0 selects the profile and a few harness
// flags, then a sequence of records [op u8][len u16 LE][len bytes]; a record
// cut short by the end of the input uses the bytes that are there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "../support/session_test_util.hpp"

namespace mana::fuzz {

namespace core = mana::core;
using core::ChannelId;
using core::OutMessage;
using core::SessionCore;
using core::SessionState;
using core::Timestamp;

#define MANA_FUZZ_CHECK(cond)      \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

// ---- input -------------------------------------------------------------------

class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}
  [[nodiscard]] bool empty() const { return n_ == 0; }
  [[nodiscard]] std::size_t size() const { return n_; }
  std::uint8_t u8() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(u16()) | (std::uint32_t{u16()} << 16); }
  std::uint64_t u64() { return static_cast<std::uint64_t>(u32()) | (std::uint64_t{u32()} << 32); }
  std::string bytes(std::size_t len) {
    if (len > n_) len = n_;
    std::string s(reinterpret_cast<const char*>(p_), len);
    p_ += len;
    n_ -= len;
    return s;
  }
  std::string rest() { return bytes(n_); }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
};

struct Record {
  std::uint8_t op = 0;
  std::string body;
};

inline std::optional<Record> next_record(Reader& in) {
  if (in.empty()) return std::nullopt;
  Record r;
  r.op = in.u8();
  const std::uint16_t len = in.u16();
  r.body = in.bytes(len);
  return r;
}

// ---- numbers and templates ------------------------------------------------------

// A JSON number literal chosen by the fuzzer: mostly boundary values.
inline std::string pick_number(Reader& in) {
  static const char* const table[] = {"0",
                                      "1",
                                      "2",
                                      "5",
                                      "80",
                                      "1023",
                                      "1024",
                                      "2048",
                                      "4095",
                                      "4096",
                                      "4097",
                                      "16384",
                                      "65535",
                                      "65536",
                                      "70000",
                                      "2147483647",
                                      "2147483648",
                                      "4294967295",
                                      "4294967296",
                                      "9007199254740991",
                                      "9007199254740992",
                                      "18446744073709551615",
                                      "-1",
                                      "1.5",
                                      "1e3",
                                      "\"7\"",
                                      "true",
                                      "null"};
  const std::uint8_t k = in.u8();
  constexpr std::size_t n = sizeof(table) / sizeof(table[0]);
  if (k < 200) return table[k % n];
  return std::to_string(in.u32());
}

// A small channel id (mostly the ones in use), sometimes an odd value.
inline std::string pick_id(Reader& in) {
  const std::uint8_t k = in.u8();
  if (k < 240) return std::to_string(k % 6);  // 0 is invalid on purpose
  return pick_number(in);
}

// A close code: mostly one of the protocol's, sometimes any 16-bit value.
inline std::uint16_t pick_close_code(Reader& in) {
  static const std::uint16_t table[] = {1000, 1001, 1002, 1006, 1008, 1009, 1011, 4000,
                                        4001, 4002, 4003, 4004, 4005, 4006, 4007, 4008,
                                        4009, 4010, 4011, 4012, 4013, 4014, 4015};
  const std::uint8_t k = in.u8();
  if (k < 230) return table[k % (sizeof(table) / sizeof(table[0]))];
  return in.u16();
}

inline std::string q(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

inline std::string pick_profile(Reader& in) {
  switch (in.u8() % 5) {
    case 0:
      return "mana.v1";
    case 1:
      return "json-base64.v1";
    case 2:
      return "lenpfx.v1";
    case 3:
      return "vendor.x.v1";
    default:
      return "";
  }
}

inline std::string pick_token(Reader& in) {
  switch (in.u8() % 4) {
    case 0:
      return std::string(mana::test::token_a);
    case 1:
      return std::string(mana::test::token_b);
    case 2:
      return "short";
    default:
      return std::string(mana::test::token_c);
  }
}

// [{"id":..,"rx":..,"credit":..,"closed":..}, ...] with up to 4 entries.
inline std::string pick_resume_channels(Reader& in) {
  std::string s = "[";
  const int n = in.u8() % 5;
  for (int i = 0; i < n; ++i) {
    if (i) s += ",";
    s += "{\"id\":" + pick_id(in) + ",\"rx\":" + pick_number(in) +
         ",\"credit\":" + pick_number(in) + (in.u8() & 1 ? ",\"closed\":true" : "") + "}";
  }
  return s + "]";
}

// A control message JSON text from a template chosen by the fuzzer. Fields
// are mostly valid with fuzz-chosen numbers, so deep states are reachable.
inline std::string control_template(Reader& in) {
  switch (in.u8() % 16) {
    case 0:
      return "{\"t\":\"open\",\"id\":" + pick_id(in) +
             ",\"target\":{\"host\":\"h\",\"port\":" + pick_number(in) + "}" +
             (in.u8() & 1 ? ",\"window\":" + pick_number(in) : std::string()) + "}";
    case 1:
      return "{\"t\":\"flow\",\"id\":" + pick_id(in) + ",\"credit\":" + pick_number(in) +
             (in.u8() & 1 ? ",\"rx\":" + pick_number(in) : std::string()) + "}";
    case 2:
      return "{\"t\":\"close\",\"id\":" + pick_id(in) + "}";
    case 3:
      return "{\"t\":\"resize\",\"id\":" + pick_id(in) + ",\"cols\":" + pick_number(in) +
             ",\"rows\":" + pick_number(in) + "}";
    case 4:
      return "{\"t\":\"signal\",\"id\":" + pick_id(in) + ",\"sig\":\"INT\"}";
    case 5:
      return "{\"t\":\"ping\",\"ts\":" + pick_number(in) + "}";
    case 6:
      return "{\"t\":\"pong\",\"ts\":" + pick_number(in) + "}";
    case 7:
      return "{\"t\":\"hello\",\"proto\":" + std::string(in.u8() & 1 ? "1" : pick_number(in)) +
             ",\"caps\":{\"profile\":" + q(pick_profile(in)) + ",\"bidi\":true,\"resume\":true}" +
             (in.u8() & 1 ? ",\"resume\":{\"token\":" + q(pick_token(in)) +
                                ",\"channels\":" + pick_resume_channels(in) + "}"
                          : std::string()) +
             "}";
    case 8:
      return "{\"t\":\"open_ok\",\"id\":" + pick_id(in) +
             (in.u8() & 1 ? ",\"window\":" + pick_number(in) : std::string()) + "}";
    case 9:
      return "{\"t\":\"open_err\",\"id\":" + pick_id(in) + ",\"code\":\"timeout\",\"msg\":\"m\"}";
    case 10:
      return "{\"t\":\"exit\",\"id\":" + pick_id(in) + ",\"code\":" + pick_number(in) + "}";
    case 11:
    case 12: {
      const std::string profile = pick_profile(in);
      return "{\"t\":\"hello_ok\",\"server\":\"s\",\"caps\":{\"flow\":\"credit\",\"maxFrame\":" +
             pick_number(in) + ",\"profileAccepted\":" + q(profile) +
             ",\"bidi\":" + (in.u8() & 1 ? "true" : "false") +
             ",\"heartbeatMs\":1000,\"idleTimeoutMs\":60000,\"maxChannels\":4,\"window\":" +
             pick_number(in) + "}" +
             (in.u8() & 1 ? ",\"resume\":{\"token\":" + q(pick_token(in)) +
                                ",\"channels\":" + pick_resume_channels(in) + "}"
                          : std::string()) +
             "}";
    }
    case 13:
      return "{\"t\":\"bogus\"}";
    case 14:
      return "{\"t\":\"flow\",\"id\":" + pick_id(in) + ",\"credit\":0,\"rx\":" + pick_number(in) +
             "}";
    default:
      return in.rest();  // raw text
  }
}

// ---- invariants ------------------------------------------------------------------

// Bounds on what one step may produce.
inline constexpr std::size_t max_step_output = 8u << 20;
inline constexpr std::size_t max_message = (1u << 20) + 64 * 1024;

// Tracks one session's transport from the harness's point of view and checks
// the output and the per-channel invariants after every step.
class Checker {
 public:
  explicit Checker(std::size_t replay_capacity, std::size_t max_channels)
      : replay_capacity_(replay_capacity), max_channels_(max_channels) {}

  // A transport is (again) attached: output is allowed.
  void attach() { attached_ = true; }
  // The transport is gone (lost, closed by the peer): no output until attach().
  void detach() { attached_ = false; }
  [[nodiscard]] bool attached() const { return attached_; }
  void note_channel(ChannelId id) {
    if (ids_.size() < 64) ids_.insert(id);
  }

  // Drains and checks `s`'s output; returns it for delivery.
  std::vector<OutMessage> drain(SessionCore& s) {
    MANA_FUZZ_CHECK(s.output_bytes() <= max_step_output);
    std::vector<OutMessage> out = mana::test::drain_output(s);
    if (out.empty()) return out;
    // Nothing after a final close, nothing without a transport (I2, I5).
    MANA_FUZZ_CHECK(attached_);
    for (std::size_t i = 0; i < out.size(); ++i) {
      const OutMessage& m = out[i];
      MANA_FUZZ_CHECK(m.data.size() <= max_message);
      if (m.type == core::MessageType::close) {
        MANA_FUZZ_CHECK(i + 1 == out.size());  // the close is the last message
        MANA_FUZZ_CHECK(m.data.empty());
        MANA_FUZZ_CHECK(core::is_valid_wire_code(static_cast<std::uint16_t>(m.close_code)));
        attached_ = false;
      }
    }
    return out;
  }

  void check(const SessionCore& s) const {
    if (s.state() == SessionState::closed) {
      MANA_FUZZ_CHECK(s.channel_count() == 0);
      MANA_FUZZ_CHECK(!s.has_output());
      MANA_FUZZ_CHECK(!s.next_timeout());
    }
    if (!attached_) MANA_FUZZ_CHECK(!s.has_output());
    MANA_FUZZ_CHECK(s.channel_count() <= max_channels_);
    MANA_FUZZ_CHECK(s.total_replay_bytes() <= max_channels_ * replay_capacity_);
    for (ChannelId id : ids_) {
      const auto st = s.channel_stats(id);
      if (!st) {
        MANA_FUZZ_CHECK(!s.has_channel(id));
        continue;
      }
      MANA_FUZZ_CHECK(st->sent <= st->send_limit);
      MANA_FUZZ_CHECK(st->acked <= st->sent);
      MANA_FUZZ_CHECK(s.replay_bytes(id) == st->sent - st->acked);  // I3
      MANA_FUZZ_CHECK(s.replay_bytes(id) <= replay_capacity_);
      MANA_FUZZ_CHECK(st->consumed <= st->received);  // I4
      MANA_FUZZ_CHECK(st->received <= st->recv_limit);
      MANA_FUZZ_CHECK(st->recv_limit <= core::max_json_integer);
      MANA_FUZZ_CHECK(st->send_limit <= core::max_json_integer);
      MANA_FUZZ_CHECK(s.available(id) <= st->send_limit - st->sent);
    }
  }

 private:
  std::size_t replay_capacity_;
  std::size_t max_channels_;
  bool attached_ = true;
  std::set<ChannelId> ids_;
};

// Feeds `json` to `s` as a control message: plain text during the bootstrap
// (hello / hello_ok are JSON text in every profile), else in `s`'s profile.
inline void feed_control_any(SessionCore& s, bool bootstrap, const std::string& json,
                             Timestamp now) {
  if (bootstrap) {
    mana::test::feed_text(s, json, now);
  } else {
    mana::test::feed_control(s, json, now);
  }
}

}  // namespace mana::fuzz
