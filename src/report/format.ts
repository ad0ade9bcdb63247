/** Number and label formatting shared by the Markdown and HTML renderers (pure). */

export const DASH = '–';

/** A rate in [0, 1] as a percentage with one decimal ("43.1%"), or a dash. */
export function pct(rate: number | null | undefined, digits = 1): string {
  return rate == null ? DASH : `${(100 * rate).toFixed(digits)}%`;
}

/** "31/72 (43.1%)", or a dash when there is no denominator. */
export function countOf(n: number, d: number): string {
  return d === 0 ? DASH : `${n}/${d} (${pct(n / d)})`;
}

/** A number with at most `digits` decimals, trailing zeros removed; integers stay integers. */
export function num(value: number | null | undefined, digits = 1): string {
  if (value == null) return DASH;
  if (Number.isInteger(value)) return String(value);
  return value.toFixed(digits).replace(/\.?0+$/, '');
}

export function capName(cap: number | null): string {
  return cap === null ? 'none' : String(cap);
}

/** "M2" */
export function modelLabel(index: number): string {
  return `M${index}`;
}

/** "T=1" or "T=0.7, 1" when the records disagree. */
export function temperatureLabel(temperatures: readonly number[], fallback: number | null): string {
  const values = temperatures.length > 0 ? temperatures : fallback === null ? [] : [fallback];
  return values.length === 0 ? 'T=?' : `T=${values.map((t) => num(t, 2)).join(', ')}`;
}

export function seconds(value: number | null): string {
  if (value === null) return DASH;
  if (value < 120) return `${num(value, 1)} s`;
  if (value < 7200) return `${num(value / 60, 1)} min`;
  return `${num(value / 3600, 1)} h`;
}
