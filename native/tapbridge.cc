// tapbridge native I/O addon: TAP devices, AF_PACKET sockets, batched RX/TX over a frame arena.
//
// Thin by design: I/O only, no packet logic. See src/engine/frame.ts for the memory contract:
// every slot starts with a 10-byte virtio_net_hdr, the Ethernet frame follows at +10; offsets
// crossing this boundary are slot offsets, lengths are frame lengths (without the header).
//
// Context-aware, no static mutable state shared between threads: the module may be loaded in
// several worker threads. Each Reader polls on the uv loop of the thread that created it; the
// busy-poll group (setBusyPoll) is per thread.

#include <napi.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

// native/sockets.cc: the host-socket half (socket uplink).
void InitSockets(Napi::Env env, Napi::Object exports);

namespace {

constexpr int kVnetHdrLen = 10;   // sizeof(struct virtio_net_hdr)
constexpr int kMaxBatch = 256;    // max frames per Reader batch / per sendmmsg chunk
constexpr int kSockBuf = 4 << 20; // SO_RCVBUF / SO_SNDBUF target

// ---------------------------------------------------------------------------------------------
// Errors

std::string ErrnoText(int err) {
  const char* d = strerrordesc_np(err);
  if (d != nullptr) return d;
  return "Unknown error " + std::to_string(err);
}

std::string ErrnoName(int err) {
  const char* n = strerrorname_np(err);
  if (n != nullptr) return n;
  return "E" + std::to_string(err);
}

// Throws Error("<where>: <syscall>: <strerror>") with .code (errno name), .errno (positive
// errno number) and .syscall.
[[noreturn]] void ThrowSys(Napi::Env env, const std::string& where, const char* syscall, int err) {
  Napi::Error e = Napi::Error::New(env, where + ": " + syscall + ": " + ErrnoText(err));
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  throw e;
}

[[noreturn]] void ThrowType(Napi::Env env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}

[[noreturn]] void ThrowRange(Napi::Env env, const std::string& msg) {
  throw Napi::RangeError::New(env, msg);
}

// RAII fd guard for open paths that may throw.
struct FdGuard {
  int fd;
  explicit FdGuard(int f) : fd(f) {}
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
};

// ---------------------------------------------------------------------------------------------
// Argument helpers

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (info.Length() <= i || !info[i].IsString())
    ThrowType(info.Env(), std::string(fn) + ": " + name + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (info.Length() <= i || !info[i].IsBoolean())
    ThrowType(info.Env(), std::string(fn) + ": " + name + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

// Integer argument in [lo, hi].
int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name, int64_t lo,
               int64_t hi) {
  if (info.Length() <= i || !info[i].IsNumber())
    ThrowType(info.Env(), std::string(fn) + ": " + name + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != static_cast<double>(static_cast<int64_t>(d)))
    ThrowRange(info.Env(), std::string(fn) + ": " + name + " must be an integer in [" + std::to_string(lo) + ", " +
                               std::to_string(hi) + "]");
  return static_cast<int64_t>(d);
}

int ArgFd(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  return static_cast<int>(ArgInt(info, i, fn, "fd", 0, INT32_MAX));
}

enum FdKind { kTap = 0, kPacket = 1 };

FdKind ArgKind(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  return static_cast<FdKind>(ArgInt(info, i, fn, "kind", 0, 1));
}

Napi::ArrayBuffer ArgArrayBuffer(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (info.Length() <= i || !info[i].IsArrayBuffer())
    ThrowType(info.Env(), std::string(fn) + ": " + name + " must be an ArrayBuffer");
  return info[i].As<Napi::ArrayBuffer>();
}

Napi::Int32Array ArgInt32Array(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (info.Length() <= i || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    ThrowType(info.Env(), std::string(fn) + ": " + name + " must be an Int32Array");
  return info[i].As<Napi::Int32Array>();
}

Napi::Function ArgFunction(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (info.Length() <= i || !info[i].IsFunction())
    ThrowType(info.Env(), std::string(fn) + ": " + name + " must be a function");
  return info[i].As<Napi::Function>();
}

// Copies an interface name into ifr_name, validating its length.
void SetIfName(Napi::Env env, struct ifreq& ifr, const std::string& name, const std::string& where,
               bool allowEmpty) {
  if (name.size() >= IFNAMSIZ || (!allowEmpty && name.empty()) || name.find('\0') != std::string::npos) {
    Napi::Error e = Napi::Error::New(
        env, where + ": invalid interface name (" + std::to_string(name.size()) + " bytes, max " +
                 std::to_string(IFNAMSIZ - 1) + ")");
    e.Set("code", Napi::String::New(env, "EINVAL"));
    e.Set("errno", Napi::Number::New(env, EINVAL));
    throw e;
  }
  memset(ifr.ifr_name, 0, IFNAMSIZ);
  memcpy(ifr.ifr_name, name.data(), name.size());
}

// ---------------------------------------------------------------------------------------------
// Open / control functions

Napi::Value OpenTap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "openTap", "name");
  bool vnet = ArgBool(info, 1, "openTap", "vnetHdr");
  bool mq = ArgBool(info, 2, "openTap", "multiQueue");
  std::string where = "openTap(" + name + ")";

  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  SetIfName(env, ifr, name, where, true);

  FdGuard fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (fd.fd < 0) ThrowSys(env, where, "open /dev/net/tun", errno);

  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (vnet) ifr.ifr_flags |= IFF_VNET_HDR;
  if (mq) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  if (ioctl(fd.fd, TUNSETIFF, &ifr) < 0) ThrowSys(env, where, "TUNSETIFF", errno);
  std::string actual(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  if (name.empty()) where = "openTap(" + actual + ")";

  if (vnet) {
    int sz = kVnetHdrLen;
    if (ioctl(fd.fd, TUNSETVNETHDRSZ, &sz) < 0) ThrowSys(env, where, "TUNSETVNETHDRSZ", errno);
    unsigned long off = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
    if (ioctl(fd.fd, TUNSETOFFLOAD, off) < 0) ThrowSys(env, where, "TUNSETOFFLOAD", errno);
  }

  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd.release()));
  out.Set("name", Napi::String::New(env, actual));
  return out;
}

Napi::Value SetTapCarrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "setTapCarrier");
  int up = ArgBool(info, 1, "setTapCarrier", "up") ? 1 : 0;
  if (ioctl(fd, TUNSETCARRIER, &up) < 0)
    ThrowSys(env, "setTapCarrier(fd " + std::to_string(fd) + ")", "TUNSETCARRIER", errno);
  return env.Undefined();
}

void SetBuf(int fd, int force, int normal) {
  int v = kSockBuf;
  if (setsockopt(fd, SOL_SOCKET, force, &v, sizeof v) < 0) {
    v = kSockBuf;
    (void)setsockopt(fd, SOL_SOCKET, normal, &v, sizeof v);  // best effort, capped by rmem_max
  }
}

Napi::Value OpenPacket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "openPacket", "ifname");
  bool vnet = ArgBool(info, 1, "openPacket", "vnetHdr");
  std::string where = "openPacket(" + name + ")";

  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  SetIfName(env, ifr, name, where, false);

  // Protocol 0: the socket receives nothing until bind() sets ETH_P_ALL together with the
  // ifindex, so it never sees frames of other interfaces.
  FdGuard fd(socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.fd < 0) ThrowSys(env, where, "socket(AF_PACKET)", errno);

  if (ioctl(fd.fd, SIOCGIFINDEX, &ifr) < 0) ThrowSys(env, where, "SIOCGIFINDEX", errno);
  int ifindex = ifr.ifr_ifindex;

  int one = 1;
  // Kernel >= 4.20. If unsupported (ENOPROTOOPT) the Reader drops PACKET_OUTGOING frames itself.
  if (setsockopt(fd.fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0 && errno != ENOPROTOOPT)
    ThrowSys(env, where, "PACKET_IGNORE_OUTGOING", errno);
  if (vnet && setsockopt(fd.fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0)
    ThrowSys(env, where, "PACKET_VNET_HDR", errno);
  SetBuf(fd.fd, SO_RCVBUFFORCE, SO_RCVBUF);
  SetBuf(fd.fd, SO_SNDBUFFORCE, SO_SNDBUF);

  struct packet_mreq mr;
  memset(&mr, 0, sizeof mr);
  mr.mr_ifindex = ifindex;
  mr.mr_type = PACKET_MR_PROMISC;
  if (setsockopt(fd.fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0)
    ThrowSys(env, where, "PACKET_ADD_MEMBERSHIP", errno);

  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = ifindex;
  if (bind(fd.fd, reinterpret_cast<struct sockaddr*>(&sll), sizeof sll) < 0) ThrowSys(env, where, "bind", errno);

  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd.release()));
  out.Set("ifindex", Napi::Number::New(env, ifindex));
  return out;
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "close");
  if (::close(fd) < 0 && errno != EINTR) ThrowSys(env, "close(fd " + std::to_string(fd) + ")", "close", errno);
  return env.Undefined();
}

Napi::Value IfInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "ifInfo", "ifname");
  std::string where = "ifInfo(" + name + ")";
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  SetIfName(env, ifr, name, where, false);

  FdGuard s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (s.fd < 0) {
    s.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s.fd < 0) ThrowSys(env, where, "socket", errno);
  }
  if (ioctl(s.fd, SIOCGIFINDEX, &ifr) < 0) ThrowSys(env, where, "SIOCGIFINDEX", errno);
  int ifindex = ifr.ifr_ifindex;
  if (ioctl(s.fd, SIOCGIFHWADDR, &ifr) < 0) ThrowSys(env, where, "SIOCGIFHWADDR", errno);
  char mac[13];
  const unsigned char* a = reinterpret_cast<const unsigned char*>(ifr.ifr_hwaddr.sa_data);
  snprintf(mac, sizeof mac, "%02x%02x%02x%02x%02x%02x", a[0], a[1], a[2], a[3], a[4], a[5]);
  if (ioctl(s.fd, SIOCGIFMTU, &ifr) < 0) ThrowSys(env, where, "SIOCGIFMTU", errno);
  int mtu = ifr.ifr_mtu;

  Napi::Object out = Napi::Object::New(env);
  out.Set("ifindex", Napi::Number::New(env, ifindex));
  out.Set("mac", Napi::String::New(env, mac));
  out.Set("mtu", Napi::Number::New(env, mtu));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Transmit

Napi::Value Transmit(const Napi::CallbackInfo& info) {
  static const char* fn = "transmit";
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, fn);
  FdKind kind = ArgKind(info, 1, fn);
  bool vnet = ArgBool(info, 2, fn, "vnetHdr");
  Napi::ArrayBuffer mem = ArgArrayBuffer(info, 3, fn, "memory");
  Napi::Int32Array offsets = ArgInt32Array(info, 4, fn, "offsets");
  Napi::Int32Array lengths = ArgInt32Array(info, 5, fn, "lengths");
  int64_t count = ArgInt(info, 6, fn, "count", 0, INT32_MAX);
  Napi::Int32Array status = ArgInt32Array(info, 7, fn, "status");
  if (status.ElementLength() < 3) ThrowRange(env, "transmit: status must have at least 3 elements");
  if (static_cast<size_t>(count) > offsets.ElementLength() || static_cast<size_t>(count) > lengths.ElementLength())
    ThrowRange(env, "transmit: count exceeds offsets/lengths length");

  uint8_t* base = static_cast<uint8_t*>(mem.Data());
  const uint64_t memLen = mem.ByteLength();
  const int32_t* offs = offsets.Data();
  const int32_t* lens = lengths.Data();
  int32_t* st = status.Data();

  // Validate everything before any I/O: a bad offset must never reach the kernel.
  for (int64_t i = 0; i < count; i++) {
    int64_t off = offs[i], len = lens[i];
    if (off < 0 || len < 0 || static_cast<uint64_t>(off) + kVnetHdrLen + static_cast<uint64_t>(len) > memLen)
      ThrowRange(env, "transmit: frame " + std::to_string(i) + " (offset " + std::to_string(off) + ", length " +
                          std::to_string(len) + ") lies outside memory");
  }

  int32_t errorsSkipped = 0, lastErrno = 0, notSent = 0;
  int32_t sent = 0;
  const int n = static_cast<int>(count);

  if (kind == kTap) {
    for (int i = 0; i < n; i++) {
      uint8_t* p = base + offs[i];
      size_t len = static_cast<size_t>(lens[i]);
      ssize_t r;
      do {
        r = vnet ? ::write(fd, p, len + kVnetHdrLen) : ::write(fd, p + kVnetHdrLen, len);
      } while (r < 0 && errno == EINTR);
      if (r >= 0) {
        sent++;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        lastErrno = errno;
        notSent = n - i;
        break;
      } else {
        errorsSkipped++;
        lastErrno = errno;
      }
    }
  } else {
    struct mmsghdr msgs[kMaxBatch];
    struct iovec iov[kMaxBatch];
    int i = 0;
    while (i < n) {
      int chunk = n - i < kMaxBatch ? n - i : kMaxBatch;
      for (int j = 0; j < chunk; j++) {
        uint8_t* p = base + offs[i + j];
        size_t len = static_cast<size_t>(lens[i + j]);
        iov[j].iov_base = vnet ? p : p + kVnetHdrLen;
        iov[j].iov_len = vnet ? len + kVnetHdrLen : len;
        memset(&msgs[j], 0, sizeof msgs[j]);
        msgs[j].msg_hdr.msg_iov = &iov[j];
        msgs[j].msg_hdr.msg_iovlen = 1;
      }
      int r = sendmmsg(fd, msgs, static_cast<unsigned>(chunk), MSG_DONTWAIT);
      if (r > 0) {
        sent += r;
        i += r;
      } else if (r == 0) {
        // Should not happen; avoid spinning.
        notSent = n - i;
        break;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        lastErrno = errno;
        notSent = n - i;
        break;
      } else {
        // The frame at i failed: skip it and go on with the rest.
        errorsSkipped++;
        lastErrno = errno;
        i++;
      }
    }
  }
  st[0] = errorsSkipped;
  st[1] = lastErrno;
  st[2] = notSent;
  return Napi::Number::New(env, sent);
}

// ---------------------------------------------------------------------------------------------
// Reader

class Reader;

// Adaptive busy poll (opt-in, per thread): after a batch, the thread keeps reading all of its
// polling readers without sleeping for up to busyNs after the last frame seen, so a reply
// that comes back within that window is taken without a wake-up. A spin never lasts longer
// than kMaxSpinNs, so timers and control messages on the loop still run under load.
struct BusyGroup {
  std::vector<Reader*> readers;
  int64_t busyNs = 0;
  bool spinning = false;
  uint64_t spins = 0, spinFrames = 0, spinNs = 0;
};
thread_local BusyGroup tBusy;
constexpr int64_t kMaxSpinNs = 2000000;

int64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// The uv_poll handle lives in its own heap block: uv_close() completes asynchronously, possibly
// after the Reader object is gone, and the close callback frees it.
struct Poller {
  uv_poll_t handle;
  Reader* owner;
  napi_async_cleanup_hook_handle hook;  // set when closing from the env cleanup hook
};

bool IsFatalErrno(int e) {
  return e == EBADF || e == EBADFD || e == EIO || e == ENXIO || e == ENODEV || e == EFAULT || e == ENOTSOCK ||
         e == EPIPE;
}

class Reader : public Napi::ObjectWrap<Reader> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Reader",
                       {
                           InstanceMethod<&Reader::Start>("start"),
                           InstanceMethod<&Reader::Stop>("stop"),
                           InstanceMethod<&Reader::CloseJs>("close"),
                           InstanceMethod<&Reader::Stats>("stats"),
                       });
  }

  explicit Reader(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Reader>(info) {
    static const char* fn = "Reader";
    Napi::Env env = info.Env();
    env_ = env;
    fd_ = ArgFd(info, 0, fn);
    kind_ = ArgKind(info, 1, fn);
    vnet_ = ArgBool(info, 2, fn, "vnetHdr");
    Napi::ArrayBuffer mem = ArgArrayBuffer(info, 3, fn, "memory");
    ringOffset_ = ArgInt(info, 4, fn, "ringOffset", 0, INT64_C(1) << 52);
    slotSize_ = ArgInt(info, 5, fn, "slotSize", kVnetHdrLen + 14, INT32_MAX);
    slotCount_ = ArgInt(info, 6, fn, "slotCount", 1, INT32_MAX);
    budget_ = static_cast<int>(ArgInt(info, 7, fn, "budget", 1, kMaxBatch));
    Napi::Int32Array lengths = ArgInt32Array(info, 8, fn, "lengths");
    Napi::Function onBatch = ArgFunction(info, 9, fn, "onBatch");
    Napi::Function onError = ArgFunction(info, 10, fn, "onError");

    if (budget_ > slotCount_) ThrowRange(env, "Reader: budget must be <= slotCount");
    ringBytes_ = static_cast<uint64_t>(slotCount_) * static_cast<uint64_t>(slotSize_);
    if (static_cast<uint64_t>(ringOffset_) + ringBytes_ > mem.ByteLength())
      ThrowRange(env, "Reader: ring [" + std::to_string(ringOffset_) + ", +" + std::to_string(ringBytes_) +
                          ") lies outside memory (" + std::to_string(mem.ByteLength()) + " bytes)");
    if (lengths.ElementLength() < static_cast<size_t>(budget_))
      ThrowRange(env, "Reader: lengths must have at least budget elements");

    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr)
      throw Napi::Error::New(env, "Reader: napi_get_uv_event_loop failed");

    Poller* p = new Poller();
    p->owner = this;
    p->hook = nullptr;
    int r = uv_poll_init(loop, &p->handle, fd_);
    if (r < 0) {
      delete p;  // never registered with the loop
      ThrowSys(env, "Reader(fd " + std::to_string(fd_) + ")", "uv_poll_init", -r);
    }
    p->handle.data = p;
    poller_ = p;
    if (napi_add_async_cleanup_hook(env, &Reader::OnEnvCleanup, p, &cleanupHook_) != napi_ok) {
      cleanupHook_ = nullptr;
      ClosePoller();
      throw Napi::Error::New(env, "Reader: napi_add_async_cleanup_hook failed");
    }

    memory_ = Napi::Persistent(mem);
    lengths_ = Napi::Persistent(static_cast<Napi::Object>(lengths));
    onBatch_ = Napi::Persistent(onBatch);
    onError_ = Napi::Persistent(onError);

    for (int i = 0; i < kMaxBatch; i++) {
      memset(&msgs_[i], 0, sizeof msgs_[i]);
      msgs_[i].msg_hdr.msg_iov = &iov_[i];
      msgs_[i].msg_hdr.msg_iovlen = 1;
      msgs_[i].msg_hdr.msg_name = &addrs_[i];
      msgs_[i].msg_hdr.msg_namelen = sizeof addrs_[i];
    }
  }

  ~Reader() override {
    inDestructor_ = true;
    ClosePoller();
  }

 private:
  // --- JS methods -------------------------------------------------------------------------

  Napi::Value Start(const Napi::CallbackInfo& info) {
    if (poller_ == nullptr) throw Napi::Error::New(info.Env(), "Reader.start: reader is closed");
    if (!polling_) {
      int r = uv_poll_start(&poller_->handle, UV_READABLE, &Reader::OnPoll);
      if (r < 0) ThrowSys(info.Env(), "Reader.start(fd " + std::to_string(fd_) + ")", "uv_poll_start", -r);
      polling_ = true;
      JoinBusyGroup();
      badRuns_ = 0;
      badErrno_ = 0;
      if (!selfRef_) {
        Ref();  // a polling reader must not be garbage collected
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
    ClosePoller();
    memory_.Reset();
    lengths_.Reset();
    onBatch_.Reset();
    onError_.Reset();
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("rxFrames", Napi::Number::New(env, static_cast<double>(rxFrames_)));
    o.Set("rxBatches", Napi::Number::New(env, static_cast<double>(rxBatches_)));
    o.Set("rxErrors", Napi::Number::New(env, static_cast<double>(rxErrors_)));
    o.Set("lastErrno", Napi::Number::New(env, lastErrno_));
    return o;
  }

  // --- Poll lifecycle ---------------------------------------------------------------------

  void JoinBusyGroup() {
    for (Reader* r : tBusy.readers)
      if (r == this) return;
    tBusy.readers.push_back(this);
  }

  void LeaveBusyGroup() {
    auto& v = tBusy.readers;
    for (size_t i = 0; i < v.size(); i++)
      if (v[i] == this) {
        v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
        return;
      }
  }

  void StopPolling() {
    if (polling_ && poller_ != nullptr) uv_poll_stop(&poller_->handle);
    polling_ = false;
    LeaveBusyGroup();
    if (selfRef_) {
      selfRef_ = false;
      Unref();
    }
  }

  // Stops polling, closes the uv handle (freed in the close callback), drops the cleanup hook.
  void ClosePoller() {
    if (polling_ && poller_ != nullptr) uv_poll_stop(&poller_->handle);
    polling_ = false;
    LeaveBusyGroup();
    if (selfRef_) {
      selfRef_ = false;
      // Unref() in a destructor would touch a dying reference; only do it when alive.
      if (!inDestructor_) Unref();
    }
    if (poller_ != nullptr) {
      Poller* p = poller_;
      poller_ = nullptr;
      p->owner = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), &Reader::OnClosed);
    }
    if (cleanupHook_ != nullptr) {
      napi_remove_async_cleanup_hook(cleanupHook_);
      cleanupHook_ = nullptr;
    }
  }

  static void OnClosed(uv_handle_t* h) {
    Poller* p = static_cast<Poller*>(h->data);
    if (p->hook != nullptr) napi_remove_async_cleanup_hook(p->hook);  // signals env teardown we are done
    delete p;
  }

  // Environment teardown (worker termination, process exit): close the handle asynchronously;
  // Node keeps running the loop until napi_remove_async_cleanup_hook is called in OnClosed.
  static void OnEnvCleanup(napi_async_cleanup_hook_handle handle, void* arg) {
    Poller* p = static_cast<Poller*>(arg);
    Reader* r = p->owner;
    if (r != nullptr) {
      r->cleanupHook_ = nullptr;  // now owned by the poller's close callback
      r->polling_ = false;
      r->LeaveBusyGroup();
      r->poller_ = nullptr;
      r->selfRef_ = false;        // the env is going away; references are reclaimed by it
      p->owner = nullptr;
    }
    p->hook = handle;
    uv_poll_stop(&p->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), &Reader::OnClosed);
  }

  // --- Receive ----------------------------------------------------------------------------

  static void OnPoll(uv_poll_t* h, int status, int events) {
    Poller* p = static_cast<Poller*>(h->data);
    if (p == nullptr || p->owner == nullptr) return;
    p->owner->HandlePoll(status);
  }

  // Reads one batch into slots 0..n-1. Returns the number of frames; *err gets the last
  // errno other than EAGAIN/EINTR (0 if none).
  int ReadBatch(uint8_t* ring, int32_t* lens, int* err) {
    *err = 0;
    const size_t slot = static_cast<size_t>(slotSize_);
    int n = 0;
    int lastErr = 0;
    int sameErrRun = 0;
    if (kind_ == kTap) {
      int attempts = 0;
      while (n < budget_ && attempts < budget_ + 8) {
        attempts++;
        uint8_t* s = ring + static_cast<size_t>(n) * slot;
        ssize_t r = vnet_ ? ::read(fd_, s, slot) : ::read(fd_, s + kVnetHdrLen, slot - kVnetHdrLen);
        if (r < 0) {
          int e = errno;
          if (e == EINTR) continue;
          if (e == EAGAIN || e == EWOULDBLOCK) break;
          rxErrors_++;
          lastErrno_ = e;
          *err = e;
          if (IsFatalErrno(e) || (e == lastErr && ++sameErrRun >= 2)) break;
          lastErr = e;
          continue;
        }
        if (vnet_) {
          if (r < kVnetHdrLen) {
            rxErrors_++;
            lastErrno_ = EPROTO;
            continue;
          }
          lens[n] = static_cast<int32_t>(r - kVnetHdrLen);
        } else {
          memset(s, 0, kVnetHdrLen);
          lens[n] = static_cast<int32_t>(r);
        }
        n++;
      }
      return n;
    }

    // AF_PACKET: recvmmsg, one syscall per batch (a few more when frames are skipped).
    int rounds = 0;
    while (n < budget_ && rounds < 8) {
      rounds++;
      int want = budget_ - n;
      for (int j = 0; j < want; j++) {
        uint8_t* s = ring + static_cast<size_t>(n + j) * slot;
        iov_[j].iov_base = vnet_ ? s : s + kVnetHdrLen;
        iov_[j].iov_len = vnet_ ? slot : slot - kVnetHdrLen;
        msgs_[j].msg_hdr.msg_namelen = sizeof addrs_[j];
        msgs_[j].msg_hdr.msg_flags = 0;
        msgs_[j].msg_len = 0;
      }
      int r = recvmmsg(fd_, msgs_, static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
      if (r < 0) {
        int e = errno;
        if (e == EINTR) continue;
        if (e == EAGAIN || e == EWOULDBLOCK) break;
        rxErrors_++;
        lastErrno_ = e;
        *err = e;
        if (IsFatalErrno(e) || (e == lastErr && ++sameErrRun >= 2)) break;
        lastErr = e;
        continue;
      }
      if (r == 0) break;
      // Keep frames in order, compacting over skipped ones (outgoing or truncated).
      int got = 0;
      for (int j = 0; j < r; j++) {
        const struct mmsghdr& m = msgs_[j];
        unsigned len = m.msg_len;
        bool skip = false;
        if (addrs_[j].sll_pkttype == PACKET_OUTGOING) {
          skip = true;  // only without PACKET_IGNORE_OUTGOING (kernel < 4.20)
        } else if (m.msg_hdr.msg_flags & MSG_TRUNC) {
          rxErrors_++;
          lastErrno_ = EMSGSIZE;
          skip = true;
        } else if (vnet_ && len < static_cast<unsigned>(kVnetHdrLen)) {
          rxErrors_++;
          lastErrno_ = EPROTO;
          skip = true;
        }
        if (skip) continue;
        uint8_t* dst = ring + static_cast<size_t>(n + got) * slot;
        if (got != j) {
          uint8_t* src = ring + static_cast<size_t>(n + j) * slot;
          memmove(dst, src, vnet_ ? len : len + kVnetHdrLen);
        }
        if (vnet_) {
          lens[n + got] = static_cast<int32_t>(len) - kVnetHdrLen;
        } else {
          memset(dst, 0, kVnetHdrLen);
          lens[n + got] = static_cast<int32_t>(len);
        }
        got++;
      }
      n += got;
      if (r < want) break;  // socket drained
    }
    return n;
  }

  void HandlePoll(int status) {
    int n = Drain(status);
    if (n > 0 && tBusy.busyNs > 0 && !tBusy.spinning) Spin();
  }

  // Busy poll: read every polling reader of this thread until none had a frame for busyNs
  // (or kMaxSpinNs passed). Readers may stop or close (even others) from their callbacks.
  static void Spin() {
    BusyGroup& g = tBusy;
    g.spinning = true;
    g.spins++;
    const int64_t start = MonotonicNs();
    int64_t last = start, now = start;
    while (now - last < g.busyNs && now - start < kMaxSpinNs) {
      for (size_t i = 0; i < g.readers.size(); i++) {
        Reader* r = g.readers[i];
        if (!r->polling_ || r->poller_ == nullptr) continue;
        int n = r->Drain(0);
        if (n > 0) {
          g.spinFrames += static_cast<uint64_t>(n);
          last = MonotonicNs();
        }
      }
      now = MonotonicNs();
    }
    g.spinNs += static_cast<uint64_t>(now - start);
    g.spinning = false;
  }

  // One batch: read, hand it to JS, handle errors. Returns the number of frames.
  int Drain(int status) {
    // Re-validate the memory each batch: the ArrayBuffer could have been detached (transferred).
    Napi::HandleScope scope(env_);
    Napi::Value self = Value();  // keeps this object alive while JS callbacks run
    Napi::ArrayBuffer mem = memory_.Value();
    Napi::Int32Array lengths = lengths_.Value().As<Napi::Int32Array>();
    if (mem.IsEmpty() || lengths.IsEmpty() ||
        static_cast<uint64_t>(ringOffset_) + ringBytes_ > mem.ByteLength() ||
        lengths.ElementLength() < static_cast<size_t>(budget_)) {
      StopPolling();
      rxErrors_++;
      lastErrno_ = EFAULT;
      CallError(EFAULT, "frame memory was detached or shrunk");
      return 0;
    }
    uint8_t* ring = static_cast<uint8_t*>(mem.Data()) + ringOffset_;
    int32_t* lens = lengths.Data();

    int err = 0;
    int n = ReadBatch(ring, lens, &err);
    if (status < 0 && err == 0 && n == 0) {
      // POLLERR without a readable error (libuv reports UV_EBADF and stops the handle).
      rxErrors_++;
      err = -status;
      lastErrno_ = err;
    }

    if (n > 0) {
      badRuns_ = 0;
      rxFrames_ += static_cast<uint64_t>(n);
      rxBatches_++;
    } else if (err != 0) {
      badRuns_ = (err == badErrno_) ? badRuns_ + 1 : 1;
      badErrno_ = err;
    }

    // libuv stops the handle itself on POLLERR: re-arm unless the error persists.
    bool giveUp = err != 0 && n == 0 && badRuns_ >= (IsFatalErrno(err) ? 3 : 64);
    if (status < 0 && polling_ && poller_ != nullptr && !giveUp) {
      int r = uv_poll_start(&poller_->handle, UV_READABLE, &Reader::OnPoll);
      if (r < 0) giveUp = true, err = -r;
    }

    if (n > 0) {
      try {
        onBatch_.MakeCallback(self, {Napi::Number::New(env_, n)});
      } catch (const Napi::Error& e) {
        napi_fatal_exception(env_, e.Value());
      }
      // The callback may have stopped or closed us.
      if (poller_ == nullptr) return n;
    }

    if (giveUp && polling_) {
      StopPolling();
      CallError(err, std::string("read: ") + ErrnoText(err));
    }
    return n;
  }

  void CallError(int err, const std::string& msg) {
    if (onError_.IsEmpty()) return;
    Napi::HandleScope scope(env_);
    Napi::Value self = Value();
    try {
      onError_.MakeCallback(self, {Napi::Number::New(env_, err), Napi::String::New(env_, msg)});
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env_, e.Value());
    }
  }

  Napi::Env env_{nullptr};
  int fd_ = -1;
  FdKind kind_ = kTap;
  bool vnet_ = false;
  int64_t ringOffset_ = 0;
  int64_t slotSize_ = 0;
  int64_t slotCount_ = 0;
  uint64_t ringBytes_ = 0;
  int budget_ = 1;

  Napi::Reference<Napi::ArrayBuffer> memory_;
  Napi::ObjectReference lengths_;
  Napi::FunctionReference onBatch_;
  Napi::FunctionReference onError_;

  Poller* poller_ = nullptr;
  napi_async_cleanup_hook_handle cleanupHook_ = nullptr;
  bool polling_ = false;
  bool selfRef_ = false;
  bool inDestructor_ = false;

  uint64_t rxFrames_ = 0, rxBatches_ = 0, rxErrors_ = 0;
  int lastErrno_ = 0;
  int badRuns_ = 0, badErrno_ = 0;

  struct mmsghdr msgs_[kMaxBatch];
  struct iovec iov_[kMaxBatch];
  struct sockaddr_ll addrs_[kMaxBatch];
};

// setBusyPoll(micros): this thread's readers busy-poll for up to `micros` after a batch (0: off).
Napi::Value SetBusyPoll(const Napi::CallbackInfo& info) {
  tBusy.busyNs = ArgInt(info, 0, "setBusyPoll", "micros", 0, 1000000) * 1000;
  return info.Env().Undefined();
}

// busyPollStats(): {micros, spins, spinFrames, spinMicros} of this thread.
Napi::Value BusyPollStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("micros", Napi::Number::New(env, static_cast<double>(tBusy.busyNs / 1000)));
  o.Set("spins", Napi::Number::New(env, static_cast<double>(tBusy.spins)));
  o.Set("spinFrames", Napi::Number::New(env, static_cast<double>(tBusy.spinFrames)));
  o.Set("spinMicros", Napi::Number::New(env, static_cast<double>(tBusy.spinNs / 1000)));
  return o;
}

// setAffinity(cpus): pin the calling thread to these CPUs (sched_setaffinity on its tid).
Napi::Value SetAffinity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) ThrowType(env, "setAffinity: cpus must be an array of CPU numbers");
  Napi::Array a = info[0].As<Napi::Array>();
  cpu_set_t set;
  CPU_ZERO(&set);
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a.Get(i);
    if (!v.IsNumber()) ThrowType(env, "setAffinity: cpus must be numbers");
    int64_t c = v.As<Napi::Number>().Int64Value();
    if (c < 0 || c >= CPU_SETSIZE) ThrowRange(env, "setAffinity: CPU " + std::to_string(c) + " out of range");
    CPU_SET(static_cast<int>(c), &set);
  }
  if (sched_setaffinity(0, sizeof set, &set) != 0) ThrowSys(env, "setAffinity", "sched_setaffinity", errno);
  return env.Undefined();
}

// threadId(): the calling thread's kernel tid (for /proc/PID/task/TID).
Napi::Value ThreadId(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(syscall(SYS_gettid)));
}

}  // namespace

void InitFdPass(Napi::Env env, Napi::Object exports);  // fdpass.cc

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitFdPass(env, exports);
  exports.Set("setBusyPoll", Napi::Function::New<SetBusyPoll>(env, "setBusyPoll"));
  exports.Set("busyPollStats", Napi::Function::New<BusyPollStats>(env, "busyPollStats"));
  exports.Set("setAffinity", Napi::Function::New<SetAffinity>(env, "setAffinity"));
  exports.Set("threadId", Napi::Function::New<ThreadId>(env, "threadId"));
  exports.Set("openTap", Napi::Function::New<OpenTap>(env, "openTap"));
  exports.Set("setTapCarrier", Napi::Function::New<SetTapCarrier>(env, "setTapCarrier"));
  exports.Set("openPacket", Napi::Function::New<OpenPacket>(env, "openPacket"));
  exports.Set("close", Napi::Function::New<Close>(env, "close"));
  exports.Set("ifInfo", Napi::Function::New<IfInfo>(env, "ifInfo"));
  exports.Set("transmit", Napi::Function::New<Transmit>(env, "transmit"));
  exports.Set("Reader", Reader::Init(env));
  exports.Set("MAX_BATCH", Napi::Number::New(env, kMaxBatch));
  exports.Set("VNET_HDR_LEN", Napi::Number::New(env, kVnetHdrLen));
  InitSockets(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(tapbridge, Init)
