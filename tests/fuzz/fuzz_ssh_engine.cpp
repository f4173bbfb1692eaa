// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: a hostile SSH server. The input is the server's side of the wire, fed to the
// sans-I/O engine (ssh-engine/, the code of the browser's mana-ssh module) in 512-byte chunks with
// a step() after each; then the transport closes. Host keys are accepted and keyboard-interactive
// prompts answered, so the engine goes as far as the bytes let it.
//
// The seeds (corpus/fuzz_ssh_engine/) are real sshd transcripts recorded by the engine tests
// (MANA_SSH_ENGINE_RECORD, tests/ssh-engine/engine_harness.hpp). Every input runs with the same
// deterministic randomness as the recording (ssh_engine_replay.hpp), so the client's side of the
// key exchange is the recorded one: the server's signature verifies and its encrypted packets
// decrypt, and a seed reaches authentication, the channel, its data and exit status (the
// recorded-* seeds; the older hash-named seeds were recorded with real randomness and stop at the
// signature check).
//
// Checked for every input: the engine ends closed with exactly one Closed event, whose kind is
// typed (not none) unless the session became Ready, its outbound queue stays bounded and nothing
// crashes (ASan/UBSan in the fuzz preset).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "ssh_engine.hpp"
#include "ssh_engine_replay.hpp"

namespace {

using mana::ssh::CloseKind;
using mana::ssh::EngineConfig;
using mana::ssh::EngineState;
using mana::ssh::Event;
using mana::ssh::SshEngine;
namespace event = mana::ssh::event;

constexpr std::size_t output_bound = 512 * 1024;  // engine: out_bound + one packet

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mana::ssh::test::reset_deterministic_rand();
  EngineConfig c = mana::ssh::test::replay_config();
  int closed_events = 0;
  bool ready = false;
  {
    SshEngine e(std::move(c));
    // Host keys accepted, prompts answered, output consumed; Closed counted, Ready noted.
    const auto result = mana::ssh::test::feed_as_server(e, data, size, [&](const Event& ev) {
      if (std::holds_alternative<event::HostKey>(ev)) {
        e.host_key_decision(true);
      } else if (const auto* kp = std::get_if<event::KbdPrompts>(&ev)) {
        e.kbd_answers(std::vector<std::string>(kp->prompts.size(), "answer"));
      } else if (const auto* d = std::get_if<event::Data>(&ev)) {
        e.consume(d->bytes.size());
      } else if (std::holds_alternative<event::Ready>(ev)) {
        ready = true;
      } else if (const auto* cl = std::get_if<event::Closed>(&ev)) {
        ++closed_events;
        // A clean end (kind none) only for a session that ran (Ready: logged in, channel open).
        if (cl->kind == CloseKind::none && !ready) __builtin_trap();
      }
    });
    if (result.input_refused) __builtin_trap();  // far below in_cap
    if (result.max_output > output_bound) __builtin_trap();
    if (e.state() != EngineState::closed || closed_events != 1) __builtin_trap();
  }
  if (mana::ssh::live_engines() != 0) __builtin_trap();
  return 0;
}
