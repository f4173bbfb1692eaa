// Shared state of one gateway process (single-threaded: one io_context, one thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "auth.hpp"
#include "config.hpp"
#include "metrics.hpp"
#include "mana/core/types.hpp"
#include "policy.hpp"
#include "rate_limit.hpp"
#include "resume.hpp"

namespace mana::gateway {

class Server;

struct Context {
  boost::asio::io_context& io;
  const Config& cfg;
  Metrics& metrics;
  const Authenticator& auth;
  const Policy& policy;
  ResumeTable& resume;
  RateLimits& rates;
  Server& server;
  std::uint64_t next_id = 1;
  // One read buffer for every target socket (one thread): a relay waits for readability and
  // reads into this only then, so an idle channel holds no read buffer of its own.
  std::vector<std::uint8_t> read_scratch{};
};

// Monotonic time for the core (steady_clock, nanoseconds).
inline core::Timestamp mono_now() {
  return core::Timestamp{
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count())};
}

inline std::chrono::steady_clock::time_point to_steady(core::Timestamp t) {
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::nanoseconds(t.ns)));
}

inline std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace mana::gateway
