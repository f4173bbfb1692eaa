// SPDX-License-Identifier: Apache-2.0
#include "server.hpp"

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "log.hpp"

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
  listener_.set_on_reload([this] { reload(); });
}

Server::~Server() = default;

void Server::reload() {
  std::vector<std::string> ignored;
  try {
    if (!loader_) throw std::runtime_error("no --config file to read");
    Config next = loader_();
    if (next.listen_host != cfg_.listen_host || next.listen_port != cfg_.listen_port) {
      ignored.emplace_back("server.listen");
      next.listen_host = cfg_.listen_host;
      next.listen_port = cfg_.listen_port;
    }
    if (next.tls_cert_file.empty() != cfg_.tls_cert_file.empty()) {
      ignored.emplace_back("tls");
      next.tls_cert_file = cfg_.tls_cert_file;
      next.tls_key_file = cfg_.tls_key_file;
    }
    if (next.open_rate != cfg_.open_rate || next.open_burst != cfg_.open_burst ||
        next.ping_rate != cfg_.ping_rate || next.ping_burst != cfg_.ping_burst ||
        next.resume_fail_rate != cfg_.resume_fail_rate ||
        next.resume_fail_burst != cfg_.resume_fail_burst) {
      ignored.emplace_back("rate");
      next.open_rate = cfg_.open_rate;
      next.open_burst = cfg_.open_burst;
      next.ping_rate = cfg_.ping_rate;
      next.ping_burst = cfg_.ping_burst;
      next.resume_fail_rate = cfg_.resume_fail_rate;
      next.resume_fail_burst = cfg_.resume_fail_burst;
    }
    if (next.route_id != cfg_.route_id) {
      // Clients hold the route of their hello_ok; a new id would send their resumes elsewhere.
      ignored.emplace_back("server.route_id");
      next.route_id = cfg_.route_id;
    }
    if (next.max_frame != cfg_.max_frame) {
      // A resumed session's core keeps the maxFrame it announced; its next WebSocket must
      // accept messages that large.
      ignored.emplace_back("session.max_frame");
      next.max_frame = cfg_.max_frame;
    }
    // Everything that can fail, before anything changes.
    Authenticator auth(next);
    std::unique_ptr<boost::asio::ssl::context> tls;
    if (!next.tls_cert_file.empty()) tls = Listener::make_tls(next);
    LogLevel level = LogLevel::info;
    if (!parse_log_level(next.log_level, level))
      throw std::runtime_error("server.log_level must be debug, info, warn or error");
    Policy policy(next);
    // Swap in.
    cfg_ = std::move(next);
    auth_.take_from(auth);
    policy_ = std::move(policy);
    listener_.replace_tls(std::move(tls));
    set_log_level(level);
  } catch (const std::exception& ex) {
    metrics_.config_reloads["error"]++;
    log_warn("reload_failed", {{"error", ex.what()}, {"kept", "the previous configuration"}});
    return;
  }
  metrics_.config_reloads["ok"]++;
  log_info("reload", {{"result", "ok"},
                      {"ignored", ignored},
                      {"origins", cfg_.origins.size()},
                      {"targets", cfg_.targets.size()},
                      {"jwks_keys", auth_.key_count()},
                      {"tls", listener_.tls()}});
}

void Server::start() {
  listener_.start();
}

}  // namespace mana::gateway
