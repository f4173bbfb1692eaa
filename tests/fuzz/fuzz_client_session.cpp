// libFuzzer target: ClientSession after a valid handshake with a real
// ServerSession (two channels open, some data exchanged), then fed fuzz-chosen
// server messages, timer ticks, application calls, transport losses and
// reconnects (input format in session_fuzz_common.hpp). The harness plays a
// cooperative application: it consumes what arrives and writes when a channel
// opens or becomes writable. After every step the invariants of
// SessionCore/ClientSession are checked (__builtin_trap on violation).
//
// Byte 0: bits 0-1 profile (mana.v1, json-base64.v1, lenpfx.v1), bit 2 the
// server offers no resume token.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "session_fuzz_common.hpp"

namespace {

using namespace mana::fuzz;  // NOLINT(google-build-using-namespace)
namespace test = mana::test;
namespace event = mana::core::event;
using core::ClientSession;
using core::Stream;

constexpr const char* profiles[] = {"mana.v1", "json-base64.v1", "lenpfx.v1", "mana.v1"};

struct Harness {
  explicit Harness(std::uint8_t flags)
      : pair(profiles[flags & 3]), check(test::test_window_max, 1024) {
    const bool token = (flags & 0x04) == 0;
    ok = pair.handshake(now, token ? test::token_a : std::string_view());
    if (!ok) return;
    for (int i = 0; i < 2; ++i) {
      const ChannelId id = pair.open(now);
      if (id == 0) {
        ok = false;
        return;
      }
      check.note_channel(id);
    }
    (void)pair.server.write(1, Stream::out, test::view_of(test::pattern(0, 1500)), now);
    (void)pair.client.write(2, Stream::out, test::view_of(test::pattern(0, 700)), now);
    pair.pump(now);
    pair.clear_logs();
    for (ChannelId id = 1; id <= 8; ++id)
      check.note_channel(id);
  }

  test::SessionPair pair;
  Checker check;
  Timestamp now = test::at_ms(1000);
  bool ok = false;
  std::uint64_t written = 0;

  ClientSession& c() { return pair.client; }

  void write(ChannelId id, std::size_t n) {
    const std::string data = test::pattern(written, n);
    auto r = c().write(id, Stream::out, test::view_of(data), now);
    if (r) {
      MANA_FUZZ_CHECK(*r <= n);
      written += *r;
    }
  }

  // The application's reaction to events.
  void app() {
    while (auto e = c().poll_event()) {
      if (auto* d = std::get_if<event::ChannelData>(&*e)) {
        MANA_FUZZ_CHECK(!d->data.empty());
        (void)c().consume(d->id, d->data.size(), now);
      } else if (auto* o = std::get_if<event::ChannelOpened>(&*e)) {
        write(o->id, 200);
      } else if (auto* w = std::get_if<event::ChannelWritable>(&*e)) {
        MANA_FUZZ_CHECK(w->available > 0);
        write(w->id, 500);
      } else if (auto* cl = std::get_if<event::Closed>(&*e)) {
        if (cl->resumable) MANA_FUZZ_CHECK(c().state() == SessionState::reconnecting);
        if (!cl->resumable) MANA_FUZZ_CHECK(c().state() == SessionState::closed);
      } else if (auto* r = std::get_if<event::Ready>(&*e)) {
        MANA_FUZZ_CHECK(c().state() == SessionState::ready);
        (void)r;
      }
    }
  }

  void tick() {
    for (int i = 0; i < 4; ++i) {
      const auto t = c().next_timeout();
      if (!t || *t > now) break;
      c().handle_timeout(now);
    }
  }

  // C1: while authenticating, the only messages are hello and a close.
  void drain() {
    const SessionState st = c().state();
    const auto out = check.drain(c());
    if (st == SessionState::authenticating) {
      for (const auto& m : out) {
        if (m.type == core::MessageType::close) continue;
        MANA_FUZZ_CHECK(m.type == core::MessageType::text);
        auto parsed = core::parse_control(test::as_text(m));
        MANA_FUZZ_CHECK(parsed && std::holds_alternative<core::Hello>(parsed.value()));
      }
    }
  }

  void step(const Record& rec) {
    Reader in(reinterpret_cast<const std::uint8_t*>(rec.body.data()), rec.body.size());
    const bool bootstrap = c().state() == SessionState::authenticating;
    switch (rec.op % 10) {
      case 0:
        c().receive(core::MessageType::text, test::view_of(rec.body), now);
        break;
      case 1:
        c().receive(core::MessageType::binary, test::view_of(rec.body), now);
        break;
      case 2: {  // a data frame in the active profile
        const ChannelId id = in.u8() % 6;
        const Stream stream = (in.u8() & 1) ? Stream::err : Stream::out;
        const std::string payload = in.rest();
        test::feed(c(), c().profile().encode_data(stream, id, test::view_of(payload)), now);
        break;
      }
      case 3:
      case 9:
        feed_control_any(c(), bootstrap, control_template(in), now);
        break;
      case 4: {  // time passes
        const std::uint16_t dt = in.u16();
        now = test::plus_ms(now, (in.u8() & 1) ? dt : dt * 10);
        tick();
        break;
      }
      case 5: {  // application calls
        const ChannelId id = 1 + in.u8() % 5;
        switch (in.u8() % 9) {
          case 0:
            write(id, in.u16() % 20000);
            break;
          case 1:
            (void)c().consume(id, in.u16(), now);
            break;
          case 2: {
            core::OpenParams p;
            p.target = core::Target{"h", static_cast<std::uint16_t>(1 + in.u8())};
            (void)c().open_channel(p, now);
            break;
          }
          case 3:
            (void)c().close_channel(id, "bye", now);
            break;
          case 4:
            (void)c().resize(id, in.u16(), in.u16(), now);
            break;
          case 5:
            (void)c().signal(id, (in.u8() & 1) ? "INT" : "bad sig", now);
            break;
          case 6: {
            const auto r = static_cast<core::PauseReason>(1u << (in.u8() % 4));
            c().set_paused(r, (in.u8() & 1) != 0, now);
            break;
          }
          case 7:
            c().close(core::CloseCode::normal, "bye", now);
            break;
          default:
            write(id, in.u8());
            break;
        }
        break;
      }
      case 6:
        c().receive_close(pick_close_code(in), "server", now);
        check.detach();
        break;
      case 7:
        c().transport_lost(now);
        check.detach();
        break;
      default: {  // reconnect
        const auto before = c().state();
        if (c().transport_open(now)) {
          MANA_FUZZ_CHECK(before == SessionState::connecting ||
                          before == SessionState::reconnecting);
          check.attach();
          const auto out = check.drain(c());
          // C1: exactly the hello, with resume when a token is held.
          MANA_FUZZ_CHECK(out.size() == 1);
          auto m = core::parse_control(test::as_text(out[0]));
          MANA_FUZZ_CHECK(m && std::holds_alternative<core::Hello>(m.value()));
          const auto& h = std::get<core::Hello>(m.value());
          MANA_FUZZ_CHECK(h.resume.has_value() == c().resume_token().has_value());
        }
        break;
      }
    }
  }

  void after_step() {
    app();
    drain();
    check.check(c());
    app();
    drain();
    check.check(c());
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  Reader in(data, size);
  Harness h(in.u8());
  MANA_FUZZ_CHECK(h.ok);  // the scripted handshake must always work
  int steps = 0;
  while (auto rec = next_record(in)) {
    if (++steps > 256) break;
    h.step(*rec);
    h.after_step();
  }
  return 0;
}
