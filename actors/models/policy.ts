/**
 * Builds the sample policy network, `actors/models/build/policy.onnx`: a small MLP that
 * maps an observation to action probabilities, written with the `onnx-proto` protobuf
 * bindings (no Python, no training).
 *
 *   obs float32 [batch, 16]
 *     -> Gemm(16 -> 64) -> Relu -> Gemm(64 -> 64) -> Relu -> Gemm(64 -> 4) -> Softmax(axis -1)
 *   -> probs float32 [batch, 4]
 *
 *   npm run build:models            build and write
 *   npm run check:models            build in memory and fail if the committed file differs
 *
 * The bytes are reproducible: the weights come from lockstep's seeded PRNG, every field is
 * a constant (no times, no paths, no package version), and protobufjs writes fields in
 * field-number order.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import { Random } from '../../src/prng.ts';

const { onnx } = onnxProto;

const modelsDirectory = dirname(fileURLToPath(import.meta.url));
const repositoryRoot = join(modelsDirectory, '..', '..');
export const policyModelPath = join(modelsDirectory, 'build', 'policy.onnx');

/** Changing the seed changes every weight, hence the committed bytes. */
const policyWeightSeed = 0x5eed_0001;
/** IR 8 is the newest onnx-proto 8.0.1 knows; opset 17 is well inside ORT 1.30's range. */
const irVersion = 8;
const opsetVersion = 17;

export const policyObservationSize = 16;
export const policyHiddenSize = 64;
export const policyActionCount = 4;

/** Layer widths, input first. */
const layerSizes = [policyObservationSize, policyHiddenSize, policyHiddenSize, policyActionCount] as const;

const float32Bytes = 4;

/**
 * Takes a layer's fan-in and fan-out and the shared PRNG. Returns the weight matrix
 * [fanIn, fanOut] (row-major, as Gemm with transB=0 reads it) drawn uniform in
 * ±sqrt(6 / fanIn) (He-uniform, suited to Relu), then the bias [fanOut] drawn uniform in
 * ±1 / sqrt(fanIn) (PyTorch's Linear default), both rounded to float32.
 */
function drawLayer(random: Random, fanIn: number, fanOut: number): { weight: Float32Array; bias: Float32Array } {
  const weightBound = Math.sqrt(6 / fanIn);
  const biasBound = 1 / Math.sqrt(fanIn);
  const weight = new Float32Array(fanIn * fanOut);
  for (let index = 0; index < weight.length; index++) weight[index] = (random.next() * 2 - 1) * weightBound;
  const bias = new Float32Array(fanOut);
  for (let index = 0; index < bias.length; index++) bias[index] = (random.next() * 2 - 1) * biasBound;
  return { weight, bias };
}

/** Takes float32 values. Returns their bytes little-endian, whatever the host's byte order. */
function littleEndianBytes(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.length * float32Bytes);
  const view = new DataView(bytes.buffer);
  values.forEach((value, index) => view.setFloat32(index * float32Bytes, value, true));
  return bytes;
}

function floatInitializer(name: string, dims: number[], values: Float32Array): onnxProto.onnx.ITensorProto {
  return { name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: littleEndianBytes(values) };
}

/** A float32 [batch, width] value; `batch` is symbolic so callers may batch freely. */
function batchedFloatValue(name: string, width: number): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: [{ dimParam: 'batch' }, { dimValue: width }] },
      },
    },
  };
}

/** Returns the serialized policy model. Pure: the same bytes on every call and machine. */
export function buildPolicyModel(): Uint8Array {
  const random = new Random(policyWeightSeed, 0, 0);
  const initializers: onnxProto.onnx.ITensorProto[] = [];
  const nodes: onnxProto.onnx.INodeProto[] = [];
  let current = 'obs';
  for (let layer = 0; layer < layerSizes.length - 1; layer++) {
    const fanIn = layerSizes[layer]!;
    const fanOut = layerSizes[layer + 1]!;
    const { weight, bias } = drawLayer(random, fanIn, fanOut);
    const weightName = `layer${layer}.weight`;
    const biasName = `layer${layer}.bias`;
    initializers.push(floatInitializer(weightName, [fanIn, fanOut], weight), floatInitializer(biasName, [fanOut], bias));
    const isLast = layer === layerSizes.length - 2;
    const linearOut = isLast ? 'logits' : `layer${layer}.linear`;
    nodes.push({ name: `layer${layer}.gemm`, opType: 'Gemm', input: [current, weightName, biasName], output: [linearOut] });
    if (isLast) {
      nodes.push({
        name: 'softmax',
        opType: 'Softmax',
        input: [linearOut],
        output: ['probs'],
        attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 }],
      });
    } else {
      current = `layer${layer}.relu`;
      nodes.push({ name: `layer${layer}.relu`, opType: 'Relu', input: [linearOut], output: [current] });
    }
  }

  const model: onnxProto.onnx.IModelProto = {
    irVersion,
    opsetImport: [{ domain: '', version: opsetVersion }],
    producerName: 'lockstep',
    producerVersion: '1',
    docString: 'lockstep sample policy: obs[batch,16] -> probs[batch,4]; untrained, weights from a seeded PRNG (actors/models/policy.ts)',
    graph: {
      name: 'policy',
      node: nodes,
      initializer: initializers,
      input: [batchedFloatValue('obs', policyObservationSize)],
      output: [batchedFloatValue('probs', policyActionCount)],
    },
  };
  const error = onnx.ModelProto.verify(model);
  if (error !== null) throw new Error(`policy model does not fit onnx.ModelProto: ${error}`);
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

function main(argv: readonly string[]): void {
  const checkOnly = argv.includes('--check');
  const unknown = argv.filter((argument) => argument !== '--check');
  if (unknown.length > 0) throw new Error(`unknown argument(s) ${unknown.join(' ')}; usage: policy.ts [--check]`);
  const built = buildPolicyModel();
  const shownPath = relative(repositoryRoot, policyModelPath);
  const committed = existsSync(policyModelPath) ? readFileSync(policyModelPath) : null;
  const same = committed !== null && Buffer.compare(committed, built) === 0;
  if (checkOnly) {
    if (!same) {
      const why = committed === null ? 'is missing' : `differs from the built model (${committed.byteLength} B on disk, ${built.byteLength} B built)`;
      throw new Error(`${shownPath} ${why}; run 'npm run build:models' and commit the result`);
    }
  } else if (!same) {
    mkdirSync(dirname(policyModelPath), { recursive: true });
    writeFileSync(policyModelPath, built);
  }
  console.log(`${shownPath} ${built.byteLength} B${checkOnly ? ' matches the build' : same ? ' unchanged' : ' written'}`);
}

// Tests import buildPolicyModel; only running this file as a script builds or checks.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2));
  } catch (error: unknown) {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  }
}
