// Unit tests for mana/core/replay_buffer.hpp: capacity bound, ack trimming and
// exact replay of bytes with their stream tags.
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mana/core/replay_buffer.hpp"

using mana::core::Bytes;
using mana::core::ByteView;
using mana::core::Errc;
using mana::core::Origin;
using mana::core::ReplayBuffer;
using mana::core::Stream;

namespace {

constexpr std::size_t chunk = 16 * 1024;  // the implementation's chunk size

ByteView view(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

Bytes pattern(std::size_t n, std::uint8_t seed) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i)
    b[i] = static_cast<std::uint8_t>(seed + i * 7);
  return b;
}

struct Segment {
  Stream stream;
  std::string bytes;
};

// The callback sequence, verbatim.
std::vector<Segment> replay(const ReplayBuffer& rb, std::uint64_t offset) {
  std::vector<Segment> out;
  rb.for_each_from(offset, [&](Stream s, ByteView v) {
    out.push_back(Segment{s, std::string(v.begin(), v.end())});
  });
  return out;
}

// The callback sequence with adjacent same-stream segments joined (chunk
// splits are allowed, so only the joined form is exact).
std::vector<Segment> replay_joined(const ReplayBuffer& rb, std::uint64_t offset) {
  std::vector<Segment> out;
  for (Segment& s : replay(rb, offset)) {
    REQUIRE_FALSE(s.bytes.empty());
    if (!out.empty() && out.back().stream == s.stream) {
      out.back().bytes += s.bytes;
    } else {
      out.push_back(std::move(s));
    }
  }
  return out;
}

// Deterministic 64-bit LCG (Knuth MMIX constants); upper bits as output.
class Lcg {
 public:
  explicit Lcg(std::uint64_t seed) : state_(seed) {}
  std::uint32_t next() {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::uint32_t>(state_ >> 33);
  }
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }

 private:
  std::uint64_t state_;
};

}  // namespace

TEST_CASE("ReplayBuffer starts empty at offset 0", "[resume]") {
  const ReplayBuffer rb(1000);
  CHECK(rb.start_offset() == 0);
  CHECK(rb.end_offset() == 0);
  CHECK(rb.size() == 0);
  CHECK(rb.capacity() == 1000);
  CHECK(rb.can_replay_from(0));
  CHECK_FALSE(rb.can_replay_from(1));
  CHECK(replay(rb, 0).empty());
}

TEST_CASE("ReplayBuffer enforces its capacity exactly", "[resume]") {
  ReplayBuffer rb(100);
  const Bytes data = pattern(100, 1);
  REQUIRE(rb.append(Stream::out, ByteView(data).first(60)).ok());
  REQUIRE(rb.append(Stream::err, ByteView(data).subspan(60)).ok());  // exactly full
  CHECK(rb.size() == 100);
  CHECK(rb.size() == rb.capacity());

  const Bytes one = {0xff};
  const auto r = rb.append(Stream::out, one);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::buffer_full);
  CHECK(r.error().origin == Origin::local);
  CHECK(rb.size() == 100);  // nothing appended
  CHECK(rb.end_offset() == 100);
  REQUIRE(rb.append(Stream::out, ByteView{}).ok());  // empty append always fits

  REQUIRE(rb.ack(50).ok());
  REQUIRE_FALSE(rb.append(Stream::out, pattern(51, 0)).ok());  // all or nothing
  CHECK(rb.size() == 50);
  REQUIRE(rb.append(Stream::out, pattern(50, 9)).ok());
  CHECK(rb.size() == 100);
  CHECK(rb.end_offset() == 150);
  REQUIRE_FALSE(rb.append(Stream::out, one).ok());

  ReplayBuffer zero(0);
  REQUIRE_FALSE(zero.append(Stream::out, one).ok());
  REQUIRE(zero.append(Stream::out, ByteView{}).ok());
  CHECK(zero.size() == 0);
}

TEST_CASE("ReplayBuffer capacity holds across chunk boundaries", "[resume]") {
  const std::size_t cap = 3 * chunk + 123;
  ReplayBuffer rb(cap);
  const Bytes big = pattern(cap, 3);
  REQUIRE(rb.append(Stream::out, big).ok());
  CHECK(rb.size() == cap);
  REQUIRE_FALSE(rb.append(Stream::err, pattern(1, 0)).ok());

  std::string all;
  for (const Segment& s : replay(rb, 0)) {
    CHECK(s.stream == Stream::out);
    CHECK(s.bytes.size() <= chunk);
    all += s.bytes;
  }
  CHECK(all == std::string(big.begin(), big.end()));
}

TEST_CASE("ReplayBuffer ack trims and frees the acknowledged bytes", "[resume]") {
  const std::size_t cap = 4 * chunk;
  ReplayBuffer rb(cap);
  const Bytes data = pattern(cap, 5);
  REQUIRE(rb.append(Stream::out, data).ok());

  REQUIRE(rb.ack(chunk + 10).ok());
  CHECK(rb.start_offset() == chunk + 10);
  CHECK(rb.size() == 3 * chunk - 10);
  CHECK(rb.end_offset() == cap);
  CHECK_FALSE(rb.can_replay_from(chunk + 9));
  CHECK(rb.can_replay_from(chunk + 10));

  // The room freed by the ack is usable again, and no more than it.
  REQUIRE(rb.append(Stream::err, pattern(chunk + 10, 6)).ok());
  CHECK(rb.size() == cap);
  REQUIRE_FALSE(rb.append(Stream::err, pattern(1, 0)).ok());

  REQUIRE(rb.ack(rb.end_offset()).ok());  // everything acknowledged
  CHECK(rb.size() == 0);
  CHECK(rb.start_offset() == cap + chunk + 10);
  CHECK(rb.start_offset() == rb.end_offset());
  CHECK(replay(rb, rb.end_offset()).empty());

  // Offsets keep counting after the buffer drained.
  REQUIRE(rb.append(Stream::out, view("tail")).ok());
  CHECK(rb.end_offset() == cap + chunk + 10 + 4);
  const auto segs = replay(rb, rb.start_offset());
  REQUIRE(segs.size() == 1);
  CHECK(segs[0].stream == Stream::out);
  CHECK(segs[0].bytes == "tail");
}

TEST_CASE("ReplayBuffer ignores stale acks and rejects acks past the end", "[resume]") {
  ReplayBuffer rb(100);
  REQUIRE(rb.append(Stream::out, view("0123456789")).ok());
  REQUIRE(rb.ack(4).ok());
  CHECK(rb.start_offset() == 4);

  REQUIRE(rb.ack(2).ok());  // stale
  REQUIRE(rb.ack(4).ok());  // duplicate
  CHECK(rb.start_offset() == 4);
  CHECK(rb.size() == 6);

  const auto r = rb.ack(11);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::out_of_range);
  CHECK(r.error().origin == Origin::remote);
  CHECK(rb.start_offset() == 4);  // unchanged
  CHECK(rb.size() == 6);
  REQUIRE_FALSE(rb.ack(UINT64_MAX).ok());

  REQUIRE(rb.ack(10).ok());  // exactly the end
  CHECK(rb.size() == 0);
}

TEST_CASE("ReplayBuffer keeps stream tags and merges adjacent runs", "[resume]") {
  ReplayBuffer rb(100);
  REQUIRE(rb.append(Stream::out, view("ab")).ok());
  REQUIRE(rb.append(Stream::out, view("cd")).ok());
  REQUIRE(rb.append(Stream::err, view("ef")).ok());
  REQUIRE(rb.append(Stream::err, ByteView{}).ok());  // creates no run
  REQUIRE(rb.append(Stream::out, view("g")).ok());

  auto segs = replay(rb, 0);
  REQUIRE(segs.size() == 3);
  CHECK(segs[0].stream == Stream::out);
  CHECK(segs[0].bytes == "abcd");
  CHECK(segs[1].stream == Stream::err);
  CHECK(segs[1].bytes == "ef");
  CHECK(segs[2].stream == Stream::out);
  CHECK(segs[2].bytes == "g");

  segs = replay(rb, 3);  // from the middle of a run
  REQUIRE(segs.size() == 3);
  CHECK(segs[0].bytes == "d");
  CHECK(segs[1].bytes == "ef");
  CHECK(segs[2].bytes == "g");

  segs = replay(rb, 4);  // exactly at a run boundary
  REQUIRE(segs.size() == 2);
  CHECK(segs[0].stream == Stream::err);
  CHECK(segs[0].bytes == "ef");

  CHECK(replay(rb, 7).empty());  // at the end: nothing to resend

  REQUIRE(rb.ack(5).ok());  // trims inside the err run
  segs = replay(rb, 5);
  REQUIRE(segs.size() == 2);
  CHECK(segs[0].stream == Stream::err);
  CHECK(segs[0].bytes == "f");
  CHECK(segs[1].stream == Stream::out);
  CHECK(segs[1].bytes == "g");
}

TEST_CASE("ReplayBuffer clear restarts at a new offset", "[resume]") {
  ReplayBuffer rb(100);
  REQUIRE(rb.append(Stream::out, view("hello")).ok());
  REQUIRE(rb.append(Stream::err, view("oops")).ok());
  rb.clear(1000);
  CHECK(rb.start_offset() == 1000);
  CHECK(rb.end_offset() == 1000);
  CHECK(rb.size() == 0);
  CHECK(rb.can_replay_from(1000));
  CHECK_FALSE(rb.can_replay_from(9));
  CHECK(replay(rb, 1000).empty());

  REQUIRE(rb.append(Stream::err, view("x")).ok());
  REQUIRE(rb.append(Stream::out, view("yz")).ok());
  const auto segs = replay(rb, 1000);
  REQUIRE(segs.size() == 2);
  CHECK(segs[0].stream == Stream::err);
  CHECK(segs[0].bytes == "x");
  CHECK(segs[1].stream == Stream::out);
  CHECK(segs[1].bytes == "yz");
  REQUIRE(rb.ack(1001).ok());
  REQUIRE_FALSE(rb.ack(1004).ok());

  rb.clear(0);  // back to the beginning
  CHECK(rb.start_offset() == 0);
  CHECK(rb.size() == 0);
  REQUIRE(rb.append(Stream::out, pattern(100, 0)).ok());  // full capacity again
}

TEST_CASE("ReplayBuffer copies are independent", "[resume]") {
  ReplayBuffer a(chunk * 2);
  REQUIRE(a.append(Stream::out, pattern(chunk + 5, 1)).ok());
  ReplayBuffer b = a;
  REQUIRE(b.append(Stream::err, view("more")).ok());
  REQUIRE(a.ack(chunk).ok());
  CHECK(a.size() == 5);
  CHECK(b.size() == chunk + 9);
  const auto segs = replay_joined(b, chunk + 5);
  REQUIRE(segs.size() == 1);
  CHECK(segs[0].stream == Stream::err);
  CHECK(segs[0].bytes == "more");
}

TEST_CASE("ReplayBuffer replays exactly from any offset (randomized vs a reference model)",
          "[resume]") {
  // Reference model: every byte still held, with its tag, and the absolute
  // offset of the first one.
  struct Model {
    std::uint64_t start = 0;
    Bytes bytes;
    std::vector<Stream> tags;
  };

  Lcg rng(0x6d616e61);  // fixed seed: failures reproduce
  const std::size_t cap = 5 * chunk + 777;
  ReplayBuffer rb(cap);
  Model m;
  std::uint8_t next_byte = 0;
  int appends = 0;
  int rejected = 0;
  int replays = 0;

  for (int op = 0; op < 6000; ++op) {
    const std::uint32_t kind = rng.below(100);
    if (kind < 50) {
      // Mostly small writes, sometimes larger than a chunk.
      const std::size_t n = rng.below(4) == 0 ? rng.below(3 * chunk) : rng.below(600);
      const Stream s = rng.below(3) == 0 ? Stream::err : Stream::out;
      Bytes data(n);
      for (auto& b : data)
        b = next_byte++;
      const bool fits = m.bytes.size() + n <= cap;
      const auto r = rb.append(s, data);
      REQUIRE(r.ok() == fits);
      if (fits) {
        m.bytes.insert(m.bytes.end(), data.begin(), data.end());
        m.tags.insert(m.tags.end(), n, s);
        ++appends;
      } else {
        CHECK(r.error().code == Errc::buffer_full);
        ++rejected;
      }
    } else if (kind < 75) {
      // Ack anywhere from a little before start to a little past end.
      const std::uint64_t end = m.start + m.bytes.size();
      const std::uint64_t lo = m.start > 200 ? m.start - 200 : 0;
      const std::uint64_t off = lo + rng.below(end + 200 - lo + 1);
      const auto r = rb.ack(off);
      REQUIRE(r.ok() == (off <= end));
      if (off > end) {
        CHECK(r.error().code == Errc::out_of_range);
      } else if (off > m.start) {
        const auto n = static_cast<std::ptrdiff_t>(off - m.start);
        m.bytes.erase(m.bytes.begin(), m.bytes.begin() + n);
        m.tags.erase(m.tags.begin(), m.tags.begin() + n);
        m.start = off;
      }
    } else if (kind < 99) {
      const std::uint64_t off = m.start + rng.below(m.bytes.size() + 1);
      REQUIRE(rb.can_replay_from(off));
      const auto skip = static_cast<std::size_t>(off - m.start);
      std::size_t pos = skip;
      std::size_t calls = 0;
      rb.for_each_from(off, [&](Stream s, ByteView v) {
        REQUIRE_FALSE(v.empty());
        REQUIRE(pos + v.size() <= m.bytes.size());
        std::size_t mismatches = 0;
        for (std::size_t i = 0; i < v.size(); ++i) {
          if (v[i] != m.bytes[pos + i] || s != m.tags[pos + i]) ++mismatches;
        }
        REQUIRE(mismatches == 0);
        pos += v.size();
        ++calls;
      });
      // Runs are merged: one call per stream change, plus at most one extra
      // split per chunk boundary crossed.
      std::size_t model_runs = 0;
      for (std::size_t i = skip; i < m.tags.size(); ++i) {
        if (i == skip || m.tags[i] != m.tags[i - 1]) ++model_runs;
      }
      const std::size_t left = m.bytes.size() - skip;
      CHECK(calls >= model_runs);
      CHECK(calls <= model_runs + left / chunk + 1);
      REQUIRE(pos == m.bytes.size());
      ++replays;
    } else {
      const std::uint64_t off = m.start + m.bytes.size() + rng.below(1000);
      rb.clear(off);
      m = Model{off, {}, {}};
    }

    REQUIRE(rb.size() <= rb.capacity());
    REQUIRE(rb.start_offset() == m.start);
    REQUIRE(rb.size() == m.bytes.size());
    REQUIRE(rb.end_offset() == m.start + m.bytes.size());
  }
  // The seed exercises every path.
  CHECK(appends > 1000);
  CHECK(rejected > 10);
  CHECK(replays > 1000);
}

// ---- shared parts (PayloadPart) ------------------------------------------------

namespace {

std::string joined(const std::vector<mana::core::PayloadPart>& parts) {
  std::string s;
  for (const auto& p : parts) {
    REQUIRE(p.owner);
    REQUIRE_FALSE(p.bytes.empty());
    s.append(p.bytes.begin(), p.bytes.end());
  }
  return s;
}

}  // namespace

TEST_CASE("ReplayBuffer append_shared hands back the appended bytes as parts", "[resume]") {
  ReplayBuffer rb(4 * chunk);
  std::vector<mana::core::PayloadPart> parts;
  const Bytes a = pattern(chunk - 10, 1);
  REQUIRE(rb.append_shared(Stream::out, a, parts).ok());
  CHECK(parts.size() == 1);
  CHECK(joined(parts) == std::string(a.begin(), a.end()));

  // Spans the tail of the first chunk, a whole chunk and the head of a third.
  parts.clear();
  const Bytes b = pattern(chunk + 30, 2);
  REQUIRE(rb.append_shared(Stream::err, b, parts).ok());
  CHECK(parts.size() == 3);
  for (const auto& p : parts)
    CHECK(p.bytes.size() <= chunk);
  CHECK(joined(parts) == std::string(b.begin(), b.end()));

  // Too large: an error and no parts.
  parts.clear();
  REQUIRE_FALSE(rb.append_shared(Stream::out, pattern(4 * chunk, 3), parts).ok());
  CHECK(parts.empty());
  CHECK(rb.size() == a.size() + b.size());

  // for_each_part_from yields exactly the bytes and streams for_each_from does.
  std::vector<Segment> seen;
  rb.for_each_part_from(5, [&](Stream s, mana::core::PayloadPart&& p) {
    REQUIRE(p.owner);
    seen.push_back(Segment{s, std::string(p.bytes.begin(), p.bytes.end())});
  });
  const std::vector<Segment> expected = replay(rb, 5);
  REQUIRE(seen.size() == expected.size());
  for (std::size_t i = 0; i < seen.size(); ++i) {
    CHECK(seen[i].stream == expected[i].stream);
    CHECK(seen[i].bytes == expected[i].bytes);
  }
}

// The use-after-free shared payloads must exclude: the peer acknowledges
// (possibly bytes the host has not written to its socket yet) while parts are
// still queued for the write. The parts' memory must stay valid and unchanged
// even when the buffer is then reused for new bytes, cleared or destroyed.
// Under ASan (native-asan preset) a read of freed memory aborts the test.
TEST_CASE("ReplayBuffer parts outlive acks, reuse, clear and the buffer itself", "[resume]") {
  const std::size_t cap = 4 * chunk;
  std::vector<mana::core::PayloadPart> held;
  const Bytes first = pattern(3 * chunk + 77, 5);
  {
    ReplayBuffer rb(cap);
    REQUIRE(rb.append_shared(Stream::out, first, held).ok());
    REQUIRE(held.size() == 4);

    // Ack everything: the buffer drops all its chunks while the parts hold them.
    REQUIRE(rb.ack(rb.end_offset()).ok());
    CHECK(rb.size() == 0);
    CHECK(joined(held) == std::string(first.begin(), first.end()));

    // New bytes must land in fresh memory, not in the chunks still referenced.
    const Bytes second = pattern(cap, 9);
    std::vector<mana::core::PayloadPart> more;
    REQUIRE(rb.append_shared(Stream::err, second, more).ok());
    CHECK(joined(held) == std::string(first.begin(), first.end()));
    CHECK(joined(more) == std::string(second.begin(), second.end()));

    // Partial acks release (or recycle) only chunks nobody else references.
    REQUIRE(rb.ack(rb.start_offset() + 2 * chunk + 1).ok());
    REQUIRE(rb.append(Stream::out, pattern(2 * chunk, 11)).ok());
    CHECK(joined(more) == std::string(second.begin(), second.end()));
    more.clear();

    // The retransmit view: parts taken, then everything dropped.
    std::vector<mana::core::PayloadPart> resent;
    const std::uint64_t from = rb.start_offset();
    rb.for_each_part_from(from, [&](Stream, mana::core::PayloadPart&& p) { resent.push_back(p); });
    std::string before;
    rb.for_each_from(from, [&](Stream, ByteView v) { before.append(v.begin(), v.end()); });
    rb.clear(rb.end_offset());
    REQUIRE(rb.append(Stream::out, pattern(cap, 13)).ok());
    CHECK(joined(resent) == before);
    held.insert(held.end(), resent.begin(), resent.end());
  }
  // The buffer is gone; its parts are still readable.
  CHECK(joined(held).substr(0, first.size()) == std::string(first.begin(), first.end()));
}

TEST_CASE("ReplayBuffer keeps working when parts are released in any order", "[resume]") {
  Lcg rng(77);
  ReplayBuffer rb(6 * chunk);
  std::vector<std::pair<std::string, std::vector<mana::core::PayloadPart>>> live;
  std::uint64_t written = 0;
  for (int step = 0; step < 500; ++step) {
    const std::size_t room = rb.capacity() - rb.size();
    const std::size_t n =
        static_cast<std::size_t>(rng.below(std::min<std::size_t>(room, 3 * chunk) + 1));
    if (n > 0) {
      std::vector<mana::core::PayloadPart> parts;
      const Bytes data = pattern(n, static_cast<std::uint8_t>(step));
      REQUIRE(rb.append_shared(rng.below(2) == 0 ? Stream::out : Stream::err, data, parts).ok());
      written += n;
      live.emplace_back(std::string(data.begin(), data.end()), std::move(parts));
    }
    if (rng.below(3) == 0) REQUIRE(rb.ack(rb.start_offset() + rng.below(rb.size() + 1)).ok());
    if (!live.empty() && rng.below(2) == 0) {
      const auto i = static_cast<std::ptrdiff_t>(rng.below(live.size()));
      CHECK(joined(live[static_cast<std::size_t>(i)].second) ==
            live[static_cast<std::size_t>(i)].first);
      live.erase(live.begin() + i);
    }
  }
  for (const auto& [bytes, parts] : live)
    CHECK(joined(parts) == bytes);
  CHECK(rb.end_offset() == written);
}
