// Byte transfer between JS and the wasm heap, shared by both binding files (bindings.cpp,
// ssh_bindings.cpp). The per-chunk path crosses the boundary as numbers only; JS (only
// js-glue/src/internal/) copies the bytes with the module's HEAPU8:
//   * In: input_buffer() sizes a caller-owned scratch vector and returns its heap address; JS
//     copies the bytes there with one HEAPU8.set and then calls the method that reads them
//     (embind's std::string conversion copies byte by byte in JS, and a Uint8Array argument costs
//     several emval round trips).
//   * Out: the binding exposes heap address + length of a payload it keeps alive until its next
//     call; JS takes one HEAPU8.slice at once, so it never keeps a view into the heap (memory may
//     grow).
//   * Rare payloads (a host key blob) may still go out as a fresh Uint8Array (bytes_to_js).
#pragma once

#include <emscripten/val.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mana::wasm {

/// A heap address as a JS number (wasm32 addresses are exact in a double).
inline double heap_address(const void* p) {
  return static_cast<double>(reinterpret_cast<std::uintptr_t>(p));
}

/// `n` from JS as a size, clamped to [0, cap] (NaN and negatives count as 0).
inline std::size_t clamp_size(double n, std::size_t cap) {
  if (!(n > 0)) return 0;
  return n >= static_cast<double>(cap) ? cap : static_cast<std::size_t>(n);
}

/// Sizes `scratch` for n bytes (at most 1 GiB) and returns its heap address.
inline double input_buffer(std::vector<std::uint8_t>& scratch, double n) {
  constexpr std::size_t max_input = std::size_t{1} << 30;
  scratch.resize(clamp_size(n, max_input));
  return heap_address(scratch.data());
}

inline emscripten::val bytes_to_js(const std::uint8_t* data, std::size_t size) {
  return emscripten::val::global("Uint8Array").new_(emscripten::typed_memory_view(size, data));
}

}  // namespace mana::wasm
