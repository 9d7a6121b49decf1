import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { lockstepVersion } from 'lockstep';

describe('install', () => {
  it('loads onnxruntime-node\'s native CPU backend (its CUDA download is skipped, not needed)', async () => {
    const ort = await import('onnxruntime-node');
    const backends = ort.listSupportedBackends().map((backend) => backend.name);
    expect(backends).toContain('cpu');
  });

  it('writes the package version into log headers', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(lockstepVersion).toBe(pkg.version);
  });
});
