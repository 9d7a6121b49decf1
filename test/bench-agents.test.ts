/**
 * The hand-written WAT agents of bench/wasm.ts's ring: each ABI version's agents pass
 * admission, and each forwards exactly the payload of a message in its version's layout.
 * This checks the agents, not the runtime that delivers to them (and no timing).
 */
import { describe, expect, it } from 'vitest';
import { wasmAgentFromParts } from '../actors/wasm-agent.ts';
import { ringAgents } from '../bench/wasm.ts';
import { envelopeHeaderBytes, writeEnvelopeHeader } from '../src/envelope-layout.ts';

const nextTopic = 7;

/** Instantiates a ring agent unmetered; returns it with the payloads it published to `ring/<next>`. */
async function handDriven(bytes: Uint8Array) {
  const published: Uint8Array[] = [];
  let memory: WebAssembly.Memory | null = null;
  const { instance } = await WebAssembly.instantiate(bytes, {
    lockstep: {
      topic: () => nextTopic,
      publish: (topic: number, ptr: number, len: number) => {
        expect(topic).toBe(nextTopic);
        published.push(new Uint8Array(memory!.buffer, ptr, len).slice());
        return 0;
      },
    },
  });
  const exports = instance.exports as unknown as {
    memory: WebAssembly.Memory;
    agent_alloc(len: number): number;
    agent_init(): number;
    agent_receive(ptr: number, len: number): number;
  };
  memory = exports.memory;
  return { exports, published };
}

describe('bench/wasm.ts ring agents', () => {
  it.each([1, 2] as const)('ABI v%i: every hop passes admission and declares the version in its manifest', async (abi) => {
    for (const parts of ringAgents(3, 2, abi)) {
      const definition = await wasmAgentFromParts(parts);
      expect(definition.manifest.abi).toBe(abi);
    }
  }, 60_000);

  it('ABI v2: forwards the payload at ptr + 60, len - 60 of an Envelope', async () => {
    const { exports, published } = await handDriven(ringAgents(2, 4, 2)[0]!.bytes);
    expect(exports.agent_init()).toBe(0);
    expect(published.map((token) => token.length)).toEqual([16, 16, 16, 16]);
    published.length = 0;
    const payload = Uint8Array.from({ length: 16 }, (_, index) => index * 3 + 1);
    const len = envelopeHeaderBytes + payload.length;
    const ptr = exports.agent_alloc(len);
    writeEnvelopeHeader(new DataView(exports.memory.buffer), ptr, 0, 2, 2 ** 33 + 1, 9, 0, payload.length);
    new Uint8Array(exports.memory.buffer, ptr + envelopeHeaderBytes, payload.length).set(payload);
    expect(exports.agent_receive(ptr, len)).toBe(0);
    expect(published).toEqual([payload]);
  });

  it('ABI v1: forwards the payload at ptr + 16, len - 16 of the 16-byte header', async () => {
    const { exports, published } = await handDriven(ringAgents(2, 1, 1)[1]!.bytes);
    expect(exports.agent_init()).toBe(0);
    published.length = 0;
    const payload = Uint8Array.from({ length: 16 }, (_, index) => 200 - index);
    const ptr = exports.agent_alloc(16 + payload.length);
    const header = new DataView(exports.memory.buffer, ptr, 16);
    [1, 2, 3, 0].forEach((value, index) => header.setUint32(index * 4, value, true));
    new Uint8Array(exports.memory.buffer, ptr + 16, payload.length).set(payload);
    expect(exports.agent_receive(ptr, 16 + payload.length)).toBe(0);
    expect(published).toEqual([payload]);
  });
});
