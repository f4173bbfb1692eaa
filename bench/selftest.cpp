// Checks the generator and the hash the benchmarks rely on (see stream_data.hpp).
#include "selftest.hpp"

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_util.hpp"
#include "stream_data.hpp"

namespace mana::bench {

int run_selftest() {
  std::vector<std::string> failures;
  const Generator& g = generator();
  // Determinism: a second generator with the same seed gives the same bytes; another seed not.
  const Generator again(stream_seed);
  const Generator other(stream_seed + 1);
  bool same = true;
  bool differs = false;
  for (std::uint64_t off = 0; off < 3 * block_size; off += 4093) {
    same = same && g.at(off) == again.at(off);
    differs = differs || g.at(off) != other.at(off);
  }
  if (!same) failures.emplace_back("generator is not deterministic");
  if (!differs) failures.emplace_back("generator ignores its seed");
  if (g.view(block_size - 10, 20)[15] != g.at(5))
    failures.emplace_back("generator views do not wrap at the block size");

  // Split invariance: random chunkings of a 3 MiB + 5 stream give the one-shot digest.
  const std::uint64_t n = 3 * block_size + 5;
  const std::uint64_t whole = expected_digest(n);
  std::mt19937_64 rng(12345);
  for (int round = 0; round < 200; ++round) {
    StreamHasher h;
    std::uint64_t off = 0;
    const std::uint64_t max_chunk = round % 4 == 0 ? 16 : (round % 4 == 1 ? 4096 : block_size);
    while (off < n) {
      std::uint64_t len = 1 + rng() % max_chunk;
      if (len > n - off) len = n - off;
      h.update(g.view(off, static_cast<std::size_t>(len)));
      off += len;
    }
    if (h.digest() != whole) {
      failures.push_back("split round " + std::to_string(round) + " gave another digest");
      break;
    }
  }
  // Sensitivity: one flipped bit, a dropped byte, swapped words and an appended zero all change
  // the digest.
  std::vector<std::uint8_t> buf(g.view(0, 4096).begin(), g.view(0, 4096).end());
  auto digest_of = [](const std::vector<std::uint8_t>& v) {
    StreamHasher h;
    h.update(ByteView(v.data(), v.size()));
    return h.digest();
  };
  const std::uint64_t base = digest_of(buf);
  if (base != expected_digest(4096)) failures.emplace_back("copy digest differs");
  auto flipped = buf;
  flipped[1000] ^= 0x10;
  std::vector<std::uint8_t> dropped(buf.begin(), buf.begin() + 77);
  dropped.insert(dropped.end(), buf.begin() + 78, buf.end());
  auto swapped = buf;
  std::swap_ranges(swapped.begin(), swapped.begin() + 8, swapped.begin() + 8);
  auto longer = buf;
  longer.push_back(0);
  if (digest_of(flipped) == base) failures.emplace_back("bit flip not detected");
  if (digest_of(dropped) == base) failures.emplace_back("dropped byte not detected");
  if (digest_of(swapped) == base) failures.emplace_back("swapped words not detected");
  if (digest_of(longer) == base) failures.emplace_back("appended zero byte not detected");
  if (expected_digest(0) == expected_digest(1)) failures.emplace_back("length not hashed");

  // Speed (informative): the hash over 256 MiB.
  const auto t0 = Clock::now();
  const std::uint64_t big = expected_digest(256ULL << 20);
  const double secs = seconds_between(t0, Clock::now());

  nlohmann::json j{{"op", "selftest"},
                   {"ok", failures.empty()},
                   {"failures", failures},
                   {"hash_gbps", secs > 0 ? 256.0 * 1048576 / secs / 1e9 : 0},
                   {"digest_256mib", to_hex(big)}};
  print_line(j.dump());
  for (const auto& f : failures)
    std::fprintf(stderr, "mana-bench selftest: %s\n", f.c_str());
  return failures.empty() ? 0 : 1;
}

}  // namespace mana::bench
