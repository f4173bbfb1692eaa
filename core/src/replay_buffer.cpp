// ReplayBuffer: unacknowledged sent bytes with their stream tags. See
// mana/core/replay_buffer.hpp for the contract.
//
// Layout: bytes are stored in chunks of chunk_size bytes. Position p (counted
// from the first slot of chunks_[first_chunk_]) holds absolute offset
// start_ + (p - head_), so offset o lives in chunk first_chunk_ + (head_ + o -
// start_) / chunk_size at index (head_ + o - start_) % chunk_size. Every live
// chunk except the last one is full. Stream tags are kept apart as runs (end
// offsets), merged when the same stream is appended twice in a row.
//
// Sharing: a chunk's bytes [0, fill) are never written again. New bytes only
// go to the tail chunk past its fill, or to a fresh chunk; a chunk is reused
// (as spare_) only when the buffer holds the last reference to it, so bytes a
// PayloadPart still points at are never overwritten or freed.
//
// Both vectors drop elements from the front by advancing an index; the dead
// prefix is erased once it is at least half of the vector (amortised O(1)).
#include "mana/core/replay_buffer.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <utility>

namespace mana::core {
namespace {

template <class T>
void compact(std::vector<T>& v, std::size_t& first) noexcept {
  if (first > 0 && first * 2 >= v.size()) {
    v.erase(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(first));
    first = 0;
  }
}

}  // namespace

Result<void> ReplayBuffer::append(Stream stream, ByteView data) {
  if (data.size() > capacity_ - size_) {
    return make_error(Errc::buffer_full, Origin::local,
                      "replay buffer capacity exceeded (sender ignored credit)");
  }
  if (data.empty()) return {};

  store(data);
  size_ += data.size();
  const std::uint64_t end = end_offset();
  if (runs_.size() > first_run_ && runs_.back().stream == stream) {
    runs_.back().end = end;
  } else {
    runs_.push_back(Run{stream, end});
  }
  return {};
}

Result<void> ReplayBuffer::append_shared(Stream stream, ByteView data,
                                         std::vector<PayloadPart>& out) {
  const std::uint64_t from = end_offset();
  if (auto r = append(stream, data); !r) return r;
  visit_runs(from, [&out](Stream /*s*/, const std::shared_ptr<Chunk>& chunk, std::size_t index,
                          std::size_t n) {
    out.push_back(PayloadPart{chunk, ByteView(chunk->bytes.data() + index, n)});
  });
  return {};
}

void ReplayBuffer::store(ByteView data) {
  const std::uint8_t* src = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    if (chunks_.size() == first_chunk_ || chunks_.back()->fill == chunk_size) {
      if (spare_) {
        assert(spare_.use_count() == 1 && spare_->fill == 0);
        chunks_.push_back(std::move(spare_));
        spare_.reset();
      } else {
        // `new Chunk` (not make_shared, which value-initialises; make_shared_for_overwrite
        // is missing from Emscripten 3.1.6's libc++): the 16 KiB are not zero-filled.
        // NOLINTNEXTLINE(modernize-make-shared,cppcoreguidelines-owning-memory)
        chunks_.push_back(std::shared_ptr<Chunk>(new Chunk));
      }
    }
    Chunk& tail = *chunks_.back();
    const std::size_t n = std::min(left, chunk_size - tail.fill);
    std::memcpy(tail.bytes.data() + tail.fill, src, n);
    tail.fill += n;
    src += n;
    left -= n;
  }
}

Result<void> ReplayBuffer::ack(std::uint64_t offset) noexcept {
  if (offset > end_offset()) {
    return make_error(Errc::out_of_range, Origin::remote,
                      "acknowledged offset beyond the bytes sent");
  }
  if (offset <= start_) return {};  // stale (or no-op) ack

  const auto n = static_cast<std::size_t>(offset - start_);
  start_ = offset;
  size_ -= n;
  if (size_ == 0) {
    release_all();  // an idle buffer holds no memory
    return {};
  }

  while (runs_[first_run_].end <= start_)
    ++first_run_;  // size_ > 0: a run remains
  compact(runs_, first_run_);

  head_ += n;
  while (head_ >= chunk_size) {
    std::shared_ptr<Chunk>& done = chunks_[first_chunk_++];
    // Reuse the chunk only if no PayloadPart references it any more.
    if (!spare_ && done.use_count() == 1) {
      spare_ = std::move(done);
      spare_->fill = 0;
    }
    done.reset();
    head_ -= chunk_size;
  }
  compact(chunks_, first_chunk_);
  return {};
}

template <class Visit>
void ReplayBuffer::visit_runs(std::uint64_t offset, Visit&& visit) const {
  assert(can_replay_from(offset) && "ReplayBuffer: replay outside [start, end]");
  if (!can_replay_from(offset)) return;

  // First run that still has bytes at or after `offset`.
  const auto first = runs_.begin() + static_cast<std::ptrdiff_t>(first_run_);
  auto run = std::upper_bound(first, runs_.end(), offset,
                              [](std::uint64_t o, const Run& r) { return o < r.end; });
  std::uint64_t cur = offset;
  for (; run != runs_.end(); ++run) {
    while (cur < run->end) {
      const std::size_t pos = head_ + static_cast<std::size_t>(cur - start_);
      const std::size_t index = pos % chunk_size;
      const std::shared_ptr<Chunk>& chunk = chunks_[first_chunk_ + pos / chunk_size];
      const std::size_t n = std::min(static_cast<std::size_t>(run->end - cur), chunk->fill - index);
      visit(run->stream, chunk, index, n);
      cur += n;
    }
  }
}

void ReplayBuffer::for_each_from(std::uint64_t offset,
                                 const std::function<void(Stream, ByteView)>& visit) const {
  visit_runs(offset,
             [&visit](Stream s, const std::shared_ptr<Chunk>& chunk, std::size_t index,
                      std::size_t n) { visit(s, ByteView(chunk->bytes.data() + index, n)); });
}

void ReplayBuffer::for_each_part_from(
    std::uint64_t offset, const std::function<void(Stream, PayloadPart&&)>& visit) const {
  visit_runs(offset, [&visit](Stream s, const std::shared_ptr<Chunk>& chunk, std::size_t index,
                              std::size_t n) {
    visit(s, PayloadPart{chunk, ByteView(chunk->bytes.data() + index, n)});
  });
}

void ReplayBuffer::clear(std::uint64_t offset) noexcept {
  release_all();
  size_ = 0;
  start_ = offset;
}

void ReplayBuffer::release_all() noexcept {
  // Drops only this buffer's references: chunks still referenced by a
  // PayloadPart stay alive until that part goes. Move-assign empty vectors
  // (`= {}` would pick the initializer_list overload, which keeps the
  // allocation).
  chunks_ = std::vector<std::shared_ptr<Chunk>>();
  spare_.reset();
  runs_ = std::vector<Run>();
  first_chunk_ = 0;
  first_run_ = 0;
  head_ = 0;
}

}  // namespace mana::core
