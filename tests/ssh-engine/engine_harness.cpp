// SPDX-License-Identifier: Apache-2.0
#include "engine_harness.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>

#include "fuzz/ssh_engine_replay.hpp"

extern char** environ;  // NOLINT(readability-identifier-naming): POSIX name

namespace mana::ssh::test {
namespace {

double now_ms() {
  using std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

/// The dev harness's sshd launcher as a child process: reads its one JSON line, SIGTERM at exit.
class SshdProcess {
 public:
  SshdProcess() {
    std::array<int, 2> pipe_fds{};
    if (::pipe(pipe_fds.data()) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
    const std::string launcher = std::string(MANA_SOURCE_DIR) + "/tools/devkit/sshd.mjs";
    std::array<char*, 6> argv{const_cast<char*>("node"),
                              const_cast<char*>(launcher.c_str()),
                              const_cast<char*>("--password"),
                              const_cast<char*>("--print-key"),
                              nullptr,
                              nullptr};
    const int rc = posix_spawnp(&pid_, "node", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[1]);
    if (rc != 0) {
      ::close(pipe_fds[0]);
      throw std::runtime_error("cannot start node tools/devkit/sshd.mjs: " +
                               std::string(std::strerror(rc)));
    }
    // One line of JSON within 60 s (key generation on a loaded machine).
    std::string line;
    const double deadline = now_ms() + 60000;
    while (line.find('\n') == std::string::npos && now_ms() < deadline) {
      pollfd p{pipe_fds[0], POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      std::array<char, 4096> buf{};
      const ssize_t n = ::read(pipe_fds[0], buf.data(), buf.size());
      if (n <= 0) break;
      line.append(buf.data(), static_cast<std::size_t>(n));
    }
    ::close(pipe_fds[0]);
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("port")) {
      stop();
      throw std::runtime_error(
          "tools/devkit/sshd.mjs gave no description (needs root for the "
          "password user): '" +
          line + "'");
    }
    info_.port = j.at("port").get<int>();
    info_.user = j.at("user").get<std::string>();
    info_.password = j.at("password").get<std::string>();
    info_.host_fingerprint = j.at("hostKeys").at("ed25519").at("fingerprint").get<std::string>();
    info_.user_key = j.at("userKey").at("privateKey").get<std::string>();
    info_.dir = j.at("dir").get<std::string>();
  }
  ~SshdProcess() { stop(); }
  SshdProcess(const SshdProcess&) = delete;
  SshdProcess& operator=(const SshdProcess&) = delete;
  SshdProcess(SshdProcess&&) = delete;
  SshdProcess& operator=(SshdProcess&&) = delete;

  [[nodiscard]] const SshdInfo& info() const { return info_; }

 private:
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);  // the launcher stops sshd and its sessions, then exits
    int status = 0;
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      ::usleep(50 * 1000);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  pid_t pid_ = -1;
  SshdInfo info_;
};

int connect_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + " failed");
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

}  // namespace

const SshdInfo& sshd() {
  static const SshdProcess process;
  return process.info();
}

namespace {

const char* record_dir() {
  const char* dir = std::getenv("MANA_SSH_ENGINE_RECORD");
  return dir != nullptr && *dir != '\0' ? dir : nullptr;
}

// A recorded session runs with the fuzzer's deterministic randomness, restarted for each session,
// so that its seed replays past the key exchange (fuzz/ssh_engine_replay.hpp).
EngineConfig prepare_recording(EngineConfig config, const std::string& record_name) {
  if (record_dir() != nullptr && !record_name.empty()) reset_deterministic_rand();
  return config;
}

}  // namespace

Session::Session(EngineConfig config, int port, std::string record_name)
    : engine_(prepare_recording(std::move(config), record_name)),
      fd_(connect_loopback(port)),
      record_name_(std::move(record_name)) {}

Session::~Session() {
  if (fd_ >= 0) ::close(fd_);
  const char* dir = record_dir();
  if (dir != nullptr && !record_name_.empty()) {
    std::ofstream f(std::string(dir) + "/" + record_name_ + ".bin", std::ios::binary);
    f.write(reinterpret_cast<const char*>(recorded_.data()),
            static_cast<std::streamsize>(recorded_.size()));
  }
}

void Session::write(const std::string& text) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(text.data());
  std::size_t done = 0;
  // The engine takes what fits its write_cap; the rest goes in as the SSH window opens.
  run_until(
      [&] {
        done += engine_.write(p + done, text.size() - done);
        return done == text.size();
      },
      10000);
}

void Session::flush_output() {
  std::array<std::uint8_t, 16384> buf{};
  while (engine_.output_bytes() > 0) {
    const std::size_t n = engine_.take_output(buf.data(), buf.size());
    std::size_t sent = 0;
    while (sent < n) {
      const ssize_t k = ::send(fd_, buf.data() + sent, n - sent, MSG_NOSIGNAL);
      if (k <= 0) return;  // the server is gone: its close arrives through recv
      sent += static_cast<std::size_t>(k);
    }
  }
}

void Session::handle(const Event& ev) {
  if (const auto* hk = std::get_if<event::HostKey>(&ev)) {
    engine_.host_key_decision(!accept_fp_.empty() && hk->fingerprint == accept_fp_);
  } else if (const auto* sr = std::get_if<event::SignRequest>(&ev)) {
    if (signer_) engine_.sign_result(signer_(sr->data));
  } else if (const auto* d = std::get_if<event::Data>(&ev)) {
    out_[d->stream == 0 ? 0 : 1].append(d->bytes.begin(), d->bytes.end());
    engine_.consume(d->bytes.size());
  } else if (const auto* e = std::get_if<event::Exit>(&ev)) {
    exit_ = *e;
  } else if (const auto* c = std::get_if<event::Closed>(&ev)) {
    closed_ = *c;
  } else if (std::holds_alternative<event::Ready>(ev)) {
    ready_ = true;
  }
  events_.push_back(ev);
}

bool Session::run_until(const std::function<bool()>& done, double timeout_ms) {
  const double deadline = now_ms() + timeout_ms;
  std::array<std::uint8_t, 65536> buf{};
  while (true) {
    engine_.step(now_ms());
    while (auto ev = engine_.poll_event())
      handle(*ev);
    flush_output();
    (void)engine_.take_input_consumed();
    if (done()) return true;
    if (closed_ || now_ms() > deadline) return done();
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 10) > 0) {
      const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
      if (n > 0) {
        const auto k = static_cast<std::size_t>(n);
        const std::size_t keep = std::min(k, record_cap - std::min(record_cap, recorded_.size()));
        recorded_.insert(recorded_.end(), buf.begin(),
                         buf.begin() + static_cast<std::ptrdiff_t>(keep));
        if (!engine_.push_input(buf.data(), k)) return done();
      } else {
        engine_.transport_closed();
      }
    }
  }
}

std::string Session::describe() const {
  std::string s = "closed: ";
  if (closed_) {
    s += std::string(to_string(closed_->kind)) + " code " + std::to_string(closed_->code) + " " +
         closed_->message;
  } else {
    s += "no";
  }
  return s + "; state " + to_string(engine_.state()) + "; stderr: " + out_[1];
}

}  // namespace mana::ssh::test
