/**
 * Seeded randomness for actors and input generators. `sfc32` is small, fast and passes
 * PractRand to 2^40+; its state is seeded by `splitmix32` from (run seed, stream id,
 * incarnation) so every actor and every restart of it gets its own reproducible stream.
 * Nothing in lockstep uses Math.random.
 */

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** Takes the run seed (uint32), a stream id (actor id; 0 for the runtime) and an incarnation. */
  constructor(seed: number, stream: number, incarnation: number) {
    const mixer = { s: (seed ^ Math.imul(stream + 1, 0x27d4eb2f) ^ Math.imul(incarnation + 1, 0x165667b1)) | 0 };
    this.a = splitmix32(mixer);
    this.b = splitmix32(mixer);
    this.c = splitmix32(mixer);
    this.d = splitmix32(mixer);
    // Discard the first outputs: sfc32 needs a few rounds to spread a low-entropy seed.
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1) with 32 bits of randomness. */
  next(): number {
    return this.nextUint32() / 0x1_0000_0000;
  }

  /** An integer in [0, bound); bound must be a positive integer below 2^32. */
  int(bound: number): number {
    if (!(bound > 0 && bound <= 0x1_0000_0000 && Number.isInteger(bound))) {
      throw new RangeError(`random int bound must be an integer in [1, 2^32], got ${bound}`);
    }
    return Math.floor(this.next() * bound);
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('random pick from an empty array');
    return items[this.int(items.length)]!;
  }
}
