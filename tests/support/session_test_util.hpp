// Header-only helpers for tests of the session state machines (ClientSession,
// ServerSession): small test configurations, draining output and events,
// pumping messages between a client and a server, crafting raw WebSocket
// messages (text JSON, mana.v1 data frames, lenpfx.v1 envelopes, json-base64.v1
// data objects) and literal timestamps.
//
// No test framework in here (the fuzz targets use it too): helpers report
// failures through their return values and the caller asserts.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "mana/core/client_session.hpp"
#include "mana/core/events.hpp"
#include "mana/core/messages.hpp"
#include "mana/core/server_session.hpp"
#include "mana/core/session_core.hpp"
#include "mana/core/types.hpp"
#include "mana/core/wire_profile.hpp"

namespace mana::test {

using core::Bytes;
using core::ByteView;
using core::ChannelId;
using core::ClientConfig;
using core::ClientSession;
using core::CloseCode;
using core::Event;
using core::MessageType;
using core::OutMessage;
using core::ServerConfig;
using core::ServerSession;
using core::SessionCore;
using core::SessionState;
using core::Stream;
using core::Timestamp;

// ---- time ---------------------------------------------------------------------

// A literal timestamp, in milliseconds since the test's epoch.
constexpr Timestamp at_ms(std::uint64_t ms) {
  return Timestamp::from_ms(ms);
}

// `t` moved by `ms` milliseconds (Timestamp has no operator- for durations).
constexpr Timestamp plus_ms(Timestamp t, std::int64_t ms) {
  return Timestamp{static_cast<std::uint64_t>(static_cast<std::int64_t>(t.ns) + ms * 1000000)};
}

// ---- configurations -------------------------------------------------------------

inline constexpr std::uint64_t test_window = 4096;       // initial credit window, both ways
inline constexpr std::uint64_t test_window_max = 16384;  // auto-tuning ceiling
inline constexpr std::size_t test_max_frame = 16384;     // largest accepted WebSocket message
inline constexpr std::size_t test_max_control = 4096;    // largest accepted control JSON
inline constexpr std::int64_t test_heartbeat_ms = 1000;
inline constexpr std::int64_t test_idle_ms = 10000;
inline constexpr std::int64_t test_handshake_ms = 500;
inline constexpr std::int64_t test_resume_ttl_ms = 5000;
inline constexpr std::uint32_t test_control_burst = 20;

// Valid resume tokens (16..256 chars of [A-Za-z0-9_-]).
inline constexpr std::string_view token_a = "tokenAAAAAAAAAAAAAAAAAAA";
inline constexpr std::string_view token_b = "tokenBBBBBBBBBBBBBBBBBBB";
inline constexpr std::string_view token_c = "tokenCCCCCCCCCCCCCCCCCCC";

inline core::SessionLimits test_limits() {
  core::SessionLimits l;
  l.frame.max_frame = test_max_frame;
  l.frame.max_control_json = test_max_control;
  l.parse.max_json = test_max_control;
  return l;
}

inline ServerConfig test_server_config() {
  ServerConfig c;
  c.server_name = "test-server";
  c.window = core::WindowConfig{test_window, test_window_max};
  c.replay_capacity = test_window_max;
  c.max_channels = 4;
  c.control_rate = 50;
  c.control_burst = test_control_burst;
  c.heartbeat = core::Duration::from_ms(test_heartbeat_ms);
  c.heartbeat_misses = 3;
  c.idle_timeout = core::Duration::from_ms(test_idle_ms);
  c.handshake_timeout = core::Duration::from_ms(test_handshake_ms);
  c.resume_ttl = core::Duration::from_ms(test_resume_ttl_ms);
  c.limits = test_limits();
  return c;
}

inline ClientConfig test_client_config(std::string_view profile = core::default_profile_id) {
  ClientConfig c;
  c.profile = std::string(profile);
  c.auth = core::Auth{core::Auth::Scheme::bearer, "secret"};
  c.window = core::WindowConfig{test_window, test_window_max};
  c.replay_capacity = test_window_max;
  c.heartbeat = core::Duration::from_ms(test_heartbeat_ms);
  c.heartbeat_misses = 3;
  c.handshake_timeout = core::Duration::from_ms(test_handshake_ms);
  c.resume = true;
  c.limits = test_limits();
  return c;
}

inline std::vector<std::string_view> builtin_profiles() {
  return {"mana.v1", "json-base64.v1", "lenpfx.v1"};
}

// ---- output and events ------------------------------------------------------------

// Every queued output message, in order.
inline std::vector<OutMessage> drain_output(SessionCore& s) {
  std::vector<OutMessage> out;
  while (auto m = s.poll_output())
    out.push_back(std::move(*m));
  return out;
}

inline std::vector<Event> drain_events(SessionCore& s) {
  std::vector<Event> out;
  while (auto e = s.poll_event())
    out.push_back(std::move(*e));
  return out;
}

template <class T>
std::vector<T> events_of(const std::vector<Event>& events) {
  std::vector<T> out;
  for (const Event& e : events)
    if (const T* p = std::get_if<T>(&e)) out.push_back(*p);
  return out;
}

template <class T>
std::optional<T> first_event(const std::vector<Event>& events) {
  for (const Event& e : events)
    if (const T* p = std::get_if<T>(&e)) return *p;
  return std::nullopt;
}

template <class T>
std::size_t count_events(const std::vector<Event>& events) {
  return static_cast<std::size_t>(std::count_if(
      events.begin(), events.end(), [](const Event& e) { return std::holds_alternative<T>(e); }));
}

// Index of the first event of type T, or events.size().
template <class T>
std::size_t index_of_event(const std::vector<Event>& events) {
  for (std::size_t i = 0; i < events.size(); ++i)
    if (std::holds_alternative<T>(events[i])) return i;
  return events.size();
}

inline std::vector<core::event::Policy> policy_events(const std::vector<Event>& events,
                                                      core::PolicyKind kind) {
  std::vector<core::event::Policy> out;
  for (const auto& p : events_of<core::event::Policy>(events))
    if (p.kind == kind) out.push_back(p);
  return out;
}

inline std::string as_text(const OutMessage& m) {
  return std::string(m.data.begin(), m.data.end());
}

inline bool is_close(const OutMessage& m) {
  return m.type == MessageType::close;
}

// The close message of `out`, if any.
inline std::optional<OutMessage> find_close(const std::vector<OutMessage>& out) {
  for (const OutMessage& m : out)
    if (is_close(m)) return m;
  return std::nullopt;
}

// Concatenated payloads of every ChannelData event of channel `id`.
inline std::string channel_text(const std::vector<Event>& events, ChannelId id) {
  std::string s;
  for (const auto& d : events_of<core::event::ChannelData>(events))
    if (d.id == id) s.append(d.data.begin(), d.data.end());
  return s;
}

inline std::uint64_t channel_bytes(const std::vector<Event>& events, ChannelId id) {
  return channel_text(events, id).size();
}

// ---- raw messages ----------------------------------------------------------------

inline Bytes bytes_of(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

inline ByteView view_of(std::string_view s) {
  return ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

inline void put_u32be(Bytes& b, std::uint32_t v) {
  b.push_back(static_cast<std::uint8_t>(v >> 24));
  b.push_back(static_cast<std::uint8_t>(v >> 16));
  b.push_back(static_cast<std::uint8_t>(v >> 8));
  b.push_back(static_cast<std::uint8_t>(v));
}

// mana.v1 binary data message: [stream u8][channel id u32 BE][payload].
inline Bytes mana_v1_data(std::uint8_t stream, std::uint32_t id, std::string_view payload) {
  Bytes b;
  b.push_back(stream);
  put_u32be(b, id);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

// lenpfx.v1 envelope with an explicit length field (may disagree with the size).
inline Bytes lenpfx_raw(std::uint32_t length, std::uint8_t kind, std::uint32_t id,
                        std::string_view body) {
  Bytes b;
  put_u32be(b, length);
  b.push_back(kind);
  put_u32be(b, id);
  b.insert(b.end(), body.begin(), body.end());
  return b;
}

// Well-formed lenpfx.v1 envelope (length = 5 + body size).
inline Bytes lenpfx_envelope(std::uint8_t kind, std::uint32_t id, std::string_view body) {
  return lenpfx_raw(static_cast<std::uint32_t>(5 + body.size()), kind, id, body);
}

inline constexpr std::uint8_t lenpfx_control = 0x10;

// json-base64.v1 data object with a literal (possibly invalid) base64 payload.
inline std::string jb64_data(std::string_view stream, std::uint32_t id,
                             std::string_view base64_payload) {
  std::string s = R"({"kind":"data","stream":")";
  s += stream;
  s += R"(","id":)";
  s += std::to_string(id);
  s += R"(,"payload":")";
  s += base64_payload;
  s += R"("})";
  return s;
}

inline void feed_text(SessionCore& s, std::string_view text, Timestamp now) {
  s.receive(MessageType::text, view_of(text), now);
}

inline void feed_binary(SessionCore& s, const Bytes& b, Timestamp now) {
  s.receive(MessageType::binary, ByteView(b.data(), b.size()), now);
}

// Messages with shared payload parts (SessionCore::set_shared_payloads) are
// delivered as their wire bytes, data followed by every part.
inline void feed(SessionCore& s, const OutMessage& m, Timestamp now) {
  if (!m.parts.empty()) {
    const Bytes flat = m.flatten();
    s.receive(m.type, ByteView(flat.data(), flat.size()), now);
    return;
  }
  s.receive(m.type, ByteView(m.data.data(), m.data.size()), now);
}

// A control JSON text, encoded in the receiver's active profile (text message
// for mana.v1 / json-base64.v1, control envelope for lenpfx.v1).
inline void feed_control(SessionCore& s, std::string_view json, Timestamp now) {
  feed(s, s.profile().encode_control(json), now);
}

// A data frame, encoded in the receiver's active profile.
inline void feed_data(SessionCore& s, Stream stream, ChannelId id, std::string_view payload,
                      Timestamp now) {
  feed(s, s.profile().encode_data(stream, id, view_of(payload)), now);
}

// Deterministic payload bytes: byte i of a stream is a function of its absolute
// offset, so loss, duplication and reordering all show.
inline std::string pattern(std::uint64_t offset, std::size_t n, std::uint8_t seed = 0) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t k = offset + i;
    s[i] = static_cast<char>(static_cast<std::uint8_t>((k * 131 + (k >> 8) * 7 + seed) & 0xff));
  }
  return s;
}

// ---- decoding output --------------------------------------------------------------

// Decodes an output message with `profile` (default limits); nullopt when it
// does not decode (e.g. a close message).
inline std::optional<core::Frame> decode_frame(const core::WireProfile& profile,
                                               const OutMessage& m) {
  if (is_close(m)) return std::nullopt;
  const Bytes flat = m.flatten();
  auto f = profile.decode(m.type, ByteView(flat.data(), flat.size()), core::FrameLimits{});
  if (!f) return std::nullopt;
  return std::move(f).value();
}

// The control message carried by `m`: profile-encoded, or a bootstrap JSON
// text (hello / hello_ok) in any profile. nullopt for data and close messages.
inline std::optional<core::ControlMessage> control_of(const core::WireProfile& profile,
                                                      const OutMessage& m) {
  if (is_close(m)) return std::nullopt;
  std::string json;
  if (auto f = decode_frame(profile, m)) {
    const auto* c = std::get_if<core::ControlFrame>(&*f);
    if (c == nullptr) return std::nullopt;
    json = c->json;
  } else if (m.type == MessageType::text) {
    json = as_text(m);
  } else {
    return std::nullopt;
  }
  auto r = core::parse_control(json);
  if (!r) return std::nullopt;
  return std::move(r).value();
}

// Every control message of type T in `out`, in order.
template <class T>
std::vector<T> controls_of(const core::WireProfile& profile, const std::vector<OutMessage>& out) {
  std::vector<T> v;
  for (const OutMessage& m : out)
    if (auto c = control_of(profile, m))
      if (const T* p = std::get_if<T>(&*c)) v.push_back(*p);
  return v;
}

// Every data frame in `out`, in order.
inline std::vector<core::DataFrame> data_of(const core::WireProfile& profile,
                                            const std::vector<OutMessage>& out) {
  std::vector<core::DataFrame> v;
  for (const OutMessage& m : out)
    if (auto f = decode_frame(profile, m))
      if (auto* d = std::get_if<core::DataFrame>(&*f)) v.push_back(std::move(*d));
  return v;
}

// ---- pumping ---------------------------------------------------------------------

// Delivers every queued output message of `from` to `to` (data via receive(),
// a close message via receive_close(), which ends the transport: nothing after
// it is delivered). Returns the number of messages delivered.
inline std::size_t deliver(SessionCore& from, SessionCore& to, Timestamp now,
                           std::vector<OutMessage>* log = nullptr) {
  std::size_t n = 0;
  while (auto m = from.poll_output()) {
    ++n;
    if (log != nullptr) log->push_back(*m);
    if (m->type == MessageType::close) {
      to.receive_close(static_cast<std::uint16_t>(m->close_code), m->close_reason, now);
      drain_output(from);  // never delivered after a close
      break;
    }
    feed(to, *m, now);
  }
  return n;
}

// Delivers in both directions until neither side has output. Returns the
// number of messages delivered.
inline std::size_t pump(SessionCore& a, SessionCore& b, Timestamp now, int max_rounds = 1000) {
  std::size_t total = 0;
  for (int i = 0; i < max_rounds; ++i) {
    const std::size_t n = deliver(a, b, now) + deliver(b, a, now);
    total += n;
    if (n == 0) break;
  }
  return total;
}

// Calls handle_timeout(now) while a deadline at or before `now` is due.
inline void fire_timers(SessionCore& s, Timestamp now, int max_rounds = 16) {
  for (int i = 0; i < max_rounds; ++i) {
    auto t = s.next_timeout();
    if (!t || *t > now) return;
    s.handle_timeout(now);
    if (s.next_timeout() == t) return;  // nothing moved: do not spin
  }
}

// ---- close checks ------------------------------------------------------------------
// Framework-free checks returning "" on success or a description of the first
// mismatch, so tests can write CHECK(check_...(...) == "").

inline std::string describe(CloseCode c) {
  return std::to_string(static_cast<unsigned>(c)) + " " + std::string(core::to_string(c));
}

// Pokes a session that must stay silent (closed, or without transport) with
// input and, if `intrusive` (only for final closes: it changes a detached or
// reconnecting session's state), a far-future handle_timeout and API calls.
// "" when it queued no output.
inline std::string check_silent(SessionCore& s, Timestamp now, bool intrusive = true) {
  feed_text(s, R"({"t":"ping","ts":1})", now);
  feed_binary(s, mana_v1_data(0x01, 1, "x"), now);
  if (intrusive) {
    s.handle_timeout(now + core::Duration::from_s(3600));
    (void)s.write(1, Stream::out, view_of("late"), now);
    (void)s.consume(1, 1, now);
    s.set_paused(core::PauseReason::app, true, now);
    s.set_paused(core::PauseReason::app, false, now);
  }
  if (s.has_output()) return "session queued output after its close";
  return {};
}

// `out` (everything drained after the offending input) ends with a close
// message carrying `code`, the events contain exactly one Closed with `code`,
// `origin` and `resumable`, and the session emits nothing afterwards.
inline std::string check_close(SessionCore& s, const std::vector<OutMessage>& out,
                               const std::vector<Event>& events, CloseCode code,
                               core::Origin origin, bool resumable, Timestamp now) {
  if (out.empty()) return "no output at all (expected a close " + describe(code) + ")";
  const OutMessage& last = out.back();
  if (!is_close(last)) {
    if (auto c = find_close(out))
      return "close " + describe(c->close_code) + " is not the last output";
    return "no close message (expected " + describe(code) + ")";
  }
  if (last.close_code != code)
    return "close message carries " + describe(last.close_code) + ", expected " + describe(code) +
           " (reason: " + last.close_reason + ")";
  for (std::size_t i = 0; i + 1 < out.size(); ++i)
    if (is_close(out[i])) return "more than one close message";
  const auto closed = events_of<core::event::Closed>(events);
  if (closed.size() != 1) return std::to_string(closed.size()) + " Closed events (expected 1)";
  const auto& c = closed.front();
  if (c.code != code)
    return "Closed event carries " + describe(c.code) + ", expected " + describe(code);
  if (c.origin != origin)
    return "Closed origin " + std::string(core::to_string(c.origin)) + ", expected " +
           std::string(core::to_string(origin));
  if (c.resumable != resumable)
    return std::string("Closed.resumable is ") + (c.resumable ? "true" : "false");
  if (!resumable && s.state() != SessionState::closed)
    return "state is " + std::string(core::to_string(s.state())) + ", expected closed";
  if (!resumable && s.channel_count() != 0) return "channels left after a final close";
  return check_silent(s, now, !resumable);
}

// Drains `s` and checks a final close with `code` and `origin` (see check_close).
inline std::string expect_close(SessionCore& s, CloseCode code, core::Origin origin, Timestamp now,
                                bool resumable = false) {
  const auto out = drain_output(s);
  const auto events = drain_events(s);
  return check_close(s, out, events, code, origin, resumable, now);
}

// ---- a connected client/server pair -------------------------------------------------

// A ClientSession and a ServerSession on one simulated transport. Events are
// accumulated in client_log / server_log by pump(); tests inspect and clear
// them. The server's host behaviour (accept, accept_open) is explicit.
struct SessionPair {
  explicit SessionPair(std::string_view profile = core::default_profile_id,
                       ServerConfig scfg = test_server_config(),
                       std::optional<ClientConfig> ccfg = std::nullopt, Timestamp t0 = at_ms(1000))
      : client(ccfg ? std::move(*ccfg) : test_client_config(profile), t0),
        server(std::move(scfg), t0) {}

  ClientSession client;
  ServerSession server;
  std::vector<Event> client_log;
  std::vector<Event> server_log;

  void collect() {
    for (Event& e : drain_events(client))
      client_log.push_back(std::move(e));
    for (Event& e : drain_events(server))
      server_log.push_back(std::move(e));
  }

  std::size_t pump(Timestamp now) {
    const std::size_t n = test::pump(client, server, now);
    collect();
    return n;
  }

  void clear_logs() {
    collect();
    client_log.clear();
    server_log.clear();
  }

  // transport_open + hello + accept + hello_ok. Returns false when any step
  // did not go as expected. Logs keep the handshake's events.
  bool handshake(Timestamp now, std::string_view token = token_a) {
    if (!client.transport_open(now)) return false;
    pump(now);
    if (!first_event<core::event::HelloReceived>(server_log)) return false;
    if (!server.accept(core::AcceptParams{std::string(token)}, now)) return false;
    pump(now);
    return client.state() == SessionState::ready && server.state() == SessionState::ready &&
           first_event<core::event::Ready>(client_log).has_value();
  }

  // Client opens a channel, the server accepts it. Returns the id, or 0.
  ChannelId open(Timestamp now, std::optional<std::string> resume_key = std::nullopt) {
    core::OpenParams p;
    p.target = core::Target{"example.test", 22};
    auto id = client.open_channel(p, now);
    if (!id) return 0;
    pump(now);
    if (!server.has_channel(*id)) return 0;
    if (!server.accept_open(*id, std::move(resume_key), now)) return 0;
    pump(now);
    return *id;
  }

  // Consume everything the client/server application received on `id`
  // (according to the logs) that was not consumed yet.
  void consume_all(ChannelId id, Timestamp now) {
    collect();
    for (SessionCore* s :
         {static_cast<SessionCore*>(&client), static_cast<SessionCore*>(&server)}) {
      auto st = s->channel_stats(id);
      if (st && st->received > st->consumed) (void)s->consume(id, st->received - st->consumed, now);
    }
  }
};

}  // namespace mana::test
