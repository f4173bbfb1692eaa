// Unit tests for session resume (docs/PROTOCOL.md, "Resume"): transport loss
// on both sides, the hello with `resume`, ServerSession::resume() on the old
// session, exact byte offsets (every byte delivered once, in order, both
// directions), token rotation, re-sent exit/close, channels unknown to the
// peer, pending opens, out-of-range offsets (4011), the resume TTL and
// "newest transport wins".
//
// The host's part is played by the test: a fresh ServerSession receives the
// resume hello (event::ResumeRequested), the test calls resume() on the old
// session and from then on pumps the old session with the client.
#include <catch2/catch.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "support/session_test_util.hpp"

using namespace mana::test;  // NOLINT(google-build-using-namespace)
using mana::core::CloseCode;
using mana::core::Errc;
using mana::core::Origin;
using mana::core::ResumeChannel;
namespace event = mana::core::event;
namespace core = mana::core;

namespace {

constexpr Timestamp t0 = at_ms(1000);
constexpr std::uint8_t down_seed = 1;  // server -> client pattern
constexpr std::uint8_t up_seed = 2;    // client -> server pattern

// A connected pair with channel 1 open; logs cleared.
struct Resumable {
  Resumable() {
    REQUIRE(p.handshake(t0, token_a));
    REQUIRE(p.open(t0) == 1);
    p.clear_logs();
  }
  ClientSession& client() { return p.client; }
  ServerSession& server() { return p.server; }

  // Writes the next `n` bytes of the channel-1 pattern in each direction;
  // returns how much each side accepted.
  std::uint64_t write_down(std::size_t n, Timestamp now) {
    auto r = p.server.write(1, Stream::out, view_of(pattern(down_sent, n, down_seed)), now);
    REQUIRE(r);
    down_sent += *r;
    return *r;
  }
  std::uint64_t write_up(std::size_t n, Timestamp now) {
    auto r = p.client.write(1, Stream::out, view_of(pattern(up_sent, n, up_seed)), now);
    REQUIRE(r);
    up_sent += *r;
    return *r;
  }

  // Both transports die (messages still queued are lost).
  void lose_transport(Timestamp now) {
    p.collect();
    drain_output(p.client);
    drain_output(p.server);
    p.client.transport_lost(now);
    p.server.transport_lost(now);
    p.collect();
    REQUIRE(p.client.state() == SessionState::reconnecting);
    REQUIRE(p.server.state() == SessionState::detached);
  }

  // The client reconnects; a fresh handshake session receives its hello and
  // reports ResumeRequested. Returns that hello.
  core::Hello reconnect(ServerSession& fresh, Timestamp now) {
    REQUIRE(p.client.transport_open(now));
    const auto out = drain_output(p.client);
    REQUIRE(out.size() == 1);
    REQUIRE(out[0].type == MessageType::text);
    feed(fresh, out[0], now);
    const auto ev = drain_events(fresh);
    const auto req = first_event<event::ResumeRequested>(ev);
    REQUIRE(req);
    REQUIRE(count_events<event::HelloReceived>(ev) == 0);
    REQUIRE_FALSE(fresh.has_output());
    REQUIRE(req->hello.resume);
    p.collect();
    return req->hello;
  }

  // Full resume onto the old server session with `new_token`, then pump.
  void resume(Timestamp now, std::string_view new_token) {
    ServerSession fresh(test_server_config(), now);
    const core::Hello hello = reconnect(fresh, now);
    REQUIRE(p.server.matches_token(hello.resume->token));
    REQUIRE(p.server.resume(hello, std::string(new_token), now));
    p.pump(now);
    REQUIRE(p.client.state() == SessionState::ready);
    REQUIRE(p.server.state() == SessionState::ready);
  }

  SessionPair p;
  std::uint64_t down_sent = 0;
  std::uint64_t up_sent = 0;
};

core::OpenParams tcp_target_for_resume() {
  core::OpenParams p;
  p.target = core::Target{"example.test", 22};
  return p;
}

void check_stats_invariants(const SessionCore& s, ChannelId id) {
  const auto st = s.channel_stats(id);
  REQUIRE(st);
  CHECK(st->sent <= st->send_limit);
  CHECK(st->acked <= st->sent);
  CHECK(st->consumed <= st->received);
  CHECK(st->received <= st->recv_limit);
  CHECK(s.replay_bytes(id) == st->sent - st->acked);
  CHECK(s.replay_bytes(id) <= test_window_max);
}

}  // namespace

TEST_CASE("resume: mid-stream loss, every byte delivered exactly once both ways", "[resume]") {
  Resumable r;
  // Three messages each way; only the first of each arrives.
  for (int i = 0; i < 3; ++i)
    REQUIRE(r.write_down(1000, t0) == 1000);
  for (int i = 0; i < 3; ++i)
    REQUIRE(r.write_up(500, t0) == 500);
  auto down = drain_output(r.server());
  auto up = drain_output(r.client());
  REQUIRE(down.size() == 3);
  REQUIRE(up.size() == 3);
  feed(r.client(), down[0], t0);
  feed(r.server(), up[0], t0);

  const Timestamp t1 = plus_ms(t0, 100);
  r.lose_transport(t1);
  const auto cclosed = first_event<event::Closed>(r.p.client_log);
  REQUIRE(cclosed);
  CHECK(cclosed->code == CloseCode::abnormal);
  CHECK(cclosed->resumable);
  const auto sclosed = first_event<event::Closed>(r.p.server_log);
  REQUIRE(sclosed);
  CHECK(sclosed->resumable);
  CHECK(r.server().next_timeout() == plus_ms(t1, test_resume_ttl_ms));

  // Written while detached / reconnecting: buffered for the replay only.
  REQUIRE(r.write_down(500, t1) == 500);
  REQUIRE(r.write_up(200, t1) == 200);
  CHECK_FALSE(r.server().has_output());
  CHECK_FALSE(r.client().has_output());

  const Timestamp t2 = plus_ms(t0, 300);
  ServerSession fresh(test_server_config(), t2);
  const core::Hello hello = r.reconnect(fresh, t2);
  CHECK(hello.resume->token == token_a);
  REQUIRE(hello.resume->channels.size() == 1);
  CHECK(hello.resume->channels[0] == ResumeChannel{1, 1000, test_window - 1000, false});

  REQUIRE(r.server().resume(hello, std::string(token_b), t2));
  const auto out = drain_output(r.server());
  REQUIRE_FALSE(out.empty());
  // hello_ok first (plain JSON), with the server's position.
  auto hok = core::parse_control(as_text(out[0]));
  REQUIRE(hok);
  const auto* ok = std::get_if<core::HelloOk>(&hok.value());
  REQUIRE(ok != nullptr);
  REQUIRE(ok->resume);
  CHECK(ok->resume->token == token_b);
  REQUIRE(ok->resume->channels.size() == 1);
  CHECK(ok->resume->channels[0] == ResumeChannel{1, 500, test_window - 500, false});
  // Then the replay of [1000, 3500).
  const auto replay = data_of(r.server().profile(), out);
  std::string replayed;
  for (const auto& f : replay)
    replayed.append(f.payload.begin(), f.payload.end());
  CHECK(replayed == pattern(1000, 2500, down_seed));

  for (const auto& m : out)
    feed(r.client(), m, t2);
  r.p.pump(t2);
  const auto ready = first_event<event::Ready>(r.p.client_log);
  REQUIRE(ready);
  CHECK(ready->resumed);
  CHECK(r.client().resume_token() == std::optional<std::string>(token_b));
  CHECK(r.server().resume_token() == token_b);
  CHECK(r.client().resume_count() == 1);
  CHECK(r.server().resume_count() == 1);
  CHECK(r.client().state() == SessionState::ready);
  CHECK(r.server().state() == SessionState::ready);
  CHECK_FALSE(fresh.has_output());  // the handshake session never answered

  CHECK(channel_text(r.p.client_log, 1) == pattern(0, 3500, down_seed));
  CHECK(channel_text(r.p.server_log, 1) == pattern(0, 1700, up_seed));
  check_stats_invariants(r.client(), 1);
  check_stats_invariants(r.server(), 1);
  // The channel keeps working after the resume, credit included.
  r.p.consume_all(1, t2);
  r.p.pump(t2);
  REQUIRE(r.write_down(4000, t2) > 0);
  REQUIRE(r.write_up(4000, t2) > 0);
  r.p.pump(t2);
  CHECK(channel_text(r.p.client_log, 1) == pattern(0, r.down_sent, down_seed));
  CHECK(channel_text(r.p.server_log, 1) == pattern(0, r.up_sent, up_seed));
}

TEST_CASE("resume: token rotation and the previous token", "[resume]") {
  Resumable r;
  r.lose_transport(t0);
  ServerSession fresh(test_server_config(), t0);
  const core::Hello hello = r.reconnect(fresh, t0);
  CHECK(r.server().matches_token(token_a));
  CHECK_FALSE(r.server().matches_token(token_c));
  REQUIRE(r.server().resume(hello, std::string(token_b), t0));
  // Until the client shows it has the new token, both are accepted (S5).
  CHECK(r.server().matches_token(token_a));
  CHECK(r.server().matches_token(token_b));
  r.p.pump(t0);
  CHECK(r.client().resume_token() == std::optional<std::string>(token_b));
  REQUIRE(r.client().write(1, Stream::out, view_of("proof"), t0));
  r.p.pump(t0);
  CHECK_FALSE(r.server().matches_token(token_a));
  CHECK(r.server().matches_token(token_b));
  CHECK(count_events<event::Diagnostic>(r.p.client_log) > 0);
}

TEST_CASE("resume: hello_ok lost, the client resumes again with its old token", "[resume]") {
  Resumable r;
  REQUIRE(r.write_down(700, t0) == 700);
  r.lose_transport(t0);
  ServerSession fresh(test_server_config(), t0);
  const core::Hello hello = r.reconnect(fresh, t0);
  REQUIRE(r.server().resume(hello, std::string(token_b), t0));
  r.lose_transport(plus_ms(t0, 10));  // hello_ok and the replay never arrive
  CHECK(r.client().resume_token() == std::optional<std::string>(token_a));

  const Timestamp t1 = plus_ms(t0, 50);
  ServerSession fresh2(test_server_config(), t1);
  const core::Hello again = r.reconnect(fresh2, t1);
  CHECK(again.resume->token == token_a);
  REQUIRE(r.server().matches_token(again.resume->token));
  REQUIRE(r.server().resume(again, std::string(token_c), t1));
  r.p.pump(t1);
  CHECK(r.client().resume_token() == std::optional<std::string>(token_c));
  CHECK(channel_text(r.p.client_log, 1) == pattern(0, 700, down_seed));
  CHECK(r.server().resume_count() == 2);
}

TEST_CASE("resume: exit and close lost in the cut are re-sent", "[resume]") {
  Resumable r;
  REQUIRE(r.write_down(300, t0) == 300);
  REQUIRE(r.server().exit_channel(1, 0, std::nullopt, t0));
  REQUIRE(r.server().close_channel(1, "eof", t0));
  SECTION("all lost") {}
  SECTION("data and exit arrived, close lost") {
    auto out = drain_output(r.server());
    REQUIRE(out.size() == 3);
    feed(r.client(), out[0], t0);
    feed(r.client(), out[1], t0);
    r.p.collect();
    REQUIRE(count_events<event::ChannelExit>(r.p.client_log) == 1);
  }
  r.lose_transport(plus_ms(t0, 1));
  r.resume(plus_ms(t0, 20), token_b);

  const auto& cev = r.p.client_log;
  CHECK(count_events<event::ChannelExit>(cev) == 1);  // duplicates ignored
  const auto closed = events_of<event::ChannelClosed>(cev);
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].reason == "eof");
  CHECK(channel_text(cev, 1) == pattern(0, 300, down_seed));
  CHECK(index_of_event<event::ChannelExit>(cev) < index_of_event<event::ChannelClosed>(cev));
  CHECK(count_events<event::ChannelClosed>(r.p.server_log) == 1);
  CHECK_FALSE(r.client().has_channel(1));
  CHECK_FALSE(r.server().has_channel(1));
}

TEST_CASE("resume: the client's close lost in the cut is re-sent", "[resume]") {
  Resumable r;
  REQUIRE(r.client().close_channel(1, "tab closed", t0));
  r.lose_transport(t0);
  r.resume(plus_ms(t0, 20), token_b);
  const auto sc = events_of<event::ChannelClosed>(r.p.server_log);
  REQUIRE(sc.size() == 1);
  CHECK(sc[0].reason == "tab closed");
  CHECK(count_events<event::ChannelClosed>(r.p.client_log) == 1);
  CHECK_FALSE(r.client().has_channel(1));
  CHECK_FALSE(r.server().has_channel(1));
}

TEST_CASE("resume: channels unknown to the peer are freed on both sides", "[resume]") {
  Resumable r;
  REQUIRE(r.p.open(t0) == 2);
  r.p.clear_logs();
  SECTION("client freed it, its close answer was lost: server frees it") {
    REQUIRE(r.server().close_channel(1, "eof", t0));
    deliver(r.server(), r.client(), t0);  // client answers close and frees channel 1
    r.p.collect();
    REQUIRE_FALSE(r.client().has_channel(1));
    r.lose_transport(t0);  // the answer is lost
    REQUIRE(r.server().has_channel(1));
    r.p.clear_logs();
    ServerSession fresh(test_server_config(), t0);
    const core::Hello hello = r.reconnect(fresh, t0);
    REQUIRE(hello.resume->channels.size() == 1);
    CHECK(hello.resume->channels[0].id == 2);
    REQUIRE(r.server().resume(hello, std::string(token_b), t0));
    r.p.pump(t0);
    const auto sc = events_of<event::ChannelClosed>(r.p.server_log);
    REQUIRE(sc.size() == 1);
    CHECK(sc[0].id == 1);
    CHECK(sc[0].reason == "resume: unknown to peer");
    CHECK(count_events<event::ChannelClosed>(r.p.client_log) == 0);
  }
  SECTION("server freed it, its close answer was lost: client frees it") {
    REQUIRE(r.client().close_channel(1, "bye", t0));
    deliver(r.client(), r.server(), t0);  // server answers close and frees channel 1
    r.p.collect();
    REQUIRE_FALSE(r.server().has_channel(1));
    r.lose_transport(t0);
    REQUIRE(r.client().has_channel(1));
    r.p.clear_logs();
    r.resume(t0, token_b);
    const auto cc = events_of<event::ChannelClosed>(r.p.client_log);
    REQUIRE(cc.size() == 1);
    CHECK(cc[0].id == 1);
    CHECK(cc[0].reason == "resume: unknown to peer");
    CHECK(cc[0].origin == Origin::remote);
    CHECK(count_events<event::ChannelClosed>(r.p.server_log) == 0);
  }
  CHECK_FALSE(r.client().has_channel(1));
  CHECK_FALSE(r.server().has_channel(1));
  CHECK(r.client().has_channel(2));
  CHECK(r.server().has_channel(2));
  CHECK(r.client().state() == SessionState::ready);
}

TEST_CASE("resume: a pending open is re-sent after hello_ok", "[resume]") {
  Resumable r;
  core::OpenParams op;
  op.target = core::Target{"late.example", 2200};
  auto id = r.client().open_channel(op, t0);
  REQUIRE(id);
  REQUIRE(*id == 2);
  SECTION("open lost") {
    drain_output(r.client());
  }
  SECTION("open arrived, host still deciding") {
    deliver(r.client(), r.server(), t0);
    r.p.collect();
    REQUIRE(first_event<event::OpenRequested>(r.p.server_log));
  }
  SECTION("open accepted, open_ok lost") {
    deliver(r.client(), r.server(), t0);
    REQUIRE(r.server().accept_open(2, std::nullopt, t0));
  }
  r.lose_transport(t0);
  r.p.clear_logs();
  ServerSession fresh(test_server_config(), t0);
  const core::Hello hello = r.reconnect(fresh, t0);
  REQUIRE(hello.resume->channels.size() == 1);  // the pending channel is not listed
  CHECK(hello.resume->channels[0].id == 1);
  REQUIRE(r.server().resume(hello, std::string(token_b), t0));
  r.p.pump(t0);
  CHECK_FALSE(first_event<event::Closed>(r.p.server_log));
  const auto req = first_event<event::OpenRequested>(r.p.server_log);
  REQUIRE(req);
  CHECK(req->open.id == 2);
  CHECK(req->open.target == op.target);
  REQUIRE(r.server().accept_open(2, std::nullopt, t0));
  r.p.pump(t0);
  CHECK(first_event<event::ChannelOpened>(r.p.client_log));
  CHECK(r.client().available(2) == test_window);
  CHECK(r.server().available(2) == test_window);
}

TEST_CASE("resume: a pending open closed by the application is not re-sent", "[resume]") {
  Resumable r;
  auto id = r.client().open_channel(tcp_target_for_resume(), t0);
  REQUIRE(id);
  REQUIRE(r.client().close_channel(*id, "never mind", t0));
  r.lose_transport(t0);
  r.p.clear_logs();
  r.resume(t0, token_b);
  CHECK_FALSE(first_event<event::OpenRequested>(r.p.server_log));
  const auto cc = events_of<event::ChannelClosed>(r.p.client_log);
  REQUIRE(cc.size() == 1);
  CHECK(cc[0].id == *id);
  CHECK(cc[0].origin == Origin::local);
  CHECK_FALSE(r.client().has_channel(*id));
  CHECK(r.client().has_channel(1));
}

TEST_CASE("resume: offsets out of range are refused with 4011", "[resume]") {
  Resumable r;
  REQUIRE(r.write_down(test_window, t0) == test_window);
  r.p.pump(t0);
  r.p.consume_all(1, t0);
  r.p.pump(t0);  // the grant acknowledges everything: server replay starts at 4096
  REQUIRE(r.server().channel_stats(1)->acked == test_window);
  REQUIRE(r.write_down(100, t0) == 100);  // sent, lost
  r.lose_transport(t0);

  ServerSession fresh(test_server_config(), t0);
  core::Hello hello = r.reconnect(fresh, t0);
  REQUIRE(hello.resume->channels.size() == 1);
  CHECK(hello.resume->channels[0].rx == test_window);
  ResumeChannel& e = hello.resume->channels[0];
  SECTION("rx beyond what was sent") {
    e.rx = test_window + 101;
  }
  SECTION("rx below the acknowledged start") {
    e.rx = test_window - 1;
  }
  SECTION("credit below the bytes to replay") {
    e.credit = 99;
  }
  auto res = r.server().resume(hello, std::string(token_b), t0);
  REQUIRE_FALSE(res);
  CHECK(res.error().code == Errc::resume_out_of_range);
  CHECK(res.error().close_code() == CloseCode::resume_failed);
  // The old session is left as it was.
  CHECK(r.server().state() == SessionState::detached);
  CHECK(r.server().has_channel(1));
  CHECK(r.server().resume_token() == token_a);
  CHECK_FALSE(r.server().has_output());

  // The handshake session refuses the resume.
  fresh.reject(Errc::resume_rejected, "resume offset out of range", t0);
  const auto out = drain_output(fresh);
  const auto ev = drain_events(fresh);
  CHECK(check_close(fresh, out, ev, CloseCode::resume_failed, Origin::local, false, t0) == "");
  CHECK(out.size() == 1);
  CHECK(out[0].close_reason == "resume offset out of range");

  // The client gives up for good.
  r.p.clear_logs();
  r.client().receive_close(static_cast<std::uint16_t>(out[0].close_code), out[0].close_reason, t0);
  r.p.collect();
  const auto closed = first_event<event::Closed>(r.p.client_log);
  REQUIRE(closed);
  CHECK(closed->code == CloseCode::resume_failed);
  CHECK(closed->origin == Origin::remote);
  CHECK_FALSE(closed->resumable);
  CHECK(r.client().state() == SessionState::closed);
  CHECK_FALSE(r.client().has_channel(1));
  CHECK(check_silent(r.client(), t0) == "");
}

TEST_CASE("resume: unknown token is rejected with 4011", "[resume]") {
  Resumable r;
  r.lose_transport(t0);
  ServerSession fresh(test_server_config(), t0);
  const core::Hello hello = r.reconnect(fresh, t0);
  CHECK_FALSE(ServerSession(test_server_config(), t0).matches_token(hello.resume->token));
  fresh.reject(Errc::resume_rejected, "resume rejected", t0);
  CHECK(expect_close(fresh, CloseCode::resume_failed, Origin::local, t0) == "");
}

TEST_CASE("resume: the client validates the server's offsets", "[resume]") {
  Resumable r;
  REQUIRE(r.write_up(1000, t0) == 1000);
  r.lose_transport(t0);
  REQUIRE(r.client().transport_open(t0));
  drain_output(r.client());
  core::HelloOk ok;
  ok.server = "crafted";
  ok.caps.max_frame = static_cast<std::uint32_t>(test_max_frame);
  ok.caps.window = test_window;
  ok.resume = core::ResumeGrant{std::string(token_b), {ResumeChannel{1, 1001, test_window, false}}};
  SECTION("rx beyond what the client sent") {}
  SECTION("credit below the bytes to replay") {
    ok.resume->channels[0] = ResumeChannel{1, 0, 10, false};
  }
  SECTION("no resume block at all") {
    ok.resume.reset();
  }
  feed_text(r.client(), core::encode_control(ok), t0);
  CHECK(expect_close(r.client(), CloseCode::resume_failed, Origin::remote, t0) == "");
}

TEST_CASE("resume: the TTL expires, 4011 and everything released", "[resume]") {
  Resumable r;
  REQUIRE(r.p.open(t0) == 2);
  REQUIRE(r.write_down(100, t0) == 100);
  r.lose_transport(t0);
  r.p.clear_logs();
  const Timestamp expiry = plus_ms(t0, test_resume_ttl_ms);
  REQUIRE(r.server().next_timeout() == expiry);
  r.server().handle_timeout(plus_ms(expiry, -1));
  CHECK(r.server().state() == SessionState::detached);
  r.server().handle_timeout(expiry);
  CHECK_FALSE(r.server().has_output());  // no transport to close
  const auto ev = drain_events(r.server());
  const auto closed = events_of<event::Closed>(ev);
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].code == CloseCode::resume_failed);
  CHECK(closed[0].origin == Origin::local);
  CHECK(closed[0].reason == "resume ttl expired");
  CHECK_FALSE(closed[0].resumable);
  CHECK(count_events<event::ChannelClosed>(ev) == 2);
  CHECK(r.server().state() == SessionState::closed);
  CHECK(r.server().channel_count() == 0);
  CHECK(r.server().total_replay_bytes() == 0);
  CHECK_FALSE(r.server().next_timeout());

  ServerSession fresh(test_server_config(), expiry);
  const core::Hello hello = r.reconnect(fresh, expiry);
  CHECK(r.server().resume(hello, std::string(token_b), expiry).error().code == Errc::invalid_state);
  CHECK(check_silent(r.server(), expiry) == "");
}

TEST_CASE("resume: newest transport wins on an attached session", "[resume]") {
  Resumable r;
  REQUIRE(r.write_down(1200, t0) == 1200);
  REQUIRE(r.write_up(800, t0) == 800);
  deliver(r.client(), r.server(), t0);  // the server got everything
  r.p.collect();
  // The client's transport dies; the server does not notice and keeps the
  // data for the old transport queued.
  REQUIRE(r.server().has_output());
  r.client().transport_lost(t0);
  REQUIRE(r.server().state() == SessionState::ready);
  REQUIRE(r.write_down(300, t0) == 300);

  const Timestamp t1 = plus_ms(t0, 40);
  ServerSession fresh(test_server_config(), t1);
  const core::Hello hello = r.reconnect(fresh, t1);
  REQUIRE(r.server().resume(hello, std::string(token_b), t1));
  r.p.collect();
  bool superseded = false;
  for (const auto& d : events_of<event::Diagnostic>(r.p.server_log))
    superseded = superseded || d.code == core::DiagCode::transport_superseded;
  CHECK(superseded);
  CHECK(events_of<event::Closed>(r.p.server_log).empty());
  // The old transport's queue was dropped: hello_ok is the first message.
  const auto out = drain_output(r.server());
  REQUIRE_FALSE(out.empty());
  CHECK(out[0].type == MessageType::text);
  CHECK(as_text(out[0]).find(R"("t":"hello_ok")") != std::string::npos);
  for (const auto& m : out)
    feed(r.client(), m, t1);
  r.p.pump(t1);
  CHECK(channel_text(r.p.client_log, 1) == pattern(0, 1500, down_seed));
  CHECK(channel_text(r.p.server_log, 1) == pattern(0, 800, up_seed));
  CHECK(r.client().resume_token() == std::optional<std::string>(token_b));
}

TEST_CASE("resume: data written while detached and reconnecting arrives after resume", "[resume]") {
  Resumable r;
  r.lose_transport(t0);
  // Up to the whole window each way, in small writes.
  while (r.write_down(700, t0) > 0) {
  }
  while (r.write_up(300, t0) > 0) {
  }
  CHECK(r.down_sent == test_window);
  CHECK(r.up_sent == test_window);
  CHECK(r.server().replay_bytes(1) == test_window);
  CHECK(r.client().replay_bytes(1) == test_window);
  r.resume(plus_ms(t0, 100), token_b);
  CHECK(channel_text(r.p.client_log, 1) == pattern(0, test_window, down_seed));
  CHECK(channel_text(r.p.server_log, 1) == pattern(0, test_window, up_seed));
  // Grants consumed while reconnecting are advertised in the resume exchange.
  r.p.consume_all(1, plus_ms(t0, 100));
  r.p.pump(plus_ms(t0, 100));
  CHECK(r.server().available(1) == test_window);
  CHECK(r.client().available(1) == test_window);
  CHECK(r.server().replay_bytes(1) == 0);
  CHECK(r.client().replay_bytes(1) == 0);
}

TEST_CASE("resume: consumption while disconnected is granted after the resume", "[resume]") {
  Resumable r;
  REQUIRE(r.write_down(test_window, t0) == test_window);
  REQUIRE(r.write_up(test_window, t0) == test_window);
  r.p.pump(t0);
  r.lose_transport(t0);
  // Both applications consume while the transport is down: no flow can go
  // out. hello.resume.credit / hello_ok.resume.credit carry the limit the peer
  // was told (limit - rx); the new credit follows as a flow after the resume.
  REQUIRE(r.client().consume(1, test_window, t0));
  REQUIRE(r.server().consume(1, test_window, t0));
  CHECK_FALSE(r.client().has_output());
  CHECK_FALSE(r.server().has_output());
  ServerSession fresh(test_server_config(), t0);
  const core::Hello hello = r.reconnect(fresh, t0);
  REQUIRE(hello.resume->channels.size() == 1);
  const auto cst = r.client().channel_stats(1);
  REQUIRE(cst);
  CHECK(hello.resume->channels[0].rx == test_window);
  CHECK(hello.resume->channels[0].credit == cst->recv_limit - cst->received);
  REQUIRE(r.server().resume(hello, std::string(token_b), t0));
  r.p.pump(t0);
  CHECK(r.server().available(1) == test_window);
  CHECK(r.client().available(1) == test_window);
  CHECK(r.server().replay_bytes(1) == 0);
  CHECK(r.client().replay_bytes(1) == 0);
  // The channel runs at full speed again.
  REQUIRE(r.write_down(test_window, t0) == test_window);
  r.p.pump(t0);
  CHECK(channel_text(r.p.client_log, 1) == pattern(0, 2 * test_window, down_seed));
}

TEST_CASE("resume: the latest resize is re-sent, signals are not replayed", "[resume]") {
  Resumable r;
  REQUIRE(r.client().resize(1, 100, 30, t0));
  REQUIRE(r.client().resize(1, 120, 40, t0));
  REQUIRE(r.client().signal(1, "INT", t0));
  r.lose_transport(t0);                        // all three lost
  REQUIRE(r.client().resize(1, 132, 50, t0));  // while reconnecting
  r.resume(t0, token_b);
  const auto rs = events_of<event::ChannelResized>(r.p.server_log);
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].cols == 132);
  CHECK(rs[0].rows == 50);
  CHECK(count_events<event::ChannelSignal>(r.p.server_log) == 0);
}

TEST_CASE("resume: a heartbeat timeout is resumable", "[resume]") {
  Resumable r;
  REQUIRE(r.write_down(200, t0) == 200);
  drain_output(r.server());  // lost
  const Timestamp dead = plus_ms(t0, 3 * test_heartbeat_ms);
  r.client().handle_timeout(dead);
  CHECK(r.client().state() == SessionState::reconnecting);
  // The server saw the client's 4012 close frame.
  deliver(r.client(), r.server(), dead);
  r.p.collect();
  CHECK(r.server().state() == SessionState::detached);
  r.resume(plus_ms(dead, 10), token_b);
  CHECK(channel_text(r.p.client_log, 1) == pattern(0, 200, down_seed));
}

TEST_CASE("resume: repeated cuts at arbitrary points lose and duplicate nothing", "[resume]") {
  Resumable r;
  REQUIRE(r.p.open(t0) == 2);
  std::uint32_t rng = 12345;
  const auto next = [&rng](std::uint32_t n) {
    rng = rng * 1103515245U + 12345U;
    return (rng >> 16) % n;
  };
  std::uint64_t down2 = 0;
  Timestamp now = t0;
  std::string token = std::string(token_a);
  for (int cycle = 0; cycle < 40; ++cycle) {
    now = plus_ms(now, 200);
    for (int step = 0; step < 4; ++step) {
      r.write_down(1 + next(1500), now);
      r.write_up(1 + next(900), now);
      auto w = r.server().write(2, Stream::err, view_of(pattern(down2, 1 + next(800), 9)), now);
      REQUIRE(w);
      down2 += *w;
      // Deliver a random prefix of each side's queue; the rest is lost later.
      auto sout = drain_output(r.server());
      auto cout = drain_output(r.client());
      const std::size_t ns = sout.empty() ? 0 : next(static_cast<std::uint32_t>(sout.size() + 1));
      const std::size_t nc = cout.empty() ? 0 : next(static_cast<std::uint32_t>(cout.size() + 1));
      for (std::size_t i = 0; i < ns; ++i)
        feed(r.client(), sout[i], now);
      for (std::size_t i = 0; i < nc; ++i)
        feed(r.server(), cout[i], now);
      const bool cut = ns < sout.size() || nc < cout.size();
      if (cut) break;
      r.p.collect();
      r.p.consume_all(1, now);
      r.p.consume_all(2, now);
      r.p.pump(now);
    }
    r.lose_transport(now);
    const std::string fresh_token =
        "rotated" + std::string(17, static_cast<char>('a' + cycle % 26));
    r.resume(plus_ms(now, 5), fresh_token);
    token = fresh_token;
    REQUIRE(r.client().resume_token() == std::optional<std::string>(token));
    REQUIRE(events_of<event::Closed>(r.p.client_log).size() == static_cast<std::size_t>(cycle + 1));
    for (ChannelId id : {ChannelId{1}, ChannelId{2}}) {
      check_stats_invariants(r.client(), id);
      check_stats_invariants(r.server(), id);
    }
    r.p.consume_all(1, now);
    r.p.consume_all(2, now);
    r.p.pump(now);
  }
  CHECK(channel_text(r.p.client_log, 1) == pattern(0, r.down_sent, down_seed));
  CHECK(channel_text(r.p.server_log, 1) == pattern(0, r.up_sent, up_seed));
  CHECK(channel_text(r.p.client_log, 2) == pattern(0, down2, 9));
  CHECK(r.down_sent > 4 * test_window);
  CHECK(r.up_sent > 4 * test_window);
  CHECK(r.server().resume_count() == 40);
}

TEST_CASE("resume: a new client adopts a stored token; the server frees every old channel",
          "[resume]") {
  // Page reload: the old page's session (channels 1 and 2, data in flight both ways) is detached;
  // a new ClientSession adopts the stored token and resumes it with no channels.
  Resumable r;
  REQUIRE(r.p.open(t0) == 2);
  REQUIRE(r.write_down(500, t0) == 500);
  REQUIRE(r.write_up(300, t0) == 300);
  r.lose_transport(t0);
  const std::string stored = *r.client().resume_token();
  r.p.clear_logs();

  ClientSession reloaded(test_client_config(), t0);
  REQUIRE(reloaded.adopt_resume_token(stored));
  REQUIRE(reloaded.resume_token() == stored);
  REQUIRE(reloaded.transport_open(t0));
  CHECK(reloaded.state() == SessionState::authenticating);
  ServerSession fresh(test_server_config(), t0);
  const auto out = drain_output(reloaded);
  REQUIRE(out.size() == 1);
  feed(fresh, out[0], t0);
  const auto req = first_event<event::ResumeRequested>(drain_events(fresh));
  REQUIRE(req);
  REQUIRE(req->hello.resume);
  CHECK(req->hello.resume->token == stored);
  CHECK(req->hello.resume->channels.empty());
  REQUIRE(r.server().matches_token(stored));
  REQUIRE(r.server().resume(req->hello, std::string(token_b), t0));
  pump(reloaded, r.server(), t0);

  const auto server_ev = drain_events(r.server());
  const auto freed = events_of<event::ChannelClosed>(server_ev);
  REQUIRE(freed.size() == 2);
  for (const auto& c : freed)
    CHECK(c.reason == "resume: unknown to peer");
  CHECK(r.server().channel_count() == 0);
  CHECK(r.server().total_replay_bytes() == 0);
  CHECK(r.server().state() == SessionState::ready);

  const auto client_ev = drain_events(reloaded);
  const auto ready = first_event<event::Ready>(client_ev);
  REQUIRE(ready);
  CHECK(ready->resumed);
  CHECK(count_events<event::ChannelClosed>(client_ev) == 0);
  CHECK(reloaded.state() == SessionState::ready);
  CHECK(reloaded.channel_count() == 0);
  CHECK(reloaded.resume_token() == std::string(token_b));
  CHECK(reloaded.resume_count() == 1);
  // The resumed session takes new channels as usual.
  core::OpenParams p;
  p.target = core::Target{"example.test", 22};
  const auto id = reloaded.open_channel(p, t0);
  REQUIRE(id);
  CHECK(*id == 1);
}

TEST_CASE("resume: adopting a stored token is refused outside a fresh session", "[resume]") {
  SECTION("bad tokens") {
    ClientSession c(test_client_config(), t0);
    CHECK(c.adopt_resume_token("short").error().code == Errc::invalid_argument);
    CHECK(c.adopt_resume_token(std::string(257, 'a')).error().code == Errc::invalid_argument);
    CHECK(c.adopt_resume_token("tokenAAAAAAAAAAAAAAA=AAA").error().code == Errc::invalid_argument);
    CHECK_FALSE(c.resume_token());
    REQUIRE(c.transport_open(t0));
    const auto out = drain_output(c);
    REQUIRE(out.size() == 1);
    CHECK(as_text(out[0]).find("\"resume\":{") == std::string::npos);  // a plain hello
  }
  SECTION("after the first transport") {
    SessionPair p;
    REQUIRE(p.handshake(t0));
    CHECK(p.client.adopt_resume_token(std::string(token_b)).error().code == Errc::invalid_state);
  }
  SECTION("resume disabled") {
    ClientConfig cfg = test_client_config();
    cfg.resume = false;
    ClientSession c(std::move(cfg), t0);
    CHECK(c.adopt_resume_token(std::string(token_b)).error().code == Errc::invalid_state);
  }
  SECTION("a rejected adopted token closes with 4011") {
    ClientSession c(test_client_config(), t0);
    REQUIRE(c.adopt_resume_token(std::string(token_c)));
    REQUIRE(c.transport_open(t0));
    ServerSession fresh(test_server_config(), t0);
    const auto out = drain_output(c);
    REQUIRE(out.size() == 1);
    feed(fresh, out[0], t0);
    REQUIRE(first_event<event::ResumeRequested>(drain_events(fresh)));
    fresh.reject(Errc::resume_rejected, "resume rejected", t0);
    deliver(fresh, c, t0);
    const auto closed = events_of<event::Closed>(drain_events(c));
    REQUIRE(closed.size() == 1);
    CHECK(closed[0].code == CloseCode::resume_failed);
    CHECK_FALSE(closed[0].resumable);
    CHECK(c.state() == SessionState::closed);
  }
}

TEST_CASE("resume: hello_ok carries the server's route id, fresh and resumed", "[resume]") {
  SECTION("configured: on the first hello_ok and on every resume") {
    ServerConfig scfg = test_server_config();
    scfg.route_id = "gw-b";
    SessionPair p(core::default_profile_id, scfg);
    CHECK(p.client.route() == nullptr);
    REQUIRE(p.handshake(t0));
    REQUIRE(p.client.route() != nullptr);
    CHECK(*p.client.route() == "gw-b");
    REQUIRE(p.open(t0) == 1);
    p.collect();
    drain_output(p.client);
    drain_output(p.server);
    p.client.transport_lost(t0);
    p.server.transport_lost(t0);
    p.collect();
    // While reconnecting the client still knows where the session lives.
    REQUIRE(p.client.state() == SessionState::reconnecting);
    REQUIRE(p.client.route() != nullptr);
    CHECK(*p.client.route() == "gw-b");
    REQUIRE(p.client.transport_open(t0));
    const auto out = drain_output(p.client);
    REQUIRE(out.size() == 1);
    ServerSession fresh(test_server_config(), t0);
    feed(fresh, out[0], t0);
    const auto req = first_event<event::ResumeRequested>(drain_events(fresh));
    REQUIRE(req);
    REQUIRE(p.server.resume(req->hello, std::string(token_b), t0));
    const auto ok = drain_output(p.server);
    REQUIRE_FALSE(ok.empty());
    CHECK(std::string(ok[0].data.begin(), ok[0].data.end()).find(R"("route":"gw-b")") !=
          std::string::npos);
    for (const auto& m : ok)
      feed(p.client, m, t0);
    REQUIRE(p.client.state() == SessionState::ready);
    CHECK(*p.client.route() == "gw-b");
  }
  SECTION("not configured: no route member") {
    SessionPair p;
    REQUIRE(p.client.transport_open(t0));
    p.pump(t0);
    REQUIRE(p.server.accept(core::AcceptParams{std::string(token_a)}, t0));
    const auto ok = drain_output(p.server);
    REQUIRE_FALSE(ok.empty());
    CHECK(std::string(ok[0].data.begin(), ok[0].data.end()).find("route") == std::string::npos);
    for (const auto& m : ok)
      feed(p.client, m, t0);
    CHECK(p.client.state() == SessionState::ready);
    CHECK(p.client.route() == nullptr);
  }
}
