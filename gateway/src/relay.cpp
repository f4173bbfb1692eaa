#include "relay.hpp"

#include <algorithm>

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>

#include "log.hpp"
#include "session.hpp"

namespace mana::gateway {

namespace asio = boost::asio;
using asio::ip::tcp;

Relay::Relay(Context& ctx, std::weak_ptr<Session> session, core::ChannelId id, core::Target target,
             std::optional<std::vector<std::string>> claims, std::string principal)
    : ctx_(ctx),
      session_(std::move(session)),
      id_(id),
      target_(std::move(target)),
      claims_(std::move(claims)),
      principal_(std::move(principal)),
      resolver_(ctx.io),
      socket_(ctx.io),
      timer_(ctx.io) {
  if (auto s = session_.lock()) session_id_ = s->id();
}

Relay::~Relay() = default;

std::uint64_t Relay::buffered() const noexcept {
  return banner_.size() + (pending_.size() - pending_off_) + to_target_bytes_;
}

void Relay::start() {
  const PolicyDecision pre =
      ctx_.policy.precheck(target_.host, target_.port, claims_, resolve_name_);
  if (!pre.allowed) {
    reject("policy_denied", "target not allowed", pre.reason + ": " + pre.detail);
    return;
  }
  // Resolve once; the connection goes to exactly the addresses checked below.
  timer_.expires_after(std::chrono::milliseconds(ctx_.cfg.connect_timeout_ms));
  timer_.async_wait([w = weak_from_this()](const boost::system::error_code& ec) {
    if (ec) return;
    auto self = w.lock();
    if (!self || self->stopped_) return;
    self->timed_out_ = true;
    self->resolver_.cancel();
    boost::system::error_code ignored;
    self->socket_.close(ignored);
  });
  resolver_.async_resolve(resolve_name_, std::to_string(target_.port),
                          tcp::resolver::numeric_service,
                          [self = shared_from_this()](const boost::system::error_code& ec,
                                                      const tcp::resolver::results_type& r) {
                            self->on_resolved(ec, r);
                          });
}

void Relay::reject(const std::string& code, const std::string& msg, const std::string& reason) {
  if (stopped_) return;
  phase_ = Phase::closing;
  timer_.cancel();
  if (code == "policy_denied") ctx_.metrics.policy_rejections[reason.substr(0, reason.find(':'))]++;
  log_info("open", {{"session", session_id_},
                    {"channel", id_},
                    {"principal", principal_},
                    {"host", target_.host},
                    {"port", target_.port},
                    {"result", code},
                    {"detail", reason}});
  auto s = session();
  if (!s) return;
  (void)s->core().reject_open(id_, code, msg, mono_now());
  stop();
  s->remove_relay(id_, this);
  s->pump();
}

void Relay::reject_step(const boost::system::error_code& ec, const std::string& step,
                        const std::string& msg) {
  if (timed_out_) {
    reject("timeout", "target did not answer in time", step + " timeout");
  } else {
    reject("target_unreachable", msg, step + ": " + ec.message());
  }
}

void Relay::on_resolved(const boost::system::error_code& ec,
                        const tcp::resolver::results_type& results) {
  if (stopped_) return;
  if (ec) {
    reject_step(ec, "resolve", "name resolution failed");
    return;
  }
  std::vector<asio::ip::address> addrs;
  for (const auto& e : results) {
    if (addrs.size() >= 16) break;
    addrs.push_back(e.endpoint().address());
  }
  PolicyDecision d = ctx_.policy.check_resolved(resolve_name_, target_.port, addrs);
  if (!d.allowed) {
    reject("policy_denied", "target not allowed", d.reason + ": " + d.detail);
    return;
  }
  endpoints_ = std::move(d.endpoints);
  std::vector<std::string> shown;
  for (const auto& ep : endpoints_)
    shown.push_back(ep.address().to_string());
  log_info("policy", {{"session", session_id_},
                      {"channel", id_},
                      {"decision", "allow"},
                      {"host", target_.host},
                      {"port", target_.port},
                      {"addresses", shown}});
  phase_ = Phase::connecting;
  asio::async_connect(socket_, endpoints_,
                      [self = shared_from_this()](const boost::system::error_code& e,
                                                  const tcp::endpoint&) { self->on_connected(e); });
}

void Relay::on_connected(const boost::system::error_code& ec) {
  if (stopped_) return;
  if (ec) {
    reject_step(ec, "connect", "connect failed");
    return;
  }
  timer_.cancel();
  auto s = session();
  if (!s) return stop();
  boost::system::error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  socket_.non_blocking(true, ignored);  // reads happen after wait_read (on_readable)
  if (auto r = s->core().accept_open(id_, std::nullopt, mono_now()); !r) {
    // The client closed the channel (or the session) meanwhile.
    stop();
    s->pump();
    return;
  }
  counted_ = true;
  ctx_.metrics.channels_total++;
  ctx_.metrics.channels_active++;
  log_info("open", {{"session", session_id_},
                    {"channel", id_},
                    {"principal", principal_},
                    {"host", target_.host},
                    {"port", target_.port},
                    {"result", "ok"}});
  phase_ = Phase::banner;
  timer_.expires_after(std::chrono::milliseconds(ctx_.cfg.banner_timeout_ms));
  timer_.async_wait([w = weak_from_this()](const boost::system::error_code& e) {
    if (e) return;
    auto self = w.lock();
    if (!self || self->stopped_ || self->phase_ != Phase::banner) return;
    log_info("policy", {{"session", self->session_id_},
                        {"channel", self->id_},
                        {"decision", "close"},
                        {"reason", "not_ssh"},
                        {"detail", "no SSH banner in time"}});
    self->ctx_.metrics.policy_rejections["not_ssh"]++;
    self->close_channel("not_ssh");
  });
  s->pump();
  start_read();
}

bool Relay::scan_banner() {
  // RFC 4253 4.2: the server may send other lines first; the identification line starts "SSH-".
  std::size_t line = 0;
  for (std::size_t i = 0; i <= banner_.size(); ++i) {
    if (i == banner_.size() || banner_[i] == '\n') {
      const std::size_t len = i - line;
      if (len >= 4 && std::equal(banner_.begin() + static_cast<std::ptrdiff_t>(line),
                                 banner_.begin() + static_cast<std::ptrdiff_t>(line + 4), "SSH-"))
        return true;
      line = i + 1;
    }
  }
  return false;
}

void Relay::start_read() {
  if (stopped_ || draining_ || reading_ || target_eof_ || close_sent_) return;
  std::size_t want = 0;
  if (phase_ == Phase::banner) {
    // banner_max_bytes may have shrunk below what is held (SIGHUP): then read nothing more.
    const std::size_t room =
        ctx_.cfg.banner_max_bytes > banner_.size() ? ctx_.cfg.banner_max_bytes - banner_.size() : 0;
    want = std::min(ctx_.cfg.read_chunk, room);
    if (want == 0) return;
  } else if (phase_ == Phase::relaying) {
    if (pending_off_ < pending_.size()) return;
    auto s = session();
    if (!s) return;
    const std::uint64_t avail = s->core().available(id_);
    if (avail == 0) {
      if (!stalled_) {
        begin_stall();
        // Ask the core for event::ChannelWritable: a write it cannot take sets that flag
        // (available() is 0, so nothing is queued).
        static const std::uint8_t probe = 0;
        (void)s->core().write(id_, core::Stream::out, core::ByteView(&probe, 1), mono_now());
      }
      return;
    }
    want = static_cast<std::size_t>(std::min<std::uint64_t>(ctx_.cfg.read_chunk, avail));
  } else {
    return;
  }
  reading_ = true;
  want_ = want;
  socket_.async_wait(
      tcp::socket::wait_read,
      [self = shared_from_this()](const boost::system::error_code& ec) { self->on_readable(ec); });
}

void Relay::on_readable(const boost::system::error_code& ec) {
  reading_ = false;
  if (stopped_ || draining_) return;
  if (ec) {
    on_read(ec, nullptr, 0);
    return;
  }
  auto& buf = ctx_.read_scratch;
  if (buf.size() < ctx_.cfg.read_chunk) buf.resize(ctx_.cfg.read_chunk);
  boost::system::error_code rec;
  const std::size_t n =
      socket_.read_some(asio::buffer(buf.data(), std::min(want_, buf.size())), rec);
  if (rec == asio::error::would_block || rec == asio::error::try_again) {
    start_read();  // spurious readiness
    return;
  }
  on_read(rec, buf.data(), n);
}

void Relay::on_read(const boost::system::error_code& ec, const std::uint8_t* data, std::size_t n) {
  if (n > 0) {
    if (phase_ == Phase::banner) {
      banner_.insert(banner_.end(), data, data + n);
      if (scan_banner()) {
        phase_ = Phase::relaying;
        timer_.cancel();
        pending_ = std::move(banner_);
        banner_.clear();
        banner_.shrink_to_fit();
        pending_off_ = 0;
        log_debug("banner_ok", {{"session", session_id_}, {"channel", id_}});
        flush_to_target();
      } else if (banner_.size() >= ctx_.cfg.banner_max_bytes) {
        ctx_.metrics.policy_rejections["not_ssh"]++;
        log_info("policy", {{"session", session_id_},
                            {"channel", id_},
                            {"decision", "close"},
                            {"reason", "not_ssh"},
                            {"detail", "no SSH banner in the first bytes"}});
        close_channel("not_ssh");
        return;
      }
    } else if (phase_ == Phase::relaying) {
      if (!deliver(data, n)) return;
    }
  }
  if (ec) {
    target_eof_ = true;
    if (phase_ == Phase::banner) {
      ctx_.metrics.policy_rejections["not_ssh"]++;
      log_info("policy", {{"session", session_id_},
                          {"channel", id_},
                          {"decision", "close"},
                          {"reason", "not_ssh"},
                          {"detail", "target closed before an SSH banner"}});
      close_channel("not_ssh");
      return;
    }
  }
  flush_to_client();
}

std::optional<std::size_t> Relay::write_to_client(Session& s, core::ByteView view) {
  auto r = s.core().write(id_, core::Stream::out, view, mono_now());
  if (!r) return std::nullopt;
  ctx_.metrics.bytes_to_client += *r;
  s.on_payload_to_client(*r);
  if (*r < view.size() && !stalled_) begin_stall();
  return *r;
}

bool Relay::deliver(const std::uint8_t* data, std::size_t n) {
  auto s = session();
  if (!s) return false;
  auto r = write_to_client(*s, core::ByteView(data, n));
  if (!r) return false;
  if (*r < n) {
    pending_.assign(data + *r, data + n);
    pending_off_ = 0;
  }
  return true;
}

void Relay::flush_to_client() {
  if (stopped_ || phase_ != Phase::relaying) return;
  auto s = session();
  if (!s) return;
  if (pending_off_ < pending_.size()) {
    auto r = write_to_client(
        *s, core::ByteView(pending_.data() + pending_off_, pending_.size() - pending_off_));
    if (!r) return;
    pending_off_ += *r;
  }
  if (pending_off_ >= pending_.size()) {
    std::vector<std::uint8_t>().swap(pending_);  // rare (a stall); do not keep its capacity
    pending_off_ = 0;
    if (target_eof_) {
      close_channel("eof");
    } else {
      start_read();
    }
  }
  s->pump();
}

void Relay::begin_stall() {
  stalled_ = true;
  stall_start_ = mono_now();
  ctx_.metrics.credit_stalls++;
}

void Relay::end_stall() {
  if (!stalled_) return;
  stalled_ = false;
  ctx_.metrics.credit_stall_ns += static_cast<std::uint64_t>((mono_now() - stall_start_).ns);
}

void Relay::on_writable() {
  if (stopped_) return;
  end_stall();
  if (pending_off_ < pending_.size()) {
    flush_to_client();
  } else {
    start_read();
  }
}

void Relay::on_client_data(core::Bytes&& data) {
  if (stopped_) return;
  to_target_bytes_ += data.size();
  to_target_.push_back(std::move(data));
  flush_to_target();
}

void Relay::flush_to_target() {
  if (stopped_ || writing_ || phase_ != Phase::relaying || to_target_.empty()) return;
  writing_ = true;
  // One gather write of everything queued (up to max_gather messages): fewer system calls and
  // wake-ups of the target than one write per client message.
  std::vector<asio::const_buffer> bufs;
  const std::size_t count = std::min(to_target_.size(), max_gather);
  bufs.reserve(count);
  for (std::size_t i = 0; i < count; ++i)
    bufs.emplace_back(asio::buffer(to_target_[i]));
  asio::async_write(
      socket_, bufs,
      [self = shared_from_this(), count](const boost::system::error_code& ec, std::size_t n) {
        self->writing_ = false;
        if (self->stopped_) return;
        if (ec) {
          if (self->draining_) {
            self->stop();
          } else {
            self->close_channel("target write failed");
          }
          return;
        }
        for (std::size_t i = 0; i < count; ++i) {
          self->to_target_bytes_ -= self->to_target_.front().size();
          self->to_target_.pop_front();
        }
        self->ctx_.metrics.bytes_to_target += n;
        if (self->draining_) {
          // The channel is closed (its id may be reused): no credit, just finish the queue.
          if (self->to_target_.empty()) {
            self->stop();
          } else {
            self->flush_to_target();
          }
          return;
        }
        if (auto s = self->session()) {
          // Credit for bytes the target has taken, not for bytes received.
          (void)s->core().consume(self->id_, n, mono_now());
          self->flush_to_target();
          s->pump();
        }
      });
}

void Relay::close_channel(const std::string& reason) {
  if (stopped_ || close_sent_) return;
  close_sent_ = true;
  phase_ = Phase::closing;
  timer_.cancel();
  auto s = session();
  if (!s) return stop();
  log_debug("channel_closing", {{"session", session_id_}, {"channel", id_}, {"reason", reason}});
  (void)s->core().close_channel(id_, reason, mono_now());
  s->pump();
}

void Relay::stop_after_flush() {
  if (stopped_ || draining_) return;
  if (to_target_.empty() || phase_ != Phase::relaying) {
    stop();
    return;
  }
  // Bytes the client sent before its close still reach the target (PROTOCOL.md 7.1), bounded
  // by the channel's window and by drain_timeout_ms for a target that stopped reading.
  draining_ = true;
  timer_.cancel();
  timer_.expires_after(std::chrono::milliseconds(drain_timeout_ms));
  timer_.async_wait([w = weak_from_this()](const boost::system::error_code& ec) {
    if (ec) return;
    if (auto self = w.lock()) self->stop();
  });
}

void Relay::stop() {
  if (stopped_) return;
  stopped_ = true;
  end_stall();
  timer_.cancel();
  resolver_.cancel();
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  if (counted_) {
    counted_ = false;
    ctx_.metrics.channels_active--;
  }
  to_target_.clear();
  to_target_bytes_ = 0;
}

}  // namespace mana::gateway
