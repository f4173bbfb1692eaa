// mana-proxy: lets plain OpenSSH reach SSH servers through mana-gateway (ProxyCommand).
// See --help.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "options.hpp"
#include "proxy.hpp"

int main(int argc, char** argv) {
  using namespace mana::proxy;  // NOLINT(google-build-using-namespace)
  const std::vector<std::string> args(argv + 1, argv + argc);
  Options opt;
  const ParseResult pr = parse_args(args, opt);
  switch (pr.outcome) {
    case ParseOutcome::help:
      std::fputs(help_text, stdout);
      return 0;
    case ParseOutcome::version:
      std::printf("mana-proxy %s\n", MANA_PROXY_VERSION);
      return 0;
    case ParseOutcome::error:
      std::fprintf(stderr, "mana-proxy: %s (try --help)\n", pr.message.c_str());
      return 2;
    case ParseOutcome::run:
      break;
  }
  std::string token;
  if (!opt.token_file.empty()) {
    if (auto err = read_token_file(opt.token_file, token)) {
      std::fprintf(stderr, "mana-proxy: %s\n", err->c_str());
      return 2;
    }
  }
  try {
    boost::asio::io_context io;
    return run_proxy(io, opt, token);
  } catch (const std::exception& ex) {  // allocation failure or an unexpected Asio error
    std::fprintf(stderr, "mana-proxy: %s\n", ex.what());
    return 1;
  }
}
