/**
 * The watch window of a queued entry: the keys just ahead of it, each watched for its
 * deletion (and its rewrite: a writer ahead that downgraded lets readers behind it hold). An entry with `permits` permits holds once fewer than `permits` keys are ahead
 * of it, which cannot happen while the `permits` keys just ahead of it all live (keys only
 * leave the queue ahead; newer ones join behind). So it watches those keys only: a mutex
 * waiter watches its predecessor, and a release wakes at most `permits` waiters however long
 * the queue (etcd's `concurrency.Mutex`, Curator's `LockInternals`).
 */
import type { IKeyValue, Watcher } from 'etcd3';
import { cancel, type EtcdClient } from './client.js';

/** WindowHooks: what a window reports to its entry. */
export interface WindowHooks {
  /**
   * A key of the window was deleted (or rewritten: `frees` is then false), at or before
   * `revision`; `frees` when the window held
   * every key ahead and the deletion came after the read that found them: the entry holds,
   * without another read.
   */
  deleted(revision: bigint, frees: boolean): void;
  /** A watch disconnected or failed: the entry should read the queue again. */
  unsure(): void;
}

/** Window: the delete watches over the keys just ahead of one queued entry. */
export class Window {
  readonly #client: Pick<EtcdClient, 'watch' | 'kv'>;
  readonly #hooks: WindowHooks;
  readonly #watchers = new Map<string, Watcher>();
  /** The window holds every key ahead (exactly `permits` of them), so the deletion of any one lets the entry hold. */
  #lastInLine = false;
  /** Revision of the last read of the queue: the window's deletions come after it. */
  #readAt = 0n;

  constructor(client: Pick<EtcdClient, 'watch' | 'kv'>, hooks: WindowHooks) {
    this.#client = client;
    this.#hooks = hooks;
  }

  /**
   * set watches `window`, the keys just ahead found by a read at revision `readAt`: each from
   * the revision after that read, so that no deletion in between is missed. Watchers of keys
   * still in the window are kept.
   */
  set(window: readonly IKeyValue[], lastInLine: boolean, readAt: bigint): void {
    this.#lastInLine = lastInLine;
    this.#readAt = readAt;
    const keys = new Map(window.map((kv) => [kv.key.toString(), kv]));
    for (const [watched, watcher] of this.#watchers) {
      if (keys.has(watched)) continue;
      this.#watchers.delete(watched);
      cancel(watcher);
    }
    for (const [target, kv] of keys) {
      if (this.#watchers.has(target)) continue;
      // From now on, not from `readAt + 1`: etcd keeps a watch that starts at its current
      // revision in step with every write, while one that starts in the past waits for etcd's
      // catch-up loop (every 100 ms) before it gets any event. What happened between the read
      // and the watch's creation is looked up once the watch exists.
      const watcher = this.#client.watch().key(target).watcher();
      watcher.on('delete', (deleted: IKeyValue) => this.#deleted(BigInt(deleted.mod_revision)));
      // A key rewritten in place (a writer that downgraded to a reader) may let the entry hold: it reads the queue again.
      watcher.on('put', (put: IKeyValue) => this.#hooks.deleted(BigInt(put.mod_revision), false));
      watcher.once('connected', (res: { header: { revision: string } }) => {
        if (BigInt(res.header.revision) > readAt) void this.#recheck(watcher, kv, BigInt(res.header.revision));
      });
      // etcd3 reconnects watchers itself, from the revision after the last it saw. Meanwhile the
      // waiter asks again: a unary call, which also steers etcd3 away from a member that died.
      watcher.on('disconnected', () => this.#hooks.unsure());
      watcher.on('error', () => this.#hooks.unsure());
      this.#watchers.set(target, watcher);
    }
  }

  /** close cancels every watch of the window. */
  close(): void {
    for (const watcher of this.#watchers.values()) cancel(watcher);
    this.#watchers.clear();
  }

  #deleted(revision: bigint): void {
    this.#hooks.deleted(revision, this.#lastInLine && revision > this.#readAt);
  }

  /**
   * A window key's watch was created at revision `createdAt`, after the read that found the
   * key: was the key deleted in between? One read at `createdAt` or later tells (served by the
   * member, or by the leader if the member lags behind `createdAt`); the watch has the rest.
   */
  async #recheck(watcher: Watcher, kv: IKeyValue, createdAt: bigint): Promise<void> {
    try {
      let reply = await this.#client.kv.range({ key: kv.key, keys_only: true, serializable: true });
      if (BigInt(reply.header.revision) < createdAt) reply = await this.#client.kv.range({ key: kv.key, keys_only: true });
      if (this.#watchers.get(kv.key.toString()) !== watcher) return;
      const found = reply.kvs[0];
      // Gone since the read (a key never comes back with the same create revision).
      if (!found || found.create_revision !== kv.create_revision) this.#deleted(BigInt(reply.header.revision));
      else if (found.mod_revision !== kv.mod_revision) this.#hooks.deleted(BigInt(reply.header.revision), false);
    } catch {
      this.#hooks.unsure();
    }
  }
}
