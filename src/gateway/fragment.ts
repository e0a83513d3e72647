/*
 * Fragmentation element (frag/IFACE): RFC 791 fragmentation of routed packets larger than
 * the egress interface's MTU (the router already turned DF packets and GSO super-frames that
 * are too big into "fragmentation needed" errors).
 *
 * Ports:  input `in`, output `out` (packets within the MTU and GSO super-frames pass
 *         through untouched; fragments are built in pool slots and pushed one by one, each
 *         with the packet's annotations).
 * Does:   completes a partial (virtio NEEDS_CSUM) L4 checksum before the payload is split;
 *         repeats only the options with the "copied" flag in later fragments.
 * Config: the interface (its MTU follows the device).
 * Counters: drops mtu_exceeded (MTU too small for 8 data bytes),
 *         no_frame_slot on the ingress interface's record; element counters fragmented,
 *         fragmentsCreated.
 */
import { slotOf } from '../core/anno.js';
import { ACCOUNT_GENERAL } from '../core/arena.js';
import { DROP_MTU_EXCEEDED, DROP_NO_FRAME_SLOT } from '../core/drops.js';
import { Element, type DataPlaneContext } from '../core/element.js';
import { VNET_CSUM_OFFSET, VNET_CSUM_START, VNET_F_NEEDS_CSUM, VNET_FLAGS, VNET_GSO_NONE, VNET_GSO_TYPE, VNET_HDR_LEN } from '../core/frame.js';
import { completePartialChecksum } from '../wire/checksum.js';
import { ETH_HEADER_LEN } from '../wire/ethernet.js';
import { IPV4_FLAG_MF, IPV4_MIN_HEADER_LEN, Ipv4View } from '../wire/ipv4.js';
import type { InterfaceTable, RouterIface } from './ifaces.js';

const IPOPT_END = 0;
const IPOPT_NOP = 1;
const IPOPT_COPIED = 0x80;

export class Fragmenter extends Element {
  readonly kind = 'Fragmenter';
  override counters = { fragmented: 0, fragmentsCreated: 0 };
  private readonly ip = new Ipv4View();
  private readonly frag = new Ipv4View();

  constructor(
    name: string,
    ctx: DataPlaneContext,
    private readonly p: { iface: RouterIface; ifaces: InterfaceTable },
  ) {
    super(name, ctx, ['in'], ['out']);
  }

  override config(): string {
    return `mtu ${this.p.iface.mtu}`;
  }

  push(_input: number, off: number, len: number): void {
    // GSO super-frames pass: the router checked their segments against the MTU.
    if (len - ETH_HEADER_LEN <= this.p.iface.mtu || this.ctx.u8[off + VNET_GSO_TYPE] !== VNET_GSO_NONE) return this.out[0].push(off, len);
    this.fragment(off, len);
  }

  private drop(off: number, reason: number): void {
    const inIf = this.ctx.arena.anno.inIf[slotOf(off)];
    (inIf >= 0 ? this.p.ifaces.list[inIf] : this.p.iface).record.countDrop(reason);
  }

  private fragment(off: number, frameLen: number): void {
    const b = this.ctx.u8;
    const fe = off + VNET_HDR_LEN;
    const v = this.ip.reset(b, fe + ETH_HEADER_LEN, frameLen - ETH_HEADER_LEN);
    const hl = v.headerLen;
    const maxChunk = (this.p.iface.mtu - hl) & ~7;
    if (maxChunk < 8) return this.drop(off, DROP_MTU_EXCEEDED);
    if ((b[off + VNET_FLAGS] & VNET_F_NEEDS_CSUM) !== 0) {
      // The L4 checksum must be final before the payload is split. csum_start and
      // csum_offset are relative to the frame and to csum_start.
      const start = b[off + VNET_CSUM_START] | (b[off + VNET_CSUM_START + 1] << 8);
      const field = b[off + VNET_CSUM_OFFSET] | (b[off + VNET_CSUM_OFFSET + 1] << 8);
      completePartialChecksum(b, fe + start, fe + frameLen, field);
    }
    const arena = this.ctx.arena;
    const ip = v.off;
    const payload = v.totalLength - hl;
    const baseOffset = v.fragOffset;
    const mfOrig = v.flagsFrag & IPV4_FLAG_MF;
    this.counters.fragmented++;
    for (let done = 0; done < payload; ) {
      const chunk = Math.min(maxChunk, payload - done);
      const last = done + chunk >= payload;
      const slot = arena.alloc(ACCOUNT_GENERAL);
      if (slot < 0) return this.drop(off, DROP_NO_FRAME_SLOT);
      b.fill(0, slot, slot + VNET_HDR_LEN);
      arena.anno.copy(off, slot);
      b.copyWithin(slot + VNET_HDR_LEN, fe, fe + ETH_HEADER_LEN);
      const nip = slot + VNET_HDR_LEN + ETH_HEADER_LEN;
      const nhl = done === 0 || hl === IPV4_MIN_HEADER_LEN ? copyHeader(b, ip, hl, nip) : copyCopiedOptions(b, ip, hl, nip);
      b.copyWithin(nip + nhl, ip + hl + done, ip + hl + done + chunk);
      const f = this.frag.reset(b, nip, nhl + chunk);
      b[nip] = 0x40 | (nhl >>> 2);
      f.totalLength = nhl + chunk;
      f.flagsFrag = (last ? mfOrig : IPV4_FLAG_MF) | (baseOffset + (done >>> 3));
      f.fillChecksum();
      this.counters.fragmentsCreated++;
      this.out[0].push(slot, ETH_HEADER_LEN + nhl + chunk);
      arena.release(slot);
      done += chunk;
    }
  }
}

function copyHeader(b: Uint8Array, ip: number, hl: number, dst: number): number {
  b.copyWithin(dst, ip, ip + hl);
  return hl;
}

/** Copy the header of `ip` to `dst` keeping only options with the copied flag; returns its length. */
function copyCopiedOptions(b: Uint8Array, ip: number, hl: number, dst: number): number {
  b.copyWithin(dst, ip, ip + IPV4_MIN_HEADER_LEN);
  let w = dst + IPV4_MIN_HEADER_LEN;
  let r = ip + IPV4_MIN_HEADER_LEN;
  const end = ip + hl;
  while (r < end) {
    const type = b[r];
    if (type === IPOPT_END) break;
    if (type === IPOPT_NOP) {
      r++;
      continue;
    }
    const olen = r + 1 < end ? b[r + 1] : 0;
    if (olen < 2 || r + olen > end) break;
    if ((type & IPOPT_COPIED) !== 0) {
      b.copyWithin(w, r, r + olen);
      w += olen;
    }
    r += olen;
  }
  while ((w - dst) & 3) b[w++] = IPOPT_END;
  return w - dst;
}
