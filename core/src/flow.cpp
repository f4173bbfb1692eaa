// Credit flow control and rate limiting. See mana/core/flow.hpp for the
// contract and invariants.
#include "mana/core/flow.hpp"

#include <algorithm>
#include <cassert>
#include <limits>

namespace mana::core {
namespace {

constexpr std::uint64_t micro_per_token = 1000000;
constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();

constexpr std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) noexcept {
  return b > u64_max - a ? u64_max : a + b;
}

constexpr std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b) noexcept {
  return (a != 0 && b > u64_max / a) ? u64_max : a * b;
}

}  // namespace

// ---------------------------------------------------------------------------
// PauseSet

bool PauseSet::set(PauseReason r, bool on) noexcept {
  const bool was_paused = paused();
  const auto bit = static_cast<std::uint8_t>(r);
  if (on) {
    bits_ = static_cast<std::uint8_t>(bits_ | bit);
  } else {
    bits_ = static_cast<std::uint8_t>(bits_ & ~bit);
  }
  return was_paused != paused();
}

std::string_view to_string(PauseReason r) noexcept {
  switch (r) {
    case PauseReason::transport:
      return "transport";
    case PauseReason::hidden:
      return "hidden";
    case PauseReason::offline:
      return "offline";
    case PauseReason::app:
      return "app";
  }
  return "unknown";  // not a single named reason (e.g. a cast bit combination)
}

// ---------------------------------------------------------------------------
// SendWindow

Result<void> SendWindow::add_credit(std::uint64_t credit) noexcept {
  if (limit_ > max_json_integer || credit > max_json_integer - limit_) {
    return make_error(Errc::credit_overflow, Origin::remote,
                      "flow credit pushes the send limit past 2^53-1");
  }
  limit_ += credit;
  return {};
}

void SendWindow::on_sent(std::uint64_t n) noexcept {
  assert(n <= available() && "SendWindow::on_sent beyond credit");
  // The count stays exact even on misuse so it keeps matching the replay
  // buffer's end offset; the assertion is the guard against exceeding credit.
  sent_ += n;
}

void SendWindow::reset(std::uint64_t offset, std::uint64_t credit) noexcept {
  sent_ = offset;
  // Offsets stay within JSON integers; a larger sum is clamped (never below
  // `offset`, which keeps sent_ <= limit_).
  const std::uint64_t room = offset < max_json_integer ? max_json_integer - offset : 0;
  limit_ = offset + std::min(credit, room);
}

// ---------------------------------------------------------------------------
// ReceiveWindow

ReceiveWindow::ReceiveWindow(WindowConfig cfg) noexcept
    : cfg_(cfg),
      window_(std::min(cfg.initial, max_json_integer)),
      limit_(std::min(cfg.initial, max_json_integer)) {
  // Auto-tuning only ever grows the window: a ceiling below the initial window
  // means "no growth". Growth stops at unannounced_window_ceiling (§8.4).
  cfg_.max = std::max(std::min(cfg_.max, unannounced_window_ceiling), window_);
}

Result<void> ReceiveWindow::on_data(std::uint64_t n) noexcept {
  if (n > limit_ - received_) {
    return make_error(Errc::credit_overrun, Origin::remote,
                      "peer sent more bytes than its credit allows");
  }
  received_ += n;
  return {};
}

Result<void> ReceiveWindow::consume(std::uint64_t n) noexcept {
  if (n > received_ - consumed_) {
    return make_error(Errc::invalid_argument, Origin::local,
                      "consume() of more bytes than were received");
  }
  consumed_ += n;
  return {};
}

std::optional<std::uint64_t> ReceiveWindow::take_grant(bool paused, Timestamp now, Duration rtt,
                                                       bool force) noexcept {
  if (paused) return std::nullopt;

  // Bytes consumed since the last grant: the limit was set to consumed + window
  // then, so the gap between where it would be now and where it is.
  const std::uint64_t target = saturating_add(consumed_, window_);
  const std::uint64_t progress = target > limit_ ? target - limit_ : 0;
  if (!force && progress < window_ / 2) return std::nullopt;

  // Auto-tuning: a grant due less than 2 * RTT after the previous one means the
  // application drains a window faster than one round trip, so the window (not
  // the consumer) limits throughput. Only consumption counts as "due": a forced
  // grant with nothing consumed does not grow the window.
  // (elapsed < 2 * rtt  <=>  elapsed / 2 < rtt, without overflow; a clock that
  // went backwards counts as zero elapsed.)
  if (progress > 0 && last_grant_ && rtt.ns > 0) {
    const std::uint64_t elapsed = now.ns > last_grant_->ns ? now.ns - last_grant_->ns : 0;
    if (elapsed / 2 < static_cast<std::uint64_t>(rtt.ns)) {
      window_ = std::max(window_, std::min(saturating_mul(window_, 2), cfg_.max));
    }
  }

  const std::uint64_t new_limit = std::min(saturating_add(consumed_, window_), max_json_integer);
  if (new_limit <= limit_) return std::nullopt;
  const std::uint64_t credit = new_limit - limit_;
  limit_ = new_limit;
  last_grant_ = now;
  return credit;
}

// ---------------------------------------------------------------------------
// TokenBucket

TokenBucket::TokenBucket(std::uint32_t rate_per_second, std::uint32_t burst) noexcept
    : rate_(rate_per_second),
      burst_micro_(std::uint64_t{burst} * micro_per_token),
      tokens_micro_(std::uint64_t{burst} * micro_per_token) {}

bool TokenBucket::try_take(Timestamp now) noexcept {
  if (!last_) {
    tokens_micro_ = burst_micro_;
    last_ = now;
  } else if (now > *last_) {
    // rate_ tokens/s == rate_ micro-tokens per 1000 ns.
    const std::uint64_t elapsed = now.ns - last_->ns;
    const std::uint64_t missing = burst_micro_ - tokens_micro_;
    if (rate_ == 0 || missing == 0) {
      // Nothing to add; keep the clock current so a full bucket never banks time.
      last_ = now;
    } else if (elapsed >= (missing * 1000 + rate_ - 1) / rate_) {
      tokens_micro_ = burst_micro_;
      last_ = now;
    } else {
      // elapsed * rate_ < missing * 1000 + rate_ <= 2^32 * 10^9 + 2^32: no overflow.
      const std::uint64_t units = elapsed * rate_;
      tokens_micro_ += units / 1000;
      // Carry the whole nanoseconds not yet worth a micro-token, so frequent
      // calls still refill at the configured rate. Only the sub-nanosecond
      // remainder is dropped: the bucket may lag by < rate/1000 micro-tokens
      // per call, never run ahead.
      const std::uint64_t carry_ns = (units % 1000) / rate_;
      last_ = Timestamp{now.ns - carry_ns};
    }
  }
  // A timestamp earlier than the last one adds nothing and does not move the
  // clock back (which would credit the same interval twice).
  if (tokens_micro_ < micro_per_token) return false;
  tokens_micro_ -= micro_per_token;
  return true;
}

}  // namespace mana::core
