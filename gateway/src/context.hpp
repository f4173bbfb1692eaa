// SPDX-License-Identifier: Apache-2.0
// Shared state of one gateway process (single-threaded: one io_context, one thread).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "auth.hpp"
#include "config.hpp"
#include "metrics.hpp"
#include "mana/core/types.hpp"
#include "mana/host/clock.hpp"
#include "policy.hpp"
#include "rate_limit.hpp"
#include "resume.hpp"

namespace mana::gateway {

class SessionRegistry;
class Handover;

struct Context {
  boost::asio::io_context& io;
  const Config& cfg;
  Metrics& metrics;
  const Authenticator& auth;
  const Policy& policy;
  ResumeTable& resume;
  RateLimits& rates;
  SessionRegistry& registry;
  std::uint64_t next_id = 1;
  // hello_ok.route of every session: [server] route_id, or its default once the port is bound.
  std::string route_id{};
  // [server] handover_socket (handover.hpp); null without one.
  Handover* handover = nullptr;
  // One read buffer for every target socket (one thread): a relay waits for readability and
  // reads into this only then, so an idle channel holds no read buffer of its own.
  std::vector<std::uint8_t> read_scratch{};
};

// Clocks of the host (mana/host/clock.hpp, shared with mana-proxy and mana-bench).
using host::mono_now;
using host::unix_now;

}  // namespace mana::gateway
