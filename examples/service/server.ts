/**
 * A node:http service that hosts a lockstep supervision tree (system.ts).
 *
 *   npx tsx examples/service/server.ts [--port 8080] [--host 127.0.0.1] [--log .lockstep/service.log]
 *                                      [--seed 0] [--level digest|full] [--faults plan.json] [--fault-endpoint]
 *
 * How a request travels: the handler asks an actor through lockstep's host
 * (`host.askJson(actor, request)`): the host takes the ask in at the next tick boundary
 * (an input, in the log), runs the ticks, and resolves with the actor's `ctx.reply` once
 * the tick of the reply is on disk (durability 'tick'). Nothing outside the actors
 * changes their state, so the replay log (every request and injected fault is an input in
 * it) re-executes the run exactly.
 *
 * An ask whose actor never got it (it was down: AskFailedError with `received` false) was
 * never processed, so it is asked again, a few ticks later; one with no reply within
 * `replyTicksMax` ticks is answered 504, one whose actor crashed on it 503: either may
 * have been carried out, so neither is retried.
 *
 * Endpoints:
 *   GET    /kv/:key            200 {key, value, incarnation} | 404
 *   PUT    /kv/:key  (body)    201 created | 200 replaced | 400 | 413 | 507 store full
 *   DELETE /kv/:key            200 | 404
 *   GET    /primes/:limit      200 {limit, primes, worker, incarnation}
 *   GET    /health             200 when the root supervisor runs, else 503; the tree, every
 *                              actor's lifecycle and restarts, counters (runtime.snapshot())
 *   POST   /faults/crash/<actor name>   only with --fault-endpoint: crash it at the next tick
 * Errors every request may get: 503 {error: busy | dropped | shutting_down | store_recovering},
 * 504 {error: timeout}.
 *
 * On SIGTERM (or SIGINT) the service stops accepting connections, answers the requests
 * still waiting (a few ticks at most), closes the runtime (the tree stops in OTP order:
 * each supervisor's children in reverse start order, the supervisor after them; the log
 * gets its final record and is flushed), prints the run's digest and exits 0.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { AskFailedError, AskTimeoutError, createHost, loadFaultPlan, LockstepError, MailboxFullError, RuntimeClosedError, type Host, type HostOptions } from 'lockstep';
import system, { computeShards, keyBytesMax, names, primesLimitMax, rootName, valueBytesMax, type KvRequest, type Outcome } from './system.ts';

/** A request body is read up to this many bytes; a value is at most valueBytesMax of them. */
const bodyBytesMax = valueBytesMax;
/** On shutdown, how long responses already answered may take to reach their sockets. */
const responsesFlushMsMax = 2000;
/** Most requests waiting for a reply at once; more are answered 503 at once. */
const pendingMax = 512;
/** Ticks a request may wait for its reply before it is answered 504. */
const replyTicksMax = 200;
/** Times an ask its actor never got is asked again before it is answered 503. */
const retriesMax = 4;
/** Ticks between such a drop and the retry (lets a supervisor's restart land first). */
const retryDelayTicks = 2;

interface ServiceOptions {
  port: number;
  host: string;
  log: string;
  seed: number;
  level: 'digest' | 'full';
  faults: string | undefined;
  faultEndpoint: boolean;
}

function usageError(message: string): never {
  process.stderr.write(`service: ${message}\n`);
  process.exit(2);
}

function parseOptions(argv: string[]): ServiceOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        port: { type: 'string', default: '8080' },
        host: { type: 'string', default: '127.0.0.1' },
        log: { type: 'string', default: '.lockstep/service.log' },
        seed: { type: 'string', default: '0' },
        level: { type: 'string', default: 'digest' },
        faults: { type: 'string' },
        'fault-endpoint': { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (error) {
    usageError(`${(error as Error).message}. Usage: server.ts [--port N] [--host H] [--log PATH] [--seed N] [--level digest|full] [--faults plan.json] [--fault-endpoint]`);
  }
  const port = Number(parsed.port);
  if (!(Number.isInteger(port) && port >= 0 && port <= 65_535)) usageError(`--port must be an integer in 0..65535 (0: any free port), got '${parsed.port}'`);
  const seed = Number(parsed.seed);
  if (!(Number.isInteger(seed) && seed >= 0 && seed <= 0xffff_ffff)) usageError(`--seed must be an integer in 0..4294967295, got '${parsed.seed}'`);
  if (parsed.level !== 'digest' && parsed.level !== 'full') usageError(`--level must be 'digest' or 'full', got '${parsed.level}'`);
  return { port, host: parsed.host, log: parsed.log, seed, level: parsed.level, faults: parsed.faults, faultEndpoint: parsed['fault-endpoint'] };
}

function startHost(options: ServiceOptions): Host {
  const hostOptions: HostOptions = { seed: options.seed, level: options.level, log: options.log, tickMs: 10, durability: 'tick' };
  try {
    if (options.faults !== undefined) hostOptions.faults = loadFaultPlan(options.faults);
    return createHost(system, hostOptions);
  } catch (error) {
    // A bad fault plan or an unwritable log: say which, and stop before listening.
    usageError((error as Error).message);
  }
}

// ── HTTP ─────────────────────────────────────────────────────────────────────────────

function send(response: ServerResponse, outcome: Outcome, requestId?: string): void {
  const body = JSON.stringify(outcome.body);
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  if (requestId !== undefined) headers['x-request-id'] = requestId;
  response.writeHead(outcome.status, headers);
  response.end(body);
}

function error(status: number, code: string, message: string): Outcome {
  return { status, body: { error: code, message } };
}

/** Reads a request body of at most `bodyBytesMax` bytes; null when it is longer. */
async function readBody(request: IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    length += chunk.length;
    // Keep reading (and discarding) so the client sees the 413, not a reset connection.
    if (length <= bodyBytesMax) chunks.push(chunk);
  }
  return length > bodyBytesMax ? null : Buffer.concat(chunks);
}

function decodeSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** Counters since the service started, for /health. */
interface RequestCounters {
  requests: number;
  answered: number;
  retried: number;
  dropped: number;
  timedOut: number;
  refused: number;
}

class Service {
  private computeCounter = 0;
  private waiting = 0;
  private readonly counters: RequestCounters = { requests: 0, answered: 0, retried: 0, dropped: 0, timedOut: 0, refused: 0 };
  /** Restarts and crashes of each actor since the service started, from the event bus. */
  private readonly restarts = new Map<string, number>();
  private readonly crashes = new Map<string, number>();

  constructor(
    private readonly host: Host,
    private readonly faultEndpoint: boolean,
  ) {
    host.events.on('lifecycle', (event) => {
      if (event.to !== 'restarting' && event.to !== 'crashed') return;
      const counts = event.to === 'restarting' ? this.restarts : this.crashes;
      counts.set(event.actor, (counts.get(event.actor) ?? 0) + 1);
    });
  }

  /**
   * Asks `actor` and turns what happens into an HTTP outcome. An ask its actor never got
   * (it was down) is asked again after a few ticks; a timeout or a crash on it may have
   * been carried out, so it is answered, never retried.
   */
  private async request(actor: string, message: KvRequest | { op: 'primes'; limit: number }): Promise<Outcome> {
    if (this.waiting >= pendingMax) {
      this.counters.refused++;
      return error(503, 'busy', `${pendingMax} requests are waiting; retry shortly`);
    }
    this.counters.requests++;
    this.waiting++;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const reply = await this.host.askJson(actor, message, { timeoutTicks: replyTicksMax });
          this.counters.answered++;
          return reply.json<Outcome>();
        } catch (failure) {
          if (failure instanceof AskFailedError && !failure.received && attempt < retriesMax) {
            this.counters.retried++;
            await this.host.ticks(retryDelayTicks);
            continue;
          }
          return this.failed(failure);
        }
      }
    } finally {
      this.waiting--;
    }
  }

  private failed(failure: unknown): Outcome {
    if (failure instanceof AskTimeoutError) {
      this.counters.timedOut++;
      return error(504, 'timeout', `no reply within ${replyTicksMax} ticks; the request may or may not have been carried out`);
    }
    if (failure instanceof AskFailedError) {
      this.counters.dropped++;
      return failure.received
        ? error(503, 'crashed', `the actor crashed before replying; the request may or may not have been carried out: ${failure.reason}`)
        : error(503, 'dropped', `the actor was down through every retry: ${failure.reason}`);
    }
    if (failure instanceof MailboxFullError) {
      this.counters.refused++;
      return error(503, 'busy', failure.message);
    }
    if (failure instanceof RuntimeClosedError) return error(503, 'shutting_down', 'the service is stopping');
    throw failure;
  }

  /** Routes one request; every path ends in exactly one response. */
  async handle(request: IncomingMessage): Promise<Outcome> {
    const url = new URL(request.url ?? '/', 'http://service');
    const path = url.pathname;
    const method = request.method ?? 'GET';
    if (path === '/health') return method === 'GET' ? this.health() : error(405, 'method_not_allowed', 'GET /health');
    if (path.startsWith('/kv/')) return this.kv(method, path.slice('/kv/'.length), request);
    if (path.startsWith('/primes/')) return method === 'GET' ? this.primes(path.slice('/primes/'.length)) : error(405, 'method_not_allowed', 'GET /primes/:limit');
    if (path.startsWith('/faults/crash/')) {
      if (!this.faultEndpoint) return error(404, 'not_found', 'fault injection is off; start the service with --fault-endpoint');
      return method === 'POST' ? this.crash(path.slice('/faults/crash/'.length)) : error(405, 'method_not_allowed', 'POST /faults/crash/<actor name>');
    }
    return error(404, 'not_found', `no route for ${method} ${path}; see examples/service/README.md`);
  }

  private async kv(method: string, rawKey: string, request: IncomingMessage): Promise<Outcome> {
    const key = decodeSegment(rawKey);
    if (key === null || key.length === 0 || Buffer.byteLength(key) > keyBytesMax) {
      return error(400, 'bad_key', `a key is 1..${keyBytesMax} UTF-8 bytes, percent-encoded in the path`);
    }
    let message: KvRequest;
    if (method === 'GET') message = { op: 'get', key };
    else if (method === 'DELETE') message = { op: 'delete', key };
    else if (method === 'PUT') {
      const body = await readBody(request);
      if (body === null) return error(413, 'value_too_large', `a value is at most ${valueBytesMax} UTF-8 bytes`);
      message = { op: 'put', key, value: body.toString('utf8') };
    } else return error(405, 'method_not_allowed', 'GET, PUT or DELETE /kv/:key');
    return this.request(names.store, message);
  }

  private primes(rawLimit: string): Promise<Outcome> | Outcome {
    const limit = Number(rawLimit);
    if (!/^\d+$/.test(rawLimit) || limit > primesLimitMax) return error(400, 'bad_limit', `the limit is an integer in 0..${primesLimitMax}`);
    // Round robin over the workers: one crash stalls a quarter.
    const shard = this.computeCounter++ % computeShards;
    return this.request(names.worker(shard), { op: 'primes', limit });
  }

  private async crash(rawName: string): Promise<Outcome> {
    const name = decodeSegment(rawName);
    if (name === null || name.length === 0) return error(400, 'bad_name', 'name the actor to crash, e.g. /faults/crash/root/pool/w1');
    try {
      // A handle's request is an input: taken in at the next tick boundary, and logged.
      const tick = await this.host.atBoundary((runtime) => {
        runtime.actor(name).crash();
        return runtime.tick + 1;
      });
      return { status: 202, body: { crash: name, tick } };
    } catch (failure) {
      if (failure instanceof RuntimeClosedError) return error(503, 'shutting_down', 'the service is stopping');
      if (failure instanceof LockstepError) return error(404, 'no_such_actor', failure.message);
      throw failure;
    }
  }

  get requestsWaiting(): number {
    return this.waiting;
  }

  /** The tree and every actor from runtime.snapshot(), plus the restarts counted from the log. */
  private health(): Outcome {
    const snapshot = this.host.snapshot();
    const root = snapshot.supervisors.find((tree) => tree.name === rootName);
    const rootRunning = root !== undefined && root.state === 'running' && !snapshot.closed;
    const allRunning = snapshot.actors.every((actor) => actor.lifecycle === 'running');
    return {
      status: rootRunning ? 200 : 503,
      body: {
        status: !rootRunning ? 'down' : allRunning ? 'ok' : 'degraded',
        tick: snapshot.tick,
        closed: snapshot.closed,
        tree: snapshot.supervisors,
        actors: snapshot.actors.map((actor) => ({
          name: actor.name,
          lifecycle: actor.lifecycle,
          restarts: this.restarts.get(actor.name) ?? 0,
          crashes: this.crashes.get(actor.name) ?? 0,
          lastCrash: actor.lastCrash,
          mailboxDepth: actor.mailboxDepth,
          received: actor.received,
          sent: actor.sent,
          dropped: actor.dropped,
        })),
        counters: snapshot.counters,
        requests: { waiting: this.waiting, ...this.counters },
      },
    };
  }
}

// ── the process ──────────────────────────────────────────────────────────────────────

const options = parseOptions(process.argv.slice(2));
const host = startHost(options);
const service = new Service(host, options.faultEndpoint);
/** Responses not yet handed to their sockets; a shutdown waits for them before exiting. */
const unfinished = new Set<ServerResponse>();

const server = createServer((request, response) => {
  unfinished.add(response);
  response.on('close', () => unfinished.delete(response));
  service.handle(request).then(
    (outcome) => send(response, outcome),
    (failure: unknown) => {
      process.stderr.write(`service: ${request.method} ${request.url} failed: ${(failure as Error).stack ?? String(failure)}\n`);
      if (!response.headersSent) send(response, error(500, 'internal', (failure as Error).message));
      else response.destroy();
    },
  );
});

server.on('error', (failure) => {
  process.stderr.write(`service: cannot listen on ${options.host}:${options.port}: ${failure.message}\n`);
  // Close the log properly: a run that served nothing still ends with its shutdown record.
  void host.stop().finally(() => process.exit(1));
});

server.listen(options.port, options.host, () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  host.start().then(
    () => process.stdout.write(`listening on ${port} (log ${options.log}, seed ${options.seed}, tree '${rootName}' with ${host.snapshot().actors.length} actors)\n`),
    (failure: Error) => {
      process.stderr.write(`service: the host did not start: ${failure.message}\n`);
      process.exit(1);
    },
  );
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`stopping on ${signal}: no new connections; answering ${service.requestsWaiting} waiting requests\n`);
  server.close();
  const digest = await host.stop();
  // Wall clock here only bounds the process's own exit, never the run.
  const flushDeadline = Date.now() + responsesFlushMsMax;
  while (unfinished.size > 0 && Date.now() < flushDeadline) await new Promise((resolve) => setTimeout(resolve, 5));
  server.closeAllConnections();
  process.stdout.write(`stopped at tick ${host.tick}: tree stopped in order, log ${options.log} closed; final digest ${digest}\n`);
  process.exit(0);
}

process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
