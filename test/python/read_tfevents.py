"""An independent reader of TensorBoard event files, written from TensorFlow's record format description
(tensorflow/core/lib/io/record_writer.cc: uint64 length, uint32 masked CRC-32C of the length, the data, uint32
masked CRC-32C of the data) and event.proto / summary.proto. Its CRC is crcmod's CRC-32C, not ours; its protobuf
decoder is a strict wire-format walk. Prints JSON: records, file_version, scalars [{step, tag, value}],
session_logs [{step, status, msg}]. Any bad CRC, short record, unknown field or trailing byte is an error."""
import json
import struct
import sys

import crcmod.predefined

CRC32C = crcmod.predefined.mkCrcFun("crc-32c")


def masked(data):
    c = CRC32C(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def fields(buf):
    """(field number, wire type, value) for each field of a message, strictly."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 2:
            n, i = varint(buf, i)
            value, i = buf[i : i + n], i + n
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        if i > len(buf):
            raise ValueError("field past the end of its message")
        yield number, wire, value


def main(path):
    data = open(path, "rb").read()
    out = {"records": 0, "file_version": None, "scalars": [], "session_logs": []}
    i = 0
    while i < len(data):
        if i + 12 > len(data):
            raise ValueError(f"short record header at byte {i}")
        (length,) = struct.unpack_from("<Q", data, i)
        (length_crc,) = struct.unpack_from("<I", data, i + 8)
        if masked(data[i : i + 8]) != length_crc:
            raise ValueError(f"bad length CRC at byte {i}")
        record = data[i + 12 : i + 12 + length]
        if len(record) != length or i + 16 + length > len(data):
            raise ValueError(f"short record at byte {i}")
        (data_crc,) = struct.unpack_from("<I", data, i + 12 + length)
        if masked(record) != data_crc:
            raise ValueError(f"bad data CRC at byte {i}")
        i += 16 + length
        out["records"] += 1
        step, wall_time, values, log = 0, None, [], None
        for number, wire, value in fields(record):
            if number == 1 and wire == 1:
                (wall_time,) = struct.unpack("<d", value)
            elif number == 2 and wire == 0:
                step = value
            elif number == 3 and wire == 2:
                out["file_version"] = value.decode()
            elif number == 5 and wire == 2:  # Summary
                for vn, vw, v in fields(value):
                    if vn != 1 or vw != 2:
                        raise ValueError(f"Summary field {vn}")
                    tag, simple = None, None
                    for fn, fw, f in fields(v):
                        if fn == 1 and fw == 2:
                            tag = f.decode()
                        elif fn == 2 and fw == 5:
                            (simple,) = struct.unpack("<f", f)
                        else:
                            raise ValueError(f"Summary.Value field {fn}")
                    values.append((tag, simple))
            elif number == 6 and wire == 2:  # SessionLog
                log = {"status": None, "msg": ""}
                for fn, fw, f in fields(value):
                    if fn == 1 and fw == 0:
                        log["status"] = f
                    elif fn == 3 and fw == 2:
                        log["msg"] = f.decode()
                    else:
                        raise ValueError(f"SessionLog field {fn}")
            else:
                raise ValueError(f"Event field {number} (wire {wire})")
        if wall_time is None:
            raise ValueError("an event without wall_time")
        for tag, value in values:
            out["scalars"].append({"step": step, "tag": tag, "value": value})
        if log is not None:
            out["session_logs"].append({"step": step, **log})
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
