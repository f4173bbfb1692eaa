// `mana-bench stdio --connect ws://HOST:PORT/PATH [--origin O]`: stdin/stdout over one binary
// WebSocket (OpenSSH ProxyCommand through websockify or a Node relay).
#pragma once

namespace mana::bench {

int run_stdio(int argc, char** argv);

}  // namespace mana::bench
