// What a failing call threw, for tests that check more than the message (the class, the field, the file).

export type Thrown = Error & Record<string, unknown>;

/** The error `promise` rejects with; the test fails if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<Thrown> {
  try {
    await promise;
  } catch (e) {
    return e as Thrown;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

/** The error `fn` throws; the test fails if it returns. */
export function thrown(fn: () => unknown): Thrown {
  try {
    fn();
  } catch (e) {
    return e as Thrown;
  }
  throw new Error('expected a throw, but the call returned');
}
