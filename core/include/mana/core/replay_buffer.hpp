// ReplayBuffer: the bytes a sender has sent on one channel direction and the
// peer has not yet acknowledged, so they can be retransmitted after a resume.
//
// Invariants
//   start_offset() <= end_offset(); size() == end_offset() - start_offset();
//   size() <= capacity() at all times (append fails instead of growing past it);
//   every byte keeps the stream tag (stdout/stderr) it was sent with.
// The capacity is the channel's maximum credit window: a sender that respects
// credit can never overflow it, because the peer acknowledges (flow.rx) every
// byte before granting credit for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "mana/core/result.hpp"
#include "mana/core/types.hpp"

namespace mana::core {

class ReplayBuffer {
 public:
  explicit ReplayBuffer(std::size_t capacity) noexcept : capacity_(capacity) {}

  [[nodiscard]] std::uint64_t start_offset() const noexcept { return start_; }
  [[nodiscard]] std::uint64_t end_offset() const noexcept { return start_ + size_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  // Append bytes sent on `stream`. Errors: buffer_full (local) if size() would
  // exceed capacity(); nothing is appended then.
  Result<void> append(Stream stream, ByteView data);

  // Peer acknowledged every byte below `offset`. Offsets below start_offset()
  // are stale and ignored. Errors: out_of_range (remote) if offset > end_offset().
  Result<void> ack(std::uint64_t offset) noexcept;

  // True if the buffer can replay from `offset` (start <= offset <= end).
  [[nodiscard]] bool can_replay_from(std::uint64_t offset) const noexcept {
    return offset >= start_ && offset <= end_offset();
  }

  // Visit [offset, end) as contiguous runs, each of one stream, in order.
  // Precondition: can_replay_from(offset).
  void for_each_from(std::uint64_t offset,
                     const std::function<void(Stream, ByteView)>& visit) const;

  // Drop everything and restart at `offset` (used when a channel is reset).
  void clear(std::uint64_t offset) noexcept;

 private:
  struct Run {
    Stream stream;
    std::uint64_t end;  // absolute offset one past this run's last byte
  };
  // Bytes live in fixed-size chunks allocated on demand and released as soon as
  // acks trim past them, so memory follows size() (plus one spare chunk while
  // bytes are held; nothing once everything is acknowledged), not capacity().
  // Every live chunk but the last is full; chunk.size() is its fill. Vectors
  // with a moving front index (compacted lazily) instead of deques: an empty
  // buffer allocates nothing.
  static constexpr std::size_t chunk_size = 16 * 1024;
  using Chunk = std::vector<std::uint8_t>;

  void release_all() noexcept;

  std::size_t capacity_;
  std::uint64_t start_ = 0;
  std::size_t size_ = 0;
  std::size_t head_ = 0;         // index of start_ inside chunks_[first_chunk_]
  std::size_t first_chunk_ = 0;  // chunks_[0, first_chunk_) are released
  std::vector<Chunk> chunks_;    // implementation detail; the API is the contract
  Chunk spare_;                  // one emptied chunk kept to avoid malloc churn
  std::size_t first_run_ = 0;    // runs_[0, first_run_) are trimmed
  std::vector<Run> runs_;        // non-empty, ordered, adjacent runs differ in stream
};

}  // namespace mana::core
