// SimLink: a simulated WebSocket connection between two in-process endpoints,
// driven by virtual time and a seeded generator (picoquic sim_link / ET
// FlakySocketHandler style). Each direction is an ordered byte stream of whole
// WebSocket messages with a fixed latency. A cut at byte offset N of a
// direction kills the connection: the message that straddles N (a cut in the
// middle of a frame) and everything after it, in both directions, is lost. A
// budget (set_budget) cut loses only the message that passes it and what follows.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <utility>

#include "mana/core/types.hpp"
#include "mana/core/wire_profile.hpp"

namespace mana::sim {

using core::Timestamp;

class SimLink {
 public:
  struct InFlight {
    Timestamp due;
    core::OutMessage msg;
  };

  // cut_a_to_b / cut_b_to_a: byte offsets at which the direction dies (nullopt = never).
  SimLink(core::Duration latency, std::optional<std::uint64_t> cut_a_to_b,
          std::optional<std::uint64_t> cut_b_to_a)
      : latency_(latency), cut_{cut_a_to_b, cut_b_to_a} {}

  [[nodiscard]] bool dead() const noexcept { return dead_; }
  [[nodiscard]] std::optional<Timestamp> died_at() const noexcept { return died_at_; }
  [[nodiscard]] bool cut_mid_message() const noexcept { return mid_message_; }
  // True when the link died because of its planned cut (not a kill()).
  [[nodiscard]] bool cut_hit() const noexcept { return cut_hit_; }
  [[nodiscard]] std::uint64_t bytes(int dir) const noexcept { return sent_[dir]; }

  // A budget of bytes counted in both directions together (as the gateway tests'
  // fault proxy counts them): the message that would pass it dies with the link.
  void set_budget(std::uint64_t bytes) noexcept { budget_ = bytes; }

  // Send from side `dir` (0 = a->b, 1 = b->a). Returns false if the link is dead.
  bool send(int dir, core::OutMessage m, Timestamp now) {
    if (dead_) return false;
    const std::uint64_t size = wire_size(m);
    if (budget_ && sent_[0] + sent_[1] + size > *budget_) {
      // As the fault proxy: what was sent before the cut still arrives (the
      // proxy forwards the prefix, then closes both sockets).
      mid_message_ = *budget_ > sent_[0] + sent_[1];
      cut_hit_ = true;
      dead_ = true;
      died_at_ = now + latency_;
      return false;
    }
    if (cut_[dir] && sent_[dir] + size > *cut_[dir]) {
      mid_message_ = *cut_[dir] > sent_[dir];
      cut_hit_ = true;
      kill(now);
      return false;
    }
    sent_[dir] += size;
    q_[dir].push_back(InFlight{now + latency_, std::move(m)});
    return true;
  }

  // Next message due for delivery towards the receiver of `dir`.
  std::optional<core::OutMessage> receive(int dir, Timestamp now) {
    if (q_[dir].empty() || q_[dir].front().due > now) return std::nullopt;
    core::OutMessage m = std::move(q_[dir].front().msg);
    q_[dir].pop_front();
    return m;
  }

  [[nodiscard]] std::optional<Timestamp> next_due() const {
    std::optional<Timestamp> t;
    for (const auto& q : q_)
      if (!q.empty() && (!t || q.front().due < *t)) t = q.front().due;
    return t;
  }

  // Drop the connection now (e.g. a forced reset): in-flight messages are lost.
  void kill(Timestamp now) {
    if (dead_) return;
    dead_ = true;
    died_at_ = now;
    q_[0].clear();
    q_[1].clear();
  }

 private:
  static std::uint64_t wire_size(const core::OutMessage& m) {
    // WebSocket framing overhead of 2..14 bytes is approximated by 6; size()
    // counts shared payload parts too.
    return m.size() + 6;
  }

  core::Duration latency_;
  std::optional<std::uint64_t> cut_[2];
  std::optional<std::uint64_t> budget_;
  std::uint64_t sent_[2] = {0, 0};
  std::deque<InFlight> q_[2];
  bool dead_ = false;
  bool mid_message_ = false;
  bool cut_hit_ = false;
  std::optional<Timestamp> died_at_;
};

}  // namespace mana::sim
