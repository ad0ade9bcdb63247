/**
 * The one reading of "no value" on the command line: `none` and `null` (any case) alike, in
 * `--set key=none`, `rft fork --set`, `rft select --cap none` and `rft sweep --grid key=…,none`.
 * YAML itself reads `null` and `~`; `none` is the word the CLI prints for a null cap.
 */
export function isNoneWord(text: string): boolean {
  const word = text.trim().toLowerCase();
  return word === 'none' || word === 'null';
}
