// Just enough protocol-buffer encoding to write ONNX files and TensorBoard events: varints, length-delimited
// fields, fixed32 floats, fixed64 doubles. Repeated scalars are written unpacked (proto2's default, which
// onnx.proto uses), except packedDoubles (proto3's default, which TensorBoard's HistogramProto uses).
export class ProtoWriter {
  #parts: Buffer[] = [];

  #tag(field: number, wire: number) {
    this.#varint((BigInt(field) << 3n) | BigInt(wire));
  }

  #varint(value: bigint) {
    let v = BigInt.asUintN(64, value);
    const bytes: number[] = [];
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v > 0n) b |= 0x80;
      bytes.push(b);
    } while (v > 0n);
    this.#parts.push(Buffer.from(bytes));
  }

  int(field: number, value: number | bigint): this {
    this.#tag(field, 0);
    this.#varint(BigInt(value));
    return this;
  }

  ints(field: number, values: (number | bigint)[]): this {
    for (const v of values) this.int(field, v);
    return this;
  }

  float(field: number, value: number): this {
    this.#tag(field, 5);
    const b = Buffer.alloc(4);
    b.writeFloatLE(value);
    this.#parts.push(b);
    return this;
  }

  double(field: number, value: number): this {
    this.#tag(field, 1);
    const b = Buffer.alloc(8);
    b.writeDoubleLE(value);
    this.#parts.push(b);
    return this;
  }

  packedDoubles(field: number, values: number[]): this {
    const b = Buffer.alloc(8 * values.length);
    values.forEach((v, i) => b.writeDoubleLE(v, 8 * i));
    return this.bytes(field, b);
  }

  bytes(field: number, value: Uint8Array): this {
    this.#tag(field, 2);
    this.#varint(BigInt(value.length));
    this.#parts.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, Buffer.from(value, 'utf8'));
  }

  strings(field: number, values: string[]): this {
    for (const v of values) this.string(field, v);
    return this;
  }

  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  finish(): Buffer {
    return Buffer.concat(this.#parts);
  }
}
