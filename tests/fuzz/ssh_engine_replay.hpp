// SPDX-License-Identifier: Apache-2.0
// What the SSH engine's fuzz target and the recording of its seeds share (test code only, never
// linked into a product binary): deterministic randomness and the engine configuration.
//
// libssh2 takes its randomness from OpenSSL: the KEXINIT cookie and packet padding through
// RAND_bytes, the key exchange's ephemeral key through the default provider (RAND_priv_bytes_ex).
// Both go to a RAND_METHOD installed with RAND_set_rand_method (deprecated in OpenSSL 3, still
// honoured by RAND_bytes_ex and RAND_priv_bytes_ex). With the same stream in the recording session
// (tests/ssh-engine, MANA_SSH_ENGINE_RECORD) and in the fuzzer, the client's KEXINIT and ephemeral
// key are the same bytes, so the recorded server's signature verifies and its encrypted packets
// decrypt: a replayed seed goes through authentication, the channel and its data, and the fuzzer
// starts from there instead of stopping at the host key signature.
//
// Invariants:
//  1. reset_deterministic_rand(s) restarts one process-wide stream; the same calls after the same
//     reset return the same bytes.
//  2. The client's packets before NEWKEYS depend only on the stream and on replay_config()'s
//     algorithm lists (the defaults), not on its username, auth or command; so a seed recorded
//     with another login still decrypts, and one recorded with password auth replays to its end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "ssh_engine.hpp"

namespace mana::ssh::test {

/// Installs the deterministic RAND_METHOD (once per process) and restarts its stream at `seed`.
void reset_deterministic_rand(std::uint64_t seed = 0);

/// The fuzz target's engine: password, then keyboard-interactive, then the command `true`.
EngineConfig replay_config();

struct FeedResult {
  bool input_refused = false;  // push_input() said no (the inbound bound)
  std::size_t max_output = 0;  // the largest outbound queue seen before it was drained
};

/// Plays `data` as the server's side of the wire: 512-byte chunks with a step() after each, then
/// the end of the transport and up to 8 more steps. After every step the events go to `on_event`
/// (which may answer them on the engine) and the engine's output is discarded.
FeedResult feed_as_server(SshEngine& e, const std::uint8_t* data, std::size_t size,
                          const std::function<void(const Event&)>& on_event);

}  // namespace mana::ssh::test
