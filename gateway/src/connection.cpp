#include "connection.hpp"

#include <algorithm>
#include <chrono>

#include <boost/asio/buffer.hpp>
#include <boost/beast/websocket/error.hpp>

#include "log.hpp"
#include "session_registry.hpp"
#include "session.hpp"

namespace mana::gateway {

namespace websocket = boost::beast::websocket;

namespace {

// After the upgrade Beast's handshake timeout only bounds the close handshake: once our close
// frame is written, Beast reads (and discards) what the peer sends for at most `wait` while it
// waits for the peer's close frame, then closes the socket.
template <class Ws>
void set_close_wait(Ws& ws, std::chrono::milliseconds wait) {
  websocket::stream_base::timeout t{};
  t.handshake_timeout = wait;
  t.idle_timeout = websocket::stream_base::none();  // heartbeats are the core's job
  t.keep_alive_pings = false;
  ws.set_option(t);
}

}  // namespace

Connection::Connection(Context& ctx, WsStream&& ws, std::string client_ip, std::string origin)
    : ctx_(ctx),
      ws_(std::move(ws)),
      id_(ctx.next_id++),
      ip_(std::move(client_ip)),
      origin_(std::move(origin)),
      linger_(ctx.io) {}

Connection::~Connection() = default;

void Connection::start() {
  // A peer detached as dead (4012) never replies to our close frame; without this bound its
  // socket lingered for handshake_timeout_ms.
  ws_.visit([this](auto& ws) {
    ws.read_message_max(ctx_.cfg.max_frame);
    ws.auto_fragment(false);
    set_close_wait(ws, close_wait(close_handshake_ms));
    // RFC 6455 pings and pongs never reach on_read (Beast answers a ping itself) but cost work
    // all the same: they take from the session's free-message budget. The stream, and with it
    // this callback, lives inside this Connection.
    ws.control_callback([this](websocket::frame_type kind, std::string_view) {
      if (kind == websocket::frame_type::close) return;
      if (auto s = session_) s->on_transport_control();
    });
  });
  do_read();
}

std::chrono::milliseconds Connection::close_wait(std::uint32_t ms) const {
  return std::chrono::milliseconds(std::min(ctx_.cfg.handshake_timeout_ms, ms));
}

void Connection::set_session(std::shared_ptr<Session> s) {
  session_ = std::move(s);
}

void Connection::do_read() {
  if (read_done_ || finished_) return;
  // Frame by frame with async_read_some rather than async_read(dynamic buffer): Beast 1.81's
  // read-size hint for dynamic buffers asserts (rd_remain > 0) when a control frame arrives
  // between the fragments of a message, which a client can send on purpose. Idle, a
  // connection holds a small buffer; inside a message it reads up to read_step_bytes at a time
  // (read_message_max still bounds the message).
  const std::size_t step = message_started_ ? read_step_bytes : first_read_bytes;
  ws_.visit([this, step](auto& ws) {
    ws.async_read_some(rbuf_.prepare(step),
                       [self = shared_from_this()](const boost::system::error_code& ec,
                                                   std::size_t n) { self->on_read_some(ec, n); });
  });
}

void Connection::on_read_some(const boost::system::error_code& ec, std::size_t n) {
  rbuf_.commit(n);
  if (!ec && !ws_.visit([](auto& ws) { return ws.is_message_done(); })) {
    message_started_ = true;
    do_read();
    return;
  }
  message_started_ = false;
  on_read(ec, rbuf_.size());
}

void Connection::on_read(const boost::system::error_code& ec, std::size_t n) {
  auto s = session_;  // keep alive: a resume may rebind session_ during the call
  try {
    if (ec) {
      read_done_ = true;
      session_.reset();
      if (s) {
        if (ec == websocket::error::closed) {
          const websocket::close_reason r =
              ws_.visit([](auto& ws) -> websocket::close_reason { return ws.reason(); });
          s->on_close_frame(static_cast<std::uint16_t>(r.code),
                            std::string(r.reason.data(), r.reason.size()));
        } else if (ec == websocket::error::message_too_big) {
          s->on_close_frame(1009, "message too big");
        } else {
          s->on_transport_lost();
        }
      }
      if (!writing_) finish();
      return;
    }
    ctx_.metrics.frames_in++;
    ctx_.metrics.ws_bytes_in += n;
    if (s) {
      const auto data = rbuf_.cdata();
      const core::ByteView view(static_cast<const std::uint8_t*>(data.data()), data.size());
      const bool text = ws_.visit([](auto& ws) { return ws.got_text(); });
      s->on_message(text ? core::MessageType::text : core::MessageType::binary, view);
    }
    rbuf_.consume(rbuf_.size());
    // A small message ends a burst: give back what a larger one grew the buffer to (a message just
    // over first_read_bytes, e.g. an SSH key exchange, grows it by read_step_bytes). Between large
    // messages it is kept, so a bulk upload does not regrow it for each one; the next small
    // message (at the latest a pong within a heartbeat interval) shrinks it.
    if (n <= first_read_bytes && rbuf_.capacity() > first_read_bytes) rbuf_.shrink_to_fit();
  } catch (const std::exception& ex) {
    log_event(LogLevel::error, "internal", {{"conn", id_}, {"what", ex.what()}});
    read_done_ = true;
    finish();
    return;
  }
  do_read();
}

void Connection::send(core::OutMessage&& m) {
  if (close_queued_ || finished_) return;
  if (m.type == core::MessageType::close) close_queued_ = true;
  // Full wire size: the socket queue bound and the transport pause are about bytes the peer has
  // not read yet, wherever they are stored. Session::buffered_bytes() uses owned_bytes_ so that
  // payload shared with the replay buffer is not counted twice.
  queued_bytes_ += m.size();
  owned_bytes_ += m.owned_size();
  queue_.push_back(std::move(m));
  if (queued_bytes_ > ctx_.cfg.outbound_max) {
    // A peer that never reads cannot make us hold more than this.
    auto s = session_;
    if (s) s->on_outbound_overflow();
    return;
  }
  update_pause();
  if (!writing_) do_write();
}

void Connection::update_pause() {
  if (!paused_ && queued_bytes_ > ctx_.cfg.outbound_high_water) {
    paused_ = true;
    ctx_.metrics.transport_pauses++;
    log_debug("flow_pause", {{"conn", id_}, {"reason", "transport"}, {"queued", queued_bytes_}});
    if (auto s = session_) s->set_transport_paused(true);
  } else if (paused_ && queued_bytes_ < ctx_.cfg.outbound_low_water) {
    paused_ = false;
    log_debug("flow_resume", {{"conn", id_}, {"reason", "transport"}, {"queued", queued_bytes_}});
    if (auto s = session_) s->set_transport_paused(false);
  }
}

void Connection::do_write() {
  if (queue_.empty() || finished_) {
    writing_ = false;
    if (finished_ || (read_done_ && !session_) || (!session_ && close_queued_)) finish();
    return;
  }
  writing_ = true;
  core::OutMessage& m = queue_.front();
  if (m.type == core::MessageType::close) {
    websocket::close_reason cr(static_cast<std::uint16_t>(m.close_code));
    cr.reason = m.close_reason.substr(0, 120);
    ctx_.metrics.frames_out++;
    // A client closed for policy (a flood, a rate limit) may go on sending: every byte Beast
    // drains while it waits for that client's close frame costs the gateway's time.
    const bool policy = m.close_code == core::CloseCode::policy_denied;
    ws_.visit([&cr, policy, this](auto& ws) {
      if (policy) set_close_wait(ws, close_wait(policy_close_ms));
      ws.async_close(cr, [self = shared_from_this()](const boost::system::error_code&) {
        self->writing_ = false;
        self->queue_.clear();
        self->queued_bytes_ = 0;
        self->owned_bytes_ = 0;
        self->finish();
      });
    });
    return;
  }
  wbufs_.clear();
  if (!m.data.empty() || m.parts.empty()) wbufs_.emplace_back(m.data.data(), m.data.size());
  for (const core::PayloadPart& p : m.parts)
    wbufs_.emplace_back(p.bytes.data(), p.bytes.size());
  const BufferSpan buffers{wbufs_.data(), wbufs_.data() + wbufs_.size()};
  ws_.visit([&m, buffers, this](auto& ws) {
    ws.text(m.type == core::MessageType::text);
    ws.async_write(buffers, [self = shared_from_this()](const boost::system::error_code& ec,
                                                        std::size_t) { self->on_written(ec); });
  });
}

void Connection::on_written(const boost::system::error_code& ec) {
  if (queue_.empty()) {
    writing_ = false;
    return;
  }
  const std::size_t sz = queue_.front().size();
  queued_bytes_ -= sz;
  owned_bytes_ -= queue_.front().owned_size();
  queue_.pop_front();
  ctx_.metrics.frames_out++;
  ctx_.metrics.ws_bytes_out += sz;
  if (ec) {
    writing_ = false;
    queue_.clear();
    queued_bytes_ = 0;
    owned_bytes_ = 0;
    auto s = session_;
    session_.reset();
    if (s) s->on_transport_lost();
    finish();
    return;
  }
  try {
    update_pause();
  } catch (const std::exception& ex) {
    log_event(LogLevel::error, "internal", {{"conn", id_}, {"what", ex.what()}});
  }
  do_write();
}

std::optional<WsStream> Connection::release_stream() {
  if (finished_ || writing_ || close_queued_ || read_done_ || !queue_.empty()) return std::nullopt;
  finished_ = true;  // no read is armed again (on_read checks), finish() does nothing
  read_done_ = true;
  session_.reset();
  linger_.cancel();
  // The control callback refers to this Connection.
  ws_.visit([](auto& ws) { ws.control_callback(); });
  std::optional<WsStream> out(std::move(ws_));
  ctx_.registry.connection_closed(ip_);
  return out;
}

void Connection::release_session() {
  session_.reset();
  if (!close_queued_ && !read_done_) {
    // Nothing to say (e.g. transport lost on our side): close the socket.
    finish();
    return;
  }
  start_linger();
  if (!writing_ && queue_.empty()) finish();
}

void Connection::supersede() {
  session_.reset();
  // Keep only the message being written (if any); the rest belongs to the old transport.
  while (queue_.size() > (writing_ ? 1U : 0U)) {
    queued_bytes_ -= queue_.back().size();
    owned_bytes_ -= queue_.back().owned_size();
    queue_.pop_back();
  }
  close_queued_ = false;
  core::OutMessage m;
  m.type = core::MessageType::close;
  m.close_code = core::CloseCode::resume_failed;
  m.close_reason = "superseded";
  send(std::move(m));
  start_linger();
}

void Connection::close_now(std::uint16_t code, const std::string& reason) {
  core::OutMessage m;
  m.type = core::MessageType::close;
  m.close_code = static_cast<core::CloseCode>(code);
  m.close_reason = reason;
  send(std::move(m));
  start_linger();
}

void Connection::start_linger() {
  // Bound the time a closing transport may keep its socket (a peer that never reads would
  // otherwise hold a write forever).
  linger_.expires_after(std::chrono::milliseconds(ctx_.cfg.handshake_timeout_ms));
  linger_.async_wait([w = weak_from_this()](const boost::system::error_code& ec) {
    if (ec) return;
    if (auto self = w.lock()) self->finish();
  });
}

void Connection::finish() {
  if (finished_) return;
  finished_ = true;
  linger_.cancel();
  boost::system::error_code ignored;
  ws_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  ws_.socket().close(ignored);
  if (auto s = session_) {
    session_.reset();
    s->on_transport_lost();
  }
  ctx_.registry.connection_closed(ip_);
  log_debug("conn_end", {{"conn", id_}});
}

}  // namespace mana::gateway
