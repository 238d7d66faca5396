// Run configuration files: one schema with the API's validator, key paths in errors, --set overrides, presets.
import * as fs from 'fs';
import * as path from 'path';

import { ValidationError } from '../../lib';
import { listPresets, parseConfigText, readPreset, resolveConfig } from '../../lib/config/load';
import { runConfigJsonSchema } from '../../lib/config/schema';
import { tiny } from '../helpers/configs';
import { thrown } from '../helpers/errors';

const ROOT = path.resolve(__dirname, '..', '..');

describe('config files', () => {
  it('refuses a bad value with the path of the key, and an unknown key', () => {
    const base = tiny('/tmp');
    const e = thrown(() => resolveConfig(base, ['train.optimizer.momentum="x"']));
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.message).toBe('train.optimizer.momentum: expected a number in [0, 1), got "x"');
    expect(() => resolveConfig({ ...base, trian: {} })).toThrow(
      /trian: unknown key "trian" \(did you mean "train"\?\)/,
    );
    expect(() => resolveConfig(base, ['model.shortcut=D'])).toThrow(
      /model.shortcut: expected one of "A", "B", "C", "none", got "D"/,
    );
    expect(() => resolveConfig(base, ['data.train.type=imagenet'])).toThrow(
      /data.train.type: expected one of "fashion-mnist", .*got "imagenet"/,
    );
    expect(() => resolveConfig(base, ['train.schedule.type=multistep'])).toThrow(/train.schedule.milestones: required/);
    expect(() => resolveConfig(base, ['nonsense'])).toThrow(/--set: expected key.path=value/);
  });
  it('--set overrides values of any type, and the result is frozen', () => {
    const c = resolveConfig(tiny('/tmp'), [
      'train.optimizer.lr=0.2',
      'train.augment.flip=true',
      'train.schedule={type: multistep, milestones: [2, 4]}',
      'model.arch=cifar-plain8',
    ]);
    expect(c.train.optimizer!.lr).toBe(0.2);
    expect(c.train.augment!.flip).toBe(true);
    expect(c.train.schedule).toEqual({ type: 'multistep', milestones: [2, 4] });
    expect(c.model.arch).toBe('cifar-plain8');
    expect(Object.isFrozen(c.train.optimizer)).toBeTruthy();
  });
  it('--set of one of epochs and iterations replaces the other (the later setting wins); key= removes a key', async () => {
    const preset = await readPreset('fashion-mnist-resnet20');
    expect((preset as { train: { epochs?: number } }).train.epochs).toBeGreaterThan(0);
    const byIterations = resolveConfig(preset, ['train.iterations=50']);
    expect([byIterations.train.iterations, byIterations.train.epochs]).toEqual([50, undefined]);
    const back = resolveConfig(preset, ['train.iterations=50', 'train.epochs=2']);
    expect([back.train.iterations, back.train.epochs]).toEqual([undefined, 2]);
    const removed = resolveConfig(preset, ['train.iterations=50', 'train.augment=']);
    expect(removed.train.augment).toBeUndefined();
    const everyIterations = resolveConfig({ ...tiny('/tmp'), checkpoint: { everyEpochs: 1 } }, [
      'checkpoint.everyIterations=10',
    ]);
    expect(everyIterations.checkpoint).toEqual({ everyIterations: 10 });
    // Removing the only one of them is refused, naming the key.
    expect(() => resolveConfig(preset, ['train.epochs='])).toThrow(/train.epochs: required \(or train.iterations\)/);
  });
  it('every preset is valid, and configs/schema.json is the schema the validator uses', async () => {
    const presets = await listPresets();
    for (const name of [
      'cifar10-resnet20',
      'cifar10-resnet110',
      'cifar10-resnet1202',
      'cifar10-plain56',
      'imagenet-resnet34-C',
      'imagenet-plain18',
      'cifar10-preact-resnet164',
      'cifar100-preact-resnet1001',
      'fashion-mnist-resnet20',
    ])
      expect(presets.includes(name)).toBeTruthy();
    for (const name of presets) resolveConfig(await readPreset(name));
    const c110 = resolveConfig(await readPreset('cifar10-resnet110'));
    expect(c110.train.errorWarmup).toEqual({ lr: 0.01, untilTrainError: 0.8 });
    expect(c110.train.schedule).toEqual({ type: 'multistep', milestones: [32000, 48000] });
    expect(c110.train.iterations).toBe(64000);
    const published = JSON.parse(fs.readFileSync(path.join(ROOT, 'configs', 'schema.json'), 'utf8'));
    expect(published).toEqual(JSON.parse(JSON.stringify(runConfigJsonSchema())));
    expect(published.properties.train.properties.optimizer.oneOf[0].properties.momentum.exclusiveMaximum).toBe(1);
  });
  it("the model section has the API spec's bounds (one schema for both)", () => {
    expect(() => resolveConfig(tiny('/tmp'), ['model.inChannels=5000'])).toThrow(
      /model.inChannels: expected an integer in \[1, 4096\], got 5000/,
    );
    expect(() => resolveConfig(tiny('/tmp'), ['model.seed=3'])).toThrow(/model.seed: unknown key "seed"/);
  });
  it('YAML: anchors and aliases resolve; a syntax error names the file and the line', () => {
    const text = 'base: &opt {type: sgd, lr: 0.1}\ntrain:\n  optimizer: *opt\n';
    expect(parseConfigText(text, 'a.yaml')).toEqual({
      base: { type: 'sgd', lr: 0.1 },
      train: { optimizer: { type: 'sgd', lr: 0.1 } },
    });
    const e = thrown(() => parseConfigText('train:\n  epochs: [1, 2\n', 'b.yaml'));
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.message).toMatch(/^b\.yaml: .*line 3/);
    expect(() => parseConfigText('{"a": 1,}', 'c.json')).toThrow(/^c\.json: /);
  });
});
