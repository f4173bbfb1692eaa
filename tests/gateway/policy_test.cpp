// Target policy: default deny, special addresses only through explicit address/CIDR rules,
// odd spellings judged as the addresses getaddrinfo turns them into.
#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "config.hpp"
#include "policy.hpp"
#include "test_util.hpp"

using mana::gateway::Policy;
using mana::gateway::PolicyDecision;
using mana::gateway::test::config_from;
namespace ip = boost::asio::ip;

namespace {

using Claims = std::optional<std::vector<std::string>>;

std::vector<ip::address> addrs(std::initializer_list<const char*> list) {
  std::vector<ip::address> out;
  for (const char* a : list)
    out.push_back(ip::make_address(a));
  return out;
}

// The relay's pipeline, synchronously: precheck, one resolution of the name (getaddrinfo, as the
// relay's async_resolve), check_resolved on every returned address.
PolicyDecision decide(const Policy& p, const std::string& host, std::uint16_t port,
                      const Claims& claims = std::nullopt) {
  std::string name;
  PolicyDecision pre = p.precheck(host, port, claims, name);
  if (!pre.allowed) return pre;
  boost::asio::io_context io;
  ip::tcp::resolver resolver(io);
  boost::system::error_code ec;
  const auto results =
      resolver.resolve(name, std::to_string(port), ip::tcp::resolver::numeric_service, ec);
  if (ec) {
    PolicyDecision d;
    d.reason = "resolve";
    d.detail = ec.message();
    return d;
  }
  std::vector<ip::address> list;
  for (const auto& r : results)
    list.push_back(r.endpoint().address());
  return p.check_resolved(name, port, list);
}

bool only_endpoint(const PolicyDecision& d, const char* addr, std::uint16_t port) {
  return d.endpoints.size() == 1 &&
         d.endpoints[0] == ip::tcp::endpoint(ip::make_address(addr), port);
}

const char* const special_hosts[] = {
    "127.0.0.1",
    "127.255.255.254",
    "::1",
    "0.0.0.0",
    "::",
    "169.254.169.254",
    "169.254.0.1",
    "fe80::1",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "fc00::1",
    "fd12:3456::1",
    "100.64.0.1",
    "224.0.0.1",
    "255.255.255.255",
    "ff02::1",
    "192.0.2.1",
    "2001:db8::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::127.0.0.1",
    "64:ff9b::7f00:1",
    "2002:7f00:1::1",
    "198.18.0.1",
    "240.0.0.1",
    "fec0::1",
    "::ffff:169.254.169.254",
};
const char* const public_hosts[] = {"8.8.8.8",    "93.184.216.34",        "1.1.1.1",
                                    "172.32.0.1", "2606:4700:4700::1111", "2a00:1450:4001::200e"};

const char* const rules_toml = R"([[targets]]
host = "ssh.example.com"
ports = [22]

[[targets]]
host = "127.0.0.1"
ports = [2222]

[[targets]]
cidr = "10.1.0.0/16"
ports = [22]

[[targets]]
cidr = "2001:db8:1::/48"
ports = [22]
)";

}  // namespace

TEST_CASE("policy: special address classification", "[gateway][policy]") {
  for (const char* a : special_hosts) {
    INFO(a);
    CHECK(Policy::is_special(ip::make_address(a)));
  }
  for (const char* a : public_hosts) {
    INFO(a);
    CHECK_FALSE(Policy::is_special(ip::make_address(a)));
  }
  CHECK(Policy::normalise(ip::make_address("::ffff:127.0.0.1")) == ip::make_address("127.0.0.1"));
  CHECK(Policy::contains(ip::make_address("10.0.0.0"), 8, ip::make_address("10.255.0.1")));
  CHECK_FALSE(Policy::contains(ip::make_address("10.0.0.0"), 8, ip::make_address("11.0.0.1")));
  CHECK_FALSE(Policy::contains(ip::make_address("::"), 0, ip::make_address("10.0.0.1")));
  CHECK(Policy::contains(ip::make_address("fe80::"), 10, ip::make_address("febf::1")));
}

TEST_CASE("policy: an empty config denies every target", "[gateway][policy]") {
  const Policy p(config_from(""));
  std::string name;
  for (const char* host : {"127.0.0.1", "localhost", "ssh.example.com", "8.8.8.8", "::1"}) {
    for (std::uint16_t port : {22, 2222, 443}) {
      const PolicyDecision d = p.precheck(host, port, std::nullopt, name);
      CHECK_FALSE(d.allowed);
      CHECK(d.reason == "port");
    }
  }
  for (const char* a : special_hosts)
    CHECK_FALSE(p.check_resolved("x", 22, addrs({a})).allowed);
  for (const char* a : public_hosts)
    CHECK_FALSE(p.check_resolved(a, 22, addrs({a})).allowed);
}

TEST_CASE("policy: a host-name rule never reaches special addresses", "[gateway][policy]") {
  const Policy p(config_from(rules_toml));
  const PolicyDecision ok = p.check_resolved("ssh.example.com", 22, addrs({"93.184.216.34"}));
  CHECK(ok.allowed);
  CHECK(only_endpoint(ok, "93.184.216.34", 22));
  // DNS rebinding / internal names: the name is allowed, the addresses it resolves to are not.
  for (const char* a : special_hosts) {
    INFO(a);
    const PolicyDecision d = p.check_resolved("ssh.example.com", 22, addrs({a}));
    CHECK_FALSE(d.allowed);
    CHECK(d.reason == "address");
  }
  // One bad address among good ones denies the whole open.
  CHECK_FALSE(
      p.check_resolved("ssh.example.com", 22, addrs({"93.184.216.34", "169.254.169.254"})).allowed);
  // Wrong port for the name; another name resolving to a public address.
  CHECK_FALSE(p.check_resolved("ssh.example.com", 2222, addrs({"93.184.216.34"})).allowed);
  CHECK_FALSE(p.check_resolved("other.example.com", 22, addrs({"93.184.216.34"})).allowed);
  CHECK_FALSE(p.check_resolved("ssh.example.com", 22, {}).allowed);
}

TEST_CASE("policy: address/CIDR rules allow exactly the listed ranges and ports",
          "[gateway][policy]") {
  const Policy p(config_from(rules_toml));
  CHECK(p.check_resolved("127.0.0.1", 2222, addrs({"127.0.0.1"})).allowed);
  CHECK(p.check_resolved("localhost", 2222, addrs({"::ffff:127.0.0.1"})).allowed);
  CHECK_FALSE(p.check_resolved("127.0.0.2", 2222, addrs({"127.0.0.2"})).allowed);
  CHECK_FALSE(p.check_resolved("127.0.0.1", 22, addrs({"127.0.0.1"})).allowed);
  CHECK_FALSE(p.check_resolved("::1", 2222, addrs({"::1"})).allowed);
  CHECK(p.check_resolved("10.1.2.3", 22, addrs({"10.1.2.3"})).allowed);
  CHECK(p.check_resolved("any.name", 22, addrs({"10.1.255.255"})).allowed);
  CHECK_FALSE(p.check_resolved("10.2.0.1", 22, addrs({"10.2.0.1"})).allowed);
  CHECK_FALSE(p.check_resolved("10.1.2.3", 2222, addrs({"10.1.2.3"})).allowed);
  CHECK(p.check_resolved("2001:db8:1::5", 22, addrs({"2001:db8:1::5"})).allowed);
  CHECK_FALSE(p.check_resolved("2001:db8:2::5", 22, addrs({"2001:db8:2::5"})).allowed);
  // Duplicate addresses collapse into one endpoint.
  const PolicyDecision d = p.check_resolved("x", 22, addrs({"10.1.0.1", "::ffff:10.1.0.1"}));
  CHECK(d.allowed);
  CHECK(only_endpoint(d, "10.1.0.1", 22));
}

TEST_CASE("policy: precheck refuses bad hosts and unlisted ports without DNS",
          "[gateway][policy]") {
  const Policy p(config_from(rules_toml));
  std::string name;
  CHECK(p.precheck("SSH.Example.COM.", 22, std::nullopt, name).allowed);
  CHECK(name == "ssh.example.com");
  CHECK(p.precheck("[::1]", 22, std::nullopt, name).allowed);
  CHECK(name == "::1");
  for (const char* bad : {"", "a b", "evil.com/x", "user@host", "host%eth0", "a;b", "\x01"}) {
    const PolicyDecision d = p.precheck(bad, 22, std::nullopt, name);
    CHECK_FALSE(d.allowed);
    CHECK(d.reason == "bad_host");
  }
  CHECK(p.precheck(std::string(254, 'a'), 22, std::nullopt, name).reason == "bad_host");
  const PolicyDecision port = p.precheck("ssh.example.com", 23, std::nullopt, name);
  CHECK_FALSE(port.allowed);
  CHECK(port.reason == "port");
}

TEST_CASE("policy: odd spellings are judged as the addresses they resolve to",
          "[gateway][policy]") {
  // Only 127.0.0.1:2222 is allowed (address rule); everything else is a name or public range.
  const Policy p(config_from(rules_toml));
  for (const char* spelling :
       {"127.0.0.1", "127.1", "2130706433", "0x7f.1", "0x7f000001", "0177.0.0.1", "127.0.0.1.",
        "[::ffff:127.0.0.1]", "::ffff:127.0.0.1", "[::FFFF:7F00:1]"}) {
    INFO(spelling);
    const PolicyDecision d = decide(p, spelling, 2222);
    CHECK(d.allowed);
    CHECK(only_endpoint(d, "127.0.0.1", 2222));
  }
  // 0.0.0.0 reaches the local host on Linux: it is not 127.0.0.1 and is not allowed.
  for (const char* spelling : {"0.0.0.0", "0", "0x0", "[::]", "127.0.0.2", "127.2"}) {
    INFO(spelling);
    const PolicyDecision d = decide(p, spelling, 2222);
    CHECK_FALSE(d.allowed);
    CHECK(d.reason == "address");
  }
}

TEST_CASE("policy: odd spellings of special addresses are denied by name rules",
          "[gateway][policy]") {
  // A config that allows names on port 22 only: no loopback/metadata spelling gets through.
  const Policy p(config_from(R"([[targets]]
host = "ssh.example.com"
ports = [22]

[[targets]]
host = "localhost"
ports = [22]

[[targets]]
host = "2130706433"
ports = [22]
)"));
  for (const char* spelling :
       {"127.1", "2130706433", "0x7f.1", "[::ffff:127.0.0.1]", "0.0.0.0", "127.0.0.1.", "localhost",
        "localhost.", "LOCALHOST", "169.254.169.254", "0xa9.0xfe.0xa9.0xfe", "2852039166", "[::1]",
        "[fe80::1]", "10.0.0.1", "192.168.0.1"}) {
    INFO(spelling);
    const PolicyDecision d = decide(p, spelling, 22);
    CHECK_FALSE(d.allowed);
    CHECK((d.reason == "address" || d.reason == "resolve"));
  }
}

TEST_CASE("policy: a token's targets claim restricts precheck", "[gateway][policy]") {
  const Policy p(config_from(rules_toml));
  std::string name;
  const Claims claims = std::vector<std::string>{"ssh.example.com:22", "[::1]:2222"};
  CHECK(p.precheck("ssh.example.com", 22, claims, name).allowed);
  CHECK(p.precheck("SSH.EXAMPLE.COM.", 22, claims, name).allowed);
  CHECK(p.precheck("[::1]", 2222, claims, name).allowed);
  for (const auto& [host, port] : std::vector<std::pair<std::string, std::uint16_t>>{
           {"127.0.0.1", 2222}, {"10.1.2.3", 22}, {"ssh.example.com", 2222}, {"127.1", 2222}}) {
    INFO(host << ":" << port);
    const PolicyDecision d = p.precheck(host, port, claims, name);
    CHECK_FALSE(d.allowed);
    CHECK(d.reason == "token_target");
  }
  // An empty claim list allows nothing.
  CHECK(p.precheck("ssh.example.com", 22, std::vector<std::string>{}, name).reason ==
        "token_target");
}
