// The server's algorithm offer, read from the clear-text start of the SSH stream, and which kind
// of algorithm failed to agree when the key exchange fails.
//
// libssh2 reports a failed negotiation as LIBSSH2_ERROR_KEX_FAILURE without saying which list had
// nothing in common, and frees the server's KEXINIT. The engine therefore taps the bytes libssh2
// reads until the server's first KEXINIT (sent before any key exists, so in the clear) and, when
// the handshake fails, compares the offer with its own lists in libssh2's order (key exchange,
// host key, cipher, MAC).
//
// Bounds: the tap keeps at most kMaxTapBytes (identification lines, RFC 4253 §4.2, plus one
// packet of at most kMaxKexInitPacket bytes) and then stops for good.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mana::ssh {

/// The name-lists of a KEXINIT that matter for the agreement (comma separated, as sent).
struct KexOffer {
  std::string kex, hostkey, cipher_cs, cipher_sc, mac_cs, mac_sc;
};

class KexInitTap {
 public:
  static constexpr std::size_t kMaxKexInitPacket = 64 * 1024;
  static constexpr std::size_t kMaxTapBytes = 128 * 1024;

  /// Bytes in the order libssh2 read them (ignored once done()).
  void feed(const std::uint8_t* p, std::size_t n);
  /// The tap stopped: the offer was read, or the stream did not look like a KEXINIT in time.
  [[nodiscard]] bool done() const { return done_; }
  [[nodiscard]] const std::optional<KexOffer>& offer() const { return offer_; }

 private:
  void parse();

  std::vector<std::uint8_t> buf_;
  std::size_t line_ = 0;             // start of the identification line being read
  std::size_t scan_ = 0;             // where the search for its LF goes on
  std::optional<std::size_t> body_;  // start of the first binary packet, once known
  bool done_ = false;
  std::optional<KexOffer> offer_;
};

/// This client's lists (comma separated, without the kex extension markers).
struct ClientAlgorithms {
  std::string kex, hostkey, cipher, mac;
};

struct AlgorithmMismatch {
  std::string kind;    // kex | hostkey | cipher | mac
  std::string client;  // this client's list of that kind
  std::string server;  // the server's offer of that kind
};

/// The first kind (libssh2's order) for which the two sides have no name in common; MACs are not
/// negotiated with an AES-GCM cipher (libssh2 uses the cipher's own tag). nullopt: all agree.
std::optional<AlgorithmMismatch> find_mismatch(const KexOffer& server,
                                               const ClientAlgorithms& client);

/// Whether the comma-separated `list` contains `item`.
bool list_contains(std::string_view list, std::string_view item);

}  // namespace mana::ssh
