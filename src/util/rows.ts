/** The 0-based row holding text offset `at`, given the offsets at which rows start (ascending, the first 0): a binary search. */
export function rowAt(rowStarts: readonly number[], at: number): number {
  let lo = 0;
  let hi = rowStarts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (rowStarts[mid]! <= at) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
