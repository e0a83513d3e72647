/*
 * Capture writer: classic pcap (LINKTYPE_ETHERNET, microsecond or nanosecond magic) and
 * pcapng (SHB, one IDB per interface with if_name + if_tsresol, one EPB per packet with the
 * original length, epb_flags direction and an optional per-packet comment).
 *
 * Input:  write(ifIndex, buf, off, len, tsMs, direction[, commentId]) per frame.
 *         tsMs is wall-clock milliseconds since the Unix epoch as a float (plus opts.tsOffsetMs,
 *         so a monotonic clock can be used with a fixed offset).
 * Output: chunks handed to `sink(chunk)`; sink returns false when it is backpressured
 *         (e.g. fs.WriteStream.write). After that the writer drops (and counts) packets until
 *         `resume()` is called (wire it to the stream's 'drain' event; captureToStream does).
 * Per-packet cost: one copy of the record into a preallocated staging buffer (default 1 MiB);
 *         the staging buffer is handed to the sink as one copied chunk when full, on flush()
 *         (the engine calls flush every batch/tick) and on stop(). No per-packet allocation
 *         for frames < 256 bytes; longer frames use one subarray view for a native copy
 *         (measured 10-17x faster than a JS copy loop; see copyIn).
 * Config: format, snaplen, maxPackets, maxBytes (output bytes incl. file headers),
 *         interfaces (names; pcapng IDB per entry, pcap ignores ifIndex), tsResolution
 *         ('us' | 'ns'), comments (strings pre-encoded once; write() takes an index),
 *         stagingBytes, onStop(reason).
 * Counters: packets (records written), bytes (output bytes incl. headers),
 *         droppedBackpressure (packets dropped while the sink was backpressured),
 *         flushes (chunks handed to the sink).
 * Stops itself with "max_packets reached" / "max_bytes reached"; stop(reason) flushes and
 * calls onStop once; later writes return false.
 */

export const LINKTYPE_ETHERNET = 1;
export const PCAP_MAGIC_US = 0xa1b2c3d4;
export const PCAP_MAGIC_NS = 0xa1b23c4d;
export const PCAPNG_SHB = 0x0a0d0d0a;
export const PCAPNG_IDB = 0x00000001;
export const PCAPNG_EPB = 0x00000006;
export const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;

export const DIR_IN = 0;
export const DIR_OUT = 1;

export interface CaptureOptions {
  format: 'pcap' | 'pcapng';
  snaplen: number;
  maxPackets?: number;
  maxBytes?: number;
  /** Interface names: one pcapng IDB each (ifIndex = position). */
  interfaces: string[];
  /** Timestamp resolution: 'us' (default) or 'ns'. */
  tsResolution?: 'us' | 'ns';
  /** Per-packet comments (pcapng opt_comment), referenced by index in write(). */
  comments?: string[];
  /** Added to every tsMs (e.g. Date.now() - performance.now() when tsMs is monotonic). */
  tsOffsetMs?: number;
  /** Staging buffer size, default 1 MiB (grown to fit one max-size record). */
  stagingBytes?: number;
  /** Called once when the capture stops (limit reached or stop()). */
  onStop?: (reason: string) => void;
}

export interface CaptureCounters {
  packets: number;
  bytes: number;
  droppedBackpressure: number;
  flushes: number;
}

const TWO32 = 4294967296;
/** Frames at least this long are copied with TypedArray.set (see copyIn). */
const COPY_NATIVE_MIN = 256;
const enc = new TextEncoder();

function pad4(n: number): number {
  return (n + 3) & ~3;
}

export class CaptureWriter {
  readonly format: 'pcap' | 'pcapng';
  readonly snaplen: number;
  readonly counters: CaptureCounters = { packets: 0, bytes: 0, droppedBackpressure: 0, flushes: 0 };
  private _stopped: string | null = null;
  private backpressured = false;
  private readonly ns: boolean;
  private readonly maxPackets: number;
  private readonly maxBytes: number;
  private readonly nIf: number;
  private readonly tsOffsetMs: number;
  private readonly comments: Uint8Array[];
  private readonly staging: Uint8Array;
  private readonly dv: DataView;
  private used = 0;
  private srcBuffer: ArrayBufferLike | null = null;
  private srcDv: DataView | null = null;
  private readonly onStop: ((reason: string) => void) | undefined;

  constructor(
    opts: CaptureOptions,
    private readonly sink: (chunk: Uint8Array) => boolean,
  ) {
    if (opts.format !== 'pcap' && opts.format !== 'pcapng') throw new RangeError(`format: expected 'pcap' or 'pcapng'`);
    if (!Number.isInteger(opts.snaplen) || opts.snaplen < 1 || opts.snaplen > 262144) {
      throw new RangeError('snaplen: expected an integer 1..262144');
    }
    if (opts.format === 'pcapng' && opts.interfaces.length === 0) throw new RangeError('interfaces: at least one needed');
    this.format = opts.format;
    this.snaplen = opts.snaplen;
    this.ns = opts.tsResolution === 'ns';
    this.maxPackets = opts.maxPackets ?? Infinity;
    this.maxBytes = opts.maxBytes ?? Infinity;
    this.nIf = Math.max(1, opts.interfaces.length);
    this.tsOffsetMs = opts.tsOffsetMs ?? 0;
    this.onStop = opts.onStop;
    this.comments = (opts.comments ?? []).map((c) => enc.encode(c));
    let maxComment = 0;
    for (const c of this.comments) maxComment = Math.max(maxComment, c.length);
    const maxRecord = 32 + pad4(this.snaplen) + 12 + 4 + pad4(maxComment) + 4 + 4;
    const header = this.buildHeader(opts);
    const size = Math.max(opts.stagingBytes ?? 1 << 20, maxRecord, header.length);
    this.staging = new Uint8Array(size);
    this.dv = new DataView(this.staging.buffer);
    this.staging.set(header, 0);
    this.used = header.length;
    this.counters.bytes = header.length;
  }

  get stopped(): string | null {
    return this._stopped;
  }

  /** True while the sink is backpressured (writes are being dropped). */
  get isBackpressured(): boolean {
    return this.backpressured;
  }

  private buildHeader(opts: CaptureOptions): Uint8Array {
    if (opts.format === 'pcap') {
      const h = new Uint8Array(24);
      const v = new DataView(h.buffer);
      v.setUint32(0, this.ns ? PCAP_MAGIC_NS : PCAP_MAGIC_US, true);
      v.setUint16(4, 2, true);
      v.setUint16(6, 4, true);
      // thiszone, sigfigs = 0
      v.setUint32(16, this.snaplen, true);
      v.setUint32(20, LINKTYPE_ETHERNET, true);
      return h;
    }
    const parts: Uint8Array[] = [];
    // SHB with shb_userappl
    const appl = enc.encode('tapbridge');
    const shbLen = 28 + 4 + pad4(appl.length) + 4;
    const shb = new Uint8Array(shbLen);
    let v = new DataView(shb.buffer);
    v.setUint32(0, PCAPNG_SHB, true);
    v.setUint32(4, shbLen, true);
    v.setUint32(8, PCAPNG_BYTE_ORDER_MAGIC, true);
    v.setUint16(12, 1, true);
    v.setUint16(14, 0, true);
    v.setInt32(16, -1, true); // section length unknown
    v.setInt32(20, -1, true);
    v.setUint16(24, 4, true); // shb_userappl
    v.setUint16(26, appl.length, true);
    shb.set(appl, 28);
    // opt_endofopt = 4 zero bytes already there
    v.setUint32(shbLen - 4, shbLen, true);
    parts.push(shb);
    for (const name of opts.interfaces) {
      const nm = enc.encode(name);
      const idbLen = 16 + 4 + pad4(nm.length) + 4 + 4 + 4 + 4;
      const idb = new Uint8Array(idbLen);
      v = new DataView(idb.buffer);
      v.setUint32(0, PCAPNG_IDB, true);
      v.setUint32(4, idbLen, true);
      v.setUint16(8, LINKTYPE_ETHERNET, true);
      v.setUint32(12, this.snaplen, true);
      let p = 16;
      v.setUint16(p, 2, true); // if_name
      v.setUint16(p + 2, nm.length, true);
      idb.set(nm, p + 4);
      p += 4 + pad4(nm.length);
      v.setUint16(p, 9, true); // if_tsresol
      v.setUint16(p + 2, 1, true);
      idb[p + 4] = this.ns ? 9 : 6;
      p += 8;
      p += 4; // opt_endofopt
      v.setUint32(p, idbLen, true);
      parts.push(idb);
    }
    const total = parts.reduce((s, b) => s + b.length, 0);
    const out = new Uint8Array(total);
    let o = 0;
    for (const b of parts) {
      out.set(b, o);
      o += b.length;
    }
    return out;
  }

  /**
   * Record one frame. Returns false when it was not written (stopped, backpressured, or the
   * maxBytes limit). `direction`: 0 inbound, 1 outbound (pcapng epb_flags). `commentId`
   * indexes opts.comments (-1: none; pcapng only).
   */
  write(ifIndex: number, buf: Uint8Array, off: number, len: number, tsMs: number, direction: number, commentId = -1): boolean {
    if (this._stopped !== null) return false;
    if (this.backpressured) {
      this.counters.droppedBackpressure++;
      return false;
    }
    const cap = len < this.snaplen ? len : this.snaplen;
    const comment = commentId >= 0 && commentId < this.comments.length ? this.comments[commentId]! : null;
    let recLen: number;
    if (this.format === 'pcap') recLen = 16 + cap;
    else recLen = 28 + pad4(cap) + 8 /* epb_flags */ + (comment !== null ? 4 + pad4(comment.length) : 0) + 4 /* endofopt */ + 4;

    if (this.counters.bytes + recLen > this.maxBytes) {
      this.stop('max_bytes reached');
      return false;
    }
    if (this.used + recLen > this.staging.length) {
      this.flush();
      if (this.backpressured) {
        this.counters.droppedBackpressure++;
        return false;
      }
    }

    // timestamp split without allocation; all intermediate values are exact doubles
    const t = tsMs + this.tsOffsetMs;
    let sec = Math.floor(t / 1000);
    let frac = this.ns ? Math.round((t - sec * 1000) * 1e6) : Math.round((t - sec * 1000) * 1e3);
    const fracMax = this.ns ? 1e9 : 1e6;
    if (frac >= fracMax) {
      sec++;
      frac -= fracMax;
    }
    if (sec < 0) {
      sec = 0;
      frac = 0;
    }

    const dv = this.dv;
    const s = this.staging;
    let p = this.used;
    if (this.format === 'pcap') {
      dv.setUint32(p, sec >>> 0, true);
      dv.setUint32(p + 4, frac, true);
      dv.setUint32(p + 8, cap, true);
      dv.setUint32(p + 12, len, true);
      this.copyIn(buf, off, cap, p + 16);
      p += 16 + cap;
    } else {
      let hi: number;
      let lo: number;
      if (this.ns) {
        // sec*1e9 + frac = (sec*1953125)*512 + frac; sec*1953125 < 2^53 for any sane date.
        const m = sec * 1953125;
        hi = Math.floor(m / 8388608); // 2^23
        let low = (m - hi * 8388608) * 512 + frac;
        if (low >= TWO32) {
          hi += 1;
          low -= TWO32;
        }
        lo = low;
      } else {
        const total = sec * 1e6 + frac;
        hi = Math.floor(total / TWO32);
        lo = total - hi * TWO32;
      }
      dv.setUint32(p, PCAPNG_EPB, true);
      dv.setUint32(p + 4, recLen, true);
      dv.setUint32(p + 8, ifIndex < this.nIf && ifIndex >= 0 ? ifIndex : 0, true);
      dv.setUint32(p + 12, hi, true);
      dv.setUint32(p + 16, lo, true);
      dv.setUint32(p + 20, cap, true);
      dv.setUint32(p + 24, len, true);
      this.copyIn(buf, off, cap, p + 28);
      p += 28 + cap;
      while ((p & 3) !== 0) s[p++] = 0;
      // epb_flags: bits 0-1 direction (01 inbound, 10 outbound)
      dv.setUint16(p, 2, true);
      dv.setUint16(p + 2, 4, true);
      dv.setUint32(p + 4, direction === DIR_OUT ? 2 : 1, true);
      p += 8;
      if (comment !== null) {
        dv.setUint16(p, 1, true);
        dv.setUint16(p + 2, comment.length, true);
        s.set(comment, p + 4);
        p += 4 + comment.length;
        while ((p & 3) !== 0) s[p++] = 0;
      }
      dv.setUint32(p, 0, true); // opt_endofopt
      dv.setUint32(p + 4, recLen, true);
      p += 8;
    }
    this.used = p;
    this.counters.packets++;
    this.counters.bytes += recLen;
    if (this.counters.packets >= this.maxPackets) this.stop('max_packets reached');
    return true;
  }

  /**
   * Copy buf[off, off+n) into staging at dst. Small frames: 4-byte DataView loop (no
   * allocation; the source DataView is cached per source ArrayBuffer, i.e. once for the arena).
   * Frames >= COPY_NATIVE_MIN bytes: TypedArray.set over a subarray view -- one short-lived
   * view object, ~10x faster than any JS loop at 1500 B and ~17x at 64 KiB (measured), so the
   * allocation is amortised over the copy.
   */
  private copyIn(buf: Uint8Array, off: number, n: number, dst: number): void {
    if (n >= COPY_NATIVE_MIN) {
      this.staging.set(buf.subarray(off, off + n), dst);
      return;
    }
    if (buf.buffer !== this.srcBuffer) {
      this.srcBuffer = buf.buffer;
      this.srcDv = new DataView(buf.buffer);
    }
    const sdv = this.srcDv!;
    const ddv = this.dv;
    const so = buf.byteOffset + off;
    let i = 0;
    for (; i + 4 <= n; i += 4) ddv.setInt32(dst + i, sdv.getInt32(so + i));
    for (; i < n; i++) this.staging[dst + i] = buf[off + i]!;
  }

  /** Hand staged bytes to the sink (one copied chunk). Call once per batch / tick. */
  flush(): void {
    if (this.used === 0) return;
    const chunk = this.staging.slice(0, this.used);
    this.used = 0;
    this.counters.flushes++;
    if (!this.sink(chunk)) this.backpressured = true;
  }

  /** The sink drained: accept packets again. */
  resume(): void {
    this.backpressured = false;
  }

  /** Stop capturing (first reason wins), flush what is staged and call onStop. */
  stop(reason: string): void {
    if (this._stopped !== null) return;
    this._stopped = reason;
    this.flush();
    this.onStop?.(reason);
  }
}

/** Minimal writable shape (fs.WriteStream, process.stdout, net.Socket ...). */
export interface WritableLike {
  write(chunk: Uint8Array): boolean;
  on(event: 'drain', cb: () => void): unknown;
  end?(): unknown;
}

/**
 * Convenience: a CaptureWriter on a Node writable, with 'drain' wired to resume(). When the
 * capture stops the stream is ended if `endOnStop` (default true; pass false for stdout).
 */
export function captureToStream(opts: CaptureOptions, stream: WritableLike, endOnStop = true): CaptureWriter {
  const userStop = opts.onStop;
  const w = new CaptureWriter(
    {
      ...opts,
      onStop: (reason) => {
        if (endOnStop) stream.end?.();
        userStop?.(reason);
      },
    },
    (chunk) => stream.write(chunk),
  );
  stream.on('drain', () => w.resume());
  return w;
}
