'use strict';
// The last line of a jest run, for any reader to count: "N passed, N failed" (and skipped, when some were).
class CountReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    const failedSuites = results.numRuntimeErrorTestSuites;
    console.log(
      `${results.numPassedTests} passed, ${results.numFailedTests + failedSuites} failed${skipped ? `, ${skipped} skipped` : ''}`,
    );
  }
}
module.exports = CountReporter;
