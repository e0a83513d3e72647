/*
 * First-fragment cache: a fragmented datagram's later fragments carry no ports, so the flow
 * of the first fragment is remembered by (src, dst, fragment id, proto) in a small
 * direct-mapped table (address values as the engine keeps them; IPv4's 16-bit IP id and
 * protocol, IPv6's 32-bit fragment id with proto 0); later fragments get the same address translation (their L4 checksum lives in the
 * first fragment). Entries expire after FRAG_TIMEOUT_MS and are validated against the flow's
 * generation, so a reused flow id is never matched. No allocation after construction.
 */
const FRAG_SLOTS = 1024;
const FRAG_TIMEOUT_MS = 30_000;

export class FragmentCache {
  private readonly src = new Uint32Array(FRAG_SLOTS);
  private readonly dst = new Uint32Array(FRAG_SLOTS);
  private readonly id = new Uint32Array(FRAG_SLOTS);
  private readonly proto = new Int16Array(FRAG_SLOTS).fill(-1); // -1 empty
  private readonly entry = new Int32Array(FRAG_SLOTS);
  private readonly gen = new Uint32Array(FRAG_SLOTS);
  private readonly expires = new Float64Array(FRAG_SLOTS);

  static readonly memoryBytes = FRAG_SLOTS * (4 + 4 + 4 + 2 + 4 + 4 + 8);

  private slot(src: number, dst: number, id: number, proto: number): number {
    let h = Math.imul(src ^ id, 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 15) ^ dst, 0x85ebca77);
    h = Math.imul(h ^ (h >>> 13) ^ proto, 0xc2b2ae3d);
    return (h ^ (h >>> 16)) & (FRAG_SLOTS - 1);
  }

  /** Remember that datagram (src, dst, id, proto) belongs to conntrack entry e of a flow with generation `generation`. */
  remember(src: number, dst: number, id: number, proto: number, e: number, generation: number, now: number): void {
    const s = this.slot(src, dst, id, proto);
    this.src[s] = src;
    this.dst[s] = dst;
    this.id[s] = id;
    this.proto[s] = proto;
    this.entry[s] = e;
    this.gen[s] = generation;
    this.expires[s] = now + FRAG_TIMEOUT_MS;
  }

  /** The entry remembered for this datagram (check its generation with `generationOf`), or -1. */
  find(src: number, dst: number, id: number, proto: number, now: number): number {
    const s = this.slot(src, dst, id, proto);
    if (this.proto[s] === proto && this.id[s] === id >>> 0 && this.src[s] === src >>> 0 && this.dst[s] === dst >>> 0 && this.expires[s] > now) {
      this.lastSlot = s;
      return this.entry[s];
    }
    return -1;
  }

  /** Generation recorded with the entry the last successful find() returned. */
  get foundGeneration(): number {
    return this.gen[this.lastSlot];
  }
  private lastSlot = 0;

  clear(): void {
    this.proto.fill(-1);
  }
}
