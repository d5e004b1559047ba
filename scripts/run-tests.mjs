// Runs the compiled test files with node's test runner and ends with the line "N passed, N failed".
// Arguments narrow the run: paths of compiled files, or substrings of their paths.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...find(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out.sort();
}

const all = find('build/test');
const args = process.argv.slice(2);
const files = args.length === 0 ? all : all.filter((file) => args.some((arg) => file.includes(arg)));
if (files.length === 0) {
  console.error(`No test file matches ${args.join(' ')}`);
  process.exit(2);
}
const child = spawn(process.execPath, ['--test', '--test-reporter=spec', '--test-concurrency=1', ...files], { stdio: ['ignore', 'pipe', 'inherit'] });
let output = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  output += chunk.toString();
});
child.on('close', (code) => {
  const count = (label) => Number(output.match(new RegExp(`^ℹ ${label} (\\d+)$`, 'm'))?.[1] ?? 0);
  const passed = count('pass');
  const failed = count('fail') + count('cancelled');
  console.log(`${passed} passed, ${failed} failed, ${count('skipped')} skipped`);
  process.exit(code === 0 && failed === 0 && passed > 0 ? 0 : 1);
});
