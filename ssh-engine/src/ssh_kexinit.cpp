// KexInitTap and find_mismatch: see ssh_kexinit.hpp.
#include "ssh_kexinit.hpp"

#include <algorithm>
#include <array>

namespace mana::ssh {
namespace {

constexpr std::uint8_t kMsgKexInit = 20;

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

// The first name of `ours` that `theirs` also lists (libssh2 walks the client's preference).
std::optional<std::string> first_common(std::string_view ours, std::string_view theirs) {
  std::size_t pos = 0;
  while (pos < ours.size()) {
    const std::size_t end = std::min(ours.find(',', pos), ours.size());
    const std::string_view name = ours.substr(pos, end - pos);
    if (!name.empty() && list_contains(theirs, name)) return std::string(name);
    pos = end + 1;
  }
  return std::nullopt;
}

bool integrated_mac(const std::string& cipher) {
  return cipher == "aes256-gcm@openssh.com" || cipher == "aes128-gcm@openssh.com";
}

}  // namespace

bool list_contains(std::string_view list, std::string_view item) {
  std::size_t pos = 0;
  while (pos <= list.size()) {
    const std::size_t end = std::min(list.find(',', pos), list.size());
    if (list.substr(pos, end - pos) == item) return true;
    pos = end + 1;
  }
  return false;
}

void KexInitTap::feed(const std::uint8_t* p, std::size_t n) {
  if (done_ || n == 0) return;
  const std::size_t room = kMaxTapBytes - buf_.size();
  buf_.insert(buf_.end(), p, p + std::min(n, room));
  parse();
  if (!done_ && buf_.size() >= kMaxTapBytes) done_ = true;
  if (done_) std::vector<std::uint8_t>().swap(buf_);
}

void KexInitTap::parse() {
  // Identification: lines before the one starting "SSH-" are allowed (RFC 4253 §4.2); the binary
  // packets start after the LF ending the "SSH-" line. Scanned once: libssh2 reads the banner a
  // byte at a time, so every feed() must cost only its new bytes.
  while (!body_) {
    const auto from = buf_.begin() + static_cast<std::ptrdiff_t>(scan_);
    const auto lf = std::find(from, buf_.end(), '\n');
    if (lf == buf_.end()) {
      scan_ = buf_.size();
      return;  // need more
    }
    const std::size_t end = static_cast<std::size_t>(lf - buf_.begin()) + 1;
    const bool version = end - line_ >= 5 && buf_[line_] == 'S' && buf_[line_ + 1] == 'S' &&
                         buf_[line_ + 2] == 'H' && buf_[line_ + 3] == '-';
    line_ = end;
    scan_ = end;
    if (version) body_ = end;
  }
  const std::size_t at = *body_;
  // The first binary packet: uint32 packet_length, byte padding_length, payload, padding (no MAC
  // yet: no keys exist before the first key exchange).
  if (buf_.size() - at < 5) return;
  const std::uint32_t packet_length = be32(&buf_[at]);
  const std::uint8_t padding = buf_[at + 4];
  if (packet_length < 2 || packet_length > kMaxKexInitPacket || padding >= packet_length) {
    done_ = true;  // not a packet this tap understands: no offer
    return;
  }
  if (buf_.size() - at - 4 < packet_length) return;  // need more
  done_ = true;
  const std::uint8_t* payload = &buf_[at + 5];
  const std::size_t payload_len = packet_length - padding - 1;
  if (payload_len < 17 || payload[0] != kMsgKexInit) return;
  std::size_t pos = 17;  // type + 16-byte cookie
  std::array<std::string, 6> lists;
  for (std::string& list : lists) {
    if (payload_len - pos < 4) return;
    const std::uint32_t len = be32(payload + pos);
    pos += 4;
    if (len > payload_len - pos) return;
    list.assign(reinterpret_cast<const char*>(payload + pos), len);
    pos += len;
  }
  offer_ = KexOffer{lists[0], lists[1], lists[2], lists[3], lists[4], lists[5]};
}

std::optional<AlgorithmMismatch> find_mismatch(const KexOffer& server,
                                               const ClientAlgorithms& client) {
  if (!first_common(client.kex, server.kex)) {
    return AlgorithmMismatch{"kex", client.kex, server.kex};
  }
  if (!first_common(client.hostkey, server.hostkey)) {
    return AlgorithmMismatch{"hostkey", client.hostkey, server.hostkey};
  }
  const auto cipher_cs = first_common(client.cipher, server.cipher_cs);
  if (!cipher_cs) return AlgorithmMismatch{"cipher", client.cipher, server.cipher_cs};
  const auto cipher_sc = first_common(client.cipher, server.cipher_sc);
  if (!cipher_sc) return AlgorithmMismatch{"cipher", client.cipher, server.cipher_sc};
  if (!integrated_mac(*cipher_cs) && !first_common(client.mac, server.mac_cs)) {
    return AlgorithmMismatch{"mac", client.mac, server.mac_cs};
  }
  if (!integrated_mac(*cipher_sc) && !first_common(client.mac, server.mac_sc)) {
    return AlgorithmMismatch{"mac", client.mac, server.mac_sc};
  }
  return std::nullopt;
}

}  // namespace mana::ssh
