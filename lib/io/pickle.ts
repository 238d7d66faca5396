// A validator (and one rewrite) for the pickles inside torch.save archives, run before libtorch's unpickler
// sees them. Only the opcodes torch.save emits for a state dict are accepted; the stack and memo are
// simulated, so an underflow, a dangling memo reference or an unbalanced MARK is refused here; and GLOBAL
// may only name the few callables a state dict needs. Nothing in the file is executed by us.
import { CheckpointError } from '../errors';

const ALLOWED_GLOBALS = new Set([
  'collections OrderedDict',
  'torch._utils _rebuild_tensor_v2',
  'torch._utils _rebuild_parameter',
  ...['Float', 'Double', 'Half', 'BFloat16', 'Long', 'Int', 'Short', 'Char', 'Byte', 'Bool'].map(
    (t) => `torch ${t}Storage`,
  ),
]);

// Scalar opcodes: the size of their argument in bytes, or 0 where the first byte gives it.
const SCALAR_ARGUMENT: Record<number, number> = { 0x4a: 4, 0x4b: 1, 0x4d: 2, 0x47: 8, 0x8c: 0, 0x8a: 0 };

interface Entry {
  start: number; // offset of the op that began building this value
  mark?: boolean;
  global?: string; // the callable a GLOBAL (or a BINGET of one) pushed
  globalOp?: Uint8Array; // the GLOBAL op's own bytes
  emptyTuple?: boolean; // pushed by EMPTY_TUPLE alone
  orderedDict?: boolean; // the result of OrderedDict()
  reduceEnd?: number; // for an OrderedDict() result: the offset just after its REDUCE
  usedAsDict?: boolean; // SETITEM(S) or BUILD targeted it
}

interface MemoOp {
  key: number;
  at: number;
  end: number;
  entry: Entry;
}

export interface Edit {
  at: number;
  remove: number;
  insert: Uint8Array;
}

export interface PickleScan {
  /** Keys of the tensor records the pickle may refer to. */
  storageKeys: Set<string>;
  /** Byte edits that make OrderedDict state dicts plain dicts (libtorch reads OrderedDict() as None). */
  edits: Edit[];
}

function binput(key: number): Uint8Array {
  if (key < 256) return Uint8Array.from([0x71, key]);
  const b = Buffer.alloc(5);
  b[0] = 0x72;
  b.writeUInt32LE(key, 1);
  return b;
}

// An interpreter: one loop over the opcodes, each case a few lines, rather than a list of steps.
// eslint-disable-next-line max-lines-per-function
export function scanPickle(bytes: Uint8Array, file: string): PickleScan {
  const fail = (at: number, problem: string): never => {
    throw new CheckpointError(file, `corrupt or unsupported pickle (byte ${at}): ${problem}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: Entry[] = [];
  const memo = new Map<number, Entry>();
  const puts: MemoOp[] = [],
    gets: MemoOp[] = [];
  const storageKeys = new Set<string>();
  const builds: { target: Entry; stateStart: number; end: number }[] = [];
  const reduced: Entry[] = [];
  let pos = 0;
  const need = (n: number) => {
    if (pos + n > bytes.length) fail(pos, 'truncated');
  };
  const push = (e: Entry) => {
    stack.push(e);
    if (stack.length > 1_000_000) fail(pos, 'stack too deep');
  };
  const pop = (at: number): Entry => {
    const e = stack.pop();
    if (!e || e.mark) fail(at, 'stack underflow');
    return e!;
  };
  const popToMark = (at: number): Entry[] => {
    const items: Entry[] = [];
    for (;;) {
      const e = stack.pop();
      if (!e) fail(at, 'no MARK to match');
      if (e!.mark) {
        items.reverse();
        return Object.assign(items, { markAt: e!.start });
      }
      items.push(e!);
    }
  };
  const top = (at: number): Entry => {
    const e = stack[stack.length - 1];
    if (!e || e.mark) fail(at, 'stack underflow');
    return e;
  };
  const readLine = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0 || end - pos > 256) fail(pos, 'unterminated GLOBAL name');
    const text = Buffer.from(bytes.subarray(pos, end)).toString('latin1');
    pos = end + 1;
    return text;
  };
  const memoize = (at: number, key: number) => {
    const entry = top(at);
    memo.set(key, entry);
    puts.push({ key, at, end: pos, entry });
  };
  for (let steps = 0; ; steps++) {
    if (steps > 50_000_000) fail(pos, 'too many operations');
    need(1);
    const at = pos;
    const op = bytes[pos++];
    switch (op) {
      case 0x80:
        need(1);
        if (bytes[pos] > 5) fail(at, `protocol ${bytes[pos]}`);
        pos += 1;
        break; // PROTO
      case 0x95:
        need(8);
        pos += 8;
        break; // FRAME
      case 0x63: {
        // GLOBAL
        const name = `${readLine()} ${readLine()}`;
        if (!ALLOWED_GLOBALS.has(name))
          fail(at, `it calls ${name.replace(' ', '.')}; only state dicts of tensors are accepted`);
        push({ start: at, global: name, globalOp: bytes.subarray(at, pos) });
        break;
      }
      case 0x71:
        need(1);
        pos += 1;
        memoize(at, bytes[pos - 1]);
        break; // BINPUT
      case 0x72:
        need(4);
        pos += 4;
        memoize(at, view.getUint32(pos - 4, true));
        break; // LONG_BINPUT
      case 0x94:
        memoize(at, memo.size);
        break; // MEMOIZE
      case 0x68:
      case 0x6a: {
        // BINGET, LONG_BINGET
        const width = op === 0x68 ? 1 : 4;
        need(width);
        const key = width === 1 ? bytes[pos] : view.getUint32(pos, true);
        pos += width;
        const e = memo.get(key);
        if (!e) fail(at, `memo ${key} used before it is set`);
        push({ start: at, global: e!.global, globalOp: e!.globalOp });
        gets.push({ key, at, end: pos, entry: e! });
        break;
      }
      case 0x29:
        push({ start: at, emptyTuple: true });
        break; // EMPTY_TUPLE
      case 0x7d:
      case 0x5d:
      case 0x4e:
      case 0x88:
      case 0x89:
        push({ start: at });
        break; // {} [] None True False
      case 0x28:
        push({ start: at, mark: true });
        break; // MARK
      case 0x74: {
        const items = popToMark(at) as Entry[] & { markAt: number };
        push({ start: items.markAt });
        break;
      } // TUPLE
      case 0x85:
      case 0x86:
      case 0x87: {
        // TUPLE1-3
        let start = at;
        for (let i = 0; i < op - 0x84; i++) start = pop(at).start;
        push({ start });
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop(at);
        const callable = pop(at);
        const e: Entry = { start: callable.start };
        if (callable.global === 'collections OrderedDict' && args.emptyTuple) {
          e.orderedDict = true;
          e.reduceEnd = pos;
          reduced.push(e);
        }
        push(e);
        break;
      }
      case 0x62: {
        const state = pop(at);
        const target = top(at);
        target.usedAsDict = true;
        builds.push({ target, stateStart: state.start, end: pos });
        break;
      } // BUILD
      case 0x73:
        pop(at);
        pop(at);
        top(at).usedAsDict = true;
        break; // SETITEM
      case 0x75: {
        if (popToMark(at).length % 2) fail(at, 'odd SETITEMS');
        top(at).usedAsDict = true;
        break;
      } // SETITEMS
      case 0x61:
        pop(at);
        top(at);
        break; // APPEND
      case 0x65:
        popToMark(at);
        top(at);
        break; // APPENDS
      case 0x51:
        push({ start: pop(at).start });
        break; // BINPERSID
      case 0x58: {
        // BINUNICODE
        need(4);
        const n = view.getUint32(pos, true);
        pos += 4;
        need(n);
        const text = Buffer.from(bytes.subarray(pos, pos + n)).toString('utf8');
        pos += n;
        if (/^\d+$/.test(text)) storageKeys.add(text);
        push({ start: at });
        break;
      }
      case 0x8c: // SHORT_BINUNICODE
      case 0x8a: // LONG1
      case 0x4a: // BININT
      case 0x4b: // BININT1
      case 0x4d: // BININT2
      case 0x47: {
        // BINFLOAT: a scalar with a fixed-size argument, or one whose length is its first byte
        let n = SCALAR_ARGUMENT[op];
        if (n === 0) {
          need(1);
          n = bytes[pos];
          pos += 1;
        }
        need(n);
        pos += n;
        push({ start: at });
        break;
      }
      case 0x2e: // STOP
        if (stack.length !== 1 || stack[0].mark) fail(at, `STOP with ${stack.length} values on the stack`);
        if (pos !== bytes.length) fail(pos, `${bytes.length - pos} bytes after STOP`);
        return { storageKeys, edits: containerEdits(reduced, builds, puts, gets) };
      default:
        fail(at, `opcode 0x${op.toString(16)} is not used by torch.save for state dicts`);
    }
  }
}

// OrderedDict() results used as containers become EMPTY_DICT; the BUILD restoring their `_metadata` goes;
// a GLOBAL memoised inside a replaced span is re-defined where it is next fetched.
function containerEdits(
  reduced: Entry[],
  builds: { target: Entry; stateStart: number; end: number }[],
  puts: MemoOp[],
  gets: MemoOp[],
): Edit[] {
  const removed: Edit[] = builds
    .filter((b) => b.target.orderedDict)
    .map((b) => ({ at: b.stateStart, remove: b.end - b.stateStart, insert: new Uint8Array(0) }));
  const within = (at: number, r: Edit) => at >= r.at && at < r.at + r.remove;
  const gone = (at: number) => removed.some((r) => within(at, r));
  const edits: Edit[] = removed.filter((r) => !removed.some((o) => o !== r && r.at > o.at && within(r.at, o)));
  for (const e of reduced) {
    if (!e.usedAsDict || gone(e.start)) continue;
    const span: Edit = { at: e.start, remove: e.reduceEnd! - e.start, insert: Uint8Array.from([0x7d]) };
    edits.push(span);
    for (const put of puts.filter((p) => within(p.at, span))) {
      const next = gets.find((g) => g.key === put.key && g.at >= e.reduceEnd! && !gone(g.at));
      if (!next) continue;
      if (!put.entry.globalOp) throw new Error('unsupported memo layout around an OrderedDict');
      edits.push({
        at: next.at,
        remove: next.end - next.at,
        insert: Buffer.concat([put.entry.globalOp, binput(put.key)]),
      });
    }
  }
  return edits;
}

/** Applies non-overlapping edits and returns the new pickle. */
export function applyEdits(bytes: Uint8Array, edits: Edit[]): Uint8Array {
  const sorted = [...edits].sort((a, b) => a.at - b.at);
  const parts: Uint8Array[] = [];
  let cursor = 0;
  for (const e of sorted) {
    if (e.at < cursor) throw new Error('overlapping pickle edits');
    parts.push(bytes.subarray(cursor, e.at), e.insert);
    cursor = e.at + e.remove;
  }
  parts.push(bytes.subarray(cursor));
  return Buffer.concat(parts);
}
