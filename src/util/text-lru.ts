/**
 * A memo keyed by (long) texts, bounded by the characters of its keys, least recently used out.
 * A Map hashes a string once per string object, so a text held and passed around (a file, a
 * prompt) is a cheap key; a text longer than a quarter of the bound is not kept.
 */
export class TextLru<V> {
  private readonly map = new Map<string, V>();
  private chars = 0;

  constructor(private readonly maxChars: number) {}

  get(text: string): V | undefined {
    const known = this.map.get(text);
    if (known !== undefined) {
      // Most recently used last: Map keeps insertion order.
      this.map.delete(text);
      this.map.set(text, known);
    }
    return known;
  }

  set(text: string, value: V): void {
    if (text.length > this.maxChars / 4 || this.map.has(text)) return;
    this.map.set(text, value);
    this.chars += text.length;
    for (const [old] of this.map) {
      if (this.chars <= this.maxChars) break;
      this.map.delete(old);
      this.chars -= old.length;
    }
  }
}
