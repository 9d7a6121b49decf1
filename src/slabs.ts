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
 * A slab is written once and never reused: a region is filled when its envelope is
 * published (by the kernel for a JS actor's publish or an input, by the pool for what a WASM
 * agent published) and from then on only read; the kernel patches the sequence number once,
 * when it admits the publish. A worker copies an envelope from the slab straight into the
 * receiving agent's memory, so a message between two agents is copied three times: agent
 * memory to ring, ring to slab, slab to agent memory.
 *
 * A slab lives as long as something refers to it: its `Slab` object is held by the
 * envelopes in it (and by the allocator while it is the current slab). When the garbage
 * collector frees the last of them, the listener hears `released` and the workers drop
 * their references too. That timing decides nothing (what a tick delivers never depends on
 * it), so the nondeterminism of garbage collection is only the memory's.
 */
import { mailboxSlabBytes } from './limits.ts';

/** One slab: its id (what command records name it by), its bytes and a view of them. */
export interface Slab {
  readonly id: number;
  readonly bytes: Uint8Array;
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
  private readonly registry = new FinalizationRegistry<number>((id) => {
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
    const buffer = new SharedArrayBuffer(size);
    const slab: Slab = { id: this.nextId++, bytes: new Uint8Array(buffer), view: new DataView(buffer) };
    this.live.set(slab.id, buffer);
    this.registry.register(slab, slab.id);
    this.listener?.created(slab.id, buffer);
    return slab;
  }
}
