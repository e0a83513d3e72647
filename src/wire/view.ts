/*
 * Base of the protocol views: a window (buf, off, len) onto a header inside a larger buffer,
 * reset and reused per packet, never allocated per packet. Each subclass documents what `len`
 * means for it (e.g. "the IPv4 payload length") and implements checkLen(): 0 when the header
 * is sound and in bounds, else a DROP_* code; after it, no accessor reads out of bounds.
 */
export abstract class WireView {
  buf: Uint8Array = new Uint8Array(0);
  off = 0;
  len = 0;

  reset(buf: Uint8Array, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  abstract checkLen(): number;
}
