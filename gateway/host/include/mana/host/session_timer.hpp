// SPDX-License-Identifier: Apache-2.0
// SessionTimer: one Asio timer armed at a session's next_timeout(). The core never reads a clock;
// the host wakes it with handle_timeout(now) when a deadline is due (docs/architecture.md).
//
// Invariants
//   H1  At most one wait is pending; arming again cancels the previous wait unless the rearm
//       policy keeps it.
//   H2  `on_due` runs only for the wait armed last and only while this timer exists; it is never
//       called for a cancelled wait.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "mana/core/types.hpp"
#include "mana/host/clock.hpp"

namespace mana::host {

class SessionTimer {
 public:
  enum class Rearm : std::uint8_t {
    // Re-armed whenever the deadline changes (mana-proxy, mana-bench).
    exact,
    // A wait already armed no later than the new deadline stays (mana-gateway): the heartbeat
    // deadline moves later with every message, so this re-arms about once per heartbeat interval
    // instead of once per message. `on_due` may then run early and must check what is due.
    keep_earlier,
  };

  SessionTimer(boost::asio::io_context& io, Rearm rearm)
      : timer_(io), rearm_(rearm), state_(std::make_shared<State>()) {}
  ~SessionTimer() = default;
  SessionTimer(const SessionTimer&) = delete;
  SessionTimer& operator=(const SessionTimer&) = delete;

  // Waits for `deadline` (none: nothing to wait for) and then runs `on_due()`. `on_due` checks
  // that its owner is still live, calls handle_timeout(mono_now()) and pumps.
  template <class Handler>
  void arm(std::optional<core::Timestamp> deadline, Handler&& on_due) {
    const std::optional<core::Timestamp>& armed = state_->armed;
    const bool keep = rearm_ == Rearm::keep_earlier
                          ? (armed ? (!deadline || *armed <= *deadline) : !deadline)
                          : deadline == armed;
    if (keep) return;
    cancel();
    if (!deadline) return;
    state_->armed = deadline;
    timer_.expires_at(to_steady(*deadline));
    timer_.async_wait(
        [weak = std::weak_ptr<State>(state_), gen = state_->gen,
         h = std::forward<Handler>(on_due)](const boost::system::error_code& ec) mutable {
          if (ec) return;
          const auto s = weak.lock();
          // The timer is gone, or this wait was cancelled after it had already completed (H2).
          if (!s || s->gen != gen) return;
          s->armed.reset();
          h();
        });
  }

  // Cancels the pending wait: its handler does not run (H2).
  void cancel() {
    state_->armed.reset();
    ++state_->gen;
    timer_.cancel();
  }

  [[nodiscard]] std::optional<core::Timestamp> armed() const noexcept { return state_->armed; }

 private:
  // Shared with the pending wait's handler, which must not touch a destroyed timer (H2).
  struct State {
    std::optional<core::Timestamp> armed;
    std::uint64_t gen = 0;  // bumped by every cancel(): older handlers return at once
  };

  boost::asio::steady_timer timer_;
  Rearm rearm_;
  std::shared_ptr<State> state_;
};

}  // namespace mana::host
