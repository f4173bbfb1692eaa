// Unit tests for mana/core/flow.hpp: pause reasons, send/receive credit windows
// and the token bucket. Time is only ever a literal Timestamp.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <optional>

#include "mana/core/flow.hpp"

using mana::core::CloseCode;
using mana::core::Duration;
using mana::core::Errc;
using mana::core::max_json_integer;
using mana::core::Origin;
using mana::core::PauseReason;
using mana::core::PauseSet;
using mana::core::ReceiveWindow;
using mana::core::SendWindow;
using mana::core::Timestamp;
using mana::core::TokenBucket;
using mana::core::WindowConfig;

namespace {

constexpr Timestamp t0{1000000000};  // 1 s after the host's epoch
constexpr Duration rtt = Duration::from_ms(100);
constexpr std::uint64_t micro = 1000000;

// take_grant() result as a number; 0 means "no grant" (a grant is never 0).
std::uint64_t grant(ReceiveWindow& w, bool paused, Timestamp now, Duration r = rtt,
                    bool force = false) {
  const std::optional<std::uint64_t> g = w.take_grant(paused, now, r, force);
  if (g) REQUIRE(*g > 0);
  return g.value_or(0);
}

// Receive and consume `n` bytes in one go.
void receive_and_consume(ReceiveWindow& w, std::uint64_t n) {
  REQUIRE(w.on_data(n).ok());
  REQUIRE(w.consume(n).ok());
}

}  // namespace

// ---------------------------------------------------------------------------
// PauseSet

TEST_CASE("PauseSet reports transitions only on first set and last clear", "[credit]") {
  PauseSet p;
  CHECK_FALSE(p.paused());
  CHECK(p.bits() == 0);

  CHECK(p.set(PauseReason::transport, true));  // unpaused -> paused
  CHECK(p.paused());
  CHECK(p.has(PauseReason::transport));
  CHECK_FALSE(p.has(PauseReason::hidden));

  CHECK_FALSE(p.set(PauseReason::hidden, true));     // already paused
  CHECK_FALSE(p.set(PauseReason::transport, true));  // same reason again
  CHECK(p.bits() == 0x03);
  CHECK_FALSE(p.set(PauseReason::offline, false));    // clearing an unset reason
  CHECK_FALSE(p.set(PauseReason::transport, false));  // hidden still set
  CHECK(p.paused());
  CHECK_FALSE(p.has(PauseReason::transport));
  CHECK(p.has(PauseReason::hidden));

  CHECK(p.set(PauseReason::hidden, false));  // last reason cleared -> unpaused
  CHECK_FALSE(p.paused());
  CHECK(p.bits() == 0);
  CHECK_FALSE(p.set(PauseReason::app, false));  // clearing while unpaused

  // All four reasons: only the first set and the last clear transition.
  CHECK(p.set(PauseReason::app, true));
  CHECK_FALSE(p.set(PauseReason::offline, true));
  CHECK_FALSE(p.set(PauseReason::hidden, true));
  CHECK_FALSE(p.set(PauseReason::transport, true));
  CHECK(p.bits() == 0x0f);
  CHECK_FALSE(p.set(PauseReason::app, false));
  CHECK_FALSE(p.set(PauseReason::offline, false));
  CHECK_FALSE(p.set(PauseReason::transport, false));
  CHECK(p.set(PauseReason::hidden, false));
  CHECK_FALSE(p.paused());
}

TEST_CASE("PauseReason names", "[credit]") {
  CHECK(to_string(PauseReason::transport) == "transport");
  CHECK(to_string(PauseReason::hidden) == "hidden");
  CHECK(to_string(PauseReason::offline) == "offline");
  CHECK(to_string(PauseReason::app) == "app");
}

// ---------------------------------------------------------------------------
// SendWindow

TEST_CASE("SendWindow tracks sent bytes against credit", "[credit]") {
  SendWindow w;
  CHECK(w.sent() == 0);
  CHECK(w.limit() == 0);
  CHECK(w.available() == 0);

  REQUIRE(w.add_credit(1000).ok());
  CHECK(w.available() == 1000);
  w.on_sent(400);
  CHECK(w.sent() == 400);
  CHECK(w.available() == 600);
  w.on_sent(600);
  CHECK(w.available() == 0);
  REQUIRE(w.add_credit(0).ok());  // pure ack carries zero credit
  CHECK(w.limit() == 1000);
  REQUIRE(w.add_credit(24).ok());
  CHECK(w.limit() == 1024);
  CHECK(w.available() == 24);
}

TEST_CASE("SendWindow rejects credit beyond 2^53-1 as a remote violation", "[credit]") {
  SendWindow w(0, max_json_integer - 10);
  REQUIRE(w.add_credit(10).ok());  // exactly 2^53-1 is allowed
  CHECK(w.limit() == max_json_integer);
  REQUIRE(w.add_credit(0).ok());

  const auto r = w.add_credit(1);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::credit_overflow);
  CHECK(r.error().origin == Origin::remote);
  CHECK(r.error().close_code() == CloseCode::flow_violation);  // 4007
  CHECK(w.limit() == max_json_integer);                        // unchanged

  SendWindow fresh;
  const auto huge = fresh.add_credit(std::numeric_limits<std::uint64_t>::max());
  REQUIRE_FALSE(huge.ok());  // no 64-bit wrap-around either
  CHECK(huge.error().code == Errc::credit_overflow);
  CHECK(fresh.limit() == 0);
  const auto just_over = fresh.add_credit(max_json_integer + 1);
  REQUIRE_FALSE(just_over.ok());
  REQUIRE(fresh.add_credit(max_json_integer).ok());
}

TEST_CASE("SendWindow reset restarts at the peer's rx with its credit", "[credit]") {
  SendWindow w(0, 262144);
  w.on_sent(200000);
  w.reset(150000, 4096);  // peer received 150000 and allows 4096 more
  CHECK(w.sent() == 150000);
  CHECK(w.limit() == 154096);
  CHECK(w.available() == 4096);

  w.reset(0, 0);
  CHECK(w.sent() == 0);
  CHECK(w.available() == 0);

  w.reset(max_json_integer - 5, 100);  // clamped to 2^53-1
  CHECK(w.sent() == max_json_integer - 5);
  CHECK(w.limit() == max_json_integer);
  CHECK(w.available() == 5);
}

// ---------------------------------------------------------------------------
// ReceiveWindow

TEST_CASE("ReceiveWindow starts with the initial window as its limit", "[credit]") {
  ReceiveWindow def;
  CHECK(def.window() == 262144);
  CHECK(def.limit() == 262144);
  CHECK(def.outstanding() == 262144);
  CHECK(def.resume_credit() == 262144);
  CHECK(def.received() == 0);
  CHECK(def.consumed() == 0);

  ReceiveWindow w(WindowConfig{1000, 4000});
  CHECK(w.window() == 1000);
  CHECK(w.limit() == 1000);
}

TEST_CASE("ReceiveWindow detects a credit overrun at the exact boundary", "[credit]") {
  ReceiveWindow w(WindowConfig{1000, 4000});
  REQUIRE(w.on_data(999).ok());
  CHECK(w.outstanding() == 1);
  REQUIRE(w.on_data(1).ok());  // received == limit: still within credit
  CHECK(w.outstanding() == 0);
  REQUIRE(w.on_data(0).ok());

  const auto r = w.on_data(1);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::credit_overrun);
  CHECK(r.error().origin == Origin::remote);
  CHECK(r.error().close_code() == CloseCode::flow_violation);  // 4007
  CHECK(w.received() == 1000);  // the offending bytes are not counted

  ReceiveWindow one_shot(WindowConfig{1000, 4000});
  const auto big = one_shot.on_data(1001);
  REQUIRE_FALSE(big.ok());
  CHECK(big.error().code == Errc::credit_overrun);
  CHECK(one_shot.received() == 0);
  REQUIRE_FALSE(one_shot.on_data(std::numeric_limits<std::uint64_t>::max()).ok());
}

TEST_CASE("ReceiveWindow rejects consuming more than was received", "[credit]") {
  ReceiveWindow w(WindowConfig{1000, 4000});
  REQUIRE(w.on_data(300).ok());
  REQUIRE(w.consume(200).ok());
  CHECK(w.unconsumed() == 100);

  const auto r = w.consume(101);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::invalid_argument);
  CHECK(r.error().origin == Origin::local);
  CHECK(w.consumed() == 200);

  REQUIRE(w.consume(100).ok());
  CHECK(w.unconsumed() == 0);
  REQUIRE_FALSE(w.consume(1).ok());
  REQUIRE(w.consume(0).ok());
}

TEST_CASE("ReceiveWindow batches grants at half a window", "[credit]") {
  ReceiveWindow w(WindowConfig{1000, 1000});
  REQUIRE(w.on_data(1000).ok());
  CHECK(grant(w, false, t0) == 0);  // received but not consumed: no credit

  REQUIRE(w.consume(499).ok());
  CHECK(grant(w, false, t0) == 0);  // 499 < 500
  REQUIRE(w.consume(1).ok());
  CHECK(grant(w, false, t0) == 500);  // exactly half
  CHECK(w.limit() == 1500);
  CHECK(w.outstanding() == 500);
  CHECK(grant(w, false, t0) == 0);  // nothing new

  REQUIRE(w.consume(499).ok());
  CHECK(grant(w, false, t0 + Duration::from_s(1)) == 0);
  CHECK(grant(w, false, t0 + Duration::from_s(1), rtt, true) == 499);  // forced
  CHECK(w.limit() == 1999);
  CHECK(w.limit() - w.consumed() == w.window());

  // Forced with nothing consumed since: no zero grant.
  CHECK(grant(w, false, t0 + Duration::from_s(2), rtt, true) == 0);
}

TEST_CASE("ReceiveWindow rounds half an odd window down", "[credit]") {
  ReceiveWindow w(WindowConfig{1001, 1001});
  receive_and_consume(w, 499);
  CHECK(grant(w, false, t0) == 0);
  receive_and_consume(w, 1);
  CHECK(grant(w, false, t0) == 500);
}

TEST_CASE("ReceiveWindow grants nothing while paused, everything after", "[credit]") {
  ReceiveWindow w(WindowConfig{1000, 4000});
  PauseSet pause;
  REQUIRE(pause.set(PauseReason::hidden, true));
  REQUIRE_FALSE(pause.set(PauseReason::transport, true));

  receive_and_consume(w, 600);
  CHECK(grant(w, pause.paused(), t0) == 0);
  CHECK(grant(w, pause.paused(), t0, rtt, true) == 0);  // not even forced
  receive_and_consume(w, 400);
  CHECK(grant(w, pause.paused(), t0 + Duration::from_ms(10)) == 0);
  CHECK(w.limit() == 1000);
  CHECK(w.outstanding() == 0);  // the peer is stalled

  REQUIRE_FALSE(pause.set(PauseReason::hidden, false));
  CHECK(grant(w, pause.paused(), t0 + Duration::from_ms(20)) == 0);  // transport still set
  REQUIRE(pause.set(PauseReason::transport, false));
  CHECK(grant(w, pause.paused(), t0 + Duration::from_s(5)) == 1000);  // the full window
  CHECK(w.limit() == 2000);
  CHECK(w.window() == 1000);  // first grant ever: no auto-tuning
}

TEST_CASE("ReceiveWindow auto-tunes: doubles within 2 RTT, capped at max", "[credit]") {
  ReceiveWindow w(WindowConfig{1000, 4000});

  receive_and_consume(w, 500);
  CHECK(grant(w, false, t0) == 500);  // no previous grant: no doubling
  CHECK(w.window() == 1000);
  CHECK(w.limit() == 1500);

  // 150 ms later (< 2 * 100 ms): the window doubles before the grant.
  receive_and_consume(w, 500);
  CHECK(grant(w, false, t0 + Duration::from_ms(150)) == 1500);
  CHECK(w.window() == 2000);
  CHECK(w.limit() == 3000);  // consumed 1000 + window 2000

  receive_and_consume(w, 1000);  // half of the new window
  CHECK(grant(w, false, t0 + Duration::from_ms(250)) == 3000);
  CHECK(w.window() == 4000);
  CHECK(w.limit() == 6000);

  receive_and_consume(w, 2000);
  CHECK(grant(w, false, t0 + Duration::from_ms(300)) == 2000);  // capped at max
  CHECK(w.window() == 4000);
  CHECK(w.limit() == 8000);
  CHECK(w.limit() - w.consumed() <= 4000);
}

TEST_CASE("ReceiveWindow never grows past max(initial, 2 MiB), whatever its ceiling", "[credit]") {
  // PROTOCOL 8.4: a sender holds at most 2 MiB (or the initial window) unacknowledged; a larger
  // window would have it stop at its replay capacity before a grant falls due.
  constexpr std::uint64_t mib = 1024 * 1024;
  auto grow = [](ReceiveWindow& w) {
    Timestamp t = t0;
    for (int i = 0; i < 40; ++i) {
      receive_and_consume(w, w.outstanding());
      t = t + Duration::from_ms(1);  // always within 2 RTT: doubles whenever it may
      (void)grant(w, false, t);
      CHECK(w.limit() - w.consumed() <= std::max<std::uint64_t>(w.window(), 2 * mib));
    }
  };
  ReceiveWindow small(WindowConfig{256 * 1024, 8 * mib});
  grow(small);
  CHECK(small.window() == 2 * mib);
  CHECK(mana::core::unannounced_window_ceiling == 2 * mib);

  ReceiveWindow large_initial(WindowConfig{4 * mib, 8 * mib});
  grow(large_initial);
  CHECK(large_initial.window() == 4 * mib);  // the initial window was announced: no growth

  ReceiveWindow low_ceiling(WindowConfig{256 * 1024, mib});
  grow(low_ceiling);
  CHECK(low_ceiling.window() == mib);  // a lower configured ceiling still holds
}

TEST_CASE("ReceiveWindow does not auto-tune on slow grants or without an RTT", "[credit]") {
  SECTION("exactly 2 RTT after the previous grant is not 'less than'") {
    ReceiveWindow w(WindowConfig{1000, 4000});
    receive_and_consume(w, 500);
    CHECK(grant(w, false, t0) == 500);
    receive_and_consume(w, 500);
    CHECK(grant(w, false, t0 + Duration::from_ms(200)) == 500);
    CHECK(w.window() == 1000);
    receive_and_consume(w, 500);
    CHECK(grant(w, false, t0 + Duration::from_ns(399999999)) == 1500);  // 199.999999 ms
    CHECK(w.window() == 2000);
  }
  SECTION("zero RTT (not measured yet)") {
    ReceiveWindow w(WindowConfig{1000, 4000});
    receive_and_consume(w, 500);
    CHECK(grant(w, false, t0, Duration{}) == 500);
    receive_and_consume(w, 500);
    CHECK(grant(w, false, t0, Duration{}) == 500);  // same instant, still no RTT
    CHECK(w.window() == 1000);
  }
  SECTION("a forced grant with nothing consumed does not grow the window") {
    ReceiveWindow w(WindowConfig{1000, 4000});
    receive_and_consume(w, 1000);
    CHECK(grant(w, false, t0) == 1000);
    CHECK(grant(w, false, t0 + Duration::from_ms(1), rtt, true) == 0);
    CHECK(w.window() == 1000);
    CHECK(w.limit() == 2000);
  }
  SECTION("a max below the initial window means no growth") {
    ReceiveWindow w(WindowConfig{1000, 10});
    receive_and_consume(w, 500);
    CHECK(grant(w, false, t0) == 500);
    receive_and_consume(w, 500);
    CHECK(grant(w, false, t0 + Duration::from_ms(1)) == 500);
    CHECK(w.window() == 1000);
  }
}

TEST_CASE("ReceiveWindow never raises its limit past 2^53-1", "[credit]") {
  ReceiveWindow w(WindowConfig{max_json_integer - 10, max_json_integer});
  CHECK(w.limit() == max_json_integer - 10);
  receive_and_consume(w, max_json_integer - 10);
  CHECK(grant(w, false, t0) == 10);
  CHECK(w.limit() == max_json_integer);
  CHECK(grant(w, false, t0 + Duration::from_s(10), rtt, true) == 0);
  REQUIRE(w.on_data(10).ok());
  REQUIRE_FALSE(w.on_data(1).ok());

  ReceiveWindow huge(WindowConfig{std::numeric_limits<std::uint64_t>::max(),
                                  std::numeric_limits<std::uint64_t>::max()});
  CHECK(huge.limit() == max_json_integer);
  CHECK(huge.window() == max_json_integer);
}

TEST_CASE("ReceiveWindow resume credit is the limit beyond what was received", "[credit]") {
  ReceiveWindow w(WindowConfig{1000, 4000});
  REQUIRE(w.on_data(700).ok());
  REQUIRE(w.consume(600).ok());
  CHECK(grant(w, false, t0) == 600);
  CHECK(w.resume_credit() == 1600 - 700);
  CHECK(w.resume_credit() == w.outstanding());
}

TEST_CASE("ReceiveWindow and SendWindow agree end to end", "[credit]") {
  ReceiveWindow rx(WindowConfig{4096, 16384});
  SendWindow tx(0, rx.limit());
  Timestamp now = t0;
  std::uint64_t delivered = 0;
  for (int step = 0; step < 200; ++step) {
    const std::uint64_t n = tx.available() < 1500 ? tx.available() : 1500;
    tx.on_sent(n);
    REQUIRE(rx.on_data(n).ok());
    REQUIRE(rx.consume(n).ok());
    delivered += n;
    now = now + Duration::from_ms(30);
    if (const auto g = rx.take_grant(false, now, Duration::from_ms(50))) {
      REQUIRE(tx.add_credit(*g).ok());
    }
    CHECK(tx.limit() == rx.limit());
    CHECK(tx.sent() == rx.received());
    CHECK(rx.limit() - rx.consumed() <= 16384);
  }
  CHECK(rx.window() == 16384);  // grants every 30 ms < 100 ms: grown to max
  CHECK(delivered == rx.consumed());
}

// ---------------------------------------------------------------------------
// TokenBucket

TEST_CASE("TokenBucket allows a burst, then the configured rate", "[credit]") {
  TokenBucket b(50, 100);  // 50/s, burst 100
  CHECK(b.tokens_micro() == 100 * micro);

  for (int i = 0; i < 100; ++i)
    REQUIRE(b.try_take(t0));
  CHECK(b.tokens_micro() == 0);
  CHECK_FALSE(b.try_take(t0));

  // One token per 20 ms.
  CHECK_FALSE(b.try_take(t0 + Duration::from_ns(19999999)));
  CHECK(b.tokens_micro() == 999999);
  CHECK(b.try_take(t0 + Duration::from_ms(20)));
  CHECK_FALSE(b.try_take(t0 + Duration::from_ms(20)));
  CHECK_FALSE(b.try_take(t0 + Duration::from_ms(39)));
  CHECK(b.try_take(t0 + Duration::from_ms(40)));

  // One second later: exactly 50 more tokens.
  const Timestamp t1 = t0 + Duration::from_ms(1040);
  for (int i = 0; i < 50; ++i)
    REQUIRE(b.try_take(t1));
  CHECK_FALSE(b.try_take(t1));

  // A long idle period refills to the burst and no further.
  const Timestamp t2 = t1 + Duration::from_s(3600);
  for (int i = 0; i < 100; ++i)
    REQUIRE(b.try_take(t2));
  CHECK_FALSE(b.try_take(t2));
}

TEST_CASE("TokenBucket starts full at the first call, whatever its time", "[credit]") {
  TokenBucket b(1, 3);
  const Timestamp late{987654321012345};
  CHECK(b.try_take(late));
  CHECK(b.try_take(late));
  CHECK(b.try_take(late));
  CHECK_FALSE(b.try_take(late));
  CHECK(b.try_take(late + Duration::from_s(1)));

  TokenBucket at_zero(10, 1);
  CHECK(at_zero.try_take(Timestamp{0}));
  CHECK_FALSE(at_zero.try_take(Timestamp{0}));
  CHECK(at_zero.try_take(Timestamp{100000000}));
}

TEST_CASE("TokenBucket ignores time going backwards", "[credit]") {
  TokenBucket b(10, 1);
  REQUIRE(b.try_take(t0));
  CHECK_FALSE(b.try_take(Timestamp{0}));  // earlier: adds nothing
  CHECK_FALSE(b.try_take(t0 + Duration::from_ms(99)));
  CHECK(b.try_take(t0 + Duration::from_ms(100)));  // measured from t0, not from 0
}

TEST_CASE("TokenBucket with zero rate or zero burst", "[credit]") {
  TokenBucket no_refill(0, 2);
  CHECK(no_refill.try_take(t0));
  CHECK(no_refill.try_take(t0));
  CHECK_FALSE(no_refill.try_take(t0 + Duration::from_s(1000000)));

  TokenBucket closed(1000, 0);
  CHECK_FALSE(closed.try_take(t0));
  CHECK_FALSE(closed.try_take(t0 + Duration::from_s(10)));
}

TEST_CASE("TokenBucket refills at the rate even when called very often", "[credit]") {
  // 4 tokens/s polled every 200 ns: each call is worth 0.8 micro-tokens, so the
  // elapsed time must carry over rather than be dropped.
  TokenBucket b(4, 1);
  REQUIRE(b.try_take(t0));
  int taken = 0;
  std::uint64_t last_success = 0;
  for (std::uint64_t ns = 200; ns <= 1000000000; ns += 200) {
    if (b.try_take(Timestamp{t0.ns + ns})) {
      ++taken;
      last_success = ns;
    }
  }
  CHECK(taken == 4);
  CHECK(last_success == 1000000000);  // exactly one token per 250 ms

  // With a rate that does not divide 1000 the sub-nanosecond remainder is
  // dropped: the refill may lag by a few micro-tokens, never run ahead.
  TokenBucket odd(3, 1);
  REQUIRE(odd.try_take(t0));
  taken = 0;
  for (std::uint64_t ns = 300; ns <= 1010000100; ns += 300) {
    if (odd.try_take(Timestamp{t0.ns + ns})) {
      ++taken;
      CHECK(ns >= 333333334 * static_cast<std::uint64_t>(taken));
    }
  }
  CHECK(taken == 3);
}

TEST_CASE("TokenBucket handles extreme rates and long gaps without overflow", "[credit]") {
  const std::uint32_t max32 = std::numeric_limits<std::uint32_t>::max();
  TokenBucket b(max32, max32);
  REQUIRE(b.try_take(Timestamp{0}));
  CHECK(b.tokens_micro() == (std::uint64_t{max32} - 1) * micro);
  REQUIRE(b.try_take(Timestamp{std::numeric_limits<std::uint64_t>::max()}));
  CHECK(b.tokens_micro() == (std::uint64_t{max32} - 1) * micro);

  TokenBucket small(max32, 1);
  REQUIRE(small.try_take(t0));
  CHECK(small.try_take(t0 + Duration::from_ns(1)));  // 4294.967295 tokens per us
}
