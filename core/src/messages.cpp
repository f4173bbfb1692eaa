// Control messages: strict parsing and deterministic encoding
// (docs/PROTOCOL.md, "Control messages").
//
// Parsing never throws: nlohmann_json is called with allow_exceptions=false
// (JSON_NOEXCEPTION is defined for the core) and every value is type-checked
// before it is read. Checks run in this order: text size (control_too_large),
// nesting depth by a string-aware pre-scan (json_too_deep; deep input never
// reaches the parser), NUL bytes, JSON syntax and UTF-8 (bad_json), top-level
// object (not_an_object), "t" (missing_field / wrong_type / unknown_message_type),
// then the fields of the message in the order the protocol lists them. The
// first failure is returned; Error::detail names the field path, e.g.
// "open.target.port: out of range", and never contains peer-supplied values.
//
// Wire conventions (docs/PROTOCOL.md section 4 and appendix A; see also the tests):
//   * integers are JSON integers: a number with a fraction or an exponent
//     (1.0, 1e3) is wrong_type, a negative one is out_of_range;
//   * string lengths are counted in bytes of UTF-8;
//   * a boolean capability the peer does not send (hello.caps.bidi,
//     hello.caps.resume, hello_ok.caps.bidi) parses as false: the peer did not
//     announce the feature (legacy peers know neither);
//   * hello_ok.caps members added by this protocol version (all but flow and
//     profileAccepted) take the ServerCaps defaults when absent;
//   * in a resume entry rx + credit must not exceed 2^53-1 (out_of_range);
//   * the encoder emits "t" first and then the fields in declaration order of
//     the structs; std::optional members are omitted when empty, Term::env is
//     omitted when empty, every other member is always emitted.
//
// This file: the per-message parsers and encoders and the public entry points. The reading half
// (the depth pre-scan, the typed field reader Fields and the shared readers) is in
// message_fields.{hpp,cpp}.
#include "mana/core/messages.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "message_fields.hpp"

namespace mana::core {

namespace {

using msg_detail::Context;
using msg_detail::depth_exceeds;
using msg_detail::Fields;
using msg_detail::is_sig;
using msg_detail::is_token;
using msg_detail::Json;
using msg_detail::read_id;
using msg_detail::read_resume;
using OrderedJson = nlohmann::ordered_json;

constexpr std::uint64_t max_window = std::uint64_t{1} << 30;
constexpr std::uint64_t min_window = 1024;
constexpr std::uint64_t min_max_frame = 1024;
constexpr std::uint64_t max_max_frame = 16777216;
constexpr std::uint64_t max_term_size = 10000;
constexpr std::uint64_t max_uint32 = std::numeric_limits<std::uint32_t>::max();
constexpr std::size_t max_host_len = 253;
constexpr std::size_t max_bearer_len = 8192;
constexpr std::size_t max_reason_len = 256;

// ---- per-message parsers ---------------------------------------------------

void parse_hello(Fields& f, Hello& h) {
  h.proto = static_cast<int>(
      f.req_uint("proto", 0, static_cast<std::uint64_t>(std::numeric_limits<int>::max())));

  if (const Json* a = f.object("auth", false)) {
    Fields af(f.context(), *a, f.field_path("auth"));
    const std::string scheme = af.req_string("scheme");
    Auth auth;
    if (!af.failed()) {
      if (scheme == "bearer") {
        auth.scheme = Auth::Scheme::bearer;
        auth.token = af.req_string("token", 1, max_bearer_len);
      } else if (scheme == "none") {
        auth.scheme = Auth::Scheme::none;
      } else {
        f.context().fail(Errc::out_of_range, af.field_path("scheme"), "out of range");
      }
    }
    h.auth = std::move(auth);
  }

  // Capabilities the client does not announce are off (see file comment).
  h.caps.bidi = false;
  h.caps.resume = false;
  if (const Json* c = f.object("caps", false)) {
    Fields cf(f.context(), *c, f.field_path("caps"));
    if (auto profile = cf.opt_string("profile")) h.caps.profile = std::move(*profile);
    if (auto mf = cf.opt_uint("maxFrame", min_max_frame, max_max_frame)) {
      h.caps.max_frame = static_cast<std::uint32_t>(*mf);
    }
    h.caps.bidi = cf.opt_bool("bidi", false);
    h.caps.resume = cf.opt_bool("resume", false);
  }

  if (const Json* r = f.object("resume", false)) {
    Fields rf(f.context(), *r, f.field_path("resume"));
    ResumeRequest req;
    read_resume(rf, req.token, req.channels);
    h.resume = std::move(req);
  }
}

void parse_hello_ok(Fields& f, HelloOk& h) {
  h.server = f.req_string("server");
  if (auto route = f.opt_string("route")) {
    if (!is_route_id(*route)) {
      f.context().fail(Errc::out_of_range, f.field_path("route"), "out of range");
    } else {
      h.route = std::move(*route);
    }
  }
  if (const Json* c = f.object("caps", true)) {
    Fields cf(f.context(), *c, f.field_path("caps"));
    ServerCaps& caps = h.caps;
    caps.flow = cf.req_string("flow");
    if (!cf.failed() && caps.flow != "credit") {
      cf.context().fail(Errc::out_of_range, cf.field_path("flow"), "out of range");
    }
    // maxFrame, bidi, heartbeatMs, idleTimeoutMs, maxChannels and window are
    // sent by every current server; servers that predate them omit them and
    // the client falls back to the defaults (PROTOCOL.md 5.2, A10).
    const ServerCaps defaults;
    caps.max_frame = static_cast<std::uint32_t>(
        cf.opt_uint("maxFrame", min_max_frame, max_max_frame).value_or(defaults.max_frame));
    caps.profile_accepted = cf.req_string("profileAccepted");
    caps.bidi = cf.opt_bool("bidi", false);
    if (auto ttl = cf.opt_uint("resumeTtlMs", 1, max_uint32)) {
      caps.resume_ttl_ms = static_cast<std::uint32_t>(*ttl);
    }
    caps.heartbeat_ms = static_cast<std::uint32_t>(
        cf.opt_uint("heartbeatMs", 1, max_uint32).value_or(defaults.heartbeat_ms));
    caps.idle_timeout_ms = static_cast<std::uint32_t>(
        cf.opt_uint("idleTimeoutMs", 1, max_uint32).value_or(defaults.idle_timeout_ms));
    caps.max_channels = static_cast<std::uint32_t>(
        cf.opt_uint("maxChannels", 1, max_uint32).value_or(defaults.max_channels));
    caps.window = cf.opt_uint("window", min_window, max_window).value_or(defaults.window);
  }
  if (const Json* r = f.object("resume", false)) {
    Fields rf(f.context(), *r, f.field_path("resume"));
    ResumeGrant grant;
    read_resume(rf, grant.token, grant.channels);
    h.resume = std::move(grant);
  }
}

void parse_open(Fields& f, Open& o) {
  o.id = read_id(f);
  if (auto kind = f.opt_string("kind")) {
    if (*kind != "tcp" && *kind != "ssh") {
      f.context().fail(Errc::out_of_range, f.field_path("kind"), "out of range");
    }
    o.kind = std::move(*kind);
  }
  if (const Json* t = f.object("target", true)) {
    Fields tf(f.context(), *t, f.field_path("target"));
    o.target.host = tf.req_string("host", 1, max_host_len);
    o.target.port = static_cast<std::uint16_t>(tf.req_uint("port", 1, 65535));
  }
  if (const Json* u = f.object("user", false)) {
    Fields uf(f.context(), *u, f.field_path("user"));
    UserSpec user;
    user.username = uf.req_string("username");
    if (const Json* a = uf.object("auth", true)) user.auth_json = a->dump();
    o.user = std::move(user);
  }
  if (const Json* t = f.object("term", false)) {
    Fields tf(f.context(), *t, f.field_path("term"));
    Term term;
    term.cols = static_cast<std::uint16_t>(tf.req_uint("cols", 1, max_term_size));
    term.rows = static_cast<std::uint16_t>(tf.req_uint("rows", 1, max_term_size));
    if (const Json* env = tf.object("env", false)) {
      const std::string env_path = tf.field_path("env");
      Context& ctx = f.context();
      if (env->size() > ctx.limits.max_env_entries) {
        ctx.fail(Errc::out_of_range, env_path, "too many entries");
      } else {
        for (const auto& [name, value] : env->items()) {
          if (!value.is_string()) {
            // The variable name is peer data: not repeated in the detail.
            ctx.fail(Errc::wrong_type, env_path, "wrong type (expected string values)");
            break;
          }
          term.env.emplace(name, *value.get_ptr<const std::string*>());
        }
      }
    }
    o.term = std::move(term);
  }
  o.window = f.opt_uint("window", min_window, max_window);
}

void parse_open_ok(Fields& f, OpenOk& o) {
  o.id = read_id(f);
  o.resume_key = f.opt_string("resumeKey");
  o.window = f.opt_uint("window", min_window, max_window);
}

void parse_open_err(Fields& f, OpenErr& o) {
  o.id = read_id(f);
  o.code = f.req_string("code");
  o.msg = f.req_string("msg");
}

void parse_resize(Fields& f, Resize& r) {
  r.id = read_id(f);
  r.cols = static_cast<std::uint16_t>(f.req_uint("cols", 1, max_term_size));
  r.rows = static_cast<std::uint16_t>(f.req_uint("rows", 1, max_term_size));
}

void parse_signal(Fields& f, Signal& s) {
  s.id = read_id(f);
  s.sig = f.req_string("sig");
  if (!f.failed() && !is_sig(s.sig)) {
    f.context().fail(Errc::out_of_range, f.field_path("sig"), "out of range");
  }
}

void parse_close(Fields& f, Close& c) {
  c.id = read_id(f);
  c.reason = f.opt_string("reason", 0, max_reason_len);
}

void parse_exit(Fields& f, Exit& e) {
  e.id = read_id(f);
  e.code = f.opt_int32("code");
  e.sig = f.opt_string("sig");
}

void parse_flow(Fields& f, Flow& fl) {
  fl.id = read_id(f);
  fl.credit = f.req_uint("credit", 0, max_json_integer);
  fl.rx = f.opt_uint("rx", 0, max_json_integer);
}

void parse_ping(Fields& f, Ping& p) {
  p.ts = f.req_uint("ts", 0, max_json_integer);
}

void parse_pong(Fields& f, Pong& p) {
  p.ts = f.req_uint("ts", 0, max_json_integer);
}

template <class T, class ParseFn>
Result<ControlMessage> parse_as(Context& ctx, const Json& obj, std::string_view type,
                                ParseFn parse) {
  T msg;
  Fields f(ctx, obj, std::string(type));
  parse(f, msg);
  if (ctx.error) return std::move(*ctx.error);
  return ControlMessage{std::move(msg)};
}

// ---- encoding --------------------------------------------------------------

OrderedJson encode_resume_channels(const std::vector<ResumeChannel>& channels) {
  OrderedJson arr = OrderedJson::array();
  for (const ResumeChannel& ch : channels) {
    OrderedJson e = OrderedJson::object();
    e["id"] = ch.id;
    e["rx"] = ch.rx;
    e["credit"] = ch.credit;
    e["closed"] = ch.closed;
    arr.push_back(std::move(e));
  }
  return arr;
}

// UserSpec::auth_json is kept as text; anything that is not a JSON object is
// encoded as {} so the output stays valid.
OrderedJson encode_opaque_object(const std::string& text) {
  OrderedJson v = OrderedJson::parse(text.begin(), text.end(), nullptr, false);
  if (v.is_discarded() || !v.is_object()) return OrderedJson::object();
  return v;
}

void encode_fields(OrderedJson& j, const Hello& h) {
  j["proto"] = h.proto;
  if (h.auth) {
    OrderedJson a = OrderedJson::object();
    if (h.auth->scheme == Auth::Scheme::bearer) {
      a["scheme"] = "bearer";
      a["token"] = h.auth->token;
    } else {
      a["scheme"] = "none";
    }
    j["auth"] = std::move(a);
  }
  OrderedJson caps = OrderedJson::object();
  caps["profile"] = h.caps.profile;
  if (h.caps.max_frame) caps["maxFrame"] = *h.caps.max_frame;
  caps["bidi"] = h.caps.bidi;
  caps["resume"] = h.caps.resume;
  j["caps"] = std::move(caps);
  if (h.resume) {
    OrderedJson r = OrderedJson::object();
    r["token"] = h.resume->token;
    r["channels"] = encode_resume_channels(h.resume->channels);
    j["resume"] = std::move(r);
  }
}

void encode_fields(OrderedJson& j, const HelloOk& h) {
  j["server"] = h.server;
  if (h.route) j["route"] = *h.route;
  OrderedJson caps = OrderedJson::object();
  caps["flow"] = h.caps.flow;
  caps["maxFrame"] = h.caps.max_frame;
  caps["profileAccepted"] = h.caps.profile_accepted;
  caps["bidi"] = h.caps.bidi;
  if (h.caps.resume_ttl_ms) caps["resumeTtlMs"] = *h.caps.resume_ttl_ms;
  caps["heartbeatMs"] = h.caps.heartbeat_ms;
  caps["idleTimeoutMs"] = h.caps.idle_timeout_ms;
  caps["maxChannels"] = h.caps.max_channels;
  caps["window"] = h.caps.window;
  j["caps"] = std::move(caps);
  if (h.resume) {
    OrderedJson r = OrderedJson::object();
    r["token"] = h.resume->token;
    r["channels"] = encode_resume_channels(h.resume->channels);
    j["resume"] = std::move(r);
  }
}

void encode_fields(OrderedJson& j, const Open& o) {
  j["id"] = o.id;
  j["kind"] = o.kind;
  OrderedJson target = OrderedJson::object();
  target["host"] = o.target.host;
  target["port"] = o.target.port;
  j["target"] = std::move(target);
  if (o.user) {
    OrderedJson user = OrderedJson::object();
    user["username"] = o.user->username;
    user["auth"] = encode_opaque_object(o.user->auth_json);
    j["user"] = std::move(user);
  }
  if (o.term) {
    OrderedJson term = OrderedJson::object();
    term["cols"] = o.term->cols;
    term["rows"] = o.term->rows;
    if (!o.term->env.empty()) {
      OrderedJson env = OrderedJson::object();
      for (const auto& [name, value] : o.term->env)
        env[name] = value;
      term["env"] = std::move(env);
    }
    j["term"] = std::move(term);
  }
  if (o.window) j["window"] = *o.window;
}

void encode_fields(OrderedJson& j, const OpenOk& o) {
  j["id"] = o.id;
  if (o.resume_key) j["resumeKey"] = *o.resume_key;
  if (o.window) j["window"] = *o.window;
}

void encode_fields(OrderedJson& j, const OpenErr& o) {
  j["id"] = o.id;
  j["code"] = o.code;
  j["msg"] = o.msg;
}

void encode_fields(OrderedJson& j, const Resize& r) {
  j["id"] = r.id;
  j["cols"] = r.cols;
  j["rows"] = r.rows;
}

void encode_fields(OrderedJson& j, const Signal& s) {
  j["id"] = s.id;
  j["sig"] = s.sig;
}

void encode_fields(OrderedJson& j, const Close& c) {
  j["id"] = c.id;
  if (c.reason) j["reason"] = *c.reason;
}

void encode_fields(OrderedJson& j, const Exit& e) {
  j["id"] = e.id;
  if (e.code) j["code"] = *e.code;
  if (e.sig) j["sig"] = *e.sig;
}

void encode_fields(OrderedJson& j, const Flow& f) {
  j["id"] = f.id;
  j["credit"] = f.credit;
  if (f.rx) j["rx"] = *f.rx;
}

void encode_fields(OrderedJson& j, const Ping& p) {
  j["ts"] = p.ts;
}

void encode_fields(OrderedJson& j, const Pong& p) {
  j["ts"] = p.ts;
}

}  // namespace

std::string_view type_name(const ControlMessage& m) noexcept {
  static_assert(std::variant_size_v<ControlMessage> == 12, "update type_name and parse_control");
  switch (m.index()) {
    case 0:
      return "hello";
    case 1:
      return "hello_ok";
    case 2:
      return "open";
    case 3:
      return "open_ok";
    case 4:
      return "open_err";
    case 5:
      return "resize";
    case 6:
      return "signal";
    case 7:
      return "close";
    case 8:
      return "exit";
    case 9:
      return "flow";
    case 10:
      return "ping";
    case 11:
      return "pong";
    default:
      return "";
  }
}

Result<ControlMessage> parse_control(std::string_view json, const ParseLimits& limits) {
  if (json.size() > limits.max_json) {
    return make_error(Errc::control_too_large, Origin::remote, "control message too large");
  }
  if (depth_exceeds(json, limits.max_depth)) {
    return make_error(Errc::json_too_deep, Origin::remote, "nesting too deep");
  }
  // nlohmann_json treats a NUL byte as the end of input, which would accept
  // "{...}\0<garbage>"; a raw NUL is never valid in JSON text.
  if (json.find('\0') != std::string_view::npos) {
    return make_error(Errc::bad_json, Origin::remote, "invalid JSON or UTF-8");
  }
  const Json doc = Json::parse(json.begin(), json.end(), nullptr, false);
  if (doc.is_discarded()) {
    return make_error(Errc::bad_json, Origin::remote, "invalid JSON or UTF-8");
  }
  if (!doc.is_object()) {
    return make_error(Errc::not_an_object, Origin::remote, "top level is not an object");
  }

  Context ctx{limits, std::nullopt};
  Fields top(ctx, doc, std::string());
  const std::string t = top.req_string("t");
  if (ctx.error) return std::move(*ctx.error);

  if (t == "hello") return parse_as<Hello>(ctx, doc, t, parse_hello);
  if (t == "hello_ok") return parse_as<HelloOk>(ctx, doc, t, parse_hello_ok);
  if (t == "open") return parse_as<Open>(ctx, doc, t, parse_open);
  if (t == "open_ok") return parse_as<OpenOk>(ctx, doc, t, parse_open_ok);
  if (t == "open_err") return parse_as<OpenErr>(ctx, doc, t, parse_open_err);
  if (t == "resize") return parse_as<Resize>(ctx, doc, t, parse_resize);
  if (t == "signal") return parse_as<Signal>(ctx, doc, t, parse_signal);
  if (t == "close") return parse_as<Close>(ctx, doc, t, parse_close);
  if (t == "exit") return parse_as<Exit>(ctx, doc, t, parse_exit);
  if (t == "flow") return parse_as<Flow>(ctx, doc, t, parse_flow);
  if (t == "ping") return parse_as<Ping>(ctx, doc, t, parse_ping);
  if (t == "pong") return parse_as<Pong>(ctx, doc, t, parse_pong);
  // The type name is peer data: not repeated in the detail.
  return make_error(Errc::unknown_message_type, Origin::remote, "t: unknown message type");
}

std::string encode_control(const ControlMessage& m) {
  OrderedJson j = OrderedJson::object();
  j["t"] = std::string(type_name(m));
  std::visit([&j](const auto& msg) { encode_fields(j, msg); }, m);
  // Strings that are not valid UTF-8 are repaired (U+FFFD) instead of aborting.
  return j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

bool is_resume_token(std::string_view s) noexcept {
  return is_token(s);
}

bool is_route_id(std::string_view s) noexcept {
  if (s.empty() || s.size() > max_route_id_len) return false;
  for (const char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

}  // namespace mana::core
