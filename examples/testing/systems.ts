/**
 * Two small systems for the testing-kit example: a deterministic counter pipeline, and the
 * same pipeline with one actor that stamps messages with Date.now(), the classic mistake
 * that makes a run impossible to reproduce.
 */
import { defineActor, defineSystem, type SystemDefinition } from 'lockstep';

const counter = defineActor({
  name: 'counter',
  subscribe: ['numbers'],
  init: () => ({ total: 0 }),
  receive: (state, message, ctx) => {
    state.total += message.payload[0] ?? 0;
    ctx.publishJson('totals', { total: state.total, jitter: ctx.randomInt(10) });
    return state;
  },
});

const ledger = defineActor({
  name: 'ledger',
  subscribe: ['totals'],
  init: () => [] as number[],
  receive: (entries, message) => {
    entries.push(message.json<{ total: number }>().total);
    return entries;
  },
});

/** Reads the wall clock in a decision: its output depends on when the run happens. */
const stamper = defineActor({
  name: 'stamper',
  subscribe: ['totals'],
  init: () => 0,
  receive: (seen, _message, ctx) => {
    ctx.publishJson('stamps', { at: Date.now(), seen });
    return seen + 1;
  },
  step: (seen, ctx) => {
    // Even with no input, it publishes the time every tick.
    ctx.publishJson('stamps', { at: Date.now(), seen });
    return seen;
  },
});

export const pipeline: SystemDefinition = defineSystem({
  name: 'pipeline',
  setup(system) {
    system.spawn(counter, { name: 'counter' });
    system.spawn(ledger, { name: 'ledger' });
  },
});

export const pipelineWithClock: SystemDefinition = defineSystem({
  name: 'pipeline-with-clock',
  topics: ['stamps'],
  setup(system) {
    system.spawn(counter, { name: 'counter' });
    system.spawn(ledger, { name: 'ledger' });
    system.spawn(stamper, { name: 'stamper' });
  },
});
