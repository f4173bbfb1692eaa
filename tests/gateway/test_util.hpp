// Helpers shared by the gateway unit tests: temporary files, TOML configs, JWT encoding.
#pragma once

#include <atomic>
#include <filesystem>
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>

#include <unistd.h>

#include "config.hpp"
#include "mana/core/messages.hpp"

namespace mana::gateway::test {

// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    static std::atomic<unsigned> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("mana-gw-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

  // Writes `text` to <dir>/<name> and returns the full path.
  std::string write(const std::string& name, const std::string& text) const {
    const std::filesystem::path p = path_ / name;
    std::ofstream f(p, std::ios::binary);
    f << text;
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

// Unpadded base64url (RFC 4648 §5), written out here so that the tests do not share the
// gateway's decoder.
inline std::string b64url(const std::string& in) {
  static const char* const tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  while (i + 2 < in.size()) {
    const auto n = (static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16) |
                   (static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8) |
                   static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 2]));
    out += tbl[(n >> 18) & 63];
    out += tbl[(n >> 12) & 63];
    out += tbl[(n >> 6) & 63];
    out += tbl[n & 63];
    i += 3;
  }
  const std::size_t rest = in.size() - i;
  if (rest == 1) {
    const auto n = static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16;
    out += tbl[(n >> 18) & 63];
    out += tbl[(n >> 12) & 63];
  } else if (rest == 2) {
    const auto n = (static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16) |
                   (static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8);
    out += tbl[(n >> 18) & 63];
    out += tbl[(n >> 12) & 63];
    out += tbl[(n >> 6) & 63];
  }
  return out;
}

// hello.auth {"scheme": "bearer", "token": token}.
inline std::optional<mana::core::Auth> bearer(const std::string& token) {
  mana::core::Auth a;
  a.scheme = mana::core::Auth::Scheme::bearer;
  a.token = token;
  return a;
}

// Loads a config from TOML text (written to a temporary file).
inline Config config_from(const std::string& toml) {
  TempDir dir;
  return load_config(dir.write("gateway.toml", toml));
}

}  // namespace mana::gateway::test
