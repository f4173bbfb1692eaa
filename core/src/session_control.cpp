// SPDX-License-Identifier: Apache-2.0
// Control dispatch (SessionCore I7) and the handlers of the control messages
// both roles receive: close, flow, ping, pong.
#include "mana/core/session_core.hpp"

#include <string>
#include <utility>
#include <variant>

#include "channel_detail.hpp"

namespace mana::core {

void SessionCore::dispatch_control(ControlMessage&& m, Timestamp now) {
  // The role's gate: hello / hello_ok, messages before the handshake is done,
  // the server's control rate limit.
  if (on_control_gate(m, now)) return;
  if (const auto* c = std::get_if<Close>(&m)) return handle_close(*c, now);
  if (const auto* f = std::get_if<Flow>(&m)) return handle_flow(*f, now);
  if (const auto* p = std::get_if<Ping>(&m)) return handle_ping(*p, now);
  if (const auto* p = std::get_if<Pong>(&m)) return handle_pong(*p, now);
  if (on_role_control(m, now)) return;
  fail(make_error(Errc::unexpected_message, Origin::remote,
                  std::string(type_name(m)) +
                      (is_server_ ? " is not sent by clients" : " is not sent by servers")),
       now);
}

void SessionCore::handle_flow(const Flow& f, Timestamp now) {
  Channel* ch = find(f.id);
  if (ch == nullptr) {
    fail(make_error(Errc::unknown_channel, Origin::remote,
                    channel_detail(f.id, "flow for a channel that is not open")),
         now);
    return;
  }
  if (f.rx) {
    if (*f.rx > ch->send.sent()) {
      fail(make_error(Errc::credit_overrun, Origin::remote,
                      channel_detail(f.id, "acknowledged bytes that were never sent")),
           now);
      return;
    }
    const std::uint64_t before = ch->replay.start_offset();
    (void)ch->replay.ack(*f.rx);
    if (ch->replay.start_offset() > before) on_acknowledged(*ch);
  }
  if (ch->send_unlimited) return;
  if (auto r = ch->send.add_credit(f.credit); !r) {
    Error e = std::move(r).error();
    e.detail = channel_detail(f.id, e.detail);
    fail(e, now);
    return;
  }
  if (ch->want_writable && available(f.id) > 0) {
    ch->want_writable = false;
    emit(event::ChannelWritable{f.id, available(f.id)});
  }
}

void SessionCore::handle_close(const Close& c, Timestamp now) {
  Channel* ch = find(c.id);
  if (ch == nullptr) {
    fail(make_error(Errc::unknown_channel, Origin::remote,
                    channel_detail(c.id, "close for a channel that is not open")),
         now);
    return;
  }
  if (ch->remote_close_received) return;  // duplicate after resume: ignored
  ch->remote_close_received = true;
  if (!ch->local_close_sent) {
    ch->local_close_sent = true;
    ch->close_reason_sent = "closed by peer";
    send_control(Close{c.id, std::nullopt});
  }
  free_channel(c.id, c.reason.value_or(std::string("closed by peer")), Origin::remote);
}

void SessionCore::handle_ping(const Ping& p, Timestamp now) {
  (void)now;
  send_control(Pong{p.ts});
  last_tx_ = now;
  diag(DiagCode::ping_received, now);
}

void SessionCore::handle_pong(const Pong& p, Timestamp now) {
  pings_outstanding_ = 0;
  const std::uint64_t now_us = (now.ns / 1000) & max_json_integer;
  if (p.ts <= now_us) {
    const Duration sample = Duration::from_us(static_cast<std::int64_t>(now_us - p.ts));
    srtt_ = srtt_ ? Duration{(srtt_->ns * 7 + sample.ns) / 8} : sample;
    last_rtt_sample_ = sample;
    diag(DiagCode::rtt_sample, now, std::to_string(sample.us()) + "us");
  }
  diag(DiagCode::pong_received, now);
}

}  // namespace mana::core
