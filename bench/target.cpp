// `mana-bench target`: the TCP peer behind every relay (sink, source or echo).
//
// Every connection first gets the banner line (bench::banner_line). Reads use one shared buffer
// (wait for readability, then non-blocking reads until the socket is empty), so 10 000 idle
// connections cost a socket and a small object each.
#include "target.hpp"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "bench_util.hpp"
#include "stream_data.hpp"

namespace mana::bench {

namespace net = boost::asio;
using net::ip::tcp;

namespace {

enum class Mode : std::uint8_t { sink, source, echo };

struct TargetConfig {
  Mode mode = Mode::sink;
  std::uint64_t bytes = 0;
  std::size_t chunk = 64 * 1024;
  std::uint64_t exit_after = 0;  // 0: run until a signal
};

constexpr std::size_t shared_read_size = 1 << 20;
constexpr int reads_per_wakeup = 16;

class TargetServer;

class TargetConn : public std::enable_shared_from_this<TargetConn> {
 public:
  TargetConn(TargetServer& server, tcp::socket socket, std::uint64_t id);
  void start();

 private:
  void write_banner();
  void wait_read();
  void on_readable();
  void on_data(const std::uint8_t* p, std::size_t n);
  void on_peer_eof();
  void write_source();
  void flush_echo();
  void finish(const char* end);

  TargetServer& server_;
  tcp::socket socket_;
  const std::uint64_t id_;
  StreamHasher hash_in_;
  std::uint64_t bytes_out_ = 0;
  std::vector<std::uint8_t> echo_pending_;
  bool echo_writing_ = false;
  bool peer_eof_ = false;
  bool done_ = false;
};

class TargetServer {
 public:
  TargetServer(net::io_context& io, const TargetConfig& cfg) : io_(io), cfg_(cfg), acceptor_(io) {
    shared_buf_.resize(shared_read_size);
  }

  int run(const HostPort& listen) {
    boost::system::error_code ec;
    const auto addr = net::ip::make_address(listen.host, ec);
    if (ec) {
      std::fprintf(stderr, "mana-bench target: --listen needs an IP address: %s\n",
                   listen.host.c_str());
      return 2;
    }
    const tcp::endpoint ep(addr, listen.port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(4096, ec);
    if (ec) {
      std::fprintf(stderr, "mana-bench target: cannot listen on %s:%u: %s\n", listen.host.c_str(),
                   static_cast<unsigned>(listen.port), ec.message().c_str());
      return 1;
    }
    print_line("PORT " + std::to_string(acceptor_.local_endpoint().port()));
    net::signal_set signals(io_, SIGINT, SIGTERM);
    signals.async_wait([this](const boost::system::error_code& e, int) {
      if (!e) io_.stop();
    });
    accept();
    io_.run();
    return 0;
  }

  [[nodiscard]] const TargetConfig& cfg() const noexcept { return cfg_; }
  std::vector<std::uint8_t>& shared_buf() noexcept { return shared_buf_; }

  void report(std::uint64_t id, const StreamHasher& in, std::uint64_t out, const char* end) {
    nlohmann::json j{{"conn", id},
                     {"mode", cfg_.mode == Mode::sink     ? "sink"
                              : cfg_.mode == Mode::source ? "source"
                                                          : "echo"},
                     {"bytes_in", in.bytes()},
                     {"hash_in", to_hex(in.digest())},
                     {"bytes_out", out},
                     {"end", end}};
    print_line(j.dump());
    ++finished_;
    if (cfg_.exit_after != 0 && finished_ >= cfg_.exit_after) io_.stop();
  }

 private:
  void accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket s) {
      if (ec) {
        if (ec == net::error::operation_aborted) return;
        // EMFILE and friends: report and keep accepting (the client sees a refused connection).
        std::fprintf(stderr, "mana-bench target: accept: %s\n", ec.message().c_str());
      } else {
        std::make_shared<TargetConn>(*this, std::move(s), ++accepted_)->start();
      }
      accept();
    });
  }

  net::io_context& io_;
  TargetConfig cfg_;
  tcp::acceptor acceptor_;
  std::vector<std::uint8_t> shared_buf_;
  std::uint64_t accepted_ = 0;
  std::uint64_t finished_ = 0;
};

TargetConn::TargetConn(TargetServer& server, tcp::socket socket, std::uint64_t id)
    : server_(server), socket_(std::move(socket)), id_(id) {}

void TargetConn::start() {
  boost::system::error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);
  socket_.non_blocking(true, ec);
  write_banner();
}

void TargetConn::write_banner() {
  net::async_write(socket_, net::buffer(banner_line.data(), banner_line.size()),
                   [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                     if (ec) return self->finish("error");
                     self->wait_read();
                     if (self->server_.cfg().mode == Mode::source) self->write_source();
                   });
}

void TargetConn::wait_read() {
  if (done_ || peer_eof_) return;
  socket_.async_wait(tcp::socket::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       if (self->done_) return;
                       if (ec) return self->finish("error");
                       self->on_readable();
                     });
}

void TargetConn::on_readable() {
  auto& buf = server_.shared_buf();
  for (int i = 0; i < reads_per_wakeup; ++i) {
    // Echo: no more reads while earlier bytes are still waiting to be written back.
    if (echo_writing_) return;
    boost::system::error_code ec;
    const std::size_t n = socket_.read_some(net::buffer(buf), ec);
    if (ec == net::error::would_block || ec == net::error::try_again) break;
    if (ec == net::error::eof) return on_peer_eof();
    if (ec) return finish(ec == net::error::connection_reset ? "reset" : "error");
    on_data(buf.data(), n);
    if (done_) return;
  }
  wait_read();
}

void TargetConn::on_data(const std::uint8_t* p, std::size_t n) {
  hash_in_.update(ByteView(p, n));
  if (server_.cfg().mode != Mode::echo) return;
  // Try to write back at once; keep what the socket does not take.
  boost::system::error_code ec;
  const std::size_t w = socket_.write_some(net::buffer(p, n), ec);
  if (ec && ec != net::error::would_block && ec != net::error::try_again)
    return finish(ec == net::error::connection_reset ? "reset" : "error");
  const std::size_t took = ec ? 0 : w;
  bytes_out_ += took;
  if (took < n) {
    echo_pending_.assign(p + took, p + n);
    flush_echo();
  }
}

void TargetConn::flush_echo() {
  echo_writing_ = true;
  net::async_write(socket_, net::buffer(echo_pending_),
                   [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                     self->echo_writing_ = false;
                     if (self->done_) return;
                     if (ec) return self->finish("error");
                     self->bytes_out_ += n;
                     self->echo_pending_.clear();
                     if (self->peer_eof_) return self->on_peer_eof();
                     self->wait_read();
                   });
}

void TargetConn::on_peer_eof() {
  peer_eof_ = true;
  if (echo_writing_) return;  // flush_echo() comes back here
  // source: the peer's EOF ends the connection, whether or not the stream was complete
  // (bytes_out tells).
  finish("eof");
}

void TargetConn::write_source() {
  const TargetConfig& cfg = server_.cfg();
  if (done_) return;
  if (bytes_out_ >= cfg.bytes) {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (peer_eof_) finish("eof");
    return;  // the read side reports when the peer closes
  }
  const std::uint64_t left = cfg.bytes - bytes_out_;
  const std::size_t len = left < cfg.chunk ? static_cast<std::size_t>(left) : cfg.chunk;
  const ByteView v = generator().view(bytes_out_, len);
  net::async_write(
      socket_, net::buffer(v.data(), v.size()),
      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
        if (self->done_) return;
        self->bytes_out_ += n;
        if (ec)
          return self->finish(ec == net::error::connection_reset || ec == net::error::broken_pipe
                                  ? "reset"
                                  : "error");
        self->write_source();
      });
}

void TargetConn::finish(const char* end) {
  if (done_) return;
  done_ = true;
  boost::system::error_code ec;
  socket_.close(ec);
  server_.report(id_, hash_in_, bytes_out_, end);
}

}  // namespace

int run_target(int argc, char** argv) {
  Args args(argc, argv, 2);
  const HostPort listen = parse_host_port(args.str("listen", "127.0.0.1:0"));
  TargetConfig cfg;
  const std::string mode = args.required("mode");
  if (mode == "sink") {
    cfg.mode = Mode::sink;
  } else if (mode == "source") {
    cfg.mode = Mode::source;
  } else if (mode == "echo") {
    cfg.mode = Mode::echo;
  } else {
    throw UsageError("--mode must be sink, source or echo");
  }
  cfg.bytes = args.u64("bytes", 0);
  cfg.chunk = static_cast<std::size_t>(args.u64("chunk", 64 * 1024));
  if (cfg.chunk == 0 || cfg.chunk > block_size) throw UsageError("--chunk must be 1..1048576");
  cfg.exit_after = args.u64("exit-after", 0);
  args.check_all_used();
  if (cfg.mode == Mode::source && cfg.bytes == 0) throw UsageError("--mode source needs --bytes");
  raise_fd_limit();
  (void)generator();
  net::io_context io(1);
  TargetServer server(io, cfg);
  return server.run(listen);
}

}  // namespace mana::bench
