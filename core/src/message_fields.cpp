// SPDX-License-Identifier: Apache-2.0
// The reading half of the control-message parser: see message_fields.hpp; the per-message
// parsers and the encoders are in messages.cpp.
#include "message_fields.hpp"

#include <set>

namespace mana::core::msg_detail {

namespace {

constexpr std::uint64_t max_channel_id = 2147483647;  // 2^31 - 1
constexpr std::size_t min_token_len = 16;
constexpr std::size_t max_token_len = 256;
constexpr std::size_t max_sig_len = 32;

bool is_token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

bool is_sig_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace

bool depth_exceeds(std::string_view text, std::size_t limit) {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '{':
      case '[':
        if (++depth > limit) return true;
        break;
      case '}':
      case ']':
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return false;
}

bool is_token(std::string_view s) {
  if (s.size() < min_token_len || s.size() > max_token_len) return false;
  for (const char c : s) {
    if (!is_token_char(c)) return false;
  }
  return true;
}

bool is_sig(std::string_view s) {
  if (s.empty() || s.size() > max_sig_len) return false;
  for (const char c : s) {
    if (!is_sig_char(c)) return false;
  }
  return true;
}

ChannelId read_id(Fields& f) {
  return static_cast<ChannelId>(f.req_uint("id", 1, max_channel_id));
}

// Token of hello.resume / hello_ok.resume: 16..256 chars [A-Za-z0-9_-].
std::string read_token(Fields& f) {
  std::string token = f.req_string("token");
  if (!f.failed() && !is_token(token)) {
    f.context().fail(Errc::out_of_range, f.field_path("token"), "out of range");
  }
  return token;
}

// {token, channels: [{id, rx, credit, closed?}]}: at most max_resume_channels
// entries with unique ids.
void read_resume(Fields& f, std::string& token, std::vector<ResumeChannel>& channels) {
  token = read_token(f);
  const Json* arr = f.array("channels", true);
  if (arr == nullptr) return;
  const std::string arr_path = f.field_path("channels");
  Context& ctx = f.context();
  if (arr->size() > ctx.limits.max_resume_channels) {
    ctx.fail(Errc::out_of_range, arr_path, "too many entries");
    return;
  }
  channels.reserve(arr->size());
  std::set<ChannelId> seen;
  std::size_t index = 0;
  for (const Json& entry : *arr) {
    std::string entry_path = arr_path;
    entry_path += '[';
    entry_path += std::to_string(index++);
    entry_path += ']';
    if (!entry.is_object()) {
      ctx.fail(Errc::wrong_type, entry_path, "wrong type (expected object)");
      return;
    }
    Fields e(ctx, entry, std::move(entry_path));
    ResumeChannel ch;
    ch.id = read_id(e);
    ch.rx = e.req_uint("rx", 0, max_json_integer);
    ch.credit = e.req_uint("credit", 0, max_json_integer);
    if (!e.failed() && ch.credit > max_json_integer - ch.rx) {
      // rx + credit is the sender's limit and must stay a JSON integer.
      ctx.fail(Errc::out_of_range, e.field_path("credit"), "out of range");
    }
    ch.closed = e.opt_bool("closed", false);
    if (e.failed()) return;
    if (!seen.insert(ch.id).second) {
      ctx.fail(Errc::out_of_range, e.field_path("id"), "duplicate");
      return;
    }
    channels.push_back(ch);
  }
}

}  // namespace mana::core::msg_detail
