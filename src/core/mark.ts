import type { MarkRequest, MarkState } from '../store.js';

/**
 * The rule of `LockStore.advanceMark`, written once for the stores that read a mark and
 * write it back inside one transaction (memory, the table stores) or with a compare on its
 * version (etcd): what the mark becomes, whether this request advanced it, and whether
 * anything must be written.
 */
export function applyMark(current: MarkState | undefined, request: MarkRequest): { state: MarkState; advanced: boolean; write: boolean } {
  const at = current?.at ?? -1;
  if (request.to > at) return { state: withNote(request.to, request.note), advanced: true, write: true };
  if (request.renote && request.to === at && request.to >= 0) return { state: withNote(at, request.note), advanced: false, write: true };
  return { state: current ?? { at: -1 }, advanced: false, write: false };
}

function withNote(at: number, note: string | undefined): MarkState {
  return note === undefined ? { at } : { at, note };
}

/** MARK_NOTE_MAX: the longest note a mark keeps, in characters. */
export const MARK_NOTE_MAX = 2000;
