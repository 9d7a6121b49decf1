/**
 * The default demo: a small market of 51 JS actors and 5 WASM agents over eight topics and
 * five priority levels.
 *
 *   feed (embedded inputs) ──market/prices──▶ traders ×40, market makers ×6, analysts ×2
 *   traders, market makers ──orders──▶ exchange ──fills──▶ risk, auditor
 *   exchange ──actor/<trader> (direct)──▶ each party of a fill
 *   risk ──actor/<trader> (direct, priority 250)──▶ a trader over its limit: flatten
 *   risk ──risk/alerts──▶ auditor
 *   risk ──jobs──▶ risk models ×4 (WASM hasher: real CPU work on worker threads) ──results──▶ desk
 *   auditor ──config──▶ sieve (WASM, every tick) ──results──▶ desk
 *
 * Every decision comes from messages, ctx.tick and ctx.random, so a run is reproducible
 * from its seed and replays bit for bit.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineActor, defineSystem, loadWasmAgent, type Message } from 'lockstep';

/** The dev key the sample agents are signed with (examples/keys: never trust it in production). */
const devKey = readFileSync(fileURLToPath(new URL('../keys/dev.pub.pem', import.meta.url)), 'utf8');
/** Runtime options this system needs: the key its WASM agents are signed with. */
export const runtimeOptions = { trustedKeys: [devKey] };
const agentFile = (name: string) => fileURLToPath(new URL(`../../actors/agents/build/${name}.wasm`, import.meta.url));
const [hasher, sieve] = await Promise.all([
  loadWasmAgent(agentFile('hasher'), { trustedKeysPem: [devKey] }),
  loadWasmAgent(agentFile('sieve'), { trustedKeysPem: [devKey] }),
]);

export const symbols = ['ACME', 'BOLT', 'CRUX', 'DYNE'] as const;
const traderCount = 40;
const makerCount = 6;
const analystCount = 2;

interface Price {
  symbol: number;
  price: number;
}

/** Prices travel as 8 bytes (symbol, price in cents): the hot topic stays binary. */
function encodePrice(price: Price): Uint8Array {
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, price.symbol, true);
  view.setUint32(4, price.price, true);
  return bytes;
}

function decodePrice(message: Message): Price {
  const view = new DataView(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength);
  return { symbol: view.getUint32(0, true), price: view.getUint32(4, true) };
}

interface Order {
  trader: string;
  symbol: number;
  side: 'buy' | 'sell';
  quantity: number;
  limit: number;
}

interface Fill {
  trader: string;
  symbol: number;
  side: 'buy' | 'sell';
  quantity: number;
  price: number;
}

const trader = defineActor({
  name: 'trader',
  subscribe: ['market/prices'],
  init: (ctx) => ({
    last: symbols.map(() => 0),
    position: symbols.map(() => 0),
    aggression: 0.05 + ctx.random() * 0.25,
    flatten: false,
  }),
  receive: (state, message, ctx) => {
    if (message.topicName === 'market/prices') {
      const { symbol, price } = decodePrice(message);
      state.last[symbol] = price;
    } else {
      // Direct messages: a fill of ours from the exchange, or risk telling us to flatten.
      const direct = message.json<Fill | { flatten: true }>();
      if ('flatten' in direct) state.flatten = true;
      else state.position[direct.symbol]! += direct.side === 'buy' ? direct.quantity : -direct.quantity;
    }
    return state;
  },
  step: (state, ctx) => {
    if (state.flatten) {
      state.position.forEach((held, symbol) => {
        if (held === 0 || state.last[symbol] === 0) return;
        const order: Order = { trader: ctx.name, symbol, side: held > 0 ? 'sell' : 'buy', quantity: Math.abs(held), limit: held > 0 ? 1 : 1_000_000 };
        ctx.publishJson('orders', order);
      });
      state.flatten = false;
      return state;
    }
    if (ctx.random() > state.aggression) return state;
    const symbol = ctx.randomInt(symbols.length);
    const price = state.last[symbol]!;
    if (price === 0) return state;
    const side = ctx.random() < 0.5 ? 'buy' : 'sell';
    const order: Order = {
      trader: ctx.name,
      symbol,
      side,
      quantity: 1 + ctx.randomInt(10),
      limit: side === 'buy' ? price + ctx.randomInt(20) : price - ctx.randomInt(20),
    };
    ctx.publishJson('orders', order);
    return state;
  },
});

const marketMaker = defineActor({
  name: 'maker',
  subscribe: ['market/prices'],
  init: () => ({ mid: symbols.map(() => 0) }),
  receive: (state, message) => {
    const { symbol, price } = decodePrice(message);
    state.mid[symbol] = price;
    return state;
  },
  step: (state, ctx) => {
    const symbol = ctx.tick % symbols.length;
    const mid = state.mid[symbol]!;
    if (mid === 0) return state;
    const spread = 5 + ctx.randomInt(10);
    ctx.publishJson('orders', { trader: ctx.name, symbol, side: 'buy', quantity: 5, limit: mid - spread } satisfies Order);
    ctx.publishJson('orders', { trader: ctx.name, symbol, side: 'sell', quantity: 5, limit: mid + spread } satisfies Order);
    return state;
  },
});

/** Crosses orders per symbol in arrival order (which the runtime makes canonical). */
const exchange = defineActor({
  name: 'exchange',
  subscribe: ['orders'],
  init: () => ({ books: symbols.map(() => ({ bids: [] as Order[], asks: [] as Order[] })), fills: 0 }),
  receive: (state, message, ctx) => {
    const order = message.json<Order>();
    const book = state.books[order.symbol]!;
    const opposite = order.side === 'buy' ? book.asks : book.bids;
    let remaining = order.quantity;
    while (remaining > 0 && opposite.length > 0) {
      const best = opposite[0]!;
      const crosses = order.side === 'buy' ? best.limit <= order.limit : best.limit >= order.limit;
      if (!crosses) break;
      const quantity = Math.min(remaining, best.quantity);
      remaining -= quantity;
      best.quantity -= quantity;
      if (best.quantity === 0) opposite.shift();
      const price = best.limit;
      for (const fill of [
        { trader: order.trader, symbol: order.symbol, side: order.side, quantity, price },
        { trader: best.trader, symbol: order.symbol, side: best.side, quantity, price },
      ] satisfies Fill[]) {
        ctx.publishJson('fills', fill);
        if (fill.trader.startsWith('trader')) ctx.sendJson(fill.trader, fill);
      }
      state.fills += 2;
    }
    if (remaining > 0) {
      const resting = order.side === 'buy' ? book.bids : book.asks;
      resting.push({ ...order, quantity: remaining });
      // Best price first; equal prices keep arrival order (sort is stable).
      resting.sort((a, b) => (order.side === 'buy' ? b.limit - a.limit : a.limit - b.limit));
      if (resting.length > 200) resting.length = 200;
    }
    return state;
  },
});

const risk = defineActor({
  name: 'risk',
  subscribe: ['fills'],
  init: () => ({ exposure: {} as Record<string, number>, alerts: 0, fillsThisTick: 0 }),
  receive: (state, message, ctx) => {
    const fill = message.json<Fill>();
    state.fillsThisTick++;
    if (!fill.trader.startsWith('trader')) return state;
    const signed = (fill.side === 'buy' ? 1 : -1) * fill.quantity * fill.price;
    const exposure = (state.exposure[fill.trader] ?? 0) + signed;
    state.exposure[fill.trader] = exposure;
    if (Math.abs(exposure) > 250_000) {
      ctx.sendJson(fill.trader, { flatten: true }, { priority: 250 });
      ctx.publishJson('risk/alerts', { trader: fill.trader, exposure, tick: ctx.tick });
      state.exposure[fill.trader] = 0;
      state.alerts++;
    }
    return state;
  },
  step: (state, ctx) => {
    // One risk-model job per tick with fills: rounds of hashing scale with the activity.
    if (state.fillsThisTick > 0) {
      const job = new Uint8Array(16);
      const view = new DataView(job.buffer);
      view.setUint32(0, 500 * Math.min(state.fillsThisTick, 40), true);
      view.setUint32(4, ctx.tick, true);
      view.setUint32(8, state.alerts, true);
      ctx.publish('jobs', job);
      state.fillsThisTick = 0;
    }
    return state;
  },
});

/** Collects what the WASM agents compute. */
const desk = defineActor({
  name: 'desk',
  subscribe: ['results'],
  init: () => ({ digests: 0, sieves: 0, lastPrimes: 0, checksum: 0 }),
  receive: (state, message) => {
    const view = new DataView(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength);
    if (message.payload.length === 16) {
      state.digests++;
      state.checksum = (state.checksum ^ view.getUint32(8, true)) >>> 0;
    } else {
      state.sieves++;
      state.lastPrimes = view.getUint32(4, true);
    }
    return state;
  },
});

const auditor = defineActor({
  name: 'auditor',
  subscribe: ['fills', 'risk/alerts'],
  init: () => ({ fills: 0, alerts: 0, volume: 0 }),
  receive: (state, message) => {
    if (message.topicName === 'fills') {
      state.fills++;
      state.volume += message.json<Fill>().quantity;
    } else {
      state.alerts++;
    }
    return state;
  },
  step: (state, ctx) => {
    if (ctx.tick % 500 === 0) ctx.publishJson('audit', { tick: ctx.tick, fills: state.fills, alerts: state.alerts, volume: state.volume });
    // Retune the sieve now and then: its bound follows the traded volume.
    if (ctx.tick % 250 === 0) ctx.publish('config', new Uint8Array(new Uint32Array([10_000 + (state.volume % 40_000)]).buffer));
    return state;
  },
});

/** Keeps a moving average per symbol; publishes a signal when price crosses it. */
const analyst = defineActor({
  name: 'analyst',
  subscribe: ['market/prices'],
  init: () => ({ average: symbols.map(() => 0), signals: 0 }),
  receive: (state, message, ctx) => {
    const { symbol, price } = decodePrice(message);
    const before = state.average[symbol]!;
    const after = before === 0 ? price : before + (price - before) / 16;
    state.average[symbol] = after;
    if (before !== 0 && Math.sign(price - before) !== Math.sign(price - after)) {
      ctx.publishJson('audit', { signal: symbols[symbol], price });
      state.signals++;
    }
    return state;
  },
});

export default defineSystem({
  name: 'market-demo',
  topics: ['audit', 'jobs', 'config'],
  ticks: 2000,
  setup(system) {
    system.spawn(risk, { name: 'risk', priority: 220 });
    system.spawn(exchange, { name: 'exchange', priority: 200, mailboxCapacity: 4096 });
    for (let i = 1; i <= makerCount; i++) system.spawn(marketMaker, { name: `maker-${i}`, priority: 150 });
    for (let i = 1; i <= traderCount; i++) system.spawn(trader, { name: `trader-${i}`, priority: 100 });
    for (let i = 1; i <= analystCount; i++) system.spawn(analyst, { name: `analyst-${i}`, priority: 50 });
    system.spawn(auditor, { name: 'auditor', priority: 10 });
    system.spawn(desk, { name: 'desk', priority: 10 });
    for (let i = 1; i <= 4; i++) system.spawn(hasher, { name: `risk-model-${i}`, priority: 120 });
    system.spawn(sieve, { name: 'sieve', priority: 5 });
  },
  /** The price feed: a seeded random walk per symbol, one quote per symbol per tick. */
  inputs(tick, random) {
    return symbols.map((_, symbol) => {
      const drift = random.int(41) - 20;
      const base = 10_000 + symbol * 2_500;
      const price = Math.max(100, base + Math.round(Math.sin((tick + symbol * 7) / 50) * 400) + drift);
      return { topic: 'market/prices', payload: encodePrice({ symbol, price }), priority: 180 };
    });
  },
});
