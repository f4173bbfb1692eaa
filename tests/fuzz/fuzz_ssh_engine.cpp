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
using mana::ssh::SshEngine;
namespace event = mana::ssh::event;

constexpr std::size_t chunk_bytes = 512;
constexpr std::size_t output_bound = 512 * 1024;  // engine: out_bound + one packet

// Drains events and output; answers host key and prompt requests. Counts Closed events and
// notes Ready.
void drain(SshEngine& e, int* closed_events, bool* ready) {
  while (auto ev = e.poll_event()) {
    if (std::holds_alternative<event::HostKey>(*ev)) {
      e.host_key_decision(true);
    } else if (const auto* kp = std::get_if<event::KbdPrompts>(&*ev)) {
      e.kbd_answers(std::vector<std::string>(kp->prompts.size(), "answer"));
    } else if (const auto* d = std::get_if<event::Data>(&*ev)) {
      e.consume(d->bytes.size());
    } else if (std::holds_alternative<event::Ready>(*ev)) {
      *ready = true;
    } else if (const auto* c = std::get_if<event::Closed>(&*ev)) {
      ++*closed_events;
      // A clean end (kind none) only for a session that ran (Ready: logged in, channel open).
      if (c->kind == CloseKind::none && !*ready) __builtin_trap();
    }
  }
  if (e.output_bytes() > output_bound) __builtin_trap();
  std::uint8_t sink[4096];
  while (e.take_output(sink, sizeof sink) > 0) {
  }
  (void)e.take_input_consumed();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mana::ssh::test::reset_deterministic_rand();
  EngineConfig c = mana::ssh::test::replay_config();
  int closed_events = 0;
  bool ready = false;
  {
    SshEngine e(std::move(c));
    double now = 0;
    for (std::size_t off = 0; off < size && e.state() != EngineState::closed; off += chunk_bytes) {
      const std::size_t n = size - off < chunk_bytes ? size - off : chunk_bytes;
      if (!e.push_input(data + off, n)) __builtin_trap();  // far below in_cap
      e.step(now += 10);
      drain(e, &closed_events, &ready);
    }
    e.transport_closed();
    for (int i = 0; i < 8 && e.state() != EngineState::closed; ++i) {
      e.step(now += 10);
      drain(e, &closed_events, &ready);
    }
    if (e.state() != EngineState::closed || closed_events != 1) __builtin_trap();
  }
  if (mana::ssh::live_engines() != 0) __builtin_trap();
  return 0;
}
