// libFuzzer target: parse arbitrary bytes as a control message. On success the
// message must survive encode -> parse unchanged, and encoding must be stable.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "mana/core/messages.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  // Small limits so the fuzzer reaches every limit quickly.
  mana::core::ParseLimits limits;
  limits.max_json = 4096;
  limits.max_depth = 8;
  limits.max_resume_channels = 8;
  limits.max_env_entries = 8;

  auto parsed = mana::core::parse_control(text, limits);
  if (!parsed.ok()) {
    if (parsed.error().origin != mana::core::Origin::remote) __builtin_trap();
    return 0;
  }

  // The encoding may be longer than the input (defaults made explicit), so only
  // the size limit is lifted for the second parse.
  mana::core::ParseLimits relaxed = limits;
  relaxed.max_json = std::numeric_limits<std::size_t>::max();

  const std::string encoded = mana::core::encode_control(*parsed);
  auto again = mana::core::parse_control(encoded, relaxed);
  if (!again.ok()) __builtin_trap();
  if (!(*again == *parsed)) __builtin_trap();
  if (mana::core::encode_control(*again) != encoded) __builtin_trap();
  if (mana::core::type_name(*again) != mana::core::type_name(*parsed)) __builtin_trap();
  return 0;
}
