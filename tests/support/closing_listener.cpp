#include "support/closing_listener.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace continuum::testing {

ClosingListener::ClosingListener() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd_, 16) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd_ >= 0) ::close(fd_);
    throw std::runtime_error("closing listener: cannot listen on loopback");
  }
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] {
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      int n = ::poll(&p, 1, 100);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || (p.revents & (POLLERR | POLLHUP | POLLNVAL))) return;
      if (stop_.load()) return;
      if (!(p.revents & POLLIN)) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      accepted_.fetch_add(1);  // before the reset: the client may be done right after it
      // The client's first message (libpq's SSLRequest) comes in before the reset, as it
      // does through the net-proxy (its connect to the stopped upstream takes that long):
      // a reset before it could fail the client's connect() itself, which libpq handles
      // by going on to the next host.
      pollfd first{c, POLLIN, 0};
      ::poll(&first, 1, 1000);
      linger l{1, 0};  // close with a reset, as the net-proxy does
      ::setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      ::close(c);
    }
  });
}

ClosingListener::~ClosingListener() {
  stop_.store(true);
  ::shutdown(fd_, SHUT_RDWR);
  thread_.join();
  ::close(fd_);
}

std::string ClosingListener::InFrontOf(const std::string& url) const {
  std::string multi = url;
  auto at = multi.find('@');
  if (at == std::string::npos) throw std::invalid_argument("closing listener: no '@' in the URL");
  multi.insert(at + 1, "127.0.0.1:" + std::to_string(port_) + ",");
  return multi;
}

}  // namespace continuum::testing
