// Shared pieces of mana-bench: option parsing, addresses and URLs, clocks, limits, statistics.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/ip/address_v4.hpp>

#include "mana/host/ws_url.hpp"

namespace mana::bench {

// A usage error: printed with the subcommand's help, exit status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `--name value` options. Every option takes a value; an option the subcommand never asks for
// is an error (check_all_used()), so a typo does not silently change a measurement.
class Args {
 public:
  Args(int argc, char** argv, int first);
  [[nodiscard]] bool has(const std::string& name) const { return values_.count(name) != 0; }
  std::string str(const std::string& name, const std::string& def);
  std::string required(const std::string& name);
  std::uint64_t u64(const std::string& name, std::uint64_t def);
  double real(const std::string& name, double def);
  void check_all_used() const;

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> used_;
};

// "1k" = 1000, "1Ki" = 1024, also M/Mi/G/Gi.
std::uint64_t parse_size(const std::string& text);

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};
// "HOST:PORT", "[V6]:PORT", optionally prefixed "tcp://".
HostPort parse_host_port(const std::string& text);

using host::WsUrl;
// "ws://HOST[:PORT][/PATH]" through host::parse_ws_url; wss is refused (loopback benchmarks
// only). Throws UsageError.
WsUrl parse_ws_url(const std::string& text);

// Source addresses for outgoing connections, used round-robin ("A-B" IPv4 range or a comma list).
class SourcePool {
 public:
  SourcePool() = default;
  explicit SourcePool(const std::string& spec);
  [[nodiscard]] bool empty() const noexcept { return addrs_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return addrs_.size(); }
  boost::asio::ip::address_v4 next();

 private:
  std::vector<boost::asio::ip::address_v4> addrs_;
  std::size_t next_ = 0;
};

// Raises RLIMIT_NOFILE to the hard limit; returns the soft limit now in force.
std::uint64_t raise_fd_limit();

using Clock = std::chrono::steady_clock;
inline double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
inline double micros_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

// Nearest-rank percentile of sorted samples (p in [0, 1]); 0 when empty.
double percentile(const std::vector<double>& sorted, double p);
// Jain's fairness index (sum x)^2 / (n * sum x^2); 1 when empty or all zero.
double jain_index(const std::vector<double>& x);

// Writes one line to stdout and flushes it.
void print_line(const std::string& line);

}  // namespace mana::bench
