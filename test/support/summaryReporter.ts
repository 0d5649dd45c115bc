import type { FullResult, Reporter, TestCase, TestResult } from '@playwright/test/reporter';

/**
 * Ends every run with the plain line CI reads: `N passed, N failed, N skipped`. A test counts once, by its
 * final outcome; skipped tests print their reason so that a missing tool (kvssink) is visible.
 */
export default class SummaryReporter implements Reporter {
  #passed = 0;
  #failed = 0;
  #skipped = 0;
  readonly #skipReasons: string[] = [];

  onTestEnd(test: TestCase, result: TestResult): void {
    if (result.retry < test.retries && result.status !== 'passed' && result.status !== 'skipped') return;
    if (result.status === 'skipped') {
      this.#skipped++;
      const reason = test.annotations.find((a) => a.type === 'skip')?.description ?? 'no reason given';
      this.#skipReasons.push(`${test.titlePath().slice(1).join(' › ')}: ${reason}`);
    } else if (result.status === 'passed') {
      this.#passed++;
    } else {
      this.#failed++;
    }
  }

  onEnd(result: FullResult): void {
    for (const line of this.#skipReasons) console.log(`skipped: ${line}`);
    // A run that errored outside any test (config, global setup) must not look green.
    if (result.status !== 'passed' && this.#failed === 0 && result.status !== 'interrupted') this.#failed = 1;
    console.log(`${this.#passed} passed, ${this.#failed} failed, ${this.#skipped} skipped`);
  }

  printsToStdio(): boolean {
    return false;
  }
}
