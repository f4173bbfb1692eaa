// Unit tests for shared payloads (SessionCore::set_shared_payloads): with the
// option on, data messages of the raw profiles (mana.v1, lenpfx.v1) carry their
// header in OutMessage::data and reference the replay buffer through parts.
// Checked: the wire bytes equal the classic encoding (payloads spanning replay
// chunks and maxFrame splits, both streams), after a resume too; json-base64.v1
// ignores the option; output_bytes() + total_replay_bytes() counts each byte
// once; queued messages stay valid when the peer acknowledges everything.
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/session_test_util.hpp"

using namespace mana::test;  // NOLINT(google-build-using-namespace)
namespace core = mana::core;
namespace event = mana::core::event;

namespace {

constexpr Timestamp t0 = at_ms(1000);
constexpr std::uint64_t big_window = 96 * 1024;  // several replay chunks (16 KiB each)

ServerConfig big_server_config() {
  ServerConfig c = test_server_config();
  c.window = core::WindowConfig{big_window, big_window};
  c.replay_capacity = big_window;
  return c;
}

ClientConfig big_client_config(std::string_view profile) {
  ClientConfig c = test_client_config(profile);
  c.window = core::WindowConfig{big_window, big_window};
  c.replay_capacity = big_window;
  return c;
}

// A connected pair with channel 1 open, the server in shared or classic mode.
struct Pair {
  Pair(std::string_view profile, bool shared)
      : p(profile, big_server_config(), big_client_config(profile), t0) {
    p.server.set_shared_payloads(shared);
    REQUIRE(p.handshake(t0, token_a));
    REQUIRE(p.open(t0) == 1);
    p.clear_logs();
  }
  // Writes the next `n` bytes of the pattern on `stream`; returns how many were taken.
  std::size_t write(Stream stream, std::size_t n) {
    auto r = p.server.write(1, stream, view_of(pattern(sent, n, 3)), t0);
    REQUIRE(r);
    sent += *r;
    return *r;
  }
  SessionPair p;
  std::uint64_t sent = 0;
};

// Sizes that cross 16 KiB replay chunks and the 16 KiB maxFrame (16379-byte
// payloads in mana.v1) at different places, alternating streams.
const std::vector<std::size_t> write_sizes = {1, 100, 20000, 16379, 16384, 30001, 7};

}  // namespace

TEST_CASE("shared payloads: the wire bytes equal the classic encoding", "[session][shared]") {
  for (const std::string_view profile : builtin_profiles()) {
    CAPTURE(profile);
    Pair classic(profile, false);
    Pair shared(profile, true);
    const bool raw = shared.p.server.profile().raw_payload();
    for (std::size_t i = 0; i < write_sizes.size(); ++i) {
      const Stream s = i % 2 == 0 ? Stream::out : Stream::err;
      REQUIRE(classic.write(s, write_sizes[i]) == write_sizes[i]);
      REQUIRE(shared.write(s, write_sizes[i]) == write_sizes[i]);
    }
    const auto a = drain_output(classic.p.server);
    const auto b = drain_output(shared.p.server);
    REQUIRE(a.size() == b.size());
    std::size_t with_parts = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      CAPTURE(i);
      CHECK(a[i].parts.empty());
      CHECK(b[i].type == a[i].type);
      CHECK(b[i].flatten() == a[i].data);
      CHECK(b[i].size() <= test_max_frame);
      if (!b[i].parts.empty()) {
        ++with_parts;
        CHECK(b[i].data.size() == (profile == "lenpfx.v1" ? 9U : 5U));
      }
    }
    if (raw) {
      CHECK(with_parts == b.size());
    } else {
      CHECK(with_parts == 0);  // json-base64.v1 ignores the option
    }
    // The client receives every byte in order.
    for (const auto& m : b)
      feed(shared.p.client, m, t0);
    shared.p.collect();
    CHECK(channel_text(shared.p.client_log, 1) == pattern(0, shared.sent, 3));
  }
}

TEST_CASE("shared payloads: output and replay count each byte once", "[session][shared]") {
  for (const std::string_view profile : {"mana.v1", "lenpfx.v1"}) {
    CAPTURE(profile);
    Pair classic(profile, false);
    Pair shared(profile, true);
    // Fill the whole credit window; the client reads nothing (slow reader).
    while (classic.write(Stream::out, 10000) > 0) {
    }
    while (shared.write(Stream::out, 10000) > 0) {
    }
    REQUIRE(shared.sent == big_window);
    REQUIRE(classic.sent == big_window);
    const std::size_t header = profile == "lenpfx.v1" ? 9 : 5;
    const std::size_t messages = (big_window + 9999) / 10000;  // no write exceeds maxFrame
    CHECK(shared.p.server.total_replay_bytes() == big_window);
    CHECK(shared.p.server.output_bytes() == messages * header);
    CHECK(classic.p.server.output_bytes() == big_window + messages * header);  // the old 2x

    // The peer acknowledges everything before the host wrote a byte (legal
    // only for bytes received, but a hostile peer can send it): the queued
    // messages must still carry the right bytes.
    feed_control(shared.p.server, core::encode_control(core::Flow{1, 0, big_window}), t0);
    CHECK(shared.p.server.total_replay_bytes() == 0);
    const auto out = drain_output(shared.p.server);
    std::string payload;
    for (const auto& fr : data_of(shared.p.server.profile(), out))
      payload.append(fr.payload.begin(), fr.payload.end());
    CHECK(payload == pattern(0, big_window, 3));
  }
}

TEST_CASE("shared payloads: the retransmit after a resume equals the classic one",
          "[session][shared][resume]") {
  for (const std::string_view profile : builtin_profiles()) {
    CAPTURE(profile);
    std::vector<std::vector<core::DataFrame>> replays;
    for (const bool on : {false, true}) {
      CAPTURE(on);
      Pair x(profile, on);
      for (std::size_t i = 0; i < write_sizes.size(); ++i)
        REQUIRE(x.write(i % 2 == 0 ? Stream::out : Stream::err, write_sizes[i]) > 0);
      const auto first = drain_output(x.p.server);
      REQUIRE(first.size() > 2);
      feed(x.p.client, first[0], t0);  // only the first message arrives
      x.p.collect();
      x.p.client.transport_lost(t0);
      x.p.server.transport_lost(t0);
      x.p.collect();
      REQUIRE(x.p.server.state() == SessionState::detached);

      const Timestamp t1 = plus_ms(t0, 100);
      REQUIRE(x.p.client.transport_open(t1));
      const auto hello_out = drain_output(x.p.client);
      REQUIRE(hello_out.size() == 1);
      ServerSession fresh(big_server_config(), t1);
      feed(fresh, hello_out[0], t1);
      const auto req = first_event<event::ResumeRequested>(drain_events(fresh));
      REQUIRE(req);
      REQUIRE(x.p.server.resume(req->hello, std::string(token_b), t1));
      const auto out = drain_output(x.p.server);
      for (const auto& m : out) {
        CHECK(m.size() <= test_max_frame);
        if (on && x.p.server.profile().raw_payload() && !m.parts.empty()) {
          CHECK(m.data.size() == (profile == "lenpfx.v1" ? 9U : 5U));
        } else {
          CHECK(m.parts.empty());
        }
      }
      replays.push_back(data_of(x.p.server.profile(), out));
      for (const auto& m : out)
        feed(x.p.client, m, t1);
      x.p.pump(t1);
      CHECK(channel_text(x.p.client_log, 1) == pattern(0, x.sent, 3));
    }
    // Same bytes on the same streams in the same order (message boundaries may
    // differ: the classic retransmit splits at replay chunks too).
    const auto joined = [](const std::vector<core::DataFrame>& frames) {
      std::vector<std::pair<Stream, std::string>> runs;
      for (const auto& f : frames) {
        if (runs.empty() || runs.back().first != f.stream) runs.emplace_back(f.stream, "");
        runs.back().second.append(f.payload.begin(), f.payload.end());
      }
      return runs;
    };
    REQUIRE(replays.size() == 2);
    CHECK_FALSE(replays[0].empty());
    CHECK(joined(replays[0]) == joined(replays[1]));
  }
}
