// mana-sim: a ClientSession and a ServerSession over a simulated link driven
// by a seed. Both directions stream data on several channels (stdout and
// stderr downstream, stdin upstream) while the link is cut at random byte
// offsets (mid-frame included) and the client resumes.
//
// Checked per run: every stream's bytes arrive exactly once and in order
// (byte-by-byte against the generator, and SHA-256 of sent vs received),
// no sender ever exceeds its credit, receive windows hold
// (consumed <= received <= limit), replay buffers stay within the window, and
// the run completes (no stall, no unexpected final close).
//
// --churn: many cuts per second instead of at most 3 per run. Every transport
// carries a budget of 2..24 KiB counted in both directions (the fault proxy of
// the churn soak), so cuts fall around hello, open / open_ok, the first data
// and the first grant; each side writes all its credit at once (the gateway's
// first target read: banner and data filling the window), shared payloads on.
// Without R1 (core/src/session_data.cpp) a window-sized message never fits in
// a transport and the run stalls.
//
// Usage: mana-sim [--runs N] [--seed S] [--churn] [--verbose]
// Prints: runs=<n> drops=<n> bytes=<n> lost=<n> duplicated=<n> violations=<n>
// Exit status 0 only if lost, duplicated and violations are all 0.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "mana/core/client_session.hpp"
#include "mana/core/server_session.hpp"
#include "sim_tracks.hpp"
#include "support/sim_link.hpp"

namespace {

using namespace mana::core;  // NOLINT(google-build-using-namespace)
using mana::sim::ChannelPlan;
using mana::sim::SimLink;
using mana::sim::splitmix;
using mana::sim::StreamTrack;

struct Conn {
  std::unique_ptr<SimLink> link;
  ServerSession* server = nullptr;  // endpoint bound to the server side of this link
  bool client_noticed = false;
  bool server_noticed = false;
  Timestamp client_notice_at;
  std::optional<Timestamp> server_notice_at;  // nullopt: the server never notices by itself
};

struct Totals {
  std::uint64_t runs = 0, drops = 0, bytes = 0, lost = 0, duplicated = 0, violations = 0;
  std::uint64_t mid_frame = 0, resumes = 0;
};

class Run {
 public:
  Run(std::uint64_t seed, bool verbose, bool churn)
      : seed_(seed), rng_(seed), verbose_(verbose), churn_(churn) {}

  void execute(Totals& totals) {
    setup();
    bool done = false;
    const Timestamp limit = Timestamp::from_ms(churn_ ? 120000 : 600000);
    while (now_ < limit) {
      step();
      if (finished_) {
        done = true;
        break;
      }
      if (violations_ > 0 && !verbose_) break;
      advance();
    }
    if (!done) violation("run did not complete (stall)");
    account(totals);
  }

 private:
  // ---- setup -------------------------------------------------------------------

  void setup() {
    ClientConfig cc;
    cc.profile = pick_profile();
    cc.heartbeat = Duration::from_s(2);
    cc.handshake_timeout = Duration::from_s(2);
    cc.auth = Auth{Auth::Scheme::bearer, "sim-token"};
    client_ = std::make_unique<ClientSession>(cc, now_);
    client_->set_shared_payloads(churn_);
    channel_count_ = 1 + static_cast<int>(rng_() % 3);
    for (int i = 0; i < channel_count_; ++i) {
      auto p = std::make_unique<ChannelPlan>();
      p->up = make_track(i, 0);
      p->down_out = make_track(i, 1);
      p->down_err = make_track(i, 2);
      plans_.push_back(std::move(p));
    }
    max_drops_ = static_cast<int>(rng_() % 4);
    new_connection();
  }

  std::string pick_profile() {
    switch (rng_() % 3) {
      case 0:
        return "mana.v1";
      case 1:
        return "json-base64.v1";
      default:
        return "lenpfx.v1";
    }
  }

  std::unique_ptr<StreamTrack> make_track(int ch, int kind) {
    auto t = std::make_unique<StreamTrack>();
    t->key = splitmix(seed_ * 1315423911ULL + static_cast<std::uint64_t>(ch) * 97 +
                      static_cast<std::uint64_t>(kind));
    // Mostly a few hundred KiB; sometimes tiny or empty streams.
    const std::uint64_t r = rng_() % 100;
    if (kind == 2 && r < 30) {
      t->total = 0;
    } else if (r < 10) {
      t->total = rng_() % 64;
    } else {
      t->total = 1024 + rng_() % (kind == 0 ? 300000 : 600000);
    }
    planned_bytes_ += t->total;
    return t;
  }

  ServerConfig server_config() {
    ServerConfig sc;
    sc.heartbeat = Duration::from_s(2);
    sc.handshake_timeout = Duration::from_s(2);
    sc.idle_timeout = Duration::from_s(30);
    sc.resume_ttl = Duration::from_s(60);
    sc.control_rate = 100000;
    sc.control_burst = 100000;
    return sc;
  }

  void new_connection() {
    auto c = std::make_unique<Conn>();
    std::optional<std::uint64_t> cut[2];
    if (drops_ < max_drops_ && rng_() % 100 < 80) {
      const int dir = static_cast<int>(rng_() % 2);
      const std::uint64_t span = dir == 0 ? 400000 : 900000;
      cut[dir] = rng_() % span;
      ++drops_;
    }
    const Duration latency = Duration::from_us(static_cast<std::int64_t>(200 + rng_() % 5000));
    c->link = std::make_unique<SimLink>(latency, cut[0], cut[1]);
    if (churn_) c->link->set_budget(2048 + rng_() % (22 * 1024));
    handshakes_.push_back(std::make_unique<ServerSession>(server_config(), now_));
    c->server = handshakes_.back().get();
    conns_.push_back(std::move(c));
    client_conn_ = conns_.back().get();
    if (auto r = client_->transport_open(now_); !r) violation("transport_open failed");
  }

  // ---- one tick ------------------------------------------------------------------

  void step() {
    flush_all();
    deliver();
    process_events();
    app_actions();
    flush_all();
    timers();
    notice_deaths();
    maybe_reconnect();
    check_invariants();
    if (closing_ && client_->state() == SessionState::closed && main_ != nullptr &&
        main_->state() == SessionState::closed) {
      finished_ = true;
    }
  }

  void advance() {
    // Jump to the next thing that can happen, at most 1 ms ahead.
    Timestamp next = now_ + Duration::from_ms(1);
    for (auto& c : conns_)
      if (auto t = c->link->next_due(); t && *t<next&& * t> now_) next = *t;
    now_ = next;
  }

  void flush_session(SessionCore& s, Conn* c, int dir) {
    while (auto m = s.poll_output()) {
      if (c == nullptr) continue;
      c->link->send(dir, std::move(*m), now_);
    }
  }

  Conn* conn_of(const ServerSession* s) {
    for (auto& c : conns_)
      if (c->server == s) return c.get();
    return nullptr;
  }

  void flush_all() {
    flush_session(*client_, client_conn_, 0);
    for (auto& h : handshakes_)
      flush_session(*h, conn_of(h.get()), 1);
    if (main_ != nullptr) flush_session(*main_, conn_of(main_), 1);
  }

  // The message as the WebSocket carries it: header and shared payload parts.
  static Bytes wire_bytes(const OutMessage& m) {
    Bytes b = m.data;
    for (const PayloadPart& p : m.parts)
      b.insert(b.end(), p.bytes.begin(), p.bytes.end());
    return b;
  }

  void deliver() {
    for (auto& c : conns_) {
      if (c->server != nullptr) {
        while (auto m = c->link->receive(0, now_)) {
          if (m->type == MessageType::close) {
            c->server->receive_close(static_cast<std::uint16_t>(m->close_code), m->close_reason,
                                     now_);
            c->server = nullptr;
            break;
          }
          c->server->receive(m->type, wire_bytes(*m), now_);
        }
      }
      if (c.get() == client_conn_) {
        while (auto m = c->link->receive(1, now_)) {
          if (m->type == MessageType::close) {
            client_->receive_close(static_cast<std::uint16_t>(m->close_code), m->close_reason,
                                   now_);
            client_conn_ = nullptr;
            break;
          }
          client_->receive(m->type, wire_bytes(*m), now_);
        }
      }
    }
  }

  ChannelPlan* plan(ChannelId id) {
    for (auto& p : plans_)
      if (p->id == id) return p.get();
    return nullptr;
  }

  void process_events() {
    while (auto e = client_->poll_event())
      on_client_event(*e);
    for (std::size_t i = 0; i < handshakes_.size(); ++i) {
      ServerSession* h = handshakes_[i].get();
      while (auto e = h->poll_event())
        on_handshake_event(h, *e);
    }
    if (main_ != nullptr)
      while (auto e = main_->poll_event())
        on_server_event(*e);
    // Handshake sessions that were merged into main or closed are discarded.
    for (auto it = handshakes_.begin(); it != handshakes_.end();) {
      ServerSession* h = it->get();
      const bool bound = conn_of(h) != nullptr;
      if (h != main_ && (!bound || h->state() == SessionState::closed) && !h->has_output()) {
        for (auto& c : conns_)
          if (c->server == h) c->server = nullptr;
        it = handshakes_.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::string new_token() {
    static const char* const alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string t;
    for (int i = 0; i < 22; ++i)
      t += alphabet[rng_() % 64];
    return t;
  }

  void on_handshake_event(ServerSession* h, const Event& e) {
    if (verbose_)
      std::fprintf(stderr, "  %llu ms handshake %p event %zu\n",
                   static_cast<unsigned long long>(now_.ns / 1000000), static_cast<void*>(h),
                   e.index());
    if (std::get_if<event::HelloReceived>(&e) != nullptr) {
      if (main_ != nullptr) {
        violation("second fresh hello");
        h->reject(Errc::policy_denied, "one session per sim", now_);
        return;
      }
      (void)h->accept(AcceptParams{new_token()}, now_);
      // Promote: the handshake session becomes the main session.
      for (auto it = handshakes_.begin(); it != handshakes_.end(); ++it) {
        if (it->get() == h) {
          main_owner_ = std::move(*it);
          handshakes_.erase(it);
          break;
        }
      }
      main_ = main_owner_.get();
      main_->set_shared_payloads(churn_);
      while (auto ev = main_->poll_event())
        on_server_event(*ev);
      return;
    }
    if (const auto* rr = std::get_if<event::ResumeRequested>(&e)) {
      const bool known = main_ != nullptr && rr->hello.resume &&
                         main_->matches_token(rr->hello.resume->token) &&
                         main_->state() != SessionState::closed;
      if (!known) {
        if (verbose_)
          std::fprintf(stderr, "  resume unknown: main=%p state=%d token=%s want=%s\n",
                       static_cast<void*>(main_),
                       main_ != nullptr ? static_cast<int>(main_->state()) : -1,
                       main_ != nullptr ? main_->resume_token().c_str() : "",
                       rr->hello.resume ? rr->hello.resume->token.c_str() : "");
        h->reject(Errc::resume_rejected, "resume rejected", now_);
        return;
      }
      Conn* old = conn_of(main_);
      Conn* fresh = conn_of(h);
      auto r = main_->resume(rr->hello, new_token(), now_);
      if (!r) {
        violation("resume() failed: " + r.error().detail);
        h->reject(Errc::resume_rejected, "resume rejected", now_);
        return;
      }
      ++resumes_;
      if (old != nullptr && old != fresh) {
        old->server = nullptr;  // superseded: the host closes the old transport
        old->link->kill(now_);
      }
      if (fresh != nullptr) fresh->server = main_;
      return;
    }
    if (const auto* c = std::get_if<event::Closed>(&e)) {
      if (!c->resumable && c->code != CloseCode::normal)
        violation("handshake session closed with " + std::to_string(static_cast<int>(c->code)) +
                  " " + c->reason);
    }
  }

  void on_client_event(const Event& e) {
    if (verbose_) {
      if (const auto* sc = std::get_if<event::StateChanged>(&e))
        std::fprintf(stderr, "  %llu ms client %s -> %s\n",
                     static_cast<unsigned long long>(now_.ns / 1000000),
                     std::string(to_string(sc->from)).c_str(),
                     std::string(to_string(sc->to)).c_str());
      if (const auto* cl = std::get_if<event::Closed>(&e))
        std::fprintf(stderr, "  %llu ms client closed %d %s resumable=%d\n",
                     static_cast<unsigned long long>(now_.ns / 1000000), static_cast<int>(cl->code),
                     cl->reason.c_str(), cl->resumable ? 1 : 0);
    }
    if (std::get_if<event::Ready>(&e) != nullptr) {
      if (!opened_all_) {
        opened_all_ = true;
        for (auto& p : plans_) {
          OpenParams op;
          op.target = Target{"sim.target", 22};
          auto id = client_->open_channel(op, now_);
          if (!id) {
            violation("open_channel failed");
            continue;
          }
          p->id = *id;
        }
      }
      return;
    }
    if (const auto* o = std::get_if<event::ChannelOpened>(&e)) {
      if (auto* p = plan(o->id)) p->opened = true;
      return;
    }
    if (const auto* f = std::get_if<event::ChannelOpenFailed>(&e)) {
      violation("open failed: " + f->code);
      return;
    }
    if (const auto* d = std::get_if<event::ChannelData>(&e)) {
      auto* p = plan(d->id);
      if (p == nullptr) return violation("data for unknown plan");
      (d->stream == Stream::out ? p->down_out : p->down_err)->on_receive(d->data);
      p->client_unconsumed += d->data.size();
      return;
    }
    if (const auto* c = std::get_if<event::ChannelClosed>(&e)) {
      auto* p = plan(c->id);
      if (p == nullptr) return;
      if (!p->close_sent) violation("client channel closed unexpectedly: " + c->reason);
      p->client_freed = true;
      return;
    }
    if (const auto* c = std::get_if<event::Closed>(&e)) {
      if (c->resumable) {
        reconnect_at_ = now_ + Duration::from_us(static_cast<std::int64_t>(rng_() % 50000));
        return;
      }
      if (!(closing_ && c->code == CloseCode::normal))
        violation("client closed with " + std::to_string(static_cast<int>(c->code)) + " " +
                  c->reason);
      return;
    }
  }

  void on_server_event(const Event& e) {
    if (const auto* o = std::get_if<event::OpenRequested>(&e)) {
      if (auto r = main_->accept_open(o->open.id, std::nullopt, now_); !r)
        violation("accept_open failed");
      if (auto* p = plan(o->open.id)) p->server_accepted = true;
      return;
    }
    if (const auto* d = std::get_if<event::ChannelData>(&e)) {
      auto* p = plan(d->id);
      if (p == nullptr) return violation("server data for unknown plan");
      p->up->on_receive(d->data);
      p->server_unconsumed += d->data.size();
      return;
    }
    if (const auto* c = std::get_if<event::ChannelClosed>(&e)) {
      auto* p = plan(c->id);
      if (p == nullptr) return;
      if (!p->close_sent) {
        // A channel the client had not acknowledged when the link died is
        // freed by resume and re-opened by the client: not a loss.
        if (c->reason != "resume: unknown to peer" || p->opened)
          violation("server channel closed unexpectedly: " + c->reason);
        // What the server wrote on that incarnation never reached the client
        // (it had no open_ok); the re-opened channel starts from zero.
        if (p->down_out->received != 0 || p->down_err->received != 0)
          violation("client received data on a channel it never acknowledged");
        for (StreamTrack* t : {p->down_out.get(), p->down_err.get()}) {
          t->written = 0;
          t->sent_hash.reset();
        }
        p->server_unconsumed = 0;
        p->server_accepted = false;
        return;
      }
      p->server_freed = true;
      return;
    }
    if (const auto* c = std::get_if<event::Closed>(&e)) {
      if (c->resumable) return;
      if (!(closing_ && c->code == CloseCode::normal))
        violation("server closed with " + std::to_string(static_cast<int>(c->code)) + " " +
                  c->reason);
      return;
    }
  }

  // ---- application behaviour ---------------------------------------------------------

  void write_stream(SessionCore& s, ChannelId id, Stream stream, StreamTrack& t) {
    if (t.written >= t.total) return;
    const std::uint64_t want =
        churn_ ? t.total - t.written
               : std::min<std::uint64_t>(t.total - t.written, 1 + rng_() % 40000);
    const std::uint64_t n = std::min<std::uint64_t>(want, s.available(id));
    if (n == 0) return;
    buf_.resize(n);
    t.fill(buf_.data(), n, t.written);
    auto r = s.write(id, stream, buf_, now_);
    if (!r) return violation("write failed: " + r.error().detail);
    if (*r != n) violation("write accepted less than available()");
    t.sent_hash.update(buf_.data(), *r);
    t.written += *r;
  }

  void consume_some(SessionCore& s, ChannelId id, std::uint64_t& unconsumed) {
    if (unconsumed == 0) return;
    const std::uint64_t r = rng_() % 10;
    if (r < 2) return;  // slow reader this tick
    const std::uint64_t n = r < 6 ? unconsumed : 1 + rng_() % unconsumed;
    if (auto res = s.consume(id, n, now_); !res) return violation("consume failed");
    unconsumed -= n;
  }

  void app_actions() {
    if (rng_() % 200 == 0) client_->set_paused(PauseReason::hidden, !client_->pause_bits(), now_);
    if (client_->pause_bits() != 0 && rng_() % 30 == 0)
      client_->set_paused(PauseReason::hidden, false, now_);
    if (main_ != nullptr && rng_() % 300 == 0)
      main_->set_paused(PauseReason::transport, main_->pause_bits() == 0, now_);
    if (main_ != nullptr && main_->pause_bits() != 0 && rng_() % 20 == 0)
      main_->set_paused(PauseReason::transport, false, now_);

    bool all_freed = opened_all_;
    for (auto& p : plans_) {
      if (p->id == 0) continue;
      if (client_->has_channel(p->id) && p->opened && !p->close_sent) {
        write_stream(*client_, p->id, Stream::out, *p->up);
        consume_some(*client_, p->id, p->client_unconsumed);
      }
      if (main_ != nullptr && main_->has_channel(p->id) && p->server_accepted && !p->close_sent) {
        if (rng_() % 2 == 0) {
          write_stream(*main_, p->id, Stream::out, *p->down_out);
          write_stream(*main_, p->id, Stream::err, *p->down_err);
        } else {
          write_stream(*main_, p->id, Stream::err, *p->down_err);
          write_stream(*main_, p->id, Stream::out, *p->down_out);
        }
        consume_some(*main_, p->id, p->server_unconsumed);
      }
      if (!p->close_sent && p->complete() && client_->state() == SessionState::ready) {
        p->close_sent = true;
        if (auto r = client_->close_channel(p->id, "done", now_); !r)
          violation("close_channel failed");
      }
      if (!(p->client_freed && p->server_freed)) all_freed = false;
    }
    if (all_freed && !closing_ && client_->state() == SessionState::ready && main_ != nullptr &&
        main_->state() == SessionState::ready) {
      closing_ = true;
      client_->close(CloseCode::normal, "done", now_);
    }
  }

  void timers() {
    auto fire = [&](SessionCore& s) {
      if (auto t = s.next_timeout(); t && *t <= now_) s.handle_timeout(now_);
    };
    fire(*client_);
    for (auto& h : handshakes_)
      fire(*h);
    if (main_ != nullptr) fire(*main_);
  }

  void notice_deaths() {
    for (auto& c : conns_) {
      if (!c->link->dead()) continue;
      if (!c->client_noticed && c.get() == client_conn_) {
        if (c->client_notice_at.ns == 0) {
          c->client_notice_at =
              *c->link->died_at() + Duration::from_us(static_cast<std::int64_t>(rng_() % 30000));
          c->server_notice_at =
              rng_() % 3 == 0 ? std::nullopt
                              : std::optional<Timestamp>(
                                    *c->link->died_at() +
                                    Duration::from_us(static_cast<std::int64_t>(rng_() % 60000)));
        }
        if (now_ >= c->client_notice_at) {
          c->client_noticed = true;
          client_conn_ = nullptr;
          client_->transport_lost(now_);
        }
      }
      if (!c->server_noticed && c->server != nullptr && c->server_notice_at &&
          now_ >= *c->server_notice_at) {
        c->server_noticed = true;
        ServerSession* s = c->server;
        c->server = nullptr;
        s->transport_lost(now_);
      }
    }
  }

  void maybe_reconnect() {
    process_events();  // schedules reconnect_at_ for a loss noticed this tick
    if (client_->state() != SessionState::reconnecting || now_ < reconnect_at_) return;
    flush_all();  // a close frame the client queued still goes out on the old link
    new_connection();
  }

  void check_invariants() {
    auto check = [&](const SessionCore& s, const char* who) {
      for (auto& p : plans_) {
        if (p->id == 0) continue;
        auto st = s.channel_stats(p->id);
        if (!st) continue;
        if (st->sent > st->send_limit && st->send_limit != 0)
          violation(std::string(who) + ": sent beyond credit");
        if (st->consumed > st->received || st->received > st->recv_limit)
          violation(std::string(who) + ": receive window broken");
        if (s.replay_bytes(p->id) > 2 * 1024 * 1024)
          violation(std::string(who) + ": replay buffer above window");
      }
    };
    check(*client_, "client");
    if (main_ != nullptr) check(*main_, "server");
  }

  void violation(const std::string& what) {
    ++violations_;
    if (verbose_ || violations_ == 1)
      std::fprintf(stderr, "seed %llu: violation at %llu ms: %s\n",
                   static_cast<unsigned long long>(seed_),
                   static_cast<unsigned long long>(now_.ns / 1000000), what.c_str());
  }

  void account(Totals& t) {
    ++t.runs;
    t.resumes += resumes_;
    for (auto& c : conns_) {
      if (!c->link->cut_hit()) continue;
      ++t.drops;
      if (c->link->cut_mid_message()) ++t.mid_frame;
    }
    for (auto& p : plans_) {
      for (StreamTrack* s : {p->up.get(), p->down_out.get(), p->down_err.get()}) {
        if (verbose_)
          std::fprintf(stderr,
                       "  ch %u stream total=%llu written=%llu received=%llu mismatched=%llu "
                       "first=%llu excess=%llu\n",
                       p->id, static_cast<unsigned long long>(s->total),
                       static_cast<unsigned long long>(s->written),
                       static_cast<unsigned long long>(s->received),
                       static_cast<unsigned long long>(s->mismatched),
                       static_cast<unsigned long long>(s->first_mismatch),
                       static_cast<unsigned long long>(s->excess));
        t.bytes += s->received;
        t.lost += s->total - std::min(s->total, s->received);
        t.duplicated += s->excess + s->mismatched;
        if (s->sent_hash.hex() != s->recv_hash.hex()) ++violations_;
      }
    }
    t.violations += violations_;
  }

  std::uint64_t seed_;
  std::mt19937_64 rng_;
  bool verbose_;
  bool churn_;
  Timestamp now_{1000000};
  std::unique_ptr<ClientSession> client_;
  std::unique_ptr<ServerSession> main_owner_;
  ServerSession* main_ = nullptr;
  std::vector<std::unique_ptr<ServerSession>> handshakes_;
  std::vector<std::unique_ptr<Conn>> conns_;
  Conn* client_conn_ = nullptr;
  std::vector<std::unique_ptr<ChannelPlan>> plans_;
  Bytes buf_;
  Timestamp reconnect_at_;
  std::uint64_t planned_bytes_ = 0;
  int channel_count_ = 0;
  int max_drops_ = 0;
  int drops_ = 0;
  std::uint64_t resumes_ = 0;
  std::uint64_t violations_ = 0;
  bool opened_all_ = false;
  bool closing_ = false;
  bool finished_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t runs = 100;
  std::uint64_t seed = 1;
  bool verbose = false;
  bool churn = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--verbose") {
      verbose = true;
    } else if (a == "--churn") {
      churn = true;
    } else {
      std::fprintf(stderr, "usage: mana-sim [--runs N] [--seed S] [--churn] [--verbose]\n");
      return 2;
    }
  }
  Totals t;
  for (std::uint64_t i = 0; i < runs; ++i) {
    Run r(seed + i, verbose, churn);
    r.execute(t);
  }
  std::printf("runs=%llu drops=%llu bytes=%llu lost=%llu duplicated=%llu violations=%llu\n",
              static_cast<unsigned long long>(t.runs), static_cast<unsigned long long>(t.drops),
              static_cast<unsigned long long>(t.bytes), static_cast<unsigned long long>(t.lost),
              static_cast<unsigned long long>(t.duplicated),
              static_cast<unsigned long long>(t.violations));
  std::fprintf(stderr, "detail: resumes=%llu mid_frame_cuts=%llu\n",
               static_cast<unsigned long long>(t.resumes),
               static_cast<unsigned long long>(t.mid_frame));
  return (t.lost == 0 && t.duplicated == 0 && t.violations == 0) ? 0 : 1;
}
