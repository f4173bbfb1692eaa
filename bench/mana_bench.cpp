// mana-bench: the native load generator of the benchmarks (issue #7). One binary, four
// subcommands: `target` (the TCP sink/source/echo behind every relay), `client` (the ops against
// tcp / raw WebSocket relay / mana-gateway), `stdio` (ProxyCommand bridge over a raw WebSocket)
// and `selftest`. Single-threaded Asio per process; results are one JSON line on stdout.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "bench_util.hpp"
#include "client_ops.hpp"
#include "selftest.hpp"
#include "stdio_bridge.hpp"
#include "target.hpp"

namespace {

constexpr const char* usage_text =
    "usage: mana-bench target --listen 127.0.0.1:0 --mode sink|source|echo [--bytes N]\n"
    "                         [--chunk 65536] [--exit-after K]\n"
    "       mana-bench client --proto tcp|raw|mana --connect URL_OR_HOSTPORT --op OP [options]\n"
    "           common: [--target HOST:PORT] [--token-file F] [--origin O] [--profile mana.v1]\n"
    "                   [--timeout-ms 120000] [--source-ips A-B|A,B,..] [--concurrency 256]\n"
    "                   mana: [--window 2097152] [--replay 8388608] [--channels-per-conn 4]\n"
    "           up      --bytes N [--frame 65536]\n"
    "           down    --bytes N\n"
    "           echo    [--samples 1000] [--warmup 50]\n"
    "           connect [--samples 50]\n"
    "           streams [--n 100] --bytes N\n"
    "           idle    [--n 1000] [--hold-ms 3600000]   (READY <n>, then hold until stdin EOF)\n"
    "           slow    [--n 100] --read-rate BYTES_PER_S [--duration-ms 10000]\n"
    "           resume  --bytes N                          (mana only)\n"
    "       mana-bench stdio --connect ws://HOST:PORT/PATH [--origin O]\n"
    "       mana-bench selftest\n"
    "sizes accept k, Ki, M, Mi, G, Gi suffixes. Exit status: 0 ok, 1 failure, 2 usage.\n";

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fputs(usage_text, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  try {
    if (cmd == "target") return mana::bench::run_target(argc, argv);
    if (cmd == "client") return mana::bench::run_client(argc, argv);
    if (cmd == "stdio") return mana::bench::run_stdio(argc, argv);
    if (cmd == "selftest") return mana::bench::run_selftest();
    throw mana::bench::UsageError("unknown subcommand " + cmd);
  } catch (const mana::bench::UsageError& e) {
    std::fprintf(stderr, "mana-bench: %s\n%s", e.what(), usage_text);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mana-bench: %s\n", e.what());
    return 1;
  }
}
