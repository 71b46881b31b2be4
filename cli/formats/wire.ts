// Protobuf's framing, read from a file by offset: the fields of a message as (number, wire type, byte ranges),
// without decoding their values. onnx.ts uses it to find the graph and the initializers of an ONNX model without
// loading the file, and decodes the messages themselves with onnx-proto. Varints are decoded by protobufjs's Reader.
import type * as fs from 'node:fs/promises';

import { Reader, Writer } from 'protobufjs/minimal';

import { ModelFileError } from '../errors';
import { openForReading, readExactly } from '../file-io';

export interface Field {
  number: number;
  /** 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32. */
  wire: number;
  /** Where its tag begins, where the tag ends (and a length varint begins), and where its value begins and ends. */
  tagStart: number;
  tagEnd: number;
  start: number;
  end: number;
}

/** The longest tag or length varint: 10 bytes. */
const VARINT_MAX = 10;
const WINDOW = 64 << 10;

export class WireFile {
  private window: Uint8Array = new Uint8Array(0);
  private windowStart = 0;

  private constructor(
    readonly file: string,
    readonly handle: fs.FileHandle,
    readonly size: number,
  ) {}

  static async open(file: string): Promise<WireFile> {
    const handle = await openForReading(file);
    return new WireFile(file, handle, (await handle.stat()).size);
  }

  close(): Promise<void> {
    return this.handle.close().catch(() => undefined);
  }

  /** `length` bytes at `position`, through a small window for the many short reads of tags and lengths. */
  async bytes(position: number, length: number): Promise<Uint8Array> {
    if (length > WINDOW) return readExactly(this.handle, position, length, this.file);
    if (position < this.windowStart || position + length > this.windowStart + this.window.length) {
      const take = Math.min(WINDOW, this.size - position);
      this.window = await readExactly(this.handle, position, Math.max(take, length), this.file);
      this.windowStart = position;
    }
    return this.window.subarray(position - this.windowStart, position - this.windowStart + length);
  }

  /** The fields' bytes (tags included) one after the other: a message holding just these fields. */
  async concat(fields: readonly Field[]): Promise<Uint8Array> {
    const parts = await Promise.all(fields.map((f) => this.bytes(f.tagStart, f.end - f.tagStart).then((b) => b.slice())));
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  private truncated(what: string, at: number): ModelFileError {
    return new ModelFileError(
      this.file,
      `truncated or invalid protobuf: ${what} at byte ${at} runs past the end of its message or the file`,
    );
  }

  /** A varint at `position` that must end by `end`: its value and the position after it. */
  private async varint(position: number, end: number, what: string): Promise<[number, number]> {
    const bytes = await this.bytes(position, Math.min(VARINT_MAX, end - position));
    const reader = Reader.create(bytes);
    let value: number;
    try {
      const long = reader.uint64();
      value = typeof long === 'number' ? long : (long as unknown as { toNumber(): number }).toNumber();
    } catch {
      throw this.truncated(what, position);
    }
    if (!Number.isSafeInteger(value)) throw new ModelFileError(this.file, `invalid protobuf: ${what} at byte ${position} is out of range`);
    return [value, position + reader.pos];
  }

  /** The top-level fields of the message occupying [start, end). */
  async fields(start: number, end: number, what: string): Promise<Field[]> {
    if (end > this.size) throw this.truncated(what, start);
    const fields: Field[] = [];
    let position = start;
    while (position < end) {
      const [tag, tagEnd] = await this.varint(position, end, `a field tag in ${what}`);
      const number = Math.floor(tag / 8);
      const wire = tag % 8;
      if (number === 0) throw new ModelFileError(this.file, `invalid protobuf: field number 0 in ${what} at byte ${position}`);
      let valueStart = tagEnd;
      let valueEnd: number;
      switch (wire) {
        case 0:
          valueEnd = (await this.varint(tagEnd, end, `field ${number} of ${what}`))[1];
          break;
        case 1:
          valueEnd = tagEnd + 8;
          break;
        case 2: {
          const [length, after] = await this.varint(tagEnd, end, `the length of field ${number} of ${what}`);
          valueStart = after;
          valueEnd = after + length;
          break;
        }
        case 5:
          valueEnd = tagEnd + 4;
          break;
        default:
          throw new ModelFileError(this.file, `invalid protobuf: wire type ${wire} of field ${number} in ${what} at byte ${position}`);
      }
      if (valueEnd > end) throw this.truncated(`field ${number} of ${what}`, position);
      fields.push({ number, wire, tagStart: position, tagEnd, start: valueStart, end: valueEnd });
      position = valueEnd;
    }
    return fields;
  }
}

/** A length as a protobuf varint, by protobufjs's Writer. */
export function encodeVarint(value: number): Uint8Array {
  return Writer.create().uint32(value).finish();
}
