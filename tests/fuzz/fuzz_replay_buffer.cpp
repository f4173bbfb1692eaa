// libFuzzer target: drives a ReplayBuffer with a sequence of operations decoded
// from the input and checks it against a naive reference model after every
// step. Any mismatch or broken invariant traps.
//
// Input format (all integers little-endian; a truncated op ends the run):
//   [capacity u16]            capacity = value * 2 bytes (0 .. 131070, ~8 chunks)
//   then ops, each one byte `b` followed by its operands:
//     b % 5 == 0, 1  append   [len u16]; stream = err if (b & 0x08) else out;
//                             the bytes come from a generator, not the input
//     b % 5 == 2     ack      [x u16]; (b >> 3) % 4 picks the offset:
//                             0: start + x, 1: end - x (saturating), 2: end,
//                             3: end + 1 + (x & 0xff) (past the end)
//     b % 5 == 3     replay   [x u16]; from start + x % (size + 1)
//     b % 5 == 4     clear    [x u8]; clear(end + x)
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "mana/core/replay_buffer.hpp"

namespace {

using mana::core::ByteView;
using mana::core::Errc;
using mana::core::Origin;
using mana::core::ReplayBuffer;
using mana::core::Stream;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool u8(std::uint32_t& out) {
    if (pos_ + 1 > size_) return false;
    out = data_[pos_++];
    return true;
  }
  bool u16(std::uint32_t& out) {
    if (pos_ + 2 > size_) return false;
    out = static_cast<std::uint32_t>(data_[pos_] | (data_[pos_ + 1] << 8));
    pos_ += 2;
    return true;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// Naive model: every byte still held and its stream, contiguous; head is the
// index of start (compacted lazily so acks stay cheap).
struct Model {
  std::uint64_t start = 0;
  std::size_t head = 0;
  std::vector<std::uint8_t> bytes;
  std::vector<Stream> tags;
  [[nodiscard]] std::size_t size() const { return bytes.size() - head; }
  [[nodiscard]] std::uint64_t end() const { return start + size(); }
  void drop_front(std::size_t n) {
    head += n;
    start += n;
    if (head > bytes.size() / 2) {
      bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(head));
      tags.erase(tags.begin(), tags.begin() + static_cast<std::ptrdiff_t>(head));
      head = 0;
    }
  }
};

void check_invariants(const ReplayBuffer& rb, const Model& m) {
  check(rb.size() <= rb.capacity());
  check(rb.start_offset() <= rb.end_offset());
  check(rb.end_offset() - rb.start_offset() == rb.size());
  check(rb.start_offset() == m.start);
  check(rb.size() == m.size());
  check(rb.can_replay_from(m.start));
  check(rb.can_replay_from(m.end()));
  check(!rb.can_replay_from(m.end() + 1));
  check(m.start == 0 || !rb.can_replay_from(m.start - 1));
}

void check_replay(const ReplayBuffer& rb, const Model& m, std::uint64_t offset) {
  const std::size_t skip = m.head + static_cast<std::size_t>(offset - m.start);
  std::size_t pos = skip;
  bool have_prev = false;
  Stream prev = Stream::out;
  std::size_t same_stream_splits = 0;
  rb.for_each_from(offset, [&](Stream s, ByteView v) {
    check(!v.empty());
    check(s == Stream::out || s == Stream::err);
    check(v.size() <= m.bytes.size() - pos);
    check(std::memcmp(v.data(), m.bytes.data() + pos, v.size()) == 0);
    for (std::size_t i = 0; i < v.size(); ++i)
      check(s == m.tags[pos + i]);
    if (have_prev && prev == s) ++same_stream_splits;
    have_prev = true;
    prev = s;
    pos += v.size();
  });
  check(pos == m.bytes.size());
  // Runs are merged; a run is only split where a 16 KiB chunk ends.
  check(same_stream_splits <= (m.bytes.size() - skip) / (16 * 1024) + 1);
}

struct State {
  std::uint32_t gen = 0x12345678;  // byte generator (LCG) state
  std::vector<std::uint8_t> buf;
};

// Applies one op; false when the input ends inside its operands.
bool apply(std::uint32_t op, Reader& in, ReplayBuffer& rb, Model& m, State& st) {
  std::uint32_t x = 0;
  switch (op % 5) {
    case 0:
    case 1: {
      if (!in.u16(x)) return false;
      const Stream s = (op & 0x08) != 0 ? Stream::err : Stream::out;
      const bool fits = m.size() + x <= rb.capacity();
      st.buf.resize(x);
      if (fits) {  // contents of a rejected append do not matter
        for (auto& b : st.buf) {
          st.gen = st.gen * 1664525u + 1013904223u;
          b = static_cast<std::uint8_t>(st.gen >> 24);
        }
      }
      const auto r = rb.append(s, st.buf);
      check(r.ok() == fits);
      if (fits) {
        m.bytes.insert(m.bytes.end(), st.buf.begin(), st.buf.end());
        m.tags.insert(m.tags.end(), x, s);
      } else {
        check(r.error().code == Errc::buffer_full && r.error().origin == Origin::local);
      }
      break;
    }
    case 2: {
      if (!in.u16(x)) return false;
      std::uint64_t off = 0;
      switch ((op >> 3) % 4) {
        case 0:
          off = m.start + x;
          break;
        case 1:
          off = m.end() >= x ? m.end() - x : 0;
          break;
        case 2:
          off = m.end();
          break;
        default:
          off = m.end() + 1 + (x & 0xff);
          break;
      }
      const auto r = rb.ack(off);
      if (off > m.end()) {
        check(!r.ok());
        check(r.error().code == Errc::out_of_range && r.error().origin == Origin::remote);
      } else {
        check(r.ok());
        if (off > m.start) m.drop_front(static_cast<std::size_t>(off - m.start));
      }
      break;
    }
    case 3: {
      if (!in.u16(x)) return false;
      const std::uint64_t off = m.start + x % (m.size() + 1);
      check(rb.can_replay_from(off));
      check_replay(rb, m, off);
      break;
    }
    default: {
      if (!in.u8(x)) return false;
      const std::uint64_t off = m.end() + x;
      rb.clear(off);
      m = Model{};
      m.start = off;
      break;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Reader in(data, size);
  std::uint32_t cap = 0;
  if (!in.u16(cap)) return 0;
  ReplayBuffer rb(static_cast<std::size_t>(cap) * 2);
  Model m;
  State st;
  std::uint32_t op = 0;
  while (in.u8(op) && apply(op, in, rb, m, st)) {
    check_invariants(rb, m);
  }
  // Always finish with a full replay from the start, of the buffer and a copy.
  check_replay(rb, m, m.start);
  const ReplayBuffer copy = rb;
  check_invariants(copy, m);
  check_replay(copy, m, m.start);
  return 0;
}
