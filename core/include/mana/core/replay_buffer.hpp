// ReplayBuffer: the bytes a sender has sent on one channel direction and the
// peer has not yet acknowledged, so they can be retransmitted after a resume.
//
// Invariants
//   start_offset() <= end_offset(); size() == end_offset() - start_offset();
//   size() <= capacity() at all times (append fails instead of growing past it);
//   every byte keeps the stream tag (stdout/stderr) it was sent with;
//   bytes never move once appended, and memory handed out as a PayloadPart
//   (append_shared, for_each_part_from) stays valid and unchanged for as long
//   as that part (its owner) exists, whatever the buffer does meanwhile: an
//   ack, clear() or the destruction of the buffer only drops the buffer's own
//   reference. A peer that acknowledges bytes the host has not yet written to
//   its socket can therefore never free memory under an in-flight write.
// The capacity is the channel's maximum credit window: a sender that respects
// credit can never overflow it, because the peer acknowledges (flow.rx) every
// byte before granting credit for it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "mana/core/result.hpp"
#include "mana/core/types.hpp"
#include "mana/core/wire_profile.hpp"

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
  // append(), then hand back the bytes just stored as parts (one per chunk they
  // landed in, in order) appended to `out`: a sender can put them on the wire
  // without copying them again. On error nothing is appended anywhere.
  Result<void> append_shared(Stream stream, ByteView data, std::vector<PayloadPart>& out);

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
  // The same runs as parts that share ownership of the buffer's memory (valid
  // after the buffer trims or drops them). Precondition: can_replay_from(offset).
  void for_each_part_from(std::uint64_t offset,
                          const std::function<void(Stream, PayloadPart&&)>& visit) const;

  // Drop everything and restart at `offset` (used when a channel is reset).
  void clear(std::uint64_t offset) noexcept;

 private:
  struct Run {
    Stream stream;
    std::uint64_t end;  // absolute offset one past this run's last byte
  };
  // Bytes live in fixed-size chunks allocated on demand (never zero-filled)
  // and released as soon as acks trim past them, so memory follows size()
  // (plus one spare chunk while bytes are held; nothing once everything is
  // acknowledged), not capacity(). A chunk's storage is allocated once with its
  // full size, so appending to the tail never moves bytes already handed out.
  // Chunks are shared-owned: a PayloadPart keeps its chunk alive. Every live
  // chunk but the last is full; `fill` is the number of bytes written. Vectors
  // with a moving front index (compacted lazily) instead of deques: an empty
  // buffer allocates nothing.
  static constexpr std::size_t chunk_size = 16 * 1024;
  struct Chunk {
    std::size_t fill = 0;
    std::array<std::uint8_t, chunk_size> bytes;  // [0, fill) written, immutable after
  };

  // Calls visit(stream, chunk, index, n) for each run of [offset, end) that
  // lies in one chunk and one stream.
  template <class Visit>
  void visit_runs(std::uint64_t offset, Visit&& visit) const;
  void store(ByteView data);
  void release_all() noexcept;

  std::size_t capacity_;
  std::uint64_t start_ = 0;
  std::size_t size_ = 0;
  std::size_t head_ = 0;                        // index of start_ inside chunks_[first_chunk_]
  std::size_t first_chunk_ = 0;                 // chunks_[0, first_chunk_) are released
  std::vector<std::shared_ptr<Chunk>> chunks_;  // implementation detail; the API is the contract
  std::shared_ptr<Chunk> spare_;                // one emptied chunk nobody else references (reused)
  std::size_t first_run_ = 0;                   // runs_[0, first_run_) are trimmed
  std::vector<Run> runs_;  // non-empty, ordered, adjacent runs differ in stream
};

}  // namespace mana::core
