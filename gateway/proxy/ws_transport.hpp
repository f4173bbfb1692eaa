// SPDX-License-Identifier: Apache-2.0
// mana-proxy's link: one WebSocket connection attempt to the gateway (resolve, connect, TLS for
// wss://, then host::ClientLink's WebSocket handshake), which reports to a host::LinkSink under
// its generation number (proxy.hpp, invariant P5). Internal to mana_proxy_lib.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include "mana/core/wire_profile.hpp"
#include "mana/host/client_link.hpp"
#include "options.hpp"

namespace mana::proxy {

class Transport {
 public:
  Transport() = default;
  virtual ~Transport() = default;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;
  virtual void start() = 0;
  virtual void send(core::OutMessage&& m) = 0;
  // Drops the connection without a close frame; no callback follows.
  virtual void abort() = 0;
  [[nodiscard]] virtual std::size_t queued_bytes() const = 0;
};

// A transport to opt.url: over TLS (with `tls`, which must then be non-null and outlive it) when
// opt.url.tls, else plain TCP, requesting `target` (opt.url.path, with route=<id> for a resume).
// start() begins the attempt.
std::shared_ptr<Transport> make_transport(boost::asio::io_context& io,
                                          boost::asio::ssl::context* tls, const Options& opt,
                                          host::LinkSink& sink, std::uint64_t gen,
                                          std::string target);

}  // namespace mana::proxy
