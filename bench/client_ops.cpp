// The client ops of mana-bench (see client_ops.hpp and bench/README.md for the contract).
#include "client_ops.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "bench_util.hpp"
#include "client_streams.hpp"
#include "stream_data.hpp"

namespace mana::bench {

namespace net = boost::asio;
using net::ip::tcp;
using nlohmann::json;

namespace {

struct OpOptions {
  std::string op;
  std::uint64_t bytes = 64ULL * 1024 * 1024;
  std::size_t frame = 64 * 1024;
  std::uint64_t samples = 1000;
  std::uint64_t warmup = 50;
  std::uint64_t n = 1;
  std::uint64_t read_rate = 0;
  std::uint64_t duration_ms = 10000;
  std::uint64_t timeout_ms = 120000;
  std::uint64_t hold_ms = 3600000;
  std::uint64_t concurrency = 256;  // connections being set up at once (idle, streams, slow)
};

// The common frame of every op: the io_context, the deadline, the exit status, the teardown.
class OpBase : public StreamHandler {
 public:
  OpBase(net::io_context& io, ClientSetup& setup, const OpOptions& opt)
      : io_(io), setup_(setup), opt_(opt), connector_(io, setup), deadline_(io), grace_(io) {}

  int run() {
    deadline_.expires_after(std::chrono::milliseconds(opt_.timeout_ms));
    deadline_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || done_) return;
      fail("timeout after " + std::to_string(opt_.timeout_ms) + " ms (" + progress() + ")");
    });
    begin();
    io_.run();
    return exit_code_;
  }

 protected:
  virtual void begin() = 0;
  [[nodiscard]] virtual std::string progress() const = 0;

  std::shared_ptr<Stream> make_stream() {
    auto s = connector_.make(*this, streams_.size());
    streams_.push_back(s);
    return s;
  }

  // Prints the result and ends the run (status 0 if `ok`).
  void succeed(const json& result, bool ok = true) {
    if (done_) return;
    print_line(result.dump());
    if (!ok) std::fprintf(stderr, "mana-bench: %s: verification failed\n", opt_.op.c_str());
    finish_run(ok ? 0 : 1);
  }

  void fail(const std::string& why) {
    if (done_) return;
    std::fprintf(stderr, "mana-bench: %s: %s\n", opt_.op.c_str(), why.c_str());
    finish_run(1);
  }

  // Stops the event loop once every transport closed (bounded grace for close handshakes).
  void finish_run(int code) {
    done_ = true;
    exit_code_ = code;
    deadline_.cancel();
    for (auto& s : streams_)
      if (!s->ended()) s->close_now();
    grace_.expires_after(std::chrono::seconds(2));
    grace_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) io_.stop();
    });
    poll_teardown();
  }

  void poll_teardown() {
    if (Connector::live_transports() == 0) {
      io_.stop();
      return;
    }
    auto t = std::make_shared<net::steady_timer>(io_, std::chrono::milliseconds(5));
    t->async_wait([this, t](const boost::system::error_code& ec) {
      if (!ec) poll_teardown();
    });
  }

  void on_writable(Stream& s) override { (void)s; }
  // The set-up phase is over (idle: the hold has its own bound, --hold-ms).
  void cancel_deadline() { deadline_.cancel(); }

  net::io_context& io_;
  ClientSetup& setup_;
  const OpOptions& opt_;
  Connector connector_;
  std::vector<std::shared_ptr<Stream>> streams_;
  bool done_ = false;

 private:
  net::steady_timer deadline_;
  net::steady_timer grace_;
  int exit_code_ = 1;
};

double mbps(std::uint64_t bytes, double seconds) {
  return seconds > 0 ? static_cast<double>(bytes) / seconds / 1e6 : 0;
}

// ---- up ------------------------------------------------------------------------------------

class UpOp final : public OpBase {
 public:
  using OpBase::OpBase;

 private:
  void begin() override {
    expected_ = expected_digest(opt_.bytes);
    make_stream()->start();
  }
  [[nodiscard]] std::string progress() const override {
    return "sent " + std::to_string(sent_) + " of " + std::to_string(opt_.bytes) + " bytes";
  }
  void on_open(Stream& s) override {
    t0_ = Clock::now();
    push(s);
  }
  void on_writable(Stream& s) override { push(s); }
  void push(Stream& s) {
    while (sent_ < opt_.bytes && !s.ended()) {
      const std::uint64_t left = opt_.bytes - sent_;
      const std::size_t len = left < opt_.frame ? static_cast<std::size_t>(left) : opt_.frame;
      const std::size_t took = s.write(generator().view(sent_, len));
      if (took == 0) return;
      sent_ += took;
    }
    if (sent_ >= opt_.bytes && !finishing_) {
      finishing_ = true;
      s.finish();
    }
  }
  void on_data(Stream& s, ByteView data) override {
    (void)s;
    unexpected_ += data.size();
  }
  void on_end(Stream& s, EndKind end, const std::string& what) override {
    (void)s;
    const auto t1 = Clock::now();
    if (sent_ < opt_.bytes || end != EndKind::eof)
      return fail("stream ended (" + std::string(to_string(end)) + ": " + what + ") after " +
                  std::to_string(sent_) + " of " + std::to_string(opt_.bytes) + " bytes");
    const double secs = seconds_between(t0_, t1);
    succeed({{"op", "up"},
             {"proto", proto_name()},
             {"bytes", opt_.bytes},
             {"hash", to_hex(expected_)},
             {"seconds", secs},
             {"mbps", mbps(opt_.bytes, secs)},
             {"frame", opt_.frame},
             {"unexpected_bytes_in", unexpected_}});
  }
  [[nodiscard]] const char* proto_name() const {
    return setup_.proto == Proto::tcp ? "tcp" : setup_.proto == Proto::raw ? "raw" : "mana";
  }

  std::uint64_t expected_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t unexpected_ = 0;
  bool finishing_ = false;
  Clock::time_point t0_;
};

// ---- down / streams / resume -------------------------------------------------------------------

// Receives and verifies the generated stream on one or more streams.
class DownOp final : public OpBase {
 public:
  DownOp(net::io_context& io, ClientSetup& setup, const OpOptions& opt, bool resume)
      : OpBase(io, setup, opt), resume_(resume) {}

 private:
  struct Rx {
    StreamHasher hash;
    Clock::time_point first;
    Clock::time_point last;
    bool got_first = false;
    bool ended = false;
    EndKind end = EndKind::error;
    std::string why;
  };

  void begin() override {
    expected_ = expected_digest(opt_.bytes);
    rx_.resize(opt_.n);
    for (std::uint64_t i = 0; i < opt_.n; ++i)
      (void)make_stream();
    launch();
  }

  // Starts streams while fewer than --concurrency are being set up.
  void launch() {
    while (next_ < streams_.size() && next_ - opened_ < opt_.concurrency)
      streams_[next_++]->start();
  }

  [[nodiscard]] std::string progress() const override {
    std::uint64_t got = 0;
    std::uint64_t ended = 0;
    for (const auto& r : rx_) {
      got += r.hash.bytes();
      ended += r.ended ? 1 : 0;
    }
    return std::to_string(opened_) + " of " + std::to_string(opt_.n) + " streams open, " +
           std::to_string(ended) + " ended, " + std::to_string(got) + " bytes received";
  }

  void on_open(Stream& s) override {
    (void)s;
    ++opened_;
    launch();
  }

  void on_data(Stream& s, ByteView data) override {
    Rx& r = rx_[s.index()];
    if (!r.got_first) {
      r.got_first = true;
      r.first = Clock::now();
    }
    r.hash.update(data);
    if (resume_ && !dropped_ && r.hash.bytes() >= opt_.bytes / 2) {
      dropped_ = true;
      auto sp = streams_[s.index()];
      net::post(io_, [sp] { sp->force_drop(); });
    }
  }

  void on_end(Stream& s, EndKind end, const std::string& what) override {
    Rx& r = rx_[s.index()];
    r.last = Clock::now();
    r.ended = true;
    r.end = end;
    r.why = what;
    if (!s.opened()) return fail("stream " + std::to_string(s.index()) + ": " + what);
    if (end != EndKind::eof && r.hash.bytes() < opt_.bytes)
      return fail("stream " + std::to_string(s.index()) + " ended (" + to_string(end) + ": " +
                  what + ") after " + std::to_string(r.hash.bytes()) + " of " +
                  std::to_string(opt_.bytes) + " bytes");
    if (++ended_ < opt_.n) return;
    report();
  }

  void report() {
    bool ok = true;
    std::vector<double> rates;
    Clock::time_point first = rx_[0].first;
    Clock::time_point last = rx_[0].last;
    std::uint64_t total = 0;
    for (const auto& r : rx_) {
      const bool good = r.hash.bytes() == opt_.bytes && r.hash.digest() == expected_;
      ok = ok && good;
      first = std::min(first, r.first);
      last = std::max(last, r.last);
      total += r.hash.bytes();
      rates.push_back(mbps(r.hash.bytes(), seconds_between(r.first, r.last)));
    }
    const Rx& r0 = rx_[0];
    const double secs = seconds_between(first, last);
    if (opt_.op == "down") {
      // Byte-exact: every byte, nothing extra, then the stream ended. How it ended is reported
      // separately ("end"): websockify may drop the TCP connection instead of closing.
      const bool eof_after = r0.hash.bytes() == opt_.bytes;
      succeed({{"op", "down"},
               {"bytes", r0.hash.bytes()},
               {"expected_bytes", opt_.bytes},
               {"hash", to_hex(r0.hash.digest())},
               {"expected_hash", to_hex(expected_)},
               {"ok", ok && eof_after},
               {"seconds", secs},
               {"mbps", mbps(r0.hash.bytes(), secs)},
               {"eof_after_data", eof_after},
               {"end", to_string(r0.end)},
               {"end_detail", r0.why}},
              ok && eof_after);
    } else if (opt_.op == "resume") {
      const auto acc = streams_[0]->resume_accepted_us();
      const auto first_byte = streams_[0]->resume_first_byte_us();
      const bool resumed = acc.has_value() && first_byte.has_value();
      succeed({{"op", "resume"},
               {"bytes", r0.hash.bytes()},
               {"expected_bytes", opt_.bytes},
               {"hash", to_hex(r0.hash.digest())},
               {"ok", ok && resumed},
               {"resume_us", first_byte.value_or(-1)},
               {"resume_accepted_us", acc.value_or(-1)},
               {"seconds", secs}},
              ok && resumed);
    } else {
      succeed(
          {{"op", "streams"},
           {"n", opt_.n},
           {"bytes_each", opt_.bytes},
           {"bytes_total", total},
           {"seconds", secs},
           {"aggregate_mbps", mbps(total, secs)},
           {"per_stream_mbps", rates},
           {"jain", jain_index(rates)},
           {"connections", setup_.proto == Proto::mana
                               ? (opt_.n + setup_.channels_per_conn - 1) / setup_.channels_per_conn
                               : opt_.n},
           {"ok", ok}},
          ok);
    }
  }

  const bool resume_;
  bool dropped_ = false;
  std::uint64_t expected_ = 0;
  std::vector<Rx> rx_;
  std::size_t next_ = 0;
  std::uint64_t opened_ = 0;
  std::uint64_t ended_ = 0;
};

// ---- echo ----------------------------------------------------------------------------------

class EchoOp final : public OpBase {
 public:
  using OpBase::OpBase;

 private:
  void begin() override { make_stream()->start(); }
  [[nodiscard]] std::string progress() const override {
    return std::to_string(round_) + " of " + std::to_string(opt_.samples + opt_.warmup) +
           " round trips";
  }
  void on_open(Stream& s) override { send(s); }
  void send(Stream& s) {
    t0_ = Clock::now();
    // 0: the previous write has not completed yet; on_writable() sends this byte.
    pending_ = s.write(generator().view(round_, 1)) == 0;
  }
  void on_writable(Stream& s) override {
    if (pending_) pending_ = s.write(generator().view(round_, 1)) == 0;
  }
  void on_data(Stream& s, ByteView data) override {
    for (const std::uint8_t b : data) {
      if (b != generator().at(received_))
        return fail("echo returned a wrong byte at offset " + std::to_string(received_));
      ++received_;
    }
    if (received_ > round_ + 1) return fail("echo returned more bytes than sent");
    if (received_ < round_ + 1) return;
    const double us = micros_between(t0_, Clock::now());
    if (round_ >= opt_.warmup) samples_.push_back(us);
    ++round_;
    if (round_ < opt_.samples + opt_.warmup) return send(s);
    std::sort(samples_.begin(), samples_.end());
    succeed({{"op", "echo"},
             {"samples", samples_.size()},
             {"p50_us", percentile(samples_, 0.50)},
             {"p90_us", percentile(samples_, 0.90)},
             {"p99_us", percentile(samples_, 0.99)},
             {"min_us", samples_.empty() ? 0 : samples_.front()},
             {"max_us", samples_.empty() ? 0 : samples_.back()}});
  }
  void on_end(Stream& s, EndKind end, const std::string& what) override {
    (void)s;
    fail("stream ended (" + std::string(to_string(end)) + ": " + what + ")");
  }

  std::uint64_t round_ = 0;
  std::uint64_t received_ = 0;
  bool pending_ = false;
  Clock::time_point t0_;
  std::vector<double> samples_;
};

// ---- connect -------------------------------------------------------------------------------

class ConnectOp final : public OpBase {
 public:
  using OpBase::OpBase;

 private:
  void begin() override { next(); }
  [[nodiscard]] std::string progress() const override {
    return std::to_string(samples_.size()) + " of " + std::to_string(opt_.samples) + " samples";
  }
  void next() {
    if (samples_.size() >= opt_.samples) {
      std::sort(samples_.begin(), samples_.end());
      succeed({{"op", "connect"},
               {"samples", samples_.size()},
               {"p50_us", percentile(samples_, 0.50)},
               {"p90_us", percentile(samples_, 0.90)},
               {"p99_us", percentile(samples_, 0.99)},
               {"min_us", samples_.front()},
               {"max_us", samples_.back()}});
      return;
    }
    connector_.new_session();
    auto s = make_stream();
    t0_ = Clock::now();
    s->start();
  }
  void on_open(Stream& s) override {
    samples_.push_back(micros_between(t0_, Clock::now()));
    s.finish();
  }
  void on_data(Stream& s, ByteView data) override {
    (void)s;
    (void)data;
  }
  void on_end(Stream& s, EndKind end, const std::string& what) override {
    if (!s.opened())
      return fail("connection " + std::to_string(s.index()) + " failed (" + to_string(end) + ": " +
                  what + ")");
    net::post(io_, [this] { next(); });
  }

  Clock::time_point t0_;
  std::vector<double> samples_;
};

// ---- idle ----------------------------------------------------------------------------------

class IdleOp final : public OpBase {
 public:
  IdleOp(net::io_context& io, ClientSetup& setup, const OpOptions& opt)
      : OpBase(io, setup, opt), in_(io), hold_(io) {}

 private:
  void begin() override {
    for (std::uint64_t i = 0; i < opt_.n; ++i) {
      connector_.new_session();
      (void)make_stream();
    }
    launch();
  }
  void launch() {
    while (next_ < streams_.size() && next_ - opened_ < opt_.concurrency)
      streams_[next_++]->start();
  }
  [[nodiscard]] std::string progress() const override {
    return std::to_string(opened_) + " of " + std::to_string(opt_.n) + " sessions open";
  }
  void on_open(Stream& s) override {
    (void)s;
    ++opened_;
    if (opened_ == opt_.n) return ready();
    launch();
  }
  void ready() {
    cancel_deadline();
    print_line("READY " + std::to_string(opened_));
    boost::system::error_code ec;
    in_.assign(::dup(STDIN_FILENO), ec);
    if (ec) return fail("cannot watch stdin: " + ec.message());
    hold_.expires_after(std::chrono::milliseconds(opt_.hold_ms));
    hold_.async_wait([this](const boost::system::error_code& e) {
      if (!e) fail("stdin did not reach EOF within --hold-ms");
    });
    read_stdin();
  }
  void read_stdin() {
    in_.async_read_some(net::buffer(buf_),
                        [this](const boost::system::error_code& ec, std::size_t) {
                          if (done_) return;
                          if (!ec) return read_stdin();
                          hold_.cancel();
                          succeed({{"op", "idle"},
                                   {"n", opt_.n},
                                   {"opened", opened_},
                                   {"closed_early", closed_early_},
                                   {"source_ips", setup_.sources.size()}},
                                  closed_early_ == 0);
                        });
  }
  void on_data(Stream& s, ByteView data) override {
    (void)s;
    (void)data;
  }
  void on_end(Stream& s, EndKind end, const std::string& what) override {
    if (opened_ < opt_.n) {
      print_line(json{{"op", "idle"},
                      {"n", opt_.n},
                      {"opened", opened_},
                      {"failed_stream", s.index()},
                      {"error", std::string(to_string(end)) + ": " + what}}
                     .dump());
      return fail("session " + std::to_string(s.index()) + " ended before all were open (" +
                  to_string(end) + ": " + what + ")");
    }
    ++closed_early_;
  }

  net::posix::stream_descriptor in_;
  net::steady_timer hold_;
  std::array<char, 4096> buf_{};
  std::size_t next_ = 0;
  std::uint64_t opened_ = 0;
  std::uint64_t closed_early_ = 0;
};

// ---- slow ----------------------------------------------------------------------------------

class SlowOp final : public OpBase {
 public:
  SlowOp(net::io_context& io, ClientSetup& setup, const OpOptions& opt)
      : OpBase(io, setup, opt), tick_(io) {}

 private:
  static constexpr auto tick = std::chrono::milliseconds(10);

  void begin() override {
    read_.assign(opt_.n, 0);
    for (std::uint64_t i = 0; i < opt_.n; ++i) {
      // The banner line only: each stream then reads what the ticks allow.
      make_stream()->set_read_budget(banner_line.size());
    }
    next_ = 0;
    launch();
  }
  void launch() {
    while (next_ < streams_.size() && next_ - opened_ < opt_.concurrency)
      streams_[next_++]->start();
  }
  [[nodiscard]] std::string progress() const override {
    return std::to_string(opened_) + " of " + std::to_string(opt_.n) + " streams open";
  }
  void on_open(Stream& s) override {
    (void)s;
    ++opened_;
    if (opened_ == opt_.n) {
      start_ = Clock::now();
      last_ = start_;
      schedule();
    }
    launch();
  }
  void schedule() {
    tick_.expires_after(tick);
    tick_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || done_) return;
      const auto now = Clock::now();
      credit_ += static_cast<double>(opt_.read_rate) * seconds_between(last_, now);
      last_ = now;
      const auto whole = static_cast<std::uint64_t>(credit_);
      credit_ -= static_cast<double>(whole);
      if (whole > 0)
        for (auto& s : streams_)
          if (!s->ended()) s->add_read_budget(whole);
      if (now - start_ >= std::chrono::milliseconds(opt_.duration_ms)) return report(now);
      schedule();
    });
  }
  void report(Clock::time_point now) {
    std::uint64_t total = 0;
    std::uint64_t lo = UINT64_MAX;
    std::uint64_t hi = 0;
    for (auto b : read_) {
      total += b;
      lo = std::min(lo, b);
      hi = std::max(hi, b);
    }
    const double secs = seconds_between(start_, now);
    succeed({{"op", "slow"},
             {"n", opt_.n},
             {"read_rate", opt_.read_rate},
             {"duration_s", secs},
             {"bytes_read", total},
             {"bytes_read_min", lo},
             {"bytes_read_max", hi},
             {"expected_per_stream", static_cast<double>(opt_.read_rate) * secs},
             {"ended_early", ended_early_},
             {"ok", ended_early_ == 0}},
            ended_early_ == 0);
  }
  void on_data(Stream& s, ByteView data) override {
    if (!data.empty() && generator().at(read_[s.index()]) != data[0])
      return fail("stream " + std::to_string(s.index()) + " delivered wrong data");
    read_[s.index()] += data.size();
  }
  void on_end(Stream& s, EndKind end, const std::string& what) override {
    if (!s.opened())
      return fail("stream " + std::to_string(s.index()) + " failed (" + to_string(end) + ": " +
                  what + ")");
    ++ended_early_;
  }

  net::steady_timer tick_;
  std::vector<std::uint64_t> read_;
  std::size_t next_ = 0;
  std::uint64_t opened_ = 0;
  std::uint64_t ended_early_ = 0;
  double credit_ = 0;
  Clock::time_point start_;
  Clock::time_point last_;
};

std::string read_token(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw UsageError("cannot read --token-file " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string t = ss.str();
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' '))
    t.pop_back();
  return t;
}

tcp::endpoint resolve(net::io_context& io, const std::string& host, std::uint16_t port) {
  tcp::resolver r(io);
  boost::system::error_code ec;
  auto res = r.resolve(host, std::to_string(port), ec);
  if (ec || res.empty()) throw UsageError("cannot resolve " + host + ": " + ec.message());
  return res.begin()->endpoint();
}

}  // namespace

int run_client(int argc, char** argv) {
  Args args(argc, argv, 2);
  ClientSetup setup;
  const std::string proto = args.required("proto");
  const std::string connect = args.required("connect");
  OpOptions opt;
  opt.op = args.required("op");
  net::io_context io(1);
  if (proto == "tcp") {
    setup.proto = Proto::tcp;
    const HostPort hp = parse_host_port(connect);
    setup.endpoint = resolve(io, hp.host, hp.port);
  } else if (proto == "raw" || proto == "mana") {
    setup.proto = proto == "raw" ? Proto::raw : Proto::mana;
    setup.url = parse_ws_url(connect);
    setup.endpoint = resolve(io, setup.url.host, parse_host_port("h:" + setup.url.port).port);
  } else {
    throw UsageError("--proto must be tcp, raw or mana");
  }
  if (setup.proto == Proto::mana) {
    const HostPort t = parse_host_port(args.required("target"));
    setup.target = core::Target{t.host, t.port};
    if (args.has("token-file")) setup.token = read_token(args.str("token-file", ""));
    setup.profile = args.str("profile", "mana.v1");
    setup.window = args.u64("window", setup.window);
    setup.replay = args.u64("replay", setup.replay);
    setup.channels_per_conn = static_cast<std::size_t>(args.u64("channels-per-conn", 4));
    if (setup.channels_per_conn == 0) throw UsageError("--channels-per-conn must be >= 1");
  } else {
    (void)args.str("target", "");  // accepted for a uniform command line; the relay decides
  }
  setup.origin = args.str("origin", "");
  if (args.has("source-ips")) setup.sources = SourcePool(args.str("source-ips", ""));
  opt.timeout_ms = args.u64("timeout-ms", opt.timeout_ms);
  opt.concurrency = std::max<std::uint64_t>(1, args.u64("concurrency", opt.concurrency));

  std::unique_ptr<OpBase> op;
  if (opt.op == "up") {
    opt.bytes = args.u64("bytes", opt.bytes);
    opt.frame = static_cast<std::size_t>(args.u64("frame", opt.frame));
    if (opt.frame == 0 || opt.frame > block_size) throw UsageError("--frame must be 1..1048576");
    op = std::make_unique<UpOp>(io, setup, opt);
  } else if (opt.op == "down" || opt.op == "streams" || opt.op == "resume") {
    opt.bytes = args.u64("bytes", opt.bytes);
    opt.n = opt.op == "streams" ? args.u64("n", 100) : 1;
    if (opt.n == 0) throw UsageError("--n must be >= 1");
    if (opt.op == "resume" && setup.proto != Proto::mana)
      throw UsageError("--op resume needs --proto mana");
    op = std::make_unique<DownOp>(io, setup, opt, opt.op == "resume");
  } else if (opt.op == "echo") {
    opt.samples = args.u64("samples", 1000);
    opt.warmup = args.u64("warmup", 50);
    if (opt.samples == 0) throw UsageError("--samples must be >= 1");
    op = std::make_unique<EchoOp>(io, setup, opt);
  } else if (opt.op == "connect") {
    opt.samples = args.u64("samples", 50);
    if (opt.samples == 0) throw UsageError("--samples must be >= 1");
    setup.bulk = false;
    op = std::make_unique<ConnectOp>(io, setup, opt);
  } else if (opt.op == "idle") {
    opt.n = args.u64("n", 1000);
    opt.hold_ms = args.u64("hold-ms", opt.hold_ms);
    if (opt.n == 0) throw UsageError("--n must be >= 1");
    setup.bulk = false;
    setup.channels_per_conn = 1;
    op = std::make_unique<IdleOp>(io, setup, opt);
  } else if (opt.op == "slow") {
    opt.n = args.u64("n", 100);
    opt.bytes = args.u64("bytes", opt.bytes);  // the source's size; informative here
    opt.read_rate = args.u64("read-rate", 0);
    opt.duration_ms = args.u64("duration-ms", opt.duration_ms);
    if (opt.n == 0 || opt.read_rate == 0) throw UsageError("--op slow needs --n and --read-rate");
    setup.read_buffer = 64 * 1024;
    op = std::make_unique<SlowOp>(io, setup, opt);
  } else {
    throw UsageError("unknown --op " + opt.op);
  }
  args.check_all_used();
  raise_fd_limit();
  (void)generator();
  return op->run();
}

}  // namespace mana::bench
