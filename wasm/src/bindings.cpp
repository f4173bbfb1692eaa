// The whole binding surface of the wasm build: one embind class, `ClientSession`,
// over mana::core::ClientSession (the client side of the sans-I/O core).
//
// Contract with js-glue (js-glue/src/internal/core-types.ts declares the raw surface by hand and
// js-glue/src/internal/core-session.ts wraps it; keep all three in step):
//   * Time goes in as performance.now() milliseconds (double); the core gets
//     nanoseconds. Deadlines come back in the same milliseconds.
//   * The per-chunk path carries numbers only, no embind objects or strings:
//       - bytes in: inputBuffer(n) returns the heap address of an n-byte scratch buffer, JS copies
//         the message there with one HEAPU8.set, then receive(text, n, now) / write(id, n, now)
//         read it;
//       - pollOutput() / pollEvent() return a small integer kind (OutputKind / EventKind below)
//         and write the fields of that output or event into a Float64 scratch at fields()
//         (constant for the instance's lifetime); a payload is given as heap address + length
//         and stays valid until the next pollOutput() / pollEvent() (JS copies it out at once
//         with one HEAPU8.slice);
//       - rare events (state, ready, open/close, errors, policy, diagnostics) come out as
//         EventKind::other, and eventDetail() then returns them as a plain object.
//   * Fallible calls return a number / undefined on success or
//     { error, origin, detail, closeCode } on failure; nothing throws (the core
//     is built without exceptions).
//   * Every instance must be released with delete(); liveSessions() counts the
//     instances alive so tests can assert that nothing leaked.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "js_bytes.hpp"
#include "mana/core/client_session.hpp"

namespace {

using emscripten::val;
namespace core = mana::core;

int live_sessions = 0;

core::Timestamp to_ts(double ms) {
  if (!(ms > 0)) return core::Timestamp{0};
  return core::Timestamp{static_cast<std::uint64_t>(ms * 1e6)};
}

double to_ms(core::Timestamp t) {
  return static_cast<double>(t.ns) / 1e6;
}

val error_to_js(const core::Error& e) {
  val o = val::object();
  o.set("error", std::string(core::to_string(e.code)));
  o.set("origin", std::string(core::to_string(e.origin)));
  o.set("detail", e.detail);
  o.set("closeCode", static_cast<int>(core::to_close_code(e.code)));
  return o;
}

val string_or_null(const std::optional<std::string>& s) {
  return s ? val(*s) : val::null();
}

std::uint64_t get_u64(const val& cfg, const char* key, std::uint64_t fallback) {
  const val v = cfg[key];
  if (v.isUndefined() || v.isNull()) return fallback;
  const double d = v.as<double>();
  return d > 0 ? static_cast<std::uint64_t>(d) : fallback;
}

// Builds the core configuration from a plain JS object; absent keys keep the
// core's defaults. Keys: profile, bearer, windowInitial, windowMax,
// replayCapacity, heartbeatMs, heartbeatMisses, handshakeTimeoutMs, resume,
// maxFrame.
core::ClientConfig config_from_js(const val& cfg) {
  core::ClientConfig c;
  if (cfg.isUndefined() || cfg.isNull()) return c;
  if (const val p = cfg["profile"]; p.isString()) c.profile = p.as<std::string>();
  if (const val b = cfg["bearer"]; b.isString()) {
    c.auth = core::Auth{core::Auth::Scheme::bearer, b.as<std::string>()};
  }
  c.window.initial = get_u64(cfg, "windowInitial", c.window.initial);
  c.window.max = get_u64(cfg, "windowMax", c.window.max);
  if (c.window.max < c.window.initial) c.window.max = c.window.initial;
  c.replay_capacity = get_u64(cfg, "replayCapacity", c.replay_capacity);
  c.heartbeat = core::Duration::from_ms(
      static_cast<std::int64_t>(get_u64(cfg, "heartbeatMs", c.heartbeat.ms())));
  c.heartbeat_misses =
      static_cast<std::uint32_t>(get_u64(cfg, "heartbeatMisses", c.heartbeat_misses));
  c.handshake_timeout = core::Duration::from_ms(
      static_cast<std::int64_t>(get_u64(cfg, "handshakeTimeoutMs", c.handshake_timeout.ms())));
  if (const val r = cfg["resume"]; !r.isUndefined()) c.resume = r.as<bool>();
  c.limits.frame.max_frame = get_u64(cfg, "maxFrame", c.limits.frame.max_frame);
  return c;
}

// What pollOutput() returns; fields(): [0] payload address, [1] payload length, [2] close code.
enum class OutputKind : int { none = 0, text = 1, binary = 2, close = 3 };

// What pollEvent() returns. fields() holds for `data`: [0] channel, [1] stream (0 stdout,
// 1 stderr), [2] payload address, [3] payload length; for `writable`: [0] channel,
// [1] available. `other`: eventDetail() gives the event as an object.
enum class EventKind : int { none = 0, data = 1, writable = 2, other = 3 };

// A rare event as a plain object with a `type` discriminator.
struct EventToJs {
  val operator()(const core::event::StateChanged& e) const {
    val o = typed("stateChanged");
    o.set("from", std::string(core::to_string(e.from)));
    o.set("to", std::string(core::to_string(e.to)));
    return o;
  }
  val operator()(const core::event::Ready& e) const {
    val o = typed("ready");
    o.set("resumed", e.resumed);
    o.set("server", e.hello_ok.server);
    o.set("route", e.hello_ok.route ? val(*e.hello_ok.route) : val::null());
    o.set("maxFrame", e.hello_ok.caps.max_frame);
    o.set("heartbeatMs", e.hello_ok.caps.heartbeat_ms);
    o.set("idleTimeoutMs", e.hello_ok.caps.idle_timeout_ms);
    o.set("maxChannels", e.hello_ok.caps.max_channels);
    o.set("window", static_cast<double>(e.hello_ok.caps.window));
    o.set("resumeTtlMs", e.hello_ok.caps.resume_ttl_ms
                             ? val(static_cast<double>(*e.hello_ok.caps.resume_ttl_ms))
                             : val::null());
    return o;
  }
  val operator()(const core::event::ChannelOpened& e) const {
    val o = typed("channelOpened");
    o.set("id", e.id);
    return o;
  }
  val operator()(const core::event::ChannelOpenFailed& e) const {
    val o = typed("channelOpenFailed");
    o.set("id", e.id);
    o.set("code", e.code);
    o.set("message", e.msg);
    return o;
  }
  // Data and credit go through fields(), never as objects.
  val operator()(const core::event::ChannelData& /*e*/) const { return typed("unexpected"); }
  val operator()(const core::event::ChannelWritable& /*e*/) const { return typed("unexpected"); }
  val operator()(const core::event::ChannelResized& e) const {
    val o = typed("channelResized");
    o.set("id", e.id);
    o.set("cols", e.cols);
    o.set("rows", e.rows);
    return o;
  }
  val operator()(const core::event::ChannelSignal& e) const {
    val o = typed("channelSignal");
    o.set("id", e.id);
    o.set("signal", e.sig);
    return o;
  }
  val operator()(const core::event::ChannelExit& e) const {
    val o = typed("channelExit");
    o.set("id", e.id);
    o.set("code", e.code ? val(*e.code) : val::null());
    o.set("signal", string_or_null(e.sig));
    return o;
  }
  val operator()(const core::event::ChannelClosed& e) const {
    val o = typed("channelClosed");
    o.set("id", e.id);
    o.set("reason", e.reason);
    o.set("origin", std::string(core::to_string(e.origin)));
    return o;
  }
  val operator()(const core::event::Policy& e) const {
    val o = typed("policy");
    o.set("kind", std::string(core::to_string(e.kind)));
    o.set("id", e.id);
    o.set("reasons", e.reasons);
    o.set("amount", static_cast<double>(e.amount));
    o.set("detail", e.detail);
    return o;
  }
  val operator()(const core::event::Diagnostic& e) const {
    val o = typed("diagnostic");
    o.set("code", std::string(core::to_string(e.code)));
    o.set("at", to_ms(e.at));
    o.set("phase", std::string(core::to_string(e.phase)));
    o.set("detail", e.detail);
    return o;
  }
  val operator()(const core::event::Closed& e) const {
    val o = typed("closed");
    o.set("code", static_cast<int>(e.code));
    o.set("codeName", std::string(core::to_string(e.code)));
    o.set("origin", std::string(core::to_string(e.origin)));
    o.set("error", std::string(core::to_string(e.error)));
    o.set("reason", e.reason);
    o.set("resumable", e.resumable);
    return o;
  }
  // Server-side events never reach a client session.
  val operator()(const core::event::HelloReceived& /*e*/) const { return typed("unexpected"); }
  val operator()(const core::event::ResumeRequested& /*e*/) const { return typed("unexpected"); }
  val operator()(const core::event::OpenRequested& /*e*/) const { return typed("unexpected"); }

  static val typed(const char* type) {
    val o = val::object();
    o.set("type", std::string(type));
    return o;
  }
};

class WasmClientSession {
 public:
  WasmClientSession(const val& config, double now_ms)
      : session_(config_from_js(config), to_ts(now_ms)) {
    ++live_sessions;
  }
  WasmClientSession(const WasmClientSession&) = delete;
  WasmClientSession& operator=(const WasmClientSession&) = delete;
  WasmClientSession(WasmClientSession&&) = delete;
  WasmClientSession& operator=(WasmClientSession&&) = delete;
  ~WasmClientSession() { --live_sessions; }

  std::string state() const { return std::string(core::to_string(session_.state())); }

  val transport_open(double now) { return void_result(session_.transport_open(to_ts(now))); }

  // Heap address of an n-byte input buffer for the next receive() / write().
  double input_buffer(double n) { return mana::wasm::input_buffer(scratch_in_, n); }

  // Heap address of the Float64 fields of the last pollOutput() / pollEvent().
  double fields() const { return mana::wasm::heap_address(fields_.data()); }

  void receive(bool text, double n, double now) {
    session_.receive(text ? core::MessageType::text : core::MessageType::binary, input(n),
                     to_ts(now));
  }

  void receive_close(int code, const std::string& reason, double now) {
    session_.receive_close(static_cast<std::uint16_t>(code), reason, to_ts(now));
  }

  void transport_lost(double now) { session_.transport_lost(to_ts(now)); }

  val next_timeout() const {
    const auto t = session_.next_timeout();
    return t ? val(to_ms(*t)) : val::null();
  }

  void handle_timeout(double now) { session_.handle_timeout(to_ts(now)); }

  int poll_output() {
    output_ = session_.poll_output();
    if (!output_) return static_cast<int>(OutputKind::none);
    fields_[0] = mana::wasm::heap_address(output_->data.data());
    fields_[1] = static_cast<double>(output_->data.size());
    fields_[2] = static_cast<double>(output_->close_code);
    switch (output_->type) {
      case core::MessageType::text:
        return static_cast<int>(OutputKind::text);
      case core::MessageType::binary:
        return static_cast<int>(OutputKind::binary);
      case core::MessageType::close:
        return static_cast<int>(OutputKind::close);
    }
    return static_cast<int>(OutputKind::none);
  }

  // The reason of the last pollOutput() when it was OutputKind::close.
  std::string output_close_reason() const {
    return output_ ? output_->close_reason : std::string();
  }

  double output_bytes() const { return static_cast<double>(session_.output_bytes()); }

  int poll_event() {
    event_ = session_.poll_event();
    if (!event_) return static_cast<int>(EventKind::none);
    if (const auto* d = std::get_if<core::event::ChannelData>(&*event_)) {
      fields_[0] = d->id;
      fields_[1] = d->stream == core::Stream::err ? 1 : 0;
      fields_[2] = mana::wasm::heap_address(d->data.data());
      fields_[3] = static_cast<double>(d->data.size());
      return static_cast<int>(EventKind::data);
    }
    if (const auto* w = std::get_if<core::event::ChannelWritable>(&*event_)) {
      fields_[0] = w->id;
      fields_[1] = static_cast<double>(w->available);
      return static_cast<int>(EventKind::writable);
    }
    return static_cast<int>(EventKind::other);
  }

  // The last pollEvent() as an object when it was EventKind::other, else null.
  val event_detail() const {
    if (!event_ || std::holds_alternative<core::event::ChannelData>(*event_) ||
        std::holds_alternative<core::event::ChannelWritable>(*event_)) {
      return val::null();
    }
    return std::visit(EventToJs{}, *event_);
  }

  val open_channel(const std::string& host, int port, const std::string& kind, double now) {
    if (port <= 0 || port > 65535) {
      return error_to_js(core::make_error(core::Errc::invalid_argument, core::Origin::local,
                                          "port must be 1..65535"));
    }
    core::OpenParams p;
    p.target = core::Target{host, static_cast<std::uint16_t>(port)};
    p.kind = kind;
    auto r = session_.open_channel(p, to_ts(now));
    if (!r) return error_to_js(r.error());
    return val(*r);
  }

  val write(std::uint32_t id, double n, double now) {
    auto r = session_.write(id, core::Stream::out, input(n), to_ts(now));
    if (!r) return error_to_js(r.error());
    return val(static_cast<double>(*r));
  }

  double available(std::uint32_t id) const { return static_cast<double>(session_.available(id)); }

  val consume(std::uint32_t id, double n, double now) {
    if (!(n >= 0)) {
      return error_to_js(core::make_error(core::Errc::invalid_argument, core::Origin::local,
                                          "consume count must be >= 0"));
    }
    return void_result(session_.consume(id, static_cast<std::uint64_t>(n), to_ts(now)));
  }

  val close_channel(std::uint32_t id, const std::string& reason, double now) {
    return void_result(session_.close_channel(id, reason, to_ts(now)));
  }

  val resize(std::uint32_t id, int cols, int rows, double now) {
    if (cols <= 0 || rows <= 0 || cols > 10000 || rows > 10000) {
      return error_to_js(core::make_error(core::Errc::invalid_argument, core::Origin::local,
                                          "cols/rows out of range"));
    }
    return void_result(session_.resize(id, static_cast<std::uint16_t>(cols),
                                       static_cast<std::uint16_t>(rows), to_ts(now)));
  }

  void set_paused(int reason, bool on, double now) {
    session_.set_paused(static_cast<core::PauseReason>(reason), on, to_ts(now));
  }

  int pause_bits() const { return session_.pause_bits(); }

  void close(int code, const std::string& reason, double now) {
    session_.close(static_cast<core::CloseCode>(code), reason, to_ts(now));
  }

  val resume_token() const { return string_or_null(session_.resume_token()); }

  val adopt_resume_token(const std::string& token) {
    return void_result(session_.adopt_resume_token(token));
  }

  val rtt() const {
    const auto r = session_.rtt();
    return r ? val(static_cast<double>(r->ns) / 1e6) : val::null();
  }

  int channel_count() const { return static_cast<int>(session_.channel_count()); }

  val channel_stats(std::uint32_t id) const {
    const auto s = session_.channel_stats(id);
    if (!s) return val::null();
    val o = val::object();
    o.set("sent", static_cast<double>(s->sent));
    o.set("sendLimit", static_cast<double>(s->send_limit));
    o.set("acked", static_cast<double>(s->acked));
    o.set("received", static_cast<double>(s->received));
    o.set("consumed", static_cast<double>(s->consumed));
    o.set("recvLimit", static_cast<double>(s->recv_limit));
    o.set("window", static_cast<double>(s->window));
    o.set("replayBytes", static_cast<double>(session_.replay_bytes(id)));
    return o;
  }

 private:
  static val void_result(const core::Result<void>& r) {
    return r ? val::undefined() : error_to_js(r.error());
  }

  // The first n bytes of the input buffer (at most its size).
  core::ByteView input(double n) const {
    return core::ByteView{scratch_in_.data(), mana::wasm::clamp_size(n, scratch_in_.size())};
  }

  core::ClientSession session_;
  std::vector<std::uint8_t> scratch_in_;    // receive() / write() input, reused
  std::optional<core::OutMessage> output_;  // the last pollOutput(), owns its payload
  std::optional<core::Event> event_;        // the last pollEvent(), owns its payload
  std::array<double, 4> fields_{};          // see OutputKind / EventKind
};

int live_session_count() {
  return live_sessions;
}

std::string close_code_name(int code) {
  return std::string(core::to_string(static_cast<core::CloseCode>(code)));
}

bool close_code_resumable(int code) {
  return core::is_resumable(static_cast<core::CloseCode>(code));
}

}  // namespace

EMSCRIPTEN_BINDINGS(mana_core) {
  emscripten::class_<WasmClientSession>("ClientSession")
      .constructor<const val&, double>()
      .function("state", &WasmClientSession::state)
      .function("transportOpen", &WasmClientSession::transport_open)
      .function("inputBuffer", &WasmClientSession::input_buffer)
      .function("fields", &WasmClientSession::fields)
      .function("receive", &WasmClientSession::receive)
      .function("receiveClose", &WasmClientSession::receive_close)
      .function("transportLost", &WasmClientSession::transport_lost)
      .function("nextTimeout", &WasmClientSession::next_timeout)
      .function("handleTimeout", &WasmClientSession::handle_timeout)
      .function("pollOutput", &WasmClientSession::poll_output)
      .function("outputCloseReason", &WasmClientSession::output_close_reason)
      .function("outputBytes", &WasmClientSession::output_bytes)
      .function("pollEvent", &WasmClientSession::poll_event)
      .function("eventDetail", &WasmClientSession::event_detail)
      .function("openChannel", &WasmClientSession::open_channel)
      .function("write", &WasmClientSession::write)
      .function("available", &WasmClientSession::available)
      .function("consume", &WasmClientSession::consume)
      .function("closeChannel", &WasmClientSession::close_channel)
      .function("resize", &WasmClientSession::resize)
      .function("setPaused", &WasmClientSession::set_paused)
      .function("pauseBits", &WasmClientSession::pause_bits)
      .function("close", &WasmClientSession::close)
      .function("resumeToken", &WasmClientSession::resume_token)
      .function("adoptResumeToken", &WasmClientSession::adopt_resume_token)
      .function("rtt", &WasmClientSession::rtt)
      .function("channelCount", &WasmClientSession::channel_count)
      .function("channelStats", &WasmClientSession::channel_stats);
  emscripten::function("liveSessions", &live_session_count);
  emscripten::function("closeCodeName", &close_code_name);
  emscripten::function("closeCodeResumable", &close_code_resumable);
}
