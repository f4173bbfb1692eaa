// Per-IP token buckets ([rate]): burst, refill, isolation between keys, bounded table.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "rate_limit.hpp"

using mana::gateway::RateLimiter;
using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

TEST_CASE("rate limit: burst, then the refill rate", "[gateway][rate]") {
  RateLimiter r(2, 3);
  const auto t0 = RateLimiter::Clock::time_point{} + 1000s;
  CHECK(r.has_token("a", t0));
  CHECK(r.take("a", t0));
  CHECK(r.take("a", t0));
  CHECK(r.take("a", t0));
  CHECK_FALSE(r.take("a", t0));  // burst spent
  CHECK_FALSE(r.has_token("a", t0));
  CHECK_FALSE(r.take("a", t0 + 400ms));  // 0.8 tokens
  CHECK(r.take("a", t0 + 600ms));        // 1.2 tokens (2/s)
  CHECK_FALSE(r.take("a", t0 + 600ms));
  CHECK(r.take("a", t0 + 60s));  // refill is capped at the burst...
  CHECK(r.take("a", t0 + 60s));
  CHECK(r.take("a", t0 + 60s));
  CHECK_FALSE(r.take("a", t0 + 60s));  // ...not 120 tokens
}

TEST_CASE("rate limit: keys are independent", "[gateway][rate]") {
  RateLimiter r(1, 1);
  const auto t0 = RateLimiter::Clock::time_point{} + 1000s;
  CHECK(r.take("10.0.0.1", t0));
  CHECK_FALSE(r.take("10.0.0.1", t0));
  CHECK(r.take("10.0.0.2", t0));
}

TEST_CASE("rate limit: full buckets are pruned, the table stays bounded", "[gateway][rate]") {
  RateLimiter r(1000, 1);
  auto t = RateLimiter::Clock::time_point{} + 1000s;
  for (int i = 0; i < 20000; ++i) {
    (void)r.take("k" + std::to_string(i), t);
    t += 2ms;  // every older bucket has refilled by the next insert
  }
  CHECK(r.size() <= 4097);
}
