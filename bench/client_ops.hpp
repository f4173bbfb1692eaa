// `mana-bench client ...`: the load-generating ops (up, down, echo, connect, streams, idle,
// slow, resume). Each prints exactly one JSON object on stdout; errors go to stderr.
#pragma once

namespace mana::bench {

int run_client(int argc, char** argv);

}  // namespace mana::bench
