// `mana-bench target --listen HOST:PORT --mode sink|source|echo [--bytes N] [--chunk N]
// [--exit-after K]`: prints `PORT <n>`, then one JSON line per finished connection.
#pragma once

namespace mana::bench {

int run_target(int argc, char** argv);

}  // namespace mana::bench
