/**
 * Plugin signatures (docs/abi.md "Manifest and signature", ADR-005): Ed25519 over
 *
 *   "lockstep-plugin-v1\n" || sha256(module bytes) || sha256(canonical manifest JSON)
 *
 * where both digests are the raw 32 bytes (83 bytes signed in all). Hashing first keeps the
 * signed message small whatever the module's size, and binding the manifest means a signed
 * module cannot be given wider capabilities or limits without a new signature.
 *
 * On disk a plugin is three files side by side: `<base>.wasm`, `<base>.manifest.json` and
 * `<base>.sig` (JSON: { algorithm, keyId, signature }). A missing `.sig` is an unsigned plugin.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { closeSync, constants, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { AdmissionError, ConfigError } from '../errors.ts';
import { canonicalManifestJson, parseManifest, type PluginManifest } from './manifest.ts';
import { manifestFileBytesMax, moduleFileBytesMax, signatureFileBytesMax } from '../limits.ts';

export interface PluginSignature {
  algorithm: 'ed25519';
  keyId: string;
  /** The 64-byte Ed25519 signature, base64. */
  signature: string;
}

/** Domain separation: a signature made for anything else can never verify as a plugin's. */
const signatureDomain = 'lockstep-plugin-v1\n';
const keyIdHexChars = 16;
const ed25519PublicKeyBytes = 32;
const ed25519SignatureBytes = 64;

/**
 * Takes nothing. Returns a fresh Ed25519 key pair as PEM (SPKI public, PKCS#8 private) and its
 * keyId. Throws nothing.
 */
export function generateKeyPair(): { publicKeyPem: string; privateKeyPem: string; keyId: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    keyId: keyIdOf(publicKey),
  };
}

/**
 * Takes an Ed25519 public key (PEM or KeyObject). Returns its keyId: the first 16 hex digits
 * of sha256 over the raw 32-byte public key, so the id does not depend on the PEM's wrapping.
 * Throws ConfigError when the key is not an Ed25519 public key.
 */
export function publicKeyId(publicKey: string | KeyObject): string {
  return keyIdOf(typeof publicKey === 'string' ? publicKeyFromPem(publicKey, 'public key') : publicKey);
}

/**
 * Takes the module bytes, its manifest and a PEM Ed25519 private key. Returns the detached
 * signature over the message docs/abi.md defines. Throws ConfigError when the key is not an
 * Ed25519 private key PEM.
 */
export function signPlugin(moduleBytes: Uint8Array, manifest: PluginManifest, privateKeyPem: string): PluginSignature {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(privateKeyPem);
  } catch (error) {
    throw new ConfigError(`the signing key is not a PEM private key (${(error as Error).message}); create one with 'lockstep keygen'`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new ConfigError(`the signing key is a ${privateKey.asymmetricKeyType ?? 'unknown'} key; plugins are signed with Ed25519: create one with 'lockstep keygen'`);
  }
  const signature = sign(null, signedMessage(createHash('sha256').update(moduleBytes).digest(), manifest), privateKey);
  return { algorithm: 'ed25519', keyId: keyIdOf(createPublicKey(privateKey)), signature: signature.toString('base64') };
}

/**
 * Takes the module bytes, its manifest, its signature (null when unsigned), the trusted public
 * keys (PEM) and the name to use in messages. Returns the keyId that verified. Throws
 * AdmissionError `admission_unsigned` (no signature), `admission_untrusted` (signed by a key
 * not in the trusted list), `admission_signature` (a malformed signature, or one that does not
 * verify: the module or manifest changed after signing), and ConfigError for a trusted key
 * that is not an Ed25519 public key PEM.
 */
export function verifyPlugin(
  moduleBytes: Uint8Array,
  manifest: PluginManifest,
  signature: PluginSignature | null,
  trustedKeysPem: readonly string[],
  name = `'${manifest.name}'`,
): { keyId: string } {
  return verifyPluginDigest(createHash('sha256').update(moduleBytes).digest('hex'), manifest, signature, trustedKeysPem, name);
}

/**
 * `verifyPlugin` for a module known by its sha256 (64 hex digits) rather than its bytes: what
 * a runtime holds of an agent loaded earlier. Same result and errors.
 */
export function verifyPluginDigest(
  moduleSha256: string,
  manifest: PluginManifest,
  signature: PluginSignature | null,
  trustedKeysPem: readonly string[],
  name = `'${manifest.name}'`,
): { keyId: string } {
  if (signature === null) {
    throw new AdmissionError(
      'admission_unsigned',
      `module ${name} is not signed; sign it with 'lockstep sign <module> <manifest> --key <key.pem>' ` +
        '(or, for development only, allow unsigned plugins with allowUnsigned / --allow-unsigned)',
    );
  }
  checkSignatureShape(signature, name);
  const trusted = new Map<string, KeyObject>();
  for (const [index, pem] of trustedKeysPem.entries()) {
    const key = publicKeyFromPem(pem, `trusted key #${index + 1}`);
    trusted.set(keyIdOf(key), key);
  }
  const key = trusted.get(signature.keyId);
  if (key === undefined) {
    throw new AdmissionError(
      'admission_untrusted',
      `module ${name} is signed by key ${signature.keyId}, which is not trusted here ` +
        `(trusted: ${trusted.size === 0 ? 'none' : [...trusted.keys()].join(', ')}); ` +
        "if you trust its owner, add that key's public PEM to the runtime's trustedKeys (lockstep run --trust <pub.pem>), or re-sign with a trusted key",
    );
  }
  const signatureBytes = Buffer.from(signature.signature, 'base64');
  if (!verify(null, signedMessage(Buffer.from(moduleSha256, 'hex'), manifest), key, signatureBytes)) {
    throw new AdmissionError(
      'admission_signature',
      `module ${name}: the signature by key ${signature.keyId} does not match; the module bytes or its manifest ` +
        'changed after signing. Use the files exactly as signed, or re-sign them',
    );
  }
  return { keyId: signature.keyId };
}

/**
 * Takes the path of a plugin's `.wasm` file. Returns the paths of its three files: the module,
 * `<base>.manifest.json` and `<base>.sig`, where base is the path without `.wasm`. Throws nothing.
 */
export function pluginPaths(wasmPath: string): { wasm: string; manifest: string; signature: string } {
  const extension = extname(wasmPath);
  const base = extension === '.wasm' ? join(dirname(wasmPath), basename(wasmPath, extension)) : wasmPath;
  return { wasm: wasmPath, manifest: `${base}.manifest.json`, signature: `${base}.sig` };
}

/**
 * Takes the path of a plugin's `.wasm` file. Returns its bytes (a fresh Uint8Array), its parsed
 * manifest, its signature (null when there is no `.sig` file) and its name for messages (the
 * file name). Checks nothing about the module itself: that is admission's job. Throws
 * AdmissionError `admission_file` for a missing or oversized file, `admission_manifest` for a
 * manifest that is not valid JSON or not a valid manifest, `admission_signature` for a `.sig`
 * file that is not a signature.
 */
export function loadPluginFiles(wasmPath: string): {
  bytes: Uint8Array;
  manifest: PluginManifest;
  signature: PluginSignature | null;
  name: string;
} {
  const paths = pluginPaths(wasmPath);
  const name = basename(wasmPath);
  const bytes = readBounded(paths.wasm, moduleFileBytesMax, `module '${paths.wasm}'`, 'check the path');
  const manifestText = readBounded(
    paths.manifest,
    manifestFileBytesMax,
    `manifest '${paths.manifest}' for module '${name}'`,
    "write one next to the module (see docs/abi.md), or let 'lockstep sign <module> <manifest> --key <key.pem>' copy it there",
  );
  const manifest = parseManifest(parseJson(manifestText, paths.manifest, 'admission_manifest', 'fix the JSON (docs/abi.md shows a manifest)'), `'${paths.manifest}'`);
  let signature: PluginSignature | null = null;
  if (existsSync(paths.signature)) {
    const signatureText = readBounded(paths.signature, signatureFileBytesMax, `signature '${paths.signature}'`, 're-sign the module');
    const parsed = parseJson(signatureText, paths.signature, 'admission_signature', "re-sign with 'lockstep sign'");
    signature = checkSignatureShape(parsed, `'${name}' (${paths.signature})`);
  }
  return { bytes, manifest, signature, name };
}

/** The exact bytes an Ed25519 plugin signature covers (see the file comment), from the module's raw sha256. */
function signedMessage(moduleSha256: Uint8Array, manifest: PluginManifest): Buffer {
  if (moduleSha256.byteLength !== 32) throw new Error(`assertion: a sha256 digest has 32 bytes, got ${moduleSha256.byteLength}`);
  return Buffer.concat([
    Buffer.from(signatureDomain, 'utf8'),
    moduleSha256,
    createHash('sha256').update(canonicalManifestJson(manifest), 'utf8').digest(),
  ]);
}

function keyIdOf(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' });
  const raw = Buffer.from(jwk.x ?? '', 'base64url');
  if (raw.length !== ed25519PublicKeyBytes) throw new Error(`assertion: Ed25519 public key of ${raw.length} bytes`);
  return createHash('sha256').update(raw).digest('hex').slice(0, keyIdHexChars);
}

function publicKeyFromPem(pem: string, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw new ConfigError(`${what} is not a PEM public key (${(error as Error).message}); use the .pub.pem that 'lockstep keygen' wrote`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new ConfigError(`${what} is a ${key.asymmetricKeyType ?? 'unknown'} key; plugin keys are Ed25519: use the .pub.pem that 'lockstep keygen' wrote`);
  }
  return key;
}

function checkSignatureShape(value: unknown, name: string): PluginSignature {
  const record = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const problem =
    record.algorithm !== 'ed25519'
      ? `algorithm must be 'ed25519', got ${JSON.stringify(record.algorithm) ?? 'nothing'}`
      : typeof record.keyId !== 'string' || !/^[0-9a-f]{16}$/.test(record.keyId)
        ? 'keyId must be 16 lowercase hex digits'
        : typeof record.signature !== 'string' || !isBase64OfLength(record.signature, ed25519SignatureBytes)
          ? `signature must be ${ed25519SignatureBytes} bytes in base64`
          : null;
  if (problem !== null) {
    throw new AdmissionError('admission_signature', `module ${name}: malformed signature (${problem}); re-sign with 'lockstep sign'`);
  }
  return { algorithm: 'ed25519', keyId: record.keyId as string, signature: record.signature as string };
}

function isBase64OfLength(text: string, bytes: number): boolean {
  // Node's base64 decoder skips junk silently; insist on the canonical form so one signature
  // has one spelling.
  return /^[A-Za-z0-9+/]*={0,2}$/.test(text) && Buffer.from(text, 'base64').length === bytes && Buffer.from(text, 'base64').toString('base64') === text;
}

function readBounded(path: string, bytesMax: number, what: string, fix: string): Uint8Array {
  if (!existsSync(path)) throw new AdmissionError('admission_file', `${what} does not exist; ${fix}`);
  // One open file, checked and read with a bound: a FIFO or a device behind the path must
  // neither block the loader nor feed it without end.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new AdmissionError('admission_file', `${what} is not a regular file; ${fix}`);
    if (stat.size > bytesMax) throw new AdmissionError('admission_file', `${what} is ${stat.size} bytes, more than the ${bytesMax} a plugin file may have; check the path`);
    // A fresh Uint8Array, not a pooled Buffer view: wabt misreads views into a shared pool.
    const bytes = new Uint8Array(stat.size);
    let read = 0;
    while (read < bytes.length) {
      const count = readSync(fd, bytes, read, bytes.length - read, read);
      if (count === 0) break;
      read += count;
    }
    return read === bytes.length ? bytes : bytes.slice(0, read);
  } finally {
    closeSync(fd);
  }
}

function parseJson(bytes: Uint8Array, path: string, code: 'admission_manifest' | 'admission_signature', fix: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as unknown;
  } catch (error) {
    throw new AdmissionError(code, `'${path}' is not valid JSON (${(error as Error).message}); ${fix}`, { cause: error });
  }
}
