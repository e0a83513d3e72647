// tapbridge native host sockets: the I/O half of the socket uplink (src/io/host-sockets.ts).
//
// Thin by design: one system call per function, no TCP/UDP/ICMP logic. Every call returns a
// count, an fd or 0 on success and -errno on failure; only a wrong argument type throws
// (TypeError). A buffer range outside its ArrayBuffer, a port outside 0..65535, an fd < 0 or
// any number that is not an integer returns -EFAULT / -EINVAL / -EBADF without a system call. IPv4 addresses are uint32 in
// host order; the Int32Array outputs hold the same 32 bits (read them with `>>> 0`).
//
// SocketWatcher: an epoll set (level-triggered) under one uv_poll on the loop of the thread
// that created it; each wake-up is one epoll_wait(0) into the caller's typed arrays and one JS
// call. Context-aware like tapbridge.cc: no mutable state shared between threads.

#include <napi.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <string>

namespace {

constexpr int kKindTcp = 0, kKindUdp = 1, kKindPing = 2;
constexpr size_t kMaxWatchBatch = 1024;

[[noreturn]] void ThrowType(Napi::Env env, const char* fn, const char* name, const char* what) {
  throw Napi::TypeError::New(env, std::string(fn) + ": " + name + " must be " + what);
}

// A number argument that is not an integer (1.5, NaN, beyond 2^53): fails every range check below.
constexpr int64_t kNotInteger = INT64_MIN;

// A number argument as int64, or kNotInteger.
int64_t Num(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber()) ThrowType(info.Env(), fn, name, "a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= -9007199254740991.0 && d <= 9007199254740991.0) || d != std::trunc(d)) return kNotInteger;
  return static_cast<int64_t>(d);
}

bool FitsInt(int64_t v) { return v >= INT32_MIN && v <= INT32_MAX; }

Napi::ArrayBuffer Buf(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  if (info.Length() <= i || !info[i].IsArrayBuffer()) ThrowType(info.Env(), fn, "memory", "an ArrayBuffer");
  return info[i].As<Napi::ArrayBuffer>();
}

Napi::Int32Array I32(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (info.Length() <= i || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    ThrowType(info.Env(), fn, name, "an Int32Array");
  return info[i].As<Napi::Int32Array>();
}

Napi::Value Ret(const Napi::CallbackInfo& info, int64_t r) { return Napi::Number::New(info.Env(), static_cast<double>(r)); }

// The result of a system call: r, or -errno when it failed.
int64_t Sys(int64_t r) { return r < 0 ? -static_cast<int64_t>(errno) : r; }

// Resolves memory[off, off+len) or returns false (the caller answers -EFAULT).
bool Range(Napi::ArrayBuffer mem, int64_t off, int64_t len, uint8_t** out) {
  if (off < 0 || len < 0 || static_cast<uint64_t>(off) + static_cast<uint64_t>(len) > mem.ByteLength()) return false;
  *out = static_cast<uint8_t*>(mem.Data()) + off;
  return true;
}

bool MakeAddr(int64_t ip, int64_t port, sockaddr_in* sa) {
  if (ip < 0 || ip > 0xffffffffLL || port < 0 || port > 65535) return false;
  *sa = {};
  sa->sin_family = AF_INET;
  sa->sin_addr.s_addr = htonl(static_cast<uint32_t>(ip));
  sa->sin_port = htons(static_cast<uint16_t>(port));
  return true;
}

// Writes ip/port of sa into out[0], out[1] (out needs 2 elements).
void PutAddr(const sockaddr_in& sa, Napi::Int32Array& out) {
  if (out.ElementLength() < 2) return;
  out[0] = static_cast<int32_t>(ntohl(sa.sin_addr.s_addr));
  out[1] = ntohs(sa.sin_port);
}

int FdArg(const Napi::CallbackInfo& info, const char* fn) {
  int64_t fd = Num(info, 0, fn, "fd");
  return (fd < 0 || fd > INT32_MAX) ? -1 : static_cast<int>(fd);
}

#define FD_OR_EBADF(fn)                  \
  int fd = FdArg(info, fn);              \
  if (fd < 0) return Ret(info, -EBADF)

// ---------------------------------------------------------------------------------------------
// Sockets

Napi::Value SockOpen(const Napi::CallbackInfo& info) {
  int64_t kind = Num(info, 0, "sockOpen", "kind");
  int type, proto;
  switch (kind) {
    case kKindTcp: type = SOCK_STREAM, proto = IPPROTO_TCP; break;
    case kKindUdp: type = SOCK_DGRAM, proto = IPPROTO_UDP; break;
    case kKindPing: type = SOCK_DGRAM, proto = IPPROTO_ICMP; break;
    default: return Ret(info, -EINVAL);
  }
  return Ret(info, Sys(::socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto)));
}

Napi::Value SockConnect4(const Napi::CallbackInfo& info) {
  FD_OR_EBADF("sockConnect4");
  sockaddr_in sa;
  if (!MakeAddr(Num(info, 1, "sockConnect4", "ip"), Num(info, 2, "sockConnect4", "port"), &sa)) return Ret(info, -EINVAL);
  return Ret(info, Sys(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa)));
}

Napi::Value SockBind4(const Napi::CallbackInfo& info) {
  FD_OR_EBADF("sockBind4");
  sockaddr_in sa;
  if (!MakeAddr(Num(info, 1, "sockBind4", "ip"), Num(info, 2, "sockBind4", "port"), &sa)) return Ret(info, -EINVAL);
  return Ret(info, Sys(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa)));
}

Napi::Value SockListen(const Napi::CallbackInfo& info) {
  FD_OR_EBADF("sockListen");
  int64_t backlog = Num(info, 1, "sockListen", "backlog");
  if (backlog < 0 || backlog > INT32_MAX) return Ret(info, -EINVAL);
  return Ret(info, Sys(::listen(fd, static_cast<int>(backlog))));
}

Napi::Value SockAccept4(const Napi::CallbackInfo& info) {
  FD_OR_EBADF("sockAccept4");
  Napi::Int32Array peer = I32(info, 1, "sockAccept4", "peer");
  sockaddr_in sa = {};
  socklen_t n = sizeof sa;
  int r = ::accept4(fd, reinterpret_cast<sockaddr*>(&sa), &n, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (r < 0) return Ret(info, -errno);
  PutAddr(sa, peer);
  return Ret(info, r);
}

Napi::Value SockName(const Napi::CallbackInfo& info, bool peerSide) {
  const char* fn = peerSide ? "sockPeer4" : "sockName4";
  FD_OR_EBADF(fn);
  Napi::Int32Array out = I32(info, 1, fn, "out");
  sockaddr_in sa = {};
  socklen_t n = sizeof sa;
  int r = peerSide ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&sa), &n)
                   : ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &n);
  if (r < 0) return Ret(info, -errno);
  PutAddr(sa, out);
  return Ret(info, 0);
}
Napi::Value SockName4(const Napi::CallbackInfo& info) { return SockName(info, false); }
Napi::Value SockPeer4(const Napi::CallbackInfo& info) { return SockName(info, true); }

Napi::Value SockSetInt(const Napi::CallbackInfo& info) {
  FD_OR_EBADF("sockSetInt");
  int64_t level = Num(info, 1, "sockSetInt", "level"), name = Num(info, 2, "sockSetInt", "name");
  int64_t v = Num(info, 3, "sockSetInt", "value");
  if (!FitsInt(level) || !FitsInt(name) || !FitsInt(v)) return Ret(info, -EINVAL);
  int value = static_cast<int>(v);
  return Ret(info, Sys(::setsockopt(fd, static_cast<int>(level), static_cast<int>(name), &value, sizeof value)));
}

Napi::Value SockGetInt(const Napi::CallbackInfo& info) {
  FD_OR_EBADF("sockGetInt");
  int64_t level = Num(info, 1, "sockGetInt", "level"), name = Num(info, 2, "sockGetInt", "name");
  if (!FitsInt(level) || !FitsInt(name)) return Ret(info, -EINVAL);
  int value = 0;
  socklen_t n = sizeof value;
  if (::getsockopt(fd, static_cast<int>(level), static_cast<int>(name), &value, &n) < 0) return Ret(info, -errno);
  return Ret(info, value);
}

// recv / send of memory[off, off+len) on a connected socket, never blocking.
Napi::Value Transfer(const Napi::CallbackInfo& info, const char* fn, bool sending) {
  FD_OR_EBADF(fn);
  Napi::ArrayBuffer mem = Buf(info, 1, fn);
  int64_t off = Num(info, 2, fn, "off"), len = Num(info, 3, fn, "len");
  int64_t f = Num(info, 4, fn, "flags");
  uint8_t* p;
  if (!Range(mem, off, len, &p)) return Ret(info, -EFAULT);
  if (!FitsInt(f)) return Ret(info, -EINVAL);
  const int flags = static_cast<int>(f) | MSG_DONTWAIT;
  const size_t n = static_cast<size_t>(len);
  return Ret(info, Sys(sending ? ::send(fd, p, n, flags | MSG_NOSIGNAL) : ::recv(fd, p, n, flags)));
}
Napi::Value SockRecv(const Napi::CallbackInfo& info) { return Transfer(info, "sockRecv", false); }
Napi::Value SockSend(const Napi::CallbackInfo& info) { return Transfer(info, "sockSend", true); }

Napi::Value SockSendTo4(const Napi::CallbackInfo& info) {
  static const char* fn = "sockSendTo4";
  FD_OR_EBADF(fn);
  Napi::ArrayBuffer mem = Buf(info, 1, fn);
  int64_t off = Num(info, 2, fn, "off"), len = Num(info, 3, fn, "len");
  sockaddr_in sa;
  bool addrOk = MakeAddr(Num(info, 4, fn, "ip"), Num(info, 5, fn, "port"), &sa);
  uint8_t* p;
  if (!Range(mem, off, len, &p)) return Ret(info, -EFAULT);
  if (!addrOk) return Ret(info, -EINVAL);
  return Ret(info, Sys(::sendto(fd, p, static_cast<size_t>(len), MSG_DONTWAIT | MSG_NOSIGNAL,
                                reinterpret_cast<sockaddr*>(&sa), sizeof sa)));
}

Napi::Value SockRecvFrom4(const Napi::CallbackInfo& info) {
  static const char* fn = "sockRecvFrom4";
  FD_OR_EBADF(fn);
  Napi::ArrayBuffer mem = Buf(info, 1, fn);
  int64_t off = Num(info, 2, fn, "off"), len = Num(info, 3, fn, "len");
  Napi::Int32Array from = I32(info, 4, fn, "from");
  uint8_t* p;
  if (!Range(mem, off, len, &p)) return Ret(info, -EFAULT);
  sockaddr_in sa = {};
  socklen_t n = sizeof sa;
  ssize_t r = ::recvfrom(fd, p, static_cast<size_t>(len), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&sa), &n);
  if (r < 0) return Ret(info, -errno);
  PutAddr(sa, from);
  return Ret(info, r);
}

Napi::Value SockShutdown(const Napi::CallbackInfo& info) {
  FD_OR_EBADF("sockShutdown");
  int64_t how = Num(info, 1, "sockShutdown", "how");
  if (how < 0 || how > 2) return Ret(info, -EINVAL);
  return Ret(info, Sys(::shutdown(fd, static_cast<int>(how))));
}

Napi::Value QueueBytes(const Napi::CallbackInfo& info, const char* fn, unsigned long request) {
  FD_OR_EBADF(fn);
  int value = 0;
  if (::ioctl(fd, request, &value) < 0) return Ret(info, -errno);
  return Ret(info, value);
}
Napi::Value SockOutq(const Napi::CallbackInfo& info) { return QueueBytes(info, "sockOutq", SIOCOUTQ); }
Napi::Value SockInq(const Napi::CallbackInfo& info) { return QueueBytes(info, "sockInq", SIOCINQ); }

Napi::Value SockClose(const Napi::CallbackInfo& info) {
  FD_OR_EBADF("sockClose");
  return Ret(info, Sys(::close(fd)));
}

Napi::Value SockResetOnClose(const Napi::CallbackInfo& info) {
  FD_OR_EBADF("sockResetOnClose");
  struct linger l = {1, 0};
  return Ret(info, Sys(::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l)));
}

// ---------------------------------------------------------------------------------------------
// SocketWatcher

class SocketWatcher;

// The uv_poll handle lives in its own heap block: uv_close() completes asynchronously, possibly
// after the watcher object is gone, and the close callback frees it.
struct WatchPoller {
  uv_poll_t handle;
  SocketWatcher* owner;
  napi_async_cleanup_hook_handle hook;  // set when closing from the env cleanup hook
};

class SocketWatcher : public Napi::ObjectWrap<SocketWatcher> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "SocketWatcher",
                       {
                           InstanceMethod<&SocketWatcher::Watch>("watch"),
                           InstanceMethod<&SocketWatcher::Modify>("modify"),
                           InstanceMethod<&SocketWatcher::Unwatch>("unwatch"),
                           InstanceMethod<&SocketWatcher::Start>("start"),
                           InstanceMethod<&SocketWatcher::Stop>("stop"),
                           InstanceMethod<&SocketWatcher::CloseJs>("close"),
                       });
  }

  explicit SocketWatcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SocketWatcher>(info) {
    static const char* fn = "SocketWatcher";
    Napi::Env env = info.Env();
    env_ = env;
    Napi::Int32Array fds = I32(info, 0, fn, "fds");
    Napi::Int32Array events = I32(info, 1, fn, "events");
    if (info.Length() <= 2 || !info[2].IsFunction()) ThrowType(env, fn, "onEvents", "a function");
    if (fds.ElementLength() != events.ElementLength() || fds.ElementLength() == 0 ||
        fds.ElementLength() > kMaxWatchBatch)
      throw Napi::RangeError::New(env, "SocketWatcher: fds and events must have the same length, 1 to 1024");
    capacity_ = static_cast<int>(fds.ElementLength());

    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw Napi::Error::New(env, std::string("SocketWatcher: epoll_create1: ") + strerror(errno));

    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      CloseEpoll();
      throw Napi::Error::New(env, "SocketWatcher: napi_get_uv_event_loop failed");
    }
    WatchPoller* p = new WatchPoller();
    p->owner = this;
    p->hook = nullptr;
    int r = uv_poll_init(loop, &p->handle, epfd_);
    if (r < 0) {
      delete p;  // never registered with the loop
      CloseEpoll();
      throw Napi::Error::New(env, std::string("SocketWatcher: uv_poll_init: ") + uv_strerror(r));
    }
    p->handle.data = p;
    poller_ = p;
    if (napi_add_async_cleanup_hook(env, &SocketWatcher::OnEnvCleanup, p, &cleanupHook_) != napi_ok) {
      cleanupHook_ = nullptr;
      Release();
      throw Napi::Error::New(env, "SocketWatcher: napi_add_async_cleanup_hook failed");
    }
    fds_ = Napi::Persistent(static_cast<Napi::Object>(fds));
    events_ = Napi::Persistent(static_cast<Napi::Object>(events));
    onEvents_ = Napi::Persistent(info[2].As<Napi::Function>());
  }

  ~SocketWatcher() override {
    inDestructor_ = true;
    Release();
  }

 private:
  Napi::Value Control(const Napi::CallbackInfo& info, int op, const char* fn) {
    int64_t fd = Num(info, 0, fn, "fd");
    int64_t ev = op == EPOLL_CTL_DEL ? 0 : Num(info, 1, fn, "events");
    if (epfd_ < 0) return Ret(info, -EBADF);
    if (fd < 0 || fd > INT32_MAX) return Ret(info, -EBADF);
    if (ev < 0 || ev > UINT32_MAX) return Ret(info, -EINVAL);
    struct epoll_event e = {};
    e.events = static_cast<uint32_t>(ev);
    e.data.fd = static_cast<int>(fd);
    return Ret(info, Sys(::epoll_ctl(epfd_, op, static_cast<int>(fd), &e)));
  }
  Napi::Value Watch(const Napi::CallbackInfo& info) { return Control(info, EPOLL_CTL_ADD, "SocketWatcher.watch"); }
  Napi::Value Modify(const Napi::CallbackInfo& info) { return Control(info, EPOLL_CTL_MOD, "SocketWatcher.modify"); }
  Napi::Value Unwatch(const Napi::CallbackInfo& info) { return Control(info, EPOLL_CTL_DEL, "SocketWatcher.unwatch"); }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    if (poller_ == nullptr) throw Napi::Error::New(info.Env(), "SocketWatcher.start: watcher is closed");
    if (!polling_) {
      int r = uv_poll_start(&poller_->handle, UV_READABLE, &SocketWatcher::OnPoll);
      if (r < 0) throw Napi::Error::New(info.Env(), std::string("SocketWatcher.start: uv_poll_start: ") + uv_strerror(r));
      polling_ = true;
      if (!selfRef_) {
        Ref();  // a polling watcher must not be garbage collected
        selfRef_ = true;
      }
    }
    return info.Env().Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    StopPolling();
    return info.Env().Undefined();
  }

  Napi::Value CloseJs(const Napi::CallbackInfo& info) {
    Release();
    fds_.Reset();
    events_.Reset();
    onEvents_.Reset();
    return info.Env().Undefined();
  }

  void StopPolling() {
    if (polling_ && poller_ != nullptr) uv_poll_stop(&poller_->handle);
    polling_ = false;
    if (selfRef_) {
      selfRef_ = false;
      if (!inDestructor_) Unref();  // Unref() in a destructor would touch a dying reference
    }
  }

  void CloseEpoll() {
    if (epfd_ >= 0) ::close(epfd_);
    epfd_ = -1;
  }

  // Stops polling, closes the uv handle (freed in its close callback) and then the epoll fd.
  void Release() {
    StopPolling();
    if (poller_ != nullptr) {
      WatchPoller* p = poller_;
      poller_ = nullptr;
      p->owner = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), &SocketWatcher::OnClosed);
    }
    if (cleanupHook_ != nullptr) {
      napi_remove_async_cleanup_hook(cleanupHook_);
      cleanupHook_ = nullptr;
    }
    CloseEpoll();  // uv_poll_stop already removed it from the loop's own epoll set
  }

  static void OnClosed(uv_handle_t* h) {
    WatchPoller* p = static_cast<WatchPoller*>(h->data);
    if (p->hook != nullptr) napi_remove_async_cleanup_hook(p->hook);  // env teardown may go on
    delete p;
  }

  // Environment teardown (worker termination, process exit): close the handle asynchronously.
  static void OnEnvCleanup(napi_async_cleanup_hook_handle handle, void* arg) {
    WatchPoller* p = static_cast<WatchPoller*>(arg);
    SocketWatcher* w = p->owner;
    if (w != nullptr) {
      w->cleanupHook_ = nullptr;  // now owned by the poller's close callback
      w->polling_ = false;
      w->poller_ = nullptr;
      w->selfRef_ = false;  // the env is going away; references are reclaimed by it
      w->CloseEpoll();
      p->owner = nullptr;
    }
    p->hook = handle;
    uv_poll_stop(&p->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), &SocketWatcher::OnClosed);
  }

  static void OnPoll(uv_poll_t* h, int status, int events) {
    WatchPoller* p = static_cast<WatchPoller*>(h->data);
    if (p == nullptr || p->owner == nullptr) return;
    p->owner->Drain();
  }

  void Drain() {
    if (epfd_ < 0 || onEvents_.IsEmpty()) return;
    Napi::HandleScope scope(env_);
    Napi::Value self = Value();  // keeps this object alive while the callback runs
    Napi::Int32Array fds = fds_.Value().As<Napi::Int32Array>();
    Napi::Int32Array events = events_.Value().As<Napi::Int32Array>();
    // A detached buffer gives length 0: take no more events than both arrays can hold.
    int cap = capacity_;
    if (fds.ElementLength() < static_cast<size_t>(cap)) cap = static_cast<int>(fds.ElementLength());
    if (events.ElementLength() < static_cast<size_t>(cap)) cap = static_cast<int>(events.ElementLength());
    if (cap <= 0) return;
    struct epoll_event ready[kMaxWatchBatch];
    int n = ::epoll_wait(epfd_, ready, cap, 0);
    if (n <= 0) return;
    int32_t* f = fds.Data();
    int32_t* e = events.Data();
    for (int i = 0; i < n; i++) {
      f[i] = ready[i].data.fd;
      e[i] = static_cast<int32_t>(ready[i].events);
    }
    try {
      onEvents_.MakeCallback(self, {Napi::Number::New(env_, n)});
    } catch (const Napi::Error& err) {
      napi_fatal_exception(env_, err.Value());
    }
  }

  Napi::Env env_{nullptr};
  int epfd_ = -1;
  int capacity_ = 0;
  Napi::ObjectReference fds_;
  Napi::ObjectReference events_;
  Napi::FunctionReference onEvents_;
  WatchPoller* poller_ = nullptr;
  napi_async_cleanup_hook_handle cleanupHook_ = nullptr;
  bool polling_ = false;
  bool selfRef_ = false;
  bool inDestructor_ = false;
};

}  // namespace

// Adds the host-socket functions and SocketWatcher to the addon's exports (called from Init).
void InitSockets(Napi::Env env, Napi::Object exports) {
  exports.Set("sockOpen", Napi::Function::New<SockOpen>(env, "sockOpen"));
  exports.Set("sockConnect4", Napi::Function::New<SockConnect4>(env, "sockConnect4"));
  exports.Set("sockBind4", Napi::Function::New<SockBind4>(env, "sockBind4"));
  exports.Set("sockListen", Napi::Function::New<SockListen>(env, "sockListen"));
  exports.Set("sockAccept4", Napi::Function::New<SockAccept4>(env, "sockAccept4"));
  exports.Set("sockName4", Napi::Function::New<SockName4>(env, "sockName4"));
  exports.Set("sockPeer4", Napi::Function::New<SockPeer4>(env, "sockPeer4"));
  exports.Set("sockSetInt", Napi::Function::New<SockSetInt>(env, "sockSetInt"));
  exports.Set("sockGetInt", Napi::Function::New<SockGetInt>(env, "sockGetInt"));
  exports.Set("sockRecv", Napi::Function::New<SockRecv>(env, "sockRecv"));
  exports.Set("sockSend", Napi::Function::New<SockSend>(env, "sockSend"));
  exports.Set("sockSendTo4", Napi::Function::New<SockSendTo4>(env, "sockSendTo4"));
  exports.Set("sockRecvFrom4", Napi::Function::New<SockRecvFrom4>(env, "sockRecvFrom4"));
  exports.Set("sockShutdown", Napi::Function::New<SockShutdown>(env, "sockShutdown"));
  exports.Set("sockOutq", Napi::Function::New<SockOutq>(env, "sockOutq"));
  exports.Set("sockInq", Napi::Function::New<SockInq>(env, "sockInq"));
  exports.Set("sockClose", Napi::Function::New<SockClose>(env, "sockClose"));
  exports.Set("sockResetOnClose", Napi::Function::New<SockResetOnClose>(env, "sockResetOnClose"));
  exports.Set("SocketWatcher", SocketWatcher::Init(env));
}
