// libFuzzer target: ServerSession fed a sequence of fuzz-chosen client
// messages, timer ticks and host actions (input format in
// session_fuzz_common.hpp). The harness plays a cooperative host: it accepts
// hellos, accepts (most) opens, writes data on open channels and consumes what
// arrives, and it can detach the session and resume it with a hello built
// from the session's own state (perturbed by the fuzzer). After every step the
// invariants of SessionCore/ServerSession are checked (__builtin_trap on
// violation).
//
// Byte 0: bits 0-1 profile of the automatic hello (mana.v1, json-base64.v1,
// lenpfx.v1), bit 2 skip the automatic hello, bit 3 offer no resume token,
// bit 4 reject hellos (auth failure) instead of accepting them.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "session_fuzz_common.hpp"

namespace {

using namespace mana::fuzz;  // NOLINT(google-build-using-namespace)
namespace test = mana::test;
namespace event = mana::core::event;
using core::ServerSession;
using core::Stream;

struct Harness {
  explicit Harness(std::uint8_t flags)
      : cfg(test::test_server_config()),
        s(cfg, test::at_ms(1000)),
        check(cfg.replay_capacity, cfg.max_channels),
        offer_token((flags & 0x08) == 0),
        reject_hello((flags & 0x10) != 0) {}

  core::ServerConfig cfg;
  ServerSession s;
  Checker check;
  Timestamp now = test::at_ms(1000);
  bool offer_token;
  bool reject_hello;
  std::uint32_t token_serial = 0;
  std::uint64_t written = 0;
  bool greeted = false;  // hello_ok sent on the current transport

  std::string next_token() {
    return "fuzzTOKEN" + std::to_string(++token_serial) + std::string(16, 'x');
  }

  // The host's reaction to events.
  void host() {
    while (auto e = s.poll_event()) {
      if (auto* h = std::get_if<event::HelloReceived>(&*e)) {
        (void)h;
        if (reject_hello) {
          s.reject(core::Errc::auth_failed, "fuzz says no", now);
        } else {
          (void)s.accept(core::AcceptParams{offer_token ? next_token() : std::string()}, now);
        }
      } else if (std::get_if<event::ResumeRequested>(&*e) != nullptr) {
        // A fresh session knows no token: the host refuses the resume.
        s.reject(core::Errc::resume_rejected, "resume rejected", now);
      } else if (auto* o = std::get_if<event::OpenRequested>(&*e)) {
        check.note_channel(o->open.id);
        if (o->open.id % 3 == 0) {
          (void)s.reject_open(o->open.id, "policy_denied", "no", now);
        } else {
          (void)s.accept_open(o->open.id, std::nullopt, now);
          write(o->open.id, 100);
        }
      } else if (auto* d = std::get_if<event::ChannelData>(&*e)) {
        MANA_FUZZ_CHECK(!d->data.empty());
        (void)s.consume(d->id, d->data.size(), now);
      } else if (auto* w = std::get_if<event::ChannelWritable>(&*e)) {
        MANA_FUZZ_CHECK(w->available > 0);
        write(w->id, 300);
      } else if (auto* c = std::get_if<event::Closed>(&*e)) {
        if (c->resumable) MANA_FUZZ_CHECK(s.state() == SessionState::detached);
        if (!c->resumable) MANA_FUZZ_CHECK(s.state() == SessionState::closed);
      }
    }
  }

  void write(ChannelId id, std::size_t n) {
    const std::string data = test::pattern(written, n);
    auto r = s.write(id, (n & 1) ? Stream::err : Stream::out, test::view_of(data), now);
    if (r) {
      MANA_FUZZ_CHECK(*r <= n);
      written += *r;
    }
  }

  void tick() {
    for (int i = 0; i < 4; ++i) {
      const auto t = s.next_timeout();
      if (!t || *t > now) break;
      s.handle_timeout(now);
    }
  }

  // A resume hello for this session, positions taken from the session's
  // stats and perturbed by the fuzzer.
  core::Hello resume_hello(Reader& in) {
    core::Hello h;
    h.caps.profile = std::string(s.profile().id());
    if (in.u8() % 8 == 0) h.caps.profile = "mana.v1";
    h.caps.max_frame = 1024 + in.u16();
    h.caps.bidi = true;
    h.caps.resume = true;
    core::ResumeRequest rr;
    rr.token = s.resume_token().empty() ? std::string(test::token_a) : s.resume_token();
    for (ChannelId id = 1; id <= 5; ++id) {
      const auto st = s.channel_stats(id);
      if (!st || (in.u8() & 3) == 0) continue;
      core::ResumeChannel e{id, st->sent, st->send_limit - st->acked, false};
      switch (in.u8() % 6) {
        case 0:
          e.rx = st->acked;
          break;  // nothing received since the ack
        case 1:
          e.rx = st->acked + in.u16() % (st->sent - st->acked + 1);
          break;
        case 2:
          e.rx = in.u64() & core::max_json_integer;
          break;  // anything
        case 3:
          e.credit = in.u64() & core::max_json_integer;
          break;
        case 4:
          e.closed = true;
          break;
        default:
          break;
      }
      rr.channels.push_back(e);
    }
    h.resume = std::move(rr);
    return h;
  }

  void step(const Record& rec) {
    Reader in(reinterpret_cast<const std::uint8_t*>(rec.body.data()), rec.body.size());
    const bool bootstrap = s.state() == SessionState::awaiting_hello;
    switch (rec.op % 10) {
      case 0:
        s.receive(core::MessageType::text, test::view_of(rec.body), now);
        break;
      case 1:
        s.receive(core::MessageType::binary, test::view_of(rec.body), now);
        break;
      case 2: {  // a data frame in the active profile
        const ChannelId id = in.u8() % 6;
        const Stream stream = (in.u8() % 4 == 0) ? Stream::err : Stream::out;
        const std::string payload = in.rest();
        test::feed(s, s.profile().encode_data(stream, id, test::view_of(payload)), now);
        break;
      }
      case 3:
        feed_control_any(s, bootstrap, control_template(in), now);
        break;
      case 4: {  // time passes
        const std::uint16_t dt = in.u16();
        now = test::plus_ms(now, (in.u8() & 1) ? dt : dt * 10);
        tick();
        break;
      }
      case 5: {  // host actions
        const ChannelId id = 1 + in.u8() % 5;
        switch (in.u8() % 7) {
          case 0:
            write(id, in.u16() % 20000);
            break;
          case 1:
            (void)s.exit_channel(id, in.u8(), std::nullopt, now);
            break;
          case 2:
            (void)s.close_channel(id, "eof", now);
            break;
          case 3: {
            const auto r = static_cast<core::PauseReason>(1u << (in.u8() % 4));
            s.set_paused(r, (in.u8() & 1) != 0, now);
            break;
          }
          case 4:
            (void)s.consume(id, in.u16(), now);
            break;
          case 5:
            (void)s.accept_open(id, std::nullopt, now);
            break;
          default:
            s.close(core::CloseCode::going_away, "host shutdown", now);
            break;
        }
        break;
      }
      case 6:
        s.receive_close(pick_close_code(in), "peer", now);
        check.detach();
        break;
      case 7:
        s.transport_lost(now);
        check.detach();
        break;
      case 8: {  // the host resumes this session on a new transport
        const core::Hello h = resume_hello(in);
        const auto before = s.state();
        if (s.resume(h, next_token(), now)) {
          MANA_FUZZ_CHECK(before == SessionState::ready || before == SessionState::detached);
          MANA_FUZZ_CHECK(s.state() == SessionState::ready);
          check.attach();
          greeted = false;
          MANA_FUZZ_CHECK(!drain().empty());  // at least hello_ok
        } else {
          MANA_FUZZ_CHECK(s.state() == before);
        }
        break;
      }
      default:  // a valid hello at any time
        feed_control_any(s, bootstrap,
                         R"({"t":"hello","proto":1,"caps":{"profile":"mana.v1","resume":true}})",
                         now);
        break;
    }
  }

  // Drains the output; S1: on each transport the first message is hello_ok
  // (plain JSON text) unless it is a close.
  std::vector<core::OutMessage> drain() {
    auto out = check.drain(s);
    if (!greeted && !out.empty() && out[0].type != core::MessageType::close) {
      MANA_FUZZ_CHECK(out[0].type == core::MessageType::text);
      auto m = core::parse_control(test::as_text(out[0]));
      MANA_FUZZ_CHECK(m && std::holds_alternative<core::HelloOk>(m.value()));
      greeted = true;
    }
    return out;
  }

  void after_step() {
    host();
    drain();
    check.check(s);
    host();  // events of the host's own actions (e.g. a reject)
    drain();
    check.check(s);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  Reader in(data, size);
  const std::uint8_t flags = in.u8();
  Harness h(flags);
  if ((flags & 0x04) == 0) {
    static const char* const profiles[] = {"mana.v1", "json-base64.v1", "lenpfx.v1", "mana.v1"};
    const std::string hello = std::string(R"({"t":"hello","proto":1,"caps":{"profile":")") +
                              profiles[flags & 3] +
                              R"(","maxFrame":16384,"bidi":true,"resume":true}})";
    test::feed_text(h.s, hello, h.now);
    h.after_step();
  }
  int steps = 0;
  while (auto rec = next_record(in)) {
    if (++steps > 256) break;
    h.step(*rec);
    h.after_step();
  }
  return 0;
}
