// SPDX-License-Identifier: Apache-2.0
#include "server.hpp"

namespace mana::gateway {

Server::Server(boost::asio::io_context& io, const Config& cfg)
    : cfg_(cfg),
      auth_(cfg),
      policy_(cfg),
      rates_{RateLimiter(cfg.open_rate, cfg.open_burst), RateLimiter(cfg.ping_rate, cfg.ping_burst),
             RateLimiter(cfg.resume_fail_rate, cfg.resume_fail_burst)},
      ctx_{io, cfg_, metrics_, auth_, policy_, resume_, rates_, registry_},
      registry_(ctx_),
      listener_(ctx_, registry_) {
  metrics_.buffer_gauge = [this] {
    BufferGauge g = registry_.buffer_gauge();
    g.http_phase = listener_.http_phase_count();
    return g;
  };
}

Server::~Server() = default;

void Server::start() {
  listener_.start();
}

}  // namespace mana::gateway
