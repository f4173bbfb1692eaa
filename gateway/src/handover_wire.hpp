// SPDX-License-Identifier: Apache-2.0
// The records of the handover socket ([server] handover_socket, handover.hpp): a same-host
// upgrade's two gateway processes talk over one Unix stream connection.
//
// Rules:
//   - A record is "MNH1", a type byte, a 16-bit big-endian body length and the body (at most
//     max_body bytes); a record carries at most one file descriptor (SCM_RIGHTS).
//   - Anything else on the socket (another magic, an unknown type, a longer body, a second fd, a
//     fd where none belongs) is a typed HandoverError; the connection is closed, nothing else.
//   - Received descriptors are close-on-exec (MSG_CMSG_CLOEXEC) and owned by exactly one Fd.
// Invariants:
//   1. A parser buffer never holds more than one record header plus max_body bytes.
//   2. parse_record consumes exactly one whole record or nothing.
//   3. An Fd closes its descriptor once (destructor or release()).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mana::gateway {

enum class HandoverType : std::uint8_t {
  take = 1,      // new -> old: "give me your listener" (body: handover_version)
  listener = 2,  // old -> new: the listening socket (fd; body: the route id)
  taken = 3,     // new -> old: accepting now; the old stops for good and drains
  forward = 4,   // new -> old: a forwarded client (fd: one end of a socketpair; body: ip \n origin)
};

enum class HandoverError : std::uint8_t {
  none,
  no_peer,    // nothing listens on the path (no old process): not an error at startup
  peer_uid,   // the peer runs as another user (SO_PEERCRED)
  bad_magic,  // not a handover record
  bad_type,   // a record of a type not expected here
  too_long,   // body over max_body
  bad_fd,     // a descriptor missing, unexpected, or not a listening TCP socket
  timeout,    // the peer did not answer within the bound
  closed,     // the peer closed the connection
  io,         // a socket call failed
};

[[nodiscard]] const char* handover_error_name(HandoverError e) noexcept;

inline constexpr std::string_view handover_magic = "MNH1";
inline constexpr std::string_view handover_version = "mana-handover 1";
inline constexpr std::size_t handover_header_bytes = 7;
inline constexpr std::size_t handover_max_body = 512;

// A file descriptor owned by one object.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd();
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  int release() noexcept {
    const int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_ = -1;
};

struct HandoverRecord {
  HandoverType type = HandoverType::take;
  std::string body;
  Fd fd;
};

// Encodes a record's bytes (header and body); the caller checks body.size() <= max_body.
[[nodiscard]] std::string encode_record(HandoverType type, std::string_view body);

enum class ParseResult : std::uint8_t { incomplete, ok, error };
// Takes one whole record off the front of `buf` (its fd is not set here).
ParseResult parse_record(std::string& buf, HandoverRecord& out, HandoverError& err);

// One sendmsg of a whole record with `fd` attached when >= 0. Non-blocking sockets: a record
// that does not fit the socket buffer at once is an io error (records are small).
HandoverError send_record(int sock, HandoverType type, std::string_view body, int fd = -1);

// One recvmsg: appends what arrived to `buf`, a received descriptor to `fd` (a second one is
// closed and reported as bad_fd). closed on EOF; io with errno EAGAIN means "nothing yet".
HandoverError recv_some(int sock, std::string& buf, Fd& fd, bool& would_block);

// The peer's uid (SO_PEERCRED) equals ours (geteuid).
[[nodiscard]] bool same_uid_peer(int sock) noexcept;

// A TCP socket in the listening state; its port in `port`.
[[nodiscard]] bool is_tcp_listener(int fd, std::uint16_t& port) noexcept;

}  // namespace mana::gateway
