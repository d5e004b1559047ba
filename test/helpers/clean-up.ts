/**
 * cleanUp runs the steps of a clean-up named `name` (stop a server, close its clients, remove
 * its folder), each one even when an earlier one failed, so that one error does not leave a
 * server running. Each failure is printed with `console.error`, naming the clean-up and the
 * step. Then, if any failed, it rejects with one error that names them, unless `after` says
 * the clean-up runs after a failure (a `finally` on an error): that failure is the one to
 * report, and the clean-up's own are only printed, never put in its place.
 *
 * It catches nothing else: no `unhandledRejection` handler, nothing that would hide a failure.
 */
export async function cleanUp(name: string, steps: Record<string, () => unknown>, after?: { failed: boolean }): Promise<void> {
  const failures: string[] = [];
  for (const [step, run] of Object.entries(steps)) {
    try {
      await run();
    } catch (error) {
      failures.push(step);
      console.error(`clean-up "${name}": ${step} failed:`, error);
    }
  }
  if (failures.length > 0 && !after?.failed) throw new Error(`clean-up "${name}" failed at: ${failures.join(', ')} (printed above)`);
}
