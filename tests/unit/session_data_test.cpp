// Unit tests for SessionCore's data messages under repeated cuts
// (core/src/session_data.cpp, R1; PROTOCOL.md §9.5 "Progress under repeated
// cuts"): a link that is cut before each transport carried one whole data
// message must still move the stream forward.
//
// The sequence is the one of the churn soak's stalled downloads (churn-15-1):
// open → open_ok → the gateway's first target read (banner + data) fills the
// whole window and goes out as one data message → the transport is cut before
// that message arrived whole → resume with rx 0 → the retransmission is the
// same single message → cut again → ... (the fault proxy's budget per
// connection, at most 256 KiB in both directions, was below one message of a
// 256 KiB window plus the resume handshake). Time is literal timestamps.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "support/session_test_util.hpp"

using namespace mana::test;  // NOLINT(google-build-using-namespace)
namespace core = mana::core;
namespace event = mana::core::event;

namespace {

constexpr Timestamp t0 = at_ms(1000);
constexpr std::uint8_t down_seed = 7;

std::string resume_token(int i) {
  std::string t = "tokenResume";
  t += std::to_string(1000 + i);
  t.resize(24, 'x');
  return t;
}

// Every transport of this link carries at most `budget` bytes of server
// messages (whole messages only: one that does not fit is lost with the
// cut, as a WebSocket message cut in the middle is). Client messages all
// arrive until the cut.
struct CuttingLink {
  explicit CuttingLink(std::uint64_t budget_bytes) : budget(budget_bytes) {}

  // Delivers the server's queued output within the budget; returns true when
  // the transport survived (everything fitted).
  bool carry(Timestamp now) {
    bool alive = true;
    for (int round = 0; round < 100 && alive; ++round) {
      bool moved = false;
      while (auto m = p.server.poll_output()) {
        const std::uint64_t size = m->size();
        if (used + size > budget) {
          alive = false;
          break;
        }
        used += size;
        largest_data = std::max<std::uint64_t>(
            largest_data, m->type == MessageType::binary ? size : largest_data);
        feed(p.client, *m, now);
        moved = true;
      }
      if (!alive) break;
      p.collect();
      p.consume_all(1, now);
      while (auto m = p.client.poll_output()) {
        feed(p.server, *m, now);
        moved = true;
      }
      p.collect();
      if (!moved) break;
    }
    p.collect();
    return alive;
  }

  void cut(Timestamp now) {
    drain_output(p.client);
    drain_output(p.server);
    p.client.transport_lost(now);
    p.server.transport_lost(now);
    p.collect();
    used = 0;
  }

  // The client reconnects, the server resumes the session; then carry().
  bool resume(Timestamp now, int i) {
    REQUIRE(p.client.transport_open(now));
    const auto out = drain_output(p.client);
    REQUIRE(out.size() == 1);
    ServerSession fresh(test_server_config(), now);
    feed(fresh, out[0], now);
    const auto req = first_event<event::ResumeRequested>(drain_events(fresh));
    REQUIRE(req);
    REQUIRE(p.server.resume(req->hello, resume_token(i), now));
    ++resumes;
    return carry(now);
  }

  SessionPair p;
  std::uint64_t budget;
  std::uint64_t used = 0;
  std::uint64_t largest_data = 0;
  int resumes = 0;
};

}  // namespace

TEST_CASE("data: a window-sized message cut on every transport still gets through (R1)",
          "[resume][credit]") {
  CuttingLink link(2000);
  REQUIRE(link.p.handshake(t0, token_a));
  // open → open_ok (both arrive: the handshake and the open fit in the budget).
  core::OpenParams op;
  op.target = core::Target{"example.test", 22};
  auto id = link.p.client.open_channel(op, t0);
  REQUIRE(id);
  REQUIRE(link.p.client.has_output());
  feed(link.p.server, *link.p.client.poll_output(), t0);
  REQUIRE(link.p.server.accept_open(1, std::nullopt, t0));
  // The first target read: banner and data fill the whole window at once.
  const std::string down = pattern(0, test_window, down_seed);
  REQUIRE(link.p.server.write(1, Stream::out, view_of(down), t0).value() == test_window);
  REQUIRE(link.carry(t0) == false);  // open_ok arrives, the data message does not
  link.p.collect();
  REQUIRE(first_event<event::ChannelOpened>(link.p.client_log));
  CHECK(channel_bytes(link.p.client_log, 1) == 0);

  Timestamp now = t0;
  std::uint64_t rx_after_third = 0;
  for (int i = 0; i < 16 && channel_bytes(link.p.client_log, 1) < test_window; ++i) {
    link.cut(now);
    now = plus_ms(now, 20);  // 50 cuts per second
    if (link.resume(now, i)) break;
    if (i == 2) rx_after_third = channel_bytes(link.p.client_log, 1);
  }
  // Before R1 every retransmission was the one 4101-byte message, each
  // transport was cut before it arrived whole, and the client stayed at 0.
  CHECK(rx_after_third > 0);
  CHECK(channel_bytes(link.p.client_log, 1) == test_window);
  CHECK(channel_text(link.p.client_log, 1) == down);
  CHECK(link.resumes <= 8);
  const auto st = link.p.server.channel_stats(1);
  REQUIRE(st);
  CHECK(st->sent == test_window);

  // Acknowledgements grow the messages back (a flow per half window consumed).
  link.budget = 1 << 20;
  const std::string more = pattern(test_window, test_window, down_seed);
  std::uint64_t taken = 0;
  for (int i = 0; i < 8 && taken < more.size(); ++i) {
    auto r = link.p.server.write(1, Stream::out, view_of(more).subspan(taken), now);
    REQUIRE(r);
    taken += *r;
    link.largest_data = 0;
    REQUIRE(link.carry(now));
  }
  CHECK(channel_text(link.p.client_log, 1) == down + more);
  CHECK(link.largest_data > core::SessionCore::min_payload_cap + 5);
}

TEST_CASE("data: a resume with progress keeps the message size; the first resume never shrinks",
          "[resume]") {
  CuttingLink link(1 << 20);
  REQUIRE(link.p.handshake(t0, token_a));
  REQUIRE(link.p.open(t0) == 1);
  link.p.clear_logs();
  const std::string down = pattern(0, test_window, down_seed);
  REQUIRE(link.p.server.write(1, Stream::out, view_of(down), t0).value() == test_window);
  link.cut(t0);  // the message is lost with the transport
  const Timestamp t1 = plus_ms(t0, 20);
  link.largest_data = 0;
  REQUIRE(link.resume(t1, 0));
  // One resume without a previous one: the retransmission is one whole message.
  CHECK(link.largest_data >= test_window);
  CHECK(channel_text(link.p.client_log, 1) == down);
}
