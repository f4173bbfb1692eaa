// SPDX-License-Identifier: Apache-2.0
// RAND_METHOD and RAND_set_rand_method are deprecated in OpenSSL 3 and used on purpose here
// (ssh_engine_replay.hpp says why); this file is test code only.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "ssh_engine_replay.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>

namespace mana::ssh::test {
namespace {

std::uint64_t stream_state = 0;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)

// splitmix64: deterministic and fast; nothing here needs to be unpredictable.
std::uint64_t next_word() {
  std::uint64_t z = (stream_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31U);
}

int rand_bytes(unsigned char* buf, int num) {
  for (int i = 0; i < num; i += 8) {
    const std::uint64_t word = next_word();
    std::memcpy(buf + i, &word, static_cast<std::size_t>(std::min(8, num - i)));
  }
  return 1;
}
int rand_seed(const void* /*buf*/, int /*num*/) {
  return 1;
}
int rand_add(const void* /*buf*/, int /*num*/, double /*entropy*/) {
  return 1;
}
int rand_status() {
  return 1;
}

const RAND_METHOD deterministic_method = {rand_seed, rand_bytes, nullptr,
                                          rand_add,  rand_bytes, rand_status};

}  // namespace

void reset_deterministic_rand(std::uint64_t seed) {
  static const int installed = RAND_set_rand_method(&deterministic_method);
  (void)installed;
  stream_state = seed;
}

EngineConfig replay_config() {
  EngineConfig c;
  c.username = "fuzz";
  c.auth.push_back({AuthKind::password, "pw", {}});
  c.auth.push_back({AuthKind::keyboard_interactive, {}, {}});
  c.command = "true";
  return c;
}

FeedResult feed_as_server(SshEngine& e, const std::uint8_t* data, std::size_t size,
                          const std::function<void(const Event&)>& on_event) {
  constexpr std::size_t chunk_bytes = 512;
  FeedResult result;
  double now = 0;
  std::array<std::uint8_t, 4096> sink{};
  auto drain = [&] {
    while (auto ev = e.poll_event())
      on_event(*ev);
    result.max_output = std::max(result.max_output, e.output_bytes());
    while (e.take_output(sink.data(), sink.size()) > 0) {
    }
    (void)e.take_input_consumed();
  };
  for (std::size_t off = 0; off < size && e.state() != EngineState::closed; off += chunk_bytes) {
    const std::size_t n = std::min(chunk_bytes, size - off);
    if (!e.push_input(data + off, n)) {
      result.input_refused = true;
      return result;
    }
    e.step(now += 10);
    drain();
  }
  e.transport_closed();
  for (int i = 0; i < 8 && e.state() != EngineState::closed; ++i) {
    e.step(now += 10);
    drain();
  }
  return result;
}

}  // namespace mana::ssh::test
