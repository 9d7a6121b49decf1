// Options are checked for keys nobody reads, with the nearest known key named; and the assets
// lockstep ships are found by name.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  SupervisorError,
  agentSdkPath,
  createRuntime,
  defineActor,
  defineSystem,
  publicKeyId,
  replay,
  sampleAgentPath,
  sampleKeyPath,
  sampleKeyPem,
  sampleModelPath,
  supervisor,
} from 'lockstep';
import { assertDeterministic } from 'lockstep/testing';
import { checkKeys, closest } from '../src/options.ts';

const noop = defineActor({ name: 'noop', init: () => null, receive: (state) => state });
const system = defineSystem({ name: 'options', setup: (b) => void b.spawn(noop, { name: 'noop' }) });

/** The message of what `action` throws, checking it is a `type`. */
function thrown(action: () => unknown, type: new (...args: never[]) => Error = ConfigError): string {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(type);
    return (error as Error).message;
  }
  throw new Error('expected a throw');
}

describe('option objects', () => {
  it('createRuntime names the option it does not know and the one meant', () => {
    expect(thrown(() => createRuntime(system, { trustedKey: [] } as never))).toMatch(
      /^createRuntime options: unknown option 'trustedKey'; did you mean 'trustedKeys'\? known options: seed, level, /,
    );
    expect(thrown(() => createRuntime(system, { mailboxCapcity: 4 } as never))).toMatch(/did you mean 'mailboxCapacity'\?/);
    expect(thrown(() => createRuntime(system, { wrokers: 2 } as never))).toMatch(/did you mean 'workers'\?/);
    // Nothing near: no guess, only the list.
    expect(thrown(() => createRuntime(system, { colour: 'red' } as never))).toMatch(/unknown option 'colour'; known options: /);
    // A key set to undefined is still a typo.
    expect(thrown(() => createRuntime(system, { sed: undefined } as never))).toMatch(/unknown option 'sed'; did you mean 'seed'\?/);
  });

  it('defineActor, defineSystem and spawn options are checked too', () => {
    expect(thrown(() => defineActor({ name: 'a', init: () => 0, receive: (s: number) => s, recieve: () => 0 } as never))).toBe(
      "defineActor 'a': unknown option 'recieve'; did you mean 'receive'? known options: name, subscribe, init, receive, step, stop",
    );
    expect(thrown(() => defineSystem({ name: 's', setup: () => {}, input: () => [] } as never))).toMatch(
      /^defineSystem 's': unknown option 'input'; did you mean 'inputs'\?/,
    );
    const spawning = defineSystem({ name: 'spawn', setup: (b) => void b.spawn(noop, { name: 'n', priorty: 3 } as never) });
    expect(thrown(() => createRuntime(spawning))).toMatch(/^spawn 'noop': unknown option 'priorty'; did you mean 'priority'\?/);
  });

  it('run, replay and the testing kit check their options', async () => {
    const runtime = createRuntime(system);
    await expect(runtime.run(1, { progresEvery: 1 } as never)).rejects.toThrow(/run options: unknown option 'progresEvery'; did you mean 'progressEvery'\?/);
    await runtime.run(1);
    await runtime.close();
    await expect(replay(runtime.logBytes(), system, { worker: 1 } as never)).rejects.toThrow(/replay options: unknown option 'worker'; did you mean 'workers'\?/);
    await expect(assertDeterministic(system, { tick: 3 } as never)).rejects.toThrow(/assertDeterministic options: unknown option 'tick'; did you mean 'ticks'\?/);
  });

  it('supervisor flags, child specs and the inference config name the field meant', () => {
    expect(thrown(() => supervisor({ strategy: 'one_for_one', intesity: 2 } as never, []), SupervisorError)).toMatch(
      /supervisor flags: unknown field 'intesity'; did you mean 'intensity'\?/,
    );
    expect(thrown(() => supervisor({ strategy: 'one_for_one', backoff: { initial: 1, maximum: 4 } } as never, []), SupervisorError)).toMatch(
      /supervisor flags: backoff: unknown field 'maximum'; known fields: initial, max, factor$/,
    );
    const withModels = (inference: unknown) => defineSystem({ name: 'models', inference: inference as never, setup: () => {} });
    expect(thrown(() => createRuntime(withModels({ models: { policy: sampleModelPath('policy') }, cacheByte: 1 })))).toMatch(
      /inference config: unknown field 'cacheByte'; did you mean 'cacheBytes'\?/,
    );
    expect(thrown(() => createRuntime(withModels({ models: { policy: { file: sampleModelPath('policy'), warmUp: false } } })))).toMatch(
      /inference config: model 'policy': unknown field 'warmUp'; did you mean 'warmup'\?/,
    );
    expect(
      thrown(() => createRuntime(withModels({ models: { policy: { file: sampleModelPath('policy'), sessionOptions: { intraOpThreads: 2 } } } }))),
    ).toMatch(/sessionOptions: unknown option 'intraOpThreads'; did you mean 'intraOpNumThreads'\?/);
  });

  it('closest() guesses only when the word is near, and the same way every time', () => {
    expect(closest('trustedKeysPem', ['trustedKeys', 'allowUnsigned'])).toBe('trustedKeys');
    expect(closest('Seed', ['seed', 'level'])).toBe('seed');
    expect(closest('lgo', ['log', 'level'])).toBe('log');
    expect(closest('log', ['level'])).toBeNull();
    expect(closest('zzzzzz', ['seed', 'level'])).toBeNull();
    // A tie goes to the first known key.
    expect(closest('ab', ['aa', 'bb'])).toBe('aa');
    expect(() => checkKeys({ a: 1, b: 2 }, ['a', 'b'], 'here')).not.toThrow();
  });
});

describe('shipped assets', () => {
  it('finds the sample agents, with their manifest and signature beside them', () => {
    for (const name of ['counter', 'ping', 'pong', 'hasher', 'sieve', 'pilot']) {
      const path = sampleAgentPath(name);
      expect(path.endsWith(`/actors/agents/build/${name}.wasm`)).toBe(true);
      expect(existsSync(path.replace(/\.wasm$/, '.manifest.json'))).toBe(true);
      expect(existsSync(path.replace(/\.wasm$/, '.sig'))).toBe(true);
    }
    expect(thrown(() => sampleAgentPath('counterr'))).toMatch(/^lockstep ships no sample agent 'counterr'; the samples are: bad_code, bad_init, counter, /);
    expect(thrown(() => sampleAgentPath('../../package'))).toMatch(/sample agent names are letters, digits/);
  });

  it('finds the policy model, the key that signed the samples and the AssemblyScript SDK', () => {
    const model = readFileSync(sampleModelPath('policy'));
    expect(createHash('sha256').update(model).digest('hex')).toBe(
      createHash('sha256').update(readFileSync(new URL('../actors/models/build/policy.onnx', import.meta.url))).digest('hex'),
    );
    expect(thrown(() => sampleModelPath('vad'))).toMatch(/lockstep ships no sample model 'vad'; the samples are: policy/);
    expect(publicKeyId(sampleKeyPem())).toBe('b38cca2f29653abe');
    expect(sampleKeyPath().endsWith('/examples/keys/dev.pub.pem')).toBe(true);
    expect(readFileSync(agentSdkPath(), 'utf8')).toContain('lockstep agent SDK for AssemblyScript');
  });
});
