// Unit tests for mana/core/client_session.hpp: the client's handshake, the
// server frames it refuses (with the exact close code), channel bookkeeping,
// credit towards the server, close codes received from the server and the
// local API's argument checks.
//
// The server side is played by crafted messages fed at literal timestamps; a
// real ServerSession is used only where noted.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "support/session_test_util.hpp"

using namespace mana::test;  // NOLINT(google-build-using-namespace)
using mana::core::CloseCode;
using mana::core::Errc;
using mana::core::Origin;
namespace event = mana::core::event;
namespace core = mana::core;

namespace {

constexpr Timestamp t0 = at_ms(1000);

core::HelloOk make_hello_ok(std::string_view profile = "mana.v1") {
  core::HelloOk h;
  h.server = "crafted";
  h.caps.max_frame = static_cast<std::uint32_t>(test_max_frame);
  h.caps.profile_accepted = std::string(profile);
  h.caps.bidi = true;
  h.caps.resume_ttl_ms = static_cast<std::uint32_t>(test_resume_ttl_ms);
  h.caps.heartbeat_ms = static_cast<std::uint32_t>(test_heartbeat_ms);
  h.caps.idle_timeout_ms = static_cast<std::uint32_t>(test_idle_ms);
  h.caps.max_channels = 4;
  h.caps.window = test_window;
  h.resume = core::ResumeGrant{std::string(token_a), {}};
  return h;
}

std::string json(const core::ControlMessage& m) {
  return core::encode_control(m);
}

core::OpenParams tcp_target() {
  core::OpenParams p;
  p.target = core::Target{"example.test", 22};
  return p;
}

// Opens the transport of a new client and drops its hello.
void open_transport(ClientSession& c) {
  REQUIRE(c.transport_open(t0));
  REQUIRE(drain_output(c).size() == 1);
  drain_events(c);
}

// A client after hello_ok, with channel 1 open (open_ok window test_window),
// output and events drained.
struct ReadyClient {
  explicit ReadyClient(std::string_view profile = "mana.v1", core::HelloOk ok = make_hello_ok())
      : c(test_client_config(profile), t0) {
    open_transport(c);
    ok.caps.profile_accepted = std::string(profile);
    feed_text(c, json(ok), t0);
    REQUIRE(c.state() == SessionState::ready);
    auto opened = c.open_channel(tcp_target(), t0);
    REQUIRE(opened);
    id = *opened;
    feed_control(c, json(core::OpenOk{id, std::nullopt, test_window}), t0);
    REQUIRE(first_event<event::ChannelOpened>(drain_events(c)));
    drain_output(c);
  }
  ClientSession c;
  ChannelId id = 0;
};

}  // namespace

// ---------------------------------------------------------------------------
// Handshake

TEST_CASE("client: hello is the first and only message before hello_ok", "[session]") {
  ClientSession c(test_client_config("json-base64.v1"), t0);
  CHECK(c.state() == SessionState::connecting);
  CHECK_FALSE(c.next_timeout());
  CHECK(c.open_channel(tcp_target(), t0).error().code == Errc::invalid_state);
  REQUIRE(c.transport_open(t0));
  CHECK(c.transport_open(t0).error().code == Errc::invalid_state);
  CHECK(c.state() == SessionState::authenticating);
  CHECK(c.next_timeout() == plus_ms(t0, test_handshake_ms));

  const auto out = drain_output(c);
  REQUIRE(out.size() == 1);
  CHECK(out[0].type == MessageType::text);
  auto m = core::parse_control(as_text(out[0]));
  REQUIRE(m);
  const auto* h = std::get_if<core::Hello>(&m.value());
  REQUIRE(h != nullptr);
  CHECK(h->proto == 1);
  CHECK(h->auth == core::Auth{core::Auth::Scheme::bearer, "secret"});
  CHECK(h->caps.profile == "json-base64.v1");
  CHECK(h->caps.max_frame == std::optional<std::uint32_t>(test_max_frame));
  CHECK(h->caps.bidi);
  CHECK(h->caps.resume);
  CHECK_FALSE(h->resume);

  // Nothing else goes out before hello_ok, whatever the application does.
  CHECK_FALSE(c.open_channel(tcp_target(), t0));
  c.handle_timeout(plus_ms(t0, 100));
  c.set_paused(core::PauseReason::app, true, t0);
  CHECK_FALSE(c.has_output());
}

TEST_CASE("client: hello_ok makes the client ready, token stored", "[session]") {
  ClientSession c(test_client_config(), t0);
  open_transport(c);
  auto ok = make_hello_ok();
  ok.caps.heartbeat_ms = 7000;
  feed_text(c, json(ok), t0);
  const auto ev = drain_events(c);
  const auto ready = first_event<event::Ready>(ev);
  REQUIRE(ready);
  CHECK_FALSE(ready->resumed);
  CHECK(ready->hello_ok == ok);
  CHECK(c.state() == SessionState::ready);
  CHECK(c.resume_token() == std::optional<std::string>(token_a));
  CHECK(c.server_hello() == ok);
  CHECK_FALSE(c.has_output());
}

TEST_CASE("client: hello_ok without resume leaves no token", "[session]") {
  ClientSession c(test_client_config(), t0);
  open_transport(c);
  auto ok = make_hello_ok();
  ok.resume.reset();
  ok.caps.resume_ttl_ms.reset();
  feed_text(c, json(ok), t0);
  CHECK(c.state() == SessionState::ready);
  CHECK_FALSE(c.resume_token());
  // A transport loss is then final.
  c.transport_lost(t0);
  const auto closed = first_event<event::Closed>(drain_events(c));
  REQUIRE(closed);
  CHECK(closed->code == CloseCode::abnormal);
  CHECK_FALSE(closed->resumable);
  CHECK(c.state() == SessionState::closed);
}

TEST_CASE("client: hello_ok timeout closes 4012", "[session]") {
  ClientSession c(test_client_config(), t0);
  open_transport(c);
  const Timestamp deadline = plus_ms(t0, test_handshake_ms);
  c.handle_timeout(plus_ms(deadline, -1));
  CHECK_FALSE(c.has_output());
  c.handle_timeout(deadline);
  // No token yet: nothing to resume, the close is final.
  CHECK(expect_close(c, CloseCode::timeout, Origin::local, deadline) == "");
}

TEST_CASE("client: server frames before hello_ok close 4009", "[session][badinput]") {
  const std::string profile = GENERATE(as<std::string>{}, "mana.v1", "lenpfx.v1");
  CAPTURE(profile);
  ClientSession c(test_client_config(profile), t0);
  open_transport(c);
  SECTION("ping") {
    feed_text(c, R"({"t":"ping","ts":1})", t0);
  }
  SECTION("open_ok") {
    feed_text(c, R"({"t":"open_ok","id":1,"window":4096})", t0);
  }
  SECTION("flow") {
    feed_text(c, R"({"t":"flow","id":1,"credit":5})", t0);
  }
  SECTION("exit") {
    feed_text(c, R"({"t":"exit","id":1,"code":0})", t0);
  }
  SECTION("hello") {
    feed_text(c, R"({"t":"hello","proto":1})", t0);
  }
  SECTION("binary data frame") {
    feed_binary(c, mana_v1_data(0x01, 1, "x"), t0);
  }
  SECTION("binary lenpfx envelope with hello_ok") {
    feed_binary(c, lenpfx_envelope(lenpfx_control, 0, json(make_hello_ok(profile))), t0);
  }
  CHECK(expect_close(c, CloseCode::unsupported_message, Origin::remote, t0) == "");
}

TEST_CASE("client: hello_ok naming another profile closes 4001", "[session][badinput]") {
  ClientSession c(test_client_config("lenpfx.v1"), t0);
  open_transport(c);
  feed_text(c, json(make_hello_ok("mana.v1")), t0);
  CHECK(expect_close(c, CloseCode::unsupported_profile, Origin::remote, t0) == "");
}

TEST_CASE("client: malformed hello_ok closes 4014", "[session][badinput]") {
  // clang-format off
  const std::string text = GENERATE(as<std::string>{},
      R"({"t":"hello_ok","server":"s"})",                                        // caps missing
      R"({"t":"hello_ok","server":"s","caps":{"flow":"window","maxFrame":1024,)"
      R"("profileAccepted":"mana.v1","heartbeatMs":1000,"idleTimeoutMs":60000,"maxChannels":4,)"
      R"("window":4096}})",
      R"({"t":"hello_ok","server":"s","caps":{"flow":"credit","maxFrame":100,)"
      R"("profileAccepted":"mana.v1","heartbeatMs":1000,"idleTimeoutMs":60000,"maxChannels":4,)"
      R"("window":4096}})",
      R"({"t":"hello_ok","server":"s","caps":{"flow":"credit","maxFrame":1024,)"
      R"("profileAccepted":"mana.v1","heartbeatMs":1000,"idleTimeoutMs":60000,"maxChannels":4,)"
      R"("window":10}})",
      R"({"t":"hello_ok","server":"s","caps":{"flow":"credit","maxFrame":1024,)"
      R"("profileAccepted":"mana.v1","heartbeatMs":"1000","idleTimeoutMs":60000,"maxChannels":4,)"
      R"("window":4096}})",
      R"({"t":"hello_ok","server":"s","caps":{"flow":"credit","maxFrame":1024,)"
      R"("profileAccepted":"mana.v1","heartbeatMs":1000,"idleTimeoutMs":60000,"maxChannels":4,)"
      R"("window":4096},"resume":{"token":"no spaces allowed here","channels":[]}})",
      R"({"t":"hello_ok")",
      R"(["hello_ok"])");
  // clang-format on
  CAPTURE(text);
  ClientSession c(test_client_config(), t0);
  open_transport(c);
  feed_text(c, text, t0);
  CHECK(expect_close(c, CloseCode::malformed_frame, Origin::remote, t0) == "");
}

TEST_CASE("client: unknown message type closes 4009", "[session][badinput]") {
  SECTION("before hello_ok") {
    ClientSession c(test_client_config(), t0);
    open_transport(c);
    feed_text(c, R"({"t":"welcome"})", t0);
    CHECK(expect_close(c, CloseCode::unsupported_message, Origin::remote, t0) == "");
  }
  SECTION("after hello_ok") {
    ReadyClient r;
    feed_control(r.c, R"({"t":"welcome"})", t0);
    CHECK(expect_close(r.c, CloseCode::unsupported_message, Origin::remote, t0) == "");
  }
}

TEST_CASE("client: a second hello_ok and client-only messages close 4009", "[session][badinput]") {
  const std::string profile = GENERATE(as<std::string>{}, "mana.v1", "json-base64.v1", "lenpfx.v1");
  CAPTURE(profile);
  ReadyClient r(profile);
  SECTION("hello_ok") {
    feed_control(r.c, json(make_hello_ok(profile)), t0);
  }
  SECTION("hello") {
    feed_control(r.c, R"({"t":"hello","proto":1})", t0);
  }
  SECTION("open") {
    feed_control(r.c, R"({"t":"open","id":9,"target":{"host":"h","port":22}})", t0);
  }
  SECTION("resize") {
    feed_control(r.c, R"({"t":"resize","id":1,"cols":80,"rows":24})", t0);
  }
  SECTION("signal") {
    feed_control(r.c, R"({"t":"signal","id":1,"sig":"INT"})", t0);
  }
  SECTION("open_ok for an acknowledged channel") {
    feed_control(r.c, R"({"t":"open_ok","id":1,"window":4096})", t0);
  }
  SECTION("open_err for an acknowledged channel") {
    feed_control(r.c, R"({"t":"open_err","id":1,"code":"timeout","msg":"late"})", t0);
  }
  CHECK(expect_close(r.c, CloseCode::unsupported_message, Origin::remote, t0) == "");
}

// ---------------------------------------------------------------------------
// Bad input after hello_ok

TEST_CASE("client: frames for unknown channels close 4014", "[session][badinput]") {
  const std::string profile = GENERATE(as<std::string>{}, "mana.v1", "json-base64.v1", "lenpfx.v1");
  CAPTURE(profile);
  ReadyClient r(profile);
  SECTION("data") {
    feed_data(r.c, Stream::out, 5, "x", t0);
  }
  SECTION("stderr data") {
    feed_data(r.c, Stream::err, 5, "x", t0);
  }
  SECTION("open_ok") {
    feed_control(r.c, R"({"t":"open_ok","id":5,"window":4096})", t0);
  }
  SECTION("open_err") {
    feed_control(r.c, R"({"t":"open_err","id":5,"code":"a","msg":"b"})", t0);
  }
  SECTION("exit") {
    feed_control(r.c, R"({"t":"exit","id":5})", t0);
  }
  SECTION("close") {
    feed_control(r.c, R"({"t":"close","id":5})", t0);
  }
  SECTION("flow") {
    feed_control(r.c, R"({"t":"flow","id":5,"credit":1})", t0);
  }
  CHECK(expect_close(r.c, CloseCode::malformed_frame, Origin::remote, t0) == "");
}

TEST_CASE("client: malformed frames close 4014", "[session][badinput]") {
  SECTION("mana.v1") {
    ReadyClient r("mana.v1");
    SECTION("truncated") {
      feed_binary(r.c, Bytes{0x01, 0, 0}, t0);
    }
    SECTION("reserved stream") {
      feed_binary(r.c, mana_v1_data(0x7f, 1, "x"), t0);
    }
    SECTION("bad JSON") {
      feed_text(r.c, "{\"t\":", t0);
    }
    SECTION("negative credit") {
      feed_text(r.c, R"({"t":"flow","id":1,"credit":-1})", t0);
    }
    SECTION("2^53 credit") {
      feed_text(r.c, R"({"t":"flow","id":1,"credit":9007199254740992})", t0);
    }
    SECTION("exit code beyond int32") {
      feed_text(r.c, R"({"t":"exit","id":1,"code":2147483648})", t0);
    }
    CHECK(expect_close(r.c, CloseCode::malformed_frame, Origin::remote, t0) == "");
  }
  SECTION("lenpfx.v1") {
    ReadyClient r("lenpfx.v1");
    SECTION("wrong length") {
      feed_binary(r.c, lenpfx_raw(4, 0x01, 1, "abcdef"), t0);
    }
    SECTION("text message") {
      feed_text(r.c, R"({"t":"ping","ts":1})", t0);
    }
    SECTION("reserved kind") {
      feed_binary(r.c, lenpfx_envelope(0x03, 1, "x"), t0);
    }
    CHECK(expect_close(r.c, CloseCode::malformed_frame, Origin::remote, t0) == "");
  }
  SECTION("json-base64.v1") {
    ReadyClient r("json-base64.v1");
    SECTION("bad base64") {
      feed_text(r.c, jb64_data("stdout", 1, "A==="), t0);
    }
    SECTION("binary message") {
      feed_binary(r.c, mana_v1_data(0x01, 1, "x"), t0);
    }
    CHECK(expect_close(r.c, CloseCode::malformed_frame, Origin::remote, t0) == "");
  }
}

TEST_CASE("client: oversize messages close 4008", "[session][badinput]") {
  ReadyClient r;
  SECTION("above maxFrame") {
    feed_binary(r.c, mana_v1_data(0x01, 1, std::string(test_max_frame - 4, 'a')), t0);
  }
  SECTION("control JSON above the limit") {
    std::string big = R"({"t":"ping","ts":1,"pad":")" + std::string(test_max_control, 'x') + "\"}";
    feed_text(r.c, big, t0);
  }
  CHECK(expect_close(r.c, CloseCode::frame_too_large, Origin::remote, t0) == "");
}

TEST_CASE("client: credit violations by the server close 4007", "[session][badinput]") {
  ReadyClient r;
  SECTION("more than open.window") {
    feed_data(r.c, Stream::out, 1, std::string(test_window / 2, 'a'), t0);
    feed_data(r.c, Stream::err, 1, std::string(test_window / 2 + 1, 'b'), t0);  // shared window
  }
  SECTION("grant beyond 2^53-1") {
    feed_control(r.c, R"({"t":"flow","id":1,"credit":9007199254740000})", t0);
  }
  SECTION("data before open_ok") {
    auto id = r.c.open_channel(tcp_target(), t0);
    REQUIRE(id);
    drain_output(r.c);
    feed_data(r.c, Stream::out, *id, "early", t0);
  }
  SECTION("ack of bytes never sent") {
    feed_control(r.c, R"({"t":"flow","id":1,"credit":0,"rx":7})", t0);
  }
  CHECK(expect_close(r.c, CloseCode::flow_violation, Origin::remote, t0) == "");
}

// ---------------------------------------------------------------------------
// Channels

TEST_CASE("client: channel ids increase and open carries the receive window", "[session]") {
  ReadyClient r;
  auto a = r.c.open_channel(tcp_target(), t0);
  auto b = r.c.open_channel(tcp_target(), t0);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(*a == 2);
  CHECK(*b == 3);
  const auto opens = controls_of<core::Open>(r.c.profile(), drain_output(r.c));
  REQUIRE(opens.size() == 2);
  CHECK(opens[0].id == 2);
  CHECK(opens[0].window == std::optional<std::uint64_t>(test_window));
  CHECK(opens[0].target == tcp_target().target);
  // Argument checks.
  core::OpenParams bad = tcp_target();
  bad.target.port = 0;
  CHECK(r.c.open_channel(bad, t0).error().code == Errc::invalid_argument);
  bad = tcp_target();
  bad.target.host.clear();
  CHECK(r.c.open_channel(bad, t0).error().code == Errc::invalid_argument);
  bad = tcp_target();
  bad.kind = "udp";
  CHECK(r.c.open_channel(bad, t0).error().code == Errc::invalid_argument);
  CHECK_FALSE(r.c.has_output());
}

TEST_CASE("client: open_err fails the pending channel", "[session]") {
  ReadyClient r;
  auto id = r.c.open_channel(tcp_target(), t0);
  REQUIRE(id);
  drain_output(r.c);
  feed_control(r.c, json(core::OpenErr{*id, "target_unreachable", "connection refused"}), t0);
  const auto ev = drain_events(r.c);
  const auto failed = first_event<event::ChannelOpenFailed>(ev);
  REQUIRE(failed);
  CHECK(failed->id == *id);
  CHECK(failed->code == "target_unreachable");
  CHECK(failed->msg == "connection refused");
  CHECK_FALSE(r.c.has_channel(*id));
  CHECK(r.c.state() == SessionState::ready);
}

TEST_CASE("client: open_ok without window uses caps.window", "[session]") {
  auto ok = make_hello_ok();
  ok.caps.window = 8192;
  ReadyClient r("mana.v1", ok);
  auto id = r.c.open_channel(tcp_target(), t0);
  REQUIRE(id);
  feed_control(r.c, R"({"t":"open_ok","id":2})", t0);
  CHECK(r.c.available(*id) == 8192);
}

TEST_CASE("client: a server without bidi means unlimited client-to-server data", "[session]") {
  auto ok = make_hello_ok();
  ok.caps.bidi = false;
  ClientSession c(test_client_config(), t0);
  open_transport(c);
  feed_text(c, json(ok), t0);
  REQUIRE(c.state() == SessionState::ready);
  auto id = c.open_channel(tcp_target(), t0);
  REQUIRE(id);
  feed_control(c, R"({"t":"open_ok","id":1})", t0);
  drain_output(c);
  // Bounded only by the replay buffer, which legacy peers never need (no acks).
  const std::string data = pattern(0, test_window * 3);
  for (int i = 0; i < 4; ++i) {
    auto n = c.write(*id, Stream::out, view_of(data), t0);
    REQUIRE(n);
    CHECK(*n == data.size());
    CHECK(c.replay_bytes(*id) == 0);
  }
  const auto frames = data_of(c.profile(), drain_output(c));
  std::uint64_t total = 0;
  for (const auto& f : frames)
    total += f.payload.size();
  CHECK(total == 4 * data.size());
  const auto st = c.channel_stats(*id);
  REQUIRE(st);
  CHECK(st->sent == 4 * data.size());
  CHECK(st->sent <= st->send_limit);
  // Grants from such a server are ignored rather than fatal.
  feed_control(c, R"({"t":"flow","id":1,"credit":100,"rx":10})", t0);
  CHECK(c.state() == SessionState::ready);
}

TEST_CASE("client: data from the server on stdout and stderr", "[session]") {
  ReadyClient r("lenpfx.v1");
  feed_data(r.c, Stream::out, 1, "out1", t0);
  feed_data(r.c, Stream::err, 1, "err1", t0);
  feed_data(r.c, Stream::out, 1, "", t0);  // empty payload: means nothing
  const auto ev = drain_events(r.c);
  const auto data = events_of<event::ChannelData>(ev);
  REQUIRE(data.size() == 2);
  CHECK(data[0].stream == Stream::out);
  CHECK(data[1].stream == Stream::err);
  CHECK(channel_text(ev, 1) == "out1err1");
  CHECK(r.c.channel_stats(1)->received == 8);
}

TEST_CASE("client: partial write, ChannelWritable after a grant", "[session]") {
  ReadyClient r;
  const std::string data = pattern(0, test_window + 10);
  CHECK(r.c.write(1, Stream::out, view_of(data), t0).value() == test_window);
  CHECK(r.c.available(1) == 0);
  drain_output(r.c);
  feed_control(r.c, json(core::Flow{1, 100, test_window}), t0);
  const auto w = first_event<event::ChannelWritable>(drain_events(r.c));
  REQUIRE(w);
  CHECK(w->id == 1);
  CHECK(w->available == 100);
  CHECK(r.c.replay_bytes(1) == 0);
  // Only one ChannelWritable per shortage.
  feed_control(r.c, json(core::Flow{1, 100, test_window}), t0);
  CHECK(count_events<event::ChannelWritable>(drain_events(r.c)) == 0);
}

TEST_CASE("client: duplicate exit is reported once", "[session]") {
  ReadyClient r;
  feed_control(r.c, R"({"t":"exit","id":1,"code":0})", t0);
  feed_control(r.c, R"({"t":"exit","id":1,"code":0})", t0);
  CHECK(count_events<event::ChannelExit>(drain_events(r.c)) == 1);
  CHECK(r.c.state() == SessionState::ready);
}

TEST_CASE("client: server closes a channel first", "[session]") {
  ReadyClient r;
  feed_control(r.c, R"({"t":"close","id":1,"reason":"eof"})", t0);
  const auto closes = controls_of<core::Close>(r.c.profile(), drain_output(r.c));
  REQUIRE(closes.size() == 1);  // answered once
  CHECK(closes[0].id == 1);
  const auto cl = first_event<event::ChannelClosed>(drain_events(r.c));
  REQUIRE(cl);
  CHECK(cl->reason == "eof");
  CHECK(cl->origin == Origin::remote);
  CHECK_FALSE(r.c.has_channel(1));
}

TEST_CASE("client: closing a pending channel holds the close until open_ok", "[session]") {
  ReadyClient r;
  auto id = r.c.open_channel(tcp_target(), t0);
  REQUIRE(id);
  drain_output(r.c);
  REQUIRE(r.c.close_channel(*id, "gave up", t0));
  CHECK_FALSE(r.c.has_output());  // could cross an open_err otherwise
  SECTION("open_ok: the close goes out, no ChannelOpened") {
    feed_control(r.c, json(core::OpenOk{*id, std::nullopt, test_window}), t0);
    const auto closes = controls_of<core::Close>(r.c.profile(), drain_output(r.c));
    REQUIRE(closes.size() == 1);
    CHECK(closes[0] == core::Close{*id, std::string("gave up")});
    CHECK(count_events<event::ChannelOpened>(drain_events(r.c)) == 0);
    CHECK(r.c.available(*id) == 0);
    feed_control(r.c, json(core::Close{*id, std::nullopt}), t0);
    const auto ev = drain_events(r.c);
    CHECK(count_events<event::ChannelClosed>(ev) == 1);
    CHECK_FALSE(r.c.has_output());  // our close was already sent
  }
  SECTION("open_err: freed, nothing sent") {
    feed_control(r.c, json(core::OpenErr{*id, "policy_denied", "no"}), t0);
    CHECK(count_events<event::ChannelOpenFailed>(drain_events(r.c)) == 1);
    CHECK_FALSE(r.c.has_output());
  }
  CHECK_FALSE(r.c.has_channel(*id));
  CHECK(r.c.state() == SessionState::ready);
}

TEST_CASE("client: a resize before open_ok is sent once the channel is open", "[session]") {
  ReadyClient r;
  auto id = r.c.open_channel(tcp_target(), t0);
  REQUIRE(id);
  drain_output(r.c);
  REQUIRE(r.c.resize(*id, 100, 30, t0));
  CHECK_FALSE(r.c.has_output());  // not before open_ok
  CHECK(r.c.signal(*id, "INT", t0).error().code == Errc::invalid_state);
  feed_control(r.c, json(core::OpenOk{*id, std::nullopt, test_window}), t0);
  const auto resizes = controls_of<core::Resize>(r.c.profile(), drain_output(r.c));
  REQUIRE(resizes.size() == 1);
  CHECK(resizes[0] == core::Resize{*id, 100, 30});
}

// ---------------------------------------------------------------------------
// Connection closes

TEST_CASE("client: close codes from the server", "[session]") {
  ReadyClient r;
  struct Case {
    std::uint16_t code;
    bool resumable;
    Errc error;
  };
  // clang-format off
  const Case k = GENERATE(Case{4003, false, Errc::auth_failed},
                          Case{4011, false, Errc::resume_rejected},
                          Case{4014, false, Errc::bad_json},
                          Case{1000, false, Errc::ok},
                          Case{1001, false, Errc::going_away},
                          Case{4012, true, Errc::timeout},
                          Case{4010, true, Errc::server_overload});
  // clang-format on
  CAPTURE(k.code);
  r.c.receive_close(k.code, "server says so", t0);
  CHECK_FALSE(r.c.has_output());  // the close frame is the WebSocket stack's to answer
  const auto ev = drain_events(r.c);
  const auto closed = events_of<event::Closed>(ev);
  REQUIRE(closed.size() == 1);
  CHECK(static_cast<std::uint16_t>(closed[0].code) == k.code);
  CHECK(closed[0].origin == Origin::remote);
  CHECK(closed[0].resumable == k.resumable);
  CHECK(closed[0].error == k.error);
  CHECK(closed[0].reason == "server says so");
  if (k.resumable) {
    CHECK(r.c.state() == SessionState::reconnecting);
    CHECK(r.c.has_channel(1));
    CHECK(count_events<event::ChannelClosed>(ev) == 0);
  } else {
    CHECK(r.c.state() == SessionState::closed);
    CHECK_FALSE(r.c.has_channel(1));
    CHECK(count_events<event::ChannelClosed>(ev) == 1);
    CHECK(index_of_event<event::ChannelClosed>(ev) < index_of_event<event::Closed>(ev));
    CHECK(check_silent(r.c, t0) == "");
  }
}

TEST_CASE("client: transport lost", "[session]") {
  SECTION("after hello_ok with a token: reconnecting") {
    ReadyClient r;
    REQUIRE(r.c.write(1, Stream::out, view_of("unsent"), t0));
    r.c.transport_lost(t0);
    CHECK_FALSE(r.c.has_output());  // dropped with the transport
    const auto closed = first_event<event::Closed>(drain_events(r.c));
    REQUIRE(closed);
    CHECK(closed->code == CloseCode::abnormal);
    CHECK(closed->origin == Origin::remote);
    CHECK(closed->resumable);
    CHECK(r.c.state() == SessionState::reconnecting);
    CHECK(r.c.replay_bytes(1) == 6);  // kept for the resume
    CHECK_FALSE(r.c.next_timeout());  // the host owns the backoff
    CHECK(check_silent(r.c, t0, false) == "");
  }
  SECTION("during the first handshake: final") {
    ClientSession c(test_client_config(), t0);
    open_transport(c);
    c.transport_lost(t0);
    const auto closed = first_event<event::Closed>(drain_events(c));
    REQUIRE(closed);
    CHECK(closed->code == CloseCode::abnormal);
    CHECK_FALSE(closed->resumable);
    CHECK(c.state() == SessionState::closed);
  }
}

TEST_CASE("client: host close()", "[session]") {
  ReadyClient r;
  r.c.close(CloseCode::normal, "user logged out", t0);
  const auto out = drain_output(r.c);
  const auto ev = drain_events(r.c);
  CHECK(check_close(r.c, out, ev, CloseCode::normal, Origin::local, false, t0) == "");
  CHECK(out.back().close_reason == "user logged out");
  CHECK(r.c.transport_open(t0).error().code == Errc::invalid_state);
}

TEST_CASE("client: heartbeat timeout with a token goes reconnecting", "[session]") {
  ReadyClient r;
  const Timestamp dead = plus_ms(t0, 3 * test_heartbeat_ms);
  fire_timers(r.c, plus_ms(t0, test_heartbeat_ms));
  fire_timers(r.c, plus_ms(t0, 2 * test_heartbeat_ms));
  drain_output(r.c);
  REQUIRE(r.c.next_timeout() == dead);
  r.c.handle_timeout(dead);
  CHECK(expect_close(r.c, CloseCode::timeout, Origin::local, dead, true) == "");
  CHECK(r.c.state() == SessionState::reconnecting);
  CHECK(r.c.has_channel(1));
}

TEST_CASE("client: against a real server, many channels and bytes", "[session]") {
  const std::string profile = GENERATE(as<std::string>{}, "mana.v1", "json-base64.v1", "lenpfx.v1");
  CAPTURE(profile);
  SessionPair p(profile);
  REQUIRE(p.handshake(t0));
  std::vector<ChannelId> ids;
  ids.reserve(4);
  for (int i = 0; i < 4; ++i)
    ids.push_back(p.open(t0));
  for (ChannelId id : ids)
    REQUIRE(id != 0);
  // 40 KiB each way per channel, through 4 KiB windows, with grants. Time
  // advances so that the grants stay below the server's control rate limit.
  const std::size_t total = 40 * 1024;
  std::vector<std::size_t> down(5, 0), up(5, 0);
  Timestamp now = t0;
  for (int round = 0; round < 200; ++round) {
    now = plus_ms(now, 100);
    for (ChannelId id : ids) {
      if (down[id] < total) {
        const std::string chunk =
            pattern(down[id], std::min<std::size_t>(3000, total - down[id]), 1);
        auto n = p.server.write(id, Stream::out, view_of(chunk), now);
        REQUIRE(n);
        down[id] += *n;
      }
      if (up[id] < total) {
        const std::string chunk = pattern(up[id], std::min<std::size_t>(2500, total - up[id]), 2);
        auto n = p.client.write(id, Stream::out, view_of(chunk), now);
        REQUIRE(n);
        up[id] += *n;
      }
    }
    p.pump(now);
    for (ChannelId id : ids)
      p.consume_all(id, now);
    p.pump(now);
  }
  for (ChannelId id : ids) {
    CHECK(channel_text(p.client_log, id) == pattern(0, total, 1));
    CHECK(channel_text(p.server_log, id) == pattern(0, total, 2));
    CHECK(p.server.replay_bytes(id) <= test_window_max);
  }
  CHECK(events_of<event::Closed>(p.client_log).empty());
  CHECK(events_of<event::Closed>(p.server_log).empty());
}
