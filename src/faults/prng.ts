/*
 * Seeded PRNG for fault injection: xoshiro128** (32-bit state words, Math.imul only), seeded
 * through splitmix32 so any number (including 0) gives a well-mixed state. No allocation
 * after construction; same seed => same sequence on every platform.
 *
 * nextU32()      uniform uint32
 * nextFloat()    uniform [0, 1) with 32 bits of resolution
 * nextBelow(n)   uniform integer 0..n-1 (n <= 2^32)
 * nextNormal()   standard normal N(0,1) (Box-Muller, the spare value is cached)
 * nextPareto(alpha, xm)  Pareto(shape alpha, scale xm): xm / U^(1/alpha), U in (0,1]
 * nextExp(mean)  exponential with the given mean
 */

const TWO_NEG32 = 1 / 4294967296;

export class Prng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private spare = 0;
  private hasSpare = false;

  constructor(seed = 0) {
    this.reseed(seed);
  }

  /** Reset the state from a seed (any number; non-integers and large values are folded). */
  reseed(seed: number): void {
    let x = (Math.floor(seed) ^ Math.floor(seed / 4294967296)) >>> 0;
    const sm = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = sm();
    this.s1 = sm();
    this.s2 = sm();
    this.s3 = sm();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
    this.hasSpare = false;
  }

  nextU32(): number {
    const s0 = this.s0;
    const s1 = this.s1;
    const s2 = this.s2;
    const s3 = this.s3;
    const m = Math.imul(s1, 5);
    const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = s1 << 9;
    const n2 = s2 ^ s0;
    const n3 = s3 ^ s1;
    this.s1 = s1 ^ n2;
    this.s0 = s0 ^ n3;
    this.s2 = n2 ^ t;
    this.s3 = (n3 << 11) | (n3 >>> 21);
    return result;
  }

  nextFloat(): number {
    return this.nextU32() * TWO_NEG32;
  }

  /** Uniform integer in [0, n). Multiply-shift: bias < n / 2^32, irrelevant here. */
  nextBelow(n: number): number {
    return Math.floor(this.nextU32() * TWO_NEG32 * n);
  }

  nextNormal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    const u1 = 1 - this.nextFloat(); // (0, 1]
    const u2 = this.nextFloat();
    const r = Math.sqrt(-2 * Math.log(u1));
    const th = 2 * Math.PI * u2;
    this.spare = r * Math.sin(th);
    this.hasSpare = true;
    return r * Math.cos(th);
  }

  nextPareto(alpha: number, xm = 1): number {
    const u = 1 - this.nextFloat(); // (0, 1]
    return xm / Math.pow(u, 1 / alpha);
  }

  nextExp(mean: number): number {
    return -mean * Math.log(1 - this.nextFloat());
  }
}
