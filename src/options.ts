/**
 * Option objects are checked for keys nobody reads. A misspelled option (`trustedKey`,
 * `mailboxCapcity`) would otherwise be ignored silently and the run would go on with a
 * default the caller did not want; instead it fails at once, naming the closest known key,
 * as the CLI does for its flags.
 */
import { ConfigError } from './errors.ts';

/**
 * Why a key that is not read here is wrong, when that needs more than "did you mean":
 * an option that moved elsewhere, say. Maps the key to the advice.
 */
export type KeyAdvice = Readonly<Record<string, string>>;

/**
 * Takes an options object, the keys it may have, where it was passed (for the message) and
 * optional advice for known mistakes (and the word for a key in messages). Returns nothing. Throws ConfigError (or what `fail`
 * builds) for the first key in insertion order that is not known, naming the closest known
 * key when one is close. Keys whose value is undefined count too: `{ trustedKey: undefined }`
 * is still a typo.
 */
export function checkKeys(
  value: object,
  known: readonly string[],
  where: string,
  options: { advice?: KeyAdvice; fail?: (message: string) => never; noun?: 'option' | 'field' } = {},
): void {
  const noun = options.noun ?? 'option';
  const fail = options.fail ?? ((message: string): never => {
    throw new ConfigError(message);
  });
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const advice = options.advice?.[key];
    if (advice !== undefined) fail(`${where}: '${key}' is not an ${noun} here; ${advice}`);
    const guess = closest(key, known);
    const hint = guess === null ? '' : ` did you mean '${guess}'?`;
    fail(`${where}: unknown ${noun} '${key}';${hint} known ${noun}s: ${known.join(', ')}`);
  }
}

/** The known word nearest to `word`, or null when none is near enough to be a likely typo. */
export function closest(word: string, known: readonly string[]): string | null {
  const lower = word.toLowerCase();
  let best: string | null = null;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const distance = candidate.toLowerCase() === lower ? 0 : editDistance(lower, candidate.toLowerCase());
    // Ties go to the first known key: the result never depends on anything but the inputs.
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  // A third of the word's length (at least 2): `trustedKeysPem` finds `trustedKeys`,
  // `seeds` finds `seed`, and `log` does not turn into `level`.
  const allowed = Math.max(2, Math.floor(word.length / 3));
  return bestDistance <= allowed ? best : null;
}

/**
 * Optimal string alignment distance (Levenshtein plus swapping two neighbours), computed in
 * two rows. Words here are option names, tens of characters at most.
 */
function editDistance(a: string, b: string): number {
  let previousPrevious: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) distance = Math.min(distance, previousPrevious[j - 2]! + 1);
      current.push(distance);
    }
    previousPrevious = previous;
    previous = current;
  }
  return previous[b.length]!;
}
