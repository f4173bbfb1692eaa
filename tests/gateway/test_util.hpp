// Helpers shared by the gateway unit tests: temporary files and TOML configs.
#pragma once

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "config.hpp"

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

// Loads a config from TOML text (written to a temporary file).
inline Config config_from(const std::string& toml) {
  TempDir dir;
  return load_config(dir.write("gateway.toml", toml));
}

}  // namespace mana::gateway::test
