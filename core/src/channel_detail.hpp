// Internal to core/src: the "channel N: what" detail text of errors and
// diagnostics about one channel.
#pragma once

#include <string>
#include <string_view>

#include "mana/core/types.hpp"

namespace mana::core {

inline std::string channel_detail(ChannelId id, std::string_view what) {
  std::string s = "channel ";
  s += std::to_string(id);
  s += ": ";
  s += what;
  return s;
}

}  // namespace mana::core
