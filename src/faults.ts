/**
 * Fault injection (ADR-011): a plan of faults at given ticks, written by hand or drawn from
 * a seed. The runtime turns each fault into an input of the tick it is due in (a control
 * request, or for a malformed payload the payload itself), so the log records it and
 * replay applies it at the same point without the plan.
 *
 *   crash        the actor (JS, WASM or supervisor) crashes as the tick begins
 *   exhaustFuel  the WASM agent's fuel for the tick is spent: its next call traps
 *   killWorker   the worker thread is terminated mid-tick; all its agents crash
 *   malformed    seeded garbage bytes are delivered to the actor's inbox (or a topic)
 *
 * Which agents a killed worker takes down depends on the worker count (agent id modulo
 * workers): replay a run with killWorker faults with the worker count it was recorded with.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors.ts';
import type { Kernel } from './kernel.ts';
import { Random } from './prng.ts';
import { malformedBytesDefault } from './limits.ts';

export type Fault =
  | { tick: number; kind: 'crash'; actor: string }
  | { tick: number; kind: 'exhaustFuel'; actor: string }
  | { tick: number; kind: 'killWorker'; worker: number }
  | { tick: number; kind: 'malformed'; actor?: string; topic?: string; bytes?: number };

export type FaultKind = Fault['kind'];
export const faultKinds: readonly FaultKind[] = ['crash', 'exhaustFuel', 'killWorker', 'malformed'];

export interface FaultPlan {
  /** Seeds the bytes of malformed payloads. */
  seed: number;
  faults: readonly Fault[];
}


function planError(where: string, problem: string): never {
  throw new ConfigError(
    `fault plan: ${where} ${problem}. A plan is { "seed": 1, "faults": [{ "tick": 10, "kind": "crash", "actor": "root/worker" }, ...] } ` +
      `with kinds ${faultKinds.join(', ')}`,
  );
}

function isTick(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1;
}

/** Checks a plan (from code or JSON); throws ConfigError naming the bad fault and field. */
export function checkFaultPlan(plan: unknown): FaultPlan {
  if (plan === null || typeof plan !== 'object') planError('the plan', 'must be an object');
  const { seed, faults } = plan as { seed?: unknown; faults?: unknown };
  const seedValue = seed ?? 0;
  if (!(typeof seedValue === 'number' && Number.isInteger(seedValue) && seedValue >= 0 && seedValue <= 0xffff_ffff)) {
    planError("'seed'", `must be an unsigned 32-bit integer, got ${JSON.stringify(seed)}`);
  }
  if (!Array.isArray(faults)) planError("'faults'", 'must be an array');
  const checked: Fault[] = [];
  faults.forEach((fault: unknown, index) => {
    const where = `faults[${index}]`;
    if (fault === null || typeof fault !== 'object') planError(where, 'must be an object');
    const f = fault as Record<string, unknown>;
    if (!isTick(f.tick)) planError(`${where}.tick`, `must be an integer >= 1, got ${JSON.stringify(f.tick)}`);
    switch (f.kind) {
      case 'crash':
      case 'exhaustFuel':
        if (typeof f.actor !== 'string' || f.actor.length === 0) planError(`${where}.actor`, 'must name an actor');
        checked.push({ tick: f.tick, kind: f.kind, actor: f.actor });
        break;
      case 'killWorker':
        if (!(typeof f.worker === 'number' && Number.isInteger(f.worker) && f.worker >= 0)) planError(`${where}.worker`, 'must be a worker index >= 0');
        checked.push({ tick: f.tick, kind: 'killWorker', worker: f.worker });
        break;
      case 'malformed': {
        if ((f.actor === undefined) === (f.topic === undefined)) planError(where, "must name either an 'actor' (its inbox) or a 'topic'");
        if (f.actor !== undefined && typeof f.actor !== 'string') planError(`${where}.actor`, 'must be a string');
        if (f.topic !== undefined && typeof f.topic !== 'string') planError(`${where}.topic`, 'must be a string');
        const bytes = f.bytes ?? malformedBytesDefault;
        if (!(typeof bytes === 'number' && Number.isInteger(bytes) && bytes >= 0 && bytes <= 65_536)) planError(`${where}.bytes`, 'must be an integer in 0..65536');
        checked.push({ tick: f.tick, kind: 'malformed', ...(f.actor !== undefined ? { actor: f.actor as string } : { topic: f.topic as string }), bytes });
        break;
      }
      default:
        planError(`${where}.kind`, `is ${JSON.stringify(f.kind)}, not a known kind`);
    }
  });
  checked.sort((a, b) => a.tick - b.tick);
  return { seed: seedValue, faults: checked };
}

/** Reads and checks a plan file (`lockstep run --faults plan.json`). */
export function loadFaultPlan(path: string): FaultPlan {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`fault plan: cannot read ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`fault plan: ${path} is not JSON: ${(error as Error).message}`);
  }
  return checkFaultPlan(parsed);
}

export interface RandomFaultOptions {
  seed: number;
  /** Faults fall in ticks 1..ticks. */
  ticks: number;
  /** Expected faults per tick (0..1). */
  rate: number;
  /** Actors that may be crashed or sent garbage. */
  actors: readonly string[];
  /** WASM agents whose fuel may be exhausted. */
  agents?: readonly string[];
  /** Worker count, for killWorker faults (0 or absent: none). */
  workers?: number;
  kinds?: readonly FaultKind[];
}

/** Draws a plan from a seed: the same options give the same plan. */
export function randomFaultPlan(options: RandomFaultOptions): FaultPlan {
  const random = new Random(options.seed, 0xfa17, 0);
  const kinds = (options.kinds ?? faultKinds).filter(
    (kind) =>
      (kind !== 'exhaustFuel' || (options.agents?.length ?? 0) > 0) &&
      (kind !== 'killWorker' || (options.workers ?? 0) > 0) &&
      ((kind !== 'crash' && kind !== 'malformed') || options.actors.length > 0),
  );
  const faults: Fault[] = [];
  if (kinds.length === 0) return { seed: options.seed, faults };
  for (let tick = 1; tick <= options.ticks; tick++) {
    if (random.next() >= options.rate) continue;
    const kind = kinds[random.int(kinds.length)]!;
    if (kind === 'crash') faults.push({ tick, kind, actor: options.actors[random.int(options.actors.length)]! });
    else if (kind === 'malformed') faults.push({ tick, kind, actor: options.actors[random.int(options.actors.length)]!, bytes: 1 + random.int(32) });
    else if (kind === 'exhaustFuel') faults.push({ tick, kind, actor: options.agents![random.int(options.agents!.length)]! });
    else faults.push({ tick, kind, worker: random.int(options.workers!) });
  }
  return { seed: options.seed, faults };
}

/** The garbage bytes of malformed fault number `index` of a plan. */
export function malformedBytes(plan: FaultPlan, index: number, length: number): Uint8Array {
  const random = new Random(plan.seed, 0xbad, index);
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = random.int(256);
  // Never a valid JSON text: a JSON actor must see it as malformed, whatever the draw.
  if (length > 0) bytes[0] = 0xff;
  return bytes;
}

// ── taking faults in ─────────────────────────────────────────────────────────────────

/**
 * Control channels the fault layer owns (see the kernel's control topic). The numbers are
 * in every log that holds a fault: they never change.
 */
export const FaultChannel = { crash: 4, exhaustFuel: 5, killWorker: 6 } as const;

/** What the runtime lends the injector: how each fault is carried out, and who hears of it. */
export interface FaultTargets {
  /** Crashes actor `target` (JS, WASM or supervisor); returns null, or why it could not. */
  crash(target: number): string | null;
  /** Spends WASM agent `target`'s fuel for the tick; returns null, or why it could not. */
  exhaustFuel(target: number): string | null;
  /** Terminates worker `index` mid-tick; returns null, or why it could not. */
  killWorker(index: number): string | null;
  /** Told of each fault taken in or refused (for the event bus). */
  taken(fault: { fault: FaultKind; target: string; applied: boolean; reason: string }): void;
}

/**
 * Takes a plan's faults in as inputs of the ticks they are due in, and carries out fault
 * requests (from the plan, or `runtime.actor(name).crash()`) when the kernel delivers them.
 * A fault that names no current actor (or finds no room) is logged as refused, never
 * thrown: a plan must not stop the run.
 */
export class FaultInjector {
  private next = 0;

  constructor(
    private readonly kernel: Kernel,
    private readonly plan: FaultPlan | null,
    private readonly targets: FaultTargets,
  ) {
    const run = (kind: 'crash' | 'exhaustFuel' | 'killWorker', carry: (target: number) => string | null) => (target: number) => {
      const refused = carry(target);
      const name = kind === 'killWorker' ? `worker ${target}` : kernel.actorName(target);
      targets.taken({ fault: kind, target: name, applied: refused === null, reason: refused ?? '' });
      return refused;
    };
    kernel.openControlChannel(FaultChannel.crash, { targetsActor: true }, run('crash', (target) => targets.crash(target)));
    kernel.openControlChannel(FaultChannel.exhaustFuel, { targetsActor: true }, run('exhaustFuel', (target) => targets.exhaustFuel(target)));
    kernel.openControlChannel(FaultChannel.killWorker, { targetsActor: false }, run('killWorker', (index) => targets.killWorker(index)));
  }

  /** Requests a crash of actor `target` at the next tick boundary (a logged input). */
  crash(target: number): void {
    this.kernel.control(FaultChannel.crash, target);
  }

  /** Requests that WASM agent `target`'s fuel be spent at the next tick boundary. */
  exhaustFuel(target: number): void {
    this.kernel.control(FaultChannel.exhaustFuel, target);
  }

  /** Takes in the plan's faults due at `tick` (called before the tick begins). */
  takeDue(tick: number): void {
    const plan = this.plan;
    if (plan === null) return;
    while (this.next < plan.faults.length && plan.faults[this.next]!.tick <= tick) {
      const index = this.next++;
      const fault = plan.faults[index]!;
      if (fault.tick < tick) continue;
      try {
        if (fault.kind === 'killWorker') {
          this.kernel.control(FaultChannel.killWorker, fault.worker);
        } else if (fault.kind === 'malformed') {
          const topic = fault.actor !== undefined ? this.kernel.inboxTopicOf(this.kernel.actorId(fault.actor)) : this.kernel.topicId(fault.topic!);
          this.kernel.inject(topic, malformedBytes(plan, index, fault.bytes ?? malformedBytesDefault), 0);
          this.targets.taken({ fault: 'malformed', target: fault.actor ?? fault.topic!, applied: true, reason: '' });
        } else {
          this.kernel.control(fault.kind === 'crash' ? FaultChannel.crash : FaultChannel.exhaustFuel, this.kernel.actorId(fault.actor));
        }
      } catch (error) {
        const reason = `refused: fault plan, ${fault.kind} at tick ${tick}: ${(error as Error).message}`;
        this.kernel.refuseInput(reason);
        const target = fault.kind === 'killWorker' ? `worker ${fault.worker}` : fault.kind === 'malformed' ? (fault.actor ?? fault.topic!) : fault.actor;
        this.targets.taken({ fault: fault.kind, target, applied: false, reason });
      }
    }
  }
}
