// Builds the package: ESM and CommonJS with declarations, then marks the CLI executable.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, rmSync, writeFileSync } from 'node:fs';

const tsc = (project) => execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', project], { stdio: 'inherit' });
execFileSync(process.execPath, ['scripts/lua.mjs'], { stdio: 'inherit' });
rmSync('dist', { recursive: true, force: true });
tsc('tsconfig.json');
tsc('tsconfig.cjs.json');
writeFileSync('dist/cjs/package.json', JSON.stringify({ type: 'commonjs' }) + '\n');
if (existsSync("dist/esm/cli/main.js")) chmodSync("dist/esm/cli/main.js", 0o755);
