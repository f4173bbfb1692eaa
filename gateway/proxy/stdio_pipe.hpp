// SPDX-License-Identifier: Apache-2.0
// mana-proxy's stdio side: stdin read in chunks no larger than the caller allows (the channel's
// send credit, proxy.hpp invariant P2), stdout written from a queue, one write in flight; what
// happened is reported to a StdioSink. Internal to mana_proxy_lib.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/beast/core/error.hpp>

#include "mana/core/types.hpp"

namespace mana::proxy {

class StdioSink {
 public:
  StdioSink() = default;
  virtual ~StdioSink() = default;
  StdioSink(const StdioSink&) = delete;
  StdioSink& operator=(const StdioSink&) = delete;
  // A read finished with `data` (valid during the call only).
  virtual void on_stdin_data(core::ByteView data) = 0;
  // A read failed (eof included); no further reads are made.
  virtual void on_stdin_end(const boost::beast::error_code& ec) = 0;
  // The front chunk of the stdout queue (`n` bytes) was written and removed.
  virtual void on_stdout_written(std::size_t n) = 0;
  // A stdout write failed: the queue is cleared and broken() is true from now on.
  virtual void on_stdout_failed(const boost::beast::error_code& ec) = 0;
};

class StdioPipe {
 public:
  StdioPipe(boost::asio::io_context& io, StdioSink& sink);

  // Takes duplicates of the process's stdin and stdout. Returns an error text, empty on success.
  std::string open();

  // ---- stdin
  [[nodiscard]] bool reading() const { return reading_; }
  [[nodiscard]] bool at_eof() const { return eof_; }
  // Starts one read of at most min(max, 64 KiB) bytes. Precondition: !reading() && !at_eof().
  void read_some(std::uint64_t max);
  void close_input();

  // ---- stdout
  [[nodiscard]] bool output_empty() const { return outq_.empty(); }
  [[nodiscard]] bool broken() const { return broken_; }
  // Queues `bytes` and starts writing if no write is in flight.
  void write(core::Bytes&& bytes);
  // Starts writing the front of the queue if no write is in flight.
  void write_next();

 private:
  StdioSink& sink_;
  boost::asio::posix::stream_descriptor in_;
  boost::asio::posix::stream_descriptor out_;
  std::vector<std::uint8_t> inbuf_;
  bool reading_ = false;
  bool eof_ = false;
  std::deque<core::Bytes> outq_;
  bool writing_ = false;
  bool broken_ = false;
};

}  // namespace mana::proxy
