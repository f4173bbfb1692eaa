// SmallQueue: FIFO order across wrap-around and growth, pop_back, no storage
// while empty, element lifetimes (every constructed element destroyed once),
// copies and moves, and heap buffers of elements staying put when it grows
// (hosts write from them while more messages are queued).
#include <catch2/catch.hpp>

#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "mana/core/small_queue.hpp"

using mana::core::SmallQueue;

namespace {

// Counts live instances to check that every element is destroyed exactly once.
struct Tracked {
  static inline int live = 0;
  int v = 0;
  explicit Tracked(int x) : v(x) { ++live; }
  Tracked(const Tracked& o) : v(o.v) { ++live; }
  Tracked(Tracked&& o) noexcept : v(o.v) { ++live; }
  Tracked& operator=(const Tracked&) = default;
  Tracked& operator=(Tracked&&) noexcept = default;
  ~Tracked() { --live; }
};

}  // namespace

TEST_CASE("an empty SmallQueue owns no storage, before and after use", "[small_queue]") {
  SmallQueue<std::string> q;
  CHECK(q.empty());
  CHECK(q.capacity() == 0);
  q.push_back("a");
  q.push_back("b");
  CHECK(q.capacity() > 0);
  q.pop_front();
  CHECK(q.capacity() > 0);
  q.pop_front();
  CHECK(q.empty());
  CHECK(q.capacity() == 0);
  q.push_back("c");
  q.pop_back();
  CHECK(q.capacity() == 0);
  q.push_back("d");
  q.clear();
  CHECK(q.capacity() == 0);
  CHECK(q.begin() == q.end());
}

TEST_CASE("SmallQueue behaves like std::deque under random push/pop", "[small_queue]") {
  std::mt19937 rng(12345);
  SmallQueue<std::string> q;
  std::deque<std::string> ref;
  for (int step = 0; step < 20000; ++step) {
    const auto op = rng() % 10;
    if (op < 5 || ref.empty()) {
      // Long enough to live on the heap (not in the small-string buffer).
      std::string s = "element-" + std::to_string(step) + "-padding-padding";
      q.push_back(s);
      ref.push_back(s);
    } else if (op < 8) {
      REQUIRE(q.front() == ref.front());
      q.pop_front();
      ref.pop_front();
    } else if (op < 9) {
      REQUIRE(q.back() == ref.back());
      q.pop_back();
      ref.pop_back();
    } else {
      const auto i = rng() % ref.size();
      REQUIRE(q[i] == ref[i]);
    }
    REQUIRE(q.size() == ref.size());
    REQUIRE(q.empty() == ref.empty());
    if (ref.empty()) REQUIRE(q.capacity() == 0);
  }
  REQUIRE(std::vector<std::string>(q.begin(), q.end()) ==
          std::vector<std::string>(ref.begin(), ref.end()));
}

TEST_CASE("SmallQueue destroys every element exactly once", "[small_queue]") {
  Tracked::live = 0;
  {
    SmallQueue<Tracked> q;
    for (int i = 0; i < 37; ++i)
      q.emplace_back(i);
    for (int i = 0; i < 10; ++i)
      q.pop_front();
    for (int i = 0; i < 20; ++i)
      q.push_back(Tracked(100 + i));  // wraps, then grows
    CHECK(Tracked::live == 47);
    CHECK(q.front().v == 10);
    CHECK(q.back().v == 119);

    SmallQueue<Tracked> copy(q);
    CHECK(Tracked::live == 94);
    SmallQueue<Tracked> moved(std::move(copy));
    CHECK(Tracked::live == 94);
    CHECK(copy.empty());  // NOLINT(bugprone-use-after-move,hicpp-invalid-access-moved)
    CHECK(copy.capacity() == 0);
    CHECK(moved.size() == 47);
    CHECK(moved[0].v == 10);
    CHECK(moved[46].v == 119);

    moved = q;  // copy assignment replaces the elements
    CHECK(Tracked::live == 94);
    q.clear();
    CHECK(Tracked::live == 47);
    q = std::move(moved);
    CHECK(Tracked::live == 47);
    CHECK(q.size() == 47);
  }
  CHECK(Tracked::live == 0);
}

TEST_CASE("SmallQueue growth keeps the heap buffers elements own", "[small_queue]") {
  // Connection and Relay write from the front element's buffer while pushing more.
  SmallQueue<std::vector<std::uint8_t>> q;
  q.push_back(std::vector<std::uint8_t>(4096, 7));
  const std::uint8_t* front_data = q.front().data();
  for (int i = 0; i < 100; ++i)
    q.push_back(std::vector<std::uint8_t>(16, static_cast<std::uint8_t>(i)));
  CHECK(q.capacity() >= 101);
  CHECK(q.front().data() == front_data);
  CHECK(q.front().size() == 4096);
  CHECK(q.back()[0] == 99);
}

TEST_CASE("SmallQueue push_back of one of its own elements while growing", "[small_queue]") {
  SmallQueue<std::string> q;
  for (int i = 0; i < 4; ++i)
    q.push_back("a long string, element " + std::to_string(i));
  REQUIRE(q.size() == q.capacity());  // the next push grows
  q.push_back(q.front());
  q.push_back(q[2]);
  REQUIRE(q.size() == 6);
  CHECK(q[4] == "a long string, element 0");
  CHECK(q[5] == "a long string, element 2");
}
