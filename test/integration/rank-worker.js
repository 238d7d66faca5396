'use strict';
// One rank of a distributed test run (test/integration/distributed.test.ts starts several): the rank and world
// come from the environment as torchrun sets them; the job from argv[2] (JSON). The data: arrays in a safetensors
// file (job.data), or an image folder (job.folder: { path, size, channels, stream }) read in memory or streamed.
const fs = require('fs');
const path = require('path');
const { readSafetensors, typedArrayOf } = require('../../dist/io/safetensors');
const { createModel, datasets, fromArrays, processGroup, resumeTraining, train } = require('../../dist');

let announced = false;
function announce() {
  if (!announced) process.stdout.write('training\n');
  announced = true;
}

async function readArrays(job) {
  const { tensors } = await readSafetensors(job.data);
  const images = typedArrayOf(tensors.get('images'));
  const labels = Array.from(typedArrayOf(tensors.get('labels')), Number);
  return fromArrays({ images, shape: tensors.get('images').shape, labels, numClasses: job.numClasses });
}

function readFolder({ stream, ...options }) {
  return stream ? datasets.streamImageFolder(options) : datasets.imageFolder(options);
}

(async () => {
  const job = JSON.parse(process.argv[2]);
  const data = job.folder ? await readFolder(job.folder) : await readArrays(job);
  const { rank } = processGroup();
  // With `validation`, a held-out part evaluated by the ranks together, and once more by this process alone.
  const parts = job.validation ? await data.split({ validation: job.validation, seed: 1 }) : { train: data };
  // job.die: { attempt, atIteration }: in torchrun's restart `attempt`, rank 0 kills itself (SIGKILL) at the first
  // iteration from `atIteration` on where its checkpoint folder holds last.safetensors.
  const die =
    job.die && rank === 0 && Number(process.env.TORCHELASTIC_RESTART_COUNT || 0) === job.die.attempt
      ? job.die
      : undefined;
  const common = {
    ...(parts.validation ? { validation: parts.validation } : {}),
    ...(job.checkpoint ? { checkpoint: job.checkpoint } : {}),
    // "training" once the first iteration is done (rank 0 reports progress): the ranks have met and trained.
    onProgress: (e) => {
      announce();
      if (die && e.iteration >= die.atIteration && fs.existsSync(path.join(job.checkpoint.dir, 'last.safetensors')))
        process.kill(process.pid, 'SIGKILL');
    },
  };
  let model, result;
  if (job.resume) {
    const resumed = await resumeTraining(job.resume, parts.train, common);
    model = resumed.model;
    result = await resumed.run;
  } else {
    model = await createModel({
      arch: job.arch,
      inChannels: job.inChannels,
      numClasses: job.numClasses,
      seed: 1,
      ...(job.dtype ? { dtype: job.dtype } : {}),
    });
    if (job.init) await model.loadWeights(job.init);
    result = await train(model, parts.train, {
      ...job.options,
      seed: job.seed ?? 5,
      distributed: job.distributed,
      ...common,
    });
  }
  await model.saveWeights(`${job.outPrefix}${rank}.safetensors`);
  const alone = parts.validation ? await model.evaluate(parts.validation) : undefined;
  const line = {
    rank,
    iteration: result.iteration,
    resumedFrom: result.resumedFrom,
    imagesPerSecond: result.imagesPerSecond,
    val: result.evaluations.val,
    alone,
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
})().catch((e) => {
  process.stderr.write(`${e.name}: ${e.message}\n`);
  process.exit(1);
});
