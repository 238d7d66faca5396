// After each test file: the temporary folders its tests made (harness/files.ts) go, with the weights in them.
import { removeTempDirs } from '../../harness/files';

afterAll(removeTempDirs);
