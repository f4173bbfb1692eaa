// Byte transfer between JS and the wasm heap, shared by both binding files (bindings.cpp,
// ssh_bindings.cpp).
//   * In: a Uint8Array is copied into a caller-owned scratch vector with one TypedArray.set
//     (embind's std::string conversion copies byte by byte in JS, which dominated the receive
//     path). Anything that is not a Uint8Array counts as empty.
//   * Out: a fresh Uint8Array copy, so JS never holds a view into the heap (memory may grow).
#pragma once

#include <emscripten/val.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mana::wasm {

inline emscripten::val bytes_to_js(const std::uint8_t* data, std::size_t size) {
  return emscripten::val::global("Uint8Array").new_(emscripten::typed_memory_view(size, data));
}

/// Copies `bytes` (a Uint8Array) into `scratch`; returns how many bytes it holds now.
inline std::size_t bytes_from_js(const emscripten::val& bytes, std::vector<std::uint8_t>& scratch) {
  if (!bytes.instanceof (emscripten::val::global("Uint8Array"))) return 0;
  const auto n = bytes["length"].as<std::size_t>();
  scratch.resize(n);
  if (n > 0) {
    emscripten::val(emscripten::typed_memory_view(n, scratch.data())).call<void>("set", bytes);
  }
  return n;
}

}  // namespace mana::wasm
