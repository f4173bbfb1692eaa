// SPDX-License-Identifier: Apache-2.0
// Pump: the host's drain loop around a session (poll_output / poll_event) without re-entering
// itself. Handling an event may call back into the host, which pumps again; such a nested call
// only asks the running one for another round.
#pragma once

namespace mana::host {

class Pump {
 public:
  // Runs `round()` until no nested call asked for another round and `round()` itself returned
  // false (true: more output or events were queued meanwhile). Returns false for a nested call,
  // which runs nothing; the outermost call returns true when it is done, so the caller re-arms
  // its timer and the like after it.
  template <class Round>
  bool run(Round&& round) {
    if (running_) {
      again_ = true;
      return false;
    }
    running_ = true;
    bool more = false;
    do {
      again_ = false;
      more = round();
    } while (again_ || more);
    running_ = false;
    return true;
  }

  [[nodiscard]] bool running() const noexcept { return running_; }

 private:
  bool running_ = false;
  bool again_ = false;
};

}  // namespace mana::host
