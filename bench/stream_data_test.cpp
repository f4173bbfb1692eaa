// Unit tests of the benchmark stream (stream_data.hpp): the digest does not depend on how the
// stream is split, it changes with content, order and length, and the generator is fixed.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <vector>

#include "bench_util.hpp"
#include "stream_data.hpp"

using mana::bench::block_size;
using mana::bench::ByteView;
using mana::bench::expected_digest;
using mana::bench::generator;
using mana::bench::StreamHasher;

namespace {

std::uint64_t digest_of(const std::vector<std::uint8_t>& v) {
  StreamHasher h;
  h.update(ByteView(v.data(), v.size()));
  return h.digest();
}

}  // namespace

TEST_CASE("stream digest is the same for every split", "[bench]") {
  const std::uint64_t n = 2 * block_size + 13;
  const std::uint64_t whole = expected_digest(n);
  std::mt19937_64 rng(7);
  for (const std::uint64_t max_chunk : {1ULL, 7ULL, 9ULL, 4096ULL, 65536ULL + 3, 1ULL << 20}) {
    StreamHasher h;
    std::uint64_t off = 0;
    while (off < n) {
      const std::uint64_t len = std::min<std::uint64_t>(1 + rng() % max_chunk, n - off);
      h.update(generator().view(off, static_cast<std::size_t>(len)));
      off += len;
    }
    CHECK(h.bytes() == n);
    CHECK(h.digest() == whole);
  }
}

TEST_CASE("stream digest detects changed, lost, reordered and extra bytes", "[bench]") {
  const ByteView v = generator().view(0, 1000);
  const std::vector<std::uint8_t> base(v.begin(), v.end());
  const std::uint64_t d = digest_of(base);
  CHECK(d == expected_digest(1000));
  for (std::size_t pos : {std::size_t{0}, std::size_t{7}, std::size_t{500}, std::size_t{999}}) {
    auto flipped = base;
    flipped[pos] ^= 1;
    CHECK(digest_of(flipped) != d);
    std::vector<std::uint8_t> lost(base.begin(), base.begin() + static_cast<std::ptrdiff_t>(pos));
    lost.insert(lost.end(), base.begin() + static_cast<std::ptrdiff_t>(pos + 1), base.end());
    CHECK(digest_of(lost) != d);
  }
  auto swapped = base;
  std::swap_ranges(swapped.begin() + 16, swapped.begin() + 24, swapped.begin() + 24);
  CHECK(digest_of(swapped) != d);
  auto longer = base;
  longer.push_back(0);
  CHECK(digest_of(longer) != d);
  CHECK(expected_digest(0) != expected_digest(1));
}

TEST_CASE("generator is deterministic and wraps at the block size", "[bench]") {
  const mana::bench::Generator again(mana::bench::stream_seed);
  for (std::uint64_t off = 0; off < 2 * block_size; off += 997)
    REQUIRE(again.at(off) == generator().at(off));
  const ByteView across = generator().view(block_size - 4, 8);
  CHECK(across[4] == generator().at(0));
  CHECK(across[7] == generator().at(3));
  // Another seed gives another stream.
  const mana::bench::Generator other(mana::bench::stream_seed + 1);
  CHECK(other.at(0) != generator().at(0));
}

TEST_CASE("size and address parsing", "[bench]") {
  CHECK(mana::bench::parse_size("64Mi") == 64ULL << 20);
  CHECK(mana::bench::parse_size("1k") == 1000);
  CHECK_THROWS_AS(mana::bench::parse_size("12x"), mana::bench::UsageError);
  const auto hp = mana::bench::parse_host_port("127.0.0.1:8022");
  CHECK(hp.host == "127.0.0.1");
  CHECK(hp.port == 8022);
  const auto u = mana::bench::parse_ws_url("ws://127.0.0.1:9000/relay");
  CHECK(u.port == "9000");
  CHECK(u.host_header() == "127.0.0.1:9000");
  CHECK_THROWS_AS(mana::bench::parse_ws_url("wss://127.0.0.1/"), mana::bench::UsageError);
  CHECK_THROWS_AS(mana::bench::parse_ws_url("ws://u:p@127.0.0.1/"), mana::bench::UsageError);
  CHECK(u.path == "/relay");
  mana::bench::SourcePool pool("127.0.0.2-127.0.0.4");
  CHECK(pool.size() == 3);
  CHECK(pool.next().to_string() == "127.0.0.2");
  CHECK(mana::bench::jain_index({1, 1, 1}) == Approx(1.0));
  CHECK(mana::bench::jain_index({1, 0}) == Approx(0.5));
}
