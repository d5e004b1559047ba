/** The CLI's parser and value types, in-process. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../../src/index.js';
import { COMMON_FLAGS, formatDuration, parseArgs, parseCount, parseDuration, parseKind } from '../../src/cli/args.js';
import { RUN_FLAGS, commandLine, parseRun } from '../../src/cli/run.js';

const invalid = (argument?: string) => (error: unknown): boolean => {
  assert.ok(error instanceof InvalidArgumentError, String(error));
  if (argument !== undefined) assert.equal(error.argument, argument);
  return true;
};

describe('parseDuration', () => {
  it('reads numbers with a unit, and 0 alone', () => {
    assert.equal(parseDuration('500ms', 'ttl'), 500);
    assert.equal(parseDuration('30s', 'ttl'), 30_000);
    assert.equal(parseDuration('1.5s', 'ttl'), 1500);
    assert.equal(parseDuration('2m', 'ttl'), 120_000);
    assert.equal(parseDuration('1h', 'ttl'), 3_600_000);
    assert.equal(parseDuration('0', 'wait'), 0);
    assert.equal(parseDuration('0', 'grace'), 0);
  });

  it('refuses a number without its unit, with the readings it could have', () => {
    assert.throws(() => parseDuration('30', 'ttl', 1), (error: unknown) => {
      invalid('ttl')(error);
      assert.equal((error as Error).message, '--ttl 30 has no unit: write 30s, 30ms or 30m');
      return true;
    });
    assert.throws(() => parseDuration('250', 'wait'), /^InvalidArgumentError: --wait 250 has no unit: write 250s, 250ms or 250m$/);
    assert.throws(() => parseDuration('1.5', 'grace'), /^InvalidArgumentError: --grace 1\.5 has no unit: write 1\.5s or 1\.5m$/);
    // Only the readings in range: 3000000 s is past the longest timer.
    assert.throws(() => parseDuration('3000000', 'ttl', 1), /--ttl 3000000 has no unit: write 3000000ms$/);
    assert.throws(() => parseDuration('0', 'ttl', 1), /--ttl must be from 1ms/);
  });

  it('rejects anything else, naming the flag', () => {
    for (const text of ['', '1.5x', '1.5', '7', '-1s', '10 s', 's', '1e3', '2d', ' 1s']) {
      assert.throws(() => parseDuration(text, 'ttl'), invalid('ttl'), text);
    }
    assert.throws(() => parseDuration('0', 'ttl', 1), /--ttl must be from 1ms/);
    assert.throws(() => parseDuration('25d', 'ttl'), invalid('ttl'));
    assert.throws(() => parseDuration(`${2 ** 31}ms`, 'ttl'), invalid('ttl'));
  });

  it('formats durations the way it reads them', () => {
    for (const ms of [0, 200, 1000, 1500, 10_000, 120_000, 90_000, 3_600_000]) {
      assert.equal(parseDuration(formatDuration(ms), 'x'), ms);
    }
    assert.equal(formatDuration(10_000), '10s');
    assert.equal(formatDuration(200), '200ms');
  });
});

describe('parseArgs', () => {
  const specs = { ...COMMON_FLAGS, ttl: { type: 'string' }, json: { type: 'boolean' } } as const;

  it('reads flags in any order, both value forms, and keeps what follows -- verbatim', () => {
    const args = parseArgs(['a', '--ttl', '5s', '--json', 'b', '--store=memory:', '-h', '--', 'cmd', '--ttl', '--'], specs, 'test');
    assert.deepEqual(args.positionals, ['a', 'b']);
    assert.equal(args.flags.get('ttl'), '5s');
    assert.equal(args.flags.get('store'), 'memory:');
    assert.equal(args.flags.get('json'), true);
    assert.equal(args.flags.get('help'), true);
    assert.deepEqual(args.rest, ['cmd', '--ttl', '--']);
    assert.equal(parseArgs(['x'], specs, 'test').rest, null);
  });

  it('rejects unknown, repeated and valueless flags', () => {
    assert.throws(() => parseArgs(['--nope'], specs, 'test'), /unknown option --nope for "test"/);
    assert.throws(() => parseArgs(['-x'], specs, 'test'), /unknown option -x/);
    assert.throws(() => parseArgs(['--ttl', '1s', '--ttl=2s'], specs, 'test'), /--ttl is given twice/);
    assert.throws(() => parseArgs(['--ttl'], specs, 'test'), /--ttl needs a value/);
    assert.throws(() => parseArgs(['--ttl', '--', 'x'], specs, 'test'), /--ttl needs a value/);
    assert.throws(() => parseArgs(['--json=yes'], specs, 'test'), /takes no value/);
    assert.throws(() => parseArgs(['--constructor'], specs, 'test'), /unknown option/);
  });
});

describe('parseRun', () => {
  const parse = (argv: string[]) => parseRun(parseArgs(argv, RUN_FLAGS, 'baton run'));

  it('applies the defaults: 30s TTL, wait forever, a mutex, 10s grace', () => {
    assert.deepEqual(parse(['job', '--', 'make', 'all']), {
      name: 'job', ttlMs: 30_000, waitMs: Infinity, permits: undefined, graceMs: 10_000, command: 'make', args: ['all'], label: undefined, verbose: false,
    });
  });

  it('reads every option', () => {
    const o = parse(['job', '--ttl', '5s', '--wait=2m', '--permits', '3', '--grace', '300ms', '--', 'x']);
    assert.equal(o.ttlMs, 5000);
    assert.equal(o.waitMs, 120_000);
    assert.equal(o.permits, 3);
    assert.equal(o.graceMs, 300);
    assert.equal(parse(['job', '--no-wait', '--', 'x']).waitMs, 0);
    assert.equal(parse(['job', '--wait', '0', '--', 'x']).waitMs, 0);
    assert.equal(parse(['job', '--grace', '0', '--', 'x']).graceMs, 0);
    assert.equal(parse(['job', '--label', 'deploy 381', '--', 'x']).label, 'deploy 381');
  });

  it('writes the command line back as a shell would take it, for the holder description', () => {
    assert.equal(commandLine(parse(['job', '--', 'sh', '-c', "echo 'hi there'; exit 3"])), `sh -c 'echo '\\''hi there'\\''; exit 3'`);
    assert.equal(commandLine(parse(['job', '--', './nightly.sh', '--full', 'a=b'])), './nightly.sh --full a=b');
    assert.equal(commandLine(parse(['job', '--', 'x', 'y'.repeat(400)])).length, 300);
    assert.equal(
      commandLine(parse(['job', '--', 'sh', '-c', "psql postgres://app:s3cr%40t@db/x -c 'select 1'; baton --store etcd://u:pw@h:2379 ls", 'redis://:pw@r'])),
      `sh -c 'psql postgres://***@db/x -c '\\''select 1'\\''; baton --store etcd://***@h:2379 ls' 'redis://***@r'`,
    );
  });

  it('refuses a number without its unit for every duration flag', () => {
    for (const flag of ['ttl', 'wait', 'grace']) {
      assert.throws(() => parse(['job', `--${flag}`, '30', '--', 'x']), new RegExp(`^InvalidArgumentError: --${flag} 30 has no unit: write 30s, 30ms or 30m$`), flag);
      assert.throws(() => parse(['job', `--${flag}=30`, '--', 'x']), invalid(flag), flag);
    }
  });

  it('needs a name, a -- and a command', () => {
    assert.throws(() => parse(['job', 'make']), /expected -- and a command before "make"/);
    assert.throws(() => parse(['job']), /expected -- and a command/);
    assert.throws(() => parse(['job', '--']), /expected a command after --/);
    assert.throws(() => parse(['--', 'make']), /missing NAME/);
    assert.throws(() => parse(['a', 'b', '--', 'make']), /unexpected argument "b"/);
    assert.throws(() => parse(['job', '--permits', '1.5', '--', 'x']), invalid('permits'));
  });
});

describe('parseCount and parseKind', () => {
  it('reads counts and kinds', () => {
    assert.equal(parseCount('2', 'permits'), 2);
    for (const bad of ['0', '-1', '1.0', 'two', '', String(2 ** 31)]) assert.throws(() => parseCount(bad, 'permits'), invalid('permits'), bad);
    assert.equal(parseKind('semaphore'), 'semaphore');
    assert.equal(parseKind(undefined), undefined);
    assert.throws(() => parseKind('Mutex'), invalid('kind'));
  });
});
