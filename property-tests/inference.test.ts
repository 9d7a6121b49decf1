/**
 * Properties of inference: the tensor codec round-trips whatever it is given and refuses
 * garbage with a TensorFormatError (never another error, never garbage out); and systems
 * that ask real models (the policy network, Silero VAD), good requests mixed with bad ones,
 * under a cache that may evict, give byte-identical logs run to run and replay bit for bit.
 */
import * as flatbuffers from 'flatbuffers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InferRequest } from '../schemas/generated/lockstep/tensor/infer-request.ts';
import { createRuntime, defineSystem, replay } from '../src/index.ts';
import { TensorFormatError, decodeInferRequest, decodeInferResponse, encodeInferRequest, encodeInferResponse, tensor, type DTypeName, type InferResponseValue, type TensorValue } from '../src/tensor.ts';
import { ResponseTemplate, dtypeBytes } from '../src/inference/tensor.ts';
import { askerWith, policyPath, sileroSpec } from '../test/fixtures/inference.ts';
import { askerPlanArb, requestFor } from './inference-plans.ts';

const dtypes = Object.keys(dtypeBytes) as DTypeName[];
const nameArb = fc.string({ maxLength: 12 });

const tensorArb: fc.Arbitrary<TensorValue> = fc
  .record({ name: nameArb, dtype: fc.constantFrom(...dtypes), dims: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }) })
  .chain(({ name, dtype, dims }) => {
    const bytes = dims.reduce((a, b) => a * b, 1) * dtypeBytes[dtype];
    return fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((data) => ({ name, dtype, dims, data }));
  });

const plain = (t: TensorValue) => ({ ...t, data: Array.from(t.data) });

describe('the tensor codec', () => {
  it('round-trips requests, and the generated FlatBuffers code reads what encodeInferRequest writes', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffff_ffff }), nameArb, fc.array(tensorArb, { maxLength: 4 }), fc.boolean(), (id, model, inputs, resetState) => {
        const bytes = encodeInferRequest({ id, model, inputs, resetState });
        const decoded = decodeInferRequest(bytes);
        expect({ ...decoded, inputs: decoded.inputs.map(plain) }).toEqual({ id, model, inputs: inputs.map(plain), resetState });
        // Data vectors start 8-byte aligned, so a float tensor is viewed in place.
        for (const input of decoded.inputs) if (input.data.length > 0) expect(input.data.byteOffset % 8).toBe(0);
        const generated = InferRequest.getRootAsInferRequest(new flatbuffers.ByteBuffer(bytes));
        expect([generated.id(), generated.model(), generated.resetState(), generated.inputsLength()]).toEqual([id, model, resetState, inputs.length]);
        inputs.forEach((input, i) => {
          const table = generated.inputs(i)!;
          expect(table.name()).toBe(input.name);
          expect(Array.from({ length: table.dimsLength() }, (_, d) => table.dims(d))).toEqual(input.dims);
          expect(Array.from(table.dataArray() ?? [])).toEqual(Array.from(input.data));
        });
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips responses, and a batch template encodes what the builder would', () => {
    const responseArb = fc.record({
      id: fc.nat({ max: 0xffff_ffff }),
      model: nameArb,
      version: fc.string({ maxLength: 64 }),
      outputs: fc.array(tensorArb, { maxLength: 3 }),
      errorCode: fc.constant('none' as const),
      error: fc.constant(''),
    });
    fc.assert(
      fc.property(responseArb, fc.nat({ max: 0xffff_ffff }), (response: InferResponseValue, otherId) => {
        const bytes = encodeInferResponse(response);
        const decoded = decodeInferResponse(bytes);
        expect({ ...decoded, outputs: decoded.outputs.map(plain) }).toEqual({ ...response, outputs: response.outputs.map(plain) });
        const template = new ResponseTemplate(response);
        const outputs = response.outputs.map((output) => ({ ...output, data: output.data.map((byte) => byte ^ 0x5a) }));
        expect(template.fits(outputs)).toBe(true);
        expect(Array.from(template.encode(otherId, outputs))).toEqual(Array.from(encodeInferResponse({ ...response, id: otherId, outputs })));
      }),
      { numRuns: 200 },
    );
  });

  it('refuses any mangling of a request with a TensorFormatError, or decodes it to tensors whose bytes match their dims', () => {
    const good = encodeInferRequest({ id: 7, model: 'policy', inputs: [tensor('obs', new Float32Array(16).fill(0.5), [1, 16])] });
    const mangled = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.nat({ max: good.length }).map((cut) => good.slice(0, cut)),
      fc.array(fc.tuple(fc.nat({ max: good.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }).map((edits) => {
        const bytes = good.slice();
        for (const [at, value] of edits) bytes[at] = value;
        return bytes;
      }),
    );
    fc.assert(
      fc.property(mangled, (bytes) => {
        try {
          const request = decodeInferRequest(bytes);
          for (const input of request.inputs) {
            expect(input.data.length).toBe(input.dims.reduce((a, b) => a * b, 1) * dtypeBytes[input.dtype]);
          }
        } catch (error) {
          expect(error).toBeInstanceOf(TensorFormatError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('determinism of systems that ask models', () => {
  it('the same plan gives byte-identical logs twice, and each replays bit for bit', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(askerPlanArb, { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 6, max: 16 }),
        fc.boolean(),
        fc.nat({ max: 0xffff_ffff }),
        async (askers, ticks, roomForOne, seed) => {
          const definition = defineSystem({
            name: 'inference-property',
            // With room for one model only, every switch between models evicts and reloads.
            inference: { models: { policy: policyPath, vad: sileroSpec }, cacheBytes: roomForOne ? 2_340_000 : undefined },
            setup(builder) {
              askers.forEach((plan, i) =>
                builder.spawn(askerWith({ topic: `infer/${plan.model}`, requests: (tick) => [requestFor(plan, tick)], until: ticks - 2 }), { name: `asker-${i}` }),
              );
            },
          });
          const run = async () => {
            const runtime = createRuntime(definition, { seed });
            await runtime.run(ticks);
            const chain = await runtime.close();
            return { chain, bytes: runtime.logBytes() };
          };
          const first = await run();
          const second = await run();
          expect(second.chain).toBe(first.chain);
          expect(Buffer.compare(first.bytes, second.bytes)).toBe(0);
          const report = await replay(first.bytes, definition);
          expect(report.bitExact).toBe(true);
          expect(report.chainHex).toBe(first.chain);
        },
      ),
      { numRuns: 8 },
    );
  });
});
