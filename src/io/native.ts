/*
 * Typed loader for the native I/O addon (native/tapbridge.cc, fd passing in native/fdpass.cc).
 *
 * The addon is thin: it opens TAPs and AF_PACKET sockets, reads batches of frames into the
 * frame arena (see ../engine/frame.ts for the slot layout) and transmits batches. All packet
 * logic stays in JavaScript.
 *
 * Loading is lazy: importing this module never fails, even when the addon is not built; the
 * first call through `native` loads it (and throws a clear error if it is missing). After
 * that, `native`'s properties are the addon's own functions, so calls have no extra hop.
 * The addon is context-aware and may be loaded in worker threads; a Reader polls on the
 * event loop of the thread that created it.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const enum FdKind {
  Tap = 0,
  Packet = 1,
}

/** Error thrown by failing system calls: message "<fn>(<ifname>): <syscall>: <strerror>". */
export interface NativeError extends Error {
  /** errno name, e.g. "EBUSY". */
  code: string;
  /** Positive errno number, e.g. 16. */
  errno: number;
  /** The failing call, e.g. "TUNSETIFF" or "bind". */
  syscall?: string;
}

export interface ReaderStats {
  rxFrames: number;
  rxBatches: number;
  rxErrors: number;
  lastErrno: number;
}

export interface NativeReader {
  /** Start polling (uv_poll UV_READABLE on this thread's loop). While polling, the reader is kept alive. */
  start(): void;
  /** Stop polling; start() may be called again. */
  stop(): void;
  /** Stop polling and release the memory/callback references. Does NOT close the fd. */
  close(): void;
  stats(): ReaderStats;
}

export interface NativeReaderConstructor {
  /**
   * Reads up to `budget` frames per readable event into ring slots 0..n-1
   * (slot i starts at ringOffset + i * slotSize; vnet header at the slot start, frame at +10),
   * writes frame lengths into lengths[0..n-1] and calls onBatch(n) once per batch.
   * Slots are reused only after onBatch returns. budget <= min(slotCount, MAX_BATCH).
   * onError(errno, message) is called once when an fd error persists; polling has stopped then.
   */
  new (
    fd: number,
    kind: FdKind,
    vnetHdr: boolean,
    memory: ArrayBuffer,
    ringOffset: number,
    slotSize: number,
    slotCount: number,
    budget: number,
    lengths: Int32Array,
    onBatch: (count: number) => void,
    onError: (errno: number, message: string) => void,
  ): NativeReader;
}

export interface BusyPollStats {
  micros: number;
  /** Spins started (one per batch that came in through a wake-up). */
  spins: number;
  /** Frames read while spinning (each one a wake-up saved). */
  spinFrames: number;
  /** CPU time spent spinning. */
  spinMicros: number;
}

export interface NativeAddon {
  /** Create or attach to a TAP (IFF_TAP|IFF_NO_PI [+IFF_VNET_HDR +offloads] [+IFF_MULTI_QUEUE]). '' = kernel picks tap%d. */
  openTap(name: string, vnetHdr: boolean, multiQueue: boolean): { fd: number; name: string };
  /** TUNSETCARRIER. */
  setTapCarrier(fd: number, up: boolean): void;
  /** AF_PACKET socket bound to ifname (promiscuous, ignores outgoing, optional PACKET_VNET_HDR). */
  openPacket(ifname: string, vnetHdr: boolean): { fd: number; ifindex: number };
  close(fd: number): void;
  /** mac: 12 lowercase hex digits. */
  ifInfo(ifname: string): { ifindex: number; mac: string; mtu: number };
  Reader: NativeReaderConstructor;
  /**
   * Send frames at slot offsets offsets[0..count-1] with frame lengths lengths[i].
   * Returns frames handed to the kernel; status gets [errorsSkipped, lastErrno, notSentBecauseEagain].
   * On EAGAIN it stops: the last `status[2]` frames (offsets[count-status[2]..]) were not sent.
   */
  transmit(
    fd: number,
    kind: FdKind,
    vnetHdr: boolean,
    memory: ArrayBuffer,
    offsets: Int32Array,
    lengths: Int32Array,
    count: number,
    status: Int32Array,
  ): number;
  /** Adaptive busy poll for this thread's readers: after a batch, keep reading for up to `micros` µs after the last frame (0: off). */
  setBusyPoll(micros: number): void;
  busyPollStats(): BusyPollStats;
  /** Pin the calling thread to these CPUs (sched_setaffinity). */
  setAffinity(cpus: number[]): void;
  /** The calling thread's kernel tid. */
  threadId(): number;
  /** A connected AF_UNIX SOCK_SEQPACKET pair (CLOEXEC) for fd passing (native/fdpass.cc). */
  socketPair(): [number, number];
  /** Send one message (1..65536 bytes) carrying up to 253 fds (SCM_RIGHTS); blocking. Returns bytes sent. */
  sendFds(fd: number, data: Buffer | string, fds: number[]): number;
  /**
   * Receive one message and its fds (CLOEXEC), waiting up to timeoutMs (-1: forever; 0: poll).
   * null: nothing within the timeout. An empty message without fds: the peer closed.
   */
  recvFds(fd: number, timeoutMs: number): { data: Buffer; fds: number[] } | null;
  /** Largest Reader budget (frames per batch). */
  readonly MAX_BATCH: number;
  readonly VNET_HDR_LEN: number;
}

const ADDON_REL = join('native', 'build', 'Release', 'tapbridge.node');

/** Locates native/build/Release/tapbridge.node: $TAPBRIDGE_NATIVE, else walk up from this file. */
export function nativeAddonPath(): string {
  const env = process.env.TAPBRIDGE_NATIVE;
  if (env) return env;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, ADDON_REL);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  // Not built: report the conventional location relative to dist/src/io/.
  return fileURLToPath(new URL('../../../' + ADDON_REL.split('\\').join('/'), import.meta.url));
}

let loaded: NativeAddon | null = null;

/** Loads (once) and returns the addon; throws if it is not built. */
export function loadNative(): NativeAddon {
  if (loaded) return loaded;
  const path = nativeAddonPath();
  const require = createRequire(import.meta.url);
  let addon: NativeAddon;
  try {
    addon = require(path) as NativeAddon;
  } catch (err) {
    const e = new Error(
      `tapbridge native addon not loadable from ${path} (build it: npm_config_nodedir=/usr npx node-gyp rebuild -C native): ${(err as Error).message}`,
    );
    (e as Error & { cause?: unknown }).cause = err;
    throw e;
  }
  loaded = addon;
  // Replace the lazy stubs so later calls go straight to native code.
  Object.assign(native, addon);
  return addon;
}

/** True if the addon can be loaded (does not throw). */
export function nativeAvailable(): boolean {
  try {
    loadNative();
    return true;
  } catch {
    return false;
  }
}

const LazyReader = function (this: unknown, ...args: ConstructorParameters<NativeReaderConstructor>): NativeReader {
  return new (loadNative().Reader)(...args);
} as unknown as NativeReaderConstructor;

/** The addon. Properties are lazy stubs until the first call loads it. */
export const native: NativeAddon = {
  openTap: (name, vnetHdr, multiQueue) => loadNative().openTap(name, vnetHdr, multiQueue),
  setTapCarrier: (fd, up) => loadNative().setTapCarrier(fd, up),
  openPacket: (ifname, vnetHdr) => loadNative().openPacket(ifname, vnetHdr),
  close: (fd) => loadNative().close(fd),
  ifInfo: (ifname) => loadNative().ifInfo(ifname),
  Reader: LazyReader,
  transmit: (fd, kind, vnetHdr, memory, offsets, lengths, count, status) =>
    loadNative().transmit(fd, kind, vnetHdr, memory, offsets, lengths, count, status),
  setBusyPoll: (micros) => loadNative().setBusyPoll(micros),
  busyPollStats: () => loadNative().busyPollStats(),
  setAffinity: (cpus) => loadNative().setAffinity(cpus),
  threadId: () => loadNative().threadId(),
  socketPair: () => loadNative().socketPair(),
  sendFds: (fd, data, fds) => loadNative().sendFds(fd, data, fds),
  recvFds: (fd, timeoutMs) => loadNative().recvFds(fd, timeoutMs),
  MAX_BATCH: 256,
  VNET_HDR_LEN: 10,
};
