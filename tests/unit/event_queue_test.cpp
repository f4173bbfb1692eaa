// The event queue: advisory events (diagnostics, policy) are bounded and may be
// dropped when the host does not drain them; channel data is never dropped.
#include <catch2/catch.hpp>

#include "support/session_test_util.hpp"

using namespace mana::test;  // NOLINT(google-build-using-namespace)

TEST_CASE("undrained advisory events are bounded, channel data is never dropped", "[session]") {
  ServerConfig scfg = test_server_config();
  scfg.limits.max_events = 4;
  SessionPair p(mana::core::default_profile_id, scfg);
  const Timestamp t = at_ms(1000);
  REQUIRE(p.handshake(t));
  const ChannelId id = p.open(t);
  REQUIRE(id != 0);
  p.clear_logs();

  // 40 pongs make the server queue 80 diagnostics (rtt_sample + pong_received)
  // that nobody drains, interleaved with 40 one-byte data frames.
  std::string sent;
  for (int i = 0; i < 40; ++i) {
    feed_control(p.server, R"({"t":"pong","ts":1})", t);
    const std::string byte = pattern(static_cast<std::uint64_t>(i), 1);
    REQUIRE(p.client.write(id, Stream::out, view_of(byte), t).value() == 1);
    deliver(p.client, p.server, t);
    sent += byte;
  }
  const auto events = drain_events(p.server);
  CHECK(count_events<mana::core::event::Diagnostic>(events) +
            count_events<mana::core::event::Policy>(events) <=
        4);
  CHECK(p.server.dropped_events() >= 76);
  CHECK(channel_text(events, id) == sent);
  CHECK(p.server.state() == SessionState::ready);
}
