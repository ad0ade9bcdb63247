/**
 * Keeps the head and the tail of a stream up to a byte cap. Test logs put what matters at both
 * ends (markers and collection errors first, the summary last), and a patch that floods stdout
 * must not fill the host's memory.
 */
export class CappedOutput {
  private head: Buffer[] = [];
  private headBytes = 0;
  private tail: Buffer[] = [];
  private tailBytes = 0;
  private total = 0;

  constructor(private readonly capBytes: number) {}

  push(chunk: Buffer): void {
    this.total += chunk.length;
    const headRoom = Math.floor(this.capBytes / 2) - this.headBytes;
    if (headRoom > 0) {
      const taken = chunk.subarray(0, headRoom);
      this.head.push(taken);
      this.headBytes += taken.length;
      chunk = chunk.subarray(taken.length);
    }
    if (chunk.length === 0) return;
    this.tail.push(chunk);
    this.tailBytes += chunk.length;
    const tailCap = this.capBytes - Math.floor(this.capBytes / 2);
    while (this.tailBytes - (this.tail[0]?.length ?? 0) >= tailCap) {
      this.tailBytes -= this.tail.shift()!.length;
    }
  }

  get truncated(): boolean {
    return this.total > this.capBytes;
  }

  get totalBytes(): number {
    return this.total;
  }

  text(): string {
    const head = Buffer.concat(this.head);
    let tail = Buffer.concat(this.tail);
    if (!this.truncated) return Buffer.concat([head, tail]).toString('utf8');
    const tailCap = this.capBytes - Math.floor(this.capBytes / 2);
    tail = tail.subarray(Math.max(0, tail.length - tailCap));
    const dropped = this.total - head.length - tail.length;
    return `${head.toString('utf8')}\n[rft: ${dropped} bytes of output truncated]\n${tail.toString('utf8')}`;
  }
}
