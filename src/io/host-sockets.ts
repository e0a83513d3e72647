/*
 * Host sockets for the socket uplink (rootless mode, `uplink: { type: socket }`): the typed
 * interface of native/sockets.cc, part of the same addon as the TAP code (native.ts).
 *
 * Everything here is non-blocking and never throws on a failing system call: calls return
 * a byte count, an fd or 0 on success and -errno on failure (-EAGAIN, -EINPROGRESS ...), so
 * the hot path handles errors as numbers. Addresses are IPv4 as unsigned 32-bit integers in
 * host order (10.0.2.2 = 0x0a000202; src/wire/ip4.ts parses and prints them). Buffers are the frame arena's memory, so socket data
 * lands where the frame toward the namespace is built and leaves from where the frame from
 * the namespace was read: no copy in JavaScript.
 *
 * A SocketWatcher is one epoll set under one uv_poll on the calling thread's loop: one
 * readable event, one epoll_wait into typed arrays, one JS call per batch of ready sockets.
 * All TCP/UDP/ICMP logic is in JavaScript (src/uplink-socket/).
 */
import { loadNative } from './native.js';

export const enum SocketKind {
  Tcp = 0,
  Udp = 1,
  /** SOCK_DGRAM + IPPROTO_ICMP: unprivileged ping (net.ipv4.ping_group_range). */
  Ping = 2,
}

/** Event bits of SocketWatcher (epoll's values). */
export const EV_IN = 0x001;
export const EV_OUT = 0x004;
export const EV_ERR = 0x008;
export const EV_HUP = 0x010;
export const EV_RDHUP = 0x2000;

/** recv/send flags (Linux values). */
export const MSG_PEEK = 0x02;
export const MSG_TRUNC = 0x20;
export const MSG_MORE = 0x8000;

/** Socket option levels and names used by the socket uplink (Linux values). */
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_ERROR = 4;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_KEEPALIVE = 9;
export const SO_PEEK_OFF = 42;
export const IPPROTO_TCP = 6;
export const TCP_NODELAY = 1;
export const TCP_MAXSEG = 2;
export const TCP_KEEPIDLE = 4;
export const TCP_KEEPINTVL = 5;
export const TCP_KEEPCNT = 6;
export const IPPROTO_IP = 0;
export const IP_TTL = 2;
export const IP_RECVERR = 11;

/** errno values (Linux). */
export const EAGAIN = 11;
export const EINPROGRESS = 115;
export const ECONNREFUSED = 111;
export const ECONNRESET = 104;
export const ETIMEDOUT = 110;
export const EHOSTUNREACH = 113;
export const ENETUNREACH = 101;
export const EMFILE = 24;
export const ENFILE = 23;
export const EPIPE = 32;
export const EACCES = 13;
export const EADDRINUSE = 98;

export interface SocketWatcher {
  /** Add fd with these events (EV_* bits; level-triggered). 0 or -errno. */
  watch(fd: number, events: number): number;
  /** Change the events of a watched fd. 0 or -errno. */
  modify(fd: number, events: number): number;
  /** Remove fd (before closing it). 0 or -errno. */
  unwatch(fd: number): number;
  /** Start polling on this thread's loop (keeps the loop alive while started). */
  start(): void;
  stop(): void;
  /** Stop and release; the epoll fd is closed, the watched fds are not. */
  close(): void;
}

export interface SocketWatcherConstructor {
  /**
   * On every wake-up: epoll_wait(timeout 0) for up to `fds.length` events, writes fd and
   * event bits into fds[i] / events[i] and calls onEvents(count) once (count > 0).
   * fds and events must have the same length (the batch capacity, at most 1024).
   */
  new (fds: Int32Array, events: Int32Array, onEvents: (count: number) => void): SocketWatcher;
}

export interface HostSocketsAddon {
  /** A non-blocking, close-on-exec IPv4 socket of this kind: fd or -errno. */
  sockOpen(kind: SocketKind): number;
  /** connect(): 0 (connected), -EINPROGRESS (wait for EV_OUT, then SO_ERROR), or -errno. */
  sockConnect4(fd: number, ip: number, port: number): number;
  /** bind(): 0 or -errno (port 0: any). */
  sockBind4(fd: number, ip: number, port: number): number;
  sockListen(fd: number, backlog: number): number;
  /** accept4 (non-blocking, close-on-exec): new fd or -errno (-EAGAIN: none waiting); peer[0] = ip, peer[1] = port. */
  sockAccept4(fd: number, peer: Int32Array): number;
  /** getsockname: 0 or -errno; out[0] = ip, out[1] = port. */
  sockName4(fd: number, out: Int32Array): number;
  /** getpeername: 0 or -errno; out[0] = ip, out[1] = port. */
  sockPeer4(fd: number, out: Int32Array): number;
  /** setsockopt with an int value: 0 or -errno. */
  sockSetInt(fd: number, level: number, name: number, value: number): number;
  /** getsockopt of an int (value >= 0) or -errno. SO_ERROR gives the pending errno (positive) or 0. */
  sockGetInt(fd: number, level: number, name: number): number;
  /** recv into memory[off, off+len) with MSG_DONTWAIT | flags: bytes, 0 at EOF, or -errno. */
  sockRecv(fd: number, memory: ArrayBuffer, off: number, len: number, flags: number): number;
  /** send memory[off, off+len) with MSG_DONTWAIT | MSG_NOSIGNAL | flags: bytes accepted or -errno. */
  sockSend(fd: number, memory: ArrayBuffer, off: number, len: number, flags: number): number;
  /** sendto an IPv4 address (UDP, ping): bytes or -errno. */
  sockSendTo4(fd: number, memory: ArrayBuffer, off: number, len: number, ip: number, port: number): number;
  /** recvfrom: bytes (or -errno); from[0] = ip, from[1] = port. */
  sockRecvFrom4(fd: number, memory: ArrayBuffer, off: number, len: number, from: Int32Array): number;
  /** shutdown(how: 0 RD, 1 WR, 2 RDWR): 0 or -errno. */
  sockShutdown(fd: number, how: number): number;
  /** Bytes in the send queue not yet acknowledged by the peer (SIOCOUTQ), or -errno. */
  sockOutq(fd: number): number;
  /** Bytes readable (SIOCINQ / FIONREAD), or -errno. */
  sockInq(fd: number): number;
  /** close(): 0 or -errno. */
  sockClose(fd: number): number;
  /** Set SO_LINGER {on, 0}: close() then sends RST (mirrors a RST from the namespace). 0 or -errno. */
  sockResetOnClose(fd: number): number;
  SocketWatcher: SocketWatcherConstructor;
}

/** The host-socket half of the addon (throws a clear error when the addon is not built). */
export function hostSockets(): HostSocketsAddon {
  return loadNative() as unknown as HostSocketsAddon;
}
