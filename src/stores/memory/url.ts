/** The `memory:` store URL: a fresh in-process store, with no path and no options. */
import { InvalidArgumentError } from '../../errors.js';
import type { LockStore } from '../../store.js';
import { redactUrl, schemeOf, type StoreScheme } from '../../url-parts.js';

/** MemoryStoreUrl: a parsed `memory:` URL. */
export interface MemoryStoreUrl {
  readonly scheme: 'memory';
}

/** memoryScheme: `memory:`, locks of this process only. */
export const memoryScheme: StoreScheme<'memory', MemoryStoreUrl> = {
  names: ['memory'],
  form: 'memory:',
  summary: 'this process only (for trying things out)',
  options: [],
  parse(url: string): MemoryStoreUrl {
    // memory: takes no path and no options; accept the common memory:// spelling too.
    const rest = schemeOf(url)!.rest;
    if (rest !== '' && rest !== '//') throw new InvalidArgumentError('url', `A memory: URL takes no path or options, got "${redactUrl(url)}"; write memory:`);
    return { scheme: 'memory' };
  },
  async open(): Promise<LockStore> {
    const { createMemoryStore } = await import('./store.js');
    return createMemoryStore();
  },
};
