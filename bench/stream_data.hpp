// The benchmark byte stream: what every mana-bench source sends and every client verifies.
//
// Data: a fixed 1 MiB block of splitmix64 output (seed `stream_seed`), repeated; byte `p` of a
// stream is block[p % block_size]. The block is stored twice in a row so that any run of up to
// block_size bytes starting anywhere in it is contiguous (no per-byte work, no copies).
//
// Hash: a 64-bit position-dependent hash over little-endian 8-byte words. Word i (bytes 8i..8i+7
// of the stream) contributes mix(w ^ i * golden) to a running sum; the last partial word is
// zero-padded; the digest mixes in the byte count. Words are independent, so the loop pipelines,
// and StreamHasher::update() gives the same digest however the stream is split into chunks.
// It detects corruption, loss, duplication and reordering; it is not a cryptographic hash.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace mana::bench {

using ByteView = std::span<const std::uint8_t>;

inline constexpr std::uint64_t stream_seed = 0x6d616e612d62656eULL;  // "mana-ben"
inline constexpr std::size_t block_size = std::size_t{1} << 20;
inline constexpr std::string_view banner_line = "SSH-2.0-mana-bench\r\n";

inline std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The generated stream. One process-wide instance (generator()).
class Generator {
 public:
  explicit Generator(std::uint64_t seed = stream_seed) : data_(2 * block_size) {
    std::uint64_t state = seed;
    for (std::size_t i = 0; i < block_size; i += 8) {
      const std::uint64_t v = splitmix64(state);
      for (std::size_t b = 0; b < 8; ++b)
        data_[i + b] = static_cast<std::uint8_t>(v >> (8 * b));
    }
    std::memcpy(data_.data() + block_size, data_.data(), block_size);
  }

  // Bytes [offset, offset + len) of the stream; len <= block_size.
  [[nodiscard]] ByteView view(std::uint64_t offset, std::size_t len) const noexcept {
    return {data_.data() + (offset % block_size), len < block_size ? len : block_size};
  }
  [[nodiscard]] std::uint8_t at(std::uint64_t offset) const noexcept {
    return data_[offset % block_size];
  }

 private:
  std::vector<std::uint8_t> data_;
};

inline const Generator& generator() {
  static const Generator g;
  return g;
}

class StreamHasher {
 public:
  void update(ByteView data) noexcept {
    const std::uint8_t* p = data.data();
    std::size_t n = data.size();
    bytes_ += n;
    if (partial_len_ > 0) {
      const std::size_t take = n < 8 - partial_len_ ? n : 8 - partial_len_;
      std::memcpy(partial_.data() + partial_len_, p, take);
      partial_len_ += take;
      p += take;
      n -= take;
      if (partial_len_ < 8) return;
      acc_ += mix(load(partial_.data()), words_++);
      partial_len_ = 0;
    }
    std::uint64_t acc0 = 0;
    std::uint64_t acc1 = 0;
    std::uint64_t i = words_;
    while (n >= 16) {
      acc0 += mix(load(p), i);
      acc1 += mix(load(p + 8), i + 1);
      i += 2;
      p += 16;
      n -= 16;
    }
    if (n >= 8) {
      acc0 += mix(load(p), i++);
      p += 8;
      n -= 8;
    }
    acc_ += acc0 + acc1;
    words_ = i;
    if (n > 0) {
      std::memcpy(partial_.data(), p, n);
      partial_len_ = n;
    }
  }

  [[nodiscard]] std::uint64_t digest() const noexcept {
    std::uint64_t acc = acc_;
    if (partial_len_ > 0) {
      std::array<std::uint8_t, 8> last{};
      std::memcpy(last.data(), partial_.data(), partial_len_);
      acc += mix(load(last.data()), words_);
    }
    return fmix(acc ^ fmix(bytes_ + 0x2545f4914f6cdd1dULL));
  }
  [[nodiscard]] std::uint64_t bytes() const noexcept { return bytes_; }

 private:
  static std::uint64_t load(const std::uint8_t* p) noexcept {
    std::uint64_t v = 0;
    std::memcpy(&v, p, 8);
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
    return v;
  }
  static std::uint64_t mix(std::uint64_t w, std::uint64_t index) noexcept {
    std::uint64_t x = (w ^ (index * 0x9e3779b97f4a7c15ULL)) * 0xbf58476d1ce4e5b9ULL;
    return x ^ (x >> 31);
  }
  static std::uint64_t fmix(std::uint64_t x) noexcept {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
  }

  std::uint64_t acc_ = 0;
  std::uint64_t words_ = 0;
  std::uint64_t bytes_ = 0;
  std::array<std::uint8_t, 8> partial_{};
  std::size_t partial_len_ = 0;
};

// Digest of the first `n` bytes of the generated stream.
inline std::uint64_t expected_digest(std::uint64_t n) {
  StreamHasher h;
  const Generator& g = generator();
  for (std::uint64_t off = 0; off < n;) {
    const std::uint64_t left = n - off;
    const std::size_t len = left < block_size ? static_cast<std::size_t>(left) : block_size;
    h.update(g.view(off, len));
    off += len;
  }
  return h.digest();
}

inline std::string to_hex(std::uint64_t v) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i) {
    s[static_cast<std::size_t>(i)] = digits[v & 0xf];
    v >>= 4;
  }
  return s;
}

}  // namespace mana::bench
