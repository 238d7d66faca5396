// PyTorch .pth/.pt state dicts (torch.save(model.state_dict()), zip format), read with libtorch's
// unpickler after the zip and the pickle have been checked here.

import { CheckpointError, inContext } from '../errors';
import { NativeModel, native } from '../native';
import { applyEdits, scanPickle } from './pickle';
import { StoredTensor, TO_SAFETENSORS } from './safetensors';
import { LoadOptions, LoadReport, applyState } from './weights';
import { readBounded } from './read-bounded';
import { readZip } from './zip';

/** The tensors of a PyTorch state-dict file, by name, in file order. */
export async function readPytorchStateDict(file: string): Promise<Map<string, StoredTensor>> {
  const buffer = await readBounded(file);
  if (buffer.length > 0 && buffer[0] === 0x80)
    throw new CheckpointError(
      file,
      'the legacy torch.save format (PyTorch < 1.6, or _use_new_zipfile_serialization=False), which is not supported: re-save it with a current PyTorch',
    );
  const entries = readZip(buffer, file);
  const pickles = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pickles.length !== 1)
    throw new CheckpointError(file, `expected one <archive>/data.pkl, found ${pickles.length}: not a torch.save file`);
  const prefix = pickles[0].slice(0, -'data.pkl'.length);
  const pickle = entries.get(pickles[0])!;
  const scan = scanPickle(pickle, file);
  const records: Record<string, Uint8Array> = {};
  for (const key of scan.storageKeys) {
    const record = entries.get(`${prefix}data/${key}`);
    if (record) records[key] = record;
  }
  let tensors;
  try {
    tensors = await native().importPth(applyEdits(pickle, scan.edits), records);
  } catch (e) {
    throw inContext(e, file);
  }
  const out = new Map<string, StoredTensor>();
  for (const t of tensors) {
    const dtype = TO_SAFETENSORS[t.dtype];
    if (!dtype) throw new CheckpointError(file, `tensor ${t.name} has dtype ${t.dtype}, which weights cannot hold`);
    out.set(t.name, {
      dtype,
      shape: t.shape,
      bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
    });
  }
  return out;
}

/** Loads a PyTorch state dict into the model (torchvision's names), with the same checks as loadWeights. */
export async function loadPytorchWeights(
  handle: NativeModel,
  file: string,
  options: LoadOptions = {},
): Promise<LoadReport> {
  return applyState(handle, await readPytorchStateDict(file), file, options);
}
