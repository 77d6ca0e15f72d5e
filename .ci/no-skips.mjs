#!/usr/bin/env node
// CI: fails unless a vitest JSON report (--reporter=json --outputFile.json=FILE) shows tests that
// all ran and passed: none skipped, none todo, none failed, at least one. With REQUIRE_GPU=1 a
// missing adapter already fails a GPU test file; this also catches a test skipped by any other
// condition (describe.skipIf, it.skip, a browser missing), which vitest itself reports as a pass.
// Usage: node .ci/no-skips.mjs REPORT.json [LABEL]
import { readFileSync } from 'node:fs';

const [file, label = file] = process.argv.slice(2);
if (!file) {
  console.error('usage: node .ci/no-skips.mjs REPORT.json [LABEL]');
  process.exit(2);
}
const report = JSON.parse(readFileSync(file, 'utf8'));
const notRun = [];
for (const suite of report.testResults ?? []) {
  for (const t of suite.assertionResults ?? []) {
    if (t.status !== 'passed' && t.status !== 'failed') notRun.push(`  ${t.status}: ${suite.name} > ${t.fullName}`);
  }
}
const problems = [];
if (!(report.numTotalTests > 0)) problems.push('no tests ran');
if (report.numFailedTests > 0 || report.numFailedTestSuites > 0 || report.success === false) {
  problems.push(`${report.numFailedTests} failed tests, ${report.numFailedTestSuites} failed files`);
}
if (report.numPendingTests > 0 || report.numTodoTests > 0 || notRun.length > 0) {
  problems.push(`${report.numPendingTests} skipped and ${report.numTodoTests} todo tests:\n${notRun.join('\n')}`);
}
if (problems.length > 0) {
  console.error(`${label}: ${problems.join('; ')}`);
  process.exit(1);
}
console.log(`${label}: ${report.numPassedTests} tests passed in ${report.testResults.length} files, none skipped`);
