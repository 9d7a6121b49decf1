// Shared mailbox slabs (src/slabs.ts): where envelopes for WASM agents live, and how a slab
// is shared, kept for reuse and released as the garbage collector frees its envelopes.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { mailboxSlabsSpareMax } from '../src/limits.ts';
import { MailboxSlabs, type Slab } from '../src/slabs.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Collects until `done` holds (finalizers run in a later task), or fails after many rounds. */
async function collectUntil(done: () => boolean): Promise<void> {
  for (let round = 0; round < 50 && !done(); round++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  expect(done()).toBe(true);
}

function recording(slabs: MailboxSlabs): { created: number[]; released: number[] } {
  const heard = { created: [] as number[], released: [] as number[] };
  slabs.setListener({ created: (id) => heard.created.push(id), released: (id) => heard.released.push(id) });
  return heard;
}

describe('mailbox slabs', () => {
  it('packs envelopes 8-aligned into one slab, gives a large one a slab of its own, and tells the listener of each', () => {
    const slabs = new MailboxSlabs(1024);
    const heard = recording(slabs);
    const first = slabs.allocate(61);
    const firstSlab = slabs.lastSlab!;
    const second = slabs.allocate(64);
    expect([first, second]).toEqual([0, 64]);
    expect(slabs.lastSlab).toBe(firstSlab);
    expect(slabs.allocate(600)).toBe(0);
    const own = slabs.lastSlab!;
    expect(own).not.toBe(firstSlab);
    expect(own.bytes.length).toBe(600);
    // The shared slab goes on after the large one.
    expect(slabs.allocate(8)).toBe(128);
    expect(slabs.lastSlab).toBe(firstSlab);
    expect(heard.created).toEqual([firstSlab.id, own.id]);
    // A listener set later hears of every live slab.
    const late = recording(slabs);
    expect(late.created.sort()).toEqual([firstSlab.id, own.id].sort());
  });

  it('keeps a few freed slabs under their ids for reuse and releases the rest', async () => {
    const slabs = new MailboxSlabs(1024);
    const heard = recording(slabs);
    const count = mailboxSlabsSpareMax + 2;
    const ids: number[] = [];
    let held: Slab[] = [];
    for (let i = 0; i < count; i++) {
      slabs.allocate(1024);
      held.push(slabs.lastSlab!);
      ids.push(slabs.lastSlab!.id);
    }
    // Each request is more than half a slab: a slab of its own, which the allocator does not keep.
    slabs.lastSlab = null;
    held = [];
    await collectUntil(() => heard.released.length >= count - mailboxSlabsSpareMax);
    expect(heard.released.length).toBe(count - mailboxSlabsSpareMax);
    const kept = ids.filter((id) => !heard.released.includes(id));
    expect(kept).toHaveLength(mailboxSlabsSpareMax);
    // The next slabs are the kept ones: no new id, nothing new for the listener to share.
    const createdBefore = heard.created.length;
    const reused: number[] = [];
    for (let i = 0; i < mailboxSlabsSpareMax; i++) {
      slabs.allocate(1024);
      reused.push(slabs.lastSlab!.id);
    }
    expect(reused.sort()).toEqual(kept.sort());
    expect(heard.created.length).toBe(createdBefore);
    // Once they are used up, a fresh slab is made and shared.
    slabs.allocate(1024);
    expect(heard.created.length).toBe(createdBefore + 1);
    expect(held).toEqual([]);
  });

  it('never keeps a slab of another size for reuse', async () => {
    const slabs = new MailboxSlabs(1024);
    const heard = recording(slabs);
    slabs.allocate(4000);
    const large = slabs.lastSlab!.id;
    slabs.lastSlab = null;
    await collectUntil(() => heard.released.includes(large));
  });
});
