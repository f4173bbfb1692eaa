// SPDX-License-Identifier: Apache-2.0
#include "handover_wire.hpp"

#include <array>
#include <cerrno>
#include <cstring>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace mana::gateway {

const char* handover_error_name(HandoverError e) noexcept {
  switch (e) {
    case HandoverError::none:
      return "none";
    case HandoverError::no_peer:
      return "no_peer";
    case HandoverError::peer_uid:
      return "peer_uid";
    case HandoverError::bad_magic:
      return "bad_magic";
    case HandoverError::bad_type:
      return "bad_type";
    case HandoverError::too_long:
      return "too_long";
    case HandoverError::bad_fd:
      return "bad_fd";
    case HandoverError::timeout:
      return "timeout";
    case HandoverError::closed:
      return "closed";
    case HandoverError::io:
      return "io";
  }
  return "unknown";
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

std::string encode_record(HandoverType type, std::string_view body) {
  std::string out(handover_magic);
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>((body.size() >> 8) & 0xff));
  out.push_back(static_cast<char>(body.size() & 0xff));
  out.append(body);
  return out;
}

ParseResult parse_record(std::string& buf, HandoverRecord& out, HandoverError& err) {
  // The magic is checked as soon as its bytes are there: garbage is refused early.
  const std::size_t m = std::min(buf.size(), handover_magic.size());
  if (std::string_view(buf).substr(0, m) != handover_magic.substr(0, m)) {
    err = HandoverError::bad_magic;
    return ParseResult::error;
  }
  if (buf.size() < handover_header_bytes) return ParseResult::incomplete;
  const auto type = static_cast<std::uint8_t>(buf[4]);
  const std::size_t len = (static_cast<std::size_t>(static_cast<std::uint8_t>(buf[5])) << 8) |
                          static_cast<std::uint8_t>(buf[6]);
  if (type < 1 || type > 4) {
    err = HandoverError::bad_type;
    return ParseResult::error;
  }
  if (len > handover_max_body) {
    err = HandoverError::too_long;
    return ParseResult::error;
  }
  if (buf.size() < handover_header_bytes + len) return ParseResult::incomplete;
  out.type = static_cast<HandoverType>(type);
  out.body = buf.substr(handover_header_bytes, len);
  buf.erase(0, handover_header_bytes + len);
  return ParseResult::ok;
}

HandoverError send_record(int sock, HandoverType type, std::string_view body, int fd) {
  if (body.size() > handover_max_body) return HandoverError::too_long;
  const std::string bytes = encode_record(type, body);
  iovec iov{const_cast<char*>(bytes.data()),
            bytes.size()};  // NOLINT(cppcoreguidelines-pro-type-const-cast)
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> control{};
  if (fd >= 0) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  const ssize_t n = ::sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n < 0)
    return errno == EPIPE || errno == ECONNRESET ? HandoverError::closed : HandoverError::io;
  return static_cast<std::size_t>(n) == bytes.size() ? HandoverError::none : HandoverError::io;
}

HandoverError recv_some(int sock, std::string& buf, Fd& fd, bool& would_block) {
  would_block = false;
  // At most what one more record could need (invariant 1).
  const std::size_t room = handover_header_bytes + handover_max_body + 1 -
                           std::min(buf.size(), handover_header_bytes + handover_max_body);
  std::array<char, handover_header_bytes + handover_max_body + 1> data{};
  iovec iov{data.data(), room};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * 4)> control{};
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  const ssize_t n = ::recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      would_block = true;
      return HandoverError::none;
    }
    return errno == ECONNRESET ? HandoverError::closed : HandoverError::io;
  }
  HandoverError err = HandoverError::none;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int got = -1;
      std::memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (!fd.valid()) {
        fd = Fd(got);
      } else {
        ::close(got);
        err = HandoverError::bad_fd;
      }
    }
  }
  if ((msg.msg_flags & MSG_CTRUNC) != 0) err = HandoverError::bad_fd;
  if (n == 0) return err == HandoverError::none ? HandoverError::closed : err;
  buf.append(data.data(), static_cast<std::size_t>(n));
  return err;
}

bool same_uid_peer(int sock) noexcept {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred))
    return false;
  return cred.uid == ::geteuid();
}

bool is_tcp_listener(int fd, std::uint16_t& port) noexcept {
  int v = 0;
  socklen_t len = sizeof(v);
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) != 0 || v != 1) return false;
  len = sizeof(v);
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) != 0 || v != SOCK_STREAM) return false;
  sockaddr_storage ss{};
  len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;  // NOLINT
  if (ss.ss_family == AF_INET) {
    port = ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);  // NOLINT
    return true;
  }
  if (ss.ss_family == AF_INET6) {
    port = ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);  // NOLINT
    return true;
  }
  return false;
}

}  // namespace mana::gateway
