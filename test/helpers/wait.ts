/**
 * Bounded waits for helpers and harnesses: every wait names what it waits for, and fails
 * with that name when it does not happen in time, so that a regression fails a test instead
 * of hanging the run.
 */

/** within resolves as `promise` does, or rejects once `ms` have passed: "`what` did not happen within `ms` ms". */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * until polls `condition` every `everyMs` until it holds, and rejects after `ms`: "`what`
 * did not happen within `ms` ms", with `detail()` (what was seen instead) when given.
 */
export async function until(condition: () => boolean | Promise<boolean>, what: string, options: { ms?: number; everyMs?: number; detail?: () => string } = {}): Promise<void> {
  const { ms = 10_000, everyMs = 20, detail } = options;
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms${detail ? `: ${detail()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
