/*
 * The socket uplink's flow index: (protocol, namespace address and port, remote address and
 * port) -> flow number, a chained hash over preallocated typed arrays (no allocation on
 * lookup, insert or delete). The flows' own fields live in the caller's arrays; this keeps
 * only the keys and the chains.
 */

const EMPTY = -1;

export class FlowIndex {
  readonly proto: Uint8Array;
  readonly nsIp: Uint32Array;
  readonly nsPort: Uint16Array;
  readonly remIp: Uint32Array;
  readonly remPort: Uint16Array;
  private readonly heads: Int32Array;
  private readonly next: Int32Array;
  private readonly mask: number;

  constructor(readonly capacity: number) {
    let buckets = 16;
    while (buckets < capacity * 2) buckets *= 2;
    this.mask = buckets - 1;
    this.heads = new Int32Array(buckets).fill(EMPTY);
    this.next = new Int32Array(capacity).fill(EMPTY);
    this.proto = new Uint8Array(capacity);
    this.nsIp = new Uint32Array(capacity);
    this.nsPort = new Uint16Array(capacity);
    this.remIp = new Uint32Array(capacity);
    this.remPort = new Uint16Array(capacity);
  }

  private bucket(proto: number, nsIp: number, nsPort: number, remIp: number, remPort: number): number {
    let h = Math.imul(nsIp ^ 0x9e3779b9, 0x85ebca6b);
    h = Math.imul(h ^ remIp ^ (h >>> 13), 0xc2b2ae35);
    h = Math.imul(h ^ ((nsPort << 16) | remPort) ^ (h >>> 16), 0x27d4eb2f);
    return (h ^ (h >>> 15) ^ proto) & this.mask;
  }

  /** The flow with this key, or -1. */
  find(proto: number, nsIp: number, nsPort: number, remIp: number, remPort: number): number {
    let f = this.heads[this.bucket(proto, nsIp, nsPort, remIp, remPort)];
    while (f !== EMPTY) {
      if (this.nsIp[f] === nsIp && this.remIp[f] === remIp && this.nsPort[f] === nsPort && this.remPort[f] === remPort && this.proto[f] === proto) return f;
      f = this.next[f];
    }
    return -1;
  }

  /** File flow `f` under this key (the caller checked it is not there yet). */
  insert(f: number, proto: number, nsIp: number, nsPort: number, remIp: number, remPort: number): void {
    this.proto[f] = proto;
    this.nsIp[f] = nsIp >>> 0;
    this.nsPort[f] = nsPort;
    this.remIp[f] = remIp >>> 0;
    this.remPort[f] = remPort;
    const b = this.bucket(proto, this.nsIp[f], nsPort, this.remIp[f], remPort);
    this.next[f] = this.heads[b];
    this.heads[b] = f;
  }

  remove(f: number): void {
    const b = this.bucket(this.proto[f], this.nsIp[f], this.nsPort[f], this.remIp[f], this.remPort[f]);
    let p = this.heads[b];
    if (p === f) {
      this.heads[b] = this.next[f];
      this.next[f] = EMPTY;
      return;
    }
    while (p !== EMPTY) {
      if (this.next[p] === f) {
        this.next[p] = this.next[f];
        this.next[f] = EMPTY;
        return;
      }
      p = this.next[p];
    }
  }
}
