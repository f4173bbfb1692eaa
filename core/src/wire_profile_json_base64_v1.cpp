// SPDX-License-Identifier: Apache-2.0
// Wire profile json-base64.v1 (docs/PROTOCOL.md, "Wire profiles"): every frame
// is a JSON text message; a data frame is
//   {"kind":"data","stream":"stdout"|"stderr","id":N,"payload":"<base64>"}
// and every text must be parsed to tell data from control (DataProbe, a SAX
// handler that builds no DOM). The decoding rules all profiles share are
// described in wire_profile.cpp.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "mana/core/wire_profile.hpp"
#include "wire_profile_detail.hpp"

namespace mana::core {
namespace {

using namespace wire_detail;
using Json = nlohmann::json;

// json-base64.v1 data frame, in the one canonical form the encoder writes:
//   {"kind":"data","stream":"stdout","id":N,"payload":"<base64>"}
constexpr std::string_view jb_prefix_out = R"({"kind":"data","stream":"stdout","id":)";
constexpr std::string_view jb_prefix_err = R"({"kind":"data","stream":"stderr","id":)";
constexpr std::string_view jb_middle = R"(,"payload":")";
constexpr std::string_view jb_suffix = R"("})";
static_assert(jb_prefix_out.size() == jb_prefix_err.size());
// Encoded size of a data frame without its base64 text, for the longest id.
constexpr std::size_t jb_overhead =
    jb_prefix_out.size() + id_max_digits + jb_middle.size() + jb_suffix.size();

// SAX handler that records the top-level members a data frame needs, whether
// there is a top-level "t", and the nesting depth; nothing else is kept (no DOM
// is built, so memory stays bounded by the message size). Duplicate keys: the
// last one wins, as in a DOM parse.
class DataProbe {
 public:
  enum class Member : std::uint8_t { other, kind, stream, id, payload };
  enum class Type : std::uint8_t { absent, string, unsigned_int, negative_int, other };

  struct Field {
    Type type = Type::absent;
    std::string str;
    std::uint64_t num = 0;
  };

  bool top_is_object = false;
  bool has_t = false;         // the top-level object has a "t" member
  std::size_t max_depth = 0;  // top-level object or array = 1
  Field kind;
  Field stream;
  Field id;
  Field payload;

  bool null() { return scalar(Type::other); }
  bool boolean(bool /*v*/) { return scalar(Type::other); }
  bool number_integer(Json::number_integer_t v) {
    if (v >= 0) {
      return number_unsigned(static_cast<Json::number_unsigned_t>(v));
    }
    return scalar(Type::negative_int);
  }
  bool number_unsigned(Json::number_unsigned_t v) {
    if (Field* f = target()) {
      *f = Field{Type::unsigned_int, {}, v};
    }
    return done_value();
  }
  bool number_float(Json::number_float_t /*v*/, const Json::string_t& /*s*/) {
    return scalar(Type::other);
  }
  bool string(Json::string_t& v) {
    if (Field* f = target()) {
      *f = Field{Type::string, std::move(v), 0};
    }
    return done_value();
  }
  bool binary(Json::binary_t& /*v*/) { return scalar(Type::other); }
  bool start_object(std::size_t /*n*/) {
    if (depth_ == 0) {
      top_is_object = true;
    }
    return start_container();
  }
  bool key(Json::string_t& k) {
    if (depth_ == 1) {
      member_ = member_of(k);
      has_t = has_t || k == "t";
    }
    return true;
  }
  bool end_object() {
    --depth_;
    return true;
  }
  bool start_array(std::size_t /*n*/) { return start_container(); }
  bool end_array() {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t /*pos*/, const std::string& /*token*/,
                   const nlohmann::detail::exception& /*ex*/) {
    return false;
  }

 private:
  static Member member_of(std::string_view k) {
    if (k == "kind") {
      return Member::kind;
    }
    if (k == "stream") {
      return Member::stream;
    }
    if (k == "id") {
      return Member::id;
    }
    if (k == "payload") {
      return Member::payload;
    }
    return Member::other;
  }

  // The field a value at the current position belongs to, if any.
  Field* target() {
    if (depth_ != 1 || !top_is_object) {
      return nullptr;
    }
    switch (member_) {
      case Member::kind:
        return &kind;
      case Member::stream:
        return &stream;
      case Member::id:
        return &id;
      case Member::payload:
        return &payload;
      case Member::other:
        break;
    }
    return nullptr;
  }

  bool scalar(Type t) {
    if (Field* f = target()) {
      *f = Field{t, {}, 0};
    }
    return done_value();
  }

  bool start_container() {
    if (Field* f = target()) {
      *f = Field{Type::other, {}, 0};
    }
    member_ = Member::other;
    ++depth_;
    max_depth = std::max(max_depth, depth_);
    return true;
  }

  bool done_value() {
    if (depth_ == 1) {
      member_ = Member::other;
    }
    return true;
  }

  std::size_t depth_ = 0;
  Member member_ = Member::other;
};

class JsonBase64V1Profile final : public WireProfile {
 public:
  static constexpr std::string_view name = "json-base64.v1";

  [[nodiscard]] std::string_view id() const noexcept override { return name; }

  [[nodiscard]] Result<Frame> decode(MessageType type, ByteView message,
                                     const FrameLimits& limits) const override {
    if (auto r = check_frame_size(name, message, limits); !r) {
      return std::move(r).error();
    }
    if (type != MessageType::text) {
      return remote_error(
          Errc::wrong_message_type, name,
          std::string(message_type_name(type)) + " message (every frame is a JSON text message)");
    }
    // Parse the whole text (strictly: one JSON value, nothing after it) only
    // to tell data frames from control frames. Invalid UTF-8 is a parse error.
    DataProbe probe;
    const char* begin = reinterpret_cast<const char*>(message.data());
    if (!Json::sax_parse(begin, begin + message.size(), &probe)) {
      return remote_error(Errc::bad_json, name, "text message is not valid JSON");
    }
    // PROTOCOL.md 3.3: an object with a "t" member is a control frame (open
    // has a "kind" member too); a data frame is a top-level object without
    // "t" whose "kind" is the string "data" (unknown members are ignored).
    // Everything else is handed on as a control frame: the control parser
    // rejects it (not_an_object / missing "t", close 4014).
    if (!probe.top_is_object || probe.has_t || probe.kind.type != DataProbe::Type::string ||
        probe.kind.str != "data") {
      return make_control(name, message, limits);
    }
    // The nesting limit applies to every JSON text (PROTOCOL.md 3.5); for
    // control frames the control parser checks it.
    if (probe.max_depth > limits.max_json_depth) {
      return remote_error(Errc::json_too_deep, name,
                          "data frame nesting depth " + to_dec(probe.max_depth) + " exceeds " +
                              to_dec(limits.max_json_depth));
    }
    return decode_data(probe);
  }

  [[nodiscard]] OutMessage encode_control(std::string_view json_text) const override {
    return text_message(json_text);
  }

  [[nodiscard]] OutMessage encode_data(Stream stream, ChannelId id,
                                       ByteView payload) const override {
    const std::string_view prefix = stream == Stream::err ? jb_prefix_err : jb_prefix_out;
    const std::string digits = to_dec(id);
    OutMessage m;
    m.type = MessageType::text;
    m.data.resize(prefix.size() + digits.size() + jb_middle.size() +
                  base64_encoded_size(payload.size()) + jb_suffix.size());
    std::uint8_t* p = m.data.data();
    const auto put = [&p](std::string_view s) {
      std::memcpy(p, s.data(), s.size());
      p += s.size();
    };
    put(prefix);
    put(digits);
    put(jb_middle);
    base64_encode_to(payload, p);
    p += base64_encoded_size(payload.size());
    put(jb_suffix);
    return m;
  }

  // Exact for the longest id (10 digits): the largest multiple of 3 whose
  // base64 text fits next to the fixed members.
  [[nodiscard]] std::size_t max_payload(std::size_t max_frame) const noexcept override {
    if (max_frame <= jb_overhead) {
      return 0;
    }
    return (max_frame - jb_overhead) / 4 * 3;
  }

 private:
  static Result<Frame> decode_data(DataProbe& probe) {
    using Type = DataProbe::Type;
    DataFrame frame;

    if (probe.stream.type == Type::absent) {
      return remote_error(Errc::missing_field, name, "data frame without \"stream\"");
    }
    if (probe.stream.type != Type::string) {
      return remote_error(Errc::wrong_type, name, "data \"stream\" is not a string");
    }
    if (probe.stream.str == "stdout") {
      frame.stream = Stream::out;
    } else if (probe.stream.str == "stderr") {
      frame.stream = Stream::err;
    } else {
      return remote_error(Errc::unknown_stream, name,
                          "data \"stream\" is neither \"stdout\" nor \"stderr\"");
    }

    // Only integer literals are ids: 1.0 and 1e0 are wrong_type.
    if (probe.id.type == Type::absent) {
      return remote_error(Errc::missing_field, name, "data frame without \"id\"");
    }
    if (probe.id.type == Type::negative_int) {
      return remote_error(Errc::out_of_range, name, "data \"id\" is negative");
    }
    if (probe.id.type != Type::unsigned_int) {
      return remote_error(Errc::wrong_type, name, "data \"id\" is not an integer");
    }
    if (!valid_channel_id(probe.id.num)) {
      return remote_error(Errc::out_of_range, name,
                          "data channel id " + to_dec(probe.id.num) + " outside 1..2147483647");
    }
    frame.id = static_cast<ChannelId>(probe.id.num);

    if (probe.payload.type == Type::absent) {
      return remote_error(Errc::missing_field, name, "data frame without \"payload\"");
    }
    if (probe.payload.type != Type::string) {
      return remote_error(Errc::wrong_type, name, "data \"payload\" is not a string");
    }
    // The decoded size (<= 3/4 of the text) is bounded by the message size,
    // which was checked against max_frame before parsing.
    auto bytes = base64_decode(probe.payload.str);
    if (!bytes) {
      return remote_error(Errc::bad_base64, name, "data \"payload\": " + bytes.error().detail);
    }
    frame.payload = std::move(bytes).value();
    return Frame{std::move(frame)};
  }
};

}  // namespace

const WireProfile& json_base64_v1_profile() noexcept {
  static const JsonBase64V1Profile profile;
  return profile;
}

}  // namespace mana::core
