// CRC-32C against its published check value and the masking TFRecord applies (record_writer.cc's MaskedCrc).
import { crc32c, maskedCrc32c } from '../../lib/io/crc32c';

describe('crc32c', () => {
  it('matches the CRC-32C check value and RFC 3720 test vectors', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa); // 32 zero bytes (RFC 3720 B.4)
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43); // 32 bytes of 0xff
  });

  it('masks as ((crc >> 15) | (crc << 17)) + 0xa282ead8, mod 2^32', () => {
    const c = 0xe3069283;
    expect(maskedCrc32c(Buffer.from('123456789'))).toBe(
      Number((BigInt((c >>> 15) | ((c << 17) >>> 0)) + 0xa282ead8n) % 2n ** 32n),
    );
  });
});
