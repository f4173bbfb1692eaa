// Wire profiles: mana.v1, json-base64.v1, lenpfx.v1 (docs/PROTOCOL.md, "Wire profiles").
//
// Decoding rules shared by the three built-in profiles:
//   * every size is checked against FrameLimits before anything is allocated
//     (message > max_frame -> frame_too_large, control JSON text >
//     max_control_json -> control_too_large); the only allocations are the
//     returned frame and, for json-base64.v1, the parser's copy of string
//     values, both bounded by the (already checked) message size;
//   * data frames must name a channel id in 1..2147483647 (out_of_range
//     otherwise, close 4014), in every profile, so that no profile accepts a
//     frame the others cannot represent;
//   * every decode error has Origin::remote and a detail naming the profile and
//     what was wrong; details never contain payload bytes. Besides the errors
//     listed in wire_profile.hpp, decoders return out_of_range (channel id,
//     lenpfx.v1 control id) and, for json-base64.v1 data frames,
//     missing_field / wrong_type / json_too_deep (all close 4014).
// Control JSON is not parsed here (messages.hpp does that), except that
// json-base64.v1 must parse every text message to tell data from control.
// Encoders never fail: senders keep control JSON within the peer's limits and
// split data with encode_data_split / max_payload.
#include "mana/core/wire_profile.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

namespace mana::core {
namespace {

using Json = nlohmann::json;

constexpr std::uint32_t max_channel_id = 2147483647;  // 2^31 - 1
constexpr std::size_t id_max_digits = 10;             // digits of max_channel_id

// mana.v1 data header: [stream u8][id u32 BE].
constexpr std::size_t mana_header_size = 5;
// lenpfx.v1 envelope header: [length u32 BE][kind u8][id u32 BE].
constexpr std::size_t lenpfx_length_size = 4;
constexpr std::size_t lenpfx_header_size = 9;
constexpr std::uint8_t lenpfx_kind_control = 0x10;
// Largest whole lenpfx.v1 message: the length field counts at most 2^32 - 1 bytes.
constexpr std::uint64_t lenpfx_max_message =
    std::uint64_t{std::numeric_limits<std::uint32_t>::max()} + lenpfx_length_size;

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

constexpr std::string_view base64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// 0..63 for alphabet characters, 0xff for everything else ('=' included).
constexpr std::array<std::uint8_t, 256> make_base64_table() {
  std::array<std::uint8_t, 256> table{};
  for (auto& v : table) {
    v = 0xff;
  }
  for (std::size_t i = 0; i < base64_alphabet.size(); ++i) {
    table[static_cast<unsigned char>(base64_alphabet[i])] = static_cast<std::uint8_t>(i);
  }
  return table;
}
constexpr std::array<std::uint8_t, 256> base64_table = make_base64_table();

constexpr std::size_t base64_encoded_size(std::size_t n) {
  return (n + 2) / 3 * 4;
}

// Writes base64_encoded_size(data.size()) characters to `out`.
void base64_encode_to(ByteView data, std::uint8_t* out) {
  const std::size_t n = data.size();
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const std::uint32_t v = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8) |
                            std::uint32_t{data[i + 2]};
    *out++ = static_cast<std::uint8_t>(base64_alphabet[(v >> 18) & 0x3f]);
    *out++ = static_cast<std::uint8_t>(base64_alphabet[(v >> 12) & 0x3f]);
    *out++ = static_cast<std::uint8_t>(base64_alphabet[(v >> 6) & 0x3f]);
    *out++ = static_cast<std::uint8_t>(base64_alphabet[v & 0x3f]);
  }
  const std::size_t rest = n - i;
  if (rest == 1) {
    const std::uint32_t v = std::uint32_t{data[i]} << 16;
    *out++ = static_cast<std::uint8_t>(base64_alphabet[(v >> 18) & 0x3f]);
    *out++ = static_cast<std::uint8_t>(base64_alphabet[(v >> 12) & 0x3f]);
    *out++ = '=';
    *out++ = '=';
  } else if (rest == 2) {
    const std::uint32_t v = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8);
    *out++ = static_cast<std::uint8_t>(base64_alphabet[(v >> 18) & 0x3f]);
    *out++ = static_cast<std::uint8_t>(base64_alphabet[(v >> 12) & 0x3f]);
    *out++ = static_cast<std::uint8_t>(base64_alphabet[(v >> 6) & 0x3f]);
    *out++ = '=';
  }
}

std::string to_dec(std::uint64_t v) {
  std::array<char, 24> buf{};
  const auto res = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return std::string(buf.data(), res.ptr);
}

std::string to_hex_byte(std::uint8_t b) {
  constexpr std::string_view digits = "0123456789abcdef";
  std::string s = "0x";
  s += digits[b >> 4];
  s += digits[b & 0x0f];
  return s;
}

Error remote_error(Errc code, std::string_view profile, std::string_view what) {
  std::string detail;
  detail.reserve(profile.size() + 2 + what.size());
  detail.append(profile);
  detail.append(": ");
  detail.append(what);
  return make_error(code, Origin::remote, std::move(detail));
}

std::uint32_t read_u32be(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

void write_u32be(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}

bool valid_channel_id(std::uint64_t id) {
  return id >= 1 && id <= max_channel_id;
}

const char* message_type_name(MessageType type) {
  switch (type) {
    case MessageType::text:
      return "text";
    case MessageType::binary:
      return "binary";
    case MessageType::close:
      return "close";
  }
  return "unknown";
}

// Shared first check of every decoder: the whole message against max_frame.
Result<void> check_frame_size(std::string_view profile, ByteView message,
                              const FrameLimits& limits) {
  if (message.size() > limits.max_frame) {
    return remote_error(Errc::frame_too_large, profile,
                        "message of " + to_dec(message.size()) + " bytes exceeds maxFrame " +
                            to_dec(limits.max_frame));
  }
  return {};
}

Result<Frame> make_control(std::string_view profile, ByteView json_text,
                           const FrameLimits& limits) {
  if (json_text.size() > limits.max_control_json) {
    return remote_error(Errc::control_too_large, profile,
                        "control JSON of " + to_dec(json_text.size()) + " bytes exceeds limit " +
                            to_dec(limits.max_control_json));
  }
  return Frame{ControlFrame{std::string(json_text.begin(), json_text.end())}};
}

OutMessage text_message(std::string_view text) {
  OutMessage m;
  m.type = MessageType::text;
  m.data.assign(text.begin(), text.end());
  return m;
}

// ---- mana.v1 ---------------------------------------------------------------

class ManaV1Profile final : public WireProfile {
 public:
  static constexpr std::string_view name = "mana.v1";

  [[nodiscard]] std::string_view id() const noexcept override { return name; }

  [[nodiscard]] Result<Frame> decode(MessageType type, ByteView message,
                                     const FrameLimits& limits) const override {
    if (auto r = check_frame_size(name, message, limits); !r) {
      return std::move(r).error();
    }
    if (type == MessageType::text) {
      return make_control(name, message, limits);  // parsed later by messages.hpp
    }
    if (type != MessageType::binary) {
      return remote_error(Errc::wrong_message_type, name,
                          std::string("unexpected ") + message_type_name(type) + " message");
    }
    if (message.size() < mana_header_size) {
      return remote_error(Errc::truncated_frame, name,
                          "binary message of " + to_dec(message.size()) +
                              " bytes is shorter than the 5-byte data header");
    }
    const std::uint8_t stream = message[0];
    if (stream != static_cast<std::uint8_t>(Stream::out) &&
        stream != static_cast<std::uint8_t>(Stream::err)) {
      return remote_error(Errc::unknown_stream, name,
                          "reserved stream byte " + to_hex_byte(stream));
    }
    const std::uint32_t id = read_u32be(message.data() + 1);
    if (!valid_channel_id(id)) {
      return remote_error(Errc::out_of_range, name,
                          "data channel id " + to_dec(id) + " outside 1..2147483647");
    }
    DataFrame frame;
    frame.stream = static_cast<Stream>(stream);
    frame.id = id;
    frame.payload.assign(message.begin() + mana_header_size, message.end());
    return Frame{std::move(frame)};
  }

  [[nodiscard]] OutMessage encode_control(std::string_view json_text) const override {
    return text_message(json_text);
  }

  [[nodiscard]] OutMessage encode_data(Stream stream, ChannelId id,
                                       ByteView payload) const override {
    OutMessage m = header(stream, id, mana_header_size + payload.size());
    m.data.insert(m.data.end(), payload.begin(), payload.end());
    return m;
  }

  [[nodiscard]] std::size_t max_payload(std::size_t max_frame) const noexcept override {
    return max_frame > mana_header_size ? max_frame - mana_header_size : 0;
  }

  [[nodiscard]] bool raw_payload() const noexcept override { return true; }

  [[nodiscard]] OutMessage encode_data_header(Stream stream, ChannelId id,
                                              std::size_t /*payload_size*/) const override {
    return header(stream, id, mana_header_size);
  }

 private:
  // The 5-byte data header in a buffer with room for `reserve` bytes (reserve
  // + insert: nothing is zero-filled and then overwritten).
  static OutMessage header(Stream stream, ChannelId id, std::size_t reserve) {
    OutMessage m;
    m.type = MessageType::binary;
    m.data.reserve(reserve);
    m.data.resize(mana_header_size);  // (insert from a std::array trips g++-12 -O3 warnings)
    m.data[0] = static_cast<std::uint8_t>(stream);
    write_u32be(m.data.data() + 1, id);
    return m;
  }
};

// ---- json-base64.v1 --------------------------------------------------------

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

// ---- lenpfx.v1 -------------------------------------------------------------

class LenpfxV1Profile final : public WireProfile {
 public:
  static constexpr std::string_view name = "lenpfx.v1";

  [[nodiscard]] std::string_view id() const noexcept override { return name; }

  [[nodiscard]] Result<Frame> decode(MessageType type, ByteView message,
                                     const FrameLimits& limits) const override {
    if (auto r = check_frame_size(name, message, limits); !r) {
      return std::move(r).error();
    }
    if (type != MessageType::binary) {
      return remote_error(
          Errc::wrong_message_type, name,
          std::string(message_type_name(type)) + " message (every frame is a binary envelope)");
    }
    // Shorter than the fixed header is truncated_frame whatever the length
    // field says; a consistent envelope with length < 5 is always shorter.
    if (message.size() < lenpfx_header_size) {
      return remote_error(Errc::truncated_frame, name,
                          "message of " + to_dec(message.size()) +
                              " bytes is shorter than the 9-byte envelope header");
    }
    const std::uint32_t length = read_u32be(message.data());
    if (std::uint64_t{length} != std::uint64_t{message.size()} - lenpfx_length_size) {
      return remote_error(Errc::bad_length, name,
                          "length field " + to_dec(length) + " but " +
                              to_dec(message.size() - lenpfx_length_size) + " bytes follow it");
    }
    const std::uint8_t kind = message[4];
    const std::uint32_t id = read_u32be(message.data() + 5);
    const ByteView body = message.subspan(lenpfx_header_size);
    if (kind == lenpfx_kind_control) {
      // A control envelope's id field must be 0. A non-zero id is a field
      // value outside its allowed range, so it is out_of_range (close 4014),
      // not bad_length (which is about the length field only).
      if (id != 0) {
        return remote_error(Errc::out_of_range, name,
                            "control envelope with id " + to_dec(id) + " (must be 0)");
      }
      return make_control(name, body, limits);
    }
    if (kind != static_cast<std::uint8_t>(Stream::out) &&
        kind != static_cast<std::uint8_t>(Stream::err)) {
      return remote_error(Errc::unknown_stream, name,
                          "reserved envelope kind " + to_hex_byte(kind));
    }
    if (!valid_channel_id(id)) {
      return remote_error(Errc::out_of_range, name,
                          "data channel id " + to_dec(id) + " outside 1..2147483647");
    }
    DataFrame frame;
    frame.stream = static_cast<Stream>(kind);
    frame.id = id;
    frame.payload.assign(body.begin(), body.end());
    return Frame{std::move(frame)};
  }

  [[nodiscard]] OutMessage encode_control(std::string_view json_text) const override {
    return envelope(
        lenpfx_kind_control, 0,
        ByteView(reinterpret_cast<const std::uint8_t*>(json_text.data()), json_text.size()));
  }

  [[nodiscard]] OutMessage encode_data(Stream stream, ChannelId id,
                                       ByteView payload) const override {
    return envelope(static_cast<std::uint8_t>(stream), id, payload);
  }

  [[nodiscard]] std::size_t max_payload(std::size_t max_frame) const noexcept override {
    const std::uint64_t frame = std::min<std::uint64_t>(max_frame, lenpfx_max_message);
    return frame > lenpfx_header_size ? static_cast<std::size_t>(frame - lenpfx_header_size) : 0;
  }

  [[nodiscard]] bool raw_payload() const noexcept override { return true; }

  [[nodiscard]] OutMessage encode_data_header(Stream stream, ChannelId id,
                                              std::size_t payload_size) const override {
    return envelope_header(static_cast<std::uint8_t>(stream), id, payload_size, 0);
  }

 private:
  // Precondition: body.size() <= 2^32 - 6 (the length field is 32 bits).
  static OutMessage envelope(std::uint8_t kind, std::uint32_t id, ByteView body) {
    OutMessage m = envelope_header(kind, id, body.size(), body.size());
    m.data.insert(m.data.end(), body.begin(), body.end());
    return m;
  }

  // The 9-byte header of an envelope whose body has `body_size` bytes (the
  // length field counts them), in a buffer with room for `extra` more bytes.
  static OutMessage envelope_header(std::uint8_t kind, std::uint32_t id, std::size_t body_size,
                                    std::size_t extra) {
    assert(std::uint64_t{body_size} + lenpfx_header_size <= lenpfx_max_message);
    OutMessage m;
    m.type = MessageType::binary;
    m.data.reserve(lenpfx_header_size + extra);
    m.data.resize(lenpfx_header_size);  // (insert from a std::array trips g++-12 -O3 warnings)
    write_u32be(m.data.data(),
                static_cast<std::uint32_t>(body_size + lenpfx_header_size - lenpfx_length_size));
    m.data[4] = kind;
    write_u32be(m.data.data() + 5, id);
    return m;
  }
};

bool valid_profile_id(std::string_view id) {
  if (id.empty() || id.size() > 64) {
    return false;
  }
  // "Printable" = visible ASCII 0x21..0x7e: a space would make ids ambiguous
  // in logs and configuration lists.
  for (const char c : id) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7e) {
      return false;
    }
  }
  return true;
}

// Non-owning shared_ptr to a built-in singleton (aliasing constructor: no
// control block, no deleter).
std::shared_ptr<const WireProfile> borrow(const WireProfile& p) {
  return std::shared_ptr<const WireProfile>(std::shared_ptr<const WireProfile>(), &p);
}

}  // namespace

const WireProfile& mana_v1_profile() noexcept {
  static const ManaV1Profile profile;
  return profile;
}

const WireProfile& json_base64_v1_profile() noexcept {
  static const JsonBase64V1Profile profile;
  return profile;
}

const WireProfile& lenpfx_v1_profile() noexcept {
  static const LenpfxV1Profile profile;
  return profile;
}

// ---- ProfileRegistry ---------------------------------------------------------

ProfileRegistry::ProfileRegistry() {
  profiles_.reserve(3);
  profiles_.push_back(borrow(mana_v1_profile()));
  profiles_.push_back(borrow(json_base64_v1_profile()));
  profiles_.push_back(borrow(lenpfx_v1_profile()));
}

// Errors (Origin::local): invalid_argument for a null profile, an id that is
// not 1..64 visible ASCII characters, or an id already registered.
Result<void> ProfileRegistry::add(std::shared_ptr<const WireProfile> profile) {
  if (!profile) {
    return make_error(Errc::invalid_argument, Origin::local, "profile registry: null profile");
  }
  const std::string_view id = profile->id();
  if (!valid_profile_id(id)) {
    return make_error(Errc::invalid_argument, Origin::local,
                      "profile registry: id must be 1..64 printable ASCII characters");
  }
  if (find(id) != nullptr) {
    return make_error(Errc::invalid_argument, Origin::local,
                      "profile registry: id \"" + std::string(id) + "\" already registered");
  }
  profiles_.push_back(std::move(profile));
  return {};
}

const WireProfile* ProfileRegistry::find(std::string_view id) const noexcept {
  for (const auto& p : profiles_) {
    if (p->id() == id) {
      return p.get();
    }
  }
  return nullptr;
}

std::vector<std::string_view> ProfileRegistry::ids() const {
  std::vector<std::string_view> out;
  out.reserve(profiles_.size());
  for (const auto& p : profiles_) {
    out.push_back(p->id());
  }
  return out;
}

// ---- OutMessage ----------------------------------------------------------------

std::size_t OutMessage::size() const noexcept {
  std::size_t n = data.size();
  for (const PayloadPart& p : parts) {
    n += p.bytes.size();
  }
  return n;
}

Bytes OutMessage::flatten() const {
  Bytes out;
  out.reserve(size());
  out.insert(out.end(), data.begin(), data.end());
  for (const PayloadPart& p : parts) {
    out.insert(out.end(), p.bytes.begin(), p.bytes.end());
  }
  return out;
}

// ---- helpers -----------------------------------------------------------------

// If max_frame is too small to carry a single payload byte
// (profile.max_payload(max_frame) == 0), nothing is appended: callers keep
// max_frame at or above the protocol minimum (1024).
void encode_data_split(const WireProfile& profile, Stream stream, ChannelId id, ByteView payload,
                       std::size_t max_frame, std::vector<OutMessage>& out) {
  const std::size_t chunk = profile.max_payload(max_frame);
  if (payload.empty() || chunk == 0) {
    return;
  }
  out.reserve(out.size() + (payload.size() + chunk - 1) / chunk);
  for (std::size_t offset = 0; offset < payload.size(); offset += chunk) {
    const std::size_t n = std::min(chunk, payload.size() - offset);
    out.push_back(profile.encode_data(stream, id, payload.subspan(offset, n)));
  }
}

std::string base64_encode(ByteView data) {
  std::string out(base64_encoded_size(data.size()), '\0');
  base64_encode_to(data, reinterpret_cast<std::uint8_t*>(out.data()));
  return out;
}

// Errors (Origin::remote, it decodes peer input): bad_base64 when the length
// is not a multiple of 4, a character is outside the standard alphabet, '='
// appears anywhere but as one or two final characters, or the bits left over
// before the padding are not zero (non-canonical encoding).
Result<Bytes> base64_decode(std::string_view text) {
  const auto fail = [](std::string what) {
    return make_error(Errc::bad_base64, Origin::remote, "base64: " + std::move(what));
  };
  if (text.size() % 4 != 0) {
    return fail("length " + to_dec(text.size()) + " is not a multiple of 4");
  }
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=') {
    pad = text.size() >= 2 && text[text.size() - 2] == '=' ? 2 : 1;
  }
  const std::size_t body = text.size() - pad;  // characters before the padding
  Bytes out;
  out.reserve(text.size() / 4 * 3 - pad);
  std::uint32_t acc = 0;
  for (std::size_t i = 0; i < body; ++i) {
    const std::uint8_t v = base64_table[static_cast<unsigned char>(text[i])];
    if (v == 0xff) {
      return fail("invalid character at offset " + to_dec(i));
    }
    acc = (acc << 6) | v;
    if (i % 4 == 3) {
      out.push_back(static_cast<std::uint8_t>(acc >> 16));
      out.push_back(static_cast<std::uint8_t>(acc >> 8));
      out.push_back(static_cast<std::uint8_t>(acc));
      acc = 0;
    }
  }
  if (pad == 2) {  // "xx==": 12 bits, 8 used
    if ((acc & 0x0f) != 0) {
      return fail("non-zero trailing bits before padding");
    }
    out.push_back(static_cast<std::uint8_t>(acc >> 4));
  } else if (pad == 1) {  // "xxx=": 18 bits, 16 used
    if ((acc & 0x03) != 0) {
      return fail("non-zero trailing bits before padding");
    }
    out.push_back(static_cast<std::uint8_t>(acc >> 10));
    out.push_back(static_cast<std::uint8_t>(acc >> 2));
  }
  return out;
}

}  // namespace mana::core
