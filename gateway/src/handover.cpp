// SPDX-License-Identifier: Apache-2.0
#include "handover.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.hpp"

namespace mana::gateway {

namespace asio = boost::asio;
using Local = asio::local::stream_protocol;

namespace {

bool unix_address(const std::string& path, sockaddr_un& addr) {
  addr = sockaddr_un{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path.data(), path.size());
  return true;
}

}  // namespace

Handover::Handover(Context& ctx, Hooks hooks)
    : ctx_(ctx), hooks_(std::move(hooks)), acceptor_(ctx.io), peer_timer_(ctx.io), old_(ctx.io) {}

Handover::~Handover() {
  try {
    stop();
  } catch (...) {  // NOLINT(bugprone-empty-catch): nothing to do at the end of the process
  }
}

Fd Handover::take(HandoverError& err) {
  err = HandoverError::none;
  const std::string& path = ctx_.cfg.handover_socket;
  sockaddr_un addr{};
  if (!unix_address(path, addr)) {
    err = HandoverError::io;
    return {};
  }
  Fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) {
    err = HandoverError::io;
    return {};
  }
  if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {  // NOLINT
    // No socket file, or a stale one nobody listens on: there is no old process.
    err = errno == ENOENT || errno == ECONNREFUSED ? HandoverError::no_peer : HandoverError::io;
    return {};
  }
  if (!same_uid_peer(s.get())) {
    err = HandoverError::peer_uid;
    return {};
  }
  if ((err = send_record(s.get(), HandoverType::take, handover_version)) != HandoverError::none)
    return {};
  const auto deadline = std::chrono::steady_clock::now() + startup_timeout;
  std::string buf;
  Fd fd;
  HandoverRecord rec;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      err = HandoverError::timeout;
      return {};
    }
    pollfd p{s.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) {
      err = HandoverError::io;
      return {};
    }
    bool would_block = false;
    if ((err = recv_some(s.get(), buf, fd, would_block)) != HandoverError::none) return {};
    const ParseResult r = parse_record(buf, rec, err);
    if (r == ParseResult::error) return {};
    if (r == ParseResult::ok) break;
  }
  std::uint16_t port = 0;
  if (rec.type != HandoverType::listener) {
    err = HandoverError::bad_type;
    return {};
  }
  if (!fd.valid() || !is_tcp_listener(fd.get(), port) ||
      (ctx_.cfg.listen_port != 0 && port != ctx_.cfg.listen_port)) {
    err = HandoverError::bad_fd;
    return {};
  }
  old_.assign(Local(), s.release());
  return fd;
}

void Handover::confirm_taken() {
  if (!old_.is_open()) return;
  if (const HandoverError e = send_record(old_.native_handle(), HandoverType::taken, {});
      e != HandoverError::none) {
    // The listener is ours either way; only forwarding is lost.
    log_warn("handover",
             {{"role", "new"}, {"result", "taken_not_sent"}, {"error", handover_error_name(e)}});
    old_gone_ = true;
    return;
  }
  ctx_.metrics.handovers["taken"]++;
  log_info("handover", {{"role", "new"}, {"result", "taken"}, {"forwarding", true}});
  watch_old();
}

void Handover::watch_old() {
  old_.async_wait(Local::socket::wait_read, [this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    Fd stray;
    bool would_block = false;
    const HandoverError e = recv_some(old_.native_handle(), old_buf_, stray, would_block);
    old_buf_.clear();  // the old process sends nothing after the listener
    if (e == HandoverError::none) return watch_old();
    old_gone_ = true;
    boost::system::error_code ignored;
    old_.close(ignored);
    log_info("handover", {{"role", "new"}, {"result", "old_exited"}, {"forwarding", false}});
  });
}

Fd Handover::open_forward(const std::string& ip, const std::string& origin) {
  if (!forwarding()) return {};
  std::array<int, 2> pair{-1, -1};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair.data()) != 0) return {};
  Fd mine(pair[0]);
  const Fd theirs(pair[1]);
  std::string body = ip.substr(0, 64) + "\n" + origin;
  if (body.size() > handover_max_body) body.resize(handover_max_body);
  if (const HandoverError e =
          send_record(old_.native_handle(), HandoverType::forward, body, theirs.get());
      e != HandoverError::none) {
    log_info("handover",
             {{"role", "new"}, {"result", "forward_failed"}, {"error", handover_error_name(e)}});
    old_gone_ = true;
    return {};
  }
  return mine;
}

void Handover::listen() {
  const std::string& path = ctx_.cfg.handover_socket;
  sockaddr_un addr{};
  if (!unix_address(path, addr)) throw std::runtime_error("handover_socket: path too long");
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    // A socket nobody answered on (take() ran first) or the one we took over from: replace it.
    // Anything else at that path is not ours to delete.
    if (!S_ISSOCK(st.st_mode))
      throw std::runtime_error("handover_socket: " + path + " exists and is not a socket");
    ::unlink(path.c_str());
  }
  Fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) throw std::runtime_error("handover_socket: socket() failed");
  const mode_t old_mask = ::umask(0177);  // created 0600
  const int rc = ::bind(s.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));  // NOLINT
  const int bind_errno = errno;
  ::umask(old_mask);
  if (rc != 0)
    throw std::runtime_error("handover_socket: cannot bind " + path + ": " +
                             std::strerror(bind_errno));  // NOLINT(concurrency-mt-unsafe)
  ::chmod(path.c_str(), 0600);
  if (::listen(s.get(), 4) != 0) throw std::runtime_error("handover_socket: listen() failed");
  if (::stat(path.c_str(), &st) == 0) {
    bound_dev_ = st.st_dev;
    bound_ino_ = st.st_ino;
  }
  acceptor_.assign(Local(), s.release());
  log_info("handover_socket", {{"path", path}, {"mode", "0600"}});
  do_accept();
}

void Handover::do_accept() {
  if (stopped_ || handed_over_ || !acceptor_.is_open()) return;
  acceptor_.async_accept([this](const boost::system::error_code& ec, Local::socket sock) {
    if (stopped_ || handed_over_) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      log_warn("handover_accept_error", {{"error", ec.message()}});
      // EMFILE and the like: try again later rather than spin.
      auto t = std::make_shared<asio::steady_timer>(ctx_.io, std::chrono::seconds(1));
      t->async_wait([this, t](const boost::system::error_code& e) {
        if (!e) do_accept();
      });
      return;
    }
    on_peer(std::move(sock));
    do_accept();
  });
}

void Handover::refuse(const char* outcome, HandoverError err) {
  ctx_.metrics.handovers[outcome]++;
  log_warn("handover", {{"role", "old"}, {"result", outcome}, {"error", handover_error_name(err)}});
}

void Handover::drop_peer() {
  peer_timer_.cancel();
  ++peer_gen_;
  peer_buf_.clear();
  peer_fd_ = Fd();
  if (peer_) {
    boost::system::error_code ignored;
    peer_->close(ignored);
    peer_.reset();
  }
}

void Handover::on_peer(Local::socket sock) {
  boost::system::error_code ignored;
  if (peer_) {
    refuse("refused_busy", HandoverError::none);
    sock.close(ignored);
    return;
  }
  if (!same_uid_peer(sock.native_handle())) {
    refuse("refused_peer_uid", HandoverError::peer_uid);
    sock.close(ignored);
    return;
  }
  peer_ = std::make_unique<Local::socket>(std::move(sock));
  const std::uint64_t gen = ++peer_gen_;
  peer_timer_.expires_after(peer_timeout);
  peer_timer_.async_wait([this, gen](const boost::system::error_code& ec) {
    if (ec || gen != peer_gen_) return;
    refuse("refused_timeout", HandoverError::timeout);
    const bool gave = given_;
    given_ = false;
    drop_peer();
    if (gave && hooks_.failed) hooks_.failed();
  });
  read_peer([this](HandoverError e, HandoverRecord rec) {
    if (e == HandoverError::none &&
        (rec.type != HandoverType::take || rec.fd.valid() || rec.body != handover_version))
      e = rec.fd.valid() ? HandoverError::bad_fd : HandoverError::bad_type;
    if (e != HandoverError::none) {
      refuse("refused_bad_message", e);
      return drop_peer();
    }
    const int lfd = hooks_.give ? hooks_.give() : -1;
    given_ = true;
    if (const HandoverError s =
            send_record(peer_->native_handle(), HandoverType::listener, ctx_.route_id, lfd);
        s != HandoverError::none) {
      refuse("failed", s);
      given_ = false;
      drop_peer();
      if (hooks_.failed) hooks_.failed();
      return;
    }
    log_info("handover", {{"role", "old"}, {"result", "listener_sent"}});
    read_peer([this](HandoverError e2, HandoverRecord r2) {
      if (e2 == HandoverError::none && (r2.type != HandoverType::taken || r2.fd.valid()))
        e2 = HandoverError::bad_type;
      if (e2 != HandoverError::none) {
        refuse("failed", e2);
        given_ = false;
        drop_peer();
        if (hooks_.failed) hooks_.failed();
        return;
      }
      peer_timer_.cancel();
      handed_over_ = true;
      boost::system::error_code ignored2;
      acceptor_.close(ignored2);  // invariant 2: the path is the new process's now
      ctx_.metrics.handovers["handed_over"]++;
      log_info("handover", {{"role", "old"}, {"result", "handed_over"}});
      if (hooks_.taken) hooks_.taken();
      watch_new();
    });
  });
}

void Handover::watch_new() {
  read_peer([this](HandoverError e, HandoverRecord rec) {
    if (e == HandoverError::none && (rec.type != HandoverType::forward || !rec.fd.valid()))
      e = rec.fd.valid() ? HandoverError::bad_type : HandoverError::bad_fd;
    if (e != HandoverError::none) {
      // The new process ended (or broke the protocol): no more forwarded clients; the
      // sessions held here drain as before.
      log_info("handover",
               {{"role", "old"}, {"result", "peer_closed"}, {"error", handover_error_name(e)}});
      return drop_peer();
    }
    const auto nl = rec.body.find('\n');
    std::string ip = rec.body.substr(0, nl);
    std::string origin = nl == std::string::npos ? std::string() : rec.body.substr(nl + 1);
    if (hooks_.forwarded) hooks_.forwarded(std::move(rec.fd), std::move(ip), std::move(origin));
    watch_new();
  });
}

void Handover::read_peer(std::function<void(HandoverError, HandoverRecord)> done) {
  if (!peer_) return;
  // A record already buffered (two arrived in one read) needs no wait.
  HandoverRecord rec;
  HandoverError err = HandoverError::none;
  const ParseResult r = parse_record(peer_buf_, rec, err);
  if (r != ParseResult::incomplete) {
    if (r == ParseResult::ok) rec.fd = std::move(peer_fd_);
    asio::post(ctx_.io, [this, gen = peer_gen_, done = std::move(done), err,
                         rec = std::make_shared<HandoverRecord>(std::move(rec))]() mutable {
      if (gen == peer_gen_ && peer_) done(err, std::move(*rec));
    });
    return;
  }
  peer_->async_wait(Local::socket::wait_read, [this, gen = peer_gen_, done = std::move(done)](
                                                  const boost::system::error_code& ec) mutable {
    if (gen != peer_gen_ || !peer_ || stopped_) return;
    if (ec) return done(HandoverError::io, HandoverRecord{});
    bool would_block = false;
    const HandoverError e = recv_some(peer_->native_handle(), peer_buf_, peer_fd_, would_block);
    if (e != HandoverError::none) return done(e, HandoverRecord{});
    read_peer(std::move(done));
  });
}

void Handover::stop() {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ignored;
  peer_timer_.cancel();
  if (acceptor_.is_open()) {
    acceptor_.close(ignored);
    // Invariant 2: only a socket file that is still the one we bound, and never after a handover.
    struct stat st {};
    const std::string& path = ctx_.cfg.handover_socket;
    if (!handed_over_ && ::stat(path.c_str(), &st) == 0 && st.st_dev == bound_dev_ &&
        st.st_ino == bound_ino_)
      ::unlink(path.c_str());
  }
  if (peer_) peer_->close(ignored);
  peer_.reset();
  old_.close(ignored);
}

}  // namespace mana::gateway
