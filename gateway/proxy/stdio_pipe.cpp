// SPDX-License-Identifier: Apache-2.0
// mana-proxy's stdio side: see stdio_pipe.hpp.
#include "stdio_pipe.hpp"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>

namespace mana::proxy {

namespace beast = boost::beast;
namespace net = boost::asio;

namespace {

constexpr std::size_t stdin_chunk = 64 * 1024;

}  // namespace

StdioPipe::StdioPipe(net::io_context& io, StdioSink& sink) : sink_(sink), in_(io), out_(io) {
  inbuf_.resize(stdin_chunk);
}

std::string StdioPipe::open() {
  std::string error;
  beast::error_code ec;
  in_.assign(::dup(STDIN_FILENO), ec);
  if (ec) error = "cannot use stdin: " + ec.message();
  out_.assign(::dup(STDOUT_FILENO), ec);
  if (ec) error = "cannot use stdout: " + ec.message();
  return error;
}

void StdioPipe::read_some(std::uint64_t max) {
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(max, inbuf_.size()));
  reading_ = true;
  in_.async_read_some(net::buffer(inbuf_.data(), n),
                      [this](const beast::error_code& ec, std::size_t got) {
                        reading_ = false;
                        if (ec) {
                          eof_ = true;
                          sink_.on_stdin_end(ec);
                          return;
                        }
                        sink_.on_stdin_data(core::ByteView(inbuf_.data(), got));
                      });
}

void StdioPipe::close_input() {
  beast::error_code ignored;
  in_.close(ignored);
}

void StdioPipe::write(core::Bytes&& bytes) {
  outq_.push_back(std::move(bytes));
  write_next();
}

void StdioPipe::write_next() {
  if (writing_ || outq_.empty() || broken_) return;
  writing_ = true;
  net::async_write(out_, net::buffer(outq_.front()),
                   [this](const beast::error_code& ec, std::size_t n) {
                     writing_ = false;
                     if (ec) {
                       broken_ = true;
                       outq_.clear();
                       sink_.on_stdout_failed(ec);
                       return;
                     }
                     outq_.pop_front();
                     sink_.on_stdout_written(n);
                   });
}

}  // namespace mana::proxy
