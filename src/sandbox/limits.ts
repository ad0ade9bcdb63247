const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "512m", "4g", "1.5GiB" → bytes (binary units, as Docker reads them). */
export function parseByteSize(size: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(size.trim());
  if (!match) throw new Error(`not a size: ${size}`);
  return Math.round(Number(match[1]) * UNITS[match[2]!.toLowerCase()]!);
}
