// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: mana.v1 decoder (tests/fuzz/corpus/fuzz_decode_mana_v1/ holds the seeds).
// Input format and the properties checked: decode_fuzz_common.hpp.
#include <cstddef>
#include <cstdint>

#include "decode_fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return mana::fuzz::run_decoder(mana::core::mana_v1_profile(), mana::fuzz::ReEncoding::identical,
                                 data, size);
}
