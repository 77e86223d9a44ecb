#pragma once
// A child process for tests: started with execv, stdout read line by line
// (and kept whole in output()), stderr inherited or appended to a file,
// stopped with a signal and reaped.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

namespace boxwatch::testing {

class Child {
 public:
  // `stderr_file`: append the child's stderr there instead of to ours.
  explicit Child(const std::vector<std::string>& argv, const std::string& stderr_file = "") {
    int fds[2];
    if (::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      if (!stderr_file.empty()) {
        const int err = ::open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (err >= 0) ::dup2(err, STDERR_FILENO);
      }
      ::close(fds[0]);
      ::close(fds[1]);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    fd_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0) Kill(SIGKILL);
    if (fd_ >= 0) ::close(fd_);
  }
  // Waits for a line starting with `prefix`; false on EOF or deadline. The
  // line is kept in last_line().
  bool WaitForLine(const std::string& prefix, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      size_t nl;
      while ((nl = buffer_.find('\n')) != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        if (line.rfind(prefix, 0) == 0) {
          last_line_ = line;
          return true;
        }
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) return false;
      buffer_.append(buf, static_cast<size_t>(n));
      output_.append(buf, static_cast<size_t>(n));
    }
  }
  // Reads what the child still writes until it closes stdout or `timeout`
  // passes; returns all it wrote.
  const std::string& ReadRest(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (fd_ >= 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      buffer_.append(buf, static_cast<size_t>(n));
      output_.append(buf, static_cast<size_t>(n));
    }
    return output_;
  }
  // Sends `sig` and goes on (SIGSTOP, SIGCONT).
  void Signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  // Sends `sig` and reaps the child; returns its wait status.
  int Kill(int sig) {
    if (pid_ <= 0) return -1;  // reaped already: never kill(-1, …), which signals every process
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  // Waits up to `timeout` for the child to exit by itself (then SIGKILLs it);
  // returns its wait status.
  int Wait(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return -1;  // reaped already
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      ::poll(nullptr, 0, 20);  // waitpid has no timeout of its own
    }
    return Kill(SIGKILL);
  }
  // How the child ended, in words, waiting up to `timeout` for it; one still
  // running then is SIGKILLed and said to be.
  std::string EndedHow(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return "already reaped";
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    for (;;) {
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (r < 0 && errno != EINTR) {
        const int e = errno;
        pid_ = -1;
        return std::string("cannot be waited for: ") + std::strerror(e);
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        Kill(SIGKILL);
        return "still running (now killed)";
      }
      ::poll(nullptr, 0, 20);  // waitpid has no timeout of its own
    }
    pid_ = -1;
    if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
    return "ended with wait status " + std::to_string(status);
  }
  bool started() const { return pid_ > 0; }
  bool running() const { return pid_ > 0; }
  const std::string& last_line() const { return last_line_; }
  // Everything read from the child's stdout so far.
  const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buffer_;
  std::string output_;
  std::string last_line_;
};


}  // namespace boxwatch::testing
