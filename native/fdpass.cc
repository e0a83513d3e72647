// File-descriptor passing over unix sockets (SCM_RIGHTS), for the rootless privilege split:
// the agent inside the user namespace opens the TAPs and sends their fds to the parent,
// which runs the data plane in the starting network namespace (docs/architecture.md,
// "Rootless mode"). I/O only: a socket pair, one bounded message with fds out, one in.
//
// The pair is SOCK_SEQPACKET (message boundaries kept, so each message arrives whole with
// its fds; a closed peer reads as an empty message) and CLOEXEC; the child's end is dup'ed
// onto its fd 3 by the spawner (dup2 clears CLOEXEC).

#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

constexpr size_t kMaxFds = 253;           // SCM_MAX_FD
constexpr size_t kMaxMessage = 64 * 1024; // bytes of one message

[[noreturn]] void ThrowErrno(Napi::Env env, const std::string& where, int err) {
  Napi::Error e = Napi::Error::New(env, where + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  const char* name = strerrorname_np(err);
  e.Set("code", Napi::String::New(env, name != nullptr ? name : "EUNKNOWN"));
  throw e;
}

int FdArg(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": fd must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

// socketPair() -> [fd, fd]
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) ThrowErrno(env, "socketPair: socketpair", errno);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(uint32_t(0), Napi::Number::New(env, sv[0]));
  out.Set(uint32_t(1), Napi::Number::New(env, sv[1]));
  return out;
}

// sendFds(fd, data: Buffer|string, fds: number[]) -> bytes sent. Blocking; one message.
Napi::Value SendFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "sendFds");
  std::string data;
  if (info.Length() > 1 && info[1].IsBuffer()) {
    auto b = info[1].As<Napi::Buffer<char>>();
    data.assign(b.Data(), b.Length());
  } else if (info.Length() > 1 && info[1].IsString()) {
    data = info[1].As<Napi::String>().Utf8Value();
  } else {
    throw Napi::TypeError::New(env, "sendFds: data must be a Buffer or a string");
  }
  if (data.empty() || data.size() > kMaxMessage) throw Napi::RangeError::New(env, "sendFds: data must be 1.." + std::to_string(kMaxMessage) + " bytes");
  if (info.Length() < 3 || !info[2].IsArray()) throw Napi::TypeError::New(env, "sendFds: fds must be an array");
  Napi::Array arr = info[2].As<Napi::Array>();
  if (arr.Length() > kMaxFds) throw Napi::RangeError::New(env, "sendFds: at most " + std::to_string(kMaxFds) + " fds per message");
  std::vector<int> fds(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) fds[i] = arr.Get(i).As<Napi::Number>().Int32Value();

  struct iovec iov = {const_cast<char*>(data.data()), data.size()};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * kMaxFds));
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do n = sendmsg(fd, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(env, "sendFds: sendmsg", errno);
  return Napi::Number::New(env, double(n));
}

// recvFds(fd, timeoutMs) -> { data: Buffer, fds: number[] } | null (timeout). An empty
// message without fds: the peer closed. Received fds are CLOEXEC. A truncated message is an
// error (its fds are closed).
Napi::Value RecvFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "recvFds");
  int timeout = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : -1;
  struct pollfd p = {fd, POLLIN, 0};
  int r;
  do r = poll(&p, 1, timeout);
  while (r < 0 && errno == EINTR);
  if (r < 0) ThrowErrno(env, "recvFds: poll", errno);
  if (r == 0) return env.Null();

  std::vector<char> buf(kMaxMessage);
  std::vector<char> control(CMSG_SPACE(sizeof(int) * kMaxFds));
  struct iovec iov = {buf.data(), buf.size()};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n;
  do n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) return env.Null();
  if (n < 0) ThrowErrno(env, "recvFds: recvmsg", errno);

  std::vector<int> fds;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const int* in = reinterpret_cast<const int*>(CMSG_DATA(c));
    for (size_t i = 0; i < count; i++) fds.push_back(in[i]);
  }
  if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
    for (int f : fds) close(f);
    throw Napi::Error::New(env, "recvFds: message or its fds truncated");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("data", Napi::Buffer<char>::Copy(env, buf.data(), size_t(n)));
  Napi::Array arr = Napi::Array::New(env, fds.size());
  for (uint32_t i = 0; i < fds.size(); i++) arr.Set(i, Napi::Number::New(env, fds[i]));
  out.Set("fds", arr);
  return out;
}

}  // namespace

void InitFdPass(Napi::Env env, Napi::Object exports) {
  exports.Set("socketPair", Napi::Function::New<SocketPair>(env, "socketPair"));
  exports.Set("sendFds", Napi::Function::New<SendFds>(env, "sendFds"));
  exports.Set("recvFds", Napi::Function::New<RecvFds>(env, "recvFds"));
}
