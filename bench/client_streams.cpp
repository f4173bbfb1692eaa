// SPDX-License-Identifier: Apache-2.0
// Stream implementations of the mana-bench client (see client_streams.hpp).
#include "client_streams.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <string>

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "mana/core/client_session.hpp"
#include "mana/host/client_link.hpp"
#include "mana/host/clock.hpp"
#include "mana/host/pump.hpp"
#include "mana/host/session_timer.hpp"

namespace mana::bench {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;
using net::ip::tcp;

namespace {

std::size_t g_live_transports = 0;

constexpr std::size_t max_ws_message = 16 * 1024 * 1024;
constexpr std::size_t mana_high_water = 8 * 1024 * 1024;  // queued WebSocket bytes: stop writing
constexpr std::size_t mana_low_water = 2 * 1024 * 1024;
constexpr int reads_per_wakeup = 16;

using host::mono_now;

EndKind kind_of(const boost::system::error_code& ec) {
  if (ec == net::error::eof || ec == websocket::error::closed) return EndKind::eof;
  if (ec == net::error::connection_reset || ec == net::error::broken_pipe ||
      ec == net::error::connection_aborted)
    return EndKind::reset;
  return EndKind::error;
}

// Opens `s`, binds it to the next source address (if any) and connects.
template <class Handler>
void open_and_connect(tcp::socket& s, ClientSetup& setup, Handler&& h) {
  boost::system::error_code ec;
  s.open(setup.endpoint.protocol(), ec);
  if (!ec && !setup.sources.empty()) s.bind(tcp::endpoint(setup.sources.next(), 0), ec);
  if (ec) {
    net::post(s.get_executor(), [h = std::forward<Handler>(h), ec]() mutable { h(ec); });
    return;
  }
  s.async_connect(setup.endpoint, std::forward<Handler>(h));
}

void reset_close(tcp::socket& s) {
  boost::system::error_code ec;
  if (!s.is_open()) return;
  s.set_option(net::socket_base::linger(true, 0), ec);
  s.close(ec);
}

// Counts an open transport for Connector::live_transports().
class LiveToken {
 public:
  LiveToken() = default;
  ~LiveToken() { release(); }
  LiveToken(const LiveToken&) = delete;
  LiveToken& operator=(const LiveToken&) = delete;
  void acquire() {
    if (!held_) ++g_live_transports;
    held_ = true;
  }
  void release() {
    if (held_) --g_live_transports;
    held_ = false;
  }

 private:
  bool held_ = false;
};

// ---- tcp ---------------------------------------------------------------------------------

class TcpStream final : public Stream, public std::enable_shared_from_this<TcpStream> {
 public:
  TcpStream(net::io_context& io, ClientSetup& setup, std::vector<std::uint8_t>& shared_read,
            StreamHandler& h, std::size_t index)
      : Stream(h, index), setup_(setup), socket_(io), rbuf_(shared_read) {}

  void start() override {
    live_.acquire();
    open_and_connect(socket_, setup_,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       self->on_connected(ec);
                     });
  }

  std::size_t write(ByteView data) override {
    if (writing_ || finishing_ || closed_ || data.empty() || !socket_.is_open()) return 0;
    // The socket is non-blocking: write what the kernel takes now, the rest asynchronously.
    boost::system::error_code ec;
    std::size_t n = socket_.write_some(net::buffer(data.data(), data.size()), ec);
    if (ec == net::error::would_block || ec == net::error::try_again) {
      n = 0;
    } else if (ec) {
      fail(ec, "write");
      return 0;
    }
    if (n == data.size()) return n;
    writing_ = true;
    net::async_write(socket_, net::buffer(data.data() + n, data.size() - n),
                     [self = shared_from_this()](const boost::system::error_code& e, std::size_t) {
                       self->writing_ = false;
                       if (self->closed_) return;
                       if (e) return self->fail(e, "write");
                       if (self->finishing_) return self->shutdown_send();
                       self->handler().on_writable(*self);
                     });
    return data.size();
  }

  void finish() override {
    if (finishing_ || closed_) return;
    finishing_ = true;
    if (!writing_) shutdown_send();
  }

  void close_now() override {
    closed_ = true;
    boost::system::error_code ec;
    socket_.close(ec);
    live_.release();
  }

  void force_drop() override {
    closed_ = true;
    reset_close(socket_);
    live_.release();
  }

 private:
  void on_connected(const boost::system::error_code& ec) {
    if (closed_) return;
    if (ec) return fail(ec, "connect");
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    socket_.non_blocking(true, ignored);
    wait_read();
  }

  void on_budget() override {
    if (!waiting_ && !closed_ && socket_.is_open() && allowance() > 0) wait_read();
  }

  void wait_read() {
    if (closed_ || waiting_ || allowance() == 0) return;
    waiting_ = true;
    socket_.async_wait(tcp::socket::wait_read,
                       [self = shared_from_this()](const boost::system::error_code& ec) {
                         self->waiting_ = false;
                         if (self->closed_) return;
                         if (ec) return self->fail(ec, "read");
                         self->on_readable();
                       });
  }

  void on_readable() {
    for (int i = 0; i < reads_per_wakeup && allowance() > 0; ++i) {
      const std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(rbuf_.size(), allowance()));
      boost::system::error_code ec;
      const std::size_t n = socket_.read_some(net::buffer(rbuf_.data(), want), ec);
      if (ec == net::error::would_block || ec == net::error::try_again) break;
      if (ec) return fail(ec, "read");
      took(n);
      deliver(rbuf_.data(), n);
      if (closed_ || ended()) return;
    }
    wait_read();
  }

  void shutdown_send() {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) fail(ec, "shutdown");
  }

  void fail(const boost::system::error_code& ec, const char* what) {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
    live_.release();
    end(kind_of(ec),
        ec == net::error::eof ? std::string("eof") : std::string(what) + ": " + ec.message());
  }

  ClientSetup& setup_;
  tcp::socket socket_;
  std::vector<std::uint8_t>& rbuf_;
  LiveToken live_;
  bool writing_ = false;
  bool waiting_ = false;
  bool finishing_ = false;
  bool closed_ = false;
};

// ---- raw WebSocket ---------------------------------------------------------------------------

class WsStream final : public Stream, public std::enable_shared_from_this<WsStream> {
 public:
  WsStream(net::io_context& io, ClientSetup& setup, StreamHandler& h, std::size_t index)
      : Stream(h, index), setup_(setup), ws_(io) {}

  void start() override {
    live_.acquire();
    open_and_connect(ws_.next_layer(), setup_,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       self->on_connected(ec);
                     });
  }

  std::size_t write(ByteView data) override {
    if (!open_ || writing_ || closing_ || closed_ || data.empty()) return 0;
    writing_ = true;
    ws_.async_write(net::buffer(data.data(), data.size()),
                    [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                      self->writing_ = false;
                      if (self->closed_) return;
                      if (ec) return self->fail(ec, "write");
                      if (self->closing_) return self->send_close();
                      self->handler().on_writable(*self);
                    });
    return data.size();
  }

  void finish() override {
    if (closing_ || closed_) return;
    closing_ = true;
    if (open_ && !writing_) send_close();
  }

  void close_now() override {
    if (closed_) return;
    silent_ = true;
    if (!open_) {
      closed_ = true;
      boost::system::error_code ec;
      ws_.next_layer().close(ec);
      live_.release();
      return;
    }
    finish();
  }

  void force_drop() override {
    closed_ = true;
    reset_close(ws_.next_layer());
    live_.release();
  }

 private:
  void on_connected(const boost::system::error_code& ec) {
    if (closed_) return;
    if (ec) return fail(ec, "connect");
    boost::system::error_code ignored;
    ws_.next_layer().set_option(tcp::no_delay(true), ignored);
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(30);
    t.idle_timeout = websocket::stream_base::none();
    t.keep_alive_pings = false;
    ws_.set_option(t);
    const std::string origin = setup_.origin;
    ws_.set_option(websocket::stream_base::decorator([origin](websocket::request_type& req) {
      req.set(http::field::sec_websocket_protocol, "binary");
      req.set(http::field::user_agent, "mana-bench");
      if (!origin.empty()) req.set(http::field::origin, origin);
    }));
    ws_.read_message_max(max_ws_message);
    ws_.auto_fragment(false);
    ws_.binary(true);
    ws_.write_buffer_bytes(setup_.bulk ? setup_.ws_write_buffer : 4096);
    ws_.async_handshake(
        res_, setup_.url.host_header(), setup_.url.path,
        [self = shared_from_this()](const boost::system::error_code& e) { self->on_handshake(e); });
  }

  void on_handshake(const boost::system::error_code& ec) {
    if (closed_) return;
    if (ec) return fail(ec, "WebSocket handshake");
    const auto proto = res_[http::field::sec_websocket_protocol];
    if (!proto.empty() && proto != "binary") {
      closed_ = true;
      reset_close(ws_.next_layer());
      live_.release();
      end(EndKind::error, "relay selected subprotocol " + std::string(proto));
      return;
    }
    open_ = true;
    if (setup_.bulk) rbuf_.resize(setup_.read_buffer);
    do_read();
    if (closing_ && !writing_) send_close();
  }

  void on_budget() override {
    if (open_ && !reading_ && !closed_) do_read();
  }

  void do_read() {
    if (reading_ || closed_ || allowance() == 0) return;
    reading_ = true;
    if (setup_.bulk) {
      const std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(rbuf_.size(), allowance()));
      ws_.async_read_some(net::buffer(rbuf_.data(), want),
                          [self = shared_from_this()](const boost::system::error_code& ec,
                                                      std::size_t n) { self->on_read(ec, n); });
    } else {
      ws_.async_read(fbuf_, [self = shared_from_this()](const boost::system::error_code& ec,
                                                        std::size_t n) { self->on_read(ec, n); });
    }
  }

  void on_read(const boost::system::error_code& ec, std::size_t n) {
    reading_ = false;
    if (closed_) return;
    if (ec) return fail(ec, "read");
    took(n);
    if (setup_.bulk) {
      deliver(rbuf_.data(), n);
    } else {
      const auto b = fbuf_.cdata();
      deliver(static_cast<const std::uint8_t*>(b.data()), b.size());
      fbuf_.consume(fbuf_.size());
    }
    if (closed_ || ended()) return;
    do_read();
  }

  void send_close() {
    if (close_sent_ || closed_) return;
    close_sent_ = true;
    ws_.async_close(websocket::close_code::normal,
                    [self = shared_from_this()](const boost::system::error_code& ec) {
                      if (self->closed_) return;
                      if (ec) return self->fail(ec, "close");
                      self->done(EndKind::eof, "closed");
                    });
  }

  void fail(const boost::system::error_code& ec, const char* what) {
    if (closed_) return;
    if (ec == websocket::error::closed) return done(EndKind::eof, "closed by the relay");
    closed_ = true;
    boost::system::error_code ignored;
    ws_.next_layer().close(ignored);
    live_.release();
    if (!silent_) end(kind_of(ec), std::string(what) + ": " + ec.message());
  }

  void done(EndKind k, const std::string& what) {
    closed_ = true;
    boost::system::error_code ignored;
    ws_.next_layer().close(ignored);
    live_.release();
    if (!silent_) end(k, what);
  }

  ClientSetup& setup_;
  websocket::stream<tcp::socket> ws_;
  websocket::response_type res_;
  std::vector<std::uint8_t> rbuf_;
  beast::flat_buffer fbuf_;
  LiveToken live_;
  bool open_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool close_sent_ = false;
  bool closed_ = false;
  bool silent_ = false;
};

// ---- mana ------------------------------------------------------------------------------------

class ManaConn;

class ManaChannel final : public Stream, public std::enable_shared_from_this<ManaChannel> {
 public:
  ManaChannel(std::shared_ptr<ManaConn> conn, StreamHandler& h, std::size_t index)
      : Stream(h, index), conn_(std::move(conn)) {}

  void start() override;
  std::size_t write(ByteView data) override;
  void finish() override;
  void close_now() override;
  void force_drop() override;
  [[nodiscard]] std::optional<double> resume_accepted_us() const override;
  [[nodiscard]] std::optional<double> resume_first_byte_us() const override;

  // From the session.
  void on_opened(core::ChannelId id) {
    id_ = id;
    open_ = true;
  }
  void on_data(core::Bytes&& data);
  void on_writable() {
    want_write_ = false;
    if (!silent_ && !ended()) handler().on_writable(*this);
  }
  void on_closed(EndKind k, const std::string& why) {
    closed_ = true;
    if (!silent_) end(k, why);
  }
  [[nodiscard]] core::ChannelId id() const noexcept { return id_; }
  [[nodiscard]] bool wants_write() const noexcept { return want_write_; }
  [[nodiscard]] bool closed() const noexcept { return closed_; }
  std::optional<Clock::time_point> first_byte_after_resume;

 private:
  void on_budget() override;
  void drain_held();

  std::shared_ptr<ManaConn> conn_;
  core::ChannelId id_ = 0;
  bool open_ = false;
  bool closed_ = false;
  bool silent_ = false;
  bool want_write_ = false;
  std::deque<core::Bytes> held_;  // delivered by the session, not yet read (read budget)
  std::size_t held_off_ = 0;
};

// One WebSocket of a ManaConn; a resume makes a new one (generation `gen`).
using ManaLink = host::ClientLink<tcp::socket>;

core::ClientConfig make_core_config(const ClientSetup& s) {
  core::ClientConfig c;
  c.profile = s.profile;
  c.auth = core::Auth{};
  if (!s.token.empty()) {
    c.auth->scheme = core::Auth::Scheme::bearer;
    c.auth->token = s.token;
  }
  c.window.initial = s.window;
  c.window.max = s.window;
  c.replay_capacity = static_cast<std::size_t>(s.replay);
  return c;
}

class ManaConn final : public std::enable_shared_from_this<ManaConn>, public host::LinkSink {
 public:
  ManaConn(net::io_context& io, ClientSetup& setup)
      : io_(io),
        setup_(setup),
        core_(make_core_config(setup), mono_now()),
        timer_(io, host::SessionTimer::Rearm::exact) {}

  void add(const std::shared_ptr<ManaChannel>& ch) { members_.push_back(ch); }
  [[nodiscard]] std::size_t size() const noexcept { return members_.size(); }
  core::ClientSession& core() noexcept { return core_; }

  void start() {
    if (started_) return;
    started_ = true;
    connect();
  }

  // ---- from the link (host::LinkSink) ---------------------------------------------------
  void on_link_open(std::uint64_t gen) override {
    if (gen != gen_) return;
    link_open_ = true;
    // The failure text is copied out before fail_all: g++-12 at -O3 reports a false
    // -Wdangling-pointer on the Result's destructor when fail_all runs in its scope.
    std::optional<std::string> failed;
    if (auto r = core_.transport_open(mono_now()); !r) failed = r.error().detail;
    if (failed) return fail_all("cannot start the session: " + *failed);
    pump();
    // Writers that stopped while there was no transport (a resume) may continue.
    on_link_drained(gen);
  }
  void on_link_message(std::uint64_t gen, core::MessageType type, core::ByteView data) override {
    if (gen != gen_) return;
    core_.receive(type, data, mono_now());
    pump();
  }
  void on_link_closed(std::uint64_t gen, std::optional<std::uint16_t> code,
                      const std::string& reason, const std::string& what) override {
    if (gen != gen_) return;
    const bool was_open = link_open_;
    link_open_ = false;
    link_.reset();
    if (closing_) return;
    if (!was_open) return fail_all(what);
    if (code) {
      core_.receive_close(*code, reason, mono_now());
    } else {
      core_.transport_lost(mono_now());
    }
    pump();
  }
  void on_link_drained(std::uint64_t gen) override {
    if (gen != gen_ || !link_) return;
    if (link_->queued() < mana_low_water) {
      for (auto& w : members_)
        if (auto ch = w.lock(); ch && ch->wants_write()) ch->on_writable();
    }
  }

  // ---- from the channels -----------------------------------------------------------------
  [[nodiscard]] bool transport_full() const noexcept {
    return !link_ || !link_open_ || link_->queued() > mana_high_water;
  }
  void pump() {
    const bool outermost = pump_.run([this] {
      while (auto m = core_.poll_output())
        if (link_ && link_open_) link_->send(std::move(*m));
      while (auto e = core_.poll_event())
        handle(*e);
      return core_.has_output() || core_.has_event();
    });
    if (!outermost) return;
    arm_timer();
    maybe_close_session();
  }

  // Drops the TCP connection (reset) and resumes on a new one.
  void force_drop() {
    if (!link_) return;
    dropped_at = Clock::now();
    resumed_at.reset();
    for (auto& w : members_)
      if (auto ch = w.lock()) ch->first_byte_after_resume.reset();
    link_->abort(host::Drop::reset);
    link_.reset();
    link_open_ = false;
    ++gen_;
    core_.transport_lost(mono_now());
    pump();
  }

  // Teardown: a normal close for the whole session.
  void close_session() {
    if (closing_) return;
    closing_ = true;
    if (core_.state() != core::SessionState::closed)
      core_.close(core::CloseCode::normal, "done", mono_now());
    while (auto m = core_.poll_output())
      if (link_ && link_open_) link_->send(std::move(*m));
    while (core_.poll_event()) {
    }
    timer_.cancel();
    if (link_ && !link_open_) {
      link_->abort(host::Drop::reset);
      link_.reset();
    }
  }

  std::optional<Clock::time_point> dropped_at;
  std::optional<Clock::time_point> resumed_at;

 private:
  void connect() {
    ++gen_;
    link_ = std::make_shared<ManaLink>(*this, gen_, io_);
    auto live = std::make_shared<LiveToken>();
    live->acquire();
    link_->on_release([live] { live->release(); });
    host::LinkOptions o;
    o.host = setup_.url.host_header();
    o.path = setup_.url.path;
    o.origin = setup_.origin;
    o.user_agent = "mana-bench";
    o.handshake_timeout = std::chrono::seconds(30);
    o.write_buffer_bytes = setup_.bulk ? setup_.ws_write_buffer : 4096;
    o.max_message = max_ws_message;
    open_and_connect(link_->ws().next_layer(), setup_,
                     [link = link_, o = std::move(o)](const boost::system::error_code& ec) {
                       if (link->done()) return;
                       if (ec)
                         return link->fail("cannot connect to " + o.host + ": " + ec.message());
                       link->handshake(o);
                     });
  }

  void arm_timer() {
    if (closing_) return;
    timer_.arm(core_.next_timeout(), [w = weak_from_this()] {
      auto self = w.lock();
      if (!self || self->closing_) return;
      self->core_.handle_timeout(mono_now());
      self->pump();
    });
  }

  std::shared_ptr<ManaChannel> by_id(core::ChannelId id) {
    for (auto& w : members_)
      if (auto ch = w.lock(); ch && ch->id() == id) return ch;
    return nullptr;
  }

  void handle(core::Event& ev) {
    namespace e = core::event;
    if (auto* r = std::get_if<e::Ready>(&ev)) {
      if (r->resumed) {
        resumed_at = Clock::now();
        return;
      }
      open_channels();
    } else if (auto* o = std::get_if<e::ChannelOpened>(&ev)) {
      (void)o;  // the banner (first data) reports the stream open
    } else if (auto* f = std::get_if<e::ChannelOpenFailed>(&ev)) {
      if (auto ch = by_id(f->id))
        ch->on_closed(EndKind::error, "gateway refused the channel: " + f->code +
                                          (f->msg.empty() ? "" : " (" + f->msg + ")"));
    } else if (auto* d = std::get_if<e::ChannelData>(&ev)) {
      if (auto ch = by_id(d->id)) {
        if (dropped_at && !ch->first_byte_after_resume) ch->first_byte_after_resume = Clock::now();
        ch->on_data(std::move(d->data));
      }
    } else if (auto* wr = std::get_if<e::ChannelWritable>(&ev)) {
      if (auto ch = by_id(wr->id)) ch->on_writable();
    } else if (auto* c = std::get_if<e::ChannelClosed>(&ev)) {
      if (auto ch = by_id(c->id)) {
        const bool clean = core_.state() != core::SessionState::closed;
        ch->on_closed(
            clean ? EndKind::eof : EndKind::error,
            clean ? "channel closed (" + c->reason + ")" : "session closed: " + c->reason);
      }
    } else if (auto* cl = std::get_if<e::Closed>(&ev)) {
      if (cl->resumable) {
        if (!closing_) connect();
        return;
      }
      if (!closing_)
        fail_all("gateway closed the session: " + std::to_string(static_cast<unsigned>(cl->code)) +
                 " " + std::string(core::to_string(cl->code)) +
                 (cl->reason.empty() ? "" : " (" + cl->reason + ")"));
    }
  }

  void open_channels() {
    for (auto& w : members_) {
      auto ch = w.lock();
      if (!ch || ch->id() != 0 || ch->closed()) continue;
      core::OpenParams p;
      p.target = setup_.target;
      p.kind = "tcp";
      auto id = core_.open_channel(p, mono_now());
      if (!id) {
        ch->on_closed(EndKind::error, "cannot open the channel: " + id.error().detail);
        continue;
      }
      ch->on_opened(*id);
    }
  }

  void maybe_close_session() {
    if (closing_ || !ready_seen()) return;
    for (auto& w : members_)
      if (auto ch = w.lock(); ch && !ch->closed()) return;
    close_session();
  }
  [[nodiscard]] bool ready_seen() const noexcept {
    return core_.state() == core::SessionState::ready;
  }

  void fail_all(const std::string& why) {
    if (closing_) return;
    closing_ = true;
    timer_.cancel();
    if (link_) {
      link_->abort(host::Drop::reset);
      link_.reset();
    }
    for (auto& w : members_)
      if (auto ch = w.lock(); ch && !ch->closed()) ch->on_closed(EndKind::error, why);
  }

  net::io_context& io_;
  ClientSetup& setup_;
  core::ClientSession core_;
  host::SessionTimer timer_;
  std::shared_ptr<ManaLink> link_;
  std::uint64_t gen_ = 0;
  std::vector<std::weak_ptr<ManaChannel>> members_;
  bool started_ = false;
  bool link_open_ = false;
  host::Pump pump_;
  bool closing_ = false;
};

void ManaChannel::start() {
  conn_->start();
}

std::size_t ManaChannel::write(ByteView data) {
  if (!open_ || closed_ || !opened() || data.empty()) return 0;
  if (conn_->transport_full()) {
    want_write_ = true;
    return 0;
  }
  auto r = conn_->core().write(id_, core::Stream::out, data, mono_now());
  if (!r) return 0;
  if (*r < data.size()) want_write_ = true;
  conn_->pump();
  return *r;
}

void ManaChannel::finish() {
  if (!open_ || closed_) return;
  (void)conn_->core().close_channel(id_, "eof", mono_now());
  conn_->pump();
}

void ManaChannel::close_now() {
  silent_ = true;
  if (closed_) return;
  closed_ = true;
  if (open_ && conn_->core().has_channel(id_)) {
    (void)conn_->core().close_channel(id_, "done", mono_now());
  }
  conn_->pump();
  conn_->close_session();
}

void ManaChannel::force_drop() {
  conn_->force_drop();
}

std::optional<double> ManaChannel::resume_accepted_us() const {
  if (!conn_->dropped_at || !conn_->resumed_at) return std::nullopt;
  return micros_between(*conn_->dropped_at, *conn_->resumed_at);
}

std::optional<double> ManaChannel::resume_first_byte_us() const {
  if (!conn_->dropped_at || !first_byte_after_resume) return std::nullopt;
  return micros_between(*conn_->dropped_at, *first_byte_after_resume);
}

void ManaChannel::on_data(core::Bytes&& data) {
  if (closed_) return;
  if (held_.empty() && allowance() >= data.size()) {
    took(data.size());
    const std::size_t n = data.size();
    deliver(data.data(), n);
    if (!closed_ && conn_->core().has_channel(id_)) (void)conn_->core().consume(id_, n, mono_now());
    return;
  }
  held_.push_back(std::move(data));
  drain_held();
}

void ManaChannel::on_budget() {
  drain_held();
  conn_->pump();
}

void ManaChannel::drain_held() {
  while (!held_.empty() && allowance() > 0 && !closed_) {
    core::Bytes& front = held_.front();
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(front.size() - held_off_, allowance()));
    took(n);
    deliver(front.data() + held_off_, n);
    if (conn_->core().has_channel(id_)) (void)conn_->core().consume(id_, n, mono_now());
    held_off_ += n;
    if (held_off_ == front.size()) {
      held_.pop_front();
      held_off_ = 0;
    }
  }
}

}  // namespace

const char* to_string(EndKind k) noexcept {
  switch (k) {
    case EndKind::eof:
      return "eof";
    case EndKind::reset:
      return "reset";
    case EndKind::error:
      return "error";
  }
  return "error";
}

void Stream::deliver(const std::uint8_t* p, std::size_t n) {
  if (ended_) return;
  if (banner_seen_ < banner_line.size()) {
    const std::size_t take = std::min(n, banner_line.size() - banner_seen_);
    if (!std::equal(p, p + take,
                    reinterpret_cast<const std::uint8_t*>(banner_line.data()) + banner_seen_)) {
      close_now();
      end(EndKind::error, "stream did not start with the target's banner line");
      return;
    }
    banner_seen_ += take;
    p += take;
    n -= take;
    if (banner_seen_ < banner_line.size()) return;
    opened_ = true;
    handler_.on_open(*this);
    if (ended_) return;
  }
  if (n > 0) handler_.on_data(*this, ByteView(p, n));
}

void Stream::end(EndKind k, const std::string& what) {
  if (ended_) return;
  ended_ = true;
  handler_.on_end(*this, k, what);
}

Connector::Connector(net::io_context& io, ClientSetup& setup) : io_(io), setup_(setup) {
  if (setup_.proto == Proto::tcp) shared_read_.resize(setup_.bulk ? (1 << 20) : (64 * 1024));
}

Connector::~Connector() = default;

std::size_t Connector::live_transports() noexcept {
  return g_live_transports;
}

std::shared_ptr<Stream> Connector::make(StreamHandler& h, std::size_t index) {
  switch (setup_.proto) {
    case Proto::tcp:
      return std::make_shared<TcpStream>(io_, setup_, shared_read_, h, index);
    case Proto::raw:
      return std::make_shared<WsStream>(io_, setup_, h, index);
    case Proto::mana:
      break;
  }
  if (!conn_ || fill_ >= setup_.channels_per_conn) {
    conn_ = std::make_shared<ManaConn>(io_, setup_);
    fill_ = 0;
  }
  auto conn = std::static_pointer_cast<ManaConn>(conn_);
  auto ch = std::make_shared<ManaChannel>(conn, h, index);
  conn->add(ch);
  ++fill_;
  return ch;
}

}  // namespace mana::bench
