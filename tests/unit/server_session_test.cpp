// Unit tests for mana/core/server_session.hpp (and the SessionCore machinery it
// shares with the client): handshake, every class of bad input with its exact
// close code, channels, credit, pause reasons, heartbeats and timeouts.
//
// Inputs are crafted WebSocket messages fed at literal timestamps; every fatal
// case checks the queued close message (last output, exact code), the
// event::Closed (code, origin, resumable) and that nothing is emitted after it.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "support/session_test_util.hpp"

using namespace mana::test;  // NOLINT(google-build-using-namespace)
using mana::core::AcceptParams;
using mana::core::CloseCode;
using mana::core::Errc;
using mana::core::Origin;
using mana::core::PauseReason;
using mana::core::PolicyKind;
namespace event = mana::core::event;
namespace core = mana::core;

namespace {

constexpr Timestamp t0 = at_ms(1000);

std::string hello_json(std::string_view profile = "mana.v1") {
  std::string s = R"({"t":"hello","proto":1,"auth":{"scheme":"bearer","token":"secret"},)";
  s += R"("caps":{"profile":")";
  s += profile;
  s += R"(","maxFrame":16384,"bidi":true,"resume":true}})";
  return s;
}

// A ServerSession that has just been created (transport up, no hello yet).
ServerSession fresh_server(Timestamp now = t0) {
  return ServerSession(test_server_config(), now);
}

// A server that received a valid hello and is waiting for the host's decision.
void hello_to(ServerSession& s, Timestamp now = t0, std::string_view profile = "mana.v1") {
  feed_text(s, hello_json(profile), now);
  REQUIRE(s.state() == SessionState::authenticating);
  REQUIRE(drain_output(s).empty());
  drain_events(s);
}

// Client and server after the handshake, channel 1 open and acknowledged,
// logs and output empty.
struct ReadyPair {
  explicit ReadyPair(std::string_view profile = "mana.v1") : pair(profile) {
    REQUIRE(pair.handshake(t0));
    id = pair.open(t0);
    REQUIRE(id == 1);
    pair.clear_logs();
  }
  ServerSession& server() { return pair.server; }
  ClientSession& client() { return pair.client; }
  SessionPair pair;
  ChannelId id = 0;
};

std::string big_control(std::size_t size) {
  std::string s = R"({"t":"ping","ts":1,"pad":")";
  s.append(size - s.size() - 2, 'x');
  s += "\"}";
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------
// Handshake

TEST_CASE("server: handshake succeeds in every built-in profile, hello_ok first", "[session]") {
  const std::string profile = GENERATE(as<std::string>{}, "mana.v1", "json-base64.v1", "lenpfx.v1");
  CAPTURE(profile);
  SessionPair p(profile);

  REQUIRE(p.client.transport_open(t0));
  const auto hello = drain_output(p.client);
  REQUIRE(hello.size() == 1);  // C1: hello only, and as plain JSON text
  CHECK(hello[0].type == MessageType::text);
  CHECK(as_text(hello[0]).find(R"("t":"hello")") != std::string::npos);
  CHECK(as_text(hello[0]).find("\"profile\":\"" + profile + "\"") != std::string::npos);

  feed(p.server, hello[0], t0);
  auto sev = drain_events(p.server);
  const auto hr = first_event<event::HelloReceived>(sev);
  REQUIRE(hr);
  CHECK(hr->hello.caps.profile == profile);
  CHECK(hr->hello.auth == core::Auth{core::Auth::Scheme::bearer, "secret"});
  CHECK(p.server.state() == SessionState::authenticating);
  CHECK_FALSE(p.server.has_output());  // S1: nothing before hello_ok

  REQUIRE(p.server.accept(AcceptParams{std::string(token_a)}, t0));
  const auto ok = drain_output(p.server);
  REQUIRE(ok.size() == 1);
  CHECK(ok[0].type == MessageType::text);  // bootstrap: text even for lenpfx.v1
  auto msg = mana::core::parse_control(as_text(ok[0]));
  REQUIRE(msg);
  const auto* hok = std::get_if<core::HelloOk>(&msg.value());
  REQUIRE(hok != nullptr);
  CHECK(hok->server == "test-server");
  CHECK(hok->caps.profile_accepted == profile);
  CHECK(hok->caps.max_frame == test_max_frame);
  CHECK(hok->caps.window == test_window);
  CHECK(hok->caps.max_channels == 4);
  CHECK(hok->caps.heartbeat_ms == test_heartbeat_ms);
  CHECK(hok->caps.idle_timeout_ms == test_idle_ms);
  CHECK(hok->caps.resume_ttl_ms == std::optional<std::uint32_t>(test_resume_ttl_ms));
  REQUIRE(hok->resume);
  CHECK(hok->resume->token == token_a);
  CHECK(hok->resume->channels.empty());
  CHECK(p.server.state() == SessionState::ready);

  feed(p.client, ok[0], t0);
  auto cev = drain_events(p.client);
  const auto ready = first_event<event::Ready>(cev);
  REQUIRE(ready);
  CHECK_FALSE(ready->resumed);
  CHECK(ready->hello_ok.caps.profile_accepted == profile);
  CHECK(p.client.state() == SessionState::ready);
  CHECK(p.client.resume_token() == std::optional<std::string>(token_a));
  CHECK(&p.client.profile() == &p.server.profile());
  CHECK(p.client.profile().id() == profile);

  // From here on frames use the profile: the open goes out encoded.
  core::OpenParams op;
  op.target = core::Target{"db.internal", 5432};
  auto id = p.client.open_channel(op, t0);
  REQUIRE(id);
  const auto open = drain_output(p.client);
  REQUIRE(open.size() == 1);
  if (profile == "lenpfx.v1") {
    CHECK(open[0].type == MessageType::binary);
    REQUIRE(open[0].data.size() > 9);
    CHECK(open[0].data[4] == lenpfx_control);
  } else {
    CHECK(open[0].type == MessageType::text);
  }
  feed(p.server, open[0], t0);
  sev = drain_events(p.server);
  const auto req = first_event<event::OpenRequested>(sev);
  REQUIRE(req);
  CHECK(req->open.target == core::Target{"db.internal", 5432});
  REQUIRE(p.server.accept_open(*id, std::nullopt, t0));
  p.pump(t0);
  REQUIRE(first_event<event::ChannelOpened>(p.client_log));

  // Data both ways in the profile's encoding.
  REQUIRE(p.server.write(*id, Stream::out, view_of("to client"), t0).value() == 9);
  REQUIRE(p.server.write(*id, Stream::err, view_of("err"), t0).value() == 3);
  REQUIRE(p.client.write(*id, Stream::out, view_of("to server"), t0).value() == 9);
  p.pump(t0);
  CHECK(channel_text(p.client_log, *id) == "to clienterr");
  const auto cdata = events_of<event::ChannelData>(p.client_log);
  REQUIRE(cdata.size() == 2);
  CHECK(cdata[1].stream == Stream::err);
  CHECK(channel_text(p.server_log, *id) == "to server");
}

TEST_CASE("server: unknown profile closes 4001", "[session][badinput]") {
  auto s = fresh_server();
  feed_text(s, hello_json("vendor.nope.v9"), t0);
  CHECK(expect_close(s, CloseCode::unsupported_profile, Origin::remote, t0) == "");
}

TEST_CASE("server: malformed hello closes 4002", "[session][badinput]") {
  // clang-format off
  const std::string hello = GENERATE(as<std::string>{},
      R"({"t":"hello","caps":{"profile":"mana.v1"}})",                  // proto missing
      R"({"t":"hello","proto":2})",                                      // unsupported proto
      R"({"t":"hello","proto":0})",
      R"({"t":"hello","proto":"1"})",                                    // wrong type
      R"({"t":"hello","proto":1.5})",
      R"({"t":"hello","proto":-1})",
      R"({"t":"hello","proto":1,"caps":"mana.v1"})",
      R"({"t":"hello","proto":1,"caps":{"bidi":"yes"}})",
      R"({"t":"hello","proto":1,"caps":{"profile":7}})",
      R"({"t":"hello","proto":1,"caps":{"maxFrame":100}})",              // below 1024
      R"({"t":"hello","proto":1,"caps":{"maxFrame":16777217}})",
      R"({"t":"hello","proto":1,"auth":{"scheme":"bearer","token":""}})",
      R"({"t":"hello","proto":1,"auth":{"scheme":"bearer"}})",
      R"({"t":"hello","proto":1,"auth":{"scheme":"magic"}})",
      R"({"t":"hello","proto":1,"auth":"secret"})",
      R"({"t":"hello","proto":1,"resume":{"token":"bad token with spaces!","channels":[]}})",
      R"({"t":"hello","proto":1,"resume":{"token":"short","channels":[]}})",
      R"({"t":"hello","proto":1,"resume":{"token":"tokenAAAAAAAAAAAAAAAAAAA"}})",
      R"({"t":"hello","proto":1,"resume":{"token":"tokenAAAAAAAAAAAAAAAAAAA","channels":{}}})",
      R"({"t":"hello","proto":1,"resume":{"token":"tokenAAAAAAAAAAAAAAAAAAA",)"
      R"("channels":[{"id":1,"rx":0,"credit":0},{"id":1,"rx":0,"credit":0}]}})",
      R"({"t":"hello","proto":1,"resume":{"token":"tokenAAAAAAAAAAAAAAAAAAA",)"
      R"("channels":[{"id":0,"rx":0,"credit":0}]}})",
      R"({"t":"hello","proto":1)",                                       // truncated JSON
      R"(hello)",                                                        // not JSON
      R"([{"t":"hello","proto":1}])",                                    // not an object
      R"({"proto":1})",                                                  // no "t"
      R"({"t":1,"proto":1})",
      R"({"t":"hello","proto":1,"x":[[[[[[[[[[1]]]]]]]]]]})");         // too deep
  CAPTURE(hello);
  // clang-format on
  auto s = fresh_server();
  feed_text(s, hello, t0);
  CHECK(expect_close(s, CloseCode::bad_hello, Origin::remote, t0) == "");
}

TEST_CASE("server: a first message other than hello closes 4002", "[session][badinput]") {
  auto s = fresh_server();
  SECTION("open") {
    feed_text(s, R"({"t":"open","id":1,"target":{"host":"h","port":22}})", t0);
  }
  SECTION("ping") {
    feed_text(s, R"({"t":"ping","ts":5})", t0);
  }
  SECTION("flow") {
    feed_text(s, R"({"t":"flow","id":1,"credit":10})", t0);
  }
  SECTION("hello_ok") {
    feed_text(s,
              R"({"t":"hello_ok","server":"x","caps":{"flow":"credit","maxFrame":1024,)"
              R"("profileAccepted":"mana.v1","heartbeatMs":1000,"idleTimeoutMs":60000,)"
              R"("maxChannels":4,"window":4096}})",
              t0);
  }
  SECTION("unknown type") {
    feed_text(s, R"({"t":"bogus"})", t0);
  }
  SECTION("binary data frame") {
    feed_binary(s, mana_v1_data(0x01, 1, "data"), t0);
  }
  SECTION("binary lenpfx envelope") {
    feed_binary(s, lenpfx_envelope(lenpfx_control, 0, hello_json("lenpfx.v1")), t0);
  }
  CHECK(expect_close(s, CloseCode::bad_hello, Origin::remote, t0) == "");
}

TEST_CASE("server: a second hello closes 4009", "[session][badinput]") {
  SECTION("after hello_ok, in every profile") {
    const std::string profile =
        GENERATE(as<std::string>{}, "mana.v1", "json-base64.v1", "lenpfx.v1");
    CAPTURE(profile);
    SessionPair p(profile);
    REQUIRE(p.handshake(t0));
    p.clear_logs();
    feed_control(p.server, hello_json(profile), t0 + core::Duration::from_ms(1));
    CHECK(expect_close(p.server, CloseCode::unsupported_message, Origin::remote, t0) == "");
  }
  SECTION("while the host decides") {
    auto s = fresh_server();
    hello_to(s);
    feed_text(s, hello_json(), t0);
    CHECK(expect_close(s, CloseCode::unsupported_message, Origin::remote, t0) == "");
  }
}

TEST_CASE("server: client messages between hello and hello_ok close 4009", "[session][badinput]") {
  auto s = fresh_server();
  hello_to(s);
  SECTION("open") {
    feed_text(s, R"({"t":"open","id":1,"target":{"host":"h","port":22}})", t0);
  }
  SECTION("ping") {
    feed_text(s, R"({"t":"ping","ts":5})", t0);
  }
  SECTION("close") {
    feed_text(s, R"({"t":"close","id":1})", t0);
  }
  SECTION("binary data") {
    feed_binary(s, mana_v1_data(0x01, 1, "early"), t0);
  }
  CHECK(expect_close(s, CloseCode::unsupported_message, Origin::remote, t0) == "");
  CHECK_FALSE(s.accept(AcceptParams{std::string(token_a)}, t0));
  CHECK_FALSE(s.has_output());
}

TEST_CASE("server: host rejects authentication with 4003", "[session]") {
  auto s = fresh_server();
  hello_to(s);
  s.reject(Errc::auth_failed, "bad credentials", t0);
  const auto out = drain_output(s);
  const auto ev = drain_events(s);
  CHECK(check_close(s, out, ev, CloseCode::auth_failed, Origin::local, false, t0) == "");
  CHECK(out.size() == 1);  // nothing but the close
  CHECK(events_of<event::Closed>(ev).front().error == Errc::auth_failed);
}

TEST_CASE("server: handshake timeout closes 4012", "[session]") {
  auto s = fresh_server();
  SECTION("no hello") {}
  SECTION("hello, host never decides") {
    hello_to(s);
  }
  const Timestamp deadline = t0 + core::Duration::from_ms(test_handshake_ms);
  REQUIRE(s.next_timeout() == deadline);
  s.handle_timeout(plus_ms(deadline, -1));
  CHECK_FALSE(s.has_output());
  CHECK(s.state() != SessionState::closed);
  s.handle_timeout(deadline);
  CHECK(expect_close(s, CloseCode::timeout, Origin::local, deadline) == "");
  CHECK_FALSE(s.next_timeout());
}

// ---------------------------------------------------------------------------
// Bad input after the handshake (channel 1 open, window test_window)

TEST_CASE("server: malformed mana.v1 frames close 4014", "[session][badinput]") {
  ReadyPair r;
  SECTION("binary shorter than 5 bytes") {
    feed_binary(r.server(), Bytes{0x01, 0, 0, 0}, t0);
  }
  SECTION("empty binary") {
    feed_binary(r.server(), Bytes{}, t0);
  }
  SECTION("reserved stream byte 0x03") {
    feed_binary(r.server(), mana_v1_data(0x03, 1, "x"), t0);
  }
  SECTION("reserved stream byte 0x00") {
    feed_binary(r.server(), mana_v1_data(0x00, 1, "x"), t0);
  }
  SECTION("channel id 0") {
    feed_binary(r.server(), mana_v1_data(0x01, 0, "x"), t0);
  }
  SECTION("channel id 2^31") {
    feed_binary(r.server(), mana_v1_data(0x01, 0x80000000U, "x"), t0);
  }
  SECTION("client sends on stderr") {
    feed_binary(r.server(), mana_v1_data(0x02, 1, "x"), t0);
  }
  SECTION("data for an unknown channel") {
    feed_binary(r.server(), mana_v1_data(0x01, 7, "x"), t0);
  }
  CHECK(expect_close(r.server(), CloseCode::malformed_frame, Origin::remote, t0) == "");
}

TEST_CASE("server: malformed lenpfx.v1 envelopes close 4014", "[session][badinput]") {
  ReadyPair r("lenpfx.v1");
  SECTION("length larger than the message") {
    feed_binary(r.server(), lenpfx_raw(100, 0x01, 1, "abc"), t0);
  }
  SECTION("length smaller than the message") {
    feed_binary(r.server(), lenpfx_raw(6, 0x01, 1, "abc"), t0);
  }
  SECTION("length below 5") {
    feed_binary(r.server(), lenpfx_raw(3, 0x01, 1, ""), t0);
  }
  SECTION("shorter than the header") {
    feed_binary(r.server(), Bytes{0, 0, 0, 5, 1, 0, 0}, t0);
  }
  SECTION("reserved kind") {
    feed_binary(r.server(), lenpfx_envelope(0x05, 1, "x"), t0);
  }
  SECTION("control envelope with id != 0") {
    feed_binary(r.server(), lenpfx_envelope(lenpfx_control, 1, R"({"t":"ping","ts":1})"), t0);
  }
  SECTION("text message") {
    feed_text(r.server(), R"({"t":"ping","ts":1})", t0);
  }
  SECTION("stderr from the client") {
    feed_binary(r.server(), lenpfx_envelope(0x02, 1, "x"), t0);
  }
  SECTION("data for an unknown channel") {
    feed_binary(r.server(), lenpfx_envelope(0x01, 9, "x"), t0);
  }
  CHECK(expect_close(r.server(), CloseCode::malformed_frame, Origin::remote, t0) == "");
}

TEST_CASE("server: malformed json-base64.v1 data closes 4014", "[session][badinput]") {
  ReadyPair r("json-base64.v1");
  SECTION("bad alphabet") {
    feed_text(r.server(), jb64_data("stdout", 1, "ab$d"), t0);
  }
  SECTION("length not a multiple of 4") {
    feed_text(r.server(), jb64_data("stdout", 1, "QQ="), t0);
  }
  SECTION("non-zero trailing bits") {
    feed_text(r.server(), jb64_data("stdout", 1, "QR=="), t0);
  }
  SECTION("padding in the middle") {
    feed_text(r.server(), jb64_data("stdout", 1, "QQ==QUFB"), t0);
  }
  SECTION("url-safe alphabet") {
    feed_text(r.server(), jb64_data("stdout", 1, "-_-_"), t0);
  }
  SECTION("unknown stream") {
    feed_text(r.server(), jb64_data("stdin", 1, "QUFB"), t0);
  }
  SECTION("stderr from the client") {
    feed_text(r.server(), jb64_data("stderr", 1, "QUFB"), t0);
  }
  SECTION("id missing") {
    feed_text(r.server(), R"({"kind":"data","stream":"stdout","payload":"QUFB"})", t0);
  }
  SECTION("id as a string") {
    feed_text(r.server(), R"({"kind":"data","stream":"stdout","id":"1","payload":"QUFB"})", t0);
  }
  SECTION("binary message") {
    feed_binary(r.server(), mana_v1_data(0x01, 1, "x"), t0);
  }
  SECTION("invalid JSON") {
    feed_text(r.server(), R"({"kind":"data",)", t0);
  }
  CHECK(expect_close(r.server(), CloseCode::malformed_frame, Origin::remote, t0) == "");
}

TEST_CASE("server: malformed control messages close 4014", "[session][badinput]") {
  const std::string profile = GENERATE(as<std::string>{}, "mana.v1", "json-base64.v1", "lenpfx.v1");
  // clang-format off
  const std::string json = GENERATE(as<std::string>{},
      R"({"t":"ping","ts":1)",                                          // bad JSON
      "{\"t\":\"ping\",\"ts\":1,\"x\":\"\xff\xfe\"}",                   // invalid UTF-8
      R"([1,2,3])",                                                     // not an object
      R"("ping")",
      R"({"ts":1})",                                                    // "t" missing
      R"({"t":["ping"]})",                                              // "t" wrong type
      R"({"t":"flow","id":"1","credit":10})",                           // wrong types
      R"({"t":"flow","id":1,"credit":"10"})",
      R"({"t":"flow","id":1,"credit":1.5})",
      R"({"t":"flow","id":1,"credit":1e3})",
      R"({"t":"flow","id":1,"credit":true})",
      R"({"t":"resize","id":1,"cols":"80","rows":24})",
      R"({"t":"signal","id":1,"sig":5})",
      R"({"t":"flow","id":1})",                                         // missing field
      R"({"t":"ping"})",
      R"({"t":"open","id":2,"target":{"host":"h","port":0}})",          // out of range
      R"({"t":"open","id":2,"target":{"host":"h","port":70000}})",
      R"({"t":"open","id":2,"target":{"host":"","port":22}})",
      R"({"t":"open","id":0,"target":{"host":"h","port":22}})",
      R"({"t":"open","id":2147483648,"target":{"host":"h","port":22}})",
      R"({"t":"open","id":2,"target":{"host":"h","port":22},"window":10})",
      R"({"t":"open","id":2,"kind":"udp","target":{"host":"h","port":22}})",
      R"({"t":"flow","id":1,"credit":-1})",
      R"({"t":"flow","id":1,"credit":9007199254740992})",               // 2^53
      R"({"t":"flow","id":1,"credit":0,"rx":-5})",
      R"({"t":"flow","id":0,"credit":1})",
      R"({"t":"resize","id":1,"cols":0,"rows":24})",
      R"({"t":"resize","id":1,"cols":80,"rows":10001})",
      R"({"t":"signal","id":1,"sig":"int"})",
      R"({"t":"signal","id":1,"sig":""})",
      R"({"t":"close","id":1,"reason":7})",
      R"({"t":"resize","id":5,"cols":80,"rows":24})",                    // unknown channel
      R"({"t":"signal","id":5,"sig":"INT"})",
      R"({"t":"flow","id":5,"credit":1})",
      R"({"t":"close","id":5})");
  // clang-format on
  CAPTURE(profile, json);
  ReadyPair r(profile);
  feed_control(r.server(), json, t0);
  CHECK(expect_close(r.server(), CloseCode::malformed_frame, Origin::remote, t0) == "");
}

TEST_CASE("server: unknown or misdirected message types close 4009", "[session][badinput]") {
  const std::string profile = GENERATE(as<std::string>{}, "mana.v1", "json-base64.v1", "lenpfx.v1");
  // clang-format off
  const std::string json = GENERATE(as<std::string>{},
      R"({"t":"bogus","id":1})",
      R"({"t":"HELLO","proto":1})",
      R"({"t":"open_ok","id":1})",     // server-to-client messages
      R"({"t":"open_err","id":1,"code":"x","msg":"y"})",
      R"({"t":"exit","id":1,"code":0})",
      R"({"t":"hello_ok","server":"x","caps":{"flow":"credit","maxFrame":1024,)"
      R"("profileAccepted":"mana.v1","heartbeatMs":1000,"idleTimeoutMs":60000,)"
      R"("maxChannels":4,"window":4096}})");
  // clang-format on
  CAPTURE(profile, json);
  ReadyPair r(profile);
  feed_control(r.server(), json, t0);
  CHECK(expect_close(r.server(), CloseCode::unsupported_message, Origin::remote, t0) == "");
}

TEST_CASE("server: oversize messages close 4008", "[session][badinput]") {
  const std::string profile = GENERATE(as<std::string>{}, "mana.v1", "json-base64.v1", "lenpfx.v1");
  CAPTURE(profile);
  ReadyPair r(profile);
  SECTION("message above maxFrame") {
    const std::string payload(test_max_frame, 'a');  // plus the header: one byte too many
    const OutMessage m = r.server().profile().encode_data(Stream::out, 1, view_of(payload));
    REQUIRE(m.data.size() > test_max_frame);
    feed(r.server(), m, t0);
  }
  SECTION("message of exactly maxFrame + 1 bytes") {
    Bytes b(test_max_frame + 1, 'x');
    r.server().receive(
        r.server().profile().id() == "lenpfx.v1" ? MessageType::binary : MessageType::text,
        ByteView(b.data(), b.size()), t0);
  }
  SECTION("control JSON above the control limit") {
    const std::string json = big_control(test_max_control + 1);
    REQUIRE(json.size() == test_max_control + 1);
    feed_control(r.server(), json, t0);
  }
  CHECK(expect_close(r.server(), CloseCode::frame_too_large, Origin::remote, t0) == "");
}

TEST_CASE("server: limits at exactly the maximum are accepted", "[session]") {
  ReadyPair r;
  feed_control(r.server(), big_control(test_max_control), t0);
  const auto out = drain_output(r.server());
  REQUIRE(out.size() == 1);  // the pong
  CHECK(r.server().state() == SessionState::ready);
  const std::string payload(test_window, 'p');  // exactly the credit, one message < maxFrame
  feed_data(r.server(), Stream::out, 1, payload, t0);
  CHECK(r.server().state() == SessionState::ready);
  CHECK(channel_bytes(drain_events(r.server()), 1) == test_window);
}

TEST_CASE("server: credit violations close 4007", "[session][badinput]") {
  ReadyPair r;
  SECTION("more than open_ok.window in one message") {
    feed_data(r.server(), Stream::out, 1, std::string(test_window + 1, 'a'), t0);
  }
  SECTION("more than open_ok.window over several messages") {
    feed_data(r.server(), Stream::out, 1, std::string(test_window - 10, 'a'), t0);
    REQUIRE(r.server().state() == SessionState::ready);
    feed_data(r.server(), Stream::out, 1, std::string(11, 'b'), t0);
  }
  SECTION("grant pushing the send limit past 2^53-1") {
    feed_control(r.server(), R"({"t":"flow","id":1,"credit":9007199254740991})", t0);
  }
  SECTION("two grants reaching past 2^53-1") {
    feed_control(r.server(), R"({"t":"flow","id":1,"credit":4503599627370496})", t0);
    REQUIRE(r.server().state() == SessionState::ready);
    feed_control(r.server(), R"({"t":"flow","id":1,"credit":4503599627370496})", t0);
  }
  SECTION("acknowledging bytes never sent") {
    feed_control(r.server(), R"({"t":"flow","id":1,"credit":0,"rx":1})", t0);
  }
  SECTION("data before open_ok") {
    feed_control(r.server(), R"({"t":"open","id":2,"target":{"host":"h","port":22}})", t0);
    REQUIRE(first_event<event::OpenRequested>(drain_events(r.server())));
    feed_data(r.server(), Stream::out, 2, "early", t0);
  }
  CHECK(expect_close(r.server(), CloseCode::flow_violation, Origin::remote, t0) == "");
}

TEST_CASE("server: duplicate channel id closes 4013", "[session][badinput]") {
  ReadyPair r;
  SECTION("id of an open channel") {}
  SECTION("id of a pending channel") {
    feed_control(r.server(), R"({"t":"open","id":2,"target":{"host":"h","port":22}})", t0);
    REQUIRE(drain_output(r.server()).empty());
  }
  const std::string dup = r.server().has_channel(2)
                              ? R"({"t":"open","id":2,"target":{"host":"h","port":22}})"
                              : R"({"t":"open","id":1,"target":{"host":"h","port":22}})";
  feed_control(r.server(), dup, t0);
  CHECK(expect_close(r.server(), CloseCode::duplicate_channel_id, Origin::remote, t0) == "");
}

TEST_CASE("server: a fifth channel with maxChannels 4 closes 4006", "[session][badinput]") {
  ReadyPair r;  // channel 1
  for (int id = 2; id <= 4; ++id) {
    feed_control(
        r.server(),
        R"({"t":"open","id":)" + std::to_string(id) + R"(,"target":{"host":"h","port":22}})", t0);
  }
  REQUIRE(r.server().channel_count() == 4);
  REQUIRE(r.server().state() == SessionState::ready);
  REQUIRE(r.server().accept_open(2, std::nullopt, t0));
  drain_output(r.server());
  drain_events(r.server());
  feed_control(r.server(), R"({"t":"open","id":5,"target":{"host":"h","port":22}})", t0);
  const auto out = drain_output(r.server());
  const auto ev = drain_events(r.server());
  const auto limit = policy_events(ev, PolicyKind::channel_limit);
  REQUIRE(limit.size() == 1);
  CHECK(limit[0].id == 5);
  CHECK(check_close(r.server(), out, ev, CloseCode::channel_limit, Origin::remote, false, t0) ==
        "");
}

TEST_CASE("server: closed channels do not count towards maxChannels", "[session]") {
  ReadyPair r;
  for (int round = 0; round < 6; ++round) {
    const ChannelId id = r.pair.open(t0);
    REQUIRE(id != 0);
    REQUIRE(r.client().close_channel(id, "done", t0));
    r.pair.pump(t0);
    REQUIRE_FALSE(r.server().has_channel(id));
  }
  CHECK(r.server().channel_count() == 1);
  CHECK(r.server().state() == SessionState::ready);
}

TEST_CASE("server: control messages above the burst close 4004", "[session][badinput]") {
  // The bucket holds test_control_burst tokens; hello and open already took two.
  ReadyPair r;
  const Timestamp now = t0;
  for (std::uint32_t i = 0; i < test_control_burst - 2; ++i) {
    feed_control(r.server(), R"({"t":"ping","ts":1})", now);
    REQUIRE(r.server().state() == SessionState::ready);
  }
  CHECK(drain_output(r.server()).size() == test_control_burst - 2);  // pongs
  drain_events(r.server());
  feed_control(r.server(), R"({"t":"ping","ts":1})", now);
  const auto out = drain_output(r.server());
  const auto ev = drain_events(r.server());
  CHECK(policy_events(ev, PolicyKind::rate_limited).size() == 1);
  CHECK(check_close(r.server(), out, ev, CloseCode::policy_denied, Origin::remote, false, now) ==
        "");
}

TEST_CASE("server: control messages at the sustained rate are fine", "[session]") {
  ReadyPair r;
  // 50/s allowed: 200 pings 25 ms apart (40/s) never run the bucket dry.
  Timestamp now = t0;
  for (int i = 0; i < 200; ++i) {
    now = now + core::Duration::from_ms(25);
    feed_control(r.server(), R"({"t":"ping","ts":1})", now);
    REQUIRE(r.server().state() == SessionState::ready);
    drain_output(r.server());
  }
  CHECK(policy_events(drain_events(r.server()), PolicyKind::rate_limited).empty());
}

TEST_CASE("server: data is not rate limited", "[session]") {
  ReadyPair r;
  for (int i = 0; i < 500; ++i)
    feed_data(r.server(), Stream::out, 1, "k", t0);
  CHECK(r.server().state() == SessionState::ready);
  CHECK(channel_bytes(drain_events(r.server()), 1) == 500);
}

// ---------------------------------------------------------------------------
// Channels

TEST_CASE("server: open, OpenRequested, accept_open, ChannelOpened", "[session]") {
  SessionPair p;
  REQUIRE(p.handshake(t0));
  p.clear_logs();
  core::OpenParams op;
  op.target = core::Target{"shell.example", 2222};
  op.term = core::Term{132, 43, {{"TERM", "xterm-256color"}}};
  auto id = p.client.open_channel(op, t0);
  REQUIRE(id);
  CHECK(*id == 1);
  CHECK(p.client.available(*id) == 0);  // nothing before open_ok
  CHECK_FALSE(p.client.write(*id, Stream::out, view_of("x"), t0));
  p.pump(t0);
  const auto req = first_event<event::OpenRequested>(p.server_log);
  REQUIRE(req);
  CHECK(req->open.id == 1);
  CHECK(req->open.kind == "tcp");
  CHECK(req->open.target == op.target);
  CHECK(req->open.term == op.term);
  CHECK(req->open.window == std::optional<std::uint64_t>(test_window));
  CHECK(p.server.available(1) == 0);  // not accepted yet
  CHECK_FALSE(first_event<event::ChannelOpened>(p.client_log));

  REQUIRE(p.server.accept_open(1, std::string("rk-1"), t0));
  CHECK_FALSE(p.server.accept_open(1, std::nullopt, t0));  // once
  const auto out = drain_output(p.server);
  const auto ok = controls_of<core::OpenOk>(p.server.profile(), out);
  REQUIRE(ok.size() == 1);
  CHECK(ok[0].window == std::optional<std::uint64_t>(test_window));
  CHECK(ok[0].resume_key == std::optional<std::string>("rk-1"));
  for (const auto& m : out)
    feed(p.client, m, t0);
  p.collect();
  const auto opened = first_event<event::ChannelOpened>(p.client_log);
  REQUIRE(opened);
  CHECK(opened->id == 1);
  CHECK(opened->resume_key == std::optional<std::string>("rk-1"));
  CHECK(p.client.available(1) == test_window);
  CHECK(p.server.available(1) == test_window);
  const auto cs = p.client.channel_stats(1);
  REQUIRE(cs);
  CHECK(cs->send_limit == test_window);
  CHECK(cs->recv_limit == test_window);
}

TEST_CASE("server: reject_open gives ChannelOpenFailed and frees the id", "[session]") {
  SessionPair p;
  REQUIRE(p.handshake(t0));
  p.clear_logs();
  core::OpenParams op;
  op.target = core::Target{"blocked.example", 25};
  auto id = p.client.open_channel(op, t0);
  REQUIRE(id);
  p.pump(t0);
  REQUIRE(p.server.reject_open(*id, "policy_denied", "port 25 not allowed", t0));
  CHECK_FALSE(p.server.has_channel(*id));
  p.pump(t0);
  const auto failed = first_event<event::ChannelOpenFailed>(p.client_log);
  REQUIRE(failed);
  CHECK(failed->id == *id);
  CHECK(failed->code == "policy_denied");
  CHECK(failed->msg == "port 25 not allowed");
  CHECK_FALSE(p.client.has_channel(*id));
  CHECK(count_events<event::ChannelOpened>(p.client_log) == 0);
  CHECK(p.client.state() == SessionState::ready);
  CHECK(p.server.state() == SessionState::ready);
  // A later open on the same connection works.
  CHECK(p.open(t0) != 0);
}

TEST_CASE("server: a client close crossing open_err is harmless", "[session]") {
  SessionPair p;
  REQUIRE(p.handshake(t0));
  p.clear_logs();
  core::OpenParams op;
  op.target = core::Target{"h", 22};
  auto id = p.client.open_channel(op, t0);
  REQUIRE(id);
  p.pump(t0);  // the server has the open
  SECTION("open_err") {
    REQUIRE(p.server.reject_open(*id, "policy_denied", "no", t0));
  }
  SECTION("open_ok") {
    REQUIRE(p.server.accept_open(*id, std::nullopt, t0));
  }
  REQUIRE(p.client.close_channel(*id, "user gave up", t0));  // before the answer arrives
  p.pump(t0);
  CHECK(events_of<event::Closed>(p.server_log).empty());
  CHECK(events_of<event::Closed>(p.client_log).empty());
  CHECK(p.server.state() == SessionState::ready);
  CHECK(p.client.state() == SessionState::ready);
  CHECK_FALSE(p.client.has_channel(*id));
  CHECK_FALSE(p.server.has_channel(*id));
}

TEST_CASE("server: server-to-client credit, partial writes and ChannelWritable", "[session]") {
  ReadyPair r;
  CHECK(r.server().available(1) == test_window);
  const std::string data = pattern(0, 5000);
  auto n = r.server().write(1, Stream::out, view_of(data), t0);
  REQUIRE(n);
  CHECK(*n == test_window);  // partial acceptance: only the credit
  CHECK(r.server().available(1) == 0);
  CHECK(r.server().write(1, Stream::out, view_of(data), t0).value() == 0);
  CHECK(r.server().replay_bytes(1) == test_window);
  auto st = r.server().channel_stats(1);
  REQUIRE(st);
  CHECK(st->sent == test_window);
  CHECK(st->send_limit == test_window);

  r.pair.pump(t0);
  CHECK(channel_text(r.pair.client_log, 1) == data.substr(0, test_window));
  st = r.client().channel_stats(1);
  REQUIRE(st);
  CHECK(st->received == test_window);
  CHECK(st->consumed == 0);

  // Grants are batched: nothing until half the window has been consumed.
  REQUIRE(r.client().consume(1, test_window / 2 - 1, t0));
  CHECK_FALSE(r.client().has_output());
  REQUIRE(r.client().consume(1, 1, t0));
  const auto out = drain_output(r.client());
  const auto flows = controls_of<core::Flow>(r.client().profile(), out);
  REQUIRE(flows.size() == 1);
  CHECK(flows[0] == core::Flow{1, test_window / 2, test_window});
  const auto grants = policy_events(drain_events(r.client()), PolicyKind::credit_grant);
  REQUIRE(grants.size() == 1);
  CHECK(grants[0].amount == test_window / 2);

  for (const auto& m : out)
    feed(r.server(), m, t0);
  const auto sev = drain_events(r.server());
  const auto writable = first_event<event::ChannelWritable>(sev);
  REQUIRE(writable);
  CHECK(writable->id == 1);
  CHECK(writable->available == test_window / 2);
  CHECK(r.server().available(1) == test_window / 2);
  CHECK(r.server().replay_bytes(1) == 0);  // rx acknowledged everything
  CHECK(r.server().channel_stats(1)->acked == test_window);
  CHECK_FALSE(r.client().consume(1, test_window, t0));  // more than received: local error
}

TEST_CASE("server: client-to-server credit and grants", "[session]") {
  ReadyPair r;
  CHECK(r.client().available(1) == test_window);
  const std::string data = pattern(0, test_window + 100, 3);
  CHECK(r.client().write(1, Stream::out, view_of(data), t0).value() == test_window);
  CHECK_FALSE(r.client().write(1, Stream::err, view_of(data), t0));  // clients write stdout only
  r.pair.pump(t0);
  CHECK(channel_text(r.pair.server_log, 1) == data.substr(0, test_window));
  REQUIRE(r.server().consume(1, test_window, t0));
  r.pair.pump(t0);
  CHECK(first_event<event::ChannelWritable>(r.pair.client_log));
  CHECK(r.client().available(1) == test_window);
  CHECK(r.client().replay_bytes(1) == 0);
  CHECK(r.client().write(1, Stream::out, view_of(data.substr(test_window)), t0).value() == 100);
  r.pair.pump(t0);
  CHECK(channel_text(r.pair.server_log, 1) == data);
}

TEST_CASE("server: pause reasons withhold grants, flow_resume releases them", "[session]") {
  ReadyPair r;
  REQUIRE(r.server().write(1, Stream::out, view_of(pattern(0, test_window)), t0));
  r.pair.pump(t0);
  r.pair.clear_logs();

  r.client().set_paused(PauseReason::hidden, true, t0);
  r.client().set_paused(PauseReason::app, true, t0);
  auto ev = drain_events(r.client());
  auto pauses = policy_events(ev, PolicyKind::flow_pause);
  REQUIRE(pauses.size() == 1);  // one transition
  CHECK(pauses[0].reasons == static_cast<std::uint8_t>(PauseReason::hidden));
  CHECK(r.client().pause_bits() == 0x0a);

  REQUIRE(r.client().consume(1, test_window, t0));
  CHECK_FALSE(r.client().has_output());  // withheld
  r.client().set_paused(PauseReason::hidden, false, t0);
  CHECK_FALSE(r.client().has_output());  // "app" still set
  CHECK(policy_events(drain_events(r.client()), PolicyKind::flow_resume).empty());

  r.client().set_paused(PauseReason::app, false, t0);
  ev = drain_events(r.client());
  CHECK(policy_events(ev, PolicyKind::flow_resume).size() == 1);
  const auto grants = policy_events(ev, PolicyKind::credit_grant);
  REQUIRE(grants.size() == 1);
  CHECK(grants[0].amount == test_window);
  const auto flows = controls_of<core::Flow>(r.client().profile(), drain_output(r.client()));
  REQUIRE(flows.size() == 1);
  CHECK(flows[0] == core::Flow{1, test_window, test_window});
}

TEST_CASE("server: server-side pause withholds grants to the client", "[session]") {
  ReadyPair r;
  REQUIRE(r.client().write(1, Stream::out, view_of(pattern(0, test_window)), t0));
  r.pair.pump(t0);
  r.server().set_paused(PauseReason::transport, true, t0);
  REQUIRE(r.server().consume(1, test_window, t0));
  CHECK_FALSE(r.server().has_output());
  r.server().set_paused(PauseReason::transport, false, t0);
  r.pair.pump(t0);
  CHECK(r.client().available(1) == test_window);
}

TEST_CASE("server: close handshake, client first", "[session]") {
  ReadyPair r;
  REQUIRE(r.client().close_channel(1, "bye", t0));
  CHECK(r.client().has_channel(1));  // until the server's close arrives
  CHECK(r.client().available(1) == 0);
  CHECK_FALSE(r.client().write(1, Stream::out, view_of("x"), t0));
  REQUIRE(r.client().close_channel(1, "again", t0));  // idempotent, sent once
  const auto out = drain_output(r.client());
  const auto closes = controls_of<core::Close>(r.client().profile(), out);
  REQUIRE(closes.size() == 1);
  CHECK(closes[0].reason == std::optional<std::string>("bye"));
  for (const auto& m : out)
    feed(r.server(), m, t0);
  r.pair.pump(t0);

  const auto sc = events_of<event::ChannelClosed>(r.pair.server_log);
  REQUIRE(sc.size() == 1);
  CHECK(sc[0].id == 1);
  CHECK(sc[0].reason == "bye");
  CHECK(sc[0].origin == Origin::remote);
  const auto cc = events_of<event::ChannelClosed>(r.pair.client_log);
  REQUIRE(cc.size() == 1);
  CHECK(cc[0].id == 1);
  CHECK_FALSE(r.client().has_channel(1));
  CHECK_FALSE(r.server().has_channel(1));
  CHECK_FALSE(r.server().write(1, Stream::out, view_of("x"), t0));
  CHECK(r.client().state() == SessionState::ready);
  CHECK(r.server().state() == SessionState::ready);
}

TEST_CASE("server: exit before close, server first", "[session]") {
  ReadyPair r;
  REQUIRE(r.server().write(1, Stream::out, view_of("last words"), t0));
  REQUIRE(r.server().exit_channel(1, 3, std::nullopt, t0));
  CHECK_FALSE(r.server().exit_channel(1, 4, std::nullopt, t0));  // once
  REQUIRE(r.server().close_channel(1, "eof", t0));
  CHECK_FALSE(r.server().write(1, Stream::out, view_of("x"), t0));
  CHECK(r.server().has_channel(1));
  r.pair.pump(t0);

  const auto& ev = r.pair.client_log;
  const auto exit = first_event<event::ChannelExit>(ev);
  REQUIRE(exit);
  CHECK(exit->id == 1);
  CHECK(exit->code == std::optional<std::int32_t>(3));
  const auto closed = first_event<event::ChannelClosed>(ev);
  REQUIRE(closed);
  CHECK(closed->reason == "eof");
  CHECK(index_of_event<event::ChannelData>(ev) < index_of_event<event::ChannelExit>(ev));
  CHECK(index_of_event<event::ChannelExit>(ev) < index_of_event<event::ChannelClosed>(ev));
  CHECK(channel_text(ev, 1) == "last words");
  CHECK(count_events<event::ChannelClosed>(r.pair.server_log) == 1);
  CHECK_FALSE(r.client().has_channel(1));
  CHECK_FALSE(r.server().has_channel(1));
}

TEST_CASE("server: exit after close is refused", "[session]") {
  ReadyPair r;
  REQUIRE(r.server().close_channel(1, "", t0));
  const auto e = r.server().exit_channel(1, 0, std::nullopt, t0);
  REQUIRE_FALSE(e);
  CHECK(e.error().code == Errc::invalid_state);
}

TEST_CASE("server: data crossing a close is counted and discarded", "[session]") {
  ReadyPair r;
  REQUIRE(r.server().close_channel(1, "eof", t0));
  feed_data(r.server(), Stream::out, 1, "in flight", t0);  // sent before the client saw close
  const auto ev = drain_events(r.server());
  CHECK(count_events<event::ChannelData>(ev) == 0);
  const auto st = r.server().channel_stats(1);
  REQUIRE(st);
  CHECK(st->received == 9);
  CHECK(st->consumed == 9);
  CHECK(r.server().state() == SessionState::ready);
}

TEST_CASE("server: no credit grant after the local close", "[session]") {
  // The application consumes bytes after it closed the channel; the peer
  // frees the channel on our close, so a flow after it would be for an
  // unknown channel (4014 at the peer).
  ReadyPair r;
  REQUIRE(r.server().write(1, Stream::out, view_of(pattern(0, test_window)), t0));
  r.pair.pump(t0);
  REQUIRE(r.client().close_channel(1, "user closed tab", t0));
  REQUIRE(r.client().consume(1, test_window, t0));  // late consumption
  r.pair.pump(t0);
  CHECK(r.server().state() == SessionState::ready);
  CHECK(r.client().state() == SessionState::ready);
  CHECK_FALSE(r.client().has_channel(1));
  CHECK_FALSE(r.server().has_channel(1));
  CHECK(events_of<event::Closed>(r.pair.server_log).empty());
}

TEST_CASE("server: resize and signal become events", "[session]") {
  ReadyPair r;
  REQUIRE(r.client().resize(1, 120, 40, t0));
  REQUIRE(r.client().signal(1, "INT", t0));
  r.pair.pump(t0);
  const auto rs = first_event<event::ChannelResized>(r.pair.server_log);
  REQUIRE(rs);
  CHECK(rs->id == 1);
  CHECK(rs->cols == 120);
  CHECK(rs->rows == 40);
  const auto sg = first_event<event::ChannelSignal>(r.pair.server_log);
  REQUIRE(sg);
  CHECK(sg->sig == "INT");
  // Local validation.
  CHECK(r.client().resize(1, 0, 40, t0).error().code == Errc::invalid_argument);
  CHECK(r.client().resize(1, 10001, 40, t0).error().code == Errc::invalid_argument);
  CHECK(r.client().signal(1, "int", t0).error().code == Errc::invalid_argument);
  CHECK(r.client().signal(1, "", t0).error().code == Errc::invalid_argument);
  CHECK(r.client().signal(9, "INT", t0).error().code == Errc::unknown_channel);
  CHECK_FALSE(r.client().has_output());
}

// ---------------------------------------------------------------------------
// Heartbeats and timeouts

TEST_CASE("server: ping after the interval, pong answered, RTT measured", "[session]") {
  SessionPair p;
  REQUIRE(p.handshake(t0));
  p.clear_logs();
  const Timestamp ping_at = t0 + core::Duration::from_ms(test_heartbeat_ms);
  REQUIRE(p.client.next_timeout() == ping_at);
  REQUIRE(p.server.next_timeout() == ping_at);
  p.client.handle_timeout(plus_ms(ping_at, -1));
  CHECK_FALSE(p.client.has_output());

  p.client.handle_timeout(ping_at);
  const auto pings = controls_of<core::Ping>(p.client.profile(), drain_output(p.client));
  REQUIRE(pings.size() == 1);
  // Ping arrives at the server 5 ms later, which answers at once.
  feed_control(p.server, core::encode_control(pings[0]), ping_at + core::Duration::from_ms(5));
  const auto pongs = controls_of<core::Pong>(p.server.profile(), drain_output(p.server));
  REQUIRE(pongs.size() == 1);
  CHECK(pongs[0].ts == pings[0].ts);
  feed_control(p.client, core::encode_control(pongs[0]), ping_at + core::Duration::from_ms(10));
  REQUIRE(p.client.rtt());
  CHECK(p.client.rtt()->ms() == 10);
  // The server answered, so its own next ping is an interval after its pong.
  CHECK(p.server.next_timeout() ==
        ping_at + core::Duration::from_ms(5) + core::Duration::from_ms(test_heartbeat_ms));

  // Smoothing: a second sample of 30 ms gives 10 + (30 - 10) / 8 = 12.5 ms.
  const Timestamp t2 = ping_at + core::Duration::from_ms(test_heartbeat_ms);
  p.client.handle_timeout(t2);
  const auto ping2 = controls_of<core::Ping>(p.client.profile(), drain_output(p.client));
  REQUIRE(ping2.size() == 1);
  feed_control(p.client, core::encode_control(core::Pong{ping2[0].ts}),
               t2 + core::Duration::from_ms(30));
  CHECK(p.client.rtt()->us() == 12500);
}

TEST_CASE("server: silence for 3 heartbeats closes 4012, resumable", "[session]") {
  SessionPair p;
  REQUIRE(p.handshake(t0));  // with a resume token
  REQUIRE(p.open(t0) == 1);
  p.clear_logs();
  const auto hb = core::Duration::from_ms(test_heartbeat_ms);
  const Timestamp dead = t0 + hb * 3;

  for (SessionCore* s :
       {static_cast<SessionCore*>(&p.client), static_cast<SessionCore*>(&p.server)}) {
    s->handle_timeout(t0 + hb);
    s->handle_timeout(t0 + hb * 2);
    CHECK(s->next_timeout() == dead);
    s->handle_timeout(plus_ms(dead, -1));
    auto out = drain_output(*s);
    CHECK(out.size() == 2);  // two pings, no close yet
    s->handle_timeout(dead);
    out = drain_output(*s);
    const auto ev = drain_events(*s);
    CHECK(check_close(*s, out, ev, CloseCode::timeout, Origin::local, true, dead) == "");
    CHECK(s->channel_count() == 1);  // kept for resume
  }
  CHECK(p.client.state() == SessionState::reconnecting);
  CHECK(p.server.state() == SessionState::detached);
}

TEST_CASE("server: heartbeat timeout without a resume token is final", "[session]") {
  SessionPair p;
  REQUIRE(p.handshake(t0, ""));  // resume not offered
  p.clear_logs();
  CHECK_FALSE(p.client.resume_token());
  const Timestamp dead = t0 + core::Duration::from_ms(3 * test_heartbeat_ms);
  p.server.handle_timeout(dead);
  CHECK(expect_close(p.server, CloseCode::timeout, Origin::local, dead) == "");
  p.client.handle_timeout(dead);
  CHECK(expect_close(p.client, CloseCode::timeout, Origin::local, dead) == "");
}

TEST_CASE("server: any frame from the peer keeps the connection alive", "[session]") {
  SessionPair p;
  REQUIRE(p.handshake(t0));
  p.clear_logs();
  // The client pings every interval and the server answers: 20 intervals pass
  // without a close.
  Timestamp now = t0;
  for (int i = 0; i < 20; ++i) {
    now = now + core::Duration::from_ms(test_heartbeat_ms);
    fire_timers(p.client, now);
    fire_timers(p.server, now);
    p.pump(now);
  }
  CHECK(events_of<event::Closed>(p.client_log).empty());
  CHECK(events_of<event::Closed>(p.server_log).empty());
  CHECK(p.client.rtt());
  CHECK(p.server.rtt());
}

TEST_CASE("server: idle timeout closes 4012", "[session]") {
  auto cfg = test_server_config();
  cfg.heartbeat = core::Duration::from_ms(10000);  // far away: only the idle timer runs
  cfg.idle_timeout = core::Duration::from_ms(2000);
  SessionPair p("mana.v1", cfg);
  REQUIRE(p.handshake(t0));
  p.clear_logs();
  const Timestamp idle = t0 + core::Duration::from_ms(2000);
  REQUIRE(p.server.next_timeout() == idle);
  feed_control(p.server, R"({"t":"pong","ts":1})", t0 + core::Duration::from_ms(500));
  const Timestamp idle2 = idle + core::Duration::from_ms(500);
  CHECK(p.server.next_timeout() == idle2);
  p.server.handle_timeout(idle);
  CHECK_FALSE(p.server.has_output());
  p.server.handle_timeout(idle2);
  CHECK(expect_close(p.server, CloseCode::timeout, Origin::local, idle2, true) == "");
  CHECK(p.server.state() == SessionState::detached);
}

TEST_CASE("server: host close() and peer close frames", "[session]") {
  ReadyPair r;
  SECTION("host closes 1000") {
    r.server().close(CloseCode::normal, "shutdown", t0);
    const auto out = drain_output(r.server());
    const auto ev = drain_events(r.server());
    CHECK(check_close(r.server(), out, ev, CloseCode::normal, Origin::local, false, t0) == "");
    CHECK(out.back().close_reason == "shutdown");
    CHECK(count_events<event::ChannelClosed>(ev) == 1);
  }
  SECTION("peer closes 1000: final even with a token") {
    r.server().receive_close(1000, "bye", t0);
    const auto ev = drain_events(r.server());
    const auto closed = first_event<event::Closed>(ev);
    REQUIRE(closed);
    CHECK(closed->code == CloseCode::normal);
    CHECK(closed->origin == Origin::remote);
    CHECK_FALSE(closed->resumable);
    CHECK(r.server().state() == SessionState::closed);
    CHECK(check_silent(r.server(), t0) == "");
  }
  SECTION("transport lost: detached") {
    r.server().transport_lost(t0);
    const auto ev = drain_events(r.server());
    const auto closed = first_event<event::Closed>(ev);
    REQUIRE(closed);
    CHECK(closed->code == CloseCode::abnormal);
    CHECK(closed->resumable);
    CHECK(r.server().state() == SessionState::detached);
    CHECK(r.server().channel_count() == 1);
    CHECK(check_silent(r.server(), t0, false) == "");
  }
}
