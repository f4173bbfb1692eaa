// SPDX-License-Identifier: Apache-2.0
// FreeMessageBudget: how many messages that move no payload one connection may send (issue #18
// §4, the class of the HTTP/2 ping, settings and empty-frame floods, CVE-2019-9512/-9515/-9518).
//
// A leaky token bucket: `rate` tokens per second and one token per `refill_bytes` of payload the
// connection moved (either direction) refill it, up to `burst`. Every free message takes one
// token; when none is left the caller closes the connection with 4004. Which messages are free
// is the caller's decision (session.cpp, docs/gateway.md `[session] free_message_*`).
//
// The caller passes `now` (the host's monotonic clock): the class reads no clock, so the unit
// test drives it with literal timestamps. Single-threaded, like the rest of the gateway.
#pragma once

#include <cstdint>

#include "mana/core/types.hpp"

namespace mana::gateway {

class FreeMessageBudget {
 public:
  struct Limits {
    std::uint32_t rate = 100;           // tokens per second
    std::uint32_t burst = 1000;         // bucket size (a new connection starts full)
    std::uint32_t refill_bytes = 4096;  // payload bytes moved that refill one token
  };

  FreeMessageBudget(Limits limits, core::Timestamp now) noexcept;

  // Payload moved by this connection (client -> target or target -> client).
  void refill(std::uint64_t payload_bytes) noexcept;
  // One free message at `now`: takes a token, or returns false when the budget is spent (the
  // caller refuses the connection; nothing is taken).
  [[nodiscard]] bool take(core::Timestamp now) noexcept;
  // Tokens at `now` (for tests and debugging).
  [[nodiscard]] double tokens(core::Timestamp now) const noexcept;

 private:
  double rate_per_ns_;
  double burst_;
  double per_byte_;
  double tokens_;
  core::Timestamp last_;
};

}  // namespace mana::gateway
