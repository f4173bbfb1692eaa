// SPDX-License-Identifier: Apache-2.0
#include "proxy_accept.hpp"

#include <array>
#include <memory>
#include <optional>

#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "client_address.hpp"

namespace mana::gateway {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;

class ProxyRead : public std::enable_shared_from_this<ProxyRead> {
 public:
  ProxyRead(asio::ip::tcp::socket sock, const asio::ip::address& peer, ProxyMode mode,
            ProxyAcceptDone done)
      : stream_(std::move(sock)), peer_(peer), reader_(mode), done_(std::move(done)) {}

  void start(std::chrono::steady_clock::time_point deadline) {
    stream_.expires_at(deadline);
    read();
  }

 private:
  void read() {
    stream_.async_read_some(asio::buffer(chunk_),
                            [self = shared_from_this()](const boost::system::error_code& ec,
                                                        std::size_t n) { self->on_read(ec, n); });
  }

  void on_read(const boost::system::error_code& ec, std::size_t n) {
    ProxyAcceptResult r;
    if (ec) {
      r.reject = ec == beast::error::timeout ? "proxy_timeout" : "proxy_closed";
      return finish(std::move(r));
    }
    const auto st = reader_.feed(std::string_view(chunk_.data(), n));
    if (st == ProxyHeaderReader::Status::need_more) return read();
    if (st == ProxyHeaderReader::Status::error) {
      r.reject = "proxy_header";
      r.error = reader_.error();
      return finish(std::move(r));
    }
    const ProxyHeader& h = reader_.header();
    r.version = h.version;
    r.client = h.source ? normalise_address(h.source->address()) : peer_;
    r.leftover = std::string(reader_.leftover());
    finish(std::move(r));
  }

  void finish(ProxyAcceptResult r) {
    stream_.expires_never();
    done_(stream_.release_socket(), std::move(r));
  }

  beast::tcp_stream stream_;
  asio::ip::address peer_;
  ProxyHeaderReader reader_;
  ProxyAcceptDone done_;
  std::array<char, 512> chunk_{};
};

}  // namespace

void read_proxy_header(asio::ip::tcp::socket sock, const asio::ip::address& peer, ProxyMode mode,
                       std::chrono::steady_clock::time_point deadline, ProxyAcceptDone done) {
  std::make_shared<ProxyRead>(std::move(sock), peer, mode, std::move(done))->start(deadline);
}

}  // namespace mana::gateway
