/* Real frames shared by unit tests (checksums valid; red 10.100.0.2, blue 10.100.0.3). */

export function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s, 'hex'));
}

/** ICMP echo request 10.100.0.2 -> 10.100.0.3, id 0x4242 seq 1 (74 bytes). */
export const ICMP_ECHO = hex(
  '02000a64000302000a64000208004500003c12344000400113c10a6400020a64' +
    '00030800c3ba42420001101112131415161718191a1b1c1d1e1f202122232425' +
    '262728292a2b2c2d2e2f',
);
/** TCP SYN 10.100.0.2:40000 -> 203.0.113.1:80 (54 bytes). */
export const TCP_SYN = hex(
  '02000a64000102000a640002080045000028123440004006e2340a640002cb00' + '71019c40005001020304000000005002faf0cdf30000',
);
/** UDP 10.100.0.3:5353 -> 10.100.0.2:53 "hello tapbridge" (57 bytes). */
export const UDP_DNS = hex(
  '02000a64000202000a64000308004500002b12344000401113c20a6400030a64' + '000214e900350017714e68656c6c6f20746170627269646765',
);
