// Replays inputs through a libFuzzer target without libFuzzer, so every fuzz target also runs as a
// plain test (ctest <name>_corpus) on any compiler.
//
// Usage: <name>_replay PATH...
//   Each PATH is a file (one input) or a directory (every regular file below it, recursively, in
//   sorted order; names starting with '.' such as .gitkeep are skipped). Arguments starting with
//   '-' are ignored so that libFuzzer-style command lines can be reused.
// Exit status: 0 when every input ran; 1 on usage or I/O errors. A failing input aborts the
// process (assert, sanitizer report or crash), which the test runner reports.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
// Optional hook, as in libFuzzer; weak so targets that do not define it still link.
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

namespace fs = std::filesystem;

bool is_hidden(const fs::path& path) {
  const std::string name = path.filename().string();
  return !name.empty() && name.front() == '.';
}

// Appends the inputs under `root` to `out`; false (with a message) when `root` is unusable.
bool collect_inputs(const fs::path& root, std::vector<fs::path>& out) {
  std::error_code ec;
  if (fs::is_regular_file(root, ec)) {
    out.push_back(root);
    return true;
  }
  if (!fs::is_directory(root, ec)) {
    std::fprintf(stderr, "replay: %s: not a file or directory\n", root.string().c_str());
    return false;
  }
  std::vector<fs::path> found;
  fs::recursive_directory_iterator it(root, ec);
  const fs::recursive_directory_iterator end;
  while (!ec && it != end) {
    if (is_hidden(it->path())) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
    } else if (it->is_regular_file(ec)) {
      found.push_back(it->path());
    }
    it.increment(ec);
  }
  if (ec) {
    std::fprintf(stderr, "replay: %s: %s\n", root.string().c_str(), ec.message().c_str());
    return false;
  }
  std::sort(found.begin(), found.end());
  out.insert(out.end(), found.begin(), found.end());
  return true;
}

bool read_file(const fs::path& path, std::vector<std::uint8_t>& data) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);

  std::vector<fs::path> inputs;
  bool ok = true;
  int roots = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.empty() || arg.front() == '-') continue;
    ++roots;
    ok = collect_inputs(arg, inputs) && ok;
  }
  if (roots == 0) {
    std::fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argc > 0 ? argv[0] : "replay");
    return 1;
  }

  std::vector<std::uint8_t> data;
  std::size_t replayed = 0;
  for (const fs::path& path : inputs) {
    if (!read_file(path, data)) {
      std::fprintf(stderr, "replay: %s: cannot read\n", path.string().c_str());
      ok = false;
      continue;
    }
    // A fresh heap copy of exactly `size` bytes, so ASan catches reads past the end.
    const std::vector<std::uint8_t> input(data.begin(), data.end());
    LLVMFuzzerTestOneInput(input.data(), input.size());
    ++replayed;
  }
  std::printf("replay: %zu input(s) from %d path(s): %s\n", replayed, roots, ok ? "ok" : "errors");
  return ok ? 0 : 1;
}
