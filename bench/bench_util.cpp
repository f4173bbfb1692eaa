// Option parsing, addresses, limits and statistics for mana-bench (see bench_util.hpp).
#include "bench_util.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace mana::bench {

Args::Args(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    const std::string key = argv[i];
    if (key.rfind("--", 0) != 0 || key.size() < 3)
      throw UsageError("unexpected argument '" + key + "'");
    if (i + 1 >= argc) throw UsageError("option " + key + " needs a value");
    values_[key.substr(2)] = argv[++i];
  }
}

std::string Args::str(const std::string& name, const std::string& def) {
  used_.insert(name);
  auto it = values_.find(name);
  return it == values_.end() ? def : it->second;
}

std::string Args::required(const std::string& name) {
  used_.insert(name);
  auto it = values_.find(name);
  if (it == values_.end()) throw UsageError("missing --" + name);
  return it->second;
}

std::uint64_t Args::u64(const std::string& name, std::uint64_t def) {
  used_.insert(name);
  auto it = values_.find(name);
  if (it == values_.end()) return def;
  try {
    return parse_size(it->second);
  } catch (const UsageError& e) {
    throw UsageError("--" + name + ": " + e.what());
  }
}

double Args::real(const std::string& name, double def) {
  used_.insert(name);
  auto it = values_.find(name);
  if (it == values_.end()) return def;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  if (end == it->second.c_str() || *end != '\0' || !std::isfinite(v) || v < 0)
    throw UsageError("--" + name + ": not a non-negative number: " + it->second);
  return v;
}

void Args::check_all_used() const {
  for (const auto& [k, v] : values_)
    if (used_.count(k) == 0) throw UsageError("unknown option --" + k);
}

std::uint64_t parse_size(const std::string& text) {
  std::size_t pos = 0;
  std::uint64_t v = 0;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    const auto digit = static_cast<std::uint64_t>(text[pos] - '0');
    if (v > (UINT64_MAX - digit) / 10) throw UsageError("number too large: " + text);
    v = v * 10 + digit;
    ++pos;
  }
  if (pos == 0) throw UsageError("not a number: " + text);
  const std::string suffix = text.substr(pos);
  std::uint64_t mul = 1;
  if (suffix.empty()) {
    mul = 1;
  } else if (suffix == "k" || suffix == "K") {
    mul = 1000;
  } else if (suffix == "Ki") {
    mul = 1024;
  } else if (suffix == "M") {
    mul = 1000 * 1000;
  } else if (suffix == "Mi") {
    mul = 1024 * 1024;
  } else if (suffix == "G") {
    mul = 1000ULL * 1000 * 1000;
  } else if (suffix == "Gi") {
    mul = 1024ULL * 1024 * 1024;
  } else {
    throw UsageError("bad size suffix in " + text);
  }
  if (v > UINT64_MAX / mul) throw UsageError("number too large: " + text);
  return v * mul;
}

HostPort parse_host_port(const std::string& text_in) {
  std::string text = text_in;
  if (text.rfind("tcp://", 0) == 0) text = text.substr(6);
  HostPort hp;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      throw UsageError("bad address " + text_in);
    hp.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) throw UsageError("bad HOST:PORT " + text_in);
    hp.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  const std::uint64_t p = parse_size(port);
  if (p > 65535) throw UsageError("bad port in " + text_in);
  hp.port = static_cast<std::uint16_t>(p);
  return hp;
}

WsUrl parse_ws_url(const std::string& text) {
  WsUrl u;
  if (auto err = host::parse_ws_url(text, u)) throw UsageError(*err + ": " + text);
  if (u.tls) throw UsageError("wss:// is not supported (loopback benchmarks): " + text);
  return u;
}

SourcePool::SourcePool(const std::string& spec) {
  namespace ip = boost::asio::ip;
  auto parse = [&](const std::string& s) {
    boost::system::error_code ec;
    auto a = ip::make_address_v4(s, ec);
    if (ec) throw UsageError("bad source address " + s);
    return a;
  };
  std::size_t start = 0;
  while (start <= spec.size()) {
    const auto comma = spec.find(',', start);
    const std::string item =
        spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) {
      const auto dash = item.find('-');
      if (dash == std::string::npos) {
        addrs_.push_back(parse(item));
      } else {
        const auto lo = parse(item.substr(0, dash)).to_uint();
        const auto hi = parse(item.substr(dash + 1)).to_uint();
        if (hi < lo || hi - lo > 1U << 20) throw UsageError("bad source range " + item);
        for (auto v = lo; v <= hi; ++v)
          addrs_.emplace_back(v);
      }
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (addrs_.empty()) throw UsageError("empty --source-ips");
}

boost::asio::ip::address_v4 SourcePool::next() {
  auto a = addrs_[next_];
  next_ = (next_ + 1) % addrs_.size();
  return a;
}

std::uint64_t raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &rl);
    (void)::getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(p * static_cast<double>(sorted.size()));
  const std::size_t idx = rank < 1 ? 0 : static_cast<std::size_t>(rank) - 1;
  return sorted[std::min(idx, sorted.size() - 1)];
}

double jain_index(const std::vector<double>& x) {
  double sum = 0;
  double sq = 0;
  for (double v : x) {
    sum += v;
    sq += v * v;
  }
  if (x.empty() || sq == 0) return 1;
  return sum * sum / (static_cast<double>(x.size()) * sq);
}

void print_line(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

}  // namespace mana::bench
