// Per-channel credit flow control, one instance per direction.
//
// Offsets are absolute byte counts since the channel opened (64-bit, kept at
// or below 2^53 - 1 so they fit in JSON numbers). Credit on the wire is
// incremental (flow.credit adds to the sender's allowance); internally both
// sides keep an absolute limit: the sender may send while sent < limit.
//
// Invariants
//   SendWindow:    sent_ <= limit_ (the sender never exceeds its credit).
//   ReceiveWindow: consumed_ <= received_ <= limit_; limit_ - consumed_ <= max window.
//   Credit is granted only for bytes the application consumed (consume()),
//   and never while any pause reason is set.
#pragma once

#include <cstdint>
#include <optional>

#include "mana/core/result.hpp"
#include "mana/core/types.hpp"

namespace mana::core {

// Reasons that withhold credit grants. A bit set; any bit pauses.
enum class PauseReason : std::uint8_t {
  transport = 1 << 0,  // outbound transport buffer above its high-water mark
  hidden = 1 << 1,     // page hidden / frozen
  offline = 1 << 2,    // browser offline
  app = 1 << 3,        // application asked to pause
};

class PauseSet {
 public:
  // Returns true when the paused/unpaused state as a whole changed.
  bool set(PauseReason r, bool on) noexcept;
  [[nodiscard]] bool paused() const noexcept { return bits_ != 0; }
  [[nodiscard]] bool has(PauseReason r) const noexcept {
    return (bits_ & static_cast<std::uint8_t>(r)) != 0;
  }
  [[nodiscard]] std::uint8_t bits() const noexcept { return bits_; }

 private:
  std::uint8_t bits_ = 0;
};

std::string_view to_string(PauseReason r) noexcept;  // "transport" | "hidden" | "offline" | "app"

// PROTOCOL §8.4: the maximum window is not announced, so a receiver's window
// never grows past max(initial window, this); every sender can buffer that
// many unacknowledged bytes per channel (§9.1). A larger configured ceiling
// is cut to it: a window the sender cannot hold would stall the channel (the
// sender stops at its replay capacity before a grant falls due).
inline constexpr std::uint64_t unannounced_window_ceiling = 2 * 1024 * 1024;

struct WindowConfig {
  std::uint64_t initial = 256 * 1024;   // initial window, bytes
  std::uint64_t max = 2 * 1024 * 1024;  // auto-tuning ceiling, bytes (see above)
};

// Sender side: what we may still send.
class SendWindow {
 public:
  SendWindow() = default;
  SendWindow(std::uint64_t sent, std::uint64_t limit) : sent_(sent), limit_(limit) {}

  [[nodiscard]] std::uint64_t sent() const noexcept { return sent_; }
  [[nodiscard]] std::uint64_t limit() const noexcept { return limit_; }
  [[nodiscard]] std::uint64_t available() const noexcept { return limit_ - sent_; }

  // Peer granted `credit` more bytes. Errors: credit_overflow (remote) when the
  // limit would pass 2^53 - 1.
  Result<void> add_credit(std::uint64_t credit) noexcept;
  // Record `n` bytes sent. Precondition: n <= available().
  void on_sent(std::uint64_t n) noexcept;
  // Resume: restart at the peer's rx with the peer's credit beyond it.
  void reset(std::uint64_t offset, std::uint64_t credit) noexcept;

 private:
  std::uint64_t sent_ = 0;
  std::uint64_t limit_ = 0;
};

// Receiver side: what we allowed, received and consumed; decides grants.
class ReceiveWindow {
 public:
  explicit ReceiveWindow(WindowConfig cfg = {}) noexcept;

  [[nodiscard]] std::uint64_t received() const noexcept { return received_; }
  [[nodiscard]] std::uint64_t consumed() const noexcept { return consumed_; }
  [[nodiscard]] std::uint64_t limit() const noexcept { return limit_; }
  [[nodiscard]] std::uint64_t window() const noexcept { return window_; }
  // Credit the peer currently holds (limit - received).
  [[nodiscard]] std::uint64_t outstanding() const noexcept { return limit_ - received_; }
  // Bytes received and not yet consumed by the application.
  [[nodiscard]] std::uint64_t unconsumed() const noexcept { return received_ - consumed_; }

  // Peer sent `n` bytes. Errors: credit_overrun (remote) if beyond limit.
  Result<void> on_data(std::uint64_t n) noexcept;
  // Application consumed `n` bytes. Errors: invalid_argument (local) if more
  // than unconsumed().
  Result<void> consume(std::uint64_t n) noexcept;

  // Credit to grant now, or nullopt. Grants when paused is false and at least
  // half a window has been consumed since the last grant (or `force`). Raises
  // limit to consumed + window. Auto-tuning: if the previous grant was less
  // than 2 * rtt ago, the window doubles (up to cfg.max) before granting.
  std::optional<std::uint64_t> take_grant(bool paused, Timestamp now, Duration rtt,
                                          bool force = false) noexcept;

  // Resume: we restart from `received` (what we actually hold). Returns the
  // credit to advertise beyond it (limit - received).
  std::uint64_t resume_credit() const noexcept { return limit_ - received_; }

 private:
  WindowConfig cfg_;
  std::uint64_t window_;
  std::uint64_t received_ = 0;
  std::uint64_t consumed_ = 0;
  std::uint64_t limit_;
  std::optional<Timestamp> last_grant_;
};

// Token bucket for rate limits (control messages, opens, pings). Integer
// arithmetic in micro-tokens; time only through the `now` arguments.
class TokenBucket {
 public:
  TokenBucket(std::uint32_t rate_per_second, std::uint32_t burst) noexcept;
  // Takes one token if available. The first call fills the bucket to `burst`.
  bool try_take(Timestamp now) noexcept;
  [[nodiscard]] std::uint64_t tokens_micro() const noexcept { return tokens_micro_; }

 private:
  std::uint64_t rate_;
  std::uint64_t burst_micro_;
  std::uint64_t tokens_micro_;
  std::optional<Timestamp> last_;
};

}  // namespace mana::core
