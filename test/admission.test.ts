import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AdmissionError } from '../src/errors.ts';
import { admissionPolicyDefaults, admitPlugin, type AdmissionPolicy } from '../src/wasm/admission.ts';
import type { PluginManifest } from '../src/wasm/manifest.ts';
import { generateKeyPair, signPlugin, type PluginSignature } from '../src/wasm/signing.ts';
import { agentWatDefaults, minimalAgentWat, wat, type AgentWatParts } from './fixtures/wat.ts';

const devPrivateKeyPem = readFileSync(new URL('../examples/keys/dev.key.pem', import.meta.url), 'utf8');
const devPublicKeyPem = readFileSync(new URL('../examples/keys/dev.pub.pem', import.meta.url), 'utf8');
const devKeyId = 'b38cca2f29653abe';

function manifest(overrides: Partial<PluginManifest> = {}): PluginManifest {
  return {
    name: 'forager',
    version: '1.0.0',
    abi: 1,
    capabilities: { publish: ['food'], subscribe: ['map'], models: [] },
    limits: { fuelPerStep: 1_000_000, memoryPages: 16 },
    ...overrides,
  };
}

const trustDev: AdmissionPolicy = { ...admissionPolicyDefaults, trustedKeysPem: [devPublicKeyPem] };

/** Signs with the dev key, as a well-behaved author would, unless told otherwise. */
function admit(
  bytes: Uint8Array,
  options: { manifest?: PluginManifest; signature?: PluginSignature | null; policy?: Partial<AdmissionPolicy> } = {},
) {
  const pluginManifest = options.manifest ?? manifest();
  const signature = options.signature === undefined ? signPlugin(bytes, pluginManifest, devPrivateKeyPem) : options.signature;
  return admitPlugin({ name: 'forager.wasm', bytes, manifest: pluginManifest, signature }, { ...trustDev, ...options.policy });
}

function agent(overrides: Partial<AgentWatParts> = {}): Uint8Array {
  return wat(minimalAgentWat(overrides));
}

/** Runs `action`, expects an AdmissionError, returns it for closer checks. */
function refusal(action: () => unknown): AdmissionError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(AdmissionError);
    return error as AdmissionError;
  }
  throw new Error('expected admission to refuse the module, but it was admitted');
}

/** A custom section appended to a valid module: still valid, but different bytes. */
function withCustomSection(bytes: Uint8Array): Uint8Array {
  const name = new TextEncoder().encode('tamper');
  const payload = [name.length, ...name, 1, 2, 3];
  return new Uint8Array([...bytes, 0, payload.length, ...payload]);
}

describe('admission: a valid agent', () => {
  it('is admitted with its sha256 and the keyId that signed it', () => {
    const bytes = agent();
    const admitted = admit(bytes);
    expect(admitted.name).toBe('forager.wasm');
    expect(admitted.manifest).toEqual(manifest());
    expect(admitted.keyId).toBe(devKeyId);
    expect(admitted.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(admitted.bytes).toEqual(bytes);
    // A private copy: changing the caller's buffer afterwards cannot change what was admitted.
    expect(admitted.bytes.buffer).not.toBe(bytes.buffer);
  });

  it('may use the allowed post-MVP features: SIMD, bulk memory, sign extension, saturating truncation, multi-value', () => {
    const bytes = agent({
      extra: `
        (func (param v128 f32 i32) (result v128 i32 i32)
          local.get 0 local.get 0 i32x4.add
          local.get 1 i32.trunc_sat_f32_s
          local.get 2 i32.extend8_s)
        (func i32.const 0 i32.const 0 i32.const 16 memory.copy
              i32.const 0 i32.const 0 i32.const 16 memory.fill)
        (global (export "counter") (mut i32) (i32.const 0))`,
    });
    expect(admit(bytes).keyId).toBe(devKeyId);
  });

  it('accepts lockstep_abi_version as AssemblyScript writes it unoptimised (i32.const 1, return) and with locals', () => {
    const bytes = agent({ lockstep_abi_version: '(func (export "lockstep_abi_version") (result i32) (local i64 i32) i32.const 1 return)' });
    expect(admit(bytes).keyId).toBe(devKeyId);
  });

  it('accepts a module that imports nothing at all', () => {
    expect(admit(agent({ imports: '' })).keyId).toBe(devKeyId);
  });
});

describe('admission: size and parse', () => {
  it('refuses a module over moduleBytesMax before reading it', () => {
    const bytes = agent();
    const error = refusal(() => admit(bytes, { policy: { moduleBytesMax: bytes.length - 1 } }));
    expect(error.code).toBe('admission_size');
    expect(error.message).toMatch(/module 'forager\.wasm' is \d+ bytes, more than the \d+ allowed \(moduleBytesMax\)/);
  });

  it('checks size first: 8 MiB + 1 of garbage is a size refusal, not a parse error', () => {
    const bytes = new Uint8Array(8 * 1024 * 1024 + 1).fill(0xab);
    expect(refusal(() => admit(bytes, { signature: null })).code).toBe('admission_size');
  });

  it('refuses garbage bytes as malformed, with wabt\'s reason', () => {
    const error = refusal(() => admit(new TextEncoder().encode('this is not a wasm module'), { signature: null }));
    expect(error.code).toBe('admission_malformed');
    expect(error.message).toMatch(/module 'forager\.wasm' is not a valid WebAssembly module \(wabt: at byte 0x\w+: bad magic value\)/);
  });

  it('refuses a truncated module as malformed', () => {
    const bytes = agent();
    const error = refusal(() => admit(bytes.subarray(0, bytes.length - 5), { signature: null }));
    expect(error.code).toBe('admission_malformed');
    expect(error.message).toMatch(/not a valid WebAssembly module \(wabt: at byte 0x\w+: .+\)/);
  });

  it('refuses an empty file as malformed', () => {
    expect(refusal(() => admit(new Uint8Array(0), { signature: null })).code).toBe('admission_malformed');
  });
});

describe('admission: features', () => {
  it('refuses shared memory (threads)', () => {
    const error = refusal(() => admit(agent({ memory: '(memory (export "memory") 1 16 shared)' })));
    expect(error.code).toBe('admission_feature');
    expect(error.message).toMatch(/module 'forager\.wasm' uses threads \(shared memory or atomic instructions\)/);
    expect(error.message).toMatch(/memory may not be shared/);
  });

  it('refuses an atomic instruction even on an unshared memory', () => {
    const error = refusal(() => admit(agent({ extra: '(func (result i32) i32.const 0 i32.atomic.load)' })));
    expect(error.code).toBe('admission_feature');
    expect(error.message).toMatch(/uses threads/);
    expect(error.message).toMatch(/unexpected opcode: 0xfe 0x10/);
  });

  it('refuses relaxed SIMD (i32x4.relaxed_trunc_f32x4_s)', () => {
    const error = refusal(() => admit(agent({ extra: '(func (param v128) (result v128) local.get 0 i32x4.relaxed_trunc_f32x4_s)' })));
    expect(error.code).toBe('admission_feature');
    expect(error.message).toMatch(/uses relaxed SIMD: its results differ between CPUs/);
  });

  it('refuses memory64', () => {
    const error = refusal(() => admit(agent({ memory: '(memory (export "memory") i64 1 16)' })));
    expect(error.code).toBe('admission_feature');
    expect(error.message).toMatch(/uses memory64/);
  });

  it('refuses tail calls, exception handling and reference types', () => {
    const tail = refusal(() => admit(agent({ extra: '(func $again return_call $again)' })));
    expect([tail.code, tail.message.match(/uses tail calls/) !== null]).toEqual(['admission_feature', true]);
    const exceptions = refusal(() => admit(agent({ extra: '(tag $oops) (func throw $oops)' })));
    expect([exceptions.code, exceptions.message.match(/uses exception handling/) !== null]).toEqual(['admission_feature', true]);
    const externref = refusal(() => admit(agent({ extra: '(func (result externref) ref.null extern)' })));
    expect([externref.code, externref.message.match(/uses reference types/) !== null]).toEqual(['admission_feature', true]);
  });

  it('refuses two tables (reference types), though one funcref table for call_indirect is fine', () => {
    const error = refusal(() => admit(agent({ extra: '(table 1 1 funcref) (table 1 1 funcref)' })));
    expect(error.code).toBe('admission_feature');
    expect(error.message).toMatch(/uses reference types/);
    const one = agent({ extra: '(type $v (func)) (table 1 1 funcref) (elem (i32.const 0) $nop) (func $nop) (func i32.const 0 call_indirect (type $v))' });
    expect(admit(one).keyId).toBe(devKeyId);
  });
});

describe('admission: imports', () => {
  it('refuses WASI', () => {
    const error = refusal(() =>
      admit(agent({ imports: '(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))' })),
    );
    expect(error.code).toBe('admission_import');
    expect(error.message).toMatch(/^module 'forager\.wasm' imports 'wasi_snapshot_preview1\.fd_write'; agents may import only from 'lockstep'/);
  });

  it('refuses env.abort (AssemblyScript without --use abort=)', () => {
    const error = refusal(() => admit(agent({ imports: '(import "env" "abort" (func (param i32 i32 i32 i32)))' })));
    expect(error.code).toBe('admission_import');
    expect(error.message).toMatch(/imports 'env\.abort'; agents may import only from 'lockstep'.*--use abort=/);
  });

  it('refuses a lockstep import with the wrong signature', () => {
    const error = refusal(() => admit(agent({ imports: '(import "lockstep" "publish" (func (param i32 i32 i32) (result i32)))' })));
    expect(error.code).toBe('admission_import');
    expect(error.message).toMatch(/imports 'lockstep\.publish' as \(i32, i32, i32\) -> i32; ABI v1 defines it as \(i32, i32, i32, i32\) -> i32/);
  });

  it('admits the optional lockstep.backpressure () -> i32 in both versions', () => {
    const imports = `${agentWatDefaults.imports}
      (import "lockstep" "backpressure" (func $backpressure (result i32)))`;
    expect(admit(agent({ imports })).keyId).toBe(devKeyId);
    const v2 = agent({ imports, lockstep_abi_version: '(func (export "lockstep_abi_version") (result i32) i32.const 2)' });
    expect(admit(v2, { manifest: manifest({ abi: 2 }) }).keyId).toBe(devKeyId);
  });

  it('refuses lockstep.backpressure with the wrong type, or as a global', () => {
    const v2 = manifest({ abi: 2 });
    const withBackpressure = (declaration: string) =>
      agent({ imports: `(import "lockstep" "backpressure" ${declaration})`, lockstep_abi_version: '(func (export "lockstep_abi_version") (result i32) i32.const 2)' });
    const wide = refusal(() => admit(withBackpressure('(func (result i64))'), { manifest: v2 }));
    expect(wide.code).toBe('admission_import');
    expect(wide.message).toMatch(/^module 'forager\.wasm' imports 'lockstep\.backpressure' as \(\) -> i64; ABI v2 defines it as \(\) -> i32 \(docs\/abi\.md\)$/);
    const asked = refusal(() => admit(withBackpressure('(func (param i32) (result i32))'), { manifest: v2 }));
    expect(asked.message).toMatch(/imports 'lockstep\.backpressure' as \(i32\) -> i32; ABI v2 defines it as \(\) -> i32/);
    const v1 = refusal(() => admit(agent({ imports: '(import "lockstep" "backpressure" (func))' })));
    expect(v1.message).toMatch(/imports 'lockstep\.backpressure' as \(\) -> \(\); ABI v1 defines it as \(\) -> i32/);
    const global = refusal(() => admit(withBackpressure('(global i32)'), { manifest: v2 }));
    expect([global.code, global.message.match(/imports 'lockstep\.backpressure' as a global; it is a function \(\) -> i32/) !== null]).toEqual(['admission_import', true]);
  });

  it('refuses a lockstep name the ABI does not have, and a lockstep import that is not a function', () => {
    const unknown = refusal(() => admit(agent({ imports: '(import "lockstep" "clock" (func (result i64)))' })));
    expect([unknown.code, unknown.message.match(/'lockstep\.clock', which ABI v1 does not have/) !== null]).toEqual(['admission_import', true]);
    const global = refusal(() => admit(agent({ imports: '(import "lockstep" "random" (global i32))' })));
    expect([global.code, global.message.match(/imports 'lockstep\.random' as a global/) !== null]).toEqual(['admission_import', true]);
  });
});

describe('admission: exports', () => {
  const functionExports = ['lockstep_abi_version', 'agent_alloc', 'agent_init', 'agent_receive', 'agent_step', 'agent_shutdown'] as const;

  it.each(functionExports)('refuses a module without %s', (exportName) => {
    // Keep the function, drop only its export: the module stays valid, the ABI does not.
    const withoutExport = minimalAgentWat().match(new RegExp(`\\(func \\(export "${exportName}"\\)[^\\n]*`))?.[0] ?? '';
    expect(withoutExport).not.toBe('');
    const error = refusal(() => admit(agent({ [exportName]: withoutExport.replace(`(export "${exportName}")`, '') })));
    expect(error.code).toBe('admission_export');
    expect(error.message).toMatch(new RegExp(`module 'forager\\.wasm' does not export '${exportName}'; ABI v1 requires it to export a function`));
  });

  it('refuses a module that does not export its memory', () => {
    const error = refusal(() => admit(agent({ memory: '(memory 1 16)' })));
    expect(error.code).toBe('admission_export');
    expect(error.message).toMatch(/does not export 'memory'/);
  });

  it('refuses an export with the wrong signature', () => {
    const error = refusal(() => admit(agent({ agent_step: '(func (export "agent_step") (param i64) (result i32) i32.const 0)' })));
    expect(error.code).toBe('admission_export');
    expect(error.message).toMatch(/exports 'agent_step' as \(i64\) -> i32; ABI v1 requires \(i32\) -> i32/);
  });

  it('refuses a required export of the wrong kind', () => {
    const error = refusal(() =>
      admit(agent({ agent_init: '(global (export "agent_init") i32 (i32.const 0))' })),
    );
    expect(error.code).toBe('admission_export');
    expect(error.message).toMatch(/exports 'agent_init' as a global; it must be a function \(\) -> i32/);
  });

  it('refuses exports under the host\'s reserved lockstep_ prefix (metering adds lockstep_fuel)', () => {
    const error = refusal(() => admit(agent({ extra: '(global (export "lockstep_fuel") (mut i64) (i64.const 0))' })));
    expect(error.code).toBe('admission_export');
    expect(error.message).toMatch(/exports 'lockstep_fuel'; names starting with 'lockstep_' are reserved/);
  });
});

describe('admission: memory', () => {
  it('refuses a memory without a maximum', () => {
    const error = refusal(() => admit(agent({ memory: '(memory (export "memory") 1)' })));
    expect(error.code).toBe('admission_memory');
    expect(error.message).toMatch(/declares no memory maximum.*at most 16 pages, the manifest's limits\.memoryPages \(16\)/);
  });

  it('refuses a maximum over the manifest\'s limits.memoryPages', () => {
    const error = refusal(() => admit(agent({ memory: '(memory (export "memory") 1 32)' })));
    expect(error.code).toBe('admission_memory');
    expect(error.message).toMatch(/maximum of 32 pages .* more than the manifest's limits\.memoryPages \(16\)/);
  });

  it('refuses a maximum over the policy\'s memoryPagesMax even when the manifest allows it', () => {
    const bytes = agent({ memory: '(memory (export "memory") 1 300)' });
    const error = refusal(() => admit(bytes, { manifest: manifest({ limits: { fuelPerStep: 1000, memoryPages: 1000 } }) }));
    expect(error.code).toBe('admission_memory');
    expect(error.message).toMatch(/maximum of 300 pages .* the admission policy's memoryPagesMax \(256; the manifest asks for 1000\)/);
  });

  it('admits a maximum exactly at the limit', () => {
    expect(admit(agent({ memory: '(memory (export "memory") 0 16)' })).keyId).toBe(devKeyId);
  });
});

describe('admission: start function', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('refuses a start section without ever running it (the start function loops forever)', () => {
    const instantiate = vi.spyOn(WebAssembly, 'instantiate');
    const instance = vi.spyOn(WebAssembly, 'Instance');
    const bytes = agent({ extra: '(func $forever (loop $again br $again)) (start $forever)' });
    // If admission ran the start function, this call would never return and the test would time out.
    const error = refusal(() => admit(bytes));
    expect(error.code).toBe('admission_start');
    expect(error.message).toMatch(/has a start function, which would run on instantiation before lockstep meters anything; lockstep never runs one\. Move that work into agent_init/);
    expect(instantiate).not.toHaveBeenCalled();
    expect(instance).not.toHaveBeenCalled();
  });
});

describe('admission: ABI version', () => {
  const versionBody = (version: number) => `(func (export "lockstep_abi_version") (result i32) i32.const ${version})`;
  const v2 = manifest({ abi: 2 });

  it('admits an ABI v2 module: lockstep_abi_version returns 2 and the manifest says "abi": 2', () => {
    const admitted = admit(agent({ lockstep_abi_version: versionBody(2) }), { manifest: v2 });
    expect([admitted.keyId, admitted.manifest.abi]).toEqual([devKeyId, 2]);
  });

  it('still admits an ABI v1 module (1 and "abi": 1), unoptimised AssemblyScript (i32.const 2, return) for v2 too', () => {
    const admitted = admit(agent());
    expect([admitted.keyId, admitted.manifest.abi]).toEqual([devKeyId, 1]);
    const unoptimised = agent({ lockstep_abi_version: '(func (export "lockstep_abi_version") (result i32) (local i32) i32.const 2 return)' });
    expect(admit(unoptimised, { manifest: v2 }).manifest.abi).toBe(2);
  });

  it('refuses abi 3 in the manifest, naming the versions it speaks', () => {
    const wrong = { ...manifest(), abi: 3 } as unknown as PluginManifest;
    const error = refusal(() => admit(agent(), { manifest: wrong, signature: null }));
    expect(error.code).toBe('admission_abi');
    expect(error.message).toMatch(/field 'abi' is 3, but this lockstep speaks only ABI v1 and v2 \(docs\/abi\.md\); build the agent against ABI v2 and write "abi": 2/);
  });

  it('refuses a module whose lockstep_abi_version disagrees with its manifest, either way round', () => {
    const newer = refusal(() => admit(agent({ lockstep_abi_version: versionBody(2) })));
    expect(newer.code).toBe('admission_abi');
    expect(newer.message).toMatch(
      /^module 'forager\.wasm' reports ABI version 2 \(lockstep_abi_version returns 2\), but its manifest says "abi": 1; .*must agree: write "abi": 2 in the manifest and re-sign, or build the module for ABI v1$/,
    );
    const older = refusal(() => admit(agent(), { manifest: v2 }));
    expect(older.code).toBe('admission_abi');
    expect(older.message).toMatch(/reports ABI version 1 \(lockstep_abi_version returns 1\), but its manifest says "abi": 2; .*build the module for ABI v2$/);
  });

  it('refuses lockstep_abi_version returning a version this lockstep does not speak (3, 0)', () => {
    for (const version of [3, 0]) {
      const error = refusal(() => admit(agent({ lockstep_abi_version: versionBody(version) }), { manifest: v2 }));
      expect(error.code).toBe('admission_abi');
      expect(error.message).toMatch(new RegExp(`reports ABI version ${version} \\(lockstep_abi_version returns ${version}\\); this lockstep speaks only ABI v1 and v2`));
    }
  });

  it('asks for the constant of the manifest\'s version when lockstep_abi_version cannot be read', () => {
    const error = refusal(() =>
      admit(agent({ lockstep_abi_version: '(func (export "lockstep_abi_version") (result i32) i32.const 1 i32.const 1 i32.add)' }), { manifest: v2 }),
    );
    expect(error.code).toBe('admission_abi');
    expect(error.message).toMatch(/does not simply return a constant.*ABI v2 \(the manifest's "abi": 2\) requires .*i32\.const 2\)/);
  });

  it('refuses a lockstep_abi_version that computes its answer (it is read, never run)', () => {
    const error = refusal(() =>
      admit(agent({ lockstep_abi_version: '(func (export "lockstep_abi_version") (result i32) i32.const 0 i32.const 1 i32.add)' })),
    );
    expect(error.code).toBe('admission_abi');
    expect(error.message).toMatch(/does not simply return a constant.*i32\.const 1/);
  });

  it('refuses the imported lockstep.random re-exported as lockstep_abi_version', () => {
    const error = refusal(() =>
      admit(agent({ lockstep_abi_version: '', extra: '(export "lockstep_abi_version" (func $random))' })),
    );
    expect(error.code).toBe('admission_abi');
    expect(error.message).toMatch(/exports an imported function as 'lockstep_abi_version'/);
  });
});

describe('admission: signature', () => {
  it('refuses an unsigned module', () => {
    const error = refusal(() => admit(agent(), { signature: null }));
    expect(error.code).toBe('admission_unsigned');
    expect(error.message).toMatch(/module 'forager\.wasm' is not signed; sign it with 'lockstep sign/);
  });

  it('refuses module bytes changed after signing', () => {
    const bytes = agent();
    const signature = signPlugin(bytes, manifest(), devPrivateKeyPem);
    const error = refusal(() => admit(withCustomSection(bytes), { signature }));
    expect(error.code).toBe('admission_signature');
    expect(error.message).toMatch(/signature by key b38cca2f29653abe does not match; the module bytes or its manifest changed after signing/);
  });

  it('refuses a manifest changed after signing (more fuel than was signed for)', () => {
    const bytes = agent();
    const signature = signPlugin(bytes, manifest(), devPrivateKeyPem);
    const greedy = manifest({ limits: { fuelPerStep: 1_000_000_000, memoryPages: 16 } });
    expect(refusal(() => admit(bytes, { manifest: greedy, signature })).code).toBe('admission_signature');
    const wider = manifest({ capabilities: { publish: ['food', 'orders'], subscribe: ['map'], models: [] } });
    expect(refusal(() => admit(bytes, { manifest: wider, signature })).code).toBe('admission_signature');
  });

  it('refuses a module signed by a key that is not trusted', () => {
    const stranger = generateKeyPair();
    const bytes = agent();
    const signature = signPlugin(bytes, manifest(), stranger.privateKeyPem);
    const error = refusal(() => admit(bytes, { signature }));
    expect(error.code).toBe('admission_untrusted');
    expect(error.message).toContain(`signed by key ${stranger.keyId}, which is not trusted here (trusted: ${devKeyId})`);
  });

  it('admits an unsigned module under allowUnsigned, with keyId null', () => {
    const bytes = agent();
    const admitted = admit(bytes, { signature: null, policy: { allowUnsigned: true, trustedKeysPem: [] } });
    expect(admitted.keyId).toBeNull();
    expect(admitted.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('allowUnsigned skips only the signature: a structural problem is still refused', () => {
    const bytes = agent({ imports: '(import "env" "abort" (func (param i32 i32 i32 i32)))' });
    expect(refusal(() => admit(bytes, { signature: null, policy: { allowUnsigned: true } })).code).toBe('admission_import');
  });

  it('checks structure before the signature, so an author sees the fixable problem first', () => {
    const bytes = agent({ imports: '(import "env" "abort" (func (param i32 i32 i32 i32)))' });
    expect(refusal(() => admit(bytes, { signature: null })).code).toBe('admission_import');
  });
});

describe('admission: every check has its own code', () => {
  it('the codes seen above are all distinct', () => {
    const codes = [
      refusal(() => admit(agent(), { policy: { moduleBytesMax: 10 } })).code,
      refusal(() => admit(new Uint8Array([0, 1, 2]), { signature: null })).code,
      refusal(() => admit(agent({ memory: '(memory (export "memory") 1 16 shared)' }))).code,
      refusal(() => admit(agent({ imports: '(import "env" "abort" (func))' }))).code,
      refusal(() => admit(agent({ agent_step: '' }))).code,
      refusal(() => admit(agent({ memory: '(memory (export "memory") 1)' }))).code,
      refusal(() => admit(agent({ extra: '(func $s) (start $s)' }))).code,
      refusal(() => admit(agent({ lockstep_abi_version: '(func (export "lockstep_abi_version") (result i32) i32.const 2)' }))).code,
      refusal(() => admit(agent(), { signature: null })).code,
      refusal(() => admit(withCustomSection(agent()), { signature: signPlugin(agent(), manifest(), devPrivateKeyPem) })).code,
      refusal(() => admit(agent(), { signature: signPlugin(agent(), manifest(), generateKeyPair().privateKeyPem) })).code,
    ];
    expect(new Set(codes).size).toBe(codes.length);
    expect(codes).toEqual([
      'admission_size',
      'admission_malformed',
      'admission_feature',
      'admission_import',
      'admission_export',
      'admission_memory',
      'admission_start',
      'admission_abi',
      'admission_unsigned',
      'admission_signature',
      'admission_untrusted',
    ]);
  });
});

describe('tables (security review)', () => {
  it('refuses a table without a maximum or larger than the limit: it would be allocated before any fuel is charged', async () => {
    const { admitPlugin, admissionPolicyDefaults } = await import('../src/wasm/admission.ts');
    const { wat, minimalAgentWat } = await import('./fixtures/wat.ts');
    const manifest = { name: 'tabled', version: '1.0.0', abi: 1 as const, capabilities: { publish: [], subscribe: [], models: [] }, limits: { fuelPerStep: 1000, memoryPages: 16 } };
    for (const table of ['(table 10000000 funcref)', '(table 1 funcref)', '(table 1 100000 funcref)']) {
      const bytes = wat(minimalAgentWat({ extra: table }));
      expect(() => admitPlugin({ name: 'tabled.wasm', bytes, manifest, signature: null }, { ...admissionPolicyDefaults, allowUnsigned: true })).toThrow(
        /a table must declare a maximum of at most 65536 entries/,
      );
    }
    const fine = wat(minimalAgentWat({ extra: '(table 4 4 funcref)' }));
    expect(admitPlugin({ name: 'tabled.wasm', bytes: fine, manifest, signature: null }, { ...admissionPolicyDefaults, allowUnsigned: true }).manifest.name).toBe('tabled');
  });
});
