// SPDX-License-Identifier: Apache-2.0
// mana-proxy's session side: the Proxy that drives core::ClientSession, owns reconnect backoff
// and the end of the process. The link is ws_transport.{hpp,cpp}, stdin/stdout
// stdio_pipe.{hpp,cpp}.
#include "proxy.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>

#include "mana/core/client_session.hpp"
#include "mana/host/client_link.hpp"
#include "mana/host/clock.hpp"
#include "mana/host/pump.hpp"
#include "mana/host/session_timer.hpp"
#include "mana/host/ws_url.hpp"
#include "stdio_pipe.hpp"
#include "ws_transport.hpp"

namespace mana::proxy {

namespace beast = boost::beast;
namespace net = boost::asio;
namespace ssl = net::ssl;

namespace {

constexpr std::size_t transport_high_water = 8 * 1024 * 1024;
constexpr std::size_t transport_low_water = 2 * 1024 * 1024;
constexpr auto stop_grace = std::chrono::seconds(2);

using host::mono_now;

core::ClientConfig make_client_config(const Options& opt, const std::string& token) {
  core::ClientConfig c;
  c.profile = opt.profile;
  c.auth = core::Auth{};
  if (!token.empty()) {
    c.auth->scheme = core::Auth::Scheme::bearer;
    c.auth->token = token;
  }
  return c;
}

class Proxy final : public host::LinkSink, public StdioSink {
 public:
  Proxy(net::io_context& io, const Options& opt, const std::string& token)
      : io_(io),
        opt_(opt),
        core_(make_client_config(opt, token), mono_now()),
        timer_(io, host::SessionTimer::Rearm::exact),
        retry_timer_(io),
        stop_timer_(io),
        signals_(io, SIGINT, SIGTERM, SIGHUP),
        stdio_(io, *this),
        rng_(std::random_device{}()) {
    if (opt_.url.tls) {
      tls_.emplace(ssl::context::tls_client);
      tls_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                        ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
      beast::error_code ec;
      tls_->set_default_verify_paths(ec);
      if (!opt_.ca_file.empty()) {
        tls_->load_verify_file(opt_.ca_file, ec);
        if (ec) setup_error_ = "cannot load --ca-file " + opt_.ca_file + ": " + ec.message();
      }
    }
    if (std::string e = stdio_.open(); !e.empty()) setup_error_ = std::move(e);
  }

  int run() {
    if (!setup_error_.empty()) {
      std::fprintf(stderr, "mana-proxy: %s\n", setup_error_.c_str());
      return 1;
    }
    signals_.async_wait([this](const beast::error_code& ec, int sig) {
      if (ec) return;
      verbose("signal %d: closing the session", sig);
      begin_stop(0, {});
    });
    connect();
    io_.run();
    if (!message_.empty()) std::fprintf(stderr, "mana-proxy: %s\n", message_.c_str());
    return exit_code_;
  }

  // ---- host::LinkSink --------------------------------------------------------
  void on_link_open(std::uint64_t gen) override {
    if (gen != gen_) return;
    verbose("connected to %s", opt_.url_text.c_str());
    ws_open_ = true;
    if (auto r = core_.transport_open(mono_now()); !r) {
      finish(1, "cannot start the session: " + r.error().detail);
      return;
    }
    pump();
  }

  void on_link_message(std::uint64_t gen, core::MessageType type, core::ByteView data) override {
    if (gen != gen_) return;
    core_.receive(type, data, mono_now());
    pump();
  }

  void on_link_closed(std::uint64_t gen, std::optional<std::uint16_t> code,
                      const std::string& reason, const std::string& what) override {
    if (gen != gen_) return;
    const bool was_open = ws_open_;
    ws_open_ = false;
    transport_.reset();
    if (stopping_) {
      io_.stop();
      return;
    }
    if (!was_open) {
      // The attempt failed before the WebSocket opened: the core never saw this transport.
      attempt_failed(what);
      return;
    }
    if (code) {
      core_.receive_close(*code, reason, mono_now());
    } else {
      verbose("transport lost: %s", what.c_str());
      core_.transport_lost(mono_now());
    }
    pump();
  }

  void on_link_drained(std::uint64_t gen) override {
    if (gen != gen_) return;
    update_transport_pause();
  }

 private:
  __attribute__((format(printf, 2, 3))) void verbose(const char* fmt, ...) const {
    if (!opt_.verbose) return;
    std::va_list ap;
    va_start(ap, fmt);
    std::fputs("mana-proxy: ", stderr);
    std::vfprintf(stderr, fmt, ap);
    std::fputc('\n', stderr);
    va_end(ap);
  }

  // ---- transports ---------------------------------------------------------------
  void connect() {
    ++gen_;
    // A resume goes back to the gateway that holds the session (PROTOCOL.md §9.8).
    const std::string* route = core_.route();
    std::string target = route != nullptr && core_.state() == core::SessionState::reconnecting
                             ? host::with_route(opt_.url.path, *route)
                             : opt_.url.path;
    transport_ =
        make_transport(io_, opt_.url.tls ? &*tls_ : nullptr, opt_, *this, gen_, std::move(target));
    transport_->start();
  }

  void drop_transport() {
    if (transport_) transport_->abort();
    transport_.reset();
    ws_open_ = false;
    ++gen_;  // late callbacks of the old transport are ignored
  }

  void attempt_failed(const std::string& what) {
    if (!ever_ready_) {
      finish(1, what);
      return;
    }
    verbose("reconnect attempt failed: %s", what.c_str());
    schedule_reconnect();
  }

  void schedule_reconnect() {
    const auto now = std::chrono::steady_clock::now();
    if (!lost_at_) lost_at_ = now;
    const auto waited =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - *lost_at_).count();
    if (waited >= opt_.reconnect_timeout_ms) {
      finish(1, "could not resume the session within " + std::to_string(opt_.reconnect_timeout_ms) +
                    " ms; giving up");
      return;
    }
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    const auto delay =
        backoff_ms(attempt_++, opt_.reconnect_min_ms, opt_.reconnect_max_ms, unit(rng_));
    verbose("reconnecting in %u ms (attempt %u)", static_cast<unsigned>(delay),
            static_cast<unsigned>(attempt_));
    retry_timer_.expires_after(std::chrono::milliseconds(delay));
    retry_timer_.async_wait([this](const beast::error_code& ec) {
      if (!ec && !stopping_) connect();
    });
  }

  void update_transport_pause() {
    if (!transport_) return;
    const std::size_t q = transport_->queued_bytes();
    if (!transport_paused_ && q > transport_high_water) {
      transport_paused_ = true;
      core_.set_paused(core::PauseReason::transport, true, mono_now());
      pump();
    } else if (transport_paused_ && q < transport_low_water) {
      transport_paused_ = false;
      core_.set_paused(core::PauseReason::transport, false, mono_now());
      pump();
    }
  }

  // ---- core ---------------------------------------------------------------------
  void pump() {
    const bool outermost = pump_.run([this] {
      while (auto m = core_.poll_output()) {
        if (transport_ && ws_open_) transport_->send(std::move(*m));
      }
      while (auto e = core_.poll_event())
        handle(*e);
      // Handling an event can queue output (open_channel after Ready, close replies).
      return core_.has_output() || core_.has_event();
    });
    if (!outermost) return;
    if (transport_ && ws_open_) update_transport_pause();
    arm_timer();
    maybe_read_stdin();
  }

  void arm_timer() {
    timer_.arm(core_.next_timeout(), [this] {
      core_.handle_timeout(mono_now());
      pump();
    });
  }

  void handle(core::Event& ev) {
    namespace e = core::event;
    if (auto* sc = std::get_if<e::StateChanged>(&ev)) {
      verbose("state %s -> %s", std::string(core::to_string(sc->from)).c_str(),
              std::string(core::to_string(sc->to)).c_str());
    } else if (auto* r = std::get_if<e::Ready>(&ev)) {
      on_ready(*r);
    } else if (auto* o = std::get_if<e::ChannelOpened>(&ev)) {
      if (o->id == chan_) channel_open_ = true;
    } else if (auto* f = std::get_if<e::ChannelOpenFailed>(&ev)) {
      begin_stop(1, "gateway refused " + opt_.target_host + ":" + std::to_string(opt_.target_port) +
                        ": " + f->code + (f->msg.empty() ? "" : " (" + f->msg + ")"));
    } else if (auto* d = std::get_if<e::ChannelData>(&ev)) {
      if (d->id == chan_ && !stdio_.broken()) stdio_.write(std::move(d->data));
    } else if (auto* c = std::get_if<e::ChannelClosed>(&ev)) {
      if (c->id == chan_) on_channel_closed(*c);
    } else if (auto* cl = std::get_if<e::Closed>(&ev)) {
      on_session_closed(*cl);
    } else if (auto* p = std::get_if<e::Policy>(&ev)) {
      if (p->kind == core::PolicyKind::flow_pause || p->kind == core::PolicyKind::flow_resume)
        verbose("%s reasons=%u", std::string(core::to_string(p->kind)).c_str(),
                static_cast<unsigned>(p->reasons));
    } else if (auto* dg = std::get_if<e::Diagnostic>(&ev)) {
      if (dg->code == core::DiagCode::resume_accepted || dg->code == core::DiagCode::replayed ||
          dg->code == core::DiagCode::resume_rejected)
        verbose("%s %s", std::string(core::to_string(dg->code)).c_str(), dg->detail.c_str());
    }
  }

  void on_ready(const core::event::Ready& r) {
    ever_ready_ = true;
    attempt_ = 0;
    lost_at_.reset();
    if (r.resumed) {
      ++resumes_;
      verbose("session resumed (%u)", static_cast<unsigned>(resumes_));
      return;
    }
    if (chan_ != 0) return;
    core::OpenParams p;
    p.target = core::Target{opt_.target_host, opt_.target_port};
    p.kind = "tcp";
    auto id = core_.open_channel(p, mono_now());
    if (!id) {
      begin_stop(1, "cannot open the channel: " + id.error().detail);
      return;
    }
    chan_ = *id;
  }

  void on_channel_closed(const core::event::ChannelClosed& c) {
    channel_open_ = false;
    channel_gone_ = true;
    // A session that ended reports its channels closed first; the Closed event that follows
    // says why (and whether a resume is possible).
    if (core_.state() == core::SessionState::closed ||
        core_.state() == core::SessionState::reconnecting)
      return;
    verbose("channel closed (%s, %s)", c.reason.c_str(),
            std::string(core::to_string(c.origin)).c_str());
    // Write what is left for stdout, then end the session normally.
    if (stdio_.output_empty() || stdio_.broken()) begin_stop(0, {});
  }

  void on_session_closed(const core::event::Closed& c) {
    if (c.resumable) {
      verbose("connection lost (%u %s): resuming", static_cast<unsigned>(c.code),
              std::string(core::to_string(c.code)).c_str());
      drop_transport();
      schedule_reconnect();
      return;
    }
    if (stopping_) return;
    const std::string why = std::to_string(static_cast<unsigned>(c.code)) + " " +
                            std::string(core::to_string(c.code)) +
                            (c.reason.empty() ? "" : " (" + c.reason + ")");
    finish(c.code == core::CloseCode::normal && channel_gone_ ? 0 : 1,
           std::string(c.origin == core::Origin::remote ? "gateway closed the session: "
                                                        : "session closed: ") +
               why + (ever_ready_ && core_.resume_token() ? "; resume is not possible" : ""));
  }

  // ---- stdio (StdioSink) ---------------------------------------------------------
  void maybe_read_stdin() {
    if (stdio_.reading() || stdio_.at_eof() || !channel_open_ || stopping_) return;
    flush_pending_input();
    if (!pending_in_.empty()) return;  // waiting for credit
    const std::uint64_t avail = core_.available(chan_);
    if (avail == 0) return;  // a flow message will pump() again
    stdio_.read_some(avail);
  }

  void on_stdin_data(core::ByteView data) override {
    if (stopping_) return;
    pending_in_.insert(pending_in_.end(), data.begin(), data.end());
    flush_pending_input();
    pump();
  }

  void flush_pending_input() {
    if (pending_in_.empty() || !channel_open_) return;
    auto r = core_.write(chan_, core::Stream::out, pending_in_, mono_now());
    if (!r) {
      begin_stop(1, "channel write failed: " + r.error().detail);
      return;
    }
    pending_in_.erase(pending_in_.begin(), pending_in_.begin() + static_cast<std::ptrdiff_t>(*r));
  }

  void on_stdin_end(const beast::error_code& ec) override {
    if (stopping_) return;
    if (ec != net::error::eof) verbose("stdin: %s", ec.message().c_str());
    // No half-close in the protocol: closing the channel ends both directions. Data already
    // written is delivered first (it precedes the close on the wire and in the replay).
    if (channel_open_) {
      (void)core_.close_channel(chan_, "eof", mono_now());
      pump();
    } else {
      begin_stop(0, {});
    }
  }

  void on_stdout_failed(const beast::error_code& ec) override {
    verbose("stdout: %s", ec.message().c_str());
    begin_stop(0, {});
  }

  void on_stdout_written(std::size_t n) override {
    if (core_.has_channel(chan_)) (void)core_.consume(chan_, n, mono_now());
    if (stdio_.output_empty() && channel_gone_) {
      begin_stop(0, {});
      return;
    }
    stdio_.write_next();
    pump();
  }

  // ---- end ----------------------------------------------------------------------
  // Ends the session: a normal close frame when connected, then exit with `code`.
  void begin_stop(int code, std::string message) {
    if (!enter_stop(code, std::move(message))) return;
    stdio_.close_input();
    if (core_.state() != core::SessionState::closed)
      core_.close(core::CloseCode::normal, code == 0 ? "done" : "client error", mono_now());
    flush_and_stop();
  }

  // Ends after an error. A close frame the core queued (a protocol error it detected) still
  // gets written.
  void finish(int code, std::string message) {
    if (enter_stop(code, std::move(message))) flush_and_stop();
  }

  bool enter_stop(int code, std::string message) {
    if (stopping_) return false;
    stopping_ = true;
    exit_code_ = code;
    message_ = std::move(message);
    retry_timer_.cancel();
    signals_.cancel();
    timer_.cancel();
    return true;
  }

  // Hands the core's last output (its close frame) to the transport and stops the event loop
  // once the close is written (on_link_closed) or after a short grace; at once without a transport.
  void flush_and_stop() {
    if (!transport_ || !ws_open_) {
      drop_transport();
      io_.stop();
      return;
    }
    while (auto m = core_.poll_output())
      transport_->send(std::move(*m));
    while (core_.poll_event()) {
    }
    stop_timer_.expires_after(stop_grace);
    stop_timer_.async_wait([this](const beast::error_code& ec) {
      if (!ec) io_.stop();
    });
  }

  net::io_context& io_;
  const Options& opt_;
  core::ClientSession core_;
  std::optional<ssl::context> tls_;
  std::shared_ptr<Transport> transport_;
  std::uint64_t gen_ = 0;
  bool ws_open_ = false;
  bool transport_paused_ = false;
  host::SessionTimer timer_;
  net::steady_timer retry_timer_;
  net::steady_timer stop_timer_;
  net::signal_set signals_;
  host::Pump pump_;

  StdioPipe stdio_;
  std::vector<std::uint8_t> pending_in_;  // read from stdin, waiting for send credit

  core::ChannelId chan_ = 0;
  bool channel_open_ = false;
  bool channel_gone_ = false;
  bool ever_ready_ = false;
  std::uint32_t attempt_ = 0;
  std::uint32_t resumes_ = 0;
  std::optional<std::chrono::steady_clock::time_point> lost_at_;
  std::mt19937_64 rng_;  // backoff jitter only (not security relevant)

  bool stopping_ = false;
  int exit_code_ = 1;
  std::string message_;
  std::string setup_error_;
};

}  // namespace

int run_proxy(net::io_context& io, const Options& opt, const std::string& token) {
  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout is an error code, not a signal
  Proxy p(io, opt, token);
  return p.run();
}

}  // namespace mana::proxy