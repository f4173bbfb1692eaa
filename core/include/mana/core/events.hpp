// Events a session reports to its host, pulled with poll_event() (as h11's
// next_event): no callbacks, no re-entrancy.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "mana/core/error.hpp"
#include "mana/core/messages.hpp"
#include "mana/core/types.hpp"

namespace mana::core {

enum class SessionState : std::uint8_t {
  connecting,      // client: waiting for the transport
  awaiting_hello,  // server: transport up, no hello yet
  authenticating,  // client: hello sent; server: hello received, host deciding
  ready,           // hello_ok exchanged; channels may be used
  reconnecting,    // client: transport lost, resume possible
  detached,        // server: transport lost, session kept until the resume TTL
  closed,          // final
};

std::string_view to_string(SessionState s) noexcept;

enum class PolicyKind : std::uint8_t {
  flow_pause,     // credit grants withheld (reasons = PauseReason bits)
  flow_resume,    // all pause reasons cleared; withheld credit granted
  credit_grant,   // flow message sent (id, amount)
  rate_limited,   // a rate limit was exceeded (detail names it)
  channel_limit,  // an open exceeded the channel cap
};

std::string_view to_string(PolicyKind k) noexcept;

enum class DiagCode : std::uint8_t {
  hello_sent,
  hello_ok,
  resume_requested,
  resume_accepted,
  resume_rejected,
  token_rotated,
  transport_lost,
  transport_superseded,  // server: a resume moved the session to a newer transport
  ping_sent,
  pong_received,
  heartbeat_missed,
  rtt_sample,
  replayed,       // bytes retransmitted after resume (detail: channel and count)
  ping_received,  // the peer sent ping (answered with pong); hosts may rate-limit pings
};

std::string_view to_string(DiagCode c) noexcept;

namespace event {

struct StateChanged {
  SessionState from;
  SessionState to;
};
// Server: a fresh hello arrived; authenticate, then accept() or reject().
struct HelloReceived {
  Hello hello;
};
// Server: a hello with resume arrived; look the token up, then call resume()
// on the session it names, or reject() on this one.
struct ResumeRequested {
  Hello hello;
};
// Client: hello_ok received.
struct Ready {
  bool resumed = false;
  HelloOk hello_ok;
};
// Server: the client asked for a channel; accept_open() or reject_open().
struct OpenRequested {
  Open open;
};
struct ChannelOpened {
  ChannelId id = 0;
  std::optional<std::string> resume_key;
};
struct ChannelOpenFailed {
  ChannelId id = 0;
  std::string code;
  std::string msg;
};
struct ChannelData {
  ChannelId id = 0;
  Stream stream = Stream::out;
  Bytes data;
};
// Credit became available again for a channel whose writer had run out.
struct ChannelWritable {
  ChannelId id = 0;
  std::uint64_t available = 0;
};
struct ChannelResized {
  ChannelId id = 0;
  std::uint16_t cols = 0;
  std::uint16_t rows = 0;
};
struct ChannelSignal {
  ChannelId id = 0;
  std::string sig;
};
struct ChannelExit {
  ChannelId id = 0;
  std::optional<std::int32_t> code;
  std::optional<std::string> sig;
};
// The channel is gone on both sides (or the session closed); its id is free.
struct ChannelClosed {
  ChannelId id = 0;
  std::string reason;
  Origin origin = Origin::local;
};
struct Policy {
  PolicyKind kind = PolicyKind::flow_pause;
  ChannelId id = 0;  // 0: the whole connection
  std::uint8_t reasons = 0;
  std::uint64_t amount = 0;
  std::string detail;
};
struct Diagnostic {
  DiagCode code = DiagCode::hello_sent;
  Timestamp at;
  SessionState phase = SessionState::connecting;
  std::string detail;
};
// The connection (transport) closed. If `resumable` the session moved to
// reconnecting/detached instead of closed.
struct Closed {
  CloseCode code = CloseCode::normal;
  Origin origin = Origin::local;
  Errc error = Errc::ok;
  std::string reason;
  bool resumable = false;
};

}  // namespace event

using Event = std::variant<event::StateChanged, event::HelloReceived, event::ResumeRequested,
                           event::Ready, event::OpenRequested, event::ChannelOpened,
                           event::ChannelOpenFailed, event::ChannelData, event::ChannelWritable,
                           event::ChannelResized, event::ChannelSignal, event::ChannelExit,
                           event::ChannelClosed, event::Policy, event::Diagnostic, event::Closed>;

}  // namespace mana::core
