/*
 * Forwarding database (MAC table) of one bridge.
 *
 * Open addressing with linear probing and backward-shift deletion over struct-of-arrays
 * typed storage: no allocation after construction, O(1) learn/lookup. MACs are numbers
 * (48 bits: hi16 * 2^32 + lo32); ports are small integers local to the bridge.
 *
 * Bounds: `capacity` entries in total and optionally `perPortLimit` per port; the table
 * never grows. When a bound is hit the `whenFull` policy decides:
 *   'evict'   (default) the newcomer is learned and an old entry makes room: the least
 *             recently seen of a bounded sample of the port's own entries (port limit), or
 *             of all learned entries (table full). A port that floods the table with made-up
 *             MACs thus churns its own share, and a station that appears later is still
 *             learned: its unicast is not flooded to everyone (fail-closed, not fail-open).
 *   'refuse'  the new MAC is not learned (frames to it keep flooding), as the Linux bridge does.
 * The sample scans at most EVICT_SCAN slots from a moving cursor: bounded work per frame.
 * Entries age out `agingMs` after they were last seen (lazily on lookup and by `sweep`,
 * which the engine runs on its tick). Static entries never age, move or get evicted.
 *
 * Moves: a MAC seen on another port moves there, unless its port is locked (port security)
 * or moves are denied for the whole table: then learn() answers LEARN_MOVE_REFUSED and the
 * switch drops the frame.
 *
 * Counters: learned, moved, moveRefused, aged, evicted, learnRefused (table full), learnRefusedPortLimit.
 */

const FLAG_USED = 1;
const FLAG_STATIC = 2;
const TWO_POW_32 = 4294967296;

export const LEARN_OK = 0;
export const LEARN_MOVED = 1;
export const LEARN_REFUSED_FULL = 2;
export const LEARN_REFUSED_PORT_LIMIT = 3;
export const LEARN_STATIC_CONFLICT = 4;
/** The MAC lives on a port that keeps its MACs (port security, or moves denied): not moved. */
export const LEARN_MOVE_REFUSED = 5;

export type WhenFull = 'evict' | 'refuse';
/** Most table slots one eviction looks at. */
export const EVICT_SCAN = 512;
/** Entries of the sample an eviction picks the least recently seen from. */
export const EVICT_SAMPLE = 8;

export interface FdbEntryInfo {
  mac: number;
  port: number;
  ageSeconds: number;
  isStatic: boolean;
}

function hashMac(mac: number, mask: number): number {
  const lo = mac >>> 0;
  const hi = (mac / TWO_POW_32) | 0;
  let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 15;
  return h & mask;
}

export class MacTable {
  readonly capacity: number;
  readonly perPortLimit: number;
  readonly whenFull: WhenFull;
  agingMs: number;

  private readonly mask: number;
  private readonly keys: Float64Array;
  private readonly ports: Int32Array;
  private readonly lastSeen: Float64Array;
  private readonly flags: Uint8Array;
  private readonly perPortCount: Int32Array;
  /** Ports whose MACs never move to another port (port security). */
  private readonly lockedPorts: Uint8Array;
  /** No learned MAC ever moves between ports (the bridge's macMoves: deny). */
  denyMoves = false;
  private used = 0;
  private cursor = 0;

  learned = 0;
  moved = 0;
  moveRefused = 0;
  aged = 0;
  evicted = 0;
  learnRefused = 0;
  learnRefusedPortLimit = 0;

  constructor(opts: { capacity: number; agingMs: number; perPortLimit?: number; maxPorts: number; whenFull?: WhenFull }) {
    if (!(opts.capacity >= 1)) throw new RangeError('MacTable capacity must be >= 1');
    this.capacity = opts.capacity;
    this.agingMs = opts.agingMs;
    this.perPortLimit = opts.perPortLimit ?? 0;
    this.whenFull = opts.whenFull ?? 'evict';
    let size = 16;
    while (size < opts.capacity * 2) size *= 2; // load factor <= 0.5 keeps probes short
    this.mask = size - 1;
    this.keys = new Float64Array(size);
    this.ports = new Int32Array(size);
    this.lastSeen = new Float64Array(size);
    this.flags = new Uint8Array(size);
    this.perPortCount = new Int32Array(Math.max(1, opts.maxPorts));
    this.lockedPorts = new Uint8Array(Math.max(1, opts.maxPorts));
  }

  /** MACs learned on `port` stay there: another port claiming one is refused (LEARN_MOVE_REFUSED). */
  lockPort(port: number): void {
    this.lockedPorts[port] = 1;
  }

  /** A port slot freed at runtime: no longer locked, and no entry (static ones too) left on it. */
  releasePort(port: number): void {
    this.lockedPorts[port] = 0;
    for (let i = 0; i <= this.mask; ) {
      if (this.flags[i] !== 0 && this.ports[i] === port) this.removeAt(i);
      else i++;
    }
  }

  get size(): number {
    return this.used;
  }

  private find(mac: number): number {
    const mask = this.mask;
    // hashMac, written out: a call would box the 48-bit MAC (a double) on every packet.
    const lo = mac >>> 0;
    const hi = (mac / TWO_POW_32) | 0;
    let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 15;
    let i = h & mask;
    const flags = this.flags;
    const keys = this.keys;
    while (flags[i] !== 0) {
      if (keys[i] === mac) return i;
      i = (i + 1) & mask;
    }
    return -1 - i; // not found: encode the free slot where it would go
  }

  /** Port the MAC was learned on, or -1 when unknown or aged out. */
  lookup(mac: number, nowMs: number): number {
    const i = this.find(mac);
    if (i < 0) return -1;
    if ((this.flags[i] & FLAG_STATIC) === 0 && nowMs - this.lastSeen[i] > this.agingMs) return this.expireAt(i);
    return this.ports[i];
  }

  /**
   * Learn (or refresh) `mac` on `port`. Returns a LEARN_* code. The common case (a known
   * MAC seen again on its port) stays small so V8 inlines it into the switch; new MACs,
   * moves and limits go to learnSlow.
   */
  learn(mac: number, port: number, nowMs: number): number {
    const i = this.find(mac);
    if (i >= 0 && this.ports[i] === port) {
      this.lastSeen[i] = nowMs;
      return LEARN_OK;
    }
    return this.learnSlow(i, mac, port, nowMs);
  }

  private expireAt(i: number): number {
    this.removeAt(i);
    this.aged++;
    return -1;
  }

  private learnSlow(i: number, mac: number, port: number, nowMs: number): number {
    const evict = this.whenFull === 'evict';
    if (i >= 0) {
      if ((this.flags[i] & FLAG_STATIC) !== 0) return LEARN_STATIC_CONFLICT;
      if (this.denyMoves || this.lockedPorts[this.ports[i]] !== 0) {
        this.moveRefused++;
        return LEARN_MOVE_REFUSED;
      }
      if (this.perPortLimit > 0 && this.perPortCount[port] >= this.perPortLimit) {
        if (!evict || !this.evictOldest(port, mac)) {
          this.learnRefusedPortLimit++;
          return LEARN_REFUSED_PORT_LIMIT;
        }
        i = this.find(mac); // the eviction may have shifted entries
      }
      this.perPortCount[this.ports[i]]--;
      this.perPortCount[port]++;
      this.ports[i] = port;
      this.lastSeen[i] = nowMs;
      this.moved++;
      return LEARN_MOVED;
    }
    if (this.used >= this.capacity) {
      if (!evict || !this.evictOldest(-1, mac)) {
        this.learnRefused++;
        return LEARN_REFUSED_FULL;
      }
      i = this.find(mac);
    }
    if (this.perPortLimit > 0 && this.perPortCount[port] >= this.perPortLimit) {
      if (!evict || !this.evictOldest(port, mac)) {
        this.learnRefusedPortLimit++;
        return LEARN_REFUSED_PORT_LIMIT;
      }
      i = this.find(mac);
    }
    const slot = -1 - i;
    this.keys[slot] = mac;
    this.ports[slot] = port;
    this.lastSeen[slot] = nowMs;
    this.flags[slot] = FLAG_USED;
    this.perPortCount[port]++;
    this.used++;
    this.learned++;
    return LEARN_OK;
  }

  /**
   * Remove the least recently seen learned entry among a sample: of `port`'s entries, or of
   * all (port -1), never `keep`. Scans at most EVICT_SCAN slots from the cursor. False when
   * the sample found nothing to evict.
   */
  private evictOldest(port: number, keep: number): boolean {
    const mask = this.mask;
    const flags = this.flags;
    let best = -1;
    let found = 0;
    let i = this.cursor;
    for (let n = 0; n < EVICT_SCAN && found < EVICT_SAMPLE; n++, i = (i + 1) & mask) {
      const f = flags[i];
      if (f === 0 || (f & FLAG_STATIC) !== 0 || this.keys[i] === keep || (port >= 0 && this.ports[i] !== port)) continue;
      found++;
      if (best < 0 || this.lastSeen[i] < this.lastSeen[best]) best = i;
    }
    this.cursor = i;
    if (best < 0) return false;
    this.removeAt(best);
    this.evicted++;
    return true;
  }

  /** Install a static entry (config time). Replaces a learned one. Ignores limits. */
  addStatic(mac: number, port: number): void {
    const i = this.find(mac);
    if (i >= 0) {
      this.perPortCount[this.ports[i]]--;
      this.ports[i] = port;
      this.flags[i] = FLAG_USED | FLAG_STATIC;
      this.perPortCount[port]++;
      return;
    }
    if (this.used >= this.capacity) throw new RangeError('MAC table full: cannot add a static entry');
    const slot = -1 - i;
    this.keys[slot] = mac;
    this.ports[slot] = port;
    this.lastSeen[slot] = 0;
    this.flags[slot] = FLAG_USED | FLAG_STATIC;
    this.perPortCount[port]++;
    this.used++;
  }

  remove(mac: number): boolean {
    const i = this.find(mac);
    if (i < 0) return false;
    this.removeAt(i);
    return true;
  }

  /** Forget every learned entry on `port` (port removed or link down). */
  flushPort(port: number): number {
    let removed = 0;
    for (let i = 0; i <= this.mask; ) {
      if (this.flags[i] !== 0 && this.ports[i] === port && (this.flags[i] & FLAG_STATIC) === 0) {
        this.removeAt(i); // backward shift may move another entry into i: re-check it
        removed++;
      } else i++;
    }
    return removed;
  }

  /** Remove aged entries. Returns how many were removed. */
  sweep(nowMs: number): number {
    let removed = 0;
    const limit = nowMs - this.agingMs;
    for (let i = 0; i <= this.mask; ) {
      const f = this.flags[i];
      if (f !== 0 && (f & FLAG_STATIC) === 0 && this.lastSeen[i] < limit) {
        this.removeAt(i);
        removed++;
      } else i++;
    }
    this.aged += removed;
    return removed;
  }

  portCount(port: number): number {
    return this.perPortCount[port];
  }

  entries(nowMs: number): FdbEntryInfo[] {
    const out: FdbEntryInfo[] = [];
    for (let i = 0; i <= this.mask; i++) {
      const f = this.flags[i];
      if (f === 0) continue;
      const isStatic = (f & FLAG_STATIC) !== 0;
      if (!isStatic && nowMs - this.lastSeen[i] > this.agingMs) continue;
      out.push({
        mac: this.keys[i],
        port: this.ports[i],
        ageSeconds: isStatic ? 0 : (nowMs - this.lastSeen[i]) / 1000,
        isStatic,
      });
    }
    return out;
  }

  private removeAt(i: number): void {
    const mask = this.mask;
    const flags = this.flags;
    this.perPortCount[this.ports[i]]--;
    this.used--;
    // Backward-shift deletion: pull later members of the probe run into the hole.
    let hole = i;
    let j = (i + 1) & mask;
    while (flags[j] !== 0) {
      const home = hashMac(this.keys[j], mask);
      // j may move to hole if its home is not within (hole, j] cyclically
      const dist = (j - home) & mask;
      const holeDist = (j - hole) & mask;
      if (dist >= holeDist) {
        this.keys[hole] = this.keys[j];
        this.ports[hole] = this.ports[j];
        this.lastSeen[hole] = this.lastSeen[j];
        flags[hole] = flags[j];
        hole = j;
      }
      j = (j + 1) & mask;
    }
    flags[hole] = 0;
  }
}
