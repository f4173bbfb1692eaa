// `mana-bench selftest`: the stream hash is split-invariant and the generator deterministic.
#pragma once

namespace mana::bench {

// Returns 0 when every check passed (one JSON line on stdout either way).
int run_selftest();

}  // namespace mana::bench
