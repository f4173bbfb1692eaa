// Tests of mana/core/messages.hpp: round trips, exact encodings and every
// validation rule of docs/PROTOCOL.md "Control messages".
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "mana/core/messages.hpp"

using namespace mana::core;  // NOLINT(google-build-using-namespace)

namespace {

Error parse_fail(std::string_view json, const ParseLimits& limits = {}) {
  auto r = parse_control(json, limits);
  if (r.ok()) {
    INFO("input: " << json);
    FAIL("parse unexpectedly succeeded");
  }
  CHECK(r.error().origin == Origin::remote);
  return r.error();
}

template <class T>
T parse_ok(std::string_view json, const ParseLimits& limits = {}) {
  auto r = parse_control(json, limits);
  if (!r.ok()) {
    INFO("input: " << json);
    INFO("error: " << to_string(r.error().code) << " " << r.error().detail);
    FAIL("parse failed");
  }
  REQUIRE(std::holds_alternative<T>(*r));
  return std::get<T>(*r);
}

void check_error(std::string_view json, Errc code, std::string_view detail = {},
                 const ParseLimits& limits = {}) {
  const Error e = parse_fail(json, limits);
  INFO("input: " << json);
  CHECK(to_string(e.code) == to_string(code));
  if (!detail.empty()) CHECK(e.detail == detail);
}

// encode -> parse gives the same value, and encoding is deterministic.
void check_round_trip(const ControlMessage& m) {
  const std::string text = encode_control(m);
  INFO("encoded: " << text);
  auto r = parse_control(text);
  if (!r.ok()) {
    INFO("error: " << to_string(r.error().code) << " " << r.error().detail);
    FAIL("re-parse failed");
  }
  CHECK(r->index() == m.index());
  CHECK(*r == m);
  CHECK(encode_control(*r) == text);
}

std::string repeat(char c, std::size_t n) {
  return std::string(n, c);
}

const std::string token16 = "abcdefghijklmnop";  // 16 chars

// A hello_ok with every required field, `extra_caps` appended to caps.
std::string hello_ok_json(std::string_view extra_caps = {}, std::string_view extra = {}) {
  std::string s =
      R"({"t":"hello_ok","server":"gw","caps":{"flow":"credit","maxFrame":1048576,)"
      R"("profileAccepted":"mana.v1","bidi":true,"heartbeatMs":20000,"idleTimeoutMs":60000,)"
      R"("maxChannels":4,"window":262144)";
  s += extra_caps;
  s += "}";
  s += extra;
  s += "}";
  return s;
}

}  // namespace

// ---- type names and exact encodings -------------------------------------------

TEST_CASE("type_name gives the t value of every message", "[messages]") {
  CHECK(type_name(Hello{}) == "hello");
  CHECK(type_name(HelloOk{}) == "hello_ok");
  CHECK(type_name(Open{}) == "open");
  CHECK(type_name(OpenOk{}) == "open_ok");
  CHECK(type_name(OpenErr{}) == "open_err");
  CHECK(type_name(Resize{}) == "resize");
  CHECK(type_name(Signal{}) == "signal");
  CHECK(type_name(Close{}) == "close");
  CHECK(type_name(Exit{}) == "exit");
  CHECK(type_name(Flow{}) == "flow");
  CHECK(type_name(Ping{}) == "ping");
  CHECK(type_name(Pong{}) == "pong");
}

TEST_CASE("encode: compact JSON, t first, fields in declaration order", "[messages]") {
  Hello h;
  CHECK(encode_control(h) ==
        R"({"t":"hello","proto":1,"caps":{"profile":"mana.v1","bidi":true,"resume":true}})");

  h.auth = Auth{Auth::Scheme::bearer, "tok"};
  h.caps.max_frame = 65536;
  h.resume = ResumeRequest{token16, {{3, 10, 20, true}}};
  CHECK(encode_control(h) ==
        R"({"t":"hello","proto":1,"auth":{"scheme":"bearer","token":"tok"},)"
        R"("caps":{"profile":"mana.v1","maxFrame":65536,"bidi":true,"resume":true},)"
        R"("resume":{"token":"abcdefghijklmnop","channels":[{"id":3,"rx":10,"credit":20,)"
        R"("closed":true}]}})");

  HelloOk ok;
  ok.server = "gw";
  ok.caps.resume_ttl_ms = 60000;
  ok.resume = ResumeGrant{token16, {}};
  CHECK(encode_control(ok) ==
        R"({"t":"hello_ok","server":"gw","caps":{"flow":"credit","maxFrame":1048576,)"
        R"("profileAccepted":"mana.v1","bidi":true,"resumeTtlMs":60000,"heartbeatMs":20000,)"
        R"("idleTimeoutMs":60000,"maxChannels":4,"window":262144},)"
        R"("resume":{"token":"abcdefghijklmnop","channels":[]}})");

  Open o;
  o.id = 1;
  o.target = {"example.org", 22};
  CHECK(encode_control(o) ==
        R"({"t":"open","id":1,"kind":"tcp","target":{"host":"example.org","port":22}})");
  o.user = UserSpec{"bob", R"({"password":"pw"})"};
  o.term = Term{120, 40, {{"TERM", "xterm"}, {"LANG", "C.UTF-8"}}};
  o.window = 524288;
  CHECK(encode_control(o) ==
        R"({"t":"open","id":1,"kind":"tcp","target":{"host":"example.org","port":22},)"
        R"("user":{"username":"bob","auth":{"password":"pw"}},)"
        R"("term":{"cols":120,"rows":40,"env":{"LANG":"C.UTF-8","TERM":"xterm"}},)"
        R"("window":524288})");

  CHECK(encode_control(OpenOk{7, "rk", 1024}) ==
        R"({"t":"open_ok","id":7,"resumeKey":"rk","window":1024})");
  CHECK(encode_control(OpenOk{7, std::nullopt, std::nullopt}) == R"({"t":"open_ok","id":7})");
  CHECK(encode_control(OpenErr{7, "timeout", "no answer"}) ==
        R"({"t":"open_err","id":7,"code":"timeout","msg":"no answer"})");
  CHECK(encode_control(Resize{7, 80, 24}) == R"({"t":"resize","id":7,"cols":80,"rows":24})");
  CHECK(encode_control(Signal{7, "INT"}) == R"({"t":"signal","id":7,"sig":"INT"})");
  CHECK(encode_control(Close{7, "eof"}) == R"({"t":"close","id":7,"reason":"eof"})");
  CHECK(encode_control(Close{7, std::nullopt}) == R"({"t":"close","id":7})");
  CHECK(encode_control(Exit{7, -1, "KILL"}) == R"({"t":"exit","id":7,"code":-1,"sig":"KILL"})");
  CHECK(encode_control(Exit{7, std::nullopt, std::nullopt}) == R"({"t":"exit","id":7})");
  CHECK(encode_control(Flow{7, 4096, 123}) == R"({"t":"flow","id":7,"credit":4096,"rx":123})");
  CHECK(encode_control(Flow{7, 0, std::nullopt}) == R"({"t":"flow","id":7,"credit":0})");
  CHECK(encode_control(Ping{max_json_integer}) == R"({"t":"ping","ts":9007199254740991})");
  CHECK(encode_control(Pong{0}) == R"({"t":"pong","ts":0})");
}

TEST_CASE("encode escapes strings and repairs invalid UTF-8", "[messages]") {
  CHECK(encode_control(Close{1, std::string("a\"b\\c\n\x01\xc3\xa9", 9)}) ==
        "{\"t\":\"close\",\"id\":1,\"reason\":\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"}");
  const std::string bad = encode_control(Close{1, std::string("x\xff", 2)});
  CHECK(bad == "{\"t\":\"close\",\"id\":1,\"reason\":\"x\xef\xbf\xbd\"}");
  CHECK(parse_control(bad).ok());
}

TEST_CASE("encode writes an unusable user.auth text as {}", "[messages]") {
  Open o;
  o.id = 1;
  o.target = {"h", 22};
  o.user = UserSpec{"u", "not json"};
  CHECK(encode_control(o).find(R"("user":{"username":"u","auth":{}})") != std::string::npos);
  o.user->auth_json = "[1,2]";
  CHECK(encode_control(o).find(R"("auth":{})") != std::string::npos);
}

// ---- round trips ------------------------------------------------------------

TEST_CASE("round trip: hello", "[messages]") {
  Hello h;
  h.caps.bidi = false;
  h.caps.resume = false;
  check_round_trip(h);  // optional fields unset

  Hello full;
  full.proto = 1;
  full.auth = Auth{Auth::Scheme::bearer, "secret-token"};
  full.caps.profile = "lenpfx.v1";
  full.caps.max_frame = 16777216;
  full.caps.bidi = true;
  full.caps.resume = true;
  full.resume = ResumeRequest{repeat('A', 256),
                              {{1, 0, 0, false}, {2147483647, max_json_integer - 5, 5, true}}};
  check_round_trip(full);

  Hello none_auth;
  none_auth.auth = Auth{Auth::Scheme::none, {}};
  none_auth.resume = ResumeRequest{token16, {}};
  check_round_trip(none_auth);

  Hello other_proto;
  other_proto.proto = 2;  // kept by the parser; the session rejects it
  check_round_trip(other_proto);
}

TEST_CASE("round trip: hello_ok", "[messages]") {
  HelloOk h;
  h.server = "mana-gateway/1.0";
  check_round_trip(h);

  HelloOk full = h;
  full.caps.max_frame = 1024;
  full.caps.profile_accepted = "json-base64.v1";
  full.caps.bidi = false;
  full.caps.resume_ttl_ms = 4294967295U;
  full.caps.heartbeat_ms = 1;
  full.caps.idle_timeout_ms = 1;
  full.caps.max_channels = 256;
  full.caps.window = std::uint64_t{1} << 30;
  full.resume = ResumeGrant{"Zz09_-Zz09_-Zz09_-Zz09_", {{5, 100, 200, false}, {6, 1, 2, true}}};
  full.route = "gw-0a";
  check_round_trip(full);
}

TEST_CASE("round trip: open", "[messages]") {
  Open o;
  o.id = 1;
  o.target = {"10.0.0.1", 22};
  check_round_trip(o);

  Open full;
  full.id = 2147483647;
  full.kind = "ssh";
  full.target = {repeat('h', 253), 65535};
  full.user = UserSpec{"alice", R"({"a":[1,2,{"b":null}],"key":"value","n":-1.5})"};
  full.term = Term{10000, 1, {{"TERM", "xterm-256color"}, {"COLORTERM", "truecolor"}}};
  full.window = 1024;
  check_round_trip(full);

  Open term_no_env = o;
  term_no_env.term = Term{80, 24, {}};
  term_no_env.window = std::uint64_t{1} << 30;
  check_round_trip(term_no_env);
}

TEST_CASE("round trip: open_ok, open_err, resize, signal", "[messages]") {
  check_round_trip(OpenOk{1, std::nullopt, std::nullopt});
  check_round_trip(OpenOk{9, "resume-key", std::uint64_t{1} << 30});
  check_round_trip(OpenOk{9, "", 1024});
  check_round_trip(OpenErr{3, "policy_denied", "target not allowed"});
  check_round_trip(OpenErr{3, "", ""});
  check_round_trip(Resize{4, 1, 10000});
  check_round_trip(Signal{4, "WINCH"});
  check_round_trip(Signal{4, repeat('9', 32)});
}

TEST_CASE("round trip: close, exit, flow, ping, pong", "[messages]") {
  check_round_trip(Close{1, std::nullopt});
  check_round_trip(Close{1, ""});
  check_round_trip(Close{1, repeat('r', 256)});
  check_round_trip(Close{1, "\xe2\x82\xac \xf0\x9f\x98\x80 \"quoted\" \\ \t\x1f"});
  check_round_trip(Exit{1, std::nullopt, std::nullopt});
  check_round_trip(Exit{1, -2147483647 - 1, "SEGV"});
  check_round_trip(Exit{1, 2147483647, std::nullopt});
  check_round_trip(Exit{1, std::nullopt, ""});
  check_round_trip(Flow{1, 0, std::nullopt});
  check_round_trip(Flow{1, max_json_integer, max_json_integer});
  check_round_trip(Ping{0});
  check_round_trip(Ping{max_json_integer});
  check_round_trip(Pong{1234567});
}

TEST_CASE("parse: optional fields absent take their defaults", "[messages]") {
  const Hello h = parse_ok<Hello>(R"({"t":"hello","proto":1})");
  CHECK(h.proto == 1);
  CHECK_FALSE(h.auth);
  CHECK(h.caps.profile == "mana.v1");
  CHECK_FALSE(h.caps.max_frame);
  CHECK_FALSE(h.caps.bidi);    // not announced
  CHECK_FALSE(h.caps.resume);  // not announced
  CHECK_FALSE(h.resume);

  const Hello empty_caps = parse_ok<Hello>(R"({"t":"hello","proto":1,"caps":{}})");
  CHECK(empty_caps.caps.profile == "mana.v1");
  CHECK_FALSE(empty_caps.caps.bidi);

  const HelloOk ok = parse_ok<HelloOk>(R"({"t":"hello_ok","server":"s","caps":{"flow":"credit",)"
                                       R"("maxFrame":1048576,"profileAccepted":"mana.v1",)"
                                       R"("heartbeatMs":1,"idleTimeoutMs":2,"maxChannels":3,)"
                                       R"("window":4096}})");
  CHECK_FALSE(ok.caps.bidi);  // legacy server: no client->server credit
  CHECK_FALSE(ok.caps.resume_ttl_ms);
  CHECK_FALSE(ok.resume);

  const Open o = parse_ok<Open>(R"({"t":"open","id":1,"target":{"host":"h","port":22}})");
  CHECK(o.kind == "tcp");
  CHECK_FALSE(o.user);
  CHECK_FALSE(o.term);
  CHECK_FALSE(o.window);

  const Open t = parse_ok<Open>(
      R"({"t":"open","id":1,"target":{"host":"h","port":22},"term":{"cols":1,"rows":2}})");
  REQUIRE(t.term);
  CHECK(t.term->env.empty());

  const ResumeChannel ch =
      parse_ok<Hello>(R"({"t":"hello","proto":1,"resume":{"token":"abcdefghijklmnop",)"
                      R"("channels":[{"id":1,"rx":2,"credit":3}]}})")
          .resume->channels.at(0);
  CHECK(ch == ResumeChannel{1, 2, 3, false});
}

TEST_CASE("parse: user.auth is kept as compact JSON text", "[messages]") {
  const Open o =
      parse_ok<Open>(R"({"t":"open","id":1,"target":{"host":"h","port":22},)"
                     R"("user":{"username":"u","auth":{ "password" : "p w",  "n" : [ 1 , 2 ] }}})");
  REQUIRE(o.user);
  CHECK(o.user->username == "u");
  CHECK(o.user->auth_json == R"({"n":[1,2],"password":"p w"})");
}

TEST_CASE("parse: unknown fields are ignored at every level", "[messages]") {
  const Open o = parse_ok<Open>(
      R"({"x":1,"t":"open","id":1,"future":{"a":[1,2]},)"
      R"("target":{"host":"h","port":22,"zone":"eu"},"term":{"cols":1,"rows":1,"px":9}})");
  CHECK(o.id == 1);
  CHECK(o.target.port == 22);
  const Flow f = parse_ok<Flow>(R"({"t":"flow","id":2,"credit":3,"extra":null,"more":1.5})");
  CHECK(f == Flow{2, 3, std::nullopt});
  parse_ok<Hello>(R"({"t":"hello","proto":1,"caps":{"compression":"zstd"},"client":"x"})");
  parse_ok<Hello>(R"({"t":"hello","proto":1,"auth":{"scheme":"none","token":5}})");
}

TEST_CASE("parse: hello.proto other than 1 is kept, not rejected", "[messages]") {
  CHECK(parse_ok<Hello>(R"({"t":"hello","proto":2})").proto == 2);
  CHECK(parse_ok<Hello>(R"({"t":"hello","proto":0})").proto == 0);
  CHECK(parse_ok<Hello>(R"({"t":"hello","proto":2147483647})").proto == 2147483647);
  check_error(R"({"t":"hello","proto":2147483648})", Errc::out_of_range,
              "hello.proto: out of range");
}

// ---- top-level rules -------------------------------------------------------

TEST_CASE("rule: size limit", "[messages]") {
  ParseLimits limits;
  limits.max_json = 40;
  std::string json = R"({"t":"close","id":1,"reason":"")";
  json.insert(json.size() - 1, std::string(40 - json.size() - 1, 'x'));
  json += "}";
  REQUIRE(json.size() == 40);
  parse_ok<Close>(json, limits);
  json.insert(json.size() - 3, "x");
  check_error(json, Errc::control_too_large, {}, limits);

  // Default 64 KiB.
  std::string big = R"({"t":"ping","ts":1,"pad":")";
  big += std::string(64 * 1024, 'p');
  big += "\"}";
  check_error(big, Errc::control_too_large);
  // Checked before anything else: even invalid JSON is reported as too large.
  check_error(std::string(64 * 1024 + 1, '['), Errc::control_too_large);
}

TEST_CASE("rule: depth limit", "[messages]") {
  // Depth 8 (top-level object counts as 1) is accepted.
  const std::string ok8 = R"({"t":"open","id":1,"target":{"host":"h","port":1},)"
                          R"("user":{"username":"u","auth":{"a":{"b":{"c":{"d":[[1]]}}}}}})";
  parse_ok<Open>(ok8);
  const std::string deep9 = R"({"t":"open","id":1,"target":{"host":"h","port":1},)"
                            R"("user":{"username":"u","auth":{"a":{"b":{"c":{"d":[[[1]]]}}}}}})";
  check_error(deep9, Errc::json_too_deep);

  ParseLimits limits;
  limits.max_depth = 2;
  parse_ok<Open>(R"({"t":"open","id":1,"target":{"host":"h","port":1}})", limits);
  check_error(R"({"t":"open","id":1,"target":{"host":"h","port":1},"x":[[]]})", Errc::json_too_deep,
              {}, limits);
}

TEST_CASE("rule: depth pre-scan runs before parsing and ignores strings", "[messages]") {
  // Very deep input never reaches the parser; also invalid JSON.
  check_error(std::string(60000, '['), Errc::json_too_deep);
  check_error("{\"a\":" + std::string(5000, '{'), Errc::json_too_deep);
  // Brackets inside strings (also after escaped quotes) do not count.
  const std::string in_string = R"({"t":"close","id":1,"reason":"[[[[[[[[[[{{{{{{{{{{"})";
  CHECK(parse_ok<Close>(in_string).reason == "[[[[[[[[[[{{{{{{{{{{");
  const std::string escaped = R"({"t":"close","id":1,"reason":"\"[[[[[[[[[[\\\"{{{{{{{{{"})";
  CHECK(parse_ok<Close>(escaped).reason == R"("[[[[[[[[[[\"{{{{{{{{{)");
  const std::string key = R"({"[[[[[[[[[[":1,"t":"ping","ts":5})";
  CHECK(parse_ok<Ping>(key).ts == 5);
  // Closing brackets inside strings do not lower the depth either.
  const std::string closers = R"({"a":"]]]]]]]]]]]]","b":[[[[[[[[[]]]]]]]]],"t":"ping","ts":1})";
  check_error(closers, Errc::json_too_deep);
}

TEST_CASE("rule: top level must be an object", "[messages]") {
  check_error(R"([{"t":"ping","ts":1}])", Errc::not_an_object);
  check_error("42", Errc::not_an_object);
  check_error(R"("ping")", Errc::not_an_object);
  check_error("null", Errc::not_an_object);
  check_error("true", Errc::not_an_object);
}

TEST_CASE("rule: bad JSON", "[messages]") {
  check_error("", Errc::bad_json);
  check_error("   ", Errc::bad_json);
  check_error("{", Errc::bad_json);
  check_error(R"({"t":"ping","ts":1,})", Errc::bad_json);
  check_error(R"({"t":"ping","ts":1} {})", Errc::bad_json);
  check_error(R"({"t":"ping","ts":1}x)", Errc::bad_json);
  check_error(R"({'t':'ping'})", Errc::bad_json);
  check_error(R"({"t":"ping","ts":01})", Errc::bad_json);
  check_error(R"({"t":"ping","ts":NaN})", Errc::bad_json);
  check_error(R"({"t":"ping","ts":1e999})", Errc::bad_json);
  check_error(R"({"t":"ping" "ts":1})", Errc::bad_json);
  // A NUL byte is not the end of the text (nlohmann_json would stop there).
  check_error(std::string("{\"t\":\"ping\",\"ts\":1}\0", 20), Errc::bad_json);
  check_error(std::string("{\"t\":\"ping\",\"ts\":1}\0{[x", 23), Errc::bad_json);
  check_error(std::string("{\"t\":\"ping\",\0\"ts\":1}", 20), Errc::bad_json);
  check_error("{\"t\":\"close\",\"id\":1,\"reason\":\"a\nb\"}", Errc::bad_json);  // raw control
}

TEST_CASE("rule: invalid UTF-8 is bad JSON", "[messages]") {
  check_error("{\"t\":\"close\",\"id\":1,\"reason\":\"\xff\"}", Errc::bad_json);
  check_error("{\"t\":\"close\",\"id\":1,\"reason\":\"\xc3\"}", Errc::bad_json);      // truncated
  check_error("{\"t\":\"close\",\"id\":1,\"reason\":\"\xc0\xaf\"}", Errc::bad_json);  // overlong
  check_error("{\"t\":\"close\",\"id\":1,\"reason\":\"\xed\xa0\x80\"}", Errc::bad_json);  // surrog.
  check_error("{\"t\":\"close\",\"id\":1,\"reason\":\"\xf4\x90\x80\x80\"}", Errc::bad_json);
  check_error(R"({"t":"close","id":1,"reason":"\ud800"})", Errc::bad_json);  // lone surrogate
  check_error("{\"t\":\"close\",\"id\":1,\xc3\xa9:1}", Errc::bad_json);
  // Valid multi-byte UTF-8 and escapes are fine.
  CHECK(parse_ok<Close>("{\"t\":\"close\",\"id\":1,\"reason\":\"\xc3\xa9\xf0\x9f\x98\x80\"}")
            .reason == "\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(parse_ok<Close>(R"({"t":"close","id":1,"reason":"\u00e9\ud83d\ude00"})").reason ==
        "\xc3\xa9\xf0\x9f\x98\x80");
}

TEST_CASE("rule: t missing, wrong type or unknown", "[messages]") {
  check_error(R"({"ts":1})", Errc::missing_field, "t: missing");
  check_error(R"({"t":1})", Errc::wrong_type, "t: wrong type (expected string)");
  check_error(R"({"t":null})", Errc::wrong_type);
  check_error(R"({"t":"data"})", Errc::unknown_message_type, "t: unknown message type");
  check_error(R"({"t":"HELLO","proto":1})", Errc::unknown_message_type);
  check_error(R"({"t":""})", Errc::unknown_message_type);
  check_error(R"({"t":"flow_pause"})", Errc::unknown_message_type);
}

// ---- integer rules ---------------------------------------------------------

TEST_CASE("rule: floats are rejected even when integral", "[messages]") {
  check_error(R"({"t":"ping","ts":1.0})", Errc::wrong_type,
              "ping.ts: wrong type (expected integer)");
  check_error(R"({"t":"ping","ts":1.5})", Errc::wrong_type);
  check_error(R"({"t":"ping","ts":1e3})", Errc::wrong_type);
  check_error(R"({"t":"ping","ts":0.0})", Errc::wrong_type);
  check_error(R"({"t":"ping","ts":-0.0})", Errc::wrong_type);
  check_error(R"({"t":"close","id":1.0})", Errc::wrong_type,
              "close.id: wrong type (expected integer)");
  check_error(R"({"t":"resize","id":1,"cols":80.0,"rows":24})", Errc::wrong_type);
  check_error(R"({"t":"exit","id":1,"code":1.0})", Errc::wrong_type);
  check_error(R"({"t":"hello","proto":1.0})", Errc::wrong_type);
  // Beyond the 64-bit integer range the number is a float: wrong type too.
  check_error(R"({"t":"ping","ts":18446744073709551616})", Errc::wrong_type);
}

TEST_CASE("rule: integers of the wrong JSON type", "[messages]") {
  check_error(R"({"t":"ping","ts":"1"})", Errc::wrong_type);
  check_error(R"({"t":"ping","ts":true})", Errc::wrong_type);
  check_error(R"({"t":"ping","ts":null})", Errc::wrong_type);
  check_error(R"({"t":"ping","ts":[1]})", Errc::wrong_type);
  check_error(R"({"t":"ping","ts":{}})", Errc::wrong_type);
}

TEST_CASE("rule: integers are >= 0 and <= 2^53-1", "[messages]") {
  CHECK(parse_ok<Ping>(R"({"t":"ping","ts":0})").ts == 0);
  CHECK(parse_ok<Ping>(R"({"t":"ping","ts":-0})").ts == 0);
  CHECK(parse_ok<Ping>(R"({"t":"ping","ts":9007199254740991})").ts == max_json_integer);
  check_error(R"({"t":"ping","ts":9007199254740992})", Errc::out_of_range, "ping.ts: out of range");
  check_error(R"({"t":"ping","ts":18446744073709551615})", Errc::out_of_range);
  check_error(R"({"t":"ping","ts":-1})", Errc::out_of_range, "ping.ts: out of range");
  check_error(R"({"t":"ping","ts":-9223372036854775808})", Errc::out_of_range);
  check_error(R"({"t":"pong","ts":-5})", Errc::out_of_range, "pong.ts: out of range");
  check_error(R"({"t":"flow","id":1,"credit":9007199254740992})", Errc::out_of_range,
              "flow.credit: out of range");
  check_error(R"({"t":"flow","id":1,"credit":1,"rx":9007199254740992})", Errc::out_of_range,
              "flow.rx: out of range");
  check_error(R"({"t":"flow","id":1,"credit":-1})", Errc::out_of_range);
  check_error(R"({"t":"open_ok","id":1,"window":9007199254740992})", Errc::out_of_range,
              "open_ok.window: out of range");
}

TEST_CASE("rule: channel ids are 1..2147483647", "[messages]") {
  CHECK(parse_ok<Close>(R"({"t":"close","id":1})").id == 1);
  CHECK(parse_ok<Close>(R"({"t":"close","id":2147483647})").id == 2147483647U);
  check_error(R"({"t":"close","id":0})", Errc::out_of_range, "close.id: out of range");
  check_error(R"({"t":"close","id":2147483648})", Errc::out_of_range);
  check_error(R"({"t":"close","id":4294967296})", Errc::out_of_range);
  check_error(R"({"t":"close","id":-1})", Errc::out_of_range);
  check_error(R"({"t":"close"})", Errc::missing_field, "close.id: missing");
  check_error(R"({"t":"close","id":"1"})", Errc::wrong_type);
  // Every message with an id checks it.
  check_error(R"({"t":"open","id":0,"target":{"host":"h","port":1}})", Errc::out_of_range,
              "open.id: out of range");
  check_error(R"({"t":"open_ok","id":0})", Errc::out_of_range, "open_ok.id: out of range");
  check_error(R"({"t":"open_err","id":0,"code":"c","msg":"m"})", Errc::out_of_range);
  check_error(R"({"t":"resize","id":0,"cols":1,"rows":1})", Errc::out_of_range);
  check_error(R"({"t":"signal","id":0,"sig":"INT"})", Errc::out_of_range);
  check_error(R"({"t":"exit","id":0})", Errc::out_of_range);
  check_error(R"({"t":"flow","id":0,"credit":1})", Errc::out_of_range);
}

// ---- hello -----------------------------------------------------------------

TEST_CASE("rule: hello.proto is a required integer", "[messages]") {
  check_error(R"({"t":"hello"})", Errc::missing_field, "hello.proto: missing");
  check_error(R"({"t":"hello","proto":"1"})", Errc::wrong_type,
              "hello.proto: wrong type (expected integer)");
  check_error(R"({"t":"hello","proto":-1})", Errc::out_of_range);
}

TEST_CASE("rule: hello.auth", "[messages]") {
  const Hello b =
      parse_ok<Hello>(R"({"t":"hello","proto":1,"auth":{"scheme":"bearer","token":"x"}})");
  REQUIRE(b.auth);
  CHECK(b.auth->scheme == Auth::Scheme::bearer);
  CHECK(b.auth->token == "x");
  const Hello n = parse_ok<Hello>(R"({"t":"hello","proto":1,"auth":{"scheme":"none"}})");
  REQUIRE(n.auth);
  CHECK(n.auth->scheme == Auth::Scheme::none);
  CHECK(n.auth->token.empty());

  check_error(R"({"t":"hello","proto":1,"auth":"bearer x"})", Errc::wrong_type,
              "hello.auth: wrong type (expected object)");
  check_error(R"({"t":"hello","proto":1,"auth":{}})", Errc::missing_field,
              "hello.auth.scheme: missing");
  check_error(R"({"t":"hello","proto":1,"auth":{"scheme":1}})", Errc::wrong_type);
  check_error(R"({"t":"hello","proto":1,"auth":{"scheme":"basic"}})", Errc::out_of_range,
              "hello.auth.scheme: out of range");
  check_error(R"({"t":"hello","proto":1,"auth":{"scheme":"bearer"}})", Errc::missing_field,
              "hello.auth.token: missing");
  check_error(R"({"t":"hello","proto":1,"auth":{"scheme":"bearer","token":7}})", Errc::wrong_type);
  check_error(R"({"t":"hello","proto":1,"auth":{"scheme":"bearer","token":""}})",
              Errc::out_of_range, "hello.auth.token: out of range");
  const std::string tok8192 = repeat('t', 8192);
  const std::string pre = R"({"t":"hello","proto":1,"auth":{"scheme":"bearer","token":")";
  CHECK(parse_ok<Hello>(pre + tok8192 + "\"}}").auth->token.size() == 8192);
  check_error(pre + tok8192 + "t\"}}", Errc::out_of_range);
}

TEST_CASE("rule: hello.caps", "[messages]") {
  const Hello h = parse_ok<Hello>(
      R"({"t":"hello","proto":1,"caps":{"profile":"json-base64.v1","maxFrame":1024,)"
      R"("bidi":true,"resume":true}})");
  CHECK(h.caps.profile == "json-base64.v1");
  CHECK(h.caps.max_frame == 1024U);
  CHECK(h.caps.bidi);
  CHECK(h.caps.resume);
  CHECK(parse_ok<Hello>(R"({"t":"hello","proto":1,"caps":{"maxFrame":16777216}})").caps.max_frame ==
        16777216U);

  check_error(R"({"t":"hello","proto":1,"caps":[]})", Errc::wrong_type,
              "hello.caps: wrong type (expected object)");
  check_error(R"({"t":"hello","proto":1,"caps":{"profile":1}})", Errc::wrong_type,
              "hello.caps.profile: wrong type (expected string)");
  check_error(R"({"t":"hello","proto":1,"caps":{"maxFrame":1023}})", Errc::out_of_range,
              "hello.caps.maxFrame: out of range");
  check_error(R"({"t":"hello","proto":1,"caps":{"maxFrame":16777217}})", Errc::out_of_range);
  check_error(R"({"t":"hello","proto":1,"caps":{"maxFrame":1048576.0}})", Errc::wrong_type);
  check_error(R"({"t":"hello","proto":1,"caps":{"bidi":1}})", Errc::wrong_type,
              "hello.caps.bidi: wrong type (expected boolean)");
  check_error(R"({"t":"hello","proto":1,"caps":{"resume":"yes"}})", Errc::wrong_type,
              "hello.caps.resume: wrong type (expected boolean)");
}

TEST_CASE("rule: hello.resume token", "[messages]") {
  const auto hello_with = [](const std::string& token) {
    return R"({"t":"hello","proto":1,"resume":{"token":")" + token + R"(","channels":[]}})";
  };
  CHECK(parse_ok<Hello>(hello_with(token16)).resume->token == token16);
  CHECK(parse_ok<Hello>(hello_with("AZaz09_-AZaz09_-")).resume->token == "AZaz09_-AZaz09_-");
  parse_ok<Hello>(hello_with(repeat('x', 256)));
  check_error(hello_with(repeat('x', 15)), Errc::out_of_range, "hello.resume.token: out of range");
  check_error(hello_with(repeat('x', 257)), Errc::out_of_range);
  check_error(hello_with("abcdefghijklmno="), Errc::out_of_range);  // padding char
  check_error(hello_with("abcdefghijklmno+"), Errc::out_of_range);  // standard alphabet
  check_error(hello_with("abcdefgh ijklmnop"), Errc::out_of_range);
  check_error(R"({"t":"hello","proto":1,"resume":{"channels":[]}})", Errc::missing_field,
              "hello.resume.token: missing");
  check_error(R"({"t":"hello","proto":1,"resume":{"token":1,"channels":[]}})", Errc::wrong_type);
  check_error(R"({"t":"hello","proto":1,"resume":true})", Errc::wrong_type,
              "hello.resume: wrong type (expected object)");
}

TEST_CASE("rule: hello.resume channels", "[messages]") {
  const std::string pre = R"({"t":"hello","proto":1,"resume":{"token":"abcdefghijklmnop",)";
  check_error(pre + "\"x\":1}}", Errc::missing_field, "hello.resume.channels: missing");
  check_error(pre + R"("channels":{}}})", Errc::wrong_type,
              "hello.resume.channels: wrong type (expected array)");
  check_error(pre + R"("channels":[1]}})", Errc::wrong_type,
              "hello.resume.channels[0]: wrong type (expected object)");
  check_error(pre + R"("channels":[{"id":1,"rx":0,"credit":0},{"rx":0,"credit":0}]}})",
              Errc::missing_field, "hello.resume.channels[1].id: missing");
  check_error(pre + R"("channels":[{"id":1,"credit":0}]}})", Errc::missing_field,
              "hello.resume.channels[0].rx: missing");
  check_error(pre + R"("channels":[{"id":1,"rx":0}]}})", Errc::missing_field,
              "hello.resume.channels[0].credit: missing");
  check_error(pre + R"("channels":[{"id":0,"rx":0,"credit":0}]}})", Errc::out_of_range,
              "hello.resume.channels[0].id: out of range");
  check_error(pre + R"("channels":[{"id":1,"rx":9007199254740992,"credit":0}]}})",
              Errc::out_of_range, "hello.resume.channels[0].rx: out of range");
  check_error(pre + R"("channels":[{"id":1,"rx":0,"credit":1.0}]}})", Errc::wrong_type);
  check_error(pre + R"("channels":[{"id":1,"rx":0,"credit":0,"closed":0}]}})", Errc::wrong_type,
              "hello.resume.channels[0].closed: wrong type (expected boolean)");
}

TEST_CASE("rule: resume entry rx + credit stays <= 2^53-1", "[messages]") {
  const std::string pre = R"({"t":"hello","proto":1,"resume":{"token":"abcdefghijklmnop",)";
  const Hello h =
      parse_ok<Hello>(pre + R"("channels":[{"id":1,"rx":9007199254740990,"credit":1}]}})");
  CHECK(h.resume->channels.at(0).credit == 1);
  check_error(pre + R"("channels":[{"id":1,"rx":9007199254740990,"credit":2}]}})",
              Errc::out_of_range, "hello.resume.channels[0].credit: out of range");
  check_error(pre + R"("channels":[{"id":1,"rx":1,"credit":9007199254740991}]}})",
              Errc::out_of_range);
}

TEST_CASE("rule: resume channel ids are unique", "[messages]") {
  const std::string pre = R"({"t":"hello","proto":1,"resume":{"token":"abcdefghijklmnop",)";
  check_error(pre + R"("channels":[{"id":1,"rx":0,"credit":0},{"id":2,"rx":0,"credit":0},)"
                    R"({"id":1,"rx":5,"credit":5}]}})",
              Errc::out_of_range, "hello.resume.channels[2].id: duplicate");
  check_error(hello_ok_json({}, R"(,"resume":{"token":"abcdefghijklmnop","channels":[)"
                                R"({"id":9,"rx":0,"credit":0},{"id":9,"rx":0,"credit":0}]})"),
              Errc::out_of_range, "hello_ok.resume.channels[1].id: duplicate");
}

TEST_CASE("rule: at most 256 resume channels", "[messages]") {
  const auto with_n = [](std::size_t n) {
    std::string s = R"({"t":"hello","proto":1,"resume":{"token":"abcdefghijklmnop","channels":[)";
    for (std::size_t i = 1; i <= n; ++i) {
      if (i > 1) s += ',';
      s += R"({"id":)" + std::to_string(i) + R"(,"rx":0,"credit":0})";
    }
    return s + "]}}";
  };
  CHECK(parse_ok<Hello>(with_n(256)).resume->channels.size() == 256);
  check_error(with_n(257), Errc::out_of_range, "hello.resume.channels: too many entries");
  ParseLimits limits;
  limits.max_resume_channels = 2;
  parse_ok<Hello>(with_n(2), limits);
  check_error(with_n(3), Errc::out_of_range, {}, limits);
}

// ---- hello_ok --------------------------------------------------------------

TEST_CASE("rule: hello_ok required fields", "[messages]") {
  const HelloOk h = parse_ok<HelloOk>(hello_ok_json());
  CHECK(h.server == "gw");
  CHECK(h.caps.flow == "credit");
  CHECK(h.caps.bidi);
  check_error(R"({"t":"hello_ok","caps":{}})", Errc::missing_field, "hello_ok.server: missing");
  check_error(R"({"t":"hello_ok","server":"gw"})", Errc::missing_field, "hello_ok.caps: missing");
  check_error(R"({"t":"hello_ok","server":5,"caps":{}})", Errc::wrong_type);
  check_error(R"({"t":"hello_ok","server":"gw","caps":"x"})", Errc::wrong_type);
  for (const char* field : {"flow", "profileAccepted"}) {
    CAPTURE(field);
    std::string json = hello_ok_json();
    const std::string key = std::string("\"") + field + "\":";
    const auto pos = json.find(key);
    REQUIRE(pos != std::string::npos);
    json.replace(pos, key.size(), std::string("\"x") + field + "\":");
    check_error(json, Errc::missing_field, std::string("hello_ok.caps.") + field + ": missing");
  }
}

TEST_CASE("rule: hello_ok.route is optional and strict", "[messages]") {
  CHECK_FALSE(parse_ok<HelloOk>(hello_ok_json()).route);
  const HelloOk h = parse_ok<HelloOk>(hello_ok_json({}, R"(,"route":"gw-1")"));
  REQUIRE(h.route);
  CHECK(*h.route == "gw-1");
  CHECK(*parse_ok<HelloOk>(hello_ok_json({}, R"(,"route":")" + repeat('a', 32) + "\"")).route ==
        repeat('a', 32));
  // Goes into a URL query by clients (§9.8): anything outside [a-z0-9-]{1,32} is refused.
  for (const std::string& bad :
       {std::string(R"("")"), "\"" + repeat('a', 33) + "\"", std::string(R"("GW")"),
        std::string(R"("gw_1")"), std::string(R"("a&token=x")"), std::string(R"("a b")"),
        std::string(R"("gw%2f")"), std::string(R"("gw.example")")}) {
    CAPTURE(bad);
    check_error(hello_ok_json({}, ",\"route\":" + bad), Errc::out_of_range,
                "hello_ok.route: out of range");
  }
  check_error(hello_ok_json({}, R"(,"route":7)"), Errc::wrong_type);
  CHECK(is_route_id("0"));
  CHECK(is_route_id("127-0-0-1-8022"));
  CHECK_FALSE(is_route_id(""));
  CHECK_FALSE(is_route_id("Gw"));
  CHECK_FALSE(is_route_id(repeat('-', 33)));
}

TEST_CASE("rule: hello_ok.caps fields newer than the baseline default when absent", "[messages]") {
  // A server that predates them sends only flow and profileAccepted (PROTOCOL.md 5.2, A10).
  const HelloOk h = parse_ok<HelloOk>(
      R"({"t":"hello_ok","server":"old","caps":{"flow":"credit","profileAccepted":"mana.v1"}})");
  const ServerCaps defaults;
  CHECK(h.caps.max_frame == defaults.max_frame);
  CHECK(h.caps.max_frame == 1048576U);
  CHECK_FALSE(h.caps.bidi);
  CHECK_FALSE(h.caps.resume_ttl_ms);
  CHECK(h.caps.heartbeat_ms == 20000U);
  CHECK(h.caps.idle_timeout_ms == 60000U);
  CHECK(h.caps.max_channels == 4U);
  CHECK(h.caps.window == 262144U);
  // Present, they are still validated.
  check_error(
      R"({"t":"hello_ok","server":"old","caps":{"flow":"credit","profileAccepted":"p","window":1}})",
      Errc::out_of_range, "hello_ok.caps.window: out of range");
}

TEST_CASE("rule: hello_ok.caps values", "[messages]") {
  const auto with = [](std::string_view field, std::string_view value) {
    std::string json = hello_ok_json();
    const std::string key = "\"" + std::string(field) + "\":";
    const auto pos = json.find(key);
    const auto end = json.find_first_of(",}", pos);
    json.replace(pos + key.size(), end - pos - key.size(), value);
    return json;
  };
  check_error(with("flow", R"("window")"), Errc::out_of_range, "hello_ok.caps.flow: out of range");
  check_error(with("flow", "1"), Errc::wrong_type);
  check_error(with("maxFrame", "1023"), Errc::out_of_range, "hello_ok.caps.maxFrame: out of range");
  check_error(with("maxFrame", "16777217"), Errc::out_of_range);
  check_error(with("profileAccepted", "null"), Errc::wrong_type);
  check_error(with("bidi", "\"true\""), Errc::wrong_type);
  check_error(with("heartbeatMs", "4294967296"), Errc::out_of_range);
  CHECK(parse_ok<HelloOk>(with("heartbeatMs", "4294967295")).caps.heartbeat_ms == 4294967295U);
  check_error(with("idleTimeoutMs", "-1"), Errc::out_of_range);
  // heartbeatMs, idleTimeoutMs, maxChannels and resumeTtlMs are 1..2^32-1.
  check_error(with("heartbeatMs", "0"), Errc::out_of_range,
              "hello_ok.caps.heartbeatMs: out of range");
  check_error(with("idleTimeoutMs", "0"), Errc::out_of_range);
  check_error(with("maxChannels", "0"), Errc::out_of_range,
              "hello_ok.caps.maxChannels: out of range");
  check_error(hello_ok_json(R"(,"resumeTtlMs":0)"), Errc::out_of_range);
  check_error(with("maxChannels", "4.0"), Errc::wrong_type);
  check_error(with("window", "1023"), Errc::out_of_range, "hello_ok.caps.window: out of range");
  check_error(with("window", "1073741825"), Errc::out_of_range);
  CHECK(parse_ok<HelloOk>(with("window", "1073741824")).caps.window == 1073741824U);
  CHECK(parse_ok<HelloOk>(hello_ok_json(R"(,"resumeTtlMs":60000)")).caps.resume_ttl_ms == 60000U);
  check_error(hello_ok_json(R"(,"resumeTtlMs":4294967296)"), Errc::out_of_range,
              "hello_ok.caps.resumeTtlMs: out of range");
  check_error(hello_ok_json(R"(,"resumeTtlMs":"60s")"), Errc::wrong_type);
}

TEST_CASE("rule: hello_ok.resume", "[messages]") {
  const HelloOk h = parse_ok<HelloOk>(
      hello_ok_json({}, R"(,"resume":{"token":"abcdefghijklmnopqrstuv","channels":[]})"));
  REQUIRE(h.resume);
  CHECK(h.resume->channels.empty());
  check_error(hello_ok_json({}, R"(,"resume":{"token":"short","channels":[]})"), Errc::out_of_range,
              "hello_ok.resume.token: out of range");
  check_error(hello_ok_json({}, R"(,"resume":{"token":"abcdefghijklmnopqrstuv"})"),
              Errc::missing_field, "hello_ok.resume.channels: missing");
  check_error(hello_ok_json({}, R"(,"resume":[])"), Errc::wrong_type);
}

// ---- open ------------------------------------------------------------------

TEST_CASE("rule: open.target", "[messages]") {
  const std::string pre = R"({"t":"open","id":1,)";
  check_error(pre + R"("x":1})", Errc::missing_field, "open.target: missing");
  check_error(pre + R"("target":"h:22"})", Errc::wrong_type,
              "open.target: wrong type (expected object)");
  check_error(pre + R"("target":{"port":22}})", Errc::missing_field, "open.target.host: missing");
  check_error(pre + R"("target":{"host":"h"}})", Errc::missing_field, "open.target.port: missing");
  check_error(pre + R"("target":{"host":"","port":22}})", Errc::out_of_range,
              "open.target.host: out of range");
  check_error(pre + R"("target":{"host":")" + repeat('a', 254) + R"(","port":22}})",
              Errc::out_of_range);
  CHECK(parse_ok<Open>(pre + R"("target":{"host":")" + repeat('a', 253) + R"(","port":22}})")
            .target.host.size() == 253);
  check_error(pre + R"("target":{"host":1,"port":22}})", Errc::wrong_type);
  check_error(pre + R"("target":{"host":"h","port":0}})", Errc::out_of_range,
              "open.target.port: out of range");
  check_error(pre + R"("target":{"host":"h","port":65536}})", Errc::out_of_range,
              "open.target.port: out of range");
  CHECK(parse_ok<Open>(pre + R"("target":{"host":"h","port":65535}})").target.port == 65535);
  CHECK(parse_ok<Open>(pre + R"("target":{"host":"h","port":1}})").target.port == 1);
  check_error(pre + R"("target":{"host":"h","port":"22"}})", Errc::wrong_type);
  check_error(pre + R"("target":{"host":"h","port":22.0}})", Errc::wrong_type);
}

TEST_CASE("rule: open.kind is tcp or ssh", "[messages]") {
  const auto with_kind = [](std::string_view kind) {
    return R"({"t":"open","id":1,"kind":)" + std::string(kind) +
           R"(,"target":{"host":"h","port":22}})";
  };
  CHECK(parse_ok<Open>(with_kind(R"("tcp")")).kind == "tcp");
  CHECK(parse_ok<Open>(with_kind(R"("ssh")")).kind == "ssh");
  check_error(with_kind(R"("udp")"), Errc::out_of_range, "open.kind: out of range");
  check_error(with_kind(R"("TCP")"), Errc::out_of_range);
  check_error(with_kind(R"("")"), Errc::out_of_range);
  check_error(with_kind("1"), Errc::wrong_type, "open.kind: wrong type (expected string)");
}

TEST_CASE("rule: open.user", "[messages]") {
  const std::string pre = R"({"t":"open","id":1,"target":{"host":"h","port":22},)";
  check_error(pre + R"("user":"bob"})", Errc::wrong_type);
  check_error(pre + R"("user":{"auth":{}}})", Errc::missing_field, "open.user.username: missing");
  check_error(pre + R"("user":{"username":"u"}})", Errc::missing_field, "open.user.auth: missing");
  check_error(pre + R"("user":{"username":"u","auth":"pw"}})", Errc::wrong_type,
              "open.user.auth: wrong type (expected object)");
  check_error(pre + R"("user":{"username":"u","auth":[]}})", Errc::wrong_type);
  check_error(pre + R"("user":{"username":null,"auth":{}}})", Errc::wrong_type);
  CHECK(parse_ok<Open>(pre + R"("user":{"username":"","auth":{}}})").user->auth_json == "{}");
}

TEST_CASE("rule: open.term cols and rows are 1..10000", "[messages]") {
  const std::string pre = R"({"t":"open","id":1,"target":{"host":"h","port":22},"term":)";
  const Open o = parse_ok<Open>(pre + R"({"cols":10000,"rows":1}})");
  CHECK(o.term->cols == 10000);
  CHECK(o.term->rows == 1);
  check_error(pre + R"({"cols":0,"rows":1}})", Errc::out_of_range, "open.term.cols: out of range");
  check_error(pre + R"({"cols":10001,"rows":1}})", Errc::out_of_range);
  check_error(pre + R"({"cols":1,"rows":0}})", Errc::out_of_range, "open.term.rows: out of range");
  check_error(pre + R"({"cols":1,"rows":10001}})", Errc::out_of_range);
  check_error(pre + R"({"cols":65617,"rows":1}})", Errc::out_of_range);  // would wrap to 81
  check_error(pre + R"({"rows":1}})", Errc::missing_field, "open.term.cols: missing");
  check_error(pre + R"({"cols":1}})", Errc::missing_field, "open.term.rows: missing");
  check_error(pre + R"([80,24]})", Errc::wrong_type, "open.term: wrong type (expected object)");
}

TEST_CASE("rule: open.term.env is an object of at most 64 strings", "[messages]") {
  const auto with_env = [](std::size_t n) {
    std::string s =
        R"({"t":"open","id":1,"target":{"host":"h","port":22},"term":{"cols":1,"rows":1,"env":{)";
    for (std::size_t i = 0; i < n; ++i) {
      if (i > 0) s += ',';
      s += "\"V" + std::to_string(i) + "\":\"v\"";
    }
    return s + "}}}";
  };
  CHECK(parse_ok<Open>(with_env(64)).term->env.size() == 64);
  check_error(with_env(65), Errc::out_of_range, "open.term.env: too many entries");
  ParseLimits limits;
  limits.max_env_entries = 1;
  parse_ok<Open>(with_env(1), limits);
  check_error(with_env(2), Errc::out_of_range, {}, limits);

  const std::string pre = R"({"t":"open","id":1,"target":{"host":"h","port":22},)";
  check_error(pre + R"("term":{"cols":1,"rows":1,"env":{"A":"a","B":1}}})", Errc::wrong_type,
              "open.term.env: wrong type (expected string values)");
  check_error(pre + R"("term":{"cols":1,"rows":1,"env":["A=a"]}})", Errc::wrong_type,
              "open.term.env: wrong type (expected object)");
  const Open o = parse_ok<Open>(pre + R"("term":{"cols":1,"rows":1,"env":{"A":"1","":""}}})");
  CHECK(o.term->env.at("A") == "1");
  CHECK(o.term->env.at("").empty());
}

TEST_CASE("rule: open.window is 1024..2^30", "[messages]") {
  const std::string pre = R"({"t":"open","id":1,"target":{"host":"h","port":22},"window":)";
  CHECK(parse_ok<Open>(pre + "1024}").window == 1024U);
  CHECK(parse_ok<Open>(pre + "1073741824}").window == 1073741824U);
  check_error(pre + "1023}", Errc::out_of_range, "open.window: out of range");
  check_error(pre + "1073741825}", Errc::out_of_range);
  check_error(pre + "0}", Errc::out_of_range);
  check_error(pre + "262144.0}", Errc::wrong_type);
}

// ---- the other messages ------------------------------------------------------

TEST_CASE("rule: open_ok fields", "[messages]") {
  CHECK(parse_ok<OpenOk>(R"({"t":"open_ok","id":3,"resumeKey":"k","window":1024})") ==
        OpenOk{3, "k", 1024});
  CHECK(parse_ok<OpenOk>(R"({"t":"open_ok","id":3,"window":1073741824})").window == 1073741824U);
  check_error(R"({"t":"open_ok","id":3,"window":1023})", Errc::out_of_range,
              "open_ok.window: out of range");
  check_error(R"({"t":"open_ok","id":3,"window":1073741825})", Errc::out_of_range);
  check_error(R"({"t":"open_ok"})", Errc::missing_field, "open_ok.id: missing");
  check_error(R"({"t":"open_ok","id":3,"resumeKey":5})", Errc::wrong_type,
              "open_ok.resumeKey: wrong type (expected string)");
  check_error(R"({"t":"open_ok","id":3,"window":"big"})", Errc::wrong_type);
  check_error(R"({"t":"open_ok","id":3,"window":-1})", Errc::out_of_range);
}

TEST_CASE("rule: open_err fields", "[messages]") {
  CHECK(parse_ok<OpenErr>(R"({"t":"open_err","id":3,"code":"not_ssh","msg":"m"})") ==
        OpenErr{3, "not_ssh", "m"});
  check_error(R"({"t":"open_err","id":3,"msg":"m"})", Errc::missing_field,
              "open_err.code: missing");
  check_error(R"({"t":"open_err","id":3,"code":"c"})", Errc::missing_field,
              "open_err.msg: missing");
  check_error(R"({"t":"open_err","id":3,"code":1,"msg":"m"})", Errc::wrong_type);
  check_error(R"({"t":"open_err","id":3,"code":"c","msg":["m"]})", Errc::wrong_type);
}

TEST_CASE("rule: resize cols and rows are 1..10000", "[messages]") {
  CHECK(parse_ok<Resize>(R"({"t":"resize","id":1,"cols":1,"rows":10000})") == Resize{1, 1, 10000});
  check_error(R"({"t":"resize","id":1,"cols":0,"rows":1})", Errc::out_of_range,
              "resize.cols: out of range");
  check_error(R"({"t":"resize","id":1,"cols":10001,"rows":1})", Errc::out_of_range);
  check_error(R"({"t":"resize","id":1,"cols":1,"rows":0})", Errc::out_of_range,
              "resize.rows: out of range");
  check_error(R"({"t":"resize","id":1,"cols":1,"rows":10001})", Errc::out_of_range);
  check_error(R"({"t":"resize","id":1,"rows":1})", Errc::missing_field, "resize.cols: missing");
  check_error(R"({"t":"resize","id":1,"cols":1})", Errc::missing_field, "resize.rows: missing");
}

TEST_CASE("rule: signal.sig is 1..32 chars [A-Z0-9]", "[messages]") {
  const auto with = [](std::string_view sig) {
    return R"({"t":"signal","id":1,"sig":")" + std::string(sig) + "\"}";
  };
  CHECK(parse_ok<Signal>(with("INT")).sig == "INT");
  CHECK(parse_ok<Signal>(with("RTMIN1")).sig == "RTMIN1");
  parse_ok<Signal>(with(repeat('A', 32)));
  check_error(with(""), Errc::out_of_range, "signal.sig: out of range");
  check_error(with(repeat('A', 33)), Errc::out_of_range);
  check_error(with("int"), Errc::out_of_range);
  check_error(with("SIG-INT"), Errc::out_of_range);
  check_error(with("SIG_INT"), Errc::out_of_range);
  check_error(R"({"t":"signal","id":1,"sig":2})", Errc::wrong_type);
  check_error(R"({"t":"signal","id":1})", Errc::missing_field, "signal.sig: missing");
}

TEST_CASE("rule: close.reason is at most 256 bytes", "[messages]") {
  const auto with = [](const std::string& reason) {
    return R"({"t":"close","id":1,"reason":")" + reason + "\"}";
  };
  CHECK(parse_ok<Close>(with(repeat('r', 256))).reason->size() == 256);
  CHECK(parse_ok<Close>(with("")).reason == "");
  check_error(with(repeat('r', 257)), Errc::out_of_range, "close.reason: out of range");
  // Counted in bytes of UTF-8: 128 two-byte characters fit, 129 do not.
  std::string two_byte;
  for (int i = 0; i < 128; ++i)
    two_byte += "\xc3\xa9";
  parse_ok<Close>(with(two_byte));
  check_error(with(two_byte + "\xc3\xa9"), Errc::out_of_range);
  check_error(R"({"t":"close","id":1,"reason":null})", Errc::wrong_type);
}

TEST_CASE("rule: exit.code is an int32, exit.sig a string", "[messages]") {
  CHECK(parse_ok<Exit>(R"({"t":"exit","id":1,"code":-2147483648})").code == -2147483647 - 1);
  CHECK(parse_ok<Exit>(R"({"t":"exit","id":1,"code":2147483647})").code == 2147483647);
  CHECK(parse_ok<Exit>(R"({"t":"exit","id":1,"code":0,"sig":"TERM"})") == Exit{1, 0, "TERM"});
  check_error(R"({"t":"exit","id":1,"code":2147483648})", Errc::out_of_range,
              "exit.code: out of range");
  check_error(R"({"t":"exit","id":1,"code":-2147483649})", Errc::out_of_range);
  check_error(R"({"t":"exit","id":1,"code":"1"})", Errc::wrong_type,
              "exit.code: wrong type (expected integer)");
  check_error(R"({"t":"exit","id":1,"sig":9})", Errc::wrong_type,
              "exit.sig: wrong type (expected string)");
}

TEST_CASE("rule: flow.credit is required", "[messages]") {
  CHECK(parse_ok<Flow>(R"({"t":"flow","id":1,"credit":0,"rx":77})") == Flow{1, 0, 77});
  check_error(R"({"t":"flow","id":1})", Errc::missing_field, "flow.credit: missing");
  check_error(R"({"t":"flow","id":1,"rx":1})", Errc::missing_field);
  check_error(R"({"t":"flow","id":1,"credit":"1"})", Errc::wrong_type);
  check_error(R"({"t":"flow","id":1,"credit":1,"rx":false})", Errc::wrong_type,
              "flow.rx: wrong type (expected integer)");
}

TEST_CASE("rule: ping and pong need ts", "[messages]") {
  check_error(R"({"t":"ping"})", Errc::missing_field, "ping.ts: missing");
  check_error(R"({"t":"pong"})", Errc::missing_field, "pong.ts: missing");
  check_error(R"({"t":"pong","ts":"0"})", Errc::wrong_type);
  CHECK(parse_ok<Pong>(R"({"t":"pong","ts":42,"echoed":true})").ts == 42);
}

TEST_CASE("parse: the first error in field order wins", "[messages]") {
  check_error(R"({"t":"resize","cols":0,"rows":0})", Errc::missing_field, "resize.id: missing");
  check_error(R"({"t":"resize","id":1,"cols":0,"rows":"x"})", Errc::out_of_range,
              "resize.cols: out of range");
}

TEST_CASE("parse: duplicate JSON keys keep the last value", "[messages]") {
  CHECK(parse_ok<Ping>(R"({"t":"ping","ts":1,"ts":2})").ts == 2);
}

TEST_CASE("parse: error details never echo peer strings", "[messages]") {
  const Error e = parse_fail(R"({"t":"s3cr3t-type"})");
  CHECK(e.detail.find("s3cr3t") == std::string::npos);
  const Error env = parse_fail(R"({"t":"open","id":1,"target":{"host":"h","port":22},)"
                               R"("term":{"cols":1,"rows":1,"env":{"S3CR3T":1}}})");
  CHECK(env.detail.find("S3CR3T") == std::string::npos);
}
