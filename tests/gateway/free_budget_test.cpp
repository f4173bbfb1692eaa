// SPDX-License-Identifier: Apache-2.0
// The per-connection budget for messages that move no payload (free_budget.hpp): burst, refill
// by time and by payload moved, the cap, a clock that goes backwards; and its [session] keys.
#include <catch2/catch.hpp>

#include <cstdint>

#include "config.hpp"
#include "free_budget.hpp"
#include "test_util.hpp"

using mana::core::Duration;
using mana::core::Timestamp;
using mana::gateway::FreeMessageBudget;
using mana::gateway::test::config_from;

namespace {

const Timestamp t0 = Timestamp::from_ms(1000000);

// Takes until the budget refuses; returns how many were taken.
int drain(FreeMessageBudget& b, Timestamp now) {
  int n = 0;
  while (b.take(now) && n < 10000000)
    ++n;
  return n;
}

}  // namespace

TEST_CASE("free budget: a new connection has the burst, then nothing", "[gateway][free]") {
  FreeMessageBudget b({100, 1000, 4096}, t0);
  CHECK(b.tokens(t0) == Approx(1000));
  CHECK(drain(b, t0) == 1000);
  CHECK_FALSE(b.take(t0));
  CHECK(b.tokens(t0) < 1.0);
}

TEST_CASE("free budget: time refills at the rate, capped at the burst", "[gateway][free]") {
  FreeMessageBudget b({100, 1000, 4096}, t0);
  (void)drain(b, t0);
  CHECK_FALSE(b.take(t0 + Duration::from_ms(9)));  // 0.9 tokens
  CHECK(b.take(t0 + Duration::from_ms(11)));       // 1.1
  CHECK_FALSE(b.take(t0 + Duration::from_ms(11)));
  // 100 per second: one second later about 100 more (the 0.1 left over included).
  CHECK(drain(b, t0 + Duration::from_ms(1011)) == 100);
  // An hour idle fills the bucket to the burst, not to 360 000.
  CHECK(b.tokens(t0 + Duration::from_s(3600)) == Approx(1000));
  CHECK(drain(b, t0 + Duration::from_s(3600)) == 1000);
}

TEST_CASE("free budget: payload moved refills one token per refill_bytes", "[gateway][free]") {
  FreeMessageBudget b({1, 50, 4096}, t0);
  (void)drain(b, t0);
  b.refill(4095);
  CHECK_FALSE(b.take(t0));  // 4095 bytes: not yet a token
  b.refill(1);
  CHECK(b.take(t0));
  CHECK_FALSE(b.take(t0));
  // A grant per half window of the default 256 KiB window moves 128 KiB: 32 tokens for one.
  b.refill(128 * 1024);
  CHECK(drain(b, t0) == 32);
  // Payload never raises the budget above the burst.
  b.refill(std::uint64_t{1} << 40);
  CHECK(b.tokens(t0) == Approx(50));
}

TEST_CASE("free budget: a client that moves data never runs out", "[gateway][free]") {
  // Download at 1 MiB/s in 64 KiB reads with a grant per 128 KiB, a ping and a pong every 20 s
  // scaled down to every 100 ms, for 100 simulated seconds: the budget stays near the burst.
  FreeMessageBudget b({100, 1000, 4096}, t0);
  Timestamp now = t0;
  std::uint64_t moved = 0;
  for (int step = 0; step < 100 * 16; ++step) {
    now = now + Duration::from_us(62500);  // 16 reads of 64 KiB per second
    b.refill(64 * 1024);
    moved += 64 * 1024;
    if (moved % (128 * 1024) == 0) REQUIRE(b.take(now));  // the grant
    if (step % 2 == 0) {
      REQUIRE(b.take(now));  // ping
      REQUIRE(b.take(now));  // pong
    }
  }
  CHECK(b.tokens(now) >= 997);  // full but for the messages of the last step
}

TEST_CASE("free budget: a flood is refused after the burst plus the rate", "[gateway][free]") {
  // 1-byte grants at 200 000 per second, each moving at most one byte: the budget runs out
  // after the burst and about rate x elapsed, and stays out.
  FreeMessageBudget b({100, 1000, 4096}, t0);
  int taken = 0;
  int refused_at = -1;
  for (int i = 0; i < 200000; ++i) {
    const Timestamp now = t0 + Duration::from_ns(5000LL * i);
    b.refill(1);
    if (!b.take(now)) {
      refused_at = i;
      break;
    }
    ++taken;
  }
  REQUIRE(refused_at > 0);
  CHECK(taken >= 1000);
  CHECK(taken <= 1002);  // 5 ms of refill at 100/s plus 1000 bytes: about 1.7 tokens
}

TEST_CASE("free budget: a clock that goes backwards adds nothing", "[gateway][free]") {
  FreeMessageBudget b({100, 10, 4096}, t0);
  (void)drain(b, t0);
  CHECK_FALSE(b.take(Timestamp{t0.ns - 1000000000}));
  CHECK_FALSE(b.take(t0));  // and the earlier time did not move `last` back
  CHECK(b.take(t0 + Duration::from_ms(20)));
}

TEST_CASE("free budget: [session] free_message_* keys", "[gateway][free][config]") {
  const auto d = config_from("");
  CHECK(d.free_message_rate == 100);
  CHECK(d.free_message_burst == 1000);
  CHECK(d.free_message_refill_bytes == 4096);
  CHECK(d.free_message_min_payload == 16);
  const auto c = config_from(
      "[session]\nfree_message_rate = 5\nfree_message_burst = 6\n"
      "free_message_refill_bytes = 7\nfree_message_min_payload = 8\n");
  CHECK(c.free_message_rate == 5);
  CHECK(c.free_message_burst == 6);
  CHECK(c.free_message_refill_bytes == 7);
  CHECK(c.free_message_min_payload == 8);
  CHECK_THROWS_WITH(config_from("[session]\nfree_message_rate = 0\n"),
                    Catch::Contains("session.free_message_rate out of range"));
  CHECK_THROWS_WITH(config_from("[session]\nfree_message_burst = 0\n"),
                    Catch::Contains("session.free_message_burst out of range"));
  CHECK_THROWS_WITH(config_from("[session]\nfree_message_refill_bytes = 0\n"),
                    Catch::Contains("session.free_message_refill_bytes out of range"));
  CHECK_THROWS_WITH(config_from("[session]\nfree_message_min_payload = 0\n"),
                    Catch::Contains("session.free_message_min_payload out of range"));
  CHECK_THROWS_WITH(config_from("[session]\nfree_message_min_payload = 65537\n"),
                    Catch::Contains("session.free_message_min_payload out of range"));
}
