// SessionCore, data messages: queueing and splitting channel data, and the
// resume exchange that retransmits it (PROTOCOL §9.5).
//
// Progress under repeated cuts (R1): a data message counts for the receiver
// only once it arrived whole, so a link that is cut again before every
// message of a retransmission got through would see the same retransmission
// forever. Each channel therefore keeps the peer's rx of the previous resume;
// a resume that shows no progress since then (same rx, bytes still
// unacknowledged) halves the largest payload of the channel's data messages
// (floor min_payload_cap) before the retransmission, and every flow that
// acknowledges new bytes doubles it again up to the peer's maxFrame.
#include <algorithm>
#include <string>
#include <utility>

#include "channel_detail.hpp"
#include "mana/core/session_core.hpp"

namespace mana::core {

std::size_t SessionCore::payload_limit(const Channel& ch) const noexcept {
  const std::size_t max = profile_->max_payload(peer_max_frame_);
  return ch.payload_cap == 0 ? max : std::min(max, ch.payload_cap);
}

void SessionCore::on_acknowledged(Channel& ch) noexcept {
  if (ch.payload_cap == 0) return;
  const std::size_t max = profile_->max_payload(peer_max_frame_);
  ch.payload_cap = ch.payload_cap >= max / 2 ? 0 : ch.payload_cap * 2;
}

void SessionCore::queue_data(Channel& ch, Stream stream, ByteView data) {
  if (!can_queue_data() || data.empty()) return;
  const std::size_t step = payload_limit(ch);
  if (step == 0) return;  // as encode_data_split: maxFrame is at least 1024 in practice
  std::vector<OutMessage> msgs;
  for (std::size_t off = 0; off < data.size(); off += step)
    encode_data_split(*profile_, stream, ch.id,
                      data.subspan(off, std::min(step, data.size() - off)), peer_max_frame_, msgs);
  for (auto& m : msgs) {
    out_bytes_ += m.data.size();
    out_.push_back(std::move(m));
  }
}

void SessionCore::queue_shared_data(const Channel& ch, Stream stream,
                                    std::vector<PayloadPart>&& parts) {
  if (!can_queue_data()) return;
  const std::size_t max = payload_limit(ch);
  if (max == 0) return;  // as encode_data_split: maxFrame is at least 1024 in practice
  std::vector<PayloadPart> msg_parts;
  std::size_t msg_size = 0;
  const auto flush = [&] {
    OutMessage m = profile_->encode_data_header(stream, ch.id, msg_size);
    m.parts = std::move(msg_parts);
    msg_parts = {};
    msg_size = 0;
    out_bytes_ += m.data.size();  // the parts are counted by the replay buffer
    out_.push_back(std::move(m));
  };
  for (PayloadPart& p : parts) {
    ByteView rest = p.bytes;
    while (!rest.empty()) {
      const std::size_t n = std::min(rest.size(), max - msg_size);
      msg_parts.push_back(PayloadPart{p.owner, rest.first(n)});
      msg_size += n;
      rest = rest.subspan(n);
      if (msg_size == max) flush();
    }
  }
  if (msg_size > 0) flush();
}

// ---- resume ---------------------------------------------------------------------

ResumeChannel SessionCore::resume_entry(const Channel& ch) const {
  return ResumeChannel{ch.id, ch.recv.received(), ch.recv.resume_credit(),
                       ch.remote_close_received};
}

Result<void> SessionCore::check_resume_entry(const Channel& ch, const ResumeChannel& e) const {
  if (!ch.replay.can_replay_from(e.rx))
    return make_error(Errc::resume_out_of_range, Origin::remote,
                      channel_detail(ch.id, "resume offset out of range"));
  if (!ch.send_unlimited && ch.send.sent() - e.rx > e.credit)
    return make_error(Errc::resume_out_of_range, Origin::remote,
                      channel_detail(ch.id, "resume credit below unacknowledged bytes"));
  if (e.rx + e.credit > max_json_integer)
    return make_error(Errc::credit_overflow, Origin::remote, channel_detail(ch.id, "credit"));
  return {};
}

void SessionCore::apply_resume_entry(Channel& ch, const ResumeChannel& e, Timestamp now) {
  (void)ch.replay.ack(e.rx);
  const std::uint64_t end = ch.send.sent();
  if (end > e.rx && ch.resume_rx == e.rx) {
    // R1: the previous transport delivered nothing of this channel.
    const std::uint64_t cur = std::min<std::uint64_t>(payload_limit(ch), end - e.rx);
    ch.payload_cap = static_cast<std::size_t>(std::max<std::uint64_t>(min_payload_cap, cur / 2));
  }
  ch.resume_rx = e.rx;
  if (!ch.send_unlimited) {
    ch.send.reset(e.rx, e.credit);
    ch.send.on_sent(end - e.rx);
  }
  std::uint64_t replayed = 0;
  if (end > e.rx && sharing_payloads()) {
    // Consecutive parts of one stream form one run of messages (split at maxFrame).
    std::vector<PayloadPart> run;
    Stream run_stream = Stream::out;
    ch.replay.for_each_part_from(e.rx, [&](Stream s, PayloadPart&& p) {
      if (!run.empty() && s != run_stream) {
        queue_shared_data(ch, run_stream, std::move(run));
        run = {};
      }
      run_stream = s;
      replayed += p.bytes.size();
      run.push_back(std::move(p));
    });
    if (!run.empty()) queue_shared_data(ch, run_stream, std::move(run));
  } else if (end > e.rx) {
    ch.replay.for_each_from(e.rx, [&](Stream s, ByteView bytes) {
      queue_data(ch, s, bytes);
      replayed += bytes.size();
    });
  }
  if (replayed > 0) {
    std::string what = std::to_string(replayed);
    if (ch.payload_cap != 0) what += " in messages of <= " + std::to_string(ch.payload_cap);
    diag(DiagCode::replayed, now, channel_detail(ch.id, what));
  }
  if (!e.closed) {
    if (ch.exit_sent) send_control(*ch.exit_sent);
    if (ch.local_close_sent) {
      send_control(Close{ch.id, ch.close_reason_sent.empty()
                                    ? std::nullopt
                                    : std::optional<std::string>(ch.close_reason_sent)});
    }
  }
  if (ch.want_writable && available(ch.id) > 0) {
    ch.want_writable = false;
    emit(event::ChannelWritable{ch.id, available(ch.id)});
  }
}

}  // namespace mana::core
