// Stop with Ctrl-C and pick up where it stopped: the first run writes a checkpoint when interrupted (and every
// epoch); running the script again resumes from the newest one and ends as the uninterrupted run would.
//   node examples/resume.js [checkpoint folder]
const fs = require('fs');
const path = require('path');
const { createModel, datasets, progressBar, resumeTraining, train } = require('resnet-torch');

const quick = process.env.EXAMPLES_QUICK === '1';

async function main() {
  const dir = process.argv[2] ?? 'resume-checkpoints';
  const data = quick ? await (await datasets.fashionMnist()).take(512, 0) : await datasets.fashionMnist();
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort()); // Ctrl-C: finish the current iteration, checkpoint, stop
  const checkpoint = { dir, everyEpochs: 1 }; // plus one on cancel and one at the end (the defaults)
  const last = path.join(dir, 'last.safetensors');

  let run;
  if (fs.existsSync(last)) {
    ({ run } = await resumeTraining(last, data, { signal: controller.signal, checkpoint, onProgress: progressBar() }));
    console.log(`resuming from ${last}`);
  } else {
    const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 10, seed: 0 });
    run = train(model, data, {
      iterations: quick ? 40 : 2000,
      batchSize: 64,
      logEvery: quick ? 1 : 20,
      signal: controller.signal,
      checkpoint,
      onProgress: progressBar(),
    });
  }
  const result = await run;
  console.log(
    result.aborted
      ? `stopped at iteration ${result.iteration}: run me again to resume`
      : `done: ${result.iteration} iterations`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
