// `mana-bench stdio --connect ws://HOST:PORT/PATH`: stdin/stdout <-> one binary WebSocket
// (an OpenSSH ProxyCommand through a plain relay). Big buffers, one read and one write in flight
// per direction; stdin EOF -> WebSocket close once every byte read from stdin is sent; the
// relay's close -> exit once every received byte is written to stdout.
#include "stdio_bridge.hpp"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "bench_util.hpp"

namespace mana::bench {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;
using net::ip::tcp;

namespace {

constexpr std::size_t buffer_size = 1 << 20;

class Bridge {
 public:
  Bridge(net::io_context& io, WsUrl url, std::string origin)
      : io_(io), url_(std::move(url)), origin_(std::move(origin)), ws_(io), in_(io), out_(io) {
    inbuf_.resize(buffer_size);
    outbuf_.resize(buffer_size);
  }

  int run() {
    boost::system::error_code ec;
    in_.assign(::dup(STDIN_FILENO), ec);
    if (!ec) out_.assign(::dup(STDOUT_FILENO), ec);
    if (ec) return fail("stdin/stdout must be pipes or sockets: " + ec.message());
    tcp::resolver r(io_);
    auto eps = r.resolve(url_.host, url_.port, ec);
    if (ec) return fail("cannot resolve " + url_.host + ": " + ec.message());
    net::connect(ws_.next_layer(), eps, ec);
    if (ec) return fail("cannot connect to " + url_.host_header() + ": " + ec.message());
    ws_.next_layer().set_option(tcp::no_delay(true), ec);
    ws_.set_option(websocket::stream_base::decorator([this](websocket::request_type& req) {
      req.set(http::field::sec_websocket_protocol, "binary");
      req.set(http::field::user_agent, "mana-bench");
      if (!origin_.empty()) req.set(http::field::origin, origin_);
    }));
    ws_.read_message_max(16 * 1024 * 1024);
    ws_.auto_fragment(false);
    ws_.binary(true);
    ws_.write_buffer_bytes(256 * 1024);
    websocket::response_type res;
    ws_.handshake(res, url_.host_header(), url_.path, ec);
    if (ec) return fail("WebSocket handshake failed: " + ec.message());
    const auto proto = res[http::field::sec_websocket_protocol];
    if (!proto.empty() && proto != "binary")
      return fail("relay selected subprotocol " + std::string(proto));
    read_stdin();
    read_ws();
    io_.run();
    if (!error_.empty()) std::fprintf(stderr, "mana-bench stdio: %s\n", error_.c_str());
    return error_.empty() ? 0 : 1;
  }

 private:
  int fail(const std::string& why) {
    std::fprintf(stderr, "mana-bench stdio: %s\n", why.c_str());
    return 1;
  }

  void stop(const std::string& why) {
    if (error_.empty() && !why.empty()) error_ = why;
    boost::system::error_code ec;
    ws_.next_layer().close(ec);
    in_.close(ec);
    out_.close(ec);
    io_.stop();
  }

  // stdin -> WebSocket: one read, then one message write.
  void read_stdin() {
    in_.async_read_some(
        net::buffer(inbuf_), [this](const boost::system::error_code& ec, std::size_t n) {
          if (ec) {
            if (ec != net::error::eof) return stop("stdin: " + ec.message());
            stdin_eof_ = true;
            return maybe_close();
          }
          ws_writing_ = true;
          ws_.async_write(net::buffer(inbuf_.data(), n), [this](const boost::system::error_code& e,
                                                                std::size_t) {
            ws_writing_ = false;
            if (e) return stop(ws_closed_ ? std::string() : "WebSocket write: " + e.message());
            read_stdin();
          });
        });
  }

  void maybe_close() {
    if (!stdin_eof_ || ws_writing_ || close_sent_ || ws_closed_) return;
    close_sent_ = true;
    ws_.async_close(websocket::close_code::normal, [this](const boost::system::error_code& ec) {
      ws_closed_ = true;
      if (ec && ec != websocket::error::closed) return stop("WebSocket close: " + ec.message());
      maybe_exit();
    });
  }

  // WebSocket -> stdout.
  void read_ws() {
    ws_.async_read_some(net::buffer(outbuf_),
                        [this](const boost::system::error_code& ec, std::size_t n) {
                          if (ec) {
                            if (ec == websocket::error::closed) {
                              ws_closed_ = true;
                              return maybe_exit();
                            }
                            if (close_sent_)
                              return;  // our close completes (or fails) in maybe_close()
                            return stop("WebSocket read: " + ec.message());
                          }
                          net::async_write(out_, net::buffer(outbuf_.data(), n),
                                           [this](const boost::system::error_code& e, std::size_t) {
                                             if (e) return stop("stdout: " + e.message());
                                             read_ws();
                                           });
                        });
  }

  void maybe_exit() {
    // Every received byte was written before the next read, so nothing is pending for stdout.
    stop({});
  }

  net::io_context& io_;
  WsUrl url_;
  std::string origin_;
  websocket::stream<tcp::socket> ws_;
  net::posix::stream_descriptor in_;
  net::posix::stream_descriptor out_;
  std::vector<std::uint8_t> inbuf_;
  std::vector<std::uint8_t> outbuf_;
  bool stdin_eof_ = false;
  bool ws_writing_ = false;
  bool close_sent_ = false;
  bool ws_closed_ = false;
  std::string error_;
};

}  // namespace

int run_stdio(int argc, char** argv) {
  Args args(argc, argv, 2);
  const WsUrl url = parse_ws_url(args.required("connect"));
  const std::string origin = args.str("origin", "");
  args.check_all_used();
  std::signal(SIGPIPE, SIG_IGN);
  net::io_context io(1);
  Bridge b(io, url, origin);
  return b.run();
}

}  // namespace mana::bench
