/**
 * Shared mailboxes: the envelopes a WASM agent may receive live in SharedArrayBuffer slabs,
 * each one a `schemas/envelope.fbs` Envelope FlatBuffer in the fixed layout of
 * src/wasm/envelope-layout.ts, packed one after another from 8-aligned offsets:
 *
 *   slab (SharedArrayBuffer, shared with every worker)
 *   +----------------------+----------------------+-----+--------------- free ---+
 *   | envelope (60 + n, ·8) | envelope (60 + m, ·8) | ... |                        |
 *   +----------------------+----------------------+-----+------------------------+
 *   ^ 0                                                  ^ used
 *
 * A region of a slab is written once: it is filled when its envelope is
 * published (by the kernel for a JS actor's publish or an input, by the pool for what a WASM
 * agent published) and from then on only read; the kernel patches the sequence number once,
 * when it admits the publish. A worker copies an envelope from the slab straight into the
 * receiving agent's memory, so a message between two agents is copied three times: agent
 * memory to ring, ring to slab, slab to agent memory.
 *
 * A slab lives as long as something refers to it: its `Slab` object is held by the
 * envelopes in it (and by the allocator while it is the current slab). When the garbage
 * collector frees the last of them, the listener hears `released` and the workers drop
 * their references too (or, for a few slabs of the standard size, the slab is kept under
 * the same id and filled afresh). That timing decides nothing (what a tick delivers never depends on
 * it), so the nondeterminism of garbage collection is only the memory's.
 */
import { mailboxSlabBytes, mailboxSlabsSpareMax } from './limits.ts';

/** One slab: its id (what command records name it by), its bytes and a view of them. */
export interface Slab {
  readonly id: number;
  readonly bytes: Uint8Array;
  /** `bytes` as 32-bit words (a slab's size is a multiple of 8). */
  readonly words: Int32Array;
  readonly view: DataView;
}

/** Who shares the slabs: the WASM host forwards them to its workers. */
export interface SlabListener {
  created(id: number, buffer: SharedArrayBuffer): void;
  released(id: number): void;
}

export class MailboxSlabs {
  private current: Slab | null = null;
  private used = 0;
  private nextId = 1;
  /** Slabs not yet freed, by id: what a worker started late must still be given. */
  private readonly live = new Map<number, SharedArrayBuffer>();
  private listener: SlabListener | null = null;
  /**
   * Freed slabs of the standard size kept for reuse, id and buffer as the workers know
   * them: a fresh SharedArrayBuffer costs its page faults again on first touch.
   */
  private readonly spare: number[] = [];
  private readonly registry = new FinalizationRegistry<number>((id) => {
    const buffer = this.live.get(id);
    if (buffer !== undefined && buffer.byteLength === this.slabBytes && this.spare.length < mailboxSlabsSpareMax) {
      this.spare.push(id);
      return;
    }
    this.live.delete(id);
    this.listener?.released(id);
  });
  /** The slab of the last `allocate` (the allocator returns the offset; this says where). */
  lastSlab: Slab | null = null;

  constructor(private readonly slabBytes: number = mailboxSlabBytes) {}

  /** Sets who hears of slabs created and freed, and tells it of every live slab now. */
  setListener(listener: SlabListener): void {
    this.listener = listener;
    for (const [id, buffer] of this.live) listener.created(id, buffer);
  }

  /**
   * Reserves `bytes` bytes (rounded up to 8) for one envelope; returns its offset in
   * `lastSlab`. A request bigger than half a slab gets a slab of its own, so a large payload
   * never wastes the rest of a shared one.
   */
  allocate(bytes: number): number {
    const size = (bytes + 7) & ~7;
    if (size > this.slabBytes >> 1) {
      this.lastSlab = this.newSlab(size);
      return 0;
    }
    if (this.current === null || this.used + size > this.current.bytes.length) {
      this.current = this.newSlab(this.slabBytes);
      this.used = 0;
    }
    const at = this.used;
    this.used += size;
    this.lastSlab = this.current;
    return at;
  }

  private newSlab(size: number): Slab {
    const reused = size === this.slabBytes ? this.spare.pop() : undefined;
    if (reused !== undefined) {
      // Nothing refers to its old contents: every envelope in it was freed, and a worker
      // reads a slab only for a DELIVER of a live envelope.
      const buffer = this.live.get(reused)!;
      const slab: Slab = { id: reused, bytes: new Uint8Array(buffer), words: new Int32Array(buffer), view: new DataView(buffer) };
      this.registry.register(slab, reused);
      return slab;
    }
    const buffer = new SharedArrayBuffer(size);
    const slab: Slab = { id: this.nextId++, bytes: new Uint8Array(buffer), words: new Int32Array(buffer), view: new DataView(buffer) };
    this.live.set(slab.id, buffer);
    this.registry.register(slab, slab.id);
    this.listener?.created(slab.id, buffer);
    return slab;
  }
}
