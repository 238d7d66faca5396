'use strict';
// jest's node environment, with this process's typed-array constructors instead of the test realm's own.
// onnxruntime-node checks `data instanceof Float32Array` in JS on arrays its addon made in the main realm, which
// fails under jest (jest issue 2549); only the file that runs onnxruntime-node uses this. resnet-torch itself needs
// no such help: the user lane (test/user/) runs it in jest's standard environment.
const { TestEnvironment } = require('jest-environment-node');

const SHARED = [
  'ArrayBuffer',
  'Uint8Array',
  'Int8Array',
  'Uint16Array',
  'Int16Array',
  'Uint32Array',
  'Int32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
  'DataView',
];

class SharedTypedArraysEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
  }
}

module.exports = SharedTypedArraysEnvironment;
