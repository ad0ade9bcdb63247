import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { parquetWriteBuffer } from 'hyparquet-writer';

/** A Parquet file of records, written by hyparquet-writer: strings as UTF8 columns, test lists as list columns. */
export function parquetOf(records: Record<string, unknown>[], codec?: 'GZIP'): Buffer {
  const names = Object.keys(records[0]!);
  const columnData = names.map((name) => {
    const data = records.map((r) => (r[name] === undefined ? null : r[name]));
    return Array.isArray(data.find((v) => v !== null)) ? { name, data } : { name, data, type: 'STRING' as const };
  });
  const options = codec ? { columnData, codec, compressors: { GZIP: (input: Uint8Array) => new Uint8Array(gzipSync(input)) } } : { columnData };
  return Buffer.from(parquetWriteBuffer(options as Parameters<typeof parquetWriteBuffer>[0]));
}

/** The records of a JSONL task file as they are (the dataset's own fields). */
export function jsonlRecords(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
